"""Tables for traces, feedback, probes and trace claims.

Created by store migrations 40-43 (:mod:`workbench.migrations`), which every store
applies when it opens.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from workbench.store import metadata

spans = Table(
    "spans", metadata,
    Column("trace_id", String(32), primary_key=True),
    Column("span_id", String(16), primary_key=True),
    Column("parent_id", String(16), nullable=True),
    Column("name", String(256), nullable=False),
    Column("kind", String(16), nullable=False),  # OpenInference span kind: LLM, CHAIN, ...
    Column("start_ns", BigInteger, nullable=False),
    Column("end_ns", BigInteger, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("status", String(8), nullable=False),  # OK | ERROR | UNSET
    Column("status_message", Text, nullable=True),
    # Denormalised for listings and product metrics (the attributes hold everything).
    Column("model", String(128), nullable=True),
    Column("tokens_in", Integer, nullable=True),
    Column("tokens_out", Integer, nullable=True),
    Column("attributes", JSON, nullable=False),
    Column("events", JSON, nullable=False),
    Column("service", String(128), nullable=True),
    Index("ix_spans_start", "start_ns"),
)

feedback = Table(
    "feedback", metadata,
    Column("id", String(32), primary_key=True),
    # One row per message (trace + span) per kind/name per source: repeats update it.
    Column("dedupe_key", String(64), nullable=False, unique=True),
    Column("trace_id", String(32), nullable=False),
    Column("span_id", String(16), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(64), nullable=False),
    Column("data_type", String(16), nullable=False),  # boolean | numeric | categorical | text
    Column("value_num", Float, nullable=True),
    Column("value_text", Text, nullable=True),
    Column("comment", Text, nullable=True),
    Column("source_kind", String(16), nullable=False),  # user | code | llm-judge
    Column("source_id", String(128), nullable=True),
    Column("diff", Text, nullable=True),  # edit: unified diff against the model's answer
    Column("occurrences", Integer, nullable=False, default=1),
    Column("linked", Integer, nullable=False, default=0),  # 1 once the trace is known
    Column("metadata", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # The conversation the answer belongs to (migration 72; NULL: none given).
    Column("session_id", String(128), nullable=True),
    Index("ix_feedback_trace", "trace_id"),
    Index("ix_feedback_created", "created_at"),
)

feedback_requests = Table(
    "feedback_requests", metadata,
    Column("idempotency_id", String(128), primary_key=True),
    Column("feedback_id", String(32), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
)

# Which principal first joined a caller-chosen trace id (W3C traceparent): another key
# sending the same id gets a new trace (workbench.observability.trace_context).
trace_claims = Table(
    "trace_claims", metadata,
    Column("trace_id", String(32), primary_key=True),
    Column("owner", String(64), nullable=False),  # "key:<id>" or "local"
    Column("created_at", Float, nullable=False),
)

probe_runs = Table(
    "probe_runs", metadata,
    Column("id", String(32), primary_key=True),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Column("target", String(256), nullable=False),
    Column("probes", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
)

probe_results = Table(
    "probe_results", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("probe", String(128), nullable=False),
    Column("ts", Float, nullable=False),
    Column("target", String(256), nullable=False),
    Column("ok", Integer, nullable=False),
    Column("expectation", String(16), nullable=False),
    Column("score", Float, nullable=True),
    Column("detail", Text, nullable=False),
    Column("output", Text, nullable=True),
    Column("output_hash", String(16), nullable=True),
    Column("model", String(128), nullable=True),
    Column("model_version", String(128), nullable=True),
    Column("prompt_hash", String(16), nullable=False),
    Column("latency_ms", Float, nullable=True),
    Column("trace_id", String(32), nullable=True),
    Column("error", Text, nullable=True),
    # name@version of the registry prompt behind the answer (migration 71; NULL: unknown)
    Column("prompt_version", String(120), nullable=True),
    UniqueConstraint("run_id", "probe", name="uq_probe_results_run_probe"),
    Index("ix_probe_results_probe_ts", "probe", "ts"),
)


__all__ = ["feedback", "feedback_requests", "probe_results", "probe_runs", "spans",
           "trace_claims"]
