"""The ``classrooms`` table (store migration 80, in ``workbench.migrations``): one row per workshop team.

It holds what the keys table cannot: the hash of the facilitator's status-page token, the
gateway URL printed on the sheets, and when the classroom was closed. Attendee keys are
ordinary keys of the team (``workbench keys list`` shows them).
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, String

from workbench.store import table

__all__ = ["classrooms"]

classrooms = table(
    "classrooms",
    Column("team", String(128), primary_key=True),
    Column("page_token_hash", String(64), nullable=False),
    Column("url", String(300), nullable=True),
    Column("budget_usd", Float, nullable=True),  # per attendee, as created
    Column("rpm", Integer, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("closed_at", Float, nullable=True),
)
