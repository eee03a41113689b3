"""Observability: tracing (OpenTelemetry + OpenInference), feedback, metrics.

Submodules load on first use so that ``import workbench`` stays fast::

    from workbench.observability import tracing, feedback, traces, metrics
"""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = ("tracing", "traces", "feedback", "feedback_http",
               "metrics", "views", "schema", "exporters", "tour", "semconv", "genai_metrics",
               "feedback_export", "prometheus")

__all__ = list(_SUBMODULES)


def __getattr__(name: str) -> Any:
    if name not in _SUBMODULES:
        raise AttributeError(f"module 'workbench.observability' has no attribute {name!r}")
    return importlib.import_module(f"workbench.observability.{name}")
