"""Trust boundaries of the service, tried as an attacker would: two real keys over HTTP
(uvicorn on loopback), key B reusing key A's trace id through ``traceparent``.

Before the fix the service adopted any caller's trace id: B's answer landed in A's trace,
B's ledger rows made B "answered for" it, and B's thumbs-down overwrote A's thumbs-up.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.servers import live_server
from tests.service.service_helpers import QUESTION, Served
from workbench.models import ledger
from workbench.observability import feedback
from workbench.observability.traces import flush, get_trace, list_traces


class TwoKeys:
    """The service on a real socket, and two keys of different teams."""

    def __init__(self, served: Served, base: str):
        self.served = served
        self.http = httpx.Client(base_url=base, timeout=60)
        self.a_id, self.a = served.new_key(team="team-a")
        self.b_id, self.b = served.new_key(team="team-b")

    def ask(self, headers: dict[str, str], traceparent: str | None = None,
            path: str = "/ask") -> httpx.Response:
        extra = {"traceparent": traceparent} if traceparent else {}
        return self.http.post(path, json={"question": QUESTION}, headers={**headers, **extra})

    def thumbs(self, headers: dict[str, str], trace_id: str, value: bool,
               **extra: Any) -> httpx.Response:
        return self.http.post("/feedback", headers=headers, json={
            "trace_id": trace_id, "kind": "thumbs", "value": value, **extra})


@pytest.fixture(params=[True, False], ids=["strict", "lenient"])
def two_keys(request: pytest.FixtureRequest, make_service: Callable[..., Served]
             ) -> Iterator[TwoKeys]:
    served = make_service(strict_feedback=request.param, feedback_read=True)
    with live_server(served.app) as base:
        keys = TwoKeys(served, base)
        yield keys
        keys.http.close()


def traceparent(trace_id: str, span_id: str | None = None) -> str:
    return f"00-{trace_id}-{span_id or secrets.token_hex(8)}-01"


def test_key_b_cannot_join_or_rate_key_a_trace(two_keys: TwoKeys) -> None:
    k = two_keys
    gw = k.served.gw
    a_trace = k.ask(k.a).json()["trace_id"]
    assert k.thumbs(k.a, a_trace, True).status_code == 201

    # B replays A's trace id as its own W3C context.
    resp = k.ask(k.b, traceparent(a_trace))
    assert resp.status_code == 200, resp.text
    b_trace = resp.json()["trace_id"]
    assert b_trace != a_trace and resp.headers["x-workbench-trace-id"] == b_trace
    # A's trace holds only A's model calls; B's answer is in a trace of its own that
    # links to the context B sent (for B's own debugging), never a span inside A's.
    assert {r["key_id"] for r in ledger.entries(gw.store, trace_id=a_trace)} == {k.a_id}
    assert {r["key_id"] for r in ledger.entries(gw.store, trace_id=b_trace)} == {k.b_id}
    flush(gw.store)
    b_root = get_trace(gw.store, b_trace).roots[0]
    assert b_root.name == "service.ask" and b_root.parent_id is None
    assert b_root.attributes["workbench.caller_trace_id"] == a_trace
    assert {s.attributes.get("workbench.key_id") for s in get_trace(gw.store, a_trace).spans
            if "workbench.key_id" in s.attributes} == {k.a_id}

    # B's thumbs-down on A's trace: refused (strict), or kept apart from A's row.
    attack = k.thumbs(k.b, a_trace, False)
    rows = feedback.list_feedback(gw.store, trace_id=a_trace, kind="thumbs")
    if k.served.app.state.service.settings.strict_feedback:
        assert attack.status_code == 404 and attack.json()["error"]["code"] == "unknown_trace"
        assert [r["value"] for r in rows] == [True]
    else:
        assert attack.status_code == 201, attack.text
        assert sorted(r["value"] for r in rows) == [False, True]
        assert all(r["occurrences"] == 1 for r in rows)  # A's row was not "updated"
    # A repeating its own signal still updates its own row (dedupe per key).
    assert k.thumbs(k.a, a_trace, False).status_code == 200
    mine = [r for r in feedback.list_feedback(gw.store, trace_id=a_trace, kind="thumbs")
            if r["occurrences"] == 2]
    assert len(mine) == 1 and mine[0]["value"] is False


def test_first_key_to_use_a_caller_trace_id_owns_it(two_keys: TwoKeys) -> None:
    k = two_keys
    fresh = secrets.token_hex(16)
    parent = secrets.token_hex(8)
    first = k.ask(k.a, traceparent(fresh, parent))
    assert first.json()["trace_id"] == fresh  # a new trace: the caller's id is honoured
    again = k.ask(k.a, traceparent(fresh))
    assert again.json()["trace_id"] == fresh  # ...and stays the caller's own (retries)
    stolen = k.ask(k.b, traceparent(fresh), path="/ask")
    assert stolen.json()["trace_id"] != fresh
    # The streaming route applies the same rule.
    stream = k.ask(k.b, traceparent(fresh), path="/ask/stream")
    assert stream.status_code == 200
    assert stream.headers["x-workbench-trace-id"] != fresh
    # The caller's span is the parent of the request's root span (W3C semantics).
    flush(k.served.gw.store)
    roots = get_trace(k.served.gw.store, fresh).roots
    assert [r.name for r in roots] == ["service.ask", "service.ask"]  # A's two answers
    assert parent in {r.attributes.get("workbench.remote_parent_id") for r in roots}
    listed = list_traces(k.served.gw.store, limit=50)
    assert {r["root"] for r in listed if r["trace_id"] == fresh} == {"service.ask"}


def test_idempotency_ids_are_per_key(two_keys: TwoKeys) -> None:
    k = two_keys
    a_trace = k.ask(k.a).json()["trace_id"]
    b_trace = k.ask(k.b).json()["trace_id"]
    first = k.thumbs(k.a, a_trace, True, idempotency_id="click-1")
    assert first.status_code == 201
    # B reusing A's idempotency id neither gets A's row back nor a conflict.
    other = k.thumbs(k.b, b_trace, False, idempotency_id="click-1")
    assert other.status_code == 201, other.text
    assert other.json()["id"] != first.json()["id"]
    replay = k.thumbs(k.a, a_trace, True, idempotency_id="click-1")
    assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
