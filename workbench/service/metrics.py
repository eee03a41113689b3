"""Prometheus metrics for the service, in the text exposition format (version 0.0.4).

Small on purpose (counters, one histogram family, callback gauges) instead of a client
library: the service needs a dozen series, and the format is a few lines of text.

Request counts, latencies and tokens are per process, as Prometheus expects from a scrape
target: run one worker per container and scrape each replica, or sum over instances.
With ``workbench serve --workers N`` a scrape reaches one worker at a time. The
``workbench_feedback_*`` gauges are read from the shared store, so every worker and
replica reports the same global value (aggregate them with ``max``, not ``sum``).
"""

from __future__ import annotations

import bisect
import math
import os
import resource
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

# Seconds. Answers from a small local model take one to a few seconds; feedback, health
# and metrics take milliseconds: the buckets cover both ends.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
Labels = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()):
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self._lock = threading.Lock()

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def lines(self) -> list[str]:
        raise NotImplementedError


class _Labelled(_Metric):
    """One float per label tuple: what counters and gauges share."""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()):
        super().__init__(name, help_text, labels)
        self._values: dict[Labels, float] = {}

    def _add(self, amount: float, labels: Labels) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        with self._lock:
            return self._values.get(labels, 0.0)

    def _items(self) -> list[tuple[Labels, float]]:
        with self._lock:
            return sorted(self._values.items())

    def lines(self) -> list[str]:
        return [f"{self.name}{_labels(self.label_names, k)} {_num(v)}" for k, v in self._items()]


class Counter(_Labelled):
    kind = "counter"

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self._add(amount, labels)


class Gauge(_Labelled):
    """A value set directly, or read from ``fn`` at scrape time (label tuple -> value)."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (),
                 fn: Callable[[], Iterable[tuple[Labels, float]]] | None = None):
        super().__init__(name, help_text, labels)
        self._fn = fn

    def set(self, value: float, *labels: str) -> None:
        with self._lock:
            self._values[labels] = value

    def add(self, amount: float, *labels: str) -> None:
        self._add(amount, labels)

    def _items(self) -> list[tuple[Labels, float]]:
        return sorted(self._fn()) if self._fn is not None else super()._items()


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (),
                 buckets: Sequence[float] = LATENCY_BUCKETS):
        super().__init__(name, help_text, labels)
        self.buckets = tuple(sorted(buckets))
        self._counts: dict[Labels, list[int]] = {}
        self._sums: dict[Labels, float] = {}

    def observe(self, value: float, *labels: str) -> None:
        i = bisect.bisect_left(self.buckets, value)
        with self._lock:
            counts = self._counts.setdefault(labels, [0] * (len(self.buckets) + 1))
            counts[i] += 1
            self._sums[labels] = self._sums.get(labels, 0.0) + value

    def count(self, *labels: str) -> int:
        with self._lock:
            return sum(self._counts.get(labels, ()))

    def lines(self) -> list[str]:
        with self._lock:
            snapshot = sorted((k, list(c), self._sums[k]) for k, c in self._counts.items())
        out = []
        for key, counts, total in snapshot:
            cumulative = 0
            for bound, n in zip((*self.buckets, math.inf), counts, strict=True):
                cumulative += n
                le = 'le="' + _num(bound) + '"'
                out.append(f"{self.name}_bucket{_labels(self.label_names, key, le)} {cumulative}")
            out.append(f"{self.name}_sum{_labels(self.label_names, key)} {_num(total)}")
            out.append(f"{self.name}_count{_labels(self.label_names, key)} {cumulative}")
        return out


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

    def families(self) -> list[_Metric]:
        return [self.requests, self.latency, self.in_flight, self.asks, self.tokens,
                self.feedback, self.feedback_up, self.rss, self.start_time]

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


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "Counter", "Gauge", "Histogram",
           "MetricsMiddleware", "ServiceMetrics"]
