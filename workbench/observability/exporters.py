"""Where finished spans go: the local SQL span store (default) and OTLP (HTTP or gRPC).

Both sit behind :class:`BoundedSpanProcessor`, a bounded queue drained by a worker
thread, so the request path only appends to a deque. The two overflow policies differ on
purpose: a remote collector is best effort (a full queue drops the span and counts it:
an unreachable endpoint must never slow or fail a request), while the local store must
not lose spans (a full queue makes the caller write its own span).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any, Literal

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from sqlalchemy.exc import SQLAlchemyError

from workbench.errors import ConfigError
from workbench.store import Store

log = logging.getLogger("workbench.tracing")

Overflow = Literal["drop", "inline"]
OtlpProtocol = Literal["http/protobuf", "grpc"]

KIND_ATTR = "openinference.span.kind"


def _json_value(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def span_row(span: ReadableSpan, service: str | None = None) -> dict[str, Any]:
    """A finished OTel span as a ``spans`` row (ids as W3C lower-case hex)."""
    ctx = span.get_span_context()
    assert ctx is not None
    attrs = {k: _json_value(v) for k, v in (span.attributes or {}).items()}
    parent = span.parent
    if parent is not None and parent.is_remote:
        # The caller's span (W3C traceparent) lives in another process and never in this
        # store: locally this span is the root (listings and metrics look for parent_id
        # NULL); the caller's span id stays as an attribute. OTLP keeps the real parent.
        attrs["workbench.remote_parent_id"] = f"{parent.span_id:016x}"
        parent = None
    start = span.start_time or 0
    end = span.end_time or start
    model = attrs.get("llm.model_name") or attrs.get("embedding.model_name")
    status = span.status
    return {
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_id": f"{parent.span_id:016x}" if parent else None,
        "name": span.name[:256],
        "kind": str(attrs.get(KIND_ATTR) or "UNKNOWN")[:16],
        "start_ns": start,
        "end_ns": end,
        "duration_ms": (end - start) / 1e6,
        "status": status.status_code.name,
        "status_message": status.description,
        "model": str(model)[:128] if model else None,
        "tokens_in": attrs.get("llm.token_count.prompt"),
        "tokens_out": attrs.get("llm.token_count.completion"),
        "attributes": attrs,
        "events": [{"name": e.name, "ts_ns": e.timestamp,
                    "attributes": {k: _json_value(v) for k, v in (e.attributes or {}).items()}}
                   for e in span.events],
        "service": service,
    }


class StoreSpanExporter(SpanExporter):
    """Writes spans into the ``spans`` table. Holds the store weakly so that a tracer
    cached for a store never keeps a disposed store (and its pool) alive."""

    def __init__(self, store: Store, service: str | None = None):

        self._store = weakref.ref(store)
        self._held: Store | None = None
        self._service = service

    def hold(self, busy: bool) -> None:
        """While spans wait in the queue the store is held strongly: a Gateway dropped
        (or a one-shot command returning) right after a call must not take the store,
        and with it the queued spans' destination, away before they are written."""
        self._held = self._store() if busy else None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        store = self._store()
        if store is None or not spans:
            return SpanExportResult.FAILURE if spans else SpanExportResult.SUCCESS
        from workbench.observability.schema import spans as table

        rows = [span_row(s, self._service) for s in spans]
        if store.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
        # A batch re-sent after a failed commit must not duplicate spans.
        stmt = insert(table).on_conflict_do_nothing(index_elements=["trace_id", "span_id"])
        try:
            with store.write() as conn:
                conn.execute(stmt, rows)
        except SQLAlchemyError as exc:
            log.warning("could not store %d spans: %s", len(rows), type(exc).__name__)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _EveryMinute(logging.Filter):
    """The OTLP exporters log every failed batch; a down collector would flood stderr.
    Let one record per message through per minute (the processor counts every loss)."""

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        key = str(record.msg)
        if now - self._last.get(key, -1e9) < 60:
            return False
        self._last[key] = now
        return True


_OTLP_LOG_FILTER = _EveryMinute()


def otlp_exporter(endpoint: str, protocol: OtlpProtocol = "http/protobuf",
                  timeout_s: float = 3.0, headers: dict[str, str] | None = None) -> SpanExporter:
    """An OTLP span exporter for Phoenix, Jaeger, Tempo, Langfuse, an OTel Collector...

    ``endpoint``: for HTTP the base URL (``http://host:4318``) or the full
    ``.../v1/traces`` URL; for gRPC ``host:4317`` or ``http://host:4317``. Extra headers
    (e.g. Langfuse's ``Authorization``) come from ``headers`` or, as OTel defines,
    ``OTEL_EXPORTER_OTLP_TRACES_HEADERS`` / ``OTEL_EXPORTER_OTLP_HEADERS``.
    """
    for name in ("opentelemetry.exporter.otlp.proto.http.trace_exporter",
                 "opentelemetry.exporter.otlp.proto.http._common",
                 "opentelemetry.exporter.otlp.proto.grpc.exporter"):
        logger = logging.getLogger(name)
        if _OTLP_LOG_FILTER not in logger.filters:
            logger.addFilter(_OTLP_LOG_FILTER)
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcExporter,
            )
        except ImportError:
            raise ConfigError(
                "otlp_protocol 'grpc' needs the gRPC exporter: pip install "
                "'genai-workbench[otlp-grpc]', or use otlp_protocol = 'http/protobuf'"
            ) from None
        target = endpoint.split("://", 1)[-1].rstrip("/")
        return GrpcExporter(endpoint=target, insecure=not endpoint.startswith("https://"),
                            timeout=timeout_s, headers=headers)
    if protocol != "http/protobuf":
        raise ConfigError(f"unknown otlp_protocol {protocol!r}; use 'http/protobuf' or 'grpc'")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    url = endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"
    return OTLPSpanExporter(endpoint=url, timeout=timeout_s, headers=headers)


class BoundedSpanProcessor(SpanProcessor):
    """Queue ended spans (bounded); a worker thread exports them in batches.

    The worker starts on demand and exits after ``idle_exit_s`` without work, so
    tracers that are no longer used hold no thread. Counters: ``exported`` (accepted by
    the exporter), ``failed`` (in batches the exporter refused), ``dropped`` (queue full,
    ``overflow="drop"`` only), ``inline`` (of those, written by the caller because the
    queue was full, ``overflow="inline"`` only).
    """

    def __init__(self, exporter: SpanExporter, *, name: str, overflow: Overflow = "drop",
                 max_queue: int = 2048, batch_size: int = 256, delay_s: float = 0.2,
                 idle_exit_s: float = 5.0):
        self.exporter = exporter
        self.name = name
        self.overflow = overflow
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.delay_s = delay_s
        self.idle_exit_s = idle_exit_s
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self._in_flight = 0
        self._closed = False
        self._busy = False
        self.counts = {"exported": 0, "failed": 0, "dropped": 0, "inline": 0}

    def _set_busy(self, busy: bool) -> None:  # called with the lock held
        """Queued spans keep this processor (and what its exporter writes to) reachable
        from :data:`_BUSY` until they are exported, so the exit hook can flush them even
        when the tracer that owned them has been garbage-collected."""
        self._busy = busy
        hold = getattr(self.exporter, "hold", None)
        if hold is not None:
            hold(busy)
        with _BUSY_LOCK:
            if busy:
                _BUSY.add(self)
            else:
                _BUSY.discard(self)

    # -- SpanProcessor -------------------------------------------------------------------
    def on_start(self, span: Any, parent_context: Any = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            if self._closed:
                self.counts["dropped"] += 1
                return
            if len(self._queue) < self.max_queue:
                self._queue.append(span)
                if not self._busy:
                    self._set_busy(True)
                if self._worker is None:
                    self._start_worker()
                elif len(self._queue) >= self.batch_size:
                    self._wake.set()
                return
            if self.overflow == "drop":
                self.counts["dropped"] += 1
                return
            self.counts["inline"] += 1
        self._export([span])

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait until everything queued so far is exported (or ``timeout_millis``)."""
        deadline = time.monotonic() + timeout_millis / 1000
        with self._lock:
            if self._queue and self._worker is None:
                self._start_worker()
            self._wake.set()
            while self._queue or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.05))
                self._wake.set()
        return True

    def shutdown(self, timeout_millis: int = 2000) -> None:
        self.force_flush(timeout_millis)
        with self._lock:
            self._closed = True
            self.counts["dropped"] += len(self._queue)
            self._queue.clear()
            if self._busy:
                self._set_busy(False)
        self._wake.set()
        self.exporter.shutdown()

    # -- worker --------------------------------------------------------------------------
    def _start_worker(self) -> None:  # called with the lock held
        self._worker = threading.Thread(target=self._run, name=f"wb-spans-{self.name}",
                                        daemon=True)
        self._worker.start()

    def _run(self) -> None:
        idle_since = time.monotonic()
        while True:
            self._wake.wait(self.delay_s)
            self._wake.clear()
            with self._lock:
                batch = [self._queue.popleft()
                         for _ in range(min(self.batch_size, len(self._queue)))]
                if not batch:
                    if self._closed or time.monotonic() - idle_since > self.idle_exit_s:
                        self._worker = None
                        self._idle.notify_all()
                        return
                    self._idle.notify_all()
                    continue
                self._in_flight += len(batch)
            self._export(batch)
            with self._lock:
                self._in_flight -= len(batch)
                if self._queue:
                    self._wake.set()
                elif not self._in_flight and self._busy:
                    self._set_busy(False)
                self._idle.notify_all()
            idle_since = time.monotonic()

    def _export(self, batch: list[ReadableSpan]) -> None:
        try:
            ok = self.exporter.export(batch) is SpanExportResult.SUCCESS
        except Exception:  # noqa: BLE001 - a broken exporter must not kill the worker; counted below
            log.exception("span exporter %s raised", self.name)
            ok = False
        with self._lock:
            self.counts["exported" if ok else "failed"] += len(batch)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {**self.counts, "queued": len(self._queue) + self._in_flight}


_BUSY: set[BoundedSpanProcessor] = set()
_BUSY_LOCK = threading.Lock()


def flush_pending(timeout_s: float = 3.0) -> bool:
    """Export every span still queued in this process, local store first (fast), remote
    collectors after, all within ``timeout_s`` in total. Runs at interpreter exit (and
    after every CLI command), so one-shot commands and dropped Gateways lose nothing."""
    deadline = time.monotonic() + timeout_s
    with _BUSY_LOCK:
        pending = sorted(_BUSY, key=lambda p: p.overflow != "inline")
    ok = True
    for proc in pending:
        left = max(deadline - time.monotonic(), 0.0)
        ok = proc.force_flush(int(left * 1000)) and ok
    return ok


__all__ = [
    "KIND_ATTR", "BoundedSpanProcessor", "OtlpProtocol", "Overflow",
    "StoreSpanExporter", "flush_pending", "otlp_exporter", "span_row",
]
