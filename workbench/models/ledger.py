"""The usage ledger: one row per governed call (never prompt text), and usage summaries."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, insert, select

from workbench.store import HotStatement, Store, ledger

GROUPS = {"team": ledger.c.team, "key": ledger.c.key_id, "model": ledger.c.model,
          "outcome": ledger.c.outcome}


@dataclass
class Entry:
    endpoint: str
    outcome: str  # ok | cached | denied | error
    key_id: str | None = None
    team: str | None = None
    model: str | None = None
    provider: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    error_code: str | None = None
    redactions: int = 0
    trace_id: str | None = None
    # Comma-separated codes when the upstream's usage was corrected (see
    # workbench.models.metering): usage_missing, usage_invalid, usage_clamped,
    # charge_above_reservation, reservation_swept.
    anomaly: str | None = None


# Compiled once per dialect and run on the DBAPI cursor: one row per governed call, and
# SQLAlchemy's per-execute work cost more than the insert itself.
_INSERT = HotStatement(insert(ledger).values(
    {c.name: bindparam(c.name) for c in ledger.c if c.name != "id"}))


def record(conn: Connection, entry: Entry) -> None:
    _INSERT.run(conn, {"ts": time.time(), **entry.__dict__})


def record_alone(store: Store, entry: Entry) -> None:
    with store.write() as conn:
        record(conn, entry)


def usage(store: Store, by: tuple[str, ...] = ("team", "key", "model"),
          since: float | None = None) -> list[dict[str, Any]]:
    """Spend and traffic grouped by any of team / key / model / outcome."""
    bad = [b for b in by if b not in GROUPS]
    if bad:
        from workbench.errors import BadRequest

        raise BadRequest(f"cannot group usage by {bad}; choose from {sorted(GROUPS)}")
    cols = [GROUPS[b].label(b) for b in by]
    stmt = select(
        *cols,
        func.count().label("calls"),
        func.sum(case((ledger.c.outcome == "ok", 1), else_=0)).label("ok"),
        func.sum(case((ledger.c.outcome == "cached", 1), else_=0)).label("cached"),
        func.sum(case((ledger.c.outcome == "denied", 1), else_=0)).label("denied"),
        func.sum(case((ledger.c.outcome == "error", 1), else_=0)).label("errors"),
        func.sum(case((ledger.c.anomaly.is_not(None), 1), else_=0)).label("anomalies"),
        func.coalesce(func.sum(ledger.c.tokens_in), 0).label("tokens_in"),
        func.coalesce(func.sum(ledger.c.tokens_out), 0).label("tokens_out"),
        func.coalesce(func.sum(ledger.c.cost_usd), 0.0).label("cost_usd"),
        func.coalesce(func.avg(ledger.c.latency_ms), 0.0).label("avg_latency_ms"),
    )
    if since is not None:
        stmt = stmt.where(ledger.c.ts >= since)
    if cols:
        stmt = stmt.group_by(*[GROUPS[b] for b in by]).order_by(*[GROUPS[b] for b in by])
    with store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def entries(store: Store, limit: int = 50, trace_id: str | None = None) -> list[dict[str, Any]]:
    stmt = select(ledger).order_by(ledger.c.id.desc()).limit(limit)
    if trace_id:
        stmt = stmt.where(ledger.c.trace_id == trace_id)
    with store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


__all__ = [
    "GROUPS", "Entry", "entries", "record", "record_alone", "usage",
]
