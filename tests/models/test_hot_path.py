"""The two write transactions of a governed call under concurrency: with budgets and
rpm/tpm on both key and team, 50 concurrent calls neither deadlock (Postgres row locks
are taken in one order: rate windows, then keys, then teams) nor lose a row, and the
spend adds up exactly."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.fakes import FakeProvider, priced
from workbench.store import Store, keys, ledger, rate_windows, reservations, teams

N = 50


@pytest.mark.parametrize("endpoint", ["chat", "embed"])
def test_fifty_concurrent_governed_calls_with_every_limit(any_store: Store, make_gateway: Any,
                                                          endpoint: str) -> None:
    fake = FakeProvider(tokens_in=10, tokens_out=5, delay_s=0.005)
    gw = make_gateway(providers={"fake": fake}, store=any_store,
                      models=[priced("paid"), {**priced("emb"), "kind": "embedding"}])
    gw.policy.set_team("t", budget_usd=1000, rpm=10_000, tpm=10_000_000)
    key_id, secret = gw.policy.create_key(team="t", budget_usd=100, rpm=10_000, tpm=10_000_000)
    user = gw.as_key(secret)

    def one(_: int) -> float:
        if endpoint == "chat":
            return user.chat("hi", model="paid", max_tokens=20).cost_usd
        return user.embed("hi", model="emb").cost_usd

    with ThreadPoolExecutor(max_workers=N) as pool:
        costs = list(pool.map(one, range(N)))

    with any_store.read() as conn:
        rows = conn.execute(select(func.count(), func.sum(ledger.c.cost_usd))
                            .where(ledger.c.key_id == key_id)).one()
        key = conn.execute(select(keys.c.spent_usd, keys.c.reserved_usd)
                           .where(keys.c.id == key_id)).one()
        team = conn.execute(select(teams.c.spent_usd).where(teams.c.name == "t")).scalar_one()
        held = conn.execute(select(func.count()).select_from(reservations)).scalar_one()
        counted = conn.execute(select(func.sum(rate_windows.c.requests)).where(
            rate_windows.c.subject == f"key:{key_id}")).scalar_one()
    assert rows[0] == N and held == 0 and counted == N
    assert key.spent_usd == pytest.approx(sum(costs)) == pytest.approx(rows[1])
    assert team == pytest.approx(sum(costs)) and key.reserved_usd == pytest.approx(0.0)
