"""The principal cache: a key read once is not read again per call, yet any change to a
key or team (revoke, new limits, allowlist, a hand-written UPDATE) takes effect on the
very next call of every replica. Replicas are separate Store objects (each its own
Policy and cache) on one database, and a separate process running the CLI; on SQLite and
on a real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from tests.fakes import FakeProvider, priced
from workbench.errors import AuthError, PermissionDenied
from workbench.models.gateway import Gateway
from workbench.models.principal_cache import current_epoch
from workbench.store import Store, keys, ledger, reservations

MODELS = [priced("m1"), priced("m2"), {"name": "free", "provider": "fake"}]


def _replicas(any_store: Store, make_gateway: Any) -> tuple[Gateway, Gateway]:
    other = Store(any_store.url)  # another replica: its own pool, policy and cache
    a = make_gateway(providers={"fake": FakeProvider()}, store=any_store, models=MODELS)
    b = make_gateway(providers={"fake": FakeProvider()}, store=other, models=MODELS)
    return a, b


def _call(gw: Gateway, secret: str, model: str = "m1") -> Any:
    view = gw.as_cached_key(secret)
    assert view is not None, "the replica should have the key cached"
    return view.chat("hi", model=model)


def _counts(store: Store) -> tuple[int, int]:
    with store.read() as conn:
        rows = conn.execute(select(func.count()).select_from(ledger)).scalar_one()
        held = conn.execute(select(func.count()).select_from(reservations)).scalar_one()
    return int(rows), int(held)


def test_a_cached_key_costs_no_read_and_budget_traffic_keeps_it_cached(
        any_store: Store, make_gateway: Any) -> None:
    a, b = _replicas(any_store, make_gateway)
    _, secret = a.policy.create_key(team="t", budget_usd=10, rpm=1000, tpm=10**6)
    assert b.as_cached_key(secret) is None  # never seen by this replica
    b.as_key(secret)
    with any_store.read() as conn:
        before = current_epoch(conn)
    for _ in range(3):
        _call(b, secret)
    with any_store.read() as conn:
        assert current_epoch(conn) == before  # spend, reservations, windows: no bump
    first = b.as_cached_key(secret)
    assert first is not None and first.principal.epoch == before


def test_revocation_on_one_replica_stops_the_next_call_on_another(
        any_store: Store, make_gateway: Any) -> None:
    a, b = _replicas(any_store, make_gateway)
    key_id, secret = a.policy.create_key(team="t", budget_usd=10, rpm=1000)
    b.as_key(secret)
    _call(b, secret)
    rows, _ = _counts(any_store)

    a.policy.revoke_key(key_id)
    with pytest.raises(AuthError) as exc:
        _call(b, secret)
    assert exc.value.code == "key_revoked"
    # Refused before anything was written: no ledger row, no reservation, no spend.
    assert _counts(any_store) == (rows, 0)


def test_a_key_without_limits_is_checked_too(any_store: Store, make_gateway: Any) -> None:
    # No budget, no rpm/tpm, a free model: the call writes nothing before the model
    # runs, so it reads the epoch on its own.
    a, b = _replicas(any_store, make_gateway)
    key_id, secret = a.policy.create_key(team="free")
    b.as_key(secret)
    _call(b, secret, "free")
    a.policy.revoke_key(key_id)
    with pytest.raises(AuthError):
        _call(b, secret, "free")


def test_allowlist_changes_apply_at_once_both_ways(any_store: Store, make_gateway: Any) -> None:
    a, b = _replicas(any_store, make_gateway)
    key_id, secret = a.policy.create_key(team="t", models=["m1"], budget_usd=10)
    b.as_key(secret)
    with pytest.raises(PermissionDenied):
        _call(b, secret, "m2")
    a.policy.update_key(key_id, models=["m1", "m2"])  # widened on the other replica
    assert _call(b, secret, "m2").model == "m2"  # the stale allowlist did not deny it
    a.policy.set_team("t", models=["m1"])  # narrowed through the team
    with pytest.raises(PermissionDenied):
        _call(b, secret, "m2")


def test_a_hand_written_update_invalidates_too(any_store: Store, make_gateway: Any) -> None:
    a, b = _replicas(any_store, make_gateway)
    key_id, secret = a.policy.create_key(team="t", budget_usd=10)
    b.as_key(secret)
    _call(b, secret)
    with any_store.write() as conn:  # not through Policy: the trigger bumps the epoch
        conn.execute(update(keys).where(keys.c.id == key_id).values(expires_at=time.time() - 1))
    with pytest.raises(AuthError) as exc:
        _call(b, secret)
    assert exc.value.code == "key_expired"


def test_revocation_by_another_process(any_store: Store, make_gateway: Any) -> None:
    gw = make_gateway(providers={"fake": FakeProvider()}, store=any_store, models=MODELS)
    key_id, secret = gw.policy.create_key(team="t", budget_usd=10, rpm=1000)
    gw.as_key(secret)
    _call(gw, secret)
    root = str(Path(__file__).resolve().parents[2])  # this checkout's workbench
    env = {**os.environ, "WORKBENCH_STORE_URL": any_store.url,
           "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "workbench", "keys", "revoke", key_id],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with pytest.raises(AuthError) as exc:
        _call(gw, secret)
    assert exc.value.code == "key_revoked"
