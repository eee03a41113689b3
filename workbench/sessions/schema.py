"""Tables for conversations (store migration 73, in ``workbench.migrations``): a session
per conversation, owned by the key that started it, and its turns (masked question and
answer, trace id)."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Text

from workbench.store import table

chat_sessions = table(
    "chat_sessions",
    Column("id", String(128), primary_key=True),
    Column("key_id", String(32), nullable=True),  # the key that started it (None: no auth)
    Column("user_id", String(128), nullable=True),  # pseudonymised end-user id, if sent
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("turns", Integer, nullable=False, default=0),
    Column("traffic", String(16), nullable=True),  # probe / eval sessions: not product
    Index("ix_chat_sessions_updated", "updated_at"),
)

chat_turns = table(
    "chat_turns",
    Column("session_id", String(128), primary_key=True),
    Column("n", Integer, primary_key=True),  # 1, 2, ...
    Column("trace_id", String(32), nullable=False),
    Column("question", Text, nullable=False),  # masked: history never holds raw PII
    Column("answer", Text, nullable=False),  # masked
    Column("model", String(128), nullable=True),
    Column("prompt_version", String(120), nullable=True),  # name@version
    Column("created_at", Float, nullable=False),
    Index("ix_chat_turns_trace", "trace_id"),
)


__all__ = ["chat_sessions", "chat_turns"]
