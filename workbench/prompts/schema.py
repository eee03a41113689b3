"""Tables for the prompt registry (store migrations 70-72, in ``workbench.migrations``).

``prompts`` holds immutable versions, ``prompt_labels`` where each label points now, and
``prompt_deployments`` every move of the ``production`` label (what route-to-live
metrics count as a deployment). Migrations 71 and 72 add the prompt version to probe
results and the session id to feedback.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Float,
    Index,
    Integer,
    String,
    Text,
)

from workbench.store import table

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


__all__ = ["prompt_deployments", "prompt_labels", "prompts"]
