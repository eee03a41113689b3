"""Tracing: OpenTelemetry spans with OpenInference semantic conventions.

One ``trace_id`` flows from the entry point through retrieval and the Gateway and comes
back to the caller. RAG code opens CHAIN / RETRIEVER spans with :func:`span`; the Gateway's
call subscriber (:mod:`workbench.models.call_spans`, fed by the Gateway's call events)
opens LLM / EMBEDDING spans around every call and nests them under whatever span is
active, or under the ``trace_id`` the caller passed. This module never imports the
Gateway: it sits below it, and anything may open spans with it::

    from workbench.observability import tracing

    with tracing.span("ask", kind="CHAIN", input=question, gateway=gw) as root:
        with tracing.span("retrieve", kind="RETRIEVER", input=question) as s:
            s.set_documents([{"id": "doc-1", "score": 0.82}])
        answer = gw.chat(prompt)          # an LLM span inside the same trace
        root.set_output(answer.text)
    root.trace_id == answer.trace_id      # True

Spans go to the local span store (the ``spans`` table; offline, the default) and, when
``otlp_endpoint`` is set, to any OTLP collector. A workbench :class:`Tracer` never
installs itself as OpenTelemetry's global provider; it does honour a span opened by the
application's own OTel instrumentation (the Gateway span nests under it).
"""

from __future__ import annotations

import atexit
import contextvars
import json
import os
import re
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode

from workbench.errors import BadRequest
from workbench.guardrails import mask_text
from workbench.observability import semconv as sc
from workbench.observability.exporters import (
    KIND_ATTR,
    BoundedSpanProcessor,
    OtlpProtocol,
    StoreSpanExporter,
    flush_pending,
    otlp_exporter,
)
from workbench.store import Store

if TYPE_CHECKING:
    from workbench.config import Settings


class HasStore(Protocol):
    """What :func:`span` and :func:`default_tracer` need of a Gateway: its store and
    settings (this module sits below the Gateway and never imports it)."""

    @property
    def store(self) -> Store: ...

    @property
    def settings(self) -> Settings: ...

SPAN_KINDS = ("CHAIN", "RETRIEVER", "RERANKER", "LLM", "EMBEDDING", "TOOL", "AGENT",
              "GUARDRAIL", "EVALUATOR", "UNKNOWN")
MAX_ATTRIBUTE_CHARS = 8_000  # prompts/answers beyond this are cut in traces (not in replies)
MAX_DOCUMENTS = 50
_TRACE_ID_RE = re.compile(r"^[0-9a-f]{32}$")

# Set just around start_span: the id generator hands this trace id to a new root span.
_FORCED_TRACE_ID: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "wb_forced_trace_id", default=None)
# Open root spans by trace id, so a call made with ``trace_id=`` from another thread (no
# shared context) still nests under the request's root span instead of starting a tree.
_OPEN_ROOTS: dict[int, SpanContext] = {}
# The workbench tracer of the innermost open span: child spans default to it.
_CURRENT_TRACER: contextvars.ContextVar[Tracer | None] = contextvars.ContextVar(
    "wb_current_tracer", default=None)
# The conversation a call belongs to (session.id / gen_ai.conversation.id on its spans).
_SESSION_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "wb_session_id", default=None)
# The prompt version in use (workbench.prompt.* / llm.prompt_template.* on every span
# opened meanwhile) and the kind of traffic (product, eval, judge, probe): product
# metrics leave out the traffic the platform makes itself.
_PROMPT_ATTRS: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "wb_prompt_attrs", default=None)
_TRAFFIC: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "wb_traffic", default=None)
TRAFFIC_ATTR = "workbench.traffic"


# A caller's span context (W3C traceparent) that must not become the parent because its
# trace belongs to another principal: new root spans link to it instead.
_CALLER_LINK: contextvars.ContextVar[SpanContext | None] = contextvars.ContextVar(
    "wb_caller_link", default=None)


class _IdGenerator(RandomIdGenerator):
    def generate_trace_id(self) -> int:
        forced = _FORCED_TRACE_ID.get()
        return forced if forced is not None else super().generate_trace_id()


def normalize_trace_id(trace_id: str) -> str:
    """A W3C trace id (32 lower-case hex; UUIDs with dashes are accepted)."""
    tid = trace_id.strip().lower().replace("-", "")
    if not _TRACE_ID_RE.match(tid) or tid == "0" * 32:
        raise BadRequest(f"trace_id {trace_id[:64]!r} is not a W3C trace id: use 32 hex "
                         "characters (e.g. the trace_id a previous call returned)")
    return tid


def _truncate(value: str) -> str:
    if len(value) <= MAX_ATTRIBUTE_CHARS:
        return value
    return value[:MAX_ATTRIBUTE_CHARS] + f"… [{len(value) - MAX_ATTRIBUTE_CHARS} chars cut]"


def _attr(value: Any) -> Any:
    """OTel attributes are scalars or homogeneous lists; everything else becomes JSON."""
    if isinstance(value, str):
        return _truncate(value)
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return [_truncate(v) for v in value]
    return _truncate(json.dumps(value, default=str, ensure_ascii=False))


@dataclass
class SpanHandle:
    """What ``with span(...) as s`` yields: ids and setters in OpenInference terms."""

    otel: Any  # opentelemetry.trace.Span
    trace_id: str
    span_id: str

    @property
    def recording(self) -> bool:
        return bool(self.otel.is_recording())

    def set(self, key: str, value: Any) -> SpanHandle:
        if value is not None and self.otel.is_recording():
            self.otel.set_attribute(key, _attr(value))
        return self

    def set_attributes(self, attributes: Mapping[str, Any]) -> SpanHandle:
        if self.otel.is_recording():  # one call: the SDK takes its span lock once
            self.otel.set_attributes({k: _attr(v) for k, v in attributes.items()
                                      if v is not None})
        return self

    def set_input(self, value: Any) -> SpanHandle:
        mime = "text/plain" if isinstance(value, str) else "application/json"
        return self.set("input.value", value).set("input.mime_type", mime)

    def set_output(self, value: Any) -> SpanHandle:
        mime = "text/plain" if isinstance(value, str) else "application/json"
        return self.set("output.value", value).set("output.mime_type", mime)

    def set_documents(self, documents: list[Mapping[str, Any]],
                      prefix: str = "retrieval.documents") -> SpanHandle:
        """Retrieved documents: dicts with ``id``, ``score`` and optionally ``content``
        and ``metadata`` (the first :data:`MAX_DOCUMENTS`)."""
        for i, doc in enumerate(documents[:MAX_DOCUMENTS]):
            for key in ("id", "score", "content", "metadata"):
                if doc.get(key) is not None:
                    self.set(f"{prefix}.{i}.document.{key}", doc[key])
        return self

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        if self.otel.is_recording():
            self.otel.add_event(name, {k: _attr(v) for k, v in (attributes or {}).items()})

    def ok(self) -> None:
        """Mark the span OK unless it already has a status (viewers show UNSET as "Unset")."""
        if self.otel.is_recording() and self.otel.status.status_code == StatusCode.UNSET:
            self.otel.set_status(Status(StatusCode.OK))

    def error(self, exc: BaseException) -> None:
        """Mark the span failed. Only the exception type and workbench messages (which
        never contain secrets) are recorded, never a traceback with local values."""
        if not self.otel.is_recording():
            return
        message = getattr(exc, "message", None) or type(exc).__name__
        # Workbench errors are masked when made; others (a jsonschema error) may quote input.
        message = mask_text(str(message))
        self.otel.set_status(Status(StatusCode.ERROR, _truncate(str(message))))
        self.otel.add_event("exception", {"exception.type": type(exc).__name__,
                                          "exception.message": _truncate(str(message))})
        code = getattr(exc, "code", None)
        if code:
            self.otel.set_attribute("workbench.error_code", str(code))
        # GenAI's error.type: a low-cardinality class of error (our code, else the type).
        self.otel.set_attribute(sc.ERROR_TYPE, str(code or type(exc).__name__))


class Tracer:
    """Spans for one store (and optionally one OTLP collector)."""

    def __init__(self, store: Store | None, *, enabled: bool = True,
                 otlp_endpoint: str | None = None, otlp_protocol: OtlpProtocol = "http/protobuf",
                 otlp_timeout_s: float = 3.0, otlp_headers: dict[str, str] | None = None,
                 service_name: str = "workbench", max_queue: int = 4096):
        from workbench import __version__

        self.enabled = enabled
        self.service_name = service_name
        self.otlp_endpoint = otlp_endpoint
        self._provider = TracerProvider(
            sampler=ALWAYS_ON if enabled else ALWAYS_OFF,
            resource=Resource.create({"service.name": service_name,
                                      "service.version": __version__}),
            id_generator=_IdGenerator(),
            span_limits=SpanLimits(max_attributes=512, max_events=64),
            shutdown_on_exit=False,  # our atexit hook flushes with a short, bounded wait
        )
        self.processors: dict[str, BoundedSpanProcessor] = {}
        if enabled and store is not None:
            self._add("store", BoundedSpanProcessor(
                StoreSpanExporter(store, service_name), name="store", overflow="inline",
                max_queue=max_queue))
        if enabled and otlp_endpoint:
            self._add("otlp", BoundedSpanProcessor(
                otlp_exporter(otlp_endpoint, otlp_protocol, otlp_timeout_s, otlp_headers),
                name="otlp", overflow="drop", max_queue=2048, batch_size=512))
        self._otel = self._provider.get_tracer("workbench", __version__)
        _LIVE.add(self)

    def _add(self, name: str, processor: BoundedSpanProcessor) -> None:
        self.processors[name] = processor
        self._provider.add_span_processor(processor)

    # -- spans ---------------------------------------------------------------------------
    def _parent(self, trace_id: str | None) -> tuple[Any, int | None]:
        """(parent context, forced trace id) for a new span."""
        if trace_id is None:
            return None, None  # the current context: nest under the active span, if any
        tid = int(normalize_trace_id(trace_id), 16)
        current = otel_trace.get_current_span().get_span_context()
        if current.is_valid and current.trace_id == tid:
            return None, None
        root = _OPEN_ROOTS.get(tid)
        if root is not None:
            return otel_trace.set_span_in_context(NonRecordingSpan(root),
                                                  otel_context.Context()), None
        return otel_context.Context(), tid

    def start(self, name: str, kind: str = "CHAIN", *,
              attributes: Mapping[str, Any] | None = None,
              trace_id: str | None = None) -> SpanHandle:
        """Start a span without making it current (see :meth:`span` for the usual form)."""
        kind = kind.upper()
        if kind not in SPAN_KINDS:
            raise BadRequest(f"unknown span kind {kind!r}; use one of {', '.join(SPAN_KINDS)}")
        parent, forced = self._parent(trace_id)
        token = _FORCED_TRACE_ID.set(forced)
        try:
            otel_span = self._otel.start_span(name, context=parent,
                                              attributes={KIND_ATTR: kind})
        finally:
            _FORCED_TRACE_ID.reset(token)
        ctx = otel_span.get_span_context()
        handle = SpanHandle(otel_span, f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")
        parent_ctx = getattr(otel_span, "parent", None)
        if otel_span.is_recording() and (parent_ctx is None or parent_ctx.is_remote):
            # The local root (its parent, if any, is the caller's span in another process).
            _OPEN_ROOTS.setdefault(ctx.trace_id, ctx)
            link = _CALLER_LINK.get()
            if link is not None and parent_ctx is None:
                otel_span.add_link(link, {"workbench.link": "caller"})
                otel_span.set_attribute("workbench.caller_trace_id", f"{link.trace_id:032x}")
        if handle.recording:
            handle.set_attributes(_context_attributes())
        if attributes:
            handle.set_attributes(attributes)
        return handle

    @staticmethod
    def end(handle: SpanHandle) -> None:
        ctx = handle.otel.get_span_context()
        if _OPEN_ROOTS.get(ctx.trace_id) == ctx:
            _OPEN_ROOTS.pop(ctx.trace_id, None)
        handle.otel.end()

    @contextmanager
    def activate(self, handle: SpanHandle) -> Iterator[SpanHandle]:
        """Make ``handle`` the current span (children nest under it) for the block."""
        token = otel_context.attach(otel_trace.set_span_in_context(handle.otel))
        tracer_token = _CURRENT_TRACER.set(self)
        try:
            yield handle
        finally:
            _CURRENT_TRACER.reset(tracer_token)
            otel_context.detach(token)

    @contextmanager
    def span(self, name: str, kind: str = "CHAIN", *, attributes: Mapping[str, Any] | None = None,
             input: Any = None, trace_id: str | None = None) -> Iterator[SpanHandle]:
        """Open a span for the block; an exception marks it ERROR and propagates."""
        handle = self.start(name, kind, attributes=attributes, trace_id=trace_id)
        if input is not None:
            handle.set_input(input)
        try:
            with self.activate(handle):
                yield handle
        except BaseException as exc:
            handle.error(exc)
            raise
        else:
            handle.ok()
        finally:
            self.end(handle)

    # -- lifecycle -----------------------------------------------------------------------
    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until finished spans are written (call before reading traces back)."""
        deadline = time.monotonic() + timeout_s
        ok = True
        for proc in self.processors.values():
            left = max(deadline - time.monotonic(), 0.0)
            ok = proc.force_flush(int(left * 1000)) and ok
        return ok

    def stats(self) -> dict[str, dict[str, int]]:
        """Per exporter: exported / failed / dropped / inline / queued span counts."""
        return {name: proc.stats() for name, proc in self.processors.items()}

    def shutdown(self, timeout_s: float = 2.0) -> None:
        for proc in self.processors.values():
            proc.shutdown(int(timeout_s * 1000))
        _LIVE.discard(self)

    def __repr__(self) -> str:
        return (f"Tracer(enabled={self.enabled}, exporters={sorted(self.processors)}, "
                f"otlp={self.otlp_endpoint!r})")


_LIVE: weakref.WeakSet[Tracer] = weakref.WeakSet()
_BY_STORE: weakref.WeakKeyDictionary[Store, Tracer] = weakref.WeakKeyDictionary()
_BY_STORE_LOCK = threading.Lock()


def flush_all(timeout_s: float = 3.0) -> bool:
    """Write every span this process still holds (every tracer, also those of Gateways that
    were dropped), within ``timeout_s`` in total: the local store first, then OTLP
    collectors (a down collector costs at most the rest of the budget). Runs at exit and
    after every CLI command; call it yourself before ``os._exit`` or a fork."""
    return flush_pending(timeout_s)


@atexit.register
def _flush_all_at_exit() -> None:
    flush_all(3.0)


def tracer_for(store: Store, settings: Settings | None = None) -> Tracer:
    """The tracer for this store (one per store, created on first use from settings)."""
    with _BY_STORE_LOCK:
        tracer = _BY_STORE.get(store)
        if tracer is None:
            # Settings first, then OpenTelemetry's standard variables.
            endpoint = (getattr(settings, "otlp_endpoint", None)
                        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
            protocol = (getattr(settings, "otlp_protocol", None)
                        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf")
            tracer = Tracer(
                store,
                enabled=bool(getattr(settings, "tracing", True)),
                otlp_endpoint=endpoint or None,
                otlp_protocol=protocol,  # type: ignore[arg-type]  # checked by otlp_exporter
                service_name=os.environ.get("OTEL_SERVICE_NAME") or "workbench",
            )
            _BY_STORE[store] = tracer
        return tracer


def set_tracer(store: Store, tracer: Tracer) -> Tracer:
    """Use ``tracer`` for ``store`` (e.g. one with an OTLP endpoint set in code)."""
    with _BY_STORE_LOCK:
        old = _BY_STORE.get(store)
        _BY_STORE[store] = tracer
    if old is not None and old is not tracer:
        old.flush(1.0)
    return tracer


def default_tracer(gateway: HasStore | None = None) -> Tracer:
    """The tracer of ``gateway``; else of the innermost open workbench span; else the one
    for the store in the current settings."""
    if gateway is not None:
        return tracer_for(gateway.store, gateway.settings)
    current = _CURRENT_TRACER.get()
    if current is not None:
        return current
    from workbench.config import load_settings

    settings = load_settings()
    url = settings.resolved_store_url
    with _BY_STORE_LOCK:
        for store, tracer in _BY_STORE.items():
            if store.url == url or store.url == url.replace("postgresql://",
                                                            "postgresql+psycopg://"):
                return tracer
    return tracer_for(Store(url), settings)


@contextmanager
def span(name: str, kind: str = "CHAIN", *, attributes: Mapping[str, Any] | None = None,
         input: Any = None, trace_id: str | None = None, gateway: HasStore | None = None,
         tracer: Tracer | None = None) -> Iterator[SpanHandle]:
    """Open a CHAIN / RETRIEVER / TOOL / ... span; see the module docstring."""
    with (tracer or default_tracer(gateway)).span(
            name, kind, attributes=attributes, input=input, trace_id=trace_id) as handle:
        yield handle


@contextmanager
def session(session_id: str | None) -> Iterator[None]:
    """Spans opened in the block belong to conversation ``session_id`` (``session.id`` in
    OpenInference, ``gen_ai.conversation.id`` in GenAI): Phoenix groups them as a session."""
    token = _SESSION_ID.set(session_id[:128] if session_id else None)
    try:
        yield
    finally:
        _SESSION_ID.reset(token)


def _context_attributes() -> dict[str, Any]:
    """What the enclosing :func:`session`, :func:`prompt_context` and :func:`traffic`
    blocks put on every span started inside them."""
    out: dict[str, Any] = dict(_PROMPT_ATTRS.get() or {})
    session_id = _SESSION_ID.get()
    if session_id:
        out[sc.SESSION_ID] = session_id
    kind = _TRAFFIC.get()
    if kind:
        out[TRAFFIC_ATTR] = kind
    return out


@contextmanager
def prompt_context(attributes: Mapping[str, Any] | None) -> Iterator[None]:
    """Spans opened in the block record the prompt version in use (``attributes`` from
    ``PromptVersion.span_attributes()``); None leaves the enclosing one in force."""
    if attributes is None:
        yield
        return
    token = _PROMPT_ATTRS.set({**(_PROMPT_ATTRS.get() or {}), **attributes})
    try:
        yield
    finally:
        _PROMPT_ATTRS.reset(token)


@contextmanager
def traffic(kind: str) -> Iterator[None]:
    """Spans opened in the block are ``kind`` traffic (``eval``, ``judge``, ``probe``):
    product metrics (feedback rates, containment) count only the rest."""
    token = _TRAFFIC.set(kind)
    try:
        yield
    finally:
        _TRAFFIC.reset(token)


def current_traffic() -> str | None:
    """The traffic kind set by :func:`traffic`, if any (None: product traffic)."""
    return _TRAFFIC.get()


def current_session() -> str | None:
    """The session id set by :func:`session`, if any."""
    return _SESSION_ID.get()


@contextmanager
def caller_context(trace_id: int, span_id: int, sampled: bool = True, *,
                   as_parent: bool) -> Iterator[None]:
    """Run the block with a caller's W3C span context (from ``traceparent``).

    ``as_parent``: the caller's span becomes the parent of the spans started in the block
    (the caller's own trace). Otherwise the spans start a trace of their own and the new
    root carries a span link and ``workbench.caller_trace_id`` (a trace that belongs to
    someone else is never joined)."""
    from opentelemetry.trace import TraceFlags

    remote = SpanContext(trace_id, span_id, is_remote=True,
                         trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else 0))
    if as_parent:
        token = otel_context.attach(otel_trace.set_span_in_context(NonRecordingSpan(remote)))
        try:
            yield
        finally:
            otel_context.detach(token)
        return
    link_token = _CALLER_LINK.set(remote)
    try:
        yield
    finally:
        _CALLER_LINK.reset(link_token)


def current_trace_id() -> str | None:
    """The trace id of the active span, if any (what the Gateway will join)."""
    ctx = otel_trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else None


__all__ = [
    "MAX_ATTRIBUTE_CHARS", "MAX_DOCUMENTS", "SPAN_KINDS", "TRAFFIC_ATTR", "HasStore",
    "SpanHandle", "Tracer", "caller_context", "current_session", "current_trace_id",
    "current_traffic", "default_tracer", "flush_all", "normalize_trace_id", "prompt_context",
    "session", "set_tracer", "span", "tracer_for", "traffic",
]
