"""The tour's observability step: a recorded trace and feedback on it, shown back."""

from __future__ import annotations

from typing import Any, Protocol

from workbench.observability import feedback, tracing
from workbench.observability.traces import get_trace


class _Chats(tracing.HasStore, Protocol):
    """What the step needs of a Gateway (observability sits below the Gateway: it is
    handed one, it never imports it)."""

    def chat(self, messages: Any, **params: Any) -> Any: ...

QUESTION = "In one sentence: why do teams trace LLM calls?"


def tour_step(gateway: _Chats, trace_id: str | None = None) -> dict[str, Any]:
    """Trace an answer (or use ``trace_id`` from an earlier step), record explicit and
    implicit feedback on it, and read both back. Returns ``title``, ``ok``, ``lines``
    (to print) and ``data`` (trace_id, feedback ids) - the fields of ``tour.Step``."""
    if trace_id is None:
        with tracing.span("tour.ask", kind="CHAIN", input=QUESTION, gateway=gateway) as root:
            res = gateway.chat([{"role": "system", "content": "Answer in one short sentence."},
                                {"role": "user", "content": QUESTION}],
                               max_tokens=40, temperature=0)
            root.set_output(res.text)
        trace_id = root.trace_id
    store = gateway.store
    recorded = [
        feedback.record(store, trace_id=trace_id, kind="thumbs", value="up",
                        source_id="tour", idempotency_id=f"tour-{trace_id}-thumbs"),
        feedback.record(store, trace_id=trace_id, kind="copy", source_id="tour",
                        idempotency_id=f"tour-{trace_id}-copy"),
        feedback.record(store, trace_id=trace_id, kind="edit", source_id="tour",
                        value="Tracing shows what each step did, how long it took and "
                              "what it cost, so teams can debug and improve answers.",
                        idempotency_id=f"tour-{trace_id}-edit"),
    ]
    trace = get_trace(store, trace_id)
    lines = trace.lines()
    lines.append("feedback on this trace:")
    for r in recorded:
        fb = r.feedback
        value = fb["value"] if fb["kind"] != "edit" else f"{len(str(fb['value']))} chars"
        lines.append(f"  {fb['kind']:<7} {value!s:<10} ({r.status}; linked={fb['linked']})")
    edit = recorded[-1].feedback
    if edit.get("diff"):
        lines.append("  edit diff (model -> user):")
        lines += [f"    {line}" for line in str(edit["diff"]).splitlines()[2:8]]
    lines.append(f"see it again: workbench traces show {trace_id}; "
                 "workbench feedback list --trace " + trace_id)
    # An extractive answer (the embedded default) makes embedding calls, no chat call.
    model_calls = [s for s in trace.spans if s.kind in ("LLM", "EMBEDDING")]
    ok = bool(model_calls) and all(r.feedback["linked"] for r in recorded)
    return {"title": "Trace and feedback (observability)", "ok": ok, "lines": lines,
            "data": {"trace_id": trace_id, "spans": len(trace.spans),
                     "feedback_ids": [r.id for r in recorded]}}


__all__ = ["tour_step"]
