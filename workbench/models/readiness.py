"""Readiness shared by the gateway proxy and the service: can the store actually write?

Reading the store is not enough: on a full disk (or a read-only file, a Postgres in
recovery, a revoked grant) every governed request fails closed, because each one writes
a reservation and a ledger row, while a read-only check stays green. The probe commits
one tiny row (upserted, so the table never grows) and reports what failed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlalchemy import Column, Float, String, Table
from sqlalchemy.exc import SQLAlchemyError

from workbench.store import Store, metadata

if TYPE_CHECKING:
    from workbench.models.gateway import Gateway

store_probe = Table(
    "store_probe", metadata,
    Column("id", String(32), primary_key=True),
    Column("ts", Float, nullable=False),
)


def write_probe(store: Store) -> str:
    """``"ok"`` if a small write commits, else ``"error: cannot write (...)"``."""
    if store.is_sqlite:
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    now = time.time()
    stmt = insert(store_probe).values(id="readyz", ts=now)
    stmt = stmt.on_conflict_do_update(index_elements=["id"], set_={"ts": now})
    try:
        with store.write() as conn:
            conn.execute(stmt)
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None) or exc
        detail = str(orig).splitlines()[0][:160] if str(orig) else ""
        return f"error: cannot write ({type(orig).__name__}{': ' + detail if detail else ''})"
    return "ok"


def readiness(gateway: Gateway) -> dict[str, str]:
    """The Gateway's checks (store readable, default provider) with the store check
    extended to a write probe."""
    checks = gateway.ready()
    if checks.get("store") == "ok":
        checks["store"] = write_probe(gateway.store)
    return checks


__all__ = ["readiness", "store_probe", "write_probe"]
