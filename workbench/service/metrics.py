"""Prometheus metrics for the service, in the text exposition format (version 0.0.4).

Built on :mod:`workbench.observability.prometheus`; the GenAI client histograms
(``gen_ai_client_token_usage``, ``gen_ai_client_operation_duration_seconds``) of the
process's model calls are exposed beside the service's own series.

Request counts, latencies and tokens are per process, as Prometheus expects from a scrape
target: run one worker per container and scrape each replica, or sum over instances.
With ``workbench serve --workers N`` a scrape reaches one worker at a time. The
``workbench_feedback_*`` gauges are read from the shared store, so every worker and
replica reports the same global value (aggregate them with ``max``, not ``sum``).
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from workbench.observability.genai_metrics import genai_metrics
from workbench.observability.prometheus import (
    CONTENT_TYPE,
    LATENCY_BUCKETS,
    Counter,
    Gauge,
    Histogram,
    Labels,
    Metric,
)


def _rss_bytes() -> float:
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return float(int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError):
        # Not Linux: the peak is the best portable figure (kilobytes on Linux/BSD).
        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


class ServiceMetrics:
    """Every series the service exposes; ``render()`` is the /metrics body."""

    def __init__(self, feedback_fn: Callable[[], list[dict[str, object]]] | None = None,
                 feedback_ttl_s: float = 10.0):
        self.started = time.time()
        self.requests = Counter("workbench_service_requests_total",
                                "HTTP requests by method, route and status.",
                                ("method", "route", "status"))
        self.latency = Histogram("workbench_service_request_duration_seconds",
                                 "HTTP request duration (streams: until the last byte).",
                                 ("method", "route"))
        self.in_flight = Gauge("workbench_service_requests_in_flight",
                               "Requests being served by this process.")
        self.asks = Counter("workbench_service_asks_total",
                            "Answers by outcome (answered, no_context, error, "
                            "disconnected) and whether they were streamed.",
                            ("outcome", "streamed"))
        self.tokens = Counter("workbench_service_tokens_total",
                              "Model tokens used by answers, by model and type.",
                              ("model", "type"))
        self.feedback = Gauge("workbench_feedback_messages",
                              "Answers that received each feedback kind (from the store; "
                              "the same on every replica).", ("kind",), fn=self._feedback_counts)
        self.feedback_up = Gauge("workbench_feedback_thumbs_up_ratio",
                                 "Share of thumbs that are up (from the store).",
                                 fn=self._feedback_ratio)
        self.rss = Gauge("process_resident_memory_bytes", "Resident memory of this process.",
                         fn=lambda: [((), _rss_bytes())])
        self.start_time = Gauge("process_start_time_seconds", "Start time (epoch seconds).",
                                fn=lambda: [((), self.started)])
        self._feedback_fn = feedback_fn
        self._feedback_ttl_s = feedback_ttl_s
        self._feedback_cache: tuple[float, list[dict[str, object]]] = (0.0, [])
        self._feedback_lock = threading.Lock()
        self.extra: list[Metric] = []  # series other modules register (session metrics)

    def _feedback_rows(self) -> list[dict[str, object]]:
        if self._feedback_fn is None:
            return []
        with self._feedback_lock:
            at, rows = self._feedback_cache
            if time.monotonic() - at > self._feedback_ttl_s:
                rows = self._feedback_fn()
                self._feedback_cache = (time.monotonic(), rows)
            return rows

    def _feedback_counts(self) -> list[tuple[Labels, float]]:
        totals: dict[str, float] = {}
        for row in self._feedback_rows():
            kind = str(row.get("kind"))
            messages = row.get("messages")
            totals[kind] = totals.get(kind, 0.0) + float(messages if isinstance(messages, int | float)
                                                         else 0)
        return [((k,), v) for k, v in totals.items()]

    def _feedback_ratio(self) -> list[tuple[Labels, float]]:
        for row in self._feedback_rows():
            rate = row.get("up_rate")
            if row.get("kind") == "thumbs" and isinstance(rate, int | float):
                return [((), float(rate))]
        return []

    def families(self) -> list[Metric]:
        return [self.requests, self.latency, self.in_flight, self.asks, self.tokens,
                self.feedback, self.feedback_up, self.rss, self.start_time, *self.extra,
                *genai_metrics().families()]

    def render(self) -> str:
        out: list[str] = []
        for family in self.families():
            out += family.header()
            out += family.lines()
        return "\n".join(out) + "\n"


class MetricsMiddleware:
    """Counts every HTTP request by route template (never the raw path: unbounded label
    values would make Prometheus series explode) and times it to the last body byte."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering
        m = self.metrics

        async def send_status(message: AsgiMessage) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        m.in_flight.add(1)
        try:
            await self.app(scope, receive, send_status)
        finally:
            m.in_flight.add(-1)
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            method = str(scope.get("method", ""))
            m.requests.inc(method, route, str(status))
            m.latency.observe(time.perf_counter() - started, method, route)


__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "Counter", "Gauge", "Histogram",
           "MetricsMiddleware", "ServiceMetrics"]
