"""Reading traces back from the local span store: a list, one trace as a tree."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select

from workbench.errors import NotFound
from workbench.observability import views
from workbench.observability.schema import spans
from workbench.store import Store


def flush(store: Store, timeout_s: float = 5.0) -> None:
    """Write spans this process still holds for ``store`` (so a read sees them)."""
    from workbench.observability.tracing import _BY_STORE

    tracer = _BY_STORE.get(store)
    if tracer is not None:
        tracer.flush(timeout_s)


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    start_ns: int
    end_ns: int
    duration_ms: float
    status: str
    status_message: str | None
    model: str | None
    tokens_in: int | None
    tokens_out: int | None
    attributes: dict[str, Any]
    events: list[dict[str, Any]]
    children: list[Span] = field(default_factory=list)

    @property
    def input(self) -> str | None:
        v = self.attributes.get("input.value")
        return None if v is None else str(v)

    @property
    def output(self) -> str | None:
        v = self.attributes.get("output.value")
        return None if v is None else str(v)

    def documents(self) -> list[dict[str, Any]]:
        """Retrieved documents (id, score, ...) recorded on a RETRIEVER span."""
        docs: dict[int, dict[str, Any]] = {}
        prefix = "retrieval.documents."
        for key, value in self.attributes.items():
            if key.startswith(prefix):
                idx, _, rest = key[len(prefix):].partition(".document.")
                if idx.isdigit() and rest:
                    docs.setdefault(int(idx), {})[rest] = value
        return [docs[i] for i in sorted(docs)]


@dataclass
class Trace:
    """One trace: spans as a tree. Renders as a waterfall in Jupyter and marimo."""

    trace_id: str
    spans: list[Span]

    @property
    def roots(self) -> list[Span]:
        ids = {s.span_id for s in self.spans}
        return [s for s in self.spans if s.parent_id is None or s.parent_id not in ids]

    @property
    def start_ns(self) -> int:
        return min(s.start_ns for s in self.spans)

    @property
    def duration_ms(self) -> float:
        return (max(s.end_ns for s in self.spans) - self.start_ns) / 1e6

    def walk(self) -> Iterator[tuple[int, Span]]:
        """(depth, span) in tree order, children by start time."""
        def visit(span: Span, depth: int) -> Iterator[tuple[int, Span]]:
            yield depth, span
            for child in span.children:
                yield from visit(child, depth + 1)

        for root in self.roots:
            yield from visit(root, 0)

    def llm_spans(self) -> list[Span]:
        return [s for s in self.spans if s.kind == "LLM"]

    def answer(self) -> str | None:
        """The answer the user saw: the root's output, else the last LLM output."""
        for root in self.roots:
            if root.output:
                return root.output
        llms = self.llm_spans()
        return llms[-1].output if llms else None

    def question(self) -> str | None:
        for root in self.roots:
            if root.input:
                return root.input
        llms = self.llm_spans()
        return llms[0].input if llms else None

    def lines(self) -> list[str]:
        return views.tree_lines(self)

    def to_dict(self) -> dict[str, Any]:
        return {"trace_id": self.trace_id, "duration_ms": round(self.duration_ms, 3),
                "spans": [{k: v for k, v in s.__dict__.items() if k != "children"}
                          for _, s in self.walk()]}

    def __repr__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        return views.waterfall_html(self)


def _span(row: Any) -> Span:
    return Span(**{k: row._mapping[k] for k in (
        "trace_id", "span_id", "parent_id", "name", "kind", "start_ns", "end_ns",
        "duration_ms", "status", "status_message", "model", "tokens_in", "tokens_out",
        "attributes", "events")})


def get_trace(store: Store, trace_id: str) -> Trace:
    """One trace with its span tree; ``trace_id`` may be a unique prefix (>= 6 chars)."""
    flush(store)
    tid = trace_id.strip().lower()
    with store.read() as conn:
        if len(tid) < 32:
            if len(tid) < 6:
                raise NotFound(f"trace id {trace_id!r} is too short: give at least 6 characters")
            found = [r[0] for r in conn.execute(
                select(spans.c.trace_id).where(spans.c.trace_id.like(tid + "%"))
                .distinct().limit(2))]
            if len(found) > 1:
                raise NotFound(f"trace id prefix {trace_id!r} is ambiguous; give more characters")
            tid = found[0] if found else tid
        rows = conn.execute(select(spans).where(spans.c.trace_id == tid)
                            .order_by(spans.c.start_ns)).fetchall()
    if not rows:
        raise NotFound(f"no trace {trace_id!r} in the span store; `workbench traces` lists "
                       "recent ones (spans are written a moment after a call ends)")
    items = [_span(r) for r in rows]
    by_id = {s.span_id: s for s in items}
    for s in items:
        if s.parent_id and s.parent_id in by_id:
            by_id[s.parent_id].children.append(s)
    return Trace(tid, items)


@dataclass
class TraceList:
    rows: list[dict[str, Any]]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]

    def __repr__(self) -> str:
        return "\n".join(views.trace_list_lines(self.rows))

    def _repr_html_(self) -> str:
        return views.trace_list_html(self.rows)


def session_trace_ids(store: Store, session_id: str, limit: int = 1000) -> list[str]:
    """Trace ids whose spans carry ``session.id`` = ``session_id`` (oldest first)."""
    attr = spans.c.attributes["session.id"].as_string()
    with store.read() as conn:
        rows = conn.execute(select(spans.c.trace_id, func.min(spans.c.start_ns).label("t"))
                            .where(attr == session_id).group_by(spans.c.trace_id)
                            .order_by(func.min(spans.c.start_ns)).limit(limit))
        return [r.trace_id for r in rows]


def list_traces(store: Store, limit: int = 20, since: float | None = None,
                session: str | None = None) -> TraceList:
    """Most recent traces first: root span name, duration, span count, model, errors;
    ``session``: only the traces of that conversation, with a ``session`` column."""
    flush(store)
    agg = (select(spans.c.trace_id,
                  func.min(spans.c.start_ns).label("start_ns"),
                  func.max(spans.c.end_ns).label("end_ns"),
                  func.count().label("spans"),
                  func.sum(case((spans.c.status == "ERROR", 1), else_=0)).label("errors"),
                  func.max(spans.c.model).label("model"),
                  func.coalesce(func.sum(spans.c.tokens_in), 0).label("tokens_in"),
                  func.coalesce(func.sum(spans.c.tokens_out), 0).label("tokens_out"))
           .group_by(spans.c.trace_id).order_by(func.min(spans.c.start_ns).desc()).limit(limit))
    if since is not None:
        agg = agg.having(func.min(spans.c.start_ns) >= int(since * 1e9))
    if session is not None:
        agg = agg.where(spans.c.trace_id.in_(session_trace_ids(store, session)))
    with store.read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(agg)]
        ids = [r["trace_id"] for r in rows]
        roots: dict[str, tuple[str, str]] = {}
        if ids:
            for root in conn.execute(
                    select(spans.c.trace_id, spans.c.name, spans.c.kind)
                    .where(spans.c.trace_id.in_(ids), spans.c.parent_id.is_(None))
                    .order_by(spans.c.start_ns.desc())):
                roots[root.trace_id] = (root.name, root.kind)
    for r in rows:
        r["root"], r["kind"] = roots.get(r["trace_id"], ("(no root span)", "-"))
        r["duration_ms"] = round((r.pop("end_ns") - r["start_ns"]) / 1e6, 3)
        r["started"] = time.strftime("%Y-%m-%d %H:%M:%S",
                                     time.localtime(r.pop("start_ns") / 1e9))
        r["errors"] = int(r["errors"] or 0)
    return TraceList(rows)


__all__ = ["Span", "Trace", "TraceList", "flush", "get_trace", "list_traces",
           "session_trace_ids"]
