"""Health-check probes: named golden checks of an LLM feature, run on a schedule.

A probe file (TOML or YAML) lists probes; ``[defaults]`` apply to each::

    [defaults]
    max_tokens = 24
    every = "10m"

    [[probe]]
    name = "capital"
    input = "What is the capital of France? Answer with one word."
    expect = { pattern = "(?i)paris" }

Probes run against the Gateway (in process) or a running service (``--url``: an
OpenAI-compatible ``/v1/chat/completions`` or the service's ``POST /ask``). Every result
is stored with the model name and version and a hash of the probe's prompt. Drift: when
a probe's outcome changes between runs, the report says whether the model, the prompt, or
neither changed (neither: a silent upstream update or a flaky probe).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import insert, select, update

from workbench.errors import BadRequest, ConfigError, WorkbenchError
from workbench.evals.probe_checks import Expectation, Verdict, check
from workbench.evals.remote import call_json
from workbench.http.headers import TRACE_HEADER  # a leaf: no FastAPI for a probe run
from workbench.observability.schema import probe_results, probe_runs
from workbench.observability.views import html_table
from workbench.store import Store

if TYPE_CHECKING:
    from workbench.models.gateway import Gateway

DEFAULT_FILES = ("probes.toml", "probes.yaml", "probes.yml")
_EVERY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_OUTPUT_STORED = 2_000


def parse_every(text: str) -> float:
    m = _EVERY_RE.match(text)
    if not m:
        raise ValueError(f"every {text!r}: use a number and s/m/h/d, e.g. \"30s\" or \"10m\"")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds < 1:
        raise ValueError("every must be at least 1s")
    return seconds


class Probe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, pattern=r"^[\w.\-]+$")
    input: str = Field(min_length=1, description="The user message (or /ask question).")
    system: str | None = None
    prompt: str | None = Field(None, max_length=160, description=(
        "A registry prompt (name, name@label or name@version; workbench.prompts) instead of "
        "system: one system and one user message, {{input}} in it is the probe's input."))
    model: str | None = Field(None, description="Default: the profile's chat model.")
    max_tokens: int = Field(32, gt=0, le=4096)
    temperature: float = Field(0.0, ge=0, le=2)
    expect: Expectation
    every: str = "15m"
    tags: list[str] = Field(default_factory=list)

    @field_validator("every")
    @classmethod
    def _every(cls, v: str) -> str:
        parse_every(v)
        return v

    @property
    def interval_s(self) -> float:
        return parse_every(self.every)

    def messages(self) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return msgs + [{"role": "user", "content": self.input}]

    def request(self) -> dict[str, Any]:
        req: dict[str, Any] = {"messages": self.messages(), "max_tokens": self.max_tokens,
                               "temperature": self.temperature}
        if self.expect.kind == "json_schema":
            # Small models produce JSON reliably only when decoding is constrained.
            req["response_format"] = {"type": "json_object", "schema": self.expect.target}
        return req

    @property
    def prompt_hash(self) -> str:
        """Changes when anything that shapes the model's input changes (not the model)."""
        blob = json.dumps(self.request(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _read(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def load_probes(path: str | Path | None = None) -> list[Probe]:
    """Probes from ``path`` (default: probes.toml / probes.yaml in the working dir)."""
    if path is None:
        found = [Path(p) for p in DEFAULT_FILES if Path(p).exists()]
        if not found:
            raise ConfigError("no probe file: pass one (workbench probe FILE) or create "
                              "probes.toml with [[probe]] entries")
        path = found[0]
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"probe file {path} does not exist")
    data = _read(path)
    if isinstance(data, list):
        data = {"probe": data}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected probe entries ([[probe]] in TOML, `probes:` list "
                          "in YAML)")
    defaults = data.get("defaults") or {}
    entries = data.get("probe") or data.get("probes") or []
    if not entries:
        raise ConfigError(f"{path}: no probes found ([[probe]] in TOML, `probes:` in YAML)")
    probes: list[Probe] = []
    for i, entry in enumerate(entries):
        label = entry.get("name", f"#{i + 1}") if isinstance(entry, dict) else f"#{i + 1}"
        try:
            probes.append(Probe.model_validate({**defaults, **entry}))
        except (ValidationError, TypeError) as exc:
            msg = ("; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors()) if isinstance(exc, ValidationError)
                   else str(exc))
            raise ConfigError(f"{path}: probe {label}: {msg}") from None
    names = [p.name for p in probes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{path}: probe names must be unique; repeated: {', '.join(dupes)}")
    return probes


# -- targets -----------------------------------------------------------------------------
@dataclass
class Output:
    text: str
    model: str | None
    model_version: str | None
    latency_ms: float
    trace_id: str | None = None
    prompt_version: str | None = None  # name@version of the registry prompt behind it


class Target(Protocol):
    label: str

    def call(self, probe: Probe) -> Output: ...


class GatewayTarget:
    """Probes through the in-process Gateway (each probe is a traced CHAIN span)."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self.label = f"gateway:{gateway.settings.profile}"

    def model_version(self, model: str) -> str | None:
        from workbench.models.embedded import EmbeddedProvider

        spec = self.gateway.spec(model)
        provider = self.gateway.provider(spec.provider)
        if isinstance(provider, EmbeddedProvider):
            meta = provider.llm(spec.upstream_name)[0].metadata
            return f"{meta.get('general.name', spec.upstream_name)} (gguf ftype " \
                   f"{meta.get('general.file_type', '?')})"
        return None

    def call(self, probe: Probe) -> Output:
        from workbench.observability import tracing

        started = time.perf_counter()
        with tracing.span(f"probe {probe.name}", kind="EVALUATOR", input=probe.input,
                          gateway=self.gateway) as s:
            res = self.gateway.chat(probe.request(), model=probe.model)
            s.set_output(res.text)
        upstream = res.response.get("system_fingerprint") or (
            res.response.get("model") if res.response.get("model") != res.model else None)
        return Output(res.text, res.model, upstream or self.model_version(res.model),
                      (time.perf_counter() - started) * 1000, res.trace_id)


class HttpTarget:
    """A running service: ``api="openai"`` posts to ``{url}/v1/chat/completions``,
    ``api="ask"`` posts ``{"question": ...}`` to ``{url}/ask``."""

    def __init__(self, url: str, api: Literal["openai", "ask", "auto"] = "auto",
                 key: str | None = None, timeout_s: float = 60.0):
        url = url.rstrip("/")
        if api == "auto":
            api = "ask" if url.endswith("/ask") else "openai"
        self.api = api
        if api == "ask":
            self.endpoint = url if url.endswith("/ask") else url + "/ask"
        else:
            base = url.removesuffix("/chat/completions")
            self.endpoint = (base if base.endswith("/v1") else base + "/v1") + "/chat/completions"
        self.label = f"{api}:{self.endpoint}"
        # Probe traffic is marked: the service leaves it out of its product metrics.
        self._headers = {"x-workbench-traffic": "probe",
                         **({"Authorization": f"Bearer {key}"} if key else {})}
        self.timeout_s = timeout_s

    def call(self, probe: Probe) -> Output:
        import httpx

        body: dict[str, Any]
        if self.api == "ask":
            body = {"question": probe.input}
        else:
            body = {**probe.request(), **({"model": probe.model} if probe.model else {})}
        started = time.perf_counter()
        data, resp = call_json(lambda: httpx.post(self.endpoint, json=body, headers=self._headers,
                                                  timeout=self.timeout_s),
                               self.endpoint, code="probe")
        latency = (time.perf_counter() - started) * 1000
        if self.api == "ask":
            return Output(str(data.get("answer") or ""), data.get("model"),
                          data.get("model_version"), latency, data.get("trace_id"),
                          data.get("prompt"))
        choices = data.get("choices") or [{}]
        text = str((choices[0].get("message") or {}).get("content") or "")
        return Output(text, data.get("model"), data.get("system_fingerprint"), latency,
                      resp.headers.get(TRACE_HEADER))


# -- running -----------------------------------------------------------------------------
@dataclass
class ProbeResult:
    probe: str
    ok: bool
    expectation: str
    detail: str
    score: float | None
    output: str | None
    model: str | None
    model_version: str | None
    prompt_hash: str
    latency_ms: float | None
    trace_id: str | None
    error: str | None = None
    prompt_version: str | None = None  # name@version: a registry prompt (probe or service)

    @property
    def output_hash(self) -> str | None:
        if self.output is None:
            return None
        return hashlib.sha256(self.output.encode()).hexdigest()[:16]


@dataclass
class Drift:
    probe: str
    kind: Literal["model", "prompt", "silent", "model-output"]
    message: str


@dataclass
class ProbeReport:
    run_id: str
    target: str
    results: list[ProbeResult]
    drift: list[Drift] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> list[ProbeResult]:
        return [r for r in self.results if not r.ok]

    def rows(self) -> list[dict[str, Any]]:
        return [{"probe": r.probe, "ok": "pass" if r.ok else "FAIL", "check": r.expectation,
                 "detail": r.error or r.detail, "model": r.model,
                 "latency_ms": round(r.latency_ms, 1) if r.latency_ms is not None else None,
                 "trace_id": r.trace_id} for r in self.results]

    def lines(self) -> list[str]:
        out = [f"{r['ok']:<4}  {r['probe']:<24} {r['check']:<11} {r['model'] or '-':<16} "
               f"{r['detail']}" for r in self.rows()]
        out.append(f"{len(self.results) - len(self.failed)}/{len(self.results)} passed "
                   f"(run {self.run_id}, target {self.target})")
        out += [f"drift: {d.message}" for d in self.drift]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "target": self.target, "ok": self.ok,
                "results": [r.__dict__ for r in self.results],
                "drift": [d.__dict__ for d in self.drift]}

    def __repr__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        drift = "".join(f"<li>{d.message}</li>" for d in self.drift)
        return (html_table(self.rows(), ("probe", "ok", "check", "model", "latency_ms",
                                         "detail")) + (f"<ul>{drift}</ul>" if drift else ""))


def check_output(probe: Probe, text: str, checker: Gateway | None = None) -> Verdict:
    """Whether ``text`` meets ``probe``'s expectation, as a run judges each answer
    (``checker``: the Gateway that serves semantic and judge expectations)."""
    return check(probe.expect, text, probe.input, checker)


def with_prompt(probe: Probe, store: Store) -> tuple[Probe, str | None]:
    """The probe with its registry ``prompt`` rendered into system and input, and the
    prompt's name@version (None for a probe without one)."""
    if not probe.prompt:
        return probe, None
    from workbench import prompts

    found = prompts.resolve(store, probe.prompt, probe.prompt)
    values = {"input": probe.input} if "input" in found.variables else {}
    messages = found.render(values)
    roles = [m["role"] for m in messages]
    if roles not in (["user"], ["system", "user"]):
        raise BadRequest(f"probe {probe.name}: prompt {found.ref} must be one system and one "
                         f"user message (it has {roles})")
    user = messages[-1]["content"] if values else (
        messages[-1]["content"] + "\n\n" + probe.input)
    return probe.model_copy(update={
        "system": messages[0]["content"] if len(messages) == 2 else None,
        "input": user}), found.ref


def run_one(probe: Probe, target: Target, checker: Gateway | None,
            prompt_version: str | None = None) -> ProbeResult:
    from workbench.observability import tracing

    try:
        with tracing.traffic("probe"):
            out = target.call(probe)
    except WorkbenchError as exc:
        return ProbeResult(probe.name, False, probe.expect.kind, "call failed", None, None,
                           probe.model, None, probe.prompt_hash, None, None, exc.message,
                           prompt_version)
    try:
        verdict = check(probe.expect, out.text, probe.input, checker)
    except WorkbenchError as exc:
        verdict = Verdict(False, f"check failed: {exc.message}")
    return ProbeResult(probe.name, verdict.ok, probe.expect.kind, verdict.detail, verdict.score,
                       out.text[:MAX_OUTPUT_STORED], out.model, out.model_version,
                       probe.prompt_hash, out.latency_ms, out.trace_id,
                       prompt_version=out.prompt_version or prompt_version)


def _previous(store: Store, probe: str, target: str, before_run: str) -> dict[str, Any] | None:
    with store.read() as conn:
        row = conn.execute(
            select(probe_results).where(probe_results.c.probe == probe,
                                        probe_results.c.target == target,
                                        probe_results.c.run_id != before_run,
                                        probe_results.c.error.is_(None))
            .order_by(probe_results.c.ts.desc(), probe_results.c.id.desc()).limit(1)).first()
    return dict(row._mapping) if row else None


def detect_drift(prev: dict[str, Any] | None, cur: ProbeResult) -> Drift | None:
    """Compare a result with the probe's previous one (see the module docs)."""
    if prev is None or cur.error:
        return None
    was, now = ("pass" if prev["ok"] else "fail"), ("pass" if cur.ok else "fail")
    model_before = f"{prev['model']} [{prev['model_version'] or '?'}]"
    model_now = f"{cur.model} [{cur.model_version or '?'}]"
    model_changed = (prev["model"], prev["model_version"]) != (cur.model, cur.model_version)
    before_v, now_v = prev.get("prompt_version"), cur.prompt_version
    version_changed = before_v != now_v and (before_v or now_v) is not None
    prompt_changed = prev["prompt_hash"] != cur.prompt_hash or version_changed
    change = (f"{before_v or '?'} -> {now_v or '?'}" if version_changed
              else f"{prev['prompt_hash']} -> {cur.prompt_hash}")
    if prev["ok"] != int(cur.ok):
        if model_changed:
            return Drift(cur.probe, "model", f"{cur.probe}: {was} -> {now} after the model "
                         f"changed from {model_before} to {model_now}")
        if prompt_changed:
            return Drift(cur.probe, "prompt", f"{cur.probe}: {was} -> {now} after the "
                         f"prompt changed ({change})")
        return Drift(cur.probe, "silent", f"{cur.probe}: {was} -> {now} with the same model "
                     f"{model_now} and prompt: a silent upstream update or a flaky probe")
    if model_changed and prev["output_hash"] != cur.output_hash:
        return Drift(cur.probe, "model-output", f"{cur.probe}: still {now}, but the model "
                     f"changed ({model_before} -> {model_now}) and so did the output")
    if version_changed:
        # A prompt deployment the probe survived: worth a line next to the deploy.
        return Drift(cur.probe, "prompt", f"{cur.probe}: still {now} after the prompt "
                     f"changed ({change})")
    return None


def run_probes(probes: list[Probe], target: Target, store: Store,
               checker: Gateway | None = None) -> ProbeReport:
    """Run ``probes`` once, store the results and compare each with its previous run."""
    if not probes:
        raise BadRequest("no probes to run")
    run_id = "run_" + uuid.uuid4().hex[:16]
    started = time.time()
    with store.write() as conn:
        conn.execute(insert(probe_runs).values(id=run_id, started_at=started,
                                               target=target.label[:256], probes=len(probes)))
    results = []
    for p in probes:
        rendered, version = with_prompt(p, store)
        results.append(run_one(rendered, target, checker, version))
    found = (detect_drift(_previous(store, r.probe, target.label[:256], run_id), r)
             for r in results)
    drift = [d for d in found if d is not None]
    with store.write() as conn:
        for r in results:
            conn.execute(insert(probe_results).values(
                run_id=run_id, probe=r.probe, ts=time.time(), target=target.label[:256],
                ok=int(r.ok), expectation=r.expectation, score=r.score, detail=r.detail[:1000],
                output=r.output, output_hash=r.output_hash, model=r.model,
                model_version=r.model_version, prompt_hash=r.prompt_hash,
                latency_ms=r.latency_ms, trace_id=r.trace_id, error=r.error,
                prompt_version=r.prompt_version))
        conn.execute(update(probe_runs).where(probe_runs.c.id == run_id).values(
            finished_at=time.time(), failed=sum(1 for r in results if not r.ok)))
    return ProbeReport(run_id, target.label, results, drift)


def history(store: Store, probe: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Stored results, newest first."""
    stmt = select(probe_results).order_by(probe_results.c.ts.desc()).limit(limit)
    if probe:
        stmt = stmt.where(probe_results.c.probe == probe)
    with store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def watch(probes: list[Probe], target: Target, store: Store, checker: Gateway | None = None,
          *, max_cycles: int | None = None, sleep: Callable[[float], None] = time.sleep,
          clock: Callable[[], float] = time.monotonic) -> Iterator[ProbeReport]:
    """Run each probe on its own ``every`` schedule; yields a report per cycle (a cycle
    runs the probes that are due). Stops after ``max_cycles`` (None: until interrupted)."""
    due = {p.name: clock() for p in probes}
    cycles = 0
    while max_cycles is None or cycles < max_cycles:
        now = clock()
        ready = [p for p in probes if due[p.name] <= now]
        if not ready:
            sleep(max(min(due.values()) - now, 0.05))
            continue
        for p in ready:
            due[p.name] = now + p.interval_s
        yield run_probes(ready, target, store, checker)
        cycles += 1


__all__ = ["DEFAULT_FILES", "Drift", "GatewayTarget", "HttpTarget", "Output", "Probe",
           "ProbeReport", "ProbeResult", "Target", "Verdict", "check_output", "detect_drift",
           "history", "load_probes", "parse_every", "run_one", "run_probes", "watch",
           "with_prompt"]
