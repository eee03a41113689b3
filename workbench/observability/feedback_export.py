"""Feedback to where teams read traces: Arize Phoenix annotations and Langfuse scores.

The workbench keeps feedback in its own store (deduped, masked, linked to traces); this
module posts the same rows to a trace viewer so users see thumbs, ratings and edits next
to the spans they judge. Both targets are idempotent by the feedback id: Phoenix's
``identifier`` upserts an annotation, Langfuse's score ``id`` does too, so re-sending a
row (a retry, a second export) updates instead of duplicating.

    workbench feedback export-to phoenix --url http://127.0.0.1:6006
    workbench feedback export-to langfuse --url https://cloud.langfuse.com   # LANGFUSE_* keys

Only masked fields leave: the name, value, comment (masked at record time), kind and
source; never the key id or metadata values.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from workbench.errors import BadRequest, ConfigError, UpstreamError

Target = Literal["phoenix", "langfuse"]
BATCH = 100


def _label_score(row: Mapping[str, Any]) -> tuple[str | None, float | None]:
    """(label, score) of a feedback row: booleans become up/down and 1/0."""
    value = row.get("value")
    if isinstance(value, bool):
        return ("up" if value else "down"), (1.0 if value else 0.0)
    if isinstance(value, int | float):
        return None, float(value)
    return (str(value)[:256] if value is not None else row.get("kind")), None


def phoenix_annotation(row: Mapping[str, Any]) -> dict[str, Any]:
    """A Phoenix trace annotation (``POST /v1/trace_annotations``) for a feedback row."""
    label, score = _label_score(row)
    result = {k: v for k, v in (("label", label), ("score", score),
                                ("explanation", row.get("comment"))) if v is not None}
    return {"trace_id": row["trace_id"], "name": row.get("name") or row["kind"],
            "annotator_kind": {"user": "HUMAN", "llm-judge": "LLM"}.get(
                str(row.get("source_kind")), "CODE"),
            "result": result, "identifier": f"workbench:{row['id']}",
            "metadata": {"source": "genai-workbench", "kind": row["kind"],
                         "feedback_id": row["id"]}}


def langfuse_score(row: Mapping[str, Any]) -> dict[str, Any]:
    """A Langfuse score (``POST /api/public/scores``) for a feedback row."""
    value = row.get("value")
    out: int | float | str
    if isinstance(value, bool):
        data_type, out = "BOOLEAN", (1 if value else 0)
    elif isinstance(value, int | float):
        data_type, out = "NUMERIC", value
    else:
        data_type, out = "CATEGORICAL", str(value if value is not None else row["kind"])[:256]
    score = {"id": f"workbench-{row['id']}", "traceId": row["trace_id"],
             "name": row.get("name") or row["kind"], "value": out, "dataType": data_type,
             "metadata": {"source": "genai-workbench", "kind": row["kind"]}}
    if row.get("comment"):
        score["comment"] = row["comment"]
    return score


@dataclass
class ExportReport:
    """What one export sent."""

    target: str
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class FeedbackExporter:
    """Posts feedback rows to Phoenix or Langfuse over their REST APIs.

    Phoenix: ``url`` is the server (``http://127.0.0.1:6006``); an API key, if the server
    asks for one, comes from ``PHOENIX_API_KEY``. Langfuse: ``url`` is the host; keys
    from ``LANGFUSE_PUBLIC_KEY`` / ``LANGFUSE_SECRET_KEY`` (never from files).
    """

    target: Target
    url: str
    timeout_s: float = 10.0
    transport: Any = None  # httpx transport (tests)

    def _client(self) -> Any:
        import httpx

        headers: dict[str, str] = {}
        auth: tuple[str, str] | None = None
        if self.target == "phoenix":
            if os.environ.get("PHOENIX_API_KEY"):
                headers["Authorization"] = f"Bearer {os.environ['PHOENIX_API_KEY']}"
        else:
            pub, sec = os.environ.get("LANGFUSE_PUBLIC_KEY"), os.environ.get("LANGFUSE_SECRET_KEY")
            if not pub or not sec:
                raise ConfigError("set LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY to export "
                                  "feedback to Langfuse")
            auth = (pub, sec)
        return httpx.Client(base_url=self.url.rstrip("/"), headers=headers, auth=auth,
                            timeout=self.timeout_s, transport=self.transport)

    def export(self, rows: Iterable[Mapping[str, Any]]) -> ExportReport:
        """Send every linked row (feedback for a trace the store has seen); rows whose
        trace is unknown stay for a later export."""
        import httpx

        if self.target not in ("phoenix", "langfuse"):
            raise BadRequest("feedback export target must be phoenix or langfuse")
        todo = [r for r in rows if r.get("linked") and r.get("trace_id")]
        report = ExportReport(self.target)
        with self._client() as client:
            try:
                if self.target == "phoenix":
                    self._phoenix(client, todo, report)
                else:
                    self._langfuse(client, todo, report)
            except httpx.TransportError as exc:
                raise UpstreamError(f"{self.target} at {self.url} is unreachable "
                                    f"({type(exc).__name__}); is it running?") from None
        return report

    def _phoenix(self, client: Any, rows: list[Mapping[str, Any]], report: ExportReport) -> None:
        for i in range(0, len(rows), BATCH):
            batch = rows[i:i + BATCH]
            resp = client.post("/v1/trace_annotations", params={"sync": "true"},
                               json={"data": [phoenix_annotation(r) for r in batch]})
            if resp.status_code < 300:
                report.sent += len(batch)
            else:
                report.failed += len(batch)
                report.errors.append(f"HTTP {resp.status_code}: {resp.text[:200]}")

    def _langfuse(self, client: Any, rows: list[Mapping[str, Any]], report: ExportReport) -> None:
        for row in rows:
            resp = client.post("/api/public/scores", json=langfuse_score(row))
            if resp.status_code < 300:
                report.sent += 1
            else:
                report.failed += 1
                report.errors.append(f"HTTP {resp.status_code}: {resp.text[:200]}")


__all__ = ["ExportReport", "FeedbackExporter", "langfuse_score", "phoenix_annotation"]
