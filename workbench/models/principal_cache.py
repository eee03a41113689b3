"""A per-process cache of authenticated principals that never outlives a change.

Every governed call used to read the key row and its team row before doing anything
(one read transaction, two statements, and a threadpool hop in the proxy). Principals
change rarely, so each process keeps the ones it has read, keyed by the key's hash.

Invalidation is explicit and shared by every replica: the store holds one counter row,
``principal_epoch``, that database triggers bump whenever a key or team changes in a way a
principal reflects (allowlists, limits, guardrail mode, cache flag, expiry, revocation,
deletion), whoever makes the change: the ``workbench keys`` commands, another replica,
or a hand-written UPDATE. A cached principal carries the epoch it was read at, and the
governed call reads the current epoch inside its first write transaction (the one that
takes the rate window and reserves the budget), so a revocation committed on any replica
takes effect on the next call everywhere, at the cost of one SELECT in a transaction the
call opens anyway. Budget columns (spent, reserved) are not watched: they change on
every call and a principal does not carry them.

Store migration 90 (perf range 90-99) creates the table, its row and the triggers.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Connection, Integer, select, text

from workbench.store import HotStatement
from workbench.store import table as _table

__all__ = ["PrincipalCache", "StalePrincipal", "apply_migration", "current_epoch",
           "principal_epoch"]

principal_epoch = _table(
    "principal_epoch",
    Column("id", Integer, primary_key=True),
    Column("epoch", BigInteger, nullable=False),
)

# Columns of ``keys`` and ``teams`` that a Principal is built from.
_KEY_COLUMNS = ("key_hash", "team", "models", "budget_usd", "rpm", "tpm", "guardrail_mode",
                "cache", "expires_at", "revoked_at")
_TEAM_COLUMNS = ("name", "models", "budget_usd", "rpm", "tpm")
_BUMP = "UPDATE principal_epoch SET epoch = epoch + 1 WHERE id = 1"


def _sqlite_triggers() -> list[str]:
    out = []
    for table, cols in (("keys", _KEY_COLUMNS), ("teams", _TEAM_COLUMNS)):
        quoted = ", ".join(f'"{c}"' for c in cols)
        out.append(f"CREATE TRIGGER IF NOT EXISTS wb_epoch_{table}_upd AFTER UPDATE OF "
                   f"{quoted} ON {table} BEGIN {_BUMP}; END")
        out.append(f"CREATE TRIGGER IF NOT EXISTS wb_epoch_{table}_del AFTER DELETE ON "
                   f"{table} BEGIN {_BUMP}; END")
    # A team created after its key (keys of a missing team read no team limits).
    out.append(f"CREATE TRIGGER IF NOT EXISTS wb_epoch_teams_ins AFTER INSERT ON teams "
               f"BEGIN {_BUMP}; END")
    return out


def _postgres_triggers() -> list[str]:
    out = [f"CREATE OR REPLACE FUNCTION wb_bump_principal_epoch() RETURNS trigger AS $$ "
           f"BEGIN {_BUMP}; RETURN NULL; END $$ LANGUAGE plpgsql"]
    for table, cols in (("keys", _KEY_COLUMNS), ("teams", _TEAM_COLUMNS)):
        quoted = ", ".join(f'"{c}"' for c in cols)
        events = f"UPDATE OF {quoted} OR DELETE" + (" OR INSERT" if table == "teams" else "")
        out.append(f"DROP TRIGGER IF EXISTS wb_epoch_{table} ON {table}")
        # Per statement, not per row: one bump however many rows an UPDATE touched.
        out.append(f"CREATE TRIGGER wb_epoch_{table} AFTER {events} ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION wb_bump_principal_epoch()")
    return out


def apply_migration(conn: Connection) -> None:
    """Store migration 90 (``workbench.migrations``): the epoch row and the triggers that
    bump it on any change to a key or a team."""
    principal_epoch.create(conn, checkfirst=True)
    if conn.execute(text("SELECT COUNT(*) FROM principal_epoch")).scalar_one() == 0:
        conn.execute(text("INSERT INTO principal_epoch (id, epoch) VALUES (1, 0)"))
    sqlite = conn.dialect.name == "sqlite"
    for stmt in _sqlite_triggers() if sqlite else _postgres_triggers():
        conn.execute(text(stmt))




_EPOCH = HotStatement(select(principal_epoch.c.epoch).where(principal_epoch.c.id == 1))


def current_epoch(conn: Connection) -> int:
    row = _EPOCH.run(conn).fetchone()
    if row is None:
        raise RuntimeError("the store has no principal epoch row: run `workbench migrate`")
    return int(row[0])


class StalePrincipal(Exception):  # noqa: N818 - a signal, not an error shown to anyone
    """Raised inside a governed call's first transaction when keys or teams changed since
    its principal was read: the call is rolled back and starts again with a fresh one.
    Not a WorkbenchError on purpose: it is never ledgered nor shown to a caller."""


@dataclass(frozen=True)
class _Entry:
    principal: object  # a policy.Principal (typed loosely: policy imports this module)
    expires_at: float | None


class PrincipalCache:
    """Principals by key hash, bounded (least recently used goes first)."""

    def __init__(self, max_entries: int = 10_000):
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def get(self, key_hash: str, now: float | None = None) -> object | None:
        """The cached principal, unless absent or its key has expired since."""
        with self._lock:
            entry = self._entries.get(key_hash)
            if entry is None:
                return None
            if entry.expires_at is not None and entry.expires_at < (now or time.time()):
                del self._entries[key_hash]
                return None
            self._entries.move_to_end(key_hash)
            return entry.principal

    def put(self, key_hash: str, principal: object, expires_at: float | None) -> None:
        with self._lock:
            self._entries[key_hash] = _Entry(principal, expires_at)
            self._entries.move_to_end(key_hash)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def drop(self, key_hash: str) -> None:
        with self._lock:
            self._entries.pop(key_hash, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
