"""Views of traces: a text tree (CLI) and an HTML waterfall (Jupyter and marimo).

The HTML is plain markup with inline styles: no JavaScript, no CDN, nothing to build,
so it renders the same in JupyterLab, classic Jupyter, VS Code, marimo and a saved
notebook. Inputs and outputs fold open with ``<details>``. Everything shown comes from
the span store, where prompts and answers are already redacted.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.observability.traces import Span, Trace

KIND_COLOURS = {"LLM": "#6f42c1", "EMBEDDING": "#0d9488", "RETRIEVER": "#d97706",
                "RERANKER": "#b45309", "CHAIN": "#2563eb", "TOOL": "#4b5563",
                "AGENT": "#be185d", "EVALUATOR": "#15803d", "GUARDRAIL": "#b91c1c"}
_SHOWN_ATTRS = ("llm.model_name", "embedding.model_name", "llm.token_count.prompt",
                "llm.token_count.completion", "llm.invocation_parameters", "llm.finish_reason",
                "workbench.ttft_ms", "workbench.cached", "workbench.redactions",
                "workbench.error_code", "llm.prompt_template.version")


def _ms(v: float) -> str:
    return f"{v / 1000:.2f} s" if v >= 1000 else f"{v:.1f} ms"


def _facts(span: Span) -> str:
    bits = [span.kind]
    if span.model:
        bits.append(span.model)
    if span.tokens_in or span.tokens_out:
        bits.append(f"tokens {span.tokens_in or 0}+{span.tokens_out or 0}")
    ttft = span.attributes.get("workbench.ttft_ms")
    if ttft is not None:
        bits.append(f"ttft {_ms(float(ttft))}")
    docs = span.documents()
    if docs:
        bits.append(f"{len(docs)} docs")
    if span.status == "ERROR":
        bits.append(f"ERROR: {span.status_message or ''}".strip())
    return " · ".join(bits)


def tree_lines(trace: Trace) -> list[str]:
    """``trace`` as an indented tree with start offsets and durations."""
    t0 = trace.start_ns
    out = [f"trace {trace.trace_id}  {_ms(trace.duration_ms)}  {len(trace.spans)} spans"]
    for depth, span in trace.walk():
        offset = (span.start_ns - t0) / 1e6
        pad = "  " * depth + ("└─ " if depth else "")
        out.append(f"{pad}{span.name}  [{_ms(span.duration_ms)} @ +{_ms(offset)}]  "
                   f"{_facts(span)}")
        for doc in span.documents()[:5]:
            out.append(f"{'  ' * (depth + 2)}doc {doc.get('id')}  score={doc.get('score')}")
    return out


def _block(title: str, text: str) -> str:
    return (f"<div style='margin:2px 0'><b style='color:#555'>{html.escape(title)}</b>"
            f"<pre style='white-space:pre-wrap;margin:2px 0;padding:4px 6px;background:#f6f8fa;"
            f"border-radius:4px;font-size:12px;max-height:240px;overflow:auto'>"
            f"{html.escape(text)}</pre></div>")


def _details(span: Span) -> str:
    parts = []
    msgs = []
    i = 0
    while f"llm.input_messages.{i}.message.role" in span.attributes:
        role = span.attributes[f"llm.input_messages.{i}.message.role"]
        content = span.attributes.get(f"llm.input_messages.{i}.message.content", "")
        msgs.append(f"[{role}] {content}")
        i += 1
    if msgs:
        parts.append(_block("input messages", "\n".join(msgs)))
    elif span.input:
        parts.append(_block("input", span.input))
    if span.output:
        parts.append(_block("output", span.output))
    docs = span.documents()
    if docs:
        parts.append(_block("documents", "\n".join(
            f"{d.get('id')}  score={d.get('score')}  {str(d.get('content') or '')[:200]}"
            for d in docs)))
    facts = {k: span.attributes[k] for k in _SHOWN_ATTRS if k in span.attributes}
    if span.status == "ERROR":
        facts["error"] = span.status_message
    if facts:
        parts.append(_block("attributes", json.dumps(facts, indent=1, default=str)))
    return "".join(parts)


def waterfall_html(trace: Trace) -> str:
    """A waterfall: one row per span, the bar placed on the trace's time axis."""
    t0, total = trace.start_ns, max(trace.duration_ms, 1e-6)
    rows = []
    for depth, span in trace.walk():
        left = (span.start_ns - t0) / 1e6 / total * 100
        width = max(span.duration_ms / total * 100, 0.4)
        colour = "#dc2626" if span.status == "ERROR" else KIND_COLOURS.get(span.kind, "#6b7280")
        details = _details(span)
        label = (f"<span style='padding-left:{depth * 14}px'>{html.escape(span.name)}</span> "
                 f"<small style='color:{colour}'>{html.escape(span.kind)}</small>")
        bar = (f"<div style='position:relative;height:14px;background:#f1f5f9;border-radius:3px'>"
               f"<div title='{html.escape(_facts(span), quote=True)}' style='position:absolute;"
               f"left:{left:.3f}%;width:{width:.3f}%;top:0;bottom:0;background:{colour};"
               f"border-radius:3px'></div></div>")
        summary = (f"<div style='display:grid;grid-template-columns:minmax(180px,30%) 1fr 80px;"
                   f"gap:8px;align-items:center'><div style='white-space:nowrap;overflow:hidden;"
                   f"text-overflow:ellipsis'>{label}</div>{bar}<div style='text-align:right;"
                   f"font-variant-numeric:tabular-nums'>{_ms(span.duration_ms)}</div></div>")
        if details:
            rows.append(f"<details class='wb-span' style='margin:1px 0'><summary style='cursor:"
                        f"pointer;list-style-position:outside'>{summary}</summary><div style='"
                        f"margin:2px 0 6px {depth * 14 + 14}px'><small style='color:#666'>"
                        f"{html.escape(_facts(span))}</small>{details}</div></details>")
        else:
            rows.append(f"<div class='wb-span' style='margin:1px 0 1px 14px'>{summary}</div>")
    head = (f"<div style='margin-bottom:4px'><b>trace</b> <code>{trace.trace_id}</code> · "
            f"{_ms(trace.duration_ms)} · {len(trace.spans)} spans</div>")
    return (f"<div class='wb-waterfall' style='font-family:system-ui,sans-serif;font-size:13px;"
            f"max-width:1100px'>{head}{''.join(rows)}</div>")


_LIST_COLUMNS = ("trace_id", "started", "root", "kind", "duration_ms", "spans", "model",
                 "tokens_in", "tokens_out", "errors")


def trace_list_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    return [f"{r['trace_id']}  {r['started']}  {r['root']:<24} {_ms(r['duration_ms']):>9}  "
            f"{r['spans']} spans  {r.get('model') or '-'}"
            + (f"  {r['errors']} errors" if r.get("errors") else "") for r in rows]


def html_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain HTML table (used by trace lists, feedback and metrics)."""
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{html.escape(c)}</th>"
                   for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td style='padding:2px 8px'>{html.escape(_cell(r.get(c)))}</td>"
                         for c in columns) + "</tr>" for r in rows)
    return (f"<table style='border-collapse:collapse;font-size:13px'><thead><tr>{head}</tr>"
            f"</thead><tbody>{body}</tbody></table>")


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def trace_list_html(rows: Sequence[dict[str, Any]]) -> str:
    return html_table(rows, _LIST_COLUMNS)


__all__ = [
    "KIND_COLOURS", "html_table", "trace_list_html", "trace_list_lines", "tree_lines",
    "waterfall_html",
]
