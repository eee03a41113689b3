"""Real clients, unchanged, against the real proxy (uvicorn on loopback) and the real
embedded model: the openai SDK, LlamaIndex ``OpenAILike`` and ragas ``llm_factory``.

Every call must land in the gateway's ledger under the key the client sent.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from tests.fakes import priced
from tests.servers import live_server
from workbench.models import ledger
from workbench.models.gateway import Gateway
from workbench.models.server import create_app

pytestmark = pytest.mark.embedded

CHAT_MODEL = "smollm2-135m"
EMBED_MODEL = "minilm-l6-v2"
SAY_HI = [{"role": "user", "content": "Say hello."}]


class Proxy(BaseModel):
    gateway: Any
    base_url: str
    key: str
    key_id: str

    def calls(self, endpoint: str = "chat") -> list[dict[str, Any]]:
        return [r for r in ledger.entries(self.gateway.store, limit=1000)
                if r["key_id"] == self.key_id and r["endpoint"] == endpoint]


@pytest.fixture
def proxy(make_gateway: Any) -> Iterator[Proxy]:
    gw: Gateway = make_gateway(models=[priced("pricey", provider="embedded")])
    key_id, key = gw.policy.create_key(team="sdk", models=[CHAT_MODEL, EMBED_MODEL])
    with live_server(create_app(gw)) as url:
        yield Proxy(gateway=gw, base_url=f"{url}/v1", key=key, key_id=key_id)


# -- openai SDK ------------------------------------------------------------------------
def test_openai_sdk_chat(proxy: Proxy) -> None:
    import openai

    client = openai.OpenAI(base_url=proxy.base_url, api_key=proxy.key)
    raw = client.chat.completions.with_raw_response.create(
        model=CHAT_MODEL, messages=SAY_HI, max_tokens=8, temperature=0)
    resp = raw.parse()
    assert isinstance(resp.choices[0].message.content, str)
    assert resp.model == CHAT_MODEL and resp.usage and resp.usage.completion_tokens > 0
    [row] = proxy.calls()
    assert row["trace_id"] == raw.headers["x-workbench-trace-id"] and row["outcome"] == "ok"
    assert row["tokens_out"] == resp.usage.completion_tokens


def test_openai_sdk_streaming(proxy: Proxy) -> None:
    import openai

    client = openai.OpenAI(base_url=proxy.base_url, api_key=proxy.key)
    stream = client.chat.completions.create(
        model=CHAT_MODEL, messages=SAY_HI, max_tokens=8, stream=True,
        stream_options={"include_usage": True})
    pieces, usage = [], None
    for chunk in stream:
        pieces += [c.delta.content for c in chunk.choices if c.delta.content]
        usage = chunk.usage or usage
    assert "".join(pieces).strip()
    assert usage is not None and usage.completion_tokens > 0
    [row] = proxy.calls()
    assert row["outcome"] == "ok" and row["tokens_out"] == usage.completion_tokens


def test_openai_sdk_embeddings(proxy: Proxy) -> None:
    import openai

    client = openai.OpenAI(base_url=proxy.base_url, api_key=proxy.key)
    texts = ["The cat sat on the mat.", "Budgets are reserved before each call."]
    # The SDK asks for base64 by default and decodes it; both encodings must agree.
    packed = client.embeddings.create(model=EMBED_MODEL, input=texts)
    plain = client.embeddings.create(model=EMBED_MODEL, input=texts, encoding_format="float")
    assert [len(d.embedding) for d in packed.data] == [384, 384]
    for a, b in zip(packed.data, plain.data, strict=True):
        assert a.embedding == pytest.approx(b.embedding, abs=1e-6)
        assert math.sqrt(sum(x * x for x in a.embedding)) == pytest.approx(1.0, abs=1e-3)
    direct = proxy.gateway.embed(texts, model=EMBED_MODEL).vectors
    assert packed.data[1].embedding == pytest.approx(direct[1], abs=1e-6)
    assert [r["outcome"] for r in proxy.calls("embeddings")] == ["ok", "ok"]


def test_openai_sdk_raises_its_own_error_types(proxy: Proxy) -> None:
    import openai

    bad = openai.OpenAI(base_url=proxy.base_url, api_key="wb-unknown", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as auth:
        bad.chat.completions.create(model=CHAT_MODEL, messages=SAY_HI)
    assert auth.value.code == "invalid_api_key"

    client = openai.OpenAI(base_url=proxy.base_url, api_key=proxy.key)
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.chat.completions.create(model="gemma3-270m", messages=SAY_HI)
    assert denied.value.code == "model_not_allowed"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=SAY_HI)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=CHAT_MODEL, messages=[])

    _, broke = proxy.gateway.policy.create_key(team="sdk", budget_usd=0.000001)
    poor = openai.OpenAI(base_url=proxy.base_url, api_key=broke)  # default: 2 retries
    with pytest.raises(openai.RateLimitError) as quota:
        poor.chat.completions.create(model="pricey", messages=SAY_HI)
    assert quota.value.code == "insufficient_quota"
    denied_rows = proxy.gateway.usage(by=("model", "outcome"))
    assert [r["denied"] for r in denied_rows if r["model"] == "pricey"] == [1]  # not retried


# -- LlamaIndex ------------------------------------------------------------------------
def test_llamaindex_openai_like(proxy: Proxy) -> None:
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai_like import OpenAILike

    # Passed explicitly, no llama_index Settings: nothing falls back to api.openai.com.
    llm = OpenAILike(model=CHAT_MODEL, api_base=proxy.base_url, api_key=proxy.key,
                     is_chat_model=True, context_window=2048, max_tokens=8, temperature=0.0)
    reply = llm.chat([ChatMessage(role="user", content="Say hi.")])
    assert reply.message.content and reply.message.content.strip()
    streamed = "".join(r.delta or "" for r in llm.stream_chat(
        [ChatMessage(role="user", content="Say hi.")]))
    assert streamed.strip()
    completion = llm.complete("Say hi.")
    assert completion.text.strip()
    assert [r["outcome"] for r in proxy.calls()] == ["ok", "ok", "ok"]


# -- ragas -----------------------------------------------------------------------------
class CapitalCheck(BaseModel):
    capital: str
    is_correct: bool


def test_ragas_llm_factory_structured_output(proxy: Proxy) -> None:
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")  # before the first ragas import
    import instructor
    from openai import AsyncOpenAI
    from ragas.llms import llm_factory

    client = AsyncOpenAI(base_url=proxy.base_url, api_key=proxy.key)
    # ragas' default max_tokens (1024) is over the embedded model's cap of 256.
    llm = llm_factory(CHAT_MODEL, client=client, max_tokens=96)
    # llm_factory has no mode argument and patches OpenAI clients with Mode.JSON
    # (json_object, no schema): a 135M model then rambles until max_tokens. JSON_SCHEMA
    # sends response_format=json_schema, which the embedded runtime grammar-constrains.
    llm.client = instructor.from_openai(client, mode=instructor.Mode.JSON_SCHEMA)
    result = asyncio.run(llm.agenerate(
        "Is Paris the capital of France? Give the capital and whether the claim is correct.",
        CapitalCheck))
    assert isinstance(result, CapitalCheck) and result.capital
    rows = proxy.calls()
    assert rows and rows[0]["outcome"] == "ok"
