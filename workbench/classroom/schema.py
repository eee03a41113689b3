"""The ``classrooms`` table (store migration 80): one row per workshop team.

It holds what the keys table cannot: the hash of the facilitator's status-page token, the
gateway URL printed on the sheets, and when the classroom was closed. Attendee keys are
ordinary keys of the team (``workbench keys list`` shows them).
"""

from __future__ import annotations

from sqlalchemy import Column, Connection, Float, Integer, String, Table

from workbench.store import MIGRATIONS, Store, metadata, register_migration

__all__ = ["classrooms", "ensure_schema"]

_existing = metadata.tables.get("classrooms")  # importlib.reload in a notebook
classrooms = _existing if _existing is not None else Table(
    "classrooms", metadata,
    Column("team", String(128), primary_key=True),
    Column("page_token_hash", String(64), nullable=False),
    Column("url", String(300), nullable=True),
    Column("budget_usd", Float, nullable=True),  # per attendee, as created
    Column("rpm", Integer, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("closed_at", Float, nullable=True),
)


def _m80_classrooms(conn: Connection) -> None:
    classrooms.create(conn, checkfirst=True)


if not any(v == 80 for v, _ in MIGRATIONS):
    register_migration(80, _m80_classrooms)


def ensure_schema(store: Store) -> None:
    store.migrate()
