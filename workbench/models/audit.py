"""Append-only, hash-chained audit log of admin actions.

Each row's hash covers its content and the previous row's hash, so editing or deleting a
row breaks ``verify()``. Details never hold secrets: callers pass ids, names and limits.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, text

from workbench.store import Store, audit

GENESIS = "0" * 64


def _row_hash(prev_hash: str, ts: float, actor: str, action: str, target: str,
              details: dict[str, Any]) -> str:
    payload = json.dumps(
        [prev_hash, repr(ts), actor, action, target, details], sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def append(store: Store, conn: Connection, *, actor: str, action: str, target: str,
           details: dict[str, Any] | None = None) -> str:
    """Append inside the caller's write transaction (so the action and its record commit
    together). Returns the new row's hash."""
    if not store.is_sqlite:
        # Serialise appenders across processes; SQLite's BEGIN IMMEDIATE already does.
        conn.execute(text("SELECT pg_advisory_xact_lock(7770002)"))
    last = conn.execute(select(audit.c.hash).order_by(audit.c.id.desc()).limit(1)).scalar()
    prev = last or GENESIS
    ts = time.time()
    det = details or {}
    h = _row_hash(prev, ts, actor, action, target, det)
    conn.execute(insert(audit).values(ts=ts, actor=actor, action=action, target=target,
                                      details=det, prev_hash=prev, hash=h))
    return h


@dataclass(frozen=True)
class AuditCheck:
    ok: bool
    rows: int
    first_bad_id: int | None = None
    reason: str = ""


def verify(store: Store) -> AuditCheck:
    """Recompute the chain; report the first row that does not match."""
    prev = GENESIS
    n = 0
    with store.read() as conn:
        for row in conn.execute(select(audit).order_by(audit.c.id)):
            n += 1
            if row.prev_hash != prev:
                return AuditCheck(False, n, row.id, "previous-hash link broken (row deleted?)")
            expect = _row_hash(prev, row.ts, row.actor, row.action, row.target, row.details)
            if expect != row.hash:
                return AuditCheck(False, n, row.id, "row content changed after it was written")
            prev = row.hash
    return AuditCheck(True, n)


def entries(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    with store.read() as conn:
        rows = conn.execute(select(audit).order_by(audit.c.id.desc()).limit(limit))
        return [dict(r._mapping) for r in rows]
