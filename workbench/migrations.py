"""Every change to the SQL store's schema, in one ordered list (:data:`MIGRATIONS`).

A :class:`~workbench.store.Store` applies the pending ones when it opens, and
``workbench migrate`` shows (``--dry-run``) or applies them explicitly. So the schema never
depends on which modules a process happened to import, and no code needs to "ensure" a
table before using it: an open store has every table this workbench knows.

How it runs:
- ``schema_version`` holds one row per applied migration (the same table, same rows, as
  before this list existed, so older stores upgrade in place).
- Opening an up-to-date store costs one read of ``schema_version`` and imports nothing.
- Otherwise every pending migration runs in ONE write transaction (all or nothing), under
  a lock that serialises concurrent openers: ``BEGIN IMMEDIATE`` on SQLite, a transaction
  advisory lock on Postgres. The versions are re-read under the lock, so a second process
  that waited finds nothing left to do.
- A store with a version this list does not know was migrated by a newer workbench: it is
  refused (:class:`StoreTooNew`) rather than written with a schema this code does not
  understand.

Adding a table (or a column) - append, never edit:
1. Define the table in your own package's ``schema.py`` on ``workbench.store.metadata``.
2. Write ``_mNN_what(conn)`` below that imports the table *inside the function* (opening
   an up-to-date store must not import your package) and creates it with
   ``checkfirst=True``; a new column on an existing table uses :func:`add_missing_column`.
   Each function must be idempotent: a store may already hold the object.
3. Append ``Migration(NN, "what", _mNN_what)`` at the END of :data:`MIGRATIONS`, with NN
   greater than every version above it (numbers may skip; ranges are reserved per area).
Never change or remove a migration that has shipped: stores out there recorded it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Table, inspect, select, text

from workbench.errors import ConfigError

# Postgres advisory-lock key held (per transaction) by whoever migrates a store.
PG_LOCK_KEY = 7770001


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Connection], None]


class StoreTooNew(ConfigError):
    """The store holds migrations this workbench does not know: a newer one wrote it."""

    code = "store_too_new"


# -- the migrations ----------------------------------------------------------------------
def add_missing_column(conn: Connection, table: Table, name: str) -> None:
    """ALTER TABLE ... ADD COLUMN for stores created before the column existed (a fresh
    store got it from the table definition when the table was created)."""
    if name in {c["name"] for c in inspect(conn).get_columns(table.name)}:
        return
    col = table.c[name]
    type_sql = col.type.compile(dialect=conn.dialect)
    conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{name}" {type_sql}'))


def _create(conn: Connection, tables: Iterable[Table]) -> None:
    for table in tables:
        table.create(conn, checkfirst=True)


def _m1_governance(conn: Connection) -> None:
    from workbench import store as s

    _create(conn, (s.teams, s.keys, s.rate_windows, s.ledger, s.audit, s.response_cache,
                   s.reservations))


def _m10_budget_hardening(conn: Connection) -> None:
    # Reservation owners + the process registry (sweeping dead holders), and the ledger's
    # anomaly flag (usage an upstream reported that was not taken at face value).
    from workbench import store as s

    _create(conn, (s.processes,))
    add_missing_column(conn, s.reservations, "owner")
    add_missing_column(conn, s.ledger, "anomaly")


def _m20_embedding_cache(conn: Connection) -> None:
    from workbench.retrieval.cache import embedding_cache

    _create(conn, (embedding_cache,))


def _m40_spans(conn: Connection) -> None:
    from workbench.observability.schema import spans

    _create(conn, (spans,))  # the primary key (trace_id, span_id) serves lookups


def _m41_feedback(conn: Connection) -> None:
    from workbench.observability.schema import feedback, feedback_requests

    _create(conn, (feedback, feedback_requests))


def _m42_probes(conn: Connection) -> None:
    from workbench.observability.schema import probe_results, probe_runs

    _create(conn, (probe_runs, probe_results))


def _m43_trace_claims(conn: Connection) -> None:
    from workbench.observability.schema import trace_claims

    _create(conn, (trace_claims,))


def _m44_store_probe(conn: Connection) -> None:
    from workbench.models.readiness import store_probe

    _create(conn, (store_probe,))


def _m50_eval_runs(conn: Connection) -> None:
    from workbench.evals.schema import eval_runs, eval_samples, eval_scores

    _create(conn, (eval_runs, eval_samples, eval_scores))


def _m51_judge_cache(conn: Connection) -> None:
    from workbench.evals.schema import judge_cache

    _create(conn, (judge_cache,))


def _m60_tools(conn: Connection) -> None:
    from workbench.models.tool_schema import tool_allowlists, tool_events

    _create(conn, (tool_allowlists, tool_events))


def _m70_prompts(conn: Connection) -> None:
    from workbench.prompts.schema import prompt_deployments, prompt_labels, prompts

    _create(conn, (prompts, prompt_labels, prompt_deployments))


def _m71_probe_prompt_version(conn: Connection) -> None:
    # Stores made before this column existed; a new store got it from migration 42.
    from workbench.observability.schema import probe_results

    add_missing_column(conn, probe_results, "prompt_version")


def _m72_feedback_session(conn: Connection) -> None:
    from workbench.observability.schema import feedback

    add_missing_column(conn, feedback, "session_id")


def _m73_sessions(conn: Connection) -> None:
    from workbench.sessions.schema import chat_sessions, chat_turns

    _create(conn, (chat_sessions, chat_turns))


def _m80_classrooms(conn: Connection) -> None:
    from workbench.classroom.schema import classrooms

    _create(conn, (classrooms,))


def _m90_principal_epoch(conn: Connection) -> None:
    # A counter every key/team change bumps (triggers), read by each governed call:
    # cached principals stay exact across processes and replicas.
    from workbench.models.principal_cache import apply_migration

    apply_migration(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "governance", _m1_governance),
    Migration(10, "budget_hardening", _m10_budget_hardening),
    Migration(20, "embedding_cache", _m20_embedding_cache),
    Migration(40, "spans", _m40_spans),
    Migration(41, "feedback", _m41_feedback),
    Migration(42, "probes", _m42_probes),
    Migration(43, "trace_claims", _m43_trace_claims),
    Migration(44, "store_probe", _m44_store_probe),
    Migration(50, "eval_runs", _m50_eval_runs),
    Migration(51, "judge_cache", _m51_judge_cache),
    Migration(60, "tools", _m60_tools),
    Migration(70, "prompts", _m70_prompts),
    Migration(71, "probe_prompt_version", _m71_probe_prompt_version),
    Migration(72, "feedback_session", _m72_feedback_session),
    Migration(73, "sessions", _m73_sessions),
    Migration(80, "classrooms", _m80_classrooms),
    Migration(90, "principal_epoch", _m90_principal_epoch),
    # Append new migrations here (see the module docstring).
)
LATEST = MIGRATIONS[-1].version


# -- applying them -------------------------------------------------------------------------
def applied_versions(conn: Connection) -> set[int]:
    """The versions recorded in ``schema_version`` (empty for a new store)."""
    from workbench.store import schema_version

    if not inspect(conn).has_table(schema_version.name):
        return set()
    return {int(r[0]) for r in conn.execute(select(schema_version.c.version))}


def pending(applied: set[int], where: str = "") -> list[Migration]:
    """The migrations ``applied`` lacks, in order; :class:`StoreTooNew` if it holds a
    version this workbench does not know."""
    store = f"the store at {where}" if where else "this store"
    known = {m.version for m in MIGRATIONS}
    unknown = sorted(applied - known)
    if unknown:
        newest = max(applied)
        if newest > LATEST:
            raise StoreTooNew(
                f"{store} was migrated by a newer workbench (version {newest}; this one "
                f"knows up to {LATEST}): upgrade workbench to use it")
        raise StoreTooNew(
            f"{store} holds migration(s) {unknown} that this workbench does not know "
            "(it was migrated by a different build): use the workbench that migrated it")
    return [m for m in MIGRATIONS if m.version not in applied]


def upgrade(conn: Connection, where: str = "") -> list[Migration]:
    """Apply the pending migrations on ``conn``, a write transaction (``Store.write()``),
    and record them; returns what was applied. Takes the migration lock first."""
    import time

    from sqlalchemy import insert

    from workbench.store import schema_version

    if conn.dialect.name == "postgresql":
        # One migrator at a time across processes and replicas; released at commit.
        conn.execute(text(f"SELECT pg_advisory_xact_lock({PG_LOCK_KEY})"))
    # SQLite: the caller's BEGIN IMMEDIATE already holds the database's write lock.
    schema_version.create(conn, checkfirst=True)
    todo = pending(applied_versions(conn), where)  # re-read under the lock
    for migration in todo:
        migration.apply(conn)
        conn.execute(insert(schema_version).values(version=migration.version,
                                                   applied_at=time.time()))
    return todo


def drop_everything(conn: Connection) -> None:
    """Drop every table of the database (reflected, so tables of any version go too):
    for scratch databases that tests and benchmarks reuse. Never on a real store."""
    from sqlalchemy import MetaData

    existing = MetaData()
    existing.reflect(conn)
    existing.drop_all(conn)


__all__ = ["LATEST", "MIGRATIONS", "Migration", "StoreTooNew", "add_missing_column",
           "applied_versions", "drop_everything", "pending", "upgrade"]
