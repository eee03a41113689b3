"""Prometheus text exposition (format 0.0.4): counters, gauges and histograms.

Small on purpose instead of a client library: the workbench exposes a few dozen series,
and the format is a few lines of text. A leaf module: the service's ``/metrics`` and the
GenAI client histograms (:mod:`workbench.observability.genai_metrics`) both build on it.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterable, Sequence

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


class Metric:
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


class _Labelled(Metric):
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


class Histogram(Metric):
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


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "Counter", "Gauge", "Histogram", "Labels", "Metric"]
