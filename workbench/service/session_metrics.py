"""Containment on ``/metrics``: conversations and the share that never asked for a human,
per model and prompt version of each session's last answer (last 30 days, from the
shared store, so every replica reports the same; read at most every 10 s)."""

from __future__ import annotations

import threading
import time
from typing import Any

from workbench.models.gateway import Gateway
from workbench.observability.prometheus import Gauge
from workbench.service.metrics import ServiceMetrics

WINDOW_DAYS = 30
TTL_S = 10.0


class _Cached:
    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self.lock = threading.Lock()
        self.at = 0.0
        self.rows: list[dict[str, Any]] = []

    def rows_now(self) -> list[dict[str, Any]]:
        from workbench.observability.containment import containment_by_label

        with self.lock:
            if time.monotonic() - self.at > TTL_S:
                self.rows = containment_by_label(self.gateway.store, WINDOW_DAYS)
                self.at = time.monotonic()
            return self.rows


def register_session_metrics(metrics: ServiceMetrics, gateway: Gateway) -> None:
    cached = _Cached(gateway)

    def sessions() -> list[tuple[tuple[str, ...], float]]:
        return [((r["model"], r["prompt_version"]), float(r["sessions"]))
                for r in cached.rows_now()]

    def ratio() -> list[tuple[tuple[str, ...], float]]:
        return [((r["model"], r["prompt_version"]), r["contained"] / r["sessions"])
                for r in cached.rows_now() if r["sessions"]]

    metrics.extra += [
        Gauge("workbench_sessions", f"Conversations with an answer in the last {WINDOW_DAYS} "
              "days (product traffic), by model and prompt version of the last answer.",
              ("model", "prompt_version"), fn=sessions),
        Gauge("workbench_sessions_contained_ratio", "Containment rate: share of those "
              "conversations with no escalate-to-a-human signal.",
              ("model", "prompt_version"), fn=ratio),
    ]


__all__ = ["register_session_metrics"]
