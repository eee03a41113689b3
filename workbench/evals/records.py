"""The records an eval produces: one :class:`SampleRecord` per question (what the target
answered) and one :class:`Score` per sample per metric or check."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["ok", "failed", "skipped"]
Kind = Literal["judge", "metric", "check"]
REASON_CHARS = 300


def clean_reason(text: str) -> str:
    """One line, PII/secrets masked, at most REASON_CHARS: reasons are stored and shown
    in reports, and an error message can quote the text that caused it."""
    from workbench.guardrails import mask_text

    flat = mask_text(" ".join(text.split()))
    return flat if len(flat) <= REASON_CHARS else flat[:REASON_CHARS - 1] + "…"


@dataclass
class SampleRecord:
    """A golden question and the response being evaluated."""

    sample_id: str
    question: str
    answer: str | None = None
    contexts: list[str] = field(default_factory=list)
    reference: str | None = None
    tags: list[str] = field(default_factory=list)
    latency_ms: float | None = None
    cost_usd: float | None = None
    trace_id: str | None = None
    error: str | None = None  # the target failed: no answer to judge
    facts: dict[str, Any] | None = None  # an agent target's run facts (not stored)

    def row(self) -> dict[str, Any]:
        """The fields metrics read."""
        return {"question": self.question, "answer": self.answer, "contexts": self.contexts,
                "reference": self.reference}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if out.get("facts") is None:
            out.pop("facts", None)
        return out


@dataclass
class Score:
    """One metric (or check) on one sample. ``value`` is None unless ``status == "ok"``:
    a failure is a row with a reason, never a NaN that an average would swallow."""

    sample_id: str
    metric: str
    kind: Kind
    status: Status
    value: float | None = None
    reason: str | None = None
    passed: bool | None = None  # checks only
    cached: bool = False
    calls: int = 0  # model calls made for this score (chat + embeddings)
    embed_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    trace_id: str | None = None
    saved_calls: int = 0  # model calls a cache hit avoided

    def __post_init__(self) -> None:
        if self.status == "ok" and (self.value is None or not math.isfinite(self.value)):
            raise ValueError(f"score {self.metric}/{self.sample_id}: ok needs a finite value")
        if self.status != "ok":
            self.value = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


__all__ = ["REASON_CHARS", "Kind", "SampleRecord", "Score", "Status", "clean_reason"]
