"""The service's HTTP API: every endpoint, auth, errors and bad input, over TestClient.

The model is the FakeProvider seam; retrieval is real (ONNX embedder, LanceDB)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.fakes import FakeProvider
from tests.service.service_helpers import FAKE_ANSWER, QUESTION, Served, assert_error, bearer, sse
from workbench.models import ledger
from workbench.observability.schema import spans
from workbench.observability.traces import flush, get_trace
from workbench.store import keys, reservations


# -- probes, info, pages ---------------------------------------------------------------
def test_health_ready_info_need_no_key(served: Served) -> None:
    c = served.client
    assert c.get("/healthz").json() == {"status": "ok"}
    ready = c.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"store": "ok", "provider": "ok",
                                                          "collection": "ok"}}
    info = c.get("/info").json()
    assert info["collection"] == "docs" and info["auth"] is True


def test_readyz_is_red_without_the_collection(make_service: Any) -> None:
    served = make_service(ingest_corpus=False)
    resp = served.client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["checks"]["collection"].startswith("error: collection 'docs' does not")
    assert_error(served.ask(), 404, "collection_not_found")
    assert served.client.get("/healthz").status_code == 200


def test_chat_page_docs_and_static_files_are_served_with_a_strict_csp(served: Served) -> None:
    c = served.client
    page = c.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/app.js"' in page.text and "<script>" not in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "http" not in page.text.split("<body")[0]  # no CDN, no external resource
    for asset in ("/static/app.js", "/static/app.css", "/static/api.js"):
        assert c.get(asset).status_code == 200
    assert "/openapi.json" in c.get("/docs").text
    schema = c.get("/openapi.json").json()
    assert {"/ask", "/ask/stream", "/feedback", "/healthz", "/readyz", "/metrics",
            "/info"} <= set(schema["paths"])
    assert_error(c.get("/static/nope.js"), 404, "not_found")
    assert_error(c.get("/no-such-route"), 404, "not_found")


# -- ask ----------------------------------------------------------------------------------
def test_ask_answers_with_sources_and_one_trace(served: Served) -> None:
    resp = served.ask()
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["answer"] == FAKE_ANSWER and body["grounded"] is True
    assert body["model"] == "fake-model"
    assert body["sources"][0]["n"] == 1 and body["sources"][0]["cited"] is True
    assert body["sources"][0]["source"].endswith("lighthouse.md")
    trace_id = body["trace_id"]
    assert resp.headers["x-workbench-trace-id"] == trace_id
    rows = ledger.entries(served.gw.store, trace_id=trace_id)
    assert {r["endpoint"] for r in rows} == {"chat", "embeddings"}
    assert {r["key_id"] for r in rows} == {served.key_id}
    trace = get_trace(served.gw.store, trace_id)
    assert [s.name for s in trace.roots] == ["service.ask"]
    assert {s.kind for s in trace.spans} == {"CHAIN", "RETRIEVER", "EMBEDDING", "LLM"}
    assert trace.answer() == FAKE_ANSWER and trace.question() == QUESTION


def test_callers_traceparent_becomes_the_answer_trace(served: Served) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    resp = served.client.post("/ask", json={"question": QUESTION}, headers={
        **served.headers, "traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
    assert resp.json()["trace_id"] == trace
    assert ledger.entries(served.gw.store, trace_id=trace)


def test_off_topic_question_is_answered_without_the_model(served: Served) -> None:
    resp = served.ask("Quantum chromodynamics of gluon plasma in neutron stars?")
    body = resp.json()
    assert resp.status_code == 200 and body["grounded"] is False and body["sources"] == []
    assert not served.provider.calls  # no chat call at all
    # ...and it can still get feedback: its trace is known (the query embedding).
    fb = served.client.post("/feedback", headers=served.headers,
                            json={"trace_id": body["trace_id"], "kind": "thumbs", "value": False})
    assert fb.status_code == 201, fb.text


def test_pii_in_the_question_is_masked_in_traces(served: Served) -> None:
    resp = served.ask("My email is jane.doe@example.com - when is the lamp lit?")
    trace_id = resp.json()["trace_id"]
    flush(served.gw.store)
    with served.gw.store.read() as conn:
        stored = json.dumps([dict(r._mapping) for r in conn.execute(
            select(spans.c.attributes).where(spans.c.trace_id == trace_id))])
    assert "jane.doe@example.com" not in stored
    secret = served.headers["Authorization"].split()[1]
    assert secret not in stored and secret not in resp.text


@pytest.mark.parametrize("headers,code", [
    ({}, "invalid_api_key"),
    ({"Authorization": "Basic abc"}, "invalid_api_key"),
    (bearer("wb-not-a-real-key-000000000000000000000000"), "invalid_api_key"),
])
def test_ask_needs_a_valid_key(served: Served, headers: dict[str, str], code: str) -> None:
    resp = served.ask(headers=headers)
    assert assert_error(resp, 401, code)["type"] == "authentication_error"
    assert resp.headers["www-authenticate"] == "Bearer"


def test_revoked_key_and_disallowed_model(served: Served) -> None:
    key_id, headers = served.new_key()
    served.gw.policy.revoke_key(key_id)
    assert_error(served.ask(headers=headers), 401, "key_revoked")
    _, narrow = served.new_key(models="minilm-l6-v2")  # may embed, may not chat
    assert_error(served.ask(headers=narrow), 403, "model_not_allowed")


def test_auth_off_answers_as_the_local_owner(make_service: Any) -> None:
    served = make_service(auth=False)
    body = served.ask(headers={}).json()
    assert {r["key_id"] for r in ledger.entries(served.gw.store, trace_id=body["trace_id"])} \
        == {None}
    assert served.client.get("/info").json()["auth"] is False


def test_budget_and_rate_limits_apply(make_service: Any) -> None:
    served = make_service(model="pricey")
    _, broke = served.new_key(budget_usd=0.0001)
    resp = served.ask(headers=broke)
    assert_error(resp, 429, "insufficient_quota")
    assert resp.headers["x-should-retry"] == "false"
    _, limited = served.new_key(rpm=1)
    assert served.ask(headers=limited).status_code == 429  # the embedding used the minute


# -- streaming --------------------------------------------------------------------------
def test_stream_sends_meta_tokens_then_the_answer(make_service: Any) -> None:
    # Long enough to come out in several pieces: the Gateway holds back the last 64
    # characters of a stream until it can tell they hold no PII.
    answer = "The keeper lights the Fresnel lamp at dusk [1]. " * 6
    served = make_service(provider=FakeProvider(text=answer.strip()))
    resp = served.client.post("/ask/stream", json={"question": QUESTION},
                              headers=served.headers)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith(
        "text/event-stream")
    events = sse(resp.text)
    kinds = [k for k, _ in events]
    assert kinds[0] == "meta" and kinds[-1] == "done" and kinds.count("token") >= 3
    trace_id = events[0][1]["trace_id"]
    done = events[-1][1]
    assert done["trace_id"] == trace_id == resp.headers["x-workbench-trace-id"]
    assert "".join(d["text"] for k, d in events if k == "token").strip() == done["answer"]
    assert done["answer"] == answer.strip() and done["sources"]
    assert {r["outcome"] for r in ledger.entries(served.gw.store, trace_id=trace_id)} == {"ok"}
    assert {s.kind for s in get_trace(served.gw.store, trace_id).spans} == {
        "CHAIN", "RETRIEVER", "EMBEDDING", "LLM"}


def test_stream_refusals_are_http_errors_not_events(make_service: Any) -> None:
    served = make_service(model="pricey")
    _, broke = served.new_key(budget_usd=0.0001)
    resp = served.client.post("/ask/stream", json={"question": QUESTION}, headers=broke)
    assert_error(resp, 429, "insufficient_quota")
    assert_error(served.client.post("/ask/stream", json={"question": QUESTION}), 401)


# -- the provider is down ------------------------------------------------------------------
def test_provider_down_readyz_red_and_ask_502_with_a_trace_id(make_service: Any) -> None:
    served = make_service(provider=FakeProvider(fail=-1))
    ready = served.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["provider"].startswith("error")
    resp = served.ask()
    err = assert_error(resp, 502, "upstream_error")
    rows = ledger.entries(served.gw.store, trace_id=err["trace_id"])
    assert {r["outcome"] for r in rows if r["endpoint"] == "chat"} == {"error"}
    streamed = served.client.post("/ask/stream", json={"question": QUESTION},
                                  headers=served.headers)
    assert_error(streamed, 502, "upstream_error")
    with served.gw.store.read() as conn:
        assert conn.execute(select(reservations)).first() is None


def test_unreachable_http_provider_is_reported(make_service: Any) -> None:
    """A real OpenAI-compatible provider on a closed port (nothing listens on port 9)."""
    profile = {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "chat_model": "remote",
               "models": [{"name": "remote", "provider": "dead"}]}
    served = make_service(gateway_settings={"profiles": {"dead": profile}, "profile": "dead",
                                            "chat_model": "remote", "max_retries": 0},
                          model="remote")
    ready = served.client.get("/readyz").json()
    assert ready["status"] == "not ready" and ready["checks"]["provider"].startswith("error")
    err = assert_error(served.ask(), 502)
    assert err["type"] == "upstream_error"


# -- bad input ---------------------------------------------------------------------------
@pytest.mark.parametrize("body,code", [
    (b"{not json", "bad_request"),
    (b"[]", "bad_request"),
    (b'{"question": 3}', "bad_request"),
    (b'{"question": ""}', "bad_request"),
    (b'{"question": "   "}', "bad_request"),
    (b'{"question": "hi", "extra": 1}', "bad_request"),
    (b'{"question": "\\ud800 lamp"}', "bad_request"),
    (b'{"question": "' + b"x" * 4001 + b'"}', "question_too_long"),
])
def test_bad_ask_bodies_are_400(served: Served, body: bytes, code: str) -> None:
    for path in ("/ask", "/ask/stream"):
        resp = served.client.post(path, content=body, headers={
            **served.headers, "content-type": "application/json"})
        assert_error(resp, 400, code)


def test_oversized_bodies_are_413(make_service: Any) -> None:
    served = make_service(max_request_bytes=2_000)
    big = {"question": "lamp " * 1_000}
    for path in ("/ask", "/feedback"):
        assert_error(served.client.post(path, json=big, headers=served.headers), 413,
                     "request_too_large")


def test_too_many_answers_in_flight_get_503(make_service: Any) -> None:
    served = make_service(provider=FakeProvider(text=FAKE_ANSWER, delay_s=0.5),
                          max_inflight=1)

    async def two_at_once() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=served.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return list(await asyncio.gather(*(
                client.post("/ask", json={"question": QUESTION}, headers=served.headers)
                for _ in range(2))))

    statuses = sorted(r.status_code for r in asyncio.run(two_at_once()))
    assert statuses == [200, 503]
    busy = next(r for r in asyncio.run(two_at_once()) if r.status_code == 503)
    assert busy.headers["retry-after"] == "1"
    assert busy.json()["error"]["code"] == "overloaded"


# -- feedback ----------------------------------------------------------------------------
def _feedback(served: Served, headers: dict[str, str] | None = None, **body: Any
              ) -> httpx.Response:
    return served.client.post("/feedback", json=body,
                              headers=served.headers if headers is None else headers)


def test_feedback_signals_are_stored_against_the_answer(served: Served) -> None:
    from workbench.observability.feedback import list_feedback

    trace_id = served.ask().json()["trace_id"]
    assert _feedback(served, trace_id=trace_id, kind="thumbs", value=False,
                     comment="wrong lamp").status_code == 201
    again = _feedback(served, trace_id=trace_id, kind="thumbs", value=True)
    assert again.status_code == 200 and again.json()["status"] == "updated"
    assert _feedback(served, trace_id=trace_id, kind="copy").status_code == 201
    assert _feedback(served, trace_id=trace_id, kind="retry", value=True).status_code == 201
    edit = _feedback(served, trace_id=trace_id, kind="edit",
                     value="The keeper lights the Fresnel lamp at dusk.")
    assert edit.status_code == 201 and edit.json()["linked"] is True
    rows = {r["kind"]: r for r in list_feedback(served.gw.store, trace_id=trace_id)}
    assert set(rows) == {"thumbs", "copy", "retry", "edit"}
    assert rows["thumbs"]["value"] is True and rows["thumbs"]["occurrences"] == 2
    assert "+The keeper lights the Fresnel lamp at dusk." in rows["edit"]["diff"]
    assert f"-{FAKE_ANSWER}" in rows["edit"]["diff"]
    batch = served.client.post("/feedback", headers=served.headers, json=[
        {"trace_id": trace_id, "kind": "rating", "value": 4},
        {"trace_id": trace_id, "kind": "score", "name": "helpful", "value": 0.5}])
    assert batch.status_code == 201 and len(batch.json()) == 2


def test_feedback_for_unknown_or_foreign_traces_is_404(served: Served) -> None:
    assert_error(_feedback(served, trace_id="ab" * 16, kind="thumbs", value=True), 404,
                 "unknown_trace")
    other_trace = served.ask().json()["trace_id"]
    _, stranger = served.new_key()
    assert_error(_feedback(served, headers=stranger, trace_id=other_trace, kind="thumbs",
                           value=True), 404, "unknown_trace")
    # One unknown id in a batch: nothing from the batch is stored.
    batch = served.client.post("/feedback", headers=served.headers, json=[
        {"trace_id": other_trace, "kind": "copy"}, {"trace_id": "cd" * 16, "kind": "copy"}])
    assert_error(batch, 404, "unknown_trace")
    from workbench.observability.feedback import list_feedback

    assert not list_feedback(served.gw.store, trace_id=other_trace)


def test_feedback_without_strict_checking_links_later(make_service: Any) -> None:
    served = make_service(strict_feedback=False)
    resp = _feedback(served, trace_id="ab" * 16, kind="thumbs", value=True)
    assert resp.status_code == 201 and resp.json()["linked"] is False


@pytest.mark.parametrize("body,status,code", [
    (b"{oops", 400, "bad_request"),
    (b'{"trace_id": "not-hex", "kind": "thumbs", "value": true}', 400, "bad_request"),
    (b'{"trace_id": "' + b"ab" * 16 + b'", "kind": "thumbs", "value": "maybe"}', 404,
     "unknown_trace"),
    (b"[]", 400, "bad_request"),
])
def test_bad_feedback_bodies(served: Served, body: bytes, status: int, code: str) -> None:
    resp = served.client.post("/feedback", content=body, headers={
        **served.headers, "content-type": "application/json"})
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code
    assert_error(served.client.post("/feedback", content=body), 401)


def test_invalid_feedback_values_are_explained(served: Served) -> None:
    trace_id = served.ask().json()["trace_id"]
    resp = _feedback(served, trace_id=trace_id, kind="thumbs", value="maybe")
    assert resp.status_code == 400 and "boolean" in resp.json()["error"]["message"]
    resp = _feedback(served, trace_id=trace_id, kind="nope", value=1)
    assert resp.status_code == 400 and "unknown kind" in resp.json()["error"]["message"]


def test_reading_feedback_is_off_unless_enabled(make_service: Any) -> None:
    served = make_service()
    assert served.client.get("/feedback", headers=served.headers).status_code in (404, 405)
    open_ = make_service(feedback_read=True)
    trace_id = open_.ask().json()["trace_id"]
    _feedback(open_, trace_id=trace_id, kind="copy")
    listed = open_.client.get("/feedback", params={"trace_id": trace_id}, headers=open_.headers)
    assert [r["kind"] for r in listed.json()] == ["copy"]
    assert open_.client.get("/feedback/stats", headers=open_.headers).status_code == 200
    assert_error(open_.client.get("/feedback"), 401)


# -- metrics, CORS ---------------------------------------------------------------------
def test_metrics_are_prometheus_text(served: Served) -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    trace_id = served.ask().json()["trace_id"]
    _feedback(served, trace_id=trace_id, kind="thumbs", value=True)
    served.client.post("/ask/stream", json={"question": QUESTION}, headers=served.headers)
    served.ask(headers={})
    resp = served.client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in parser.text_string_to_metric_families(resp.text)}

    def value(family: str, sample: str, **labels: str) -> float:
        return sum(s.value for s in families[family].samples
                   if s.name == sample and labels.items() <= s.labels.items())

    reqs = "workbench_service_requests"
    assert value(reqs, reqs + "_total", route="/ask", status="200") == 1
    assert value(reqs, reqs + "_total", route="/ask", status="401") == 1
    assert value(reqs, reqs + "_total", route="/feedback", status="201") == 1
    lat = "workbench_service_request_duration_seconds"
    assert value(lat, lat + "_count", route="/ask/stream") == 1
    buckets = [s.value for s in families[lat].samples
               if s.name == lat + "_bucket" and s.labels["route"] == "/ask"]
    assert buckets == sorted(buckets) and buckets[-1] == 2  # the 200 and the 401
    asks = "workbench_service_asks"
    assert value(asks, asks + "_total", outcome="answered", streamed="false") == 1
    assert value(asks, asks + "_total", outcome="answered", streamed="true") == 1
    tokens = "workbench_service_tokens"
    assert value(tokens, tokens + "_total", model="fake-model", type="completion") == 10
    assert value("workbench_feedback_messages", "workbench_feedback_messages",
                 kind="thumbs") == 1
    assert value("workbench_feedback_thumbs_up_ratio", "workbench_feedback_thumbs_up_ratio") == 1
    assert value("process_resident_memory_bytes", "process_resident_memory_bytes") > 0


def test_cors_is_off_by_default_and_configurable(make_service: Any) -> None:
    preflight = {"Origin": "https://intranet.example.com", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    closed = make_service()
    resp = closed.client.options("/ask", headers=preflight)
    assert "access-control-allow-origin" not in resp.headers
    opened = make_service(cors_origins=["https://intranet.example.com"])
    resp = opened.client.options("/ask", headers=preflight)
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == "https://intranet.example.com"
    other = opened.client.options("/ask", headers={**preflight, "Origin": "https://evil.test"})
    assert "access-control-allow-origin" not in other.headers


def test_keys_and_budgets_are_left_clean(served: Served) -> None:
    for _ in range(2):
        served.ask()
        served.client.post("/ask/stream", json={"question": QUESTION}, headers=served.headers)
    with served.gw.store.read() as conn:
        assert conn.execute(select(reservations)).first() is None
        row = conn.execute(select(keys.c.reserved_usd).where(keys.c.id == served.key_id)).one()
    assert row.reserved_usd == 0
