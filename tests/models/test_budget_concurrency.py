"""Budgets hold under concurrency: reserve worst case atomically, settle, release on failure.

Runs on SQLite and on a real PostgreSQL (CI starts one)."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import update

from tests.fakes import FakeProvider, priced
from workbench.errors import BudgetExceeded, UpstreamError
from workbench.store import Store, keys, reservations, teams

N = 50


def _run_concurrently(fn: Any, n: int = N) -> list[str]:
    def one(_: int) -> str:
        try:
            fn()
            return "ok"
        except BudgetExceeded:
            return "denied"
        except UpstreamError:
            return "error"

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def _state(store: Store, key_id: str) -> dict[str, Any]:
    with store.read() as conn:
        row = conn.execute(keys.select().where(keys.c.id == key_id)).one()
        open_res = conn.execute(reservations.select()).fetchall()
    return {"spent": row.spent_usd, "reserved": row.reserved_usd, "open": len(open_res)}


def test_fifty_concurrent_requests_cannot_overrun_a_nearly_exhausted_budget(
        any_store: Store, make_gateway: Any) -> None:
    fake = FakeProvider(tokens_in=10, tokens_out=5, delay_s=0.02)
    gw = make_gateway(providers={"fake": fake}, store=any_store,
                      models=[priced("paid", in_mtok=1000, out_mtok=2000, max_out=100)])
    budget, pre_spent = 1.0, 0.9
    key_id, secret = gw.policy.create_key(team="race", budget_usd=budget)
    with any_store.write() as conn:
        conn.execute(update(keys).where(keys.c.id == key_id).values(spent_usd=pre_spent))
    user = gw.as_key(secret)

    outcomes = _run_concurrently(lambda: user.chat("hi", model="paid", max_tokens=40))

    state = _state(any_store, key_id)
    spec = gw.spec("paid")
    actual = spec.cost(10, 5)  # 0.02 per call
    worst = spec.cost(2 + 16, 40)  # the reservation for "hi" with max_tokens=40
    assert outcomes.count("ok") >= 1 and outcomes.count("denied") >= 1
    # The guarantee: at most one request's reserved cost over budget (ours: none).
    assert state["spent"] <= budget + worst + 1e-9
    assert state["spent"] <= budget + 1e-9
    assert state["reserved"] == pytest.approx(0.0, abs=1e-9) and state["open"] == 0
    assert state["spent"] == pytest.approx(pre_spent + outcomes.count("ok") * actual)
    assert len(fake.calls) == outcomes.count("ok")  # denied requests never reached the model
    usage = {r["outcome"]: r["calls"] for r in gw.usage(by=("outcome",))}
    assert usage == {k: v for k, v in (("ok", outcomes.count("ok")),
                                       ("denied", outcomes.count("denied"))) if v}


def test_team_budget_is_shared_across_keys(any_store: Store, make_gateway: Any) -> None:
    fake = FakeProvider(tokens_in=10, tokens_out=5)
    gw = make_gateway(providers={"fake": fake}, store=any_store,
                      models=[priced("paid", in_mtok=1000, out_mtok=2000, max_out=100)])
    gw.policy.set_team("squad", budget_usd=0.1)
    users = [gw.as_key(gw.policy.create_key(team="squad")[1]) for _ in range(5)]
    outcomes = _run_concurrently(lambda: users[0].chat("hi", model="paid", max_tokens=10), 10)
    outcomes += _run_concurrently(lambda: users[3].chat("hi", model="paid", max_tokens=10), 10)
    with any_store.read() as conn:
        team = conn.execute(teams.select().where(teams.c.name == "squad")).one()
    assert team.spent_usd <= 0.1 + 1e-9 and team.reserved_usd == pytest.approx(0, abs=1e-9)
    assert "denied" in outcomes and "ok" in outcomes


def test_failed_calls_release_their_reservation(any_store: Store, make_gateway: Any) -> None:
    fake = FakeProvider(fail=-1)  # always down
    gw = make_gateway(providers={"fake": fake}, store=any_store,
                      models=[priced("paid", in_mtok=1000, out_mtok=2000, max_out=100)])
    key_id, secret = gw.policy.create_key(team="t", budget_usd=1.0)
    outcomes = _run_concurrently(lambda: gw.as_key(secret).chat("hi", model="paid",
                                                                max_tokens=40), 20)
    assert set(outcomes) <= {"error", "denied"} and "error" in outcomes
    state = _state(any_store, key_id)
    assert state == {"spent": 0.0, "reserved": pytest.approx(0.0, abs=1e-9), "open": 0}
    errors = [r for r in gw.usage(by=("outcome",)) if r["outcome"] == "error"]
    assert errors and errors[0]["calls"] == outcomes.count("error")


def test_interrupted_stream_settles_what_was_generated(any_store: Store,
                                                       make_gateway: Any) -> None:
    fake = FakeProvider(text="one two three four five six", tokens_in=10, tokens_out=6)
    gw = make_gateway(providers={"fake": fake}, store=any_store,
                      models=[priced("paid", in_mtok=1000, out_mtok=2000, max_out=100)])
    key_id, secret = gw.policy.create_key(team="t", budget_usd=1.0)
    s = gw.as_key(secret).stream("hi", model="paid", max_tokens=40)
    it = iter(s)
    next(it)
    next(it)
    s.close()  # the client went away
    state = _state(any_store, key_id)
    assert state["reserved"] == pytest.approx(0.0, abs=1e-9) and state["open"] == 0
    assert 0 < state["spent"] < gw.spec("paid").cost(18, 40)


def test_sweep_releases_reservations_left_by_a_crashed_process(any_store: Store,
                                                               make_gateway: Any) -> None:
    gw = make_gateway(providers={"fake": FakeProvider()}, store=any_store,
                      models=[priced("paid")])
    key_id, secret = gw.policy.create_key(team="t", budget_usd=1.0)
    # A process reserves, then dies without settling (os._exit: no cleanup at all).
    code = ("import os, sys; from workbench.store import Store; "
            "from workbench.models.policy import Policy; pol = Policy(Store(sys.argv[1])); "
            "pol.reserve(pol.authenticate(sys.argv[2]), 0.3); os._exit(0)")
    subprocess.run([sys.executable, "-c", code, any_store.url, secret], check=True, timeout=120)
    live = gw.policy.reserve(gw.policy.authenticate(secret), 0.2)  # this process: alive
    assert _state(any_store, key_id)["reserved"] == pytest.approx(0.5)
    assert gw.policy.sweep_reservations(older_than_s=-1) == 1
    assert _state(any_store, key_id) == {"spent": 0.0, "reserved": pytest.approx(0.2),
                                         "open": 1}
    gw.policy.settle(live, 0.0)
    assert _state(any_store, key_id) == {"spent": 0.0, "reserved": pytest.approx(0.0, abs=1e-9),
                                         "open": 0}


def test_stream_dropped_before_reading_releases_its_reservation(any_store: Store,
                                                                make_gateway: Any) -> None:
    import gc

    gw = make_gateway(providers={"fake": FakeProvider()}, store=any_store,
                      models=[priced("paid", in_mtok=1000, out_mtok=2000, max_out=100)])
    key_id, secret = gw.policy.create_key(team="t", budget_usd=1.0)
    user = gw.as_key(secret)
    user.stream("hi", model="paid", max_tokens=40).close()  # closed unread
    s = user.stream("hi", model="paid", max_tokens=40)
    del s  # dropped unread
    gc.collect()
    assert _state(any_store, key_id) == {"spent": 0.0, "reserved": pytest.approx(0.0, abs=1e-9),
                                         "open": 0}
    errors = {r["outcome"]: r["calls"] for r in gw.usage(by=("outcome",))}
    assert errors == {"error": 2}
