"""Gateway behaviour through the Provider seam (fakes and httpx.MockTransport)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.fakes import FakeProvider, priced
from workbench.config import Profile
from workbench.errors import (
    BadRequest,
    ContentBlocked,
    ModelNotFound,
    PermissionDenied,
    UpstreamError,
    UpstreamTimeout,
)
from workbench.models.providers import OpenAICompatibleProvider

FAKE = [{"name": "fake-model", "provider": "fake"}, {"name": "backup", "provider": "backup"}]


def test_chat_goes_through_and_is_recorded(make_gateway: Any) -> None:
    fake = FakeProvider(text="hello there")
    gw = make_gateway(providers={"fake": fake}, models=FAKE, chat_model="fake-model")
    res = gw.chat("hi")
    assert res.text == "hello there" and len(res.trace_id) == 32
    assert fake.calls[0]["messages"] == [{"role": "user", "content": "hi"}]
    assert fake.calls[0]["max_tokens"] == 256  # a limit is always sent upstream
    rows = gw.usage(by=("model", "outcome"))
    assert rows[0]["model"] == "fake-model" and rows[0]["ok"] == 1 and rows[0]["tokens_in"] == 10


def test_prompt_is_masked_before_it_leaves_and_output_is_masked(make_gateway: Any) -> None:
    fake = FakeProvider(text="sure, mail ops@corp.example")
    gw = make_gateway(providers={"fake": fake}, models=FAKE, chat_model="fake-model")
    res = gw.chat([{"role": "system", "content": "be brief"},
                   {"role": "user", "content": "card 4111 1111 1111 1111 of a@b.io"}])
    sent = fake.calls[0]["messages"][1]["content"]
    assert sent == "card [CARD] of [EMAIL]"
    assert res.redactions == {"CARD": 1, "EMAIL": 1}
    assert res.text == "sure, mail [EMAIL]"


def test_block_mode_refuses_and_never_calls_the_model(make_gateway: Any) -> None:
    fake = FakeProvider()
    gw = make_gateway(providers={"fake": fake}, models=FAKE, chat_model="fake-model",
                      guardrail_mode="block")
    with pytest.raises(ContentBlocked):
        gw.chat("my card is 4111 1111 1111 1111")
    assert fake.calls == []
    assert gw.usage(by=("outcome",))[0]["denied"] == 1


def test_key_guardrail_mode_overrides_default(make_gateway: Any) -> None:
    fake = FakeProvider()
    gw = make_gateway(providers={"fake": fake}, models=FAKE, chat_model="fake-model")
    _, secret = gw.policy.create_key(team="t", guardrail_mode="log-only")
    gw.as_key(secret).chat("mail x@y.org")
    assert fake.calls[0]["messages"][0]["content"] == "mail x@y.org"


def test_unknown_model_disallowed_model_and_bad_params(make_gateway: Any) -> None:
    gw = make_gateway(providers={"fake": FakeProvider()}, models=FAKE, chat_model="fake-model")
    with pytest.raises(ModelNotFound):
        gw.chat("hi", model="nope")
    with pytest.raises(BadRequest, match="embedding model"):
        gw.chat("hi", model="minilm-l6-v2")
    with pytest.raises(BadRequest, match="temperature"):
        gw.chat("hi", temperature=7)
    with pytest.raises(BadRequest, match="messages"):
        gw.chat([])
    _, secret = gw.policy.create_key(team="t", models=["backup"])
    with pytest.raises(PermissionDenied):
        gw.as_key(secret).chat("hi", model="fake-model")
    denied = {r["outcome"]: r["calls"] for r in gw.usage(by=("outcome",))}
    assert denied == {"denied": 5}


def test_fallback_to_next_model_when_primary_fails(make_gateway: Any) -> None:
    primary, backup = FakeProvider(fail=-1), FakeProvider(text="from backup")
    gw = make_gateway(providers={"fake": primary, "backup": backup}, models=FAKE,
                      chat_model="fake-model", fallbacks={"fake-model": ["backup"]})
    res = gw.chat("hi")
    assert res.text == "from backup" and res.model == "backup"
    assert res.fallback_from == "fake-model"
    assert len(primary.calls) == 1 and len(backup.calls) == 1


def test_fallback_skips_models_the_key_may_not_use(make_gateway: Any) -> None:
    primary, backup = FakeProvider(fail=-1), FakeProvider()
    gw = make_gateway(providers={"fake": primary, "backup": backup}, models=FAKE,
                      chat_model="fake-model", fallbacks={"fake-model": ["backup"]})
    _, secret = gw.policy.create_key(team="t", models=["fake-model"])
    with pytest.raises(UpstreamError):
        gw.as_key(secret).chat("hi")
    assert backup.calls == []


def test_cache_is_opt_in_per_key_and_counted(make_gateway: Any) -> None:
    fake = FakeProvider()
    gw = make_gateway(providers={"fake": fake}, models=[priced("fake-model")],
                      chat_model="fake-model")
    _, cached_key = gw.policy.create_key(team="t", cache=True)
    _, plain_key = gw.policy.create_key(team="t")
    a = gw.as_key(cached_key)
    first, second = a.chat("same question"), a.chat("same question")
    assert not first.cached and second.cached and second.text == first.text
    assert second.cost_usd == 0 and first.cost_usd > 0
    gw.as_key(plain_key).chat("same question")
    assert len(fake.calls) == 2
    outcomes = {r["outcome"]: r["calls"] for r in gw.usage(by=("outcome",))}
    assert outcomes == {"cached": 1, "ok": 2}


def test_stream_yields_chunks_and_records_usage(make_gateway: Any) -> None:
    fake = FakeProvider(text="a b c")
    gw = make_gateway(providers={"fake": fake}, models=FAKE, chat_model="fake-model")
    s = gw.stream("hi")
    assert "".join(s.text()) == "a b c "
    assert s.result is not None and s.result.usage["completion_tokens"] == 5
    assert gw.usage(by=("outcome",))[0]["ok"] == 1


def test_embed_through_gateway_is_governed(make_gateway: Any) -> None:
    fake = FakeProvider()
    gw = make_gateway(providers={"fake": fake},
                      models=[{"name": "fake-emb", "provider": "fake", "kind": "embedding"}])
    res = gw.embed(["mail a@b.io", "x"], model="fake-emb")
    assert len(res.vectors) == 2
    assert fake.calls[0]["input"][0] == "mail [EMAIL]"  # remote embeddings are masked too
    with pytest.raises(BadRequest):
        gw.embed([], model="fake-emb")
    with pytest.raises(BadRequest, match="cannot serve embeddings"):
        gw.embed("x", model="smollm2-135m")


# -- the OpenAI-compatible HTTP provider: retries, timeouts, bad upstream JSON ------------

def _completion(text: str = "ok") -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


def _http_gateway(make_gateway: Any, handler: Any, **kw: Any) -> Any:
    profile = Profile(base_url="http://upstream.test/v1", api_key_env="UP_KEY",
                      chat_model="m")
    prov = OpenAICompatibleProvider("up", profile, max_retries=kw.pop("max_retries", 2),
                                    backoff_s=0.0, transport=httpx.MockTransport(handler))
    kw.setdefault("models", [{"name": "m", "provider": "up"}])
    return make_gateway(providers={"up": prov}, chat_model="m", **kw)


def test_http_retries_429_and_5xx_then_succeeds(make_gateway: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UP_KEY", "sk-upstream-canary-0000000000000000")
    seen: list[httpx.Request] = []
    statuses = iter([429, 503])

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        status = next(statuses, 200)
        return httpx.Response(status, json=_completion() if status == 200
                              else {"error": {"message": "busy"}})

    gw = _http_gateway(make_gateway, handler)
    assert gw.chat("hi").text == "ok"
    assert len(seen) == 3
    assert seen[0].headers["authorization"] == "Bearer sk-upstream-canary-0000000000000000"
    assert json.loads(seen[0].content)["model"] == "m"


@pytest.mark.parametrize("fault, err, status", [
    ("500", UpstreamError, 502),
    ("timeout", UpstreamTimeout, 504),
    ("reset", UpstreamError, 502),
    ("badjson", UpstreamError, 502),
])
def test_http_failures_become_502_504_after_retries(make_gateway: Any, fault: str, err: type,
                                                    status: int) -> None:
    calls = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(1)
        if fault == "timeout":
            raise httpx.ReadTimeout("slow", request=req)
        if fault == "reset":
            raise httpx.ConnectError("reset", request=req)
        if fault == "badjson":
            return httpx.Response(200, content=b"<html>oops")
        return httpx.Response(500, json={"error": {"message": "boom"}})

    gw = _http_gateway(make_gateway, handler)
    with pytest.raises(err) as exc:
        gw.chat("hi")
    assert exc.value.status == status
    assert len(calls) == 3  # 1 try + 2 retries
    assert gw.usage(by=("outcome",))[0]["errors"] == 1


def test_http_client_errors_are_not_retried(make_gateway: Any) -> None:
    calls = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(400, json={"error": {"message": "bad field"}})

    gw = _http_gateway(make_gateway, handler)
    with pytest.raises(BadRequest, match="bad field"):
        gw.chat("hi")
    assert len(calls) == 1


def test_http_streaming_and_embeddings(make_gateway: Any) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        body = json.loads(req.content)
        if req.url.path.endswith("/embeddings"):
            return httpx.Response(200, json={"data": [{"embedding": [1.0], "index": 0}],
                                             "usage": {"prompt_tokens": 2}})
        assert body["stream"] is True
        chunks = [{"choices": [{"index": 0, "delta": {"content": w}}]} for w in ("he", "llo")]
        chunks.append({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
        sse = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return httpx.Response(200, content=sse.encode(),
                              headers={"content-type": "text/event-stream"})

    gw = _http_gateway(make_gateway, handler,
                       models=[{"name": "m", "provider": "up"},
                               {"name": "e", "provider": "up", "kind": "embedding"}])
    s = gw.stream("hi")
    assert "".join(s.text()) == "hello" and s.result and s.result.usage["completion_tokens"] == 2
    assert gw.embed("x", model="e").vectors == [[1.0]]


def test_tools_and_unknown_fields_pass_through_to_the_upstream(make_gateway: Any) -> None:
    bodies: list[dict[str, Any]] = []

    def handler(req: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(req.content))
        resp = _completion("")
        resp["choices"][0]["message"]["tool_calls"] = [
            {"id": "t1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]
        return httpx.Response(200, json=resp)

    gw = _http_gateway(make_gateway, handler)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    res = gw.chat("weather in Oslo?", tools=tools, tool_choice="auto", seed=7)
    assert bodies[0]["tools"] == tools and bodies[0]["tool_choice"] == "auto"
    assert bodies[0]["seed"] == 7
    assert res.response["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == \
        "get_weather"


def test_async_api(make_gateway: Any) -> None:
    import asyncio

    fake = FakeProvider(text="async ok")
    gw = make_gateway(providers={"fake": fake},
                      models=FAKE + [{"name": "fake-emb", "provider": "fake", "kind": "embedding"}],
                      chat_model="fake-model")

    async def main() -> tuple[str, ...]:
        results = await asyncio.gather(*(gw.achat(f"q{i}") for i in range(5)))
        emb = await gw.aembed("x", model="fake-emb")
        return (*[r.text for r in results], str(len(emb.vectors)))

    assert asyncio.run(main()) == ("async ok",) * 5 + ("1",)


def test_streamed_output_is_masked_even_when_pii_spans_chunks(make_gateway: Any) -> None:
    text = "Your card 4111 1111 1111 1111 and mail jane.doe@example.com are on file."
    gw = make_gateway(providers={"fake": FakeProvider(text=text)}, models=FAKE,
                      chat_model="fake-model")
    s = gw.stream("hi")
    chunks = list(s)
    streamed = "".join((c["choices"][0]["delta"].get("content") or "")
                       for c in chunks if c.get("choices"))
    assert "4111" not in streamed and "jane.doe" not in streamed
    assert "[CARD]" in streamed and "[EMAIL]" in streamed
    assert s.result is not None and s.result.text == streamed
    assert s.result.usage["completion_tokens"] == 5  # counts come from the provider
    off = make_gateway(providers={"fake": FakeProvider(text=text)}, models=FAKE,
                       chat_model="fake-model", output_guardrails=False)
    assert "4111" in "".join(off.stream("hi").text())
