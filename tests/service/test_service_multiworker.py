"""`workbench serve --workers 2` sharing one PostgreSQL store, for real: budgets, rate
limits and feedback stay exact when concurrent requests land on different processes.

Chat goes to a real OpenAI-compatible server on loopback (the benchmarks' mock, priced so
that budgets run out); embeddings come from the embedded ONNX model in each worker.
Skipped without PostgreSQL (CI sets WORKBENCH_REQUIRE_POSTGRES=1, which turns the skip
into a failure).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.service.service_helpers import (
    QUESTION,
    ServeProcess,
    bearer,
    mock_upstream,
    write_project,
)
from workbench.api import connect
from workbench.config import load_settings
from workbench.models.gateway import Gateway
from workbench.observability.feedback import list_feedback
from workbench.observability.schema import spans
from workbench.retrieval import ingest
from workbench.store import keys, ledger, reservations

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def two_workers(tmp_path: Path, private_postgres: str) -> Iterator[tuple[ServeProcess, Gateway]]:
    with mock_upstream() as upstream:
        cfg = write_project(tmp_path, upstream=upstream.base_url, store_url=private_postgres,
                            collection="docs", max_tokens=64)
        gw = connect(settings=load_settings(cfg))
        ingest(gw, [tmp_path / "corpus"], collection="docs", progress=False)
        server = ServeProcess(tmp_path, "--workers", "2")
        try:
            server.wait_ready()
            yield server, gw
        finally:
            code = server.stop()
            gw.close()
        assert code == 0, f"serve did not shut down cleanly ({code}):\n{server.tail()}"


async def _burst(base: str, n: int, path: str, bodies: list[Any], headers: dict[str, str]
                 ) -> list[httpx.Response]:
    # A connection per request (no keep-alive), so the kernel spreads them over workers.
    limits = httpx.Limits(max_keepalive_connections=0, max_connections=n)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        return list(await asyncio.gather(*(client.post(path, json=b, headers=headers)
                                           for b in bodies)))


def burst(server: ServeProcess, path: str, bodies: list[Any], headers: dict[str, str]
          ) -> list[httpx.Response]:
    return asyncio.run(_burst(server.base, len(bodies), path, bodies, headers))


def _key_state(gw: Gateway, key_id: str) -> Any:
    with gw.store.read() as conn:
        row = conn.execute(select(keys.c.budget_usd, keys.c.spent_usd, keys.c.reserved_usd)
                           .where(keys.c.id == key_id)).one()
        ledgered = conn.execute(select(func.coalesce(func.sum(ledger.c.cost_usd), 0.0))
                                .where(ledger.c.key_id == key_id)).scalar_one()
        open_reservations = conn.execute(select(func.count()).select_from(reservations)
                                         ).scalar_one()
    return row, float(ledgered), int(open_reservations)


def test_budget_rate_limit_and_feedback_across_two_workers(
        two_workers: tuple[ServeProcess, Gateway]) -> None:
    server, gw = two_workers

    # -- a budget shared by concurrent requests on both workers: never overspent --------
    # Each answer reserves ~$1.29 (64 output tokens at $20,000/M) and costs $0.18 (the
    # mock's 9 tokens), so $2 covers at most 4 answers, fewer when reservations overlap.
    key_id, secret = gw.policy.create_key(team="multi", budget_usd=2.0)
    answers = burst(server, "/ask", [{"question": QUESTION}] * 16, bearer(secret))
    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {200, 429}, [r.text for r in answers if r.status_code not in
                                         (200, 429)]
    assert 1 <= statuses.count(200) <= 4, statuses
    denied = [r.json()["error"]["code"] for r in answers if r.status_code == 429]
    assert set(denied) == {"insufficient_quota"}
    budget, ledgered, open_reservations = _key_state(gw, key_id)
    assert open_reservations == 0 and budget.reserved_usd == pytest.approx(0.0, abs=1e-9)
    assert budget.spent_usd <= budget.budget_usd
    assert budget.spent_usd == pytest.approx(ledgered)  # every charge is in the ledger
    ok_traces = [r.json()["trace_id"] for r in answers if r.status_code == 200]
    with gw.store.read() as conn:
        charged = conn.execute(select(func.count()).select_from(ledger).where(
            ledger.c.key_id == key_id, ledger.c.endpoint == "chat",
            ledger.c.outcome == "ok")).scalar_one()
    assert charged == len(ok_traces)

    # -- a rate limit counted in the shared store: exactly rpm calls pass ----------------
    if time.time() % 60 > 50:  # keep the burst inside one rate window (epoch minute)
        time.sleep(61 - time.time() % 60)
    rl_id, rl_secret = gw.policy.create_key(team="multi-rl", rpm=7)
    limited = burst(server, "/ask", [{"question": QUESTION}] * 10, bearer(rl_secret))
    assert {r.status_code for r in limited} <= {200, 429}
    with gw.store.read() as conn:
        passed = conn.execute(select(func.count()).select_from(ledger).where(
            ledger.c.key_id == rl_id, ledger.c.outcome == "ok")).scalar_one()
    assert passed == 7  # embedding and chat calls, over both workers

    # -- both workers served (answers and refusals alike have a root span) ---------------
    every_trace = [r.headers["x-workbench-trace-id"] for r in answers + limited]

    def worker_pids() -> set[Any]:
        with gw.store.read() as conn:  # the workers write their spans a moment later
            return {a.get("process.pid") for a in conn.execute(select(spans.c.attributes).where(
                spans.c.trace_id.in_(every_trace), spans.c.parent_id.is_(None))).scalars()}

    deadline = time.monotonic() + 10
    while len(worker_pids()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(worker_pids()) == 2, worker_pids()

    # -- feedback posted concurrently to both workers: every acknowledged signal is there
    trace = ok_traces[0]
    thumbs = burst(server, "/feedback", [{"trace_id": trace, "kind": "thumbs", "value": True}]
                   * 12, bearer(secret))
    assert all(r.status_code in (200, 201) for r in thumbs), [r.text for r in thumbs]
    assert sum(r.json()["status"] == "created" for r in thumbs) == 1
    kinds = [{"trace_id": t, "kind": k, **({"value": "better answer"} if k == "edit" else {})}
             for t in ok_traces for k in ("copy", "retry", "edit")]
    acked = burst(server, "/feedback", kinds, bearer(secret))
    assert all(r.status_code == 201 for r in acked), [r.text for r in acked]
    stored = list_feedback(gw.store, limit=1000)
    assert {(r["trace_id"], r["kind"]) for r in stored} == (
        {(t, k) for t in ok_traces for k in ("copy", "retry", "edit")} | {(trace, "thumbs")})
    assert next(r for r in stored if r["kind"] == "thumbs")["occurrences"] == 12
    assert {r["id"] for r in stored} >= {r.json()["id"] for r in acked}
