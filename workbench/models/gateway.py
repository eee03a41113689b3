"""The Gateway: every model call goes policy -> guardrails -> cache -> rate limit ->
budget reservation -> provider (retries, fallbacks) -> settle + ledger.

A ``Gateway`` is bound to one principal: the local owner (no key, the notebook/CLI
default) or a key (``connect(key=...)`` / ``gateway.as_key(...)``). :meth:`Gateway.bind`
makes such views (the HTTP apps make one per request: principal, trace, token sink).
Every call emits call events to the Gateway's subscribers (:mod:`workbench.models.hooks`);
the default subscriber traces it (:mod:`workbench.models.call_spans`). Async methods run
the sync path in a worker thread: the embedded runtime is CPU-bound and the ledger writes
are short transactions.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, delete, insert, select

from workbench.config import ModelSpec, Settings, load_settings
from workbench.errors import BadRequest, ModelNotFound, UpstreamError, WorkbenchError
from workbench.guardrails import Guardrails
from workbench.models import audit as audit_log
from workbench.models import ledger as ledger_mod
from workbench.models import metering
from workbench.models import tools as tool_gov
from workbench.models.call_spans import call_spans
from workbench.models.hooks import CallEvents, CallStart, Subscriber
from workbench.models.overhead import timed_iter, upstream_timer
from workbench.models.policy import Policy, Principal, Reservation
from workbench.models.principal_cache import StalePrincipal
from workbench.models.providers import OpenAICompatibleProvider, Provider
from workbench.models.redaction import ChunkRedactor, redact_request, redact_response
from workbench.models.types import ChatRequest, ChatResult, EmbeddingRequest, EmbeddingResult
from workbench.observability.trace_context import new_trace_id
from workbench.store import Store, response_cache

log = logging.getLogger("workbench.gateway")

Messages = str | list[dict[str, Any]] | dict[str, Any] | ChatRequest
TokenSink = Callable[[str], None]
# Usage corrections worth an audit row (usage_missing alone is only flagged in the ledger).
AUDITED_ANOMALIES = frozenset({"usage_invalid", "usage_clamped", "charge_above_reservation",
                               "reservation_swept"})
# A call whose key or team changed under it starts again with the fresh principal; only
# a key edited this many times during one call's first transaction gives up.
_STALE_RETRIES = 5


def _message_text(msg: Any) -> str:
    """The text of one message dict: its string content, or its text parts joined."""
    content = msg.get("content") if isinstance(msg, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content
                       if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def validation_message(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
        for err in exc.errors()
    )


@dataclass
class _Prepared:
    """Everything decided before a provider is called."""

    req: ChatRequest
    body: dict[str, Any]
    chain: list[ModelSpec]
    reservation: Reservation
    redactions: dict[str, int]
    trace_id: str
    started: float
    cache_key: str | None = None
    tokens_est: int = 0
    tokens_worst: int = 0


@dataclass
class StreamResult:
    """Iterate for OpenAI chunks; ``result`` is filled when the stream ends."""

    trace_id: str
    _chunks: Iterator[dict[str, Any]]
    result: ChatResult | None = field(default=None)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self._chunks

    def text(self) -> Iterator[str]:
        for chunk in self._chunks:
            for choice in chunk.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    yield piece

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close:
            close()


def _content_of(chunk: dict[str, Any]) -> list[str]:
    """The content text pieces of a streamed chunk (what the caller was shown)."""
    return [text for choice in chunk.get("choices") or [] if isinstance(choice, dict)
            and isinstance(choice.get("delta"), dict)
            for text in [choice["delta"].get("content")] if isinstance(text, str) and text]


class _UnstartedGuard(Iterator[dict[str, Any]]):
    """Wraps a stream generator so that closing it before the first ``next`` still runs
    cleanup (Python skips a generator's ``finally`` if it never started)."""

    def __init__(self, gen: Generator[dict[str, Any], None, None],
                 on_unstarted_close: Callable[[], None]):
        self._gen = gen
        self._started = False
        self._on_unstarted_close = on_unstarted_close

    def __next__(self) -> dict[str, Any]:
        self._started = True
        return next(self._gen)

    def close(self) -> None:
        self._gen.close()
        if not self._started:
            self._started = True  # once
            self._on_unstarted_close()


class _ClientGone(Exception):
    """A stream closed by its reader before the end (the error its call reports)."""

    code = "client_disconnected"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class _ObservedChunks(Iterator[dict[str, Any]]):
    """A stream as its call's observers see it: each step runs in their scope (the LLM
    span is current while the provider works, though the caller iterates outside the
    call); the first chunk with content, the result, an error and the end are reported."""

    def __init__(self, events: CallEvents, holder: StreamResult,
                 inner: Iterator[dict[str, Any]]):
        self._events = events
        self._holder = holder
        self._inner = inner
        self._first = False

    def __next__(self) -> dict[str, Any]:
        events = self._events
        chunk: dict[str, Any] | None = None
        with events.scope():  # an exception is reported as the call's error
            chunk = next(self._inner, None)
        if chunk is None:
            if self._holder.result is not None:
                events.result(self._holder.result)
            events.end()
            raise StopIteration
        if not self._first and any((c.get("delta") or {}).get("content")
                                   for c in chunk.get("choices") or []):
            self._first = True
            events.first_token()
        return chunk

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close:
            close()
        if not self._events.ended:
            self._events.error(_ClientGone("stream closed before the end"))
            self._events.end()

    def __del__(self) -> None:
        # A stream that is dropped unread still ends its call (and is marked so).
        if not self._events.ended:
            self.close()


class Gateway:
    """Governed model access. Create with :func:`workbench.connect`.

    ``hooks``: the call subscribers (:mod:`workbench.models.hooks`); default: tracing
    only. ``guardrails``: the redaction policy; default: the one the settings describe
    (default recognizers plus ``redaction_patterns``)."""

    _bound_trace_id: str | None = None
    _on_token: TokenSink | None = None

    def __init__(self, settings: Settings | None = None, *, store: Store | None = None,
                 providers: dict[str, Provider] | None = None,
                 guardrails: Guardrails | None = None, principal: Principal | None = None,
                 hooks: Sequence[Subscriber] | None = None):
        self.settings = settings or load_settings()
        self.store = store or Store(self.settings.resolved_store_url)
        self.policy = Policy(self.store)
        self.guardrails = guardrails or self.settings.redaction_policy()
        self.hooks: list[Subscriber] = list(hooks) if hooks is not None else [call_spans]
        self._providers: dict[str, Provider] = dict(providers or {})
        self._specs = self.settings.model_specs()
        self.principal = principal or self.policy.local_principal(cache=self.settings.cache)

    # -- binding -------------------------------------------------------------------------
    def bind(self, *, principal: Principal | None = None, trace_id: str | None = None,
             on_token: TokenSink | None = None) -> Gateway:
        """A view of this Gateway that shares its settings, store, policy, providers,
        guardrails and hooks, and differs in what is given:

        - ``principal``: act as this principal (its allowlist, budget, limits, mode);
        - ``trace_id``: every call joins this trace, whatever trace id it is given;
        - ``on_token``: chat calls stream, and each piece of answer text goes to
          ``on_token`` as it is generated (structured output, ``response_format``, is
          still answered in one piece). The call returns the whole result as usual.
        """
        view = copy.copy(self)
        if principal is not None:
            view.principal = principal
        if trace_id is not None:
            view._bound_trace_id = trace_id
        if on_token is not None:
            view._on_token = on_token
        return view

    def as_key(self, key: str) -> Gateway:
        """A view of this gateway that acts as the principal owning ``key``."""
        return self.bind(principal=self.policy.authenticate(key))

    def as_cached_key(self, key: str) -> Gateway | None:
        """Like :meth:`as_key` without reading the store, when this process has read the
        key before; None otherwise. For one governed call (chat, stream, embed): it checks
        inside its first transaction that the key and team did not change since, and
        starts again with the fresh principal (or raises AuthError) if they did."""
        principal = self.policy.authenticate_cached(key)
        return self.bind(principal=principal) if principal is not None else None

    # -- models and providers ------------------------------------------------------------
    def models(self) -> list[ModelSpec]:
        return [s for s in self._specs.values() if self.principal.may_use(s.name)]

    def spec(self, name: str | None, kind: str = "chat") -> ModelSpec:
        if name is None:
            name = (self.settings.default_embed_model if kind == "embedding"
                    else self.settings.default_chat_model)
        spec = self._specs.get(name)
        if spec is None:
            raise ModelNotFound(f"unknown model {name!r}; available: "
                                f"{', '.join(sorted(self._specs))}")
        wanted = ("embedding",) if kind == "embedding" else ("chat", "completion")
        if spec.kind not in wanted:
            raise BadRequest(f"model {name!r} is a {spec.kind} model; it cannot serve "
                             f"{'embeddings' if kind == 'embedding' else 'chat completions'}")
        return spec

    def provider(self, name: str) -> Provider:
        if name not in self._providers:
            if name == "embedded":
                from workbench.models.embedded import EmbeddedProvider

                self._providers[name] = EmbeddedProvider(Path(self.settings.data_dir),
                                                         n_threads=self.settings.n_threads)
            else:
                profiles = self.settings.all_profiles()
                if name not in profiles:
                    raise ModelNotFound(f"no provider named {name!r}")
                prof = (self.settings.active_profile() if name == self.settings.profile
                        else profiles[name])
                self._providers[name] = OpenAICompatibleProvider(
                    name, prof, timeout_s=self.settings.request_timeout_s,
                    max_retries=self.settings.max_retries,
                    backoff_s=self.settings.retry_backoff_s)
        return self._providers[name]

    # -- helpers -------------------------------------------------------------------------
    @property
    def guardrail_mode(self) -> str:
        """The guardrail mode that applies: the principal's, else the settings'."""
        return self.principal.guardrail_mode or self.settings.guardrail_mode

    def _events(self, operation: str, trace_id: str | None, model: str | None,
                inputs: str | list[str] | None = None) -> CallEvents:
        """Start a call: its subscribers' observers, and its trace id."""
        start = CallStart(self, operation, self._bound_trace_id or trace_id, model, inputs)
        return CallEvents.start(self.hooks, start, new_trace_id)

    def _estimate_tokens(self, spec: ModelSpec, body: dict[str, Any]) -> tuple[int, int]:
        """(expected, worst case) prompt tokens of a chat body. Worst case (budget
        reservations): the bytes of everything that carries prompt text, plus fixed
        counts per image and per message (``metering.prompt_size``). Expected (tpm at the
        start of a call): the provider's exact count of the message text when it has
        one, else ~4 bytes per token; corrected to the actual count after the call."""
        size = metering.prompt_size(body)
        provider = self._providers.get(spec.provider)
        # A provider whose chat template adds text of its own (a default system turn)
        # says how much: the worst case must bound what the model really reads.
        template = getattr(provider, "template_tokens", None)
        worst = size.worst_tokens + (template(spec) if template else 0)
        counter = getattr(provider, "count_prompt_tokens", None)
        if counter:
            text = "\n".join(_message_text(m) for m in body.get("messages") or ())
            exact = counter(spec, text)
            if exact is not None:
                return (exact + 4 * size.messages
                        + size.images * metering.IMAGE_EXPECTED_TOKENS), worst
        return size.expected_tokens, worst

    def _ledger(self, endpoint: str, outcome: str, *, spec: ModelSpec | None = None,
                error: WorkbenchError | None = None, trace_id: str, started: float,
                redactions: int = 0, tokens_in: int = 0, tokens_out: int = 0,
                cost_usd: float = 0.0, release: Reservation | None = None,
                tokens_delta: int = 0) -> None:
        """One ledger row, in one write transaction with what else ends the call: the
        settlement of ``release`` to ``cost_usd`` and a tpm correction of
        ``tokens_delta``."""
        entry = ledger_mod.Entry(
            endpoint=endpoint, outcome=outcome, key_id=self.principal.key_id,
            team=self.principal.team, model=spec.name if spec else None,
            provider=spec.provider if spec else None, tokens_in=tokens_in,
            tokens_out=tokens_out, cost_usd=cost_usd,
            latency_ms=(time.perf_counter() - started) * 1000,
            error_code=error.code if error else None, redactions=redactions,
            trace_id=trace_id)
        with self.store.write() as conn:
            # Lock order as in govern(): rate windows, then keys and teams.
            self.policy.add_tokens(self.principal, tokens_delta, conn)
            if release is not None:
                self.policy.settle(release, cost_usd, conn)
            ledger_mod.record(conn, entry)

    def _restarted(self, call: Callable[[], Any]) -> Any:
        """Run ``call``; if keys or teams changed since this view's principal was read
        (:class:`StalePrincipal`, raised before anything was written), re-read the
        principal (AuthError if revoked) and run it again."""
        for _attempt in range(_STALE_RETRIES):
            try:
                return call()
            except StalePrincipal:
                self.principal = self.policy.refresh(self.principal)
        raise WorkbenchError("the key's settings kept changing during this request; retry",
                             code="key_changing", status=503)

    @staticmethod
    def _to_request(messages: Messages, params: dict[str, Any]) -> ChatRequest:
        try:
            if isinstance(messages, ChatRequest):
                # None means "not given" here too: model=None must not erase req.model.
                updates = {k: v for k, v in params.items() if v is not None}
                return messages.model_copy(update=updates) if updates else messages
            if isinstance(messages, str):
                data: dict[str, Any] = {"messages": [{"role": "user", "content": messages}]}
            elif isinstance(messages, dict):
                data = dict(messages)
            else:
                data = {"messages": list(messages)}
            data.update({k: v for k, v in params.items() if v is not None})
            return ChatRequest.model_validate(data)
        except ValidationError as exc:
            raise BadRequest(f"invalid chat request: {validation_message(exc)}") from None

    def _cache_key(self, spec: ModelSpec, body: dict[str, Any]) -> str:
        norm = {k: v for k, v in body.items() if k not in ("stream", "user", "stream_options")}
        norm["model"] = spec.name
        blob = json.dumps(norm, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    # -- chat ----------------------------------------------------------------------------
    def _prepare(self, req: ChatRequest, trace_id: str, started: float,
                 events: CallEvents) -> _Prepared:
        spec = self.spec(req.model)
        self.policy.check_model(self.principal, spec.name)
        tool_gov.check_request(self, req.model_extra or {}, trace_id, spec.name)

        # Every string that leaves for the provider is masked, not only message content:
        # tool calls, tools, name, stop, response_format, user, image URLs, unknown fields.
        body, redactions = redact_request(self.guardrails, req.upstream_body(spec.upstream_name),
                                          self.guardrail_mode)

        limit = req.token_limit or min(self.settings.default_max_tokens, spec.max_output_tokens)
        if limit > spec.max_output_tokens and spec.provider == "embedded":
            raise BadRequest(f"max_tokens {limit} exceeds {spec.name}'s limit of "
                             f"{spec.max_output_tokens}")
        body.pop("max_completion_tokens", None)
        body["max_tokens"] = limit

        chain = [spec] + [self._specs[m] for m in self.settings.fallbacks.get(spec.name, [])
                          if m in self._specs and self.principal.may_use(m)]
        expected, worst = self._estimate_tokens(spec, body)
        events.request(body, spec.provider)  # the redacted body (traced on the call's span)
        return _Prepared(req=req, body=body, chain=chain, redactions=redactions,
                         reservation=Reservation("", None, None, 0.0, settled=True),
                         trace_id=trace_id, started=started, tokens_est=expected,
                         tokens_worst=worst,
                         cache_key=self._cache_key(spec, body) if self.principal.cache else None)

    def _govern(self, prep: _Prepared) -> None:
        """Rate limit, then reserve the worst-case cost over the fallback chain."""
        worst = max(s.cost(prep.tokens_worst, prep.body["max_tokens"]) for s in prep.chain)
        prep.reservation = self.policy.govern(self.principal, prep.tokens_est, worst)

    def _mask_output(self, resp: dict[str, Any]) -> None:
        if not self.settings.output_guardrails or self.guardrail_mode == "off":
            return
        redact_response(self.guardrails, resp)  # content, tool-call arguments, every string

    def _settle_call(self, conn: Connection, reservation: Reservation, spec: ModelSpec,
                     usage: metering.Usage, *, endpoint: str, trace_id: str
                     ) -> tuple[float, str | None]:
        """Settle a call's reservation from validated usage, inside the caller's write
        transaction; returns (USD charged, ledger anomaly codes). The charge never exceeds
        the reservation: an upstream that reports more than the worst case (it ignored
        max_tokens, or lies) is flagged ``charge_above_reservation`` and audited with
        the cost it reported, so the budget still holds."""
        reported = spec.cost(usage.prompt_tokens, usage.completion_tokens)
        anomalies = list(usage.anomalies)
        charged = reported
        if reported > reservation.amount_usd * (1 + 1e-9) + 1e-12:
            anomalies.append("charge_above_reservation")
            charged = reservation.amount_usd
        if not self.policy.settle(reservation, charged, conn):
            anomalies.append("reservation_swept")
        if AUDITED_ANOMALIES.intersection(anomalies):
            audit_log.append(self.store, conn, actor="gateway", action="usage.anomaly",
                             target=self.principal.label, details={
                                 "anomalies": anomalies, "endpoint": endpoint,
                                 "model": spec.name, "team": self.principal.team,
                                 "trace_id": trace_id, "prompt_tokens": usage.prompt_tokens,
                                 "completion_tokens": usage.completion_tokens,
                                 "reserved_usd": reservation.amount_usd,
                                 "reported_usd": reported, "charged_usd": charged})
        return charged, ",".join(anomalies) or None

    def _finish(self, prep: _Prepared, spec: ModelSpec, resp: dict[str, Any],
                outcome: str = "ok", completion_fallback: int | None = None) -> ChatResult:
        tool_gov.on_answer(self, prep.body, resp, trace_id=prep.trace_id, model=spec.name)
        if outcome == "cached":
            usage = metering.Usage(0, 0)
        else:
            usage = metering.read_usage(
                resp.get("usage"), prompt_fallback=prep.tokens_est,
                completion_fallback=(metering.answer_tokens_estimate(resp)
                                     if completion_fallback is None else completion_fallback))
        t_in, t_out = usage.prompt_tokens, usage.completion_tokens
        if usage.anomalies:
            # Callers, spans and the cache see the counts that were charged, not the lie.
            resp["usage"] = {"prompt_tokens": t_in, "completion_tokens": t_out,
                             "total_tokens": t_in + t_out}
        latency = (time.perf_counter() - prep.started) * 1000
        with self.store.write() as conn:
            cost, anomaly = 0.0, None
            if outcome != "cached":
                # Rate windows first, then keys and teams: the order the first transaction
                # takes its row locks in (two orders would deadlock on Postgres).
                # tpm counted the expected prompt when the call started: correct to actual.
                self.policy.add_tokens(self.principal, t_in + t_out - prep.tokens_est, conn)
                cost, anomaly = self._settle_call(conn, prep.reservation, spec, usage,
                                                  endpoint="chat", trace_id=prep.trace_id)
            ledger_mod.record(conn, ledger_mod.Entry(
                endpoint="chat", outcome=outcome, key_id=self.principal.key_id,
                team=self.principal.team, model=spec.name, provider=spec.provider,
                tokens_in=t_in, tokens_out=t_out, cost_usd=cost, latency_ms=latency,
                redactions=sum(prep.redactions.values()), trace_id=prep.trace_id,
                anomaly=anomaly))
            if prep.cache_key and outcome == "ok":
                conn.execute(delete(response_cache).where(response_cache.c.key == prep.cache_key))
                conn.execute(insert(response_cache).values(
                    key=prep.cache_key, model=spec.name, response=resp, created_at=time.time()))
        return ChatResult(response=resp, trace_id=prep.trace_id, model=spec.name,
                          cost_usd=cost, latency_ms=latency, cached=outcome == "cached",
                          redactions=prep.redactions,
                          fallback_from=prep.chain[0].name if spec is not prep.chain[0] else None)

    def _fail(self, prep: _Prepared | None, err: WorkbenchError, outcome: str,
              spec: ModelSpec | None, trace_id: str, started: float,
              endpoint: str = "chat") -> None:
        self._ledger(endpoint, outcome, spec=spec, error=err, trace_id=trace_id,
                     started=started, release=prep.reservation if prep else None,
                     redactions=sum(prep.redactions.values()) if prep else 0)

    @contextmanager
    def _released_on_failure(self, reservation: Reservation, spec: ModelSpec, trace_id: str,
                             started: float, *, endpoint: str = "chat",
                             redactions: int = 0) -> Iterator[None]:
        """Whatever escapes a governed call after its reservation (a bug, a malformed
        answer we did not foresee, a dropped store connection) still releases it and
        leaves an error row; the exception propagates unchanged."""
        try:
            yield
        except BaseException as exc:
            # A WorkbenchError was ledgered where it was raised unless it left the
            # reservation open; anything else (a bug) was not ledgered at all.
            if not reservation.settled or not isinstance(exc, WorkbenchError):
                err = exc if isinstance(exc, WorkbenchError) else WorkbenchError(
                    f"internal error ({type(exc).__name__})", code="internal_error")
                self._ledger(endpoint, "error", spec=spec, error=err, trace_id=trace_id,
                             started=started, redactions=redactions, release=reservation)
            raise

    def _guard(self, prep: _Prepared) -> Any:
        return self._released_on_failure(prep.reservation, prep.chain[0], prep.trace_id,
                                          prep.started, redactions=sum(prep.redactions.values()))

    def _cached(self, prep: _Prepared) -> dict[str, Any] | None:
        if not prep.cache_key:
            return None
        with self.store.read() as conn:
            self.policy._verify(conn, self.principal)  # an answer is not served to a revoked key
            row = conn.execute(select(response_cache.c.response).where(
                response_cache.c.key == prep.cache_key)).first()
        return dict(row[0]) if row else None

    def chat(self, messages: Messages, *, model: str | None = None,
             trace_id: str | None = None, **params: Any) -> ChatResult:
        """One governed chat completion. ``messages``: a string, OpenAI messages, or a
        full request dict; extra keyword arguments are request fields (max_tokens, …).
        Traced as an LLM span whose trace id is the result's ``trace_id``: the one passed,
        else the active span's (e.g. a RAG chain span), else a new one."""
        if self._on_token is not None and params.get("response_format") is None:
            return self._chat_to_sink(self._on_token, messages, model=model,
                                      trace_id=trace_id, **params)
        events = self._events("chat", trace_id, model)
        try:
            with events.scope():
                result = self._restarted(lambda: self._chat(
                    events, messages, model=model, trace_id=events.trace_id, **params))
                events.result(result)
                return result
        finally:
            events.end()

    def _chat_to_sink(self, on_token: TokenSink, messages: Messages, *, model: str | None,
                      trace_id: str | None, **params: Any) -> ChatResult:
        """A chat call streamed to ``on_token`` (see :meth:`bind`); a stream cut short
        (``on_token`` raised) is closed, which settles its reservation and ends its span."""
        stream = self.stream(messages, model=model, trace_id=trace_id, **params)
        try:
            for piece in stream.text():
                on_token(piece)
        finally:
            stream.close()  # a no-op after the last chunk
        if stream.result is None:
            raise UpstreamError("the model's stream ended without a result")
        return stream.result

    def _chat(self, events: CallEvents, messages: Messages, *, model: str | None = None,
              trace_id: str | None = None, **params: Any) -> ChatResult:
        started = time.perf_counter()
        trace_id = trace_id or new_trace_id()
        prep: _Prepared | None = None
        spec: ModelSpec | None = None
        try:
            req = self._to_request(messages, {"model": model, **params, "stream": False})
            spec = self.spec(req.model)  # resolved first so a denial is ledgered per model
            prep = self._prepare(req, trace_id, started, events)
            spec = prep.chain[0]
            hit = self._cached(prep)
            if hit is not None:
                return self._finish(prep, spec, hit, outcome="cached")
            self._govern(prep)
        except WorkbenchError as err:
            self.policy.verify(self.principal)  # denied by a stale allowlist? start again
            self._fail(prep, err, "denied", spec, trace_id, started)
            raise
        with self._guard(prep):
            last: WorkbenchError | None = None
            for candidate in prep.chain:
                try:
                    with upstream_timer():
                        resp = self.provider(candidate.provider).chat(
                            {**prep.body, "model": candidate.upstream_name}, candidate)
                    metering.check_chat_response(resp, candidate.provider)
                except UpstreamError as err:
                    log.warning("model %s failed (%s); %s", candidate.name, err.code,
                                "trying fallback" if candidate is not prep.chain[-1]
                                else "giving up")
                    last = err
                    continue
                except WorkbenchError as err:
                    self._fail(prep, err, "error", candidate, trace_id, started)
                    raise
                self._mask_output(resp)
                return self._finish(prep, candidate, resp)
            assert last is not None
            self._fail(prep, last, "error", prep.chain[-1], trace_id, started)
            raise last

    def stream(self, messages: Messages, *, model: str | None = None,
               trace_id: str | None = None, **params: Any) -> StreamResult:
        """A governed streaming chat completion. Governance errors raise here, before the
        first chunk; the reservation is settled when the stream ends or is closed. The LLM
        span stays open until then and records the time to first token."""
        events = self._events("stream", trace_id, model)
        with events.scope():  # an error before the first chunk ends the call here
            holder = self._restarted(lambda: self._stream(
                events, messages, model=model, trace_id=events.trace_id, **params))
        holder._chunks = _ObservedChunks(events, holder, holder._chunks)
        return holder

    def _stream(self, events: CallEvents, messages: Messages, *, model: str | None = None,
                trace_id: str | None = None, **params: Any) -> StreamResult:
        started = time.perf_counter()
        trace_id = trace_id or new_trace_id()
        prep: _Prepared | None = None
        spec: ModelSpec | None = None
        try:
            req = self._to_request(messages, {"model": model, **params, "stream": True})
            spec = self.spec(req.model)
            prep = self._prepare(req, trace_id, started, events)
            spec = prep.chain[0]
            self._govern(prep)
        except WorkbenchError as err:
            self.policy.verify(self.principal)  # denied by a stale allowlist? start again
            self._fail(prep, err, "denied", spec, trace_id, started)
            raise
        holder = StreamResult(trace_id=trace_id, _chunks=iter(()))
        holder._chunks = _UnstartedGuard(self._stream_chunks(prep, holder),
                                         lambda: self._abandon(prep))
        return holder

    def _abandon(self, prep: _Prepared) -> None:
        """A stream closed or dropped before its first chunk: its generator's ``finally``
        never runs, so release the reservation here (nothing was generated)."""
        if prep.reservation.settled:
            return
        self._ledger("chat", "error", spec=prep.chain[0], trace_id=prep.trace_id,
                     started=prep.started, release=prep.reservation, error=WorkbenchError(
                         "stream closed before it started", code="client_disconnected"))

    def _stream_chunks(self, prep: _Prepared, holder: StreamResult) -> Generator[dict[str, Any], None, None]:
        spec = prep.chain[0]
        pieces: list[str] = []  # raw content pieces: one per generated token
        shown: list[str] = []  # what the caller saw (masked)
        usage: dict[str, Any] = {}
        finish: str | None = None
        done = False
        # Every string field of every delta (content, tool-call arguments, ...) is masked
        # by its own stream redactor, so a value split across fragments is seen whole.
        redactor = (ChunkRedactor(self.guardrails)
                    if self.settings.output_guardrails and self.guardrail_mode != "off" else None)
        failure: WorkbenchError | None = None
        tools = tool_gov.StreamGuard(self, prep.trace_id)
        try:
            for raw in tools.filter(timed_iter(
                    self.provider(spec.provider).stream(prep.body, spec))):
                metering.check_chunk(raw, spec.provider)
                if raw.get("usage"):
                    usage = raw["usage"]
                for choice in raw.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        pieces.append(piece)
                    finish = choice.get("finish_reason") or finish
                chunk = redactor.redact(raw) if redactor is not None else raw
                if chunk is None:
                    continue  # held back entirely by the redactor: not sent empty
                shown.extend(_content_of(chunk))
                yield chunk
            for chunk in redactor.finish({"id": "chatcmpl-" + prep.trace_id,
                                          "object": "chat.completion.chunk",
                                          "model": spec.name}) if redactor else []:
                shown.extend(_content_of(chunk))
                yield chunk
            done = True
        except WorkbenchError as err:
            failure = err
            raise
        except Exception as exc:  # a bug: recorded as one, and re-raised
            failure = WorkbenchError(f"internal error ({type(exc).__name__})",
                                     code="internal_error")
            raise
        finally:
            if not done:  # settle is idempotent; the ledger row is written once, here
                self._settle_broken_stream(prep, spec, len(pieces), failure)
        resp = {"id": "chatcmpl-" + prep.trace_id, "object": "chat.completion",
                "model": spec.name, "usage": usage or None,
                "choices": [{"index": 0, "finish_reason": finish,
                             "message": {"role": "assistant", "content": "".join(shown)}}]}
        tools.attach(resp)
        with self._guard(prep):
            holder.result = self._finish(prep, spec, resp, completion_fallback=len(pieces))

    def _settle_broken_stream(self, prep: _Prepared, spec: ModelSpec, n_out: int,
                              failure: WorkbenchError | None) -> None:
        """A stream that ended early. The client went away (``failure`` None): it pays
        the prompt and what was generated. The upstream failed: it pays the prompt and
        the tokens it received if any, else nothing. Never more than the reservation."""
        if failure is None or n_out:
            t_in = prep.tokens_est
            cost = min(spec.cost(t_in, n_out), prep.reservation.amount_usd)
        else:
            t_in, cost = 0, 0.0
        err = failure or WorkbenchError("client disconnected", code="client_disconnected")
        # The ledger carries the charge too, so usage reports match the budget.
        self._ledger("chat", "error", spec=spec, trace_id=prep.trace_id,
                     started=prep.started, tokens_in=t_in, tokens_out=n_out,
                     cost_usd=cost, error=err, redactions=sum(prep.redactions.values()),
                     release=prep.reservation, tokens_delta=t_in + n_out - prep.tokens_est)

    # -- embeddings ----------------------------------------------------------------------
    def embed(self, texts: str | list[str], *, model: str | None = None,
              trace_id: str | None = None) -> EmbeddingResult:
        """Governed embeddings, traced as an EMBEDDING span (texts masked, no vectors)."""
        events = self._events("embed", trace_id, model, inputs=texts)
        try:
            with events.scope():
                result = self._restarted(lambda: self._embed(
                    texts, model=model, trace_id=events.trace_id))
                events.result(result)
                return result
        finally:
            events.end()

    def _embed(self, texts: str | list[str], *, model: str | None = None,
               trace_id: str | None = None) -> EmbeddingResult:
        started = time.perf_counter()
        trace_id = trace_id or new_trace_id()
        spec: ModelSpec | None = None
        reservation: Reservation | None = None
        redactions = 0
        try:
            try:
                req = EmbeddingRequest.model_validate({"model": model, "input": texts})
            except ValidationError as exc:
                raise BadRequest(f"invalid embeddings request: {validation_message(exc)}") from None
            spec = self.spec(req.model, kind="embedding")
            self.policy.check_model(self.principal, spec.name)
            inputs = req.texts
            if spec.provider != "embedded":
                # Text only leaves the machine for remote providers; mask it first.
                masked = [self.guardrails.apply(t, self.guardrail_mode) for t in inputs]
                inputs = [r.text for r in masked]
                redactions = sum(len(r.findings) for r in masked)
            # Inputs are plain strings (token-id arrays are refused by EmbeddingRequest),
            # so their bytes bound their tokens.
            worst = metering.texts_worst_tokens(inputs)
            expected = -(-worst // 4)
            reservation = self.policy.govern(self.principal, expected, spec.cost(worst, 0))
        except WorkbenchError as err:
            self.policy.verify(self.principal)
            self._ledger("embeddings", "denied", spec=spec, error=err, trace_id=trace_id,
                         started=started)
            raise
        with self._released_on_failure(reservation, spec, trace_id, started,
                                       endpoint="embeddings", redactions=redactions):
            try:
                with upstream_timer():
                    resp = self.provider(spec.provider).embed(inputs, spec)
                metering.check_embeddings(resp, len(inputs), spec.provider)
            except WorkbenchError as err:
                self._ledger("embeddings", "error", spec=spec, error=err, trace_id=trace_id,
                             started=started, redactions=redactions, release=reservation)
                raise
            usage = metering.read_usage(resp.get("usage"), prompt_fallback=expected,
                                        completion=False)
            if usage.anomalies:
                resp["usage"] = {"prompt_tokens": usage.prompt_tokens,
                                 "total_tokens": usage.prompt_tokens}
            latency = (time.perf_counter() - started) * 1000
            with self.store.write() as conn:
                # Lock order as in govern(): rate windows, then keys and teams.
                self.policy.add_tokens(self.principal, usage.prompt_tokens - expected, conn)
                cost, anomaly = self._settle_call(conn, reservation, spec, usage,
                                                  endpoint="embeddings", trace_id=trace_id)
                ledger_mod.record(conn, ledger_mod.Entry(
                    endpoint="embeddings", outcome="ok", key_id=self.principal.key_id,
                    team=self.principal.team, model=spec.name, provider=spec.provider,
                    tokens_in=usage.prompt_tokens, cost_usd=cost, latency_ms=latency,
                    redactions=redactions, trace_id=trace_id, anomaly=anomaly))
        return EmbeddingResult(response=resp, trace_id=trace_id, model=spec.name,
                               cost_usd=cost, latency_ms=latency)

    # -- async ---------------------------------------------------------------------------
    async def achat(self, messages: Messages, **kw: Any) -> ChatResult:
        return await asyncio.to_thread(self.chat, messages, **kw)

    async def aembed(self, texts: str | list[str], **kw: Any) -> EmbeddingResult:
        return await asyncio.to_thread(self.embed, texts, **kw)

    # -- reporting -----------------------------------------------------------------------
    def usage(self, by: tuple[str, ...] = ("team", "key", "model"),
              since: float | None = None) -> list[dict[str, Any]]:
        return ledger_mod.usage(self.store, by=by, since=since)

    def ready(self) -> dict[str, str]:
        """Checks for /readyz and doctor: the store and the default model's provider."""
        out: dict[str, str] = {}
        try:
            self.store.schema_versions()
            out["store"] = "ok"
        except Exception as exc:  # noqa: BLE001 - readiness reports any failure as text
            out["store"] = f"error: {type(exc).__name__}"
        try:
            self.provider(self.spec(None).provider).ping()
            out["provider"] = "ok"
        except WorkbenchError as exc:
            out["provider"] = f"error: {exc.message}"
        return out

    def close(self) -> None:
        for p in self._providers.values():
            close = getattr(p, "close", None)
            if close:
                close()
        from workbench.observability.traces import flush

        flush(self.store, 3.0)  # spans of the last calls, before the pool goes (bounded)
        self.store.dispose()

    def __repr__(self) -> str:
        return (f"Gateway(profile={self.settings.profile!r}, principal={self.principal.label!r}, "
                f"default_model={self.settings.default_chat_model!r}, store={self.store.safe_url!r})")


__all__ = [
    "AUDITED_ANOMALIES", "Gateway", "Messages", "StreamResult", "TokenSink",
    "new_trace_id", "validation_message",
]
