"""The ordered migration list: applied when a store opens, whatever was imported; old
stores upgrade in place; concurrent openers migrate once; a newer store is refused."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, inspect, select, text

from tests.servers import postgres_url
from workbench.migrations import LATEST, MIGRATIONS, StoreTooNew, drop_everything
from workbench.store import Store, schema_version

ROOT = Path(__file__).resolve().parents[1]
OLD_STORE_SQL = Path(__file__).parent / "data" / "store_before_migration_list.sql"
# Every table the migrations create (schema_version aside).
TABLES = {"teams", "keys", "rate_windows", "ledger", "audit", "response_cache",
          "reservations", "processes", "retrieval_embedding_cache", "spans", "feedback",
          "feedback_requests", "probe_runs", "probe_results", "trace_claims", "store_probe",
          "eval_runs", "eval_samples", "eval_scores", "eval_judge_cache", "prompts",
          "prompt_labels", "prompt_deployments", "chat_sessions", "chat_turns", "classrooms",
          "tool_allowlists", "tool_events", "principal_epoch"}


def _tables(store: Store) -> set[str]:
    with store.read() as conn:
        return set(inspect(conn).get_table_names())


def _versions(store: Store) -> list[int]:
    with store.read() as conn:
        return [r[0] for r in conn.execute(
            select(schema_version.c.version).order_by(schema_version.c.version))]


def test_versions_are_strictly_increasing() -> None:
    versions = [m.version for m in MIGRATIONS]
    assert versions == sorted(set(versions)) and versions[-1] == LATEST


def test_a_fresh_store_has_every_table_and_records_every_migration(any_store: Store) -> None:
    assert _tables(any_store) >= TABLES
    assert _versions(any_store) == [m.version for m in MIGRATIONS]
    assert any_store.migration_status() == (_versions(any_store), [])
    assert any_store.migrate() == []  # current: nothing left


def test_a_store_missing_later_migrations_gets_them_on_open(any_store: Store) -> None:
    """What the old import-time registration left behind: a store with only the tables of
    the modules some process had imported. Reopening fills in the rest, data kept."""
    missing = {20, 44, 50, 51}
    with any_store.write() as conn:
        for table in ("retrieval_embedding_cache", "store_probe", "eval_scores",
                      "eval_samples", "eval_runs", "eval_judge_cache"):
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(delete(schema_version).where(schema_version.c.version.in_(missing)))
        conn.execute(text("INSERT INTO teams (name, spent_usd, reserved_usd, created_at) "
                          "VALUES ('research', 1.5, 0, 0)"))
    any_store.dispose()
    again = Store(any_store.url, migrate=False)
    try:
        assert [m.version for m in again.migration_status()[1]] == sorted(missing)
        assert again.migrate() == sorted(missing)
        assert _tables(again) >= TABLES
        assert _versions(again) == [m.version for m in MIGRATIONS]
        with again.read() as conn:
            assert conn.execute(text("SELECT spent_usd FROM teams")).scalar() == 1.5
    finally:
        again.dispose()


def test_a_store_made_by_the_previous_code_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_STORE_SQL.read_text())
    store = Store(f"sqlite:///{path}")
    try:
        assert _tables(store) >= TABLES
        assert _versions(store) == [m.version for m in MIGRATIONS]
        with store.read() as conn:
            assert conn.execute(text("SELECT name, spent_usd FROM teams")).all() == [
                ("research", 1.5)]
        # It works as a store, not just as a set of tables.
        from workbench.models.readiness import write_probe

        assert write_probe(store) == "ok"
    finally:
        store.dispose()


def test_a_store_migrated_by_a_newer_workbench_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    Store(url).dispose()
    store = Store(url, migrate=False)
    with store.write() as conn:
        conn.execute(insert(schema_version).values(version=LATEST + 7, applied_at=0.0))
    store.dispose()
    with pytest.raises(StoreTooNew, match=rf"newer workbench \(version {LATEST + 7}\b.*upgrade"):
        Store(url)
    proc = _cli("migrate", "--dry-run", env={"WORKBENCH_STORE_URL": url})
    assert proc.returncode == 1
    assert "newer workbench" in proc.stderr and "Traceback" not in proc.stderr


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def test_migrate_cli_dry_run_changes_nothing_then_applies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    dry = _cli("migrate", "--dry-run", "--json", env={"WORKBENCH_STORE_URL": url})
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["applied"] == [] and report["applied_now"] == []
    assert [p["version"] for p in report["pending"]] == [m.version for m in MIGRATIONS]
    probe = Store(url, migrate=False)
    assert _tables(probe) == set()  # the dry run created nothing
    probe.dispose()

    run = _cli("migrate", "--json", env={"WORKBENCH_STORE_URL": url})
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["applied_now"] == [m.version for m in MIGRATIONS]
    again = _cli("migrate", env={"WORKBENCH_STORE_URL": url})
    assert again.returncode == 0 and "up to date" in again.stdout


def _open_at_once(url: str, barrier: Any, results: Any) -> None:
    # Imports only the store: the schema must not depend on what a process imported.
    from workbench.store import Store

    store = Store(url, migrate=False)
    barrier.wait()
    results.put(store.migrate())
    store.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_processes_opening_a_new_store_at_once_migrate_it_once(backend: str,
                                                               tmp_path: Path) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = postgres_url() or ""
        scratch = Store(url, migrate=False)
        with scratch.engine.begin() as conn:
            drop_everything(conn)
        scratch.dispose()
    ctx = multiprocessing.get_context("spawn")
    n = 4
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_open_at_once, args=(url, barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * n
    applied = sorted((results.get(timeout=5) for _ in range(n)), key=len)
    assert applied == [[]] * (n - 1) + [[m.version for m in MIGRATIONS]]  # one migrator
    store = Store(url)
    try:
        assert _versions(store) == [m.version for m in MIGRATIONS]  # each recorded once
        assert _tables(store) >= TABLES
    finally:
        store.dispose()
