"""The OpenAI-compatible proxy: statuses, error shapes, streaming, limits, secrets.

Unit-level: FastAPI's TestClient and the FakeProvider seam. The disconnect test needs a
real socket, so it runs the app under uvicorn on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.fakes import FakeProvider, priced
from tests.servers import live_server
from workbench.config import ModelSpec
from workbench.errors import UpstreamError, UpstreamTimeout
from workbench.models import ledger
from workbench.models.gateway import Gateway
from workbench.models.server import BodyLimitMiddleware, create_app

MODELS = [{"name": "fake-model", "provider": "fake"}, {"name": "other-model", "provider": "fake"},
          {"name": "fake-embed", "provider": "fake", "kind": "embedding"}, priced("pricey")]
CHAT = "/v1/chat/completions"
HELLO = {"messages": [{"role": "user", "content": "hi"}]}


def make(make_gateway: Any, provider: Any = None, **settings: Any) -> tuple[Gateway, TestClient]:
    gw = make_gateway(providers={"fake": provider or FakeProvider()}, models=MODELS,
                      chat_model="fake-model", **settings)
    return gw, TestClient(create_app(gw), raise_server_exceptions=False)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_key(gw: Gateway, **limits: Any) -> tuple[str, dict[str, str]]:
    key_id, secret = gw.policy.create_key(team=limits.pop("team", "t"), **limits)
    return key_id, bearer(secret)


def assert_error(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "code"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    assert "Traceback" not in resp.text
    return dict(body["error"])


def post_raw(client: TestClient, path: str, body: Any, headers: dict[str, str]
             ) -> httpx.Response:
    """POST ``json.dumps(body)``: it escapes lone surrogates (still valid JSON), where
    httpx's own encoder would refuse them."""
    return client.post(path, content=json.dumps(body).encode(),
                       headers={**headers, "content-type": "application/json"})


def sse_events(text: str) -> list[str]:
    return [line[len("data: "):] for line in text.split("\n\n") if line.startswith("data: ")]


@pytest.fixture
def served(make_gateway: Any) -> tuple[Gateway, TestClient, dict[str, str]]:
    gw, client = make(make_gateway)
    _, headers = new_key(gw)
    return gw, client, headers


# -- probes and models -----------------------------------------------------------------
def test_probes_need_no_key(served: Any) -> None:
    _, client, _ = served
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"store": "ok", "provider": "ok"}}


def test_readyz_is_503_when_the_provider_is_down(make_gateway: Any) -> None:
    _, client = make(make_gateway, FakeProvider(fail=-1))
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["status"] == "not ready"
    assert resp.json()["checks"]["provider"].startswith("error")
    assert client.get("/healthz").status_code == 200  # alive, just not ready


def test_models_lists_only_what_the_key_may_use(make_gateway: Any) -> None:
    gw, client = make(make_gateway)
    _, everything = new_key(gw)
    _, narrow = new_key(gw, models="fake-model,minilm-l6-v2")
    gw.policy.set_team("small", models="other-model")
    _, team_limited = new_key(gw, team="small")

    def ids(headers: dict[str, str]) -> list[str]:
        body = client.get("/v1/models", headers=headers).json()
        assert body["object"] == "list"
        assert all(m["object"] == "model" and m["owned_by"] for m in body["data"])
        return sorted(m["id"] for m in body["data"])

    assert {"fake-model", "other-model", "pricey", "smollm2-135m"} <= set(ids(everything))
    assert ids(narrow) == ["fake-model", "minilm-l6-v2"]
    assert ids(team_limited) == ["other-model"]
    assert client.get("/v1/models/fake-model", headers=narrow).json()["id"] == "fake-model"
    assert_error(client.get("/v1/models/other-model", headers=narrow), 403, "model_not_allowed")
    assert_error(client.get("/v1/models/no-such", headers=narrow), 404, "model_not_found")
    assert_error(client.get("/v1/models"), 401)


# -- chat ------------------------------------------------------------------------------
def test_chat_returns_the_provider_response_with_a_trace_id(served: Any) -> None:
    gw, client, headers = served
    resp = client.post(CHAT, json={**HELLO, "model": "fake-model", "tools": []},
                       headers=headers)
    assert resp.status_code == 200
    body = resp.json()
    assert body["object"] == "chat.completion" and body["model"] == "fake-model"
    assert body["choices"][0]["message"]["content"] == "fake answer"
    trace_id = resp.headers["x-workbench-trace-id"]
    row = ledger.entries(gw.store, trace_id=trace_id)[0]
    assert row["outcome"] == "ok" and row["key_id"] is not None and row["tokens_in"] == 10


def test_request_model_is_honoured_not_replaced_by_the_default(make_gateway: Any) -> None:
    fake = FakeProvider()
    gw, client = make(make_gateway, fake)
    _, headers = new_key(gw)
    assert client.post(CHAT, json={**HELLO, "model": "other-model"},
                       headers=headers).json()["model"] == "other-model"
    assert fake.calls[-1]["model"] == "other-model"


def test_caller_traceparent_becomes_the_trace_id(served: Any) -> None:
    gw, client, headers = served
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    resp = client.post(CHAT, json=HELLO,
                       headers={**headers, "traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
    assert resp.headers["x-workbench-trace-id"] == trace
    assert ledger.entries(gw.store, trace_id=trace)[0]["outcome"] == "ok"
    bad = client.post(CHAT, json=HELLO, headers={**headers, "traceparent": "garbage"})
    assert len(bad.headers["x-workbench-trace-id"]) == 32


# -- error statuses --------------------------------------------------------------------
def test_401_for_missing_malformed_unknown_and_revoked_keys(served: Any) -> None:
    gw, client, _ = served
    key_id, headers = new_key(gw)
    assert client.post(CHAT, json=HELLO, headers=headers).status_code == 200
    gw.policy.revoke_key(key_id)
    cases = [({}, "invalid_api_key"), ({"Authorization": "Basic abc"}, "invalid_api_key"),
             (bearer("wb-not-a-real-key-000000000000000000000000"), "invalid_api_key"),
             (headers, "key_revoked")]
    for hdrs, code in cases:
        err = assert_error(client.post(CHAT, json=HELLO, headers=hdrs), 401, code)
        assert err["type"] == "authentication_error"
    # Auth is checked before the body is validated: no hints for anonymous callers.
    assert_error(client.post(CHAT, json={"messages": []}), 401)
    assert client.post(CHAT, json=HELLO, headers=headers).headers["www-authenticate"] == "Bearer"


def test_403_404_for_models(served: Any) -> None:
    gw, client, _ = served
    _, narrow = new_key(gw, models="fake-model")
    err = assert_error(client.post(CHAT, json={**HELLO, "model": "other-model"}, headers=narrow),
                       403, "model_not_allowed")
    assert err["type"] == "permission_error"
    assert_error(client.post(CHAT, json={**HELLO, "model": "nope"}, headers=narrow),
                 404, "model_not_found")
    assert_error(client.post("/v1/embeddings", json={"input": "x", "model": "minilm-l6-v2"},
                             headers=narrow), 403, "model_not_allowed")


def test_429_rate_limit_and_budget(served: Any) -> None:
    gw, client, _ = served
    _, limited = new_key(gw, rpm=1)
    assert client.post(CHAT, json=HELLO, headers=limited).status_code == 200
    err = assert_error(client.post(CHAT, json=HELLO, headers=limited), 429,
                       "rate_limit_exceeded")
    assert err["type"] == "rate_limit_error"

    _, broke = new_key(gw, budget_usd=0.0001)
    resp = client.post(CHAT, json={**HELLO, "model": "pricey"}, headers=broke)
    assert_error(resp, 429, "insufficient_quota")
    assert resp.headers["x-should-retry"] == "false"  # SDKs must not retry a spent budget


@pytest.mark.parametrize("body", [
    {"messages": "hi"},
    {"messages": []},
    {"messages": [{"role": "wizard", "content": "hi"}]},
    {**HELLO, "temperature": 7},
    {**HELLO, "max_tokens": 0},
    {**HELLO, "n": 3},
    {**HELLO, "stop": ["a"] * 9},
    {**HELLO, "stream": "sometimes"},
    {"messages": [{"role": "user", "content": "lone \ud800 surrogate"}]},
    {**HELLO, "model": "minilm-l6-v2"},  # an embedding model cannot chat
    {**HELLO, "model": "smollm2-135m", "max_tokens": 100_000},  # over the model's cap
    [1, 2, 3],
    "just a string",
])
def test_400_for_invalid_requests(served: Any, body: Any) -> None:
    _, client, headers = served
    err = assert_error(post_raw(client, CHAT, body, headers), 400)
    assert err["type"] == "invalid_request_error"


def test_400_messages_are_readable(served: Any) -> None:
    _, client, headers = served
    err = assert_error(client.post(CHAT, json={**HELLO, "temperature": 7}, headers=headers), 400)
    assert err["message"] == ("invalid request: temperature: Input should be less than or "
                              "equal to 2")
    err = assert_error(client.post(CHAT, content=b'{"messages": [', headers={
        **headers, "content-type": "application/json"}), 400)
    assert err["message"].startswith("request body is not valid JSON")
    err = assert_error(client.post(CHAT, json={"model": "fake-model"}, headers=headers), 400)
    assert err["message"] == "invalid request: messages: Field required"
    not_utf8 = client.post(CHAT, content=b"\xc9\x00", headers={
        **headers, "content-type": "application/json"})
    assert_error(not_utf8, 400, "bad_request")


def test_400_when_guardrails_block(served: Any) -> None:
    gw, client, _ = served
    _, strict = new_key(gw, guardrail_mode="block")
    prompt = {"messages": [{"role": "user", "content": "mail me at alice@example.com"}]}
    err = assert_error(client.post(CHAT, json=prompt, headers=strict), 400, "content_blocked")
    assert "alice" not in err["message"]


def test_413_from_content_length_and_from_bytes_actually_sent(make_gateway: Any) -> None:
    gw, client = make(make_gateway, max_request_bytes=2_000)
    _, headers = new_key(gw)
    big = {"messages": [{"role": "user", "content": "x" * 5_000}]}
    assert_error(client.post(CHAT, json=big, headers=headers), 413, "request_too_large")

    def chunked() -> Iterator[bytes]:  # no Content-Length: httpx sends it chunked
        yield json.dumps(big).encode()

    resp = client.post(CHAT, content=chunked(), headers={**headers,
                                                         "content-type": "application/json"})
    assert_error(resp, 413, "request_too_large")
    assert len(resp.headers["x-workbench-trace-id"]) == 32
    assert client.post(CHAT, json=HELLO, headers=headers).status_code == 200


def test_body_limit_counts_bytes_even_when_content_length_lies() -> None:
    reached: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append((await receive())["body"])

    pieces = [{"type": "http.request", "body": b"x" * 60, "more_body": True},
              {"type": "http.request", "body": b"x" * 60, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pieces.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [
        (b"content-length", b"10")]}
    asyncio.run(BodyLimitMiddleware(app, max_bytes=100)(scope, receive, send))
    assert reached == [] and sent[0]["status"] == 413


def test_404_and_405_routes_use_the_openai_error_shape(served: Any) -> None:
    _, client, headers = served
    assert_error(client.get("/v1/nothing", headers=headers), 404, "not_found")
    assert_error(client.get(CHAT, headers=headers), 405, "method_not_allowed")


@pytest.mark.parametrize(("error", "status", "code"), [
    (UpstreamError, 502, "upstream_error"), (UpstreamTimeout, 504, "upstream_timeout")])
def test_502_504_when_the_upstream_fails(make_gateway: Any, error: type[UpstreamError],
                                         status: int, code: str) -> None:
    gw, client = make(make_gateway, FakeProvider(fail=-1, error=error))
    _, headers = new_key(gw)
    assert_error(client.post(CHAT, json=HELLO, headers=headers), status, code)
    # Streaming too: the first chunk is pulled before answering, so it is a real status.
    resp = client.post(CHAT, json={**HELLO, "stream": True}, headers=headers)
    assert_error(resp, status, code)
    assert gw.usage(by=("outcome",))[0]["errors"] == 2


class Exploding(FakeProvider):
    def chat(self, body: dict[str, Any], spec: ModelSpec) -> dict[str, Any]:
        raise RuntimeError("bug holding wb-secretsecretsecretsecretsecretsecret")


def test_unexpected_failure_is_a_bare_500_without_details(make_gateway: Any) -> None:
    gw, client = make(make_gateway, Exploding())
    _, headers = new_key(gw)
    resp = client.post(CHAT, json=HELLO, headers=headers)
    err = assert_error(resp, 500, "internal_error")
    assert "wb-" not in resp.text and "RuntimeError" not in resp.text
    assert resp.headers["x-workbench-trace-id"] in err["message"]


# -- streaming -------------------------------------------------------------------------
def test_stream_is_sse_chunks_ending_with_done(served: Any) -> None:
    gw, client, headers = served
    resp = client.post(CHAT, json={**HELLO, "stream": True}, headers=headers)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = sse_events(resp.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(ch["delta"].get("content", "") for c in chunks for ch in c["choices"])
    assert text == "fake answer "
    row = ledger.entries(gw.store, trace_id=resp.headers["x-workbench-trace-id"])[0]
    assert row["outcome"] == "ok" and row["tokens_out"] == 5


def test_stream_governance_errors_are_json_not_sse(served: Any) -> None:
    gw, client, _ = served
    _, narrow = new_key(gw, models="fake-model")
    resp = client.post(CHAT, json={**HELLO, "stream": True, "model": "other-model"},
                       headers=narrow)
    assert resp.headers["content-type"] == "application/json"
    assert_error(resp, 403, "model_not_allowed")


class FailsMidStream(FakeProvider):
    def stream(self, body: dict[str, Any], spec: ModelSpec) -> Iterator[dict[str, Any]]:
        # The role chunk goes out at once; content may be held back by output masking.
        yield {"object": "chat.completion.chunk", "model": spec.name,
               "choices": [{"index": 0, "delta": {"role": "assistant", "content": "partial"},
                            "finish_reason": None}]}
        raise UpstreamError("upstream dropped the connection")


def test_failure_mid_stream_ends_with_an_error_event(make_gateway: Any) -> None:
    gw, client = make(make_gateway, FailsMidStream())
    _, headers = new_key(gw)
    resp = client.post(CHAT, json={**HELLO, "stream": True}, headers=headers)
    assert resp.status_code == 200  # headers were already sent
    events = sse_events(resp.text)
    assert "[DONE]" not in events
    assert json.loads(events[-1])["error"]["code"] == "upstream_error"
    assert gw.usage(by=("outcome",))[0]["errors"] == 1


class SlowStream(FakeProvider):
    """Streams many chunks slowly and records whether it was closed before the end."""

    def __init__(self) -> None:
        super().__init__()
        self.closed_early = threading.Event()

    def stream(self, body: dict[str, Any], spec: ModelSpec) -> Iterator[dict[str, Any]]:
        finished = False
        try:
            for _ in range(400):
                time.sleep(0.05)
                yield {"object": "chat.completion.chunk", "model": spec.name,
                       "choices": [{"index": 0, "delta": {"content": "tok "},
                                    "finish_reason": None}]}
            finished = True
        finally:
            if not finished:
                self.closed_early.set()


def test_client_disconnect_mid_stream_settles_the_reservation(make_gateway: Any) -> None:
    slow = SlowStream()
    gw = make_gateway(providers={"fake": slow}, models=MODELS, chat_model="fake-model")
    key_id, headers = new_key(gw, budget_usd=100.0)
    body = {**HELLO, "model": "pricey", "stream": True, "max_tokens": 50}
    with live_server(create_app(gw)) as url, httpx.Client(base_url=url, timeout=30) as http:
        with http.stream("POST", CHAT, json=body, headers=headers) as resp:
            assert resp.status_code == 200
            trace_id = resp.headers["x-workbench-trace-id"]
            first = next(line for line in resp.iter_lines() if line.startswith("data: "))
            assert "tok" in first
            assert gw.policy.budget_state(key_id)["reserved_usd"] > 0  # held while streaming
        # Leaving the block closes the connection mid-stream.
        assert slow.closed_early.wait(timeout=20), "the provider stream was never closed"
        deadline = time.monotonic() + 20
        while not ledger.entries(gw.store, trace_id=trace_id) and time.monotonic() < deadline:
            time.sleep(0.05)
    row = ledger.entries(gw.store, trace_id=trace_id)[0]
    assert row["outcome"] == "error" and row["error_code"] == "client_disconnected"
    state = gw.policy.budget_state(key_id)
    assert state["reserved_usd"] == pytest.approx(0.0, abs=1e-12)
    assert state["spent_usd"] > 0  # what was generated before the disconnect is charged
    assert row["cost_usd"] == pytest.approx(state["spent_usd"])  # and the ledger agrees
    assert row["tokens_out"] >= 1


# -- embeddings ------------------------------------------------------------------------
def test_embeddings_float_and_base64(served: Any) -> None:
    gw, client, headers = served
    body = {"input": ["a", "b"], "model": "fake-embed"}
    plain = client.post("/v1/embeddings", json=body, headers=headers)
    assert plain.status_code == 200
    vectors = [d["embedding"] for d in plain.json()["data"]]
    assert vectors == [[0.0, 1.0], [0.0, 1.0]]
    packed = client.post("/v1/embeddings", json={**body, "encoding_format": "base64"},
                         headers=headers).json()
    raw = base64.b64decode(packed["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert decoded == pytest.approx(vectors[0], abs=1e-6)
    row = ledger.entries(gw.store, trace_id=plain.headers["x-workbench-trace-id"])[0]
    assert row["endpoint"] == "embeddings" and row["outcome"] == "ok"


@pytest.mark.parametrize("body", [
    {"input": []}, {"input": [1, 2]}, {"input": "x", "encoding_format": "int8"}, {},
    {"input": "x", "model": "fake-model"},  # a chat model cannot embed
    {"input": ["ok", "lone \ud800"], "model": "fake-embed"},
])
def test_embeddings_400(served: Any, body: dict[str, Any]) -> None:
    _, client, headers = served
    assert_error(post_raw(client, "/v1/embeddings", body, headers), 400)


# -- secrets ---------------------------------------------------------------------------
CANARY_PII = ["alice.canary@example.com", "4111 1111 1111 1111", "+44 20 7946 0958"]


def test_no_key_or_pii_in_any_response(make_gateway: Any) -> None:
    gw, client = make(make_gateway)
    key_id, headers = new_key(gw, models="fake-model", rpm=2)
    _, strict = new_key(gw, guardrail_mode="block")
    secret = headers["Authorization"].split()[1]
    prompt = "my mail is alice.canary@example.com, card 4111 1111 1111 1111, +44 20 7946 0958"
    msgs = [{"role": "user", "content": prompt}]
    responses = [
        client.post(CHAT, json={"messages": msgs}, headers=headers),
        client.post(CHAT, json={"messages": msgs, "stream": True}, headers=headers),
        client.post(CHAT, json={"messages": msgs, "model": "other-model"}, headers=headers),
        client.post(CHAT, json={"messages": msgs, "temperature": prompt}, headers=headers),
        client.post(CHAT, json={"messages": [{"role": prompt, "content": prompt}]},
                    headers=headers),
        client.post(CHAT, json={"messages": msgs, "max_tokens": -1}, headers=headers),
        client.post(CHAT, json={"messages": msgs}, headers=strict),
        client.post(CHAT, json={"messages": msgs}, headers=headers),  # over rpm: 429
        client.post(CHAT, json={"messages": msgs}, headers=bearer(secret + "x")),
        client.post(CHAT, content=json.dumps({"messages": msgs}).encode() + b"}",
                    headers={**headers, "content-type": "application/json"}),
        client.post(CHAT, json={"messages": msgs + [{"x": "y" * 2_000_000}]}, headers=headers),
        client.post("/v1/embeddings", json={"input": [prompt, 3]}, headers=headers),
        client.post("/v1/embeddings", json={"input": prompt, "model": "minilm-l6-v2"},
                    headers=headers),
    ]
    statuses = [r.status_code for r in responses]
    assert statuses == [200, 200, 403, 400, 400, 400, 400, 429, 401, 400, 413, 400, 403]
    gw.policy.revoke_key(key_id)
    responses.append(client.post(CHAT, json={"messages": msgs}, headers=headers))
    assert responses[-1].status_code == 401
    for resp in responses:
        blob = resp.text + json.dumps(dict(resp.headers))
        assert secret not in blob and "wb-" not in blob
        for pii in CANARY_PII:
            assert pii not in blob, (resp.status_code, resp.text)
    stored = json.dumps(ledger.entries(gw.store, limit=1000), default=str)
    assert secret not in stored and not any(pii in stored for pii in CANARY_PII)


# -- contract --------------------------------------------------------------------------
def test_openapi_describes_requests_and_bearer_auth(served: Any) -> None:
    _, client, _ = served
    spec = client.get("/openapi.json").json()
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    ref = chat["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/ChatRequest")
    assert "messages" in spec["components"]["schemas"]["ChatRequest"]["properties"]
    assert chat["security"] and "HTTPBearer" in spec["components"]["securitySchemes"]
    assert {"401", "403", "429", "502"} <= set(chat["responses"])
    assert set(spec["paths"]) >= {"/v1/models", "/v1/chat/completions", "/v1/embeddings",
                                  "/healthz", "/readyz"}
