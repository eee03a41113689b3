"""LLM-as-judge through the Gateway, with ragas collections metrics.

Every judge call is an ordinary governed call: the judge talks to the Gateway's
OpenAI-compatible proxy (in-process over ``httpx.ASGITransport`` by default, no port;
or any running gateway by ``base_url``) with a workbench key of team ``evals``, so
allowlists, budgets, rate limits, PII masking, the ledger and tracing all apply, and
``workbench usage`` shows what the evals cost.

What STACK.md says ragas needs offline, done here: telemetry off before the first
import; an explicit LLM (``llm_factory`` on an ``AsyncOpenAI`` client) and explicit
embeddings; instructor ``Mode.JSON_SCHEMA`` so the embedded llama.cpp model is
grammar-constrained; our own bounded concurrency (``abatch_score`` has none) and a
per-sample timeout; failures kept per row with a reason (``@experiment.arun`` would drop
them) and NaN turned into a failure, never into an average.

Honesty: the embedded judge is a 135M-parameter model. It exercises the mechanics; its
scores are not trustworthy. :meth:`Judge.describe` says so and reports carry it.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import math
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from workbench.errors import BadRequest, PermissionDenied
from workbench.evals.cache import Cached, JudgeCache, cache_key
from workbench.evals.metrics import JudgeKit, MetricSpec, prompt_version, ragas_version, resolve
from workbench.evals.records import Kind, SampleRecord, Score, Status, clean_reason

if TYPE_CHECKING:
    import httpx

    from workbench.models.gateway import Gateway

JUDGE_TEAM = "evals"
EMBEDDED_WARNING = (
    "The judge is the embedded {model} model: good for learning the mechanics offline, "
    "not for trusting the scores. Switch the profile (e.g. WORKBENCH_PROFILE=openai) or "
    "pass --judge-model to judge with a strong model.")
T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, also inside a running loop (Jupyter, marimo):
    there it runs on a worker thread with its own loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1, thread_name_prefix="workbench-evals") as pool:
        # In the caller's context: its session / traffic marks reach the judge's spans.
        return pool.submit(contextvars.copy_context().run, asyncio.run, coro).result()


@dataclass
class _Usage:
    """Model calls made for one (sample, metric), counted from the proxy's responses."""

    trace_id: str
    calls: int = 0  # every model call: chat and embeddings
    embed_calls: int = 0
    prompt_tokens: int = 0  # the judge LLM's (embedding input is not prompt)
    completion_tokens: int = 0


_USAGE: contextvars.ContextVar[_Usage | None] = contextvars.ContextVar("wb_eval_usage",
                                                                      default=None)


async def _on_request(request: httpx.Request) -> None:
    usage = _USAGE.get()
    if usage is not None:
        # The proxy adopts a W3C trace id: every call for this (sample, metric) lands in
        # the ledger and the traces under the score's trace_id.
        request.headers["traceparent"] = f"00-{usage.trace_id}-{secrets.token_hex(8)}-01"


async def _on_response(response: httpx.Response) -> None:
    usage = _USAGE.get()
    if usage is None:
        return
    usage.calls += 1
    await response.aread()
    try:
        body = json.loads(response.content)
    except ValueError:
        return
    if response.request.url.path.endswith("/embeddings"):
        usage.embed_calls += 1
        return
    u = body.get("usage") if isinstance(body, dict) else None
    if isinstance(u, dict):
        usage.prompt_tokens += int(u.get("prompt_tokens") or 0)
        usage.completion_tokens += int(u.get("completion_tokens") or 0)


def fit_contexts(contexts: Sequence[str], total_chars: int | None) -> list[str]:
    """Trim contexts to ``total_chars`` together (an equal share each, cut at a word):
    a small judge's context window must hold the prompt, the contexts and the answer."""
    if total_chars is None or sum(len(c) for c in contexts) <= total_chars:
        return list(contexts)
    share = max(total_chars // max(len(contexts), 1), 80)
    out = []
    for c in contexts:
        if len(c) <= share:
            out.append(c)
        else:
            cut = c[:share].rsplit(" ", 1)[0]
            out.append(cut + " …")
    return out


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes, and the errors instructor collected per attempt."""
    seen: list[BaseException] = []
    stack = [exc]
    while stack:
        e = stack.pop()
        if e in seen:
            continue
        seen.append(e)
        for nxt in (e.__cause__, e.__context__):
            if nxt is not None:
                stack.append(nxt)
        for attempt in getattr(e, "failed_attempts", None) or []:
            inner = getattr(attempt, "exception", None)
            if isinstance(inner, BaseException):
                stack.append(inner)
    return seen


def classify(exc: BaseException, timeout_s: float) -> tuple[str, bool]:
    """(reason, deterministic). Deterministic failures repeat at temperature 0 and are
    cached; transient ones (timeouts, rate limits, upstream errors) are retried next run."""
    import openai

    chain = _chain(exc)
    for e in chain:
        if isinstance(e, TimeoutError | asyncio.TimeoutError):
            return f"timed out after {timeout_s:g}s (per-sample timeout)", False
        if isinstance(e, openai.APIStatusError):
            msg = e.message
            if isinstance(e.body, dict):
                msg = str((e.body.get("error") or e.body).get("message") or msg)
            transient = e.status_code in (408, 409, 429) or e.status_code >= 500
            return f"gateway {e.status_code}: {clean_reason(msg)}", not transient
        if isinstance(e, openai.APIConnectionError):
            return f"gateway unreachable: {clean_reason(str(e))}", False
    name = type(exc).__name__
    if name == "InstructorRetryException":
        n = getattr(exc, "n_attempts", "?")
        last = chain[-1] if len(chain) > 1 else exc
        return (f"judge output did not validate after {n} attempt(s): "
                f"{clean_reason(type(last).__name__ + ': ' + str(last))}"), True
    if name == "JudgeOutputInvalid":  # the workbench's own judge metrics
        return clean_reason(str(exc)), True
    if name == "IncompleteOutputException":
        return "judge output was cut off at max_tokens", True
    if isinstance(exc, ValueError):
        return f"invalid input for the metric: {clean_reason(str(exc))}", True
    return f"{name}: {clean_reason(str(exc))}", False


@dataclass
class _Session:
    """One event loop's client, ragas LLM/embeddings and metric instances."""

    metrics: dict[str, Any]
    versions: dict[str, str]
    semaphore: asyncio.Semaphore
    http: Any = None


@dataclass(repr=False)
class Judge:
    """Scores samples with ragas metrics, every model call through the Gateway.

    ``model``: the judge LLM (default: the profile's chat model). ``key``: an existing
    workbench key to judge as; default: a short-lived key of team ``evals`` created now
    and revoked by :meth:`close`. ``base_url``: a running gateway's ``/v1`` URL instead
    of the in-process proxy (then ``key`` is required).
    """

    gateway: Gateway
    model: str | None = None
    embed_model: str | None = None
    key: str | None = None
    base_url: str | None = None
    concurrency: int | None = None
    timeout_s: float = 300.0
    max_attempts: int = 2
    max_tokens: int | None = None
    temperature: float = 0.0
    cache: bool = True
    retry_failed: bool = False
    max_context_chars: int | None = -1  # -1: derived from the judge's context window
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    embedded: bool = field(init=False, default=False)
    _key_id: str | None = field(init=False, default=None)
    _secret: str | None = field(init=False, default=None)
    _owns_key: bool = field(init=False, default=False)
    _app: Any = field(init=False, default=None)
    _cache: JudgeCache | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
        settings = self.gateway.settings
        self.model = self.model or settings.default_chat_model
        self.embed_model = self.embed_model or settings.default_embed_model
        spec = self.gateway.spec(self.model)
        if spec.kind != "chat":
            raise BadRequest(f"judge model {self.model!r} is a {spec.kind} model; the judge "
                             "needs a chat model that can follow a JSON schema")
        self.gateway.spec(self.embed_model, kind="embedding")
        self.embedded = spec.provider == "embedded"
        if self.concurrency is None:
            # The embedded runtime serves one call at a time: more would only queue behind
            # its lock and eat into each sample's timeout.
            self.concurrency = 1 if self.embedded else 4
        if self.concurrency < 1:
            raise BadRequest("judge concurrency must be at least 1")
        if self.max_attempts < 1 or self.timeout_s <= 0:
            raise BadRequest("judge max_attempts must be >= 1 and timeout_s > 0")
        if self.max_tokens is None:
            self.max_tokens = min(spec.max_output_tokens, 1024)
        if self.max_context_chars == -1:
            window = spec.context_window
            self.max_context_chars = (None if window >= 8192
                                      else max(800, (window - self.max_tokens - 1400) * 3))
        if self.base_url and not self.key:
            raise BadRequest("a judge on a remote gateway (base_url) needs key=<workbench key>")
        self._secret = self.key
        self._cache = JudgeCache(self.gateway.store) if self.cache else None

    # -- identity ------------------------------------------------------------------------
    def _model_id(self, spec: MetricSpec) -> str:
        llm = f"{self.model}(t={self.temperature:g},max={self.max_tokens},json_schema)"
        return {"llm": llm, "llm+embeddings": f"{llm}+{self.embed_model}",
                "embeddings": str(self.embed_model), "none": "-"}[spec.calls]

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.model, "embed_model": self.embed_model,
            "provider": self.gateway.spec(self.model).provider, "embedded": self.embedded,
            "temperature": self.temperature, "max_tokens": self.max_tokens,
            "max_attempts": self.max_attempts, "timeout_s": self.timeout_s,
            "concurrency": self.concurrency, "max_context_chars": self.max_context_chars,
            "structured_output": "json_schema", "options": self.options,
            "key_id": self._key_id, "team": JUDGE_TEAM if self._owns_key else None,
            "ragas": ragas_version(),
            "warning": EMBEDDED_WARNING.format(model=self.model) if self.embedded else None,
        }

    def __repr__(self) -> str:
        return (f"Judge(model={self.model!r}, embed_model={self.embed_model!r}, "
                f"concurrency={self.concurrency}, timeout_s={self.timeout_s:g}, "
                f"cache={'on' if self._cache else 'off'})")

    # -- principal -----------------------------------------------------------------------
    def _ensure_key(self) -> str:
        if self._secret is None:
            self._key_id, self._secret = self.gateway.policy.create_key(
                team=JUDGE_TEAM, name="eval-judge", models=[str(self.model), str(self.embed_model)],
                expires_in_days=1, actor="evals")
            self._owns_key = True
        if self.base_url is None:
            principal = self.gateway.policy.authenticate(self._secret)
            self._key_id = principal.key_id
            for m in (self.model, self.embed_model):
                if m and not principal.may_use(m):
                    raise PermissionDenied(
                        f"the judge key {principal.label} (team {principal.team}) may not use "
                        f"{m!r}; allow it for team {principal.team} or pass another key")
        return self._secret

    def close(self) -> None:
        """Revoke the judge key this Judge created (an explicit ``key`` is left alone)."""
        if self._owns_key and self._key_id:
            self.gateway.policy.revoke_key(self._key_id, actor="evals")
            self._owns_key = False
        self._secret = self.key

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- session -------------------------------------------------------------------------
    def _transport(self) -> Any:
        import httpx

        if self.base_url:
            return None
        if self._app is None:
            from workbench.models.server import create_app

            self._app = create_app(self.gateway)
        return httpx.ASGITransport(app=self._app)

    def _instructions(self) -> dict[str, str]:
        """The judge prompts in force (registry ``production``, else built-in)."""
        from workbench import prompts

        names = (prompts.JUDGE_FAITHFULNESS, prompts.JUDGE_RELEVANCY)
        return {n: prompts.production(self.gateway.store, n).text() for n in names}

    @asynccontextmanager
    async def _session(self, specs: Sequence[MetricSpec]) -> AsyncIterator[_Session]:
        needs_model = [s for s in specs if s.uses_model]
        if not needs_model:
            yield _Session({s.name: s.build(None, self._opts(s)) for s in specs},
                           {s.name: "-" for s in specs}, asyncio.Semaphore(self.concurrency or 1))
            return
        import httpx
        from openai import AsyncOpenAI

        secret = self._ensure_key()
        base = self.base_url or "http://workbench-gateway/v1"
        http = httpx.AsyncClient(
            base_url=base, transport=self._transport(), timeout=self.timeout_s,
            event_hooks={"request": [_on_request], "response": [_on_response]})
        try:
            # max_retries=0: the Gateway already retries upstreams; SDK retries would hide
            # failures and double-count calls.
            client = AsyncOpenAI(base_url=base, api_key=secret, http_client=http, max_retries=0)
            kit = JudgeKit(client=client, model=str(self.model), embed_model=str(self.embed_model),
                           max_tokens=int(self.max_tokens or 256), temperature=self.temperature,
                           max_attempts=self.max_attempts, instructions=self._instructions())
            built = {s.name: s.build(kit, self._opts(s)) for s in specs}
            versions = {s.name: prompt_version(m) for s, m in zip(specs, built.values(), strict=True)}
            yield _Session(built, versions, asyncio.Semaphore(self.concurrency or 1), http)
        finally:
            await http.aclose()

    def _opts(self, spec: MetricSpec) -> dict[str, Any]:
        opts = {**spec.defaults, **self.options.get(spec.name, {})}
        unknown = sorted(set(opts) - set(spec.defaults))
        if unknown:
            raise BadRequest(f"metric {spec.name} has no option(s) {unknown}; it takes "
                             f"{sorted(spec.defaults) or 'none'}")
        return opts

    # -- scoring -------------------------------------------------------------------------
    def _inputs(self, spec: MetricSpec, rec: SampleRecord) -> dict[str, Any] | str:
        """The metric's ascore() arguments, or why the sample cannot be scored."""
        if rec.error is not None:
            return f"no answer to judge: the target failed ({rec.error})"
        row = rec.row()
        missing = [f for f in spec.needs
                   if row.get(f) is None or (isinstance(row.get(f), str) and not row[f].strip())
                   or (f == "contexts" and not row[f])]
        if missing:
            return f"needs {', '.join(missing)}, which this sample does not have"
        if "contexts" in spec.needs and spec.uses_model:
            row = {**row, "contexts": fit_contexts(row["contexts"], self.max_context_chars)}
        return spec.inputs(row)

    async def _run(self, session: _Session, spec: MetricSpec, inputs: dict[str, Any],
                   usage: _Usage) -> tuple[Status, float | None, str | None, bool]:
        """(status, value, reason, deterministic) of one metric call, with ``usage``
        collecting the model calls it made."""
        token = _USAGE.set(usage)
        try:
            result = await asyncio.wait_for(session.metrics[spec.name].ascore(**inputs),
                                            timeout=self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - recorded per row with its reason, never hidden
            reason, deterministic = classify(exc, self.timeout_s)
            return "failed", None, reason, deterministic
        finally:
            _USAGE.reset(token)
        value = float(result.value)
        if not math.isfinite(value):
            return "failed", None, ("the metric returned NaN: the judge produced nothing to "
                                    "score (no statements/claims/classifications)"), True
        why = getattr(result, "reason", None)
        return "ok", value, None if why is None else str(why), True

    async def _score_one(self, session: _Session, spec: MetricSpec, rec: SampleRecord) -> Score:
        kind: Kind = "metric" if spec.calls == "none" else "judge"
        inputs = self._inputs(spec, rec)
        if isinstance(inputs, str):
            return Score(rec.sample_id, spec.name, kind, "skipped", reason=inputs)
        version = session.versions[spec.name]
        key = cache_key(spec.name, version, self._model_id(spec), inputs)
        if self._cache is not None and spec.uses_model:
            hit = await asyncio.to_thread(self._cache.get, key, retry_failed=self.retry_failed)
            if hit is not None:
                return Score(rec.sample_id, spec.name, kind, "ok" if hit.status == "ok" else "failed",
                             value=hit.value, reason=hit.reason, cached=True,
                             saved_calls=hit.calls)
        from workbench.models.gateway import new_trace_id

        usage = _Usage(new_trace_id())
        async with session.semaphore:
            started = time.perf_counter()
            status, value, reason, deterministic = await self._run(session, spec, inputs, usage)
            latency = (time.perf_counter() - started) * 1000
        score = Score(rec.sample_id, spec.name, kind, status, value=value, reason=reason,
                      calls=usage.calls,
                      embed_calls=usage.embed_calls, prompt_tokens=usage.prompt_tokens,
                      completion_tokens=usage.completion_tokens, latency_ms=latency,
                      trace_id=usage.trace_id if usage.calls else None)
        if self._cache is not None and spec.uses_model and deterministic:
            await asyncio.to_thread(self._cache.put, key, metric=spec.name, prompt_version=version,
                                    model=self._model_id(spec), entry=Cached(
                                        status, score.value, score.reason, usage.calls,
                                        usage.prompt_tokens, usage.completion_tokens))
        return score

    async def ascore(self, records: Sequence[SampleRecord],
                     metrics: str | Sequence[str] | None = None,
                     progress: Callable[[str, int, int], None] | None = None) -> list[Score]:
        """Score every record with every metric. Never raises for a row: each
        (sample, metric) gets a Score, ``failed``/``skipped`` ones with a reason. Order is
        metric-major, which keeps the judge's prompt prefix warm between calls.
        ``progress(stage, done, total)`` is called after each score."""
        specs = resolve(metrics)
        total, done = len(specs) * len(records), 0

        async def one(spec: MetricSpec, rec: SampleRecord) -> Score:
            nonlocal done
            score = await self._score_one(session, spec, rec)
            done += 1
            if progress:
                progress("score", done, total)
            return score

        async with self._session(specs) as session:
            return list(await asyncio.gather(*[one(spec, rec) for spec in specs for rec in records]))

    def score(self, records: Sequence[SampleRecord], metrics: str | Sequence[str] | None = None,
              progress: Callable[[str, int, int], None] | None = None) -> list[Score]:
        return run_sync(self.ascore(records, metrics, progress))

    def score_one(self, question: str, answer: str, *, contexts: Sequence[str] = (),
                  reference: str | None = None,
                  metrics: str | Sequence[str] | None = None) -> dict[str, Score]:
        """Judge a single answer (notebooks, pytest): ``{metric: Score}``."""
        rec = SampleRecord("sample", question, answer, list(contexts), reference)
        return {s.metric: s for s in self.score([rec], metrics)}


def agreement(a: Mapping[str, float], b: Mapping[str, float], threshold: float = 0.5
              ) -> dict[str, float | int]:
    """How two judges agree on the same samples (``sample_id -> score``): pairs, mean
    absolute difference, and the share on the same side of ``threshold``."""
    common = sorted(set(a) & set(b))
    if not common:
        return {"n": 0, "mae": float("nan"), "agree": float("nan")}
    diffs = [abs(a[k] - b[k]) for k in common]
    same = [(a[k] >= threshold) == (b[k] >= threshold) for k in common]
    return {"n": len(common), "mae": sum(diffs) / len(diffs), "agree": sum(same) / len(same)}


__all__ = ["EMBEDDED_WARNING", "JUDGE_TEAM", "Judge", "agreement", "classify", "fit_contexts",
           "run_sync"]
