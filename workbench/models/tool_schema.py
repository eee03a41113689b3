"""Tables for tool governance (store migration 60).

``tool_allowlists``: which tools a key or a team may use (one row per subject; no row =
every tool, like a model allowlist left unset). ``tool_events``: one row per tool call a
model made, per tool result a caller sent back, and per call that was denied or withheld;
names, ids and sizes only, never arguments or results (those are masked on the trace).

Migration 60 in ``workbench.migrations`` creates them.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, Index, Integer, String

from workbench.store import table as _table

tool_allowlists = _table(
    "tool_allowlists",
    Column("subject", String(160), primary_key=True),  # "key:<id>" | "team:<name>"
    Column("tools", JSON, nullable=False),  # list of tool names
    Column("updated_at", Float, nullable=False),
)

tool_events = _table(
    "tool_events",
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("trace_id", String(32), nullable=True),
    Column("key_id", String(32), nullable=True),
    Column("team", String(128), nullable=True),
    Column("model", String(128), nullable=True),
    Column("tool", String(128), nullable=False),
    # call: the model asked for it; result: the caller sent its output back;
    # denied: offered in a request the key may not make (403); blocked: a call withheld
    # from the answer; executed: run by the agent loop / MCP bridge.
    Column("kind", String(16), nullable=False),
    Column("call_id", String(64), nullable=True),
    Column("size_bytes", Integer, nullable=False, default=0),
    Column("outcome", String(16), nullable=False, default="ok"),
    Index("ix_tool_events_ts", "ts"),
    Index("ix_tool_events_trace", "trace_id"),
)


__all__ = ["tool_allowlists", "tool_events"]
