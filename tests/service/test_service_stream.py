"""A client that disconnects mid-stream leaks nothing: the model stream is closed, the
budget reservation settled (charged for what was generated), the spans ended.

Needs a real socket, so the app runs under uvicorn on loopback. The model is a slow
streaming provider (a seam double) so that the disconnect always lands mid-answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
from sqlalchemy import select

from tests.fakes import FakeProvider
from tests.servers import live_server
from tests.service.service_helpers import QUESTION
from workbench.config import ModelSpec
from workbench.models import ledger
from workbench.observability import tracing
from workbench.observability.traces import get_trace
from workbench.store import keys, reservations


class SlowStream(FakeProvider):
    """Streams one word every ``gap_s``; records when its stream is closed."""

    def __init__(self, words: int = 400, gap_s: float = 0.02):
        super().__init__(text=" ".join(f"word{i}" for i in range(words)))
        self.gap_s = gap_s
        self.closed = threading.Event()
        self.chunks_sent = 0

    def stream(self, body: dict[str, Any], spec: ModelSpec) -> Iterator[dict[str, Any]]:
        try:
            for chunk in super().stream(body, spec):
                time.sleep(self.gap_s)
                self.chunks_sent += 1
                yield chunk
        finally:
            self.closed.set()


def wait_for(check: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_disconnect_mid_stream_settles_the_budget_and_ends_the_spans(make_service: Any) -> None:
    slow = SlowStream()
    served = make_service(provider=slow, model="pricey", max_tokens=100)
    key_id, headers = served.new_key(budget_usd=50.0)
    with live_server(served.app) as base, httpx.Client(base_url=base, timeout=30) as client:
        with client.stream("POST", "/ask/stream", json={"question": QUESTION},
                           headers=headers) as resp:
            assert resp.status_code == 200
            trace_id = resp.headers["x-workbench-trace-id"]
            for line in resp.iter_lines():
                if line.startswith("event: token"):
                    break  # leave after the first token: the client goes away
        assert slow.closed.wait(30), "the model stream was never closed"
        assert slow.chunks_sent < 300  # it stopped early, not at the end of the text

        def settled() -> bool:
            with served.gw.store.read() as conn:
                return conn.execute(select(reservations)).first() is None
        wait_for(settled)
        wait_for(lambda: any(r["endpoint"] == "chat" for r in
                             ledger.entries(served.gw.store, trace_id=trace_id)))
        rows = ledger.entries(served.gw.store, trace_id=trace_id)
        chat = next(r for r in rows if r["endpoint"] == "chat")
        assert chat["error_code"] == "client_disconnected" and chat["cost_usd"] > 0
        with served.gw.store.read() as conn:
            budget = conn.execute(select(keys.c.spent_usd, keys.c.reserved_usd)
                                  .where(keys.c.id == key_id)).one()
        assert budget.reserved_usd == 0 and budget.spent_usd > 0
        assert abs(budget.spent_usd - chat["cost_usd"]) < 1e-9  # ledger matches the budget

        # Every span of the request ended (and was written), marked as cut short; the
        # tracer's table of open root spans no longer holds this trace.
        assert int(trace_id, 16) not in tracing._OPEN_ROOTS
        trace = get_trace(served.gw.store, trace_id)
        by_kind = {s.kind: s for s in trace.spans}
        assert set(by_kind) == {"CHAIN", "RETRIEVER", "EMBEDDING", "LLM"}
        chains = {s.name: s for s in trace.spans if s.kind == "CHAIN"}
        assert set(chains) == {"service.ask", "rag.ask"}
        assert by_kind["LLM"].status == "ERROR"
        assert all(c.status == "ERROR" for c in chains.values())
        assert chains["service.ask"].attributes.get("workbench.error_code") == \
            "client_disconnected"

        # The worker is free again: the next request is served normally.
        ok = client.post("/ask", json={"question": QUESTION}, headers=headers)
        assert ok.status_code == 200
        metrics = client.get("/metrics").text
        assert 'workbench_service_asks_total{outcome="disconnected",streamed="true"} 1' in metrics
        assert "workbench_service_requests_in_flight 1" in metrics  # only the scrape itself


def test_stream_error_after_the_first_token_is_an_event(make_service: Any) -> None:
    class Breaks(SlowStream):
        def stream(self, body: dict[str, Any], spec: ModelSpec) -> Iterator[dict[str, Any]]:
            for i, chunk in enumerate(super().stream(body, spec)):
                if i == 40:  # well past the Gateway's 64-character PII hold-back
                    from workbench.errors import UpstreamError

                    raise UpstreamError("upstream reset the connection")
                yield chunk

    served = make_service(provider=Breaks(gap_s=0.0))
    with live_server(served.app) as base, httpx.Client(base_url=base, timeout=30) as client:
        resp = client.post("/ask/stream", json={"question": QUESTION}, headers=served.headers)
    assert resp.status_code == 200
    assert resp.text.count("event: token") >= 1
    last = resp.text.strip().split("\n\n")[-1]
    assert last.startswith("event: error") and '"code":"upstream_error"' in last
    assert resp.headers["x-workbench-trace-id"] in last
    with served.gw.store.read() as conn:
        assert conn.execute(select(reservations)).first() is None
