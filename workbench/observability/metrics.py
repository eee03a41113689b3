"""Product metrics from traces and feedback: per day, model and prompt version.

Rates are per answered trace (a trace with an LLM span, or a RAG answer: a ``rag.ask``
span, which extractive answers have without any LLM call): thumbs-up rate is
ups / thumbs given (never mixed with implicit signals), retry / edit / copy / abandon
rates are the share of answers that got that signal at least once. Latency is the root
span's duration; time to first token comes from streamed LLM spans. Renders as a table
and an inline SVG plot (no JavaScript, so it works offline in Jupyter and marimo).

**Containment rate** is per session (``session.id`` on the spans; an answer outside any
session is a session of its own): the share of sessions with no ``escalate`` signal (the
user asked for a human) on any of their answers. A session counts in the group (day,
model, prompt version) of its last answer, where the user either got what they needed or
gave up. Traffic the platform makes itself (``workbench.traffic``: eval targets, judges,
probes) is left out of every product metric.
"""

from __future__ import annotations

import html
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from workbench.observability.schema import feedback, spans
from workbench.observability.views import html_table
from workbench.store import Store

RATES = ("thumbs_up_rate", "retry_rate", "edit_rate", "copy_rate", "abandon_rate",
         "escalate_rate", "containment_rate")
COLUMNS = ("day", "model", "prompt_version", "answers", "thumbs", "sessions", *RATES,
           "rating_mean", "latency_p50_ms", "latency_p95_ms", "ttft_p50_ms")
_PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#d97706", "#0891b2")


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(int(q * len(values)), len(values) - 1)], 1)


def _answers(store: Store, since_ns: int) -> dict[str, dict[str, Any]]:
    """trace_id -> day, model, prompt_version, latency, ttft (traces with an LLM span)."""
    stmt = (select(spans.c.trace_id, spans.c.parent_id, spans.c.kind, spans.c.name,
                   spans.c.start_ns,
                   spans.c.duration_ms, spans.c.model, spans.c.attributes)
            .where(spans.c.start_ns >= since_ns).order_by(spans.c.start_ns))
    traces: dict[str, dict[str, Any]] = {}
    with store.read() as conn:
        for r in conn.execute(stmt):
            t = traces.setdefault(r.trace_id, {"start_ns": r.start_ns, "latency_ms": 0.0,
                                               "model": None, "prompt_version": None,
                                               "ttft_ms": None, "llm": False,
                                               "session": None, "traffic": None})
            attrs = r.attributes or {}
            t["session"] = attrs.get("session.id") or t["session"]
            t["traffic"] = attrs.get("workbench.traffic") or t["traffic"]
            if r.parent_id is None:
                t["latency_ms"] = max(t["latency_ms"], r.duration_ms)
            if r.kind == "LLM" or r.name == "rag.ask":
                t["llm"] = True
                t["model"] = r.model or t["model"]
                if attrs.get("workbench.ttft_ms") is not None:
                    t["ttft_ms"] = float(attrs["workbench.ttft_ms"])
            version = attrs.get("llm.prompt_template.version")
            if version is not None:
                t["prompt_version"] = str(version)
    out = {}
    for tid, t in traces.items():
        if t["llm"] and not t["traffic"]:
            t["day"] = time.strftime("%Y-%m-%d", time.localtime(t["start_ns"] / 1e9))
            out[tid] = t
    return out


def _sessions(answers: dict[str, dict[str, Any]], signals: dict[str, dict[str, list[Any]]],
              by: Sequence[str]) -> dict[tuple[Any, ...], list[bool]]:
    """Group key -> contained (no escalate in the session) per session; a session is
    counted in the group of its last answer."""
    members: dict[str, list[str]] = defaultdict(list)
    for tid, a in answers.items():
        members[a["session"] or f"trace:{tid}"].append(tid)
    out: dict[tuple[Any, ...], list[bool]] = defaultdict(list)
    for tids in members.values():
        last = answers[max(tids, key=lambda t: answers[t]["start_ns"])]
        escalated = any(signals[t]["escalate"] for t in tids)
        out[tuple(last[b] or "-" for b in by)].append(not escalated)
    return out


@dataclass
class MetricsTable:
    rows: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.rows)

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(COLUMNS))

    def plot(self, metrics: Sequence[str] = RATES[:4]) -> SvgPlot:
        return SvgPlot(self.rows, tuple(metrics))

    def __repr__(self) -> str:
        head = "  ".join(COLUMNS)
        return "\n".join([head, *("  ".join(str(r.get(c, "-")) for c in COLUMNS)
                                  for r in self.rows)])

    def _repr_html_(self) -> str:
        return html_table(self.rows, COLUMNS) + self.plot()._repr_html_()


def product_metrics(store: Store, days: int = 30, by: Sequence[str] = (
        "day", "model", "prompt_version")) -> MetricsTable:
    """The table; ``by`` is any of day, model, prompt_version."""
    from workbench.observability import feedback as fb_mod
    from workbench.observability.traces import flush

    bad = [b for b in by if b not in ("day", "model", "prompt_version")]
    if bad:
        from workbench.errors import BadRequest

        raise BadRequest(f"cannot group metrics by {bad}; use day, model, prompt_version")
    flush(store)
    fb_mod.link_pending(store)
    since = time.time() - days * 86400
    answers = _answers(store, int(since * 1e9))
    signals: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    with store.read() as conn:
        for r in conn.execute(select(feedback.c.trace_id, feedback.c.kind, feedback.c.value_num)
                              .where(feedback.c.updated_at >= since)):
            signals[r.trace_id][r.kind].append(r.value_num)
    groups: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    for tid, a in answers.items():
        groups[tuple(a[b] or "-" for b in by)].append(tid)
    contained = _sessions(answers, signals, by)
    rows = []
    for key, tids in sorted(groups.items()):
        n = len(tids)
        thumbs = [v for t in tids for v in signals[t]["thumbs"]]
        ratings = [v for t in tids for v in signals[t]["rating"]]

        def share(kind: str, tids: list[str] = tids, n: int = n) -> float:
            return round(sum(1 for t in tids if signals[t][kind]) / n, 4)

        lat = [answers[t]["latency_ms"] for t in tids]
        ttft = [answers[t]["ttft_ms"] for t in tids if answers[t]["ttft_ms"] is not None]
        row: dict[str, Any] = dict(zip(by, key, strict=True))
        row.update({
            "answers": n, "thumbs": len(thumbs),
            "thumbs_up_rate": round(sum(thumbs) / len(thumbs), 4) if thumbs else None,
            "retry_rate": share("retry"), "edit_rate": share("edit"),
            "copy_rate": share("copy"), "abandon_rate": share("abandon"),
            "escalate_rate": share("escalate"),
            "sessions": len(contained.get(key, [])),
            "containment_rate": (round(sum(contained[key]) / len(contained[key]), 4)
                                 if contained.get(key) else None),
            "rating_mean": round(statistics.fmean(ratings), 2) if ratings else None,
            "latency_p50_ms": _pct(lat, 0.5), "latency_p95_ms": _pct(lat, 0.95),
            "ttft_p50_ms": _pct(ttft, 0.5),
        })
        rows.append(row)
    return MetricsTable(rows)


@dataclass
class SvgPlot:
    """Rates per day as lines (one colour per metric; dashes per model/prompt group)."""

    rows: list[dict[str, Any]]
    metrics: tuple[str, ...]
    width: int = 640
    height: int = 220

    def _repr_html_(self) -> str:
        return self.svg()

    def svg(self) -> str:
        days = sorted({str(r.get("day", "-")) for r in self.rows})
        groups = sorted({(str(r.get("model", "-")), str(r.get("prompt_version", "-")))
                         for r in self.rows})
        w, h, pad = self.width, self.height, 36
        if not self.rows:
            return "<p><i>no answered traces in the period</i></p>"

        def x(i: int) -> float:
            return pad + (w - 2 * pad) * (i / max(len(days) - 1, 1))

        def y(v: float) -> float:
            return h - pad - (h - 2 * pad) * v

        parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' "
                 f"style='font:11px sans-serif'>",
                 f"<line x1='{pad}' y1='{y(0)}' x2='{w - pad}' y2='{y(0)}' stroke='#999'/>",
                 f"<line x1='{pad}' y1='{y(0)}' x2='{pad}' y2='{y(1)}' stroke='#999'/>"]
        for v in (0, 0.5, 1):
            parts.append(f"<text x='4' y='{y(v) + 4}'>{v:.1f}</text>")
        for i, d in enumerate(days):
            parts.append(f"<text x='{x(i) - 28}' y='{h - 12}'>{html.escape(d)}</text>")
        legend_y = 12
        for mi, metric in enumerate(self.metrics):
            colour = _PALETTE[mi % len(_PALETTE)]
            for gi, (model, version) in enumerate(groups):
                pts = []
                for i, d in enumerate(days):
                    vals = [r[metric] for r in self.rows if str(r.get("day", "-")) == d
                            and str(r.get("model", "-")) == model
                            and str(r.get("prompt_version", "-")) == version
                            and r.get(metric) is not None]
                    if vals:
                        pts.append(f"{x(i):.1f},{y(float(statistics.fmean(vals))):.1f}")
                if not pts:
                    continue
                dash = "" if gi == 0 else f" stroke-dasharray='{2 + 2 * gi},3'"
                parts.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2'"
                             f"{dash} points='{' '.join(pts)}'/>")
                for p in pts:
                    cx, cy = p.split(",")
                    parts.append(f"<circle cx='{cx}' cy='{cy}' r='3' fill='{colour}'/>")
            parts.append(f"<text x='{w - pad - 110}' y='{legend_y}' fill='{colour}'>"
                         f"{html.escape(metric)}</text>")
            legend_y += 13
        if len(groups) > 1:
            parts.append(f"<text x='{pad + 4}' y='12' fill='#555'>dashes: "
                         + html.escape(", ".join(f"{m}/{v}" for m, v in groups)) + "</text>")
        parts.append("</svg>")
        return "".join(parts)


__all__ = ["COLUMNS", "RATES", "MetricsTable", "SvgPlot", "product_metrics"]
