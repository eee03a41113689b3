"""Tables for the prompt registry (store migrations 70-72).

``prompts`` holds immutable versions, ``prompt_labels`` where each label points now, and
``prompt_deployments`` every move of the ``production`` label (what route-to-live
metrics count as a deployment). Migrations 71 and 72 add the prompt version to probe
results and the session id to feedback.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    String,
    Text,
)

from workbench.observability.schema import feedback, probe_results
from workbench.store import MIGRATIONS, Store, _add_missing_column, register_migration, table

prompts = table(
    "prompts",
    Column("name", String(100), primary_key=True),
    Column("version", String(16), primary_key=True),  # content hash
    Column("n", Integer, nullable=False),  # 1, 2, ... per name, in push order
    Column("messages", JSON, nullable=False),
    Column("model_settings", JSON, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(160), nullable=False),
)

prompt_labels = table(
    "prompt_labels",
    Column("name", String(100), primary_key=True),
    Column("label", String(32), primary_key=True),
    Column("version", String(16), nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(160), nullable=False),
)

prompt_deployments = table(
    "prompt_deployments",
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("version", String(16), nullable=False),
    Column("previous", String(16), nullable=True),  # None: the built-in default was live
    Column("ts", Float, nullable=False),
    Column("pushed_at", Float, nullable=False),  # when the version was pushed: lead time
    Column("actor", String(160), nullable=False),
    Column("gate", JSON, nullable=True),  # the eval gate it passed: run id, thresholds
    Column("rollback", Integer, nullable=False, default=0),  # back to an earlier version
    Index("ix_prompt_deployments_name", "name", "ts"),
)


def _m70_prompts(conn: Connection) -> None:
    for t in (prompts, prompt_labels, prompt_deployments):
        t.create(conn, checkfirst=True)


def _m71_probe_prompt_version(conn: Connection) -> None:
    # Stores made before this column existed; a new store got it from migration 42.
    _add_missing_column(conn, probe_results, "prompt_version")


def _m72_feedback_session(conn: Connection) -> None:
    _add_missing_column(conn, feedback, "session_id")


if not any(v == 70 for v, _ in MIGRATIONS):  # importlib.reload in a notebook
    register_migration(70, _m70_prompts)
    register_migration(71, _m71_probe_prompt_version)
    register_migration(72, _m72_feedback_session)


def ensure_schema(store: Store) -> None:
    store.migrate()


__all__ = ["ensure_schema", "prompt_deployments", "prompt_labels", "prompts"]
