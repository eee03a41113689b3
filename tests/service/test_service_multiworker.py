"""`workbench serve --workers 2` sharing one PostgreSQL store, for real: budgets, rate
limits and feedback stay exact when concurrent requests land on different processes.

Uvicorn's workers share one listening socket and the kernel hands each connection to
whichever worker accepts first, so a burst may well land on one worker (CI saw exactly
that). The test therefore (1) proves both workers of `--workers 2` serve, with sequential
requests, and (2) splits every burst between that server and a second `workbench serve`
on the same store, so concurrent requests certainly meet in different processes.

Chat goes to a real OpenAI-compatible server on loopback (the benchmarks' mock, priced so
that budgets run out); embeddings come from the embedded ONNX model in each worker.
Skipped without PostgreSQL (CI sets WORKBENCH_REQUIRE_POSTGRES=1, which turns the skip
into a failure).
"""

from __future__ import annotations

import asyncio
import signal
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
def servers(tmp_path: Path, private_postgres: str
            ) -> Iterator[tuple[ServeProcess, ServeProcess, Gateway]]:
    """A two-worker server and a single-process one, on the same PostgreSQL store."""
    with mock_upstream() as upstream:
        cfg = write_project(tmp_path, upstream=upstream.base_url, store_url=private_postgres,
                            collection="docs", max_tokens=64)
        gw = connect(settings=load_settings(cfg))
        ingest(gw, [tmp_path / "corpus"], collection="docs", progress=False)
        pair = ServeProcess(tmp_path, "--workers", "2", log_name="serve-pair.log")
        solo = ServeProcess(tmp_path, log_name="serve-solo.log")
        try:
            pair.wait_ready()
            solo.wait_ready()
            yield pair, solo, gw
        finally:
            codes = {"pair": pair.stop(), "solo": solo.stop()}
            gw.close()
        # uvicorn re-raises the SIGTERM it handled once drained (one worker: -15); the
        # supervisor of several workers exits 0. Anything else is an unclean shutdown.
        assert codes == {"pair": 0, "solo": -signal.SIGTERM}, (
            f"serve did not shut down cleanly {codes}:\n{pair.tail()}\n{solo.tail()}")


async def _burst(bases: list[str], path: str, bodies: list[Any], headers: dict[str, str]
                 ) -> list[httpx.Response]:
    # A connection per request (no keep-alive); bodies alternate between the servers.
    limits = httpx.Limits(max_keepalive_connections=0, max_connections=len(bodies))
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        return list(await asyncio.gather(*(
            client.post(bases[i % len(bases)] + path, json=b, headers=headers)
            for i, b in enumerate(bodies))))


def burst(targets: list[ServeProcess], path: str, bodies: list[Any], headers: dict[str, str]
          ) -> list[httpx.Response]:
    return asyncio.run(_burst([t.base for t in targets], path, bodies, headers))


def root_pids(gw: Gateway, trace_ids: list[str], *, wait_for: int = 1) -> set[Any]:
    """The process ids on these traces' root spans (every answer and refusal has one).

    Workers write spans a moment after they answer: poll until ``wait_for`` pids show.
    """
    def pids() -> set[Any]:
        with gw.store.read() as conn:
            return {a.get("process.pid") for a in conn.execute(select(spans.c.attributes).where(
                spans.c.trace_id.in_(trace_ids), spans.c.parent_id.is_(None))).scalars()}

    deadline = time.monotonic() + 10
    while len(found := pids()) < wait_for and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def _key_state(gw: Gateway, key_id: str) -> Any:
    with gw.store.read() as conn:
        row = conn.execute(select(keys.c.budget_usd, keys.c.spent_usd, keys.c.reserved_usd)
                           .where(keys.c.id == key_id)).one()
        ledgered = conn.execute(select(func.coalesce(func.sum(ledger.c.cost_usd), 0.0))
                                .where(ledger.c.key_id == key_id)).scalar_one()
        open_reservations = conn.execute(select(func.count()).select_from(reservations)
                                         ).scalar_one()
    return row, float(ledgered), int(open_reservations)


def test_both_workers_serve(servers: tuple[ServeProcess, ServeProcess, Gateway]) -> None:
    pair, _, gw = servers
    _, secret = gw.policy.create_key(team="spread")
    seen: set[Any] = set()
    # One request at a time on a fresh connection: each is a fair race between the two
    # workers' accept calls, so 40 answers from one worker alone would be a real fault.
    for _ in range(40):
        resp = httpx.post(pair.base + "/ask", json={"question": QUESTION},
                          headers=bearer(secret), timeout=120)
        assert resp.status_code == 200, resp.text
        seen |= root_pids(gw, [resp.json()["trace_id"]])
        if len(seen) == 2:
            break
    assert len(seen) == 2, f"one worker answered all 40 requests: {seen}"
    assert pair.proc.pid not in seen  # the supervisor only supervises


def test_budget_rate_limit_and_feedback_across_processes(
        servers: tuple[ServeProcess, ServeProcess, Gateway]) -> None:
    pair, solo, gw = servers
    both = [pair, solo]

    # -- a budget shared by concurrent requests in several processes: never overspent --
    # Each answer reserves ~$1.29 (64 output tokens at $20,000/M) and costs $0.18 (the
    # mock's 9 tokens), so $2 covers at most 4 answers, fewer when reservations overlap.
    key_id, secret = gw.policy.create_key(team="multi", budget_usd=2.0)
    answers = burst(both, "/ask", [{"question": QUESTION}] * 16, bearer(secret))
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
    limited = burst(both, "/ask", [{"question": QUESTION}] * 10, bearer(rl_secret))
    assert {r.status_code for r in limited} <= {200, 429}
    with gw.store.read() as conn:
        passed = conn.execute(select(func.count()).select_from(ledger).where(
            ledger.c.key_id == rl_id, ledger.c.outcome == "ok")).scalar_one()
    assert passed == 7  # embedding and chat calls, over all processes

    # -- the bursts really were served by more than one process ----------------------------
    every_trace = [r.headers["x-workbench-trace-id"] for r in answers + limited]
    assert len(root_pids(gw, every_trace, wait_for=2)) >= 2

    # -- feedback posted concurrently to several processes: every acknowledged signal is there
    trace = ok_traces[0]
    thumbs = burst(both, "/feedback", [{"trace_id": trace, "kind": "thumbs", "value": True}]
                   * 12, bearer(secret))
    assert all(r.status_code in (200, 201) for r in thumbs), [r.text for r in thumbs]
    assert sum(r.json()["status"] == "created" for r in thumbs) == 1
    kinds = [{"trace_id": t, "kind": k, **({"value": "better answer"} if k == "edit" else {})}
             for t in ok_traces for k in ("copy", "retry", "edit")]
    acked = burst(both, "/feedback", kinds, bearer(secret))
    assert all(r.status_code == 201 for r in acked), [r.text for r in acked]
    stored = list_feedback(gw.store, limit=1000)
    assert {(r["trace_id"], r["kind"]) for r in stored} == (
        {(t, k) for t in ok_traces for k in ("copy", "retry", "edit")} | {(trace, "thumbs")})
    assert next(r for r in stored if r["kind"] == "thumbs")["occurrences"] == 12
    assert {r["id"] for r in stored} >= {r.json()["id"] for r in acked}
