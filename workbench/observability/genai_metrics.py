"""The OpenTelemetry GenAI client histograms, per process: ``gen_ai.client.token.usage``
and ``gen_ai.client.operation.duration``, with the bucket boundaries the conventions
recommend. The service's ``/metrics`` renders them in Prometheus' text format (dots become
underscores there, seconds get their suffix), which is what the Grafana dashboard in
``docs/assets/grafana-workbench.json`` reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.observability import semconv as sc
from workbench.observability.prometheus import Histogram, Metric


@dataclass
class GenAIMetrics:
    """The two histograms, labelled by operation and model (and token type)."""

    duration: Histogram = field(default_factory=lambda: Histogram(
        "gen_ai_client_operation_duration_seconds",
        f"{sc.METRIC_OPERATION_DURATION}: duration of model calls through the Gateway.",
        ("gen_ai_operation_name", "gen_ai_request_model"), buckets=sc.DURATION_BUCKETS))
    tokens: Histogram = field(default_factory=lambda: Histogram(
        "gen_ai_client_token_usage",
        f"{sc.METRIC_TOKEN_USAGE}: tokens per model call, by gen_ai.token.type.",
        ("gen_ai_operation_name", "gen_ai_request_model", "gen_ai_token_type"),
        buckets=sc.TOKEN_BUCKETS))

    def record(self, operation: str, model: str, seconds: float, input_tokens: int | None,
               output_tokens: int | None) -> None:
        """One finished model call: its duration and its token counts by type."""
        self.duration.observe(seconds, operation, model)
        for kind, n in (("input", input_tokens), ("output", output_tokens)):
            if n is not None:
                self.tokens.observe(float(n), operation, model, kind)

    def families(self) -> list[Metric]:
        return [self.duration, self.tokens]


_METRICS = GenAIMetrics()


def genai_metrics() -> GenAIMetrics:
    """This process's GenAI histograms."""
    return _METRICS


__all__ = ["GenAIMetrics", "genai_metrics"]
