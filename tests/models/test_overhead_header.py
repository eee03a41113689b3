"""``x-workbench-overhead-ms``: every proxy answer says how long it spent inside the
gateway, with the upstream's time taken out (errors and streams included)."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from tests.fakes import FakeProvider
from workbench.models.overhead import OVERHEAD_HEADER
from workbench.models.server import create_app

MODELS = [{"name": "fake-model", "provider": "fake"}]
UPSTREAM_S = 0.5
HELLO = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}


def _client(make_gateway: Any) -> tuple[TestClient, dict[str, str]]:
    gw = make_gateway(providers={"fake": FakeProvider(delay_s=UPSTREAM_S)}, models=MODELS,
                      chat_model="fake-model")
    _, secret = gw.policy.create_key(team="t", budget_usd=1, rpm=100)
    return TestClient(create_app(gw)), {"Authorization": f"Bearer {secret}"}


def _overhead(resp: Any) -> float:
    value = float(resp.headers[OVERHEAD_HEADER])
    assert value >= 0
    return value


def test_the_upstream_wait_is_not_counted(make_gateway: Any) -> None:
    client, auth = _client(make_gateway)
    for body in (HELLO, {**HELLO, "stream": True}):
        t0 = time.perf_counter()
        resp = client.post("/v1/chat/completions", json=body, headers=auth)
        elapsed_ms = (time.perf_counter() - t0) * 1000
        assert resp.status_code == 200, resp.text
        # The client waited at least the upstream's delay plus the overhead reported.
        assert _overhead(resp) <= elapsed_ms - UPSTREAM_S * 1000


def test_errors_and_probes_carry_it_too(make_gateway: Any) -> None:
    client, _ = _client(make_gateway)
    denied = client.post("/v1/chat/completions", json=HELLO,
                         headers={"Authorization": "Bearer wb-nope"})
    assert denied.status_code == 401
    _overhead(denied)
    _overhead(client.get("/healthz"))
