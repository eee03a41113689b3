"""Tables for eval runs and the judge cache (created by store migrations 50-51 in
:mod:`workbench.migrations`, applied when a store opens). Re-importing this module
(``importlib.reload``, pytester's module snapshots) reuses the tables already defined.
Text stored here (questions, answers, contexts, reasons) is PII-masked first: eval rows
are as durable as the ledger and must be as clean.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from workbench.store import metadata


def _table(name: str, *items: Any) -> Table:
    """The table, or the one already defined: a second import of this module (reload,
    pytester's module snapshots) must not define it twice on the shared metadata."""
    existing = metadata.tables.get(name)
    return existing if existing is not None else Table(name, metadata, *items)


eval_runs = _table(
    "eval_runs",
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("dataset", String(200), nullable=False),  # name
    Column("dataset_version", String(120), nullable=False),
    Column("dataset_fingerprint", String(16), nullable=False),
    Column("n_samples", Integer, nullable=False),
    Column("config", JSON, nullable=False),  # target/pipeline + judge settings
    Column("summary", JSON, nullable=False),  # per-metric aggregates
    Column("usage", JSON, nullable=False),  # judge calls, tokens, cache hits, wall time
    Index("ix_eval_runs_created", "created_at"),
)

eval_samples = _table(
    "eval_samples",
    Column("run_id", String(40), primary_key=True),
    Column("sample_id", String(200), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=True),
    Column("reference", Text, nullable=True),
    Column("contexts", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("latency_ms", Float, nullable=True),
    Column("cost_usd", Float, nullable=True),
    Column("trace_id", String(32), nullable=True),
    Column("error", Text, nullable=True),  # the target failed for this question
)

eval_scores = _table(
    "eval_scores",
    Column("run_id", String(40), primary_key=True),
    Column("sample_id", String(200), primary_key=True),
    Column("metric", String(120), primary_key=True),
    Column("kind", String(16), nullable=False),  # judge | metric | check
    Column("status", String(16), nullable=False),  # ok | failed | skipped
    Column("value", Float, nullable=True),  # None unless status == ok
    Column("passed", Integer, nullable=True),  # checks only
    Column("reason", Text, nullable=True),
    Column("cached", Integer, nullable=False, default=0),
    Column("calls", Integer, nullable=False, default=0),
    Column("embed_calls", Integer, nullable=False, default=0),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("latency_ms", Float, nullable=False, default=0.0),
    Column("trace_id", String(32), nullable=True),
)

judge_cache = _table(
    "eval_judge_cache",
    Column("key", String(64), primary_key=True),
    Column("metric", String(120), nullable=False),
    Column("prompt_version", String(16), nullable=False),
    Column("model", String(200), nullable=False),
    Column("status", String(16), nullable=False),  # ok | failed (deterministic failures only)
    Column("value", Float, nullable=True),
    Column("reason", Text, nullable=True),
    Column("calls", Integer, nullable=False, default=0),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("hits", Integer, nullable=False, default=0),
    Index("ix_eval_judge_cache_metric", "metric"),
)


__all__ = ["eval_runs", "eval_samples", "eval_scores", "judge_cache"]
