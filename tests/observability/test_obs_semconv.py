"""Telemetry that Phoenix/Langfuse/Grafana read natively: standard provider names, cost
split, users/sessions/metadata/tags, statuses, the first-token event, GenAI attributes
and histograms. The provider is a priced FakeProvider behind the Provider seam; spans go
through the real tracer into the real span store."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.fakes import FakeProvider, priced
from workbench.errors import UpstreamError
from workbench.models.gateway import Gateway
from workbench.observability import semconv as sc
from workbench.observability import tracing
from workbench.observability.genai_metrics import genai_metrics
from workbench.observability.traces import Span, get_trace
from workbench.service.metrics import ServiceMetrics

OPENAI = {"kind": "openai", "base_url": "https://api.openai.com/v1", "chat_model": "gpt-x"}


@pytest.fixture
def gw(make_gateway: Callable[..., Gateway]) -> Callable[..., Gateway]:
    def make(provider: FakeProvider | None = None, **settings: Any) -> Gateway:
        fake = provider or FakeProvider(text="Paris is the capital.", tokens_in=10, tokens_out=20)
        return make_gateway(providers={"fake": fake}, profiles={"fake": OPENAI},
                            models=[priced("gpt-x", provider="fake", in_mtok=1000, out_mtok=2000)],
                            **settings)

    return make


def _spans(gateway: Gateway, trace_id: str) -> list[Span]:
    tracing.tracer_for(gateway.store).flush()
    return [s for _, s in get_trace(gateway.store, trace_id).walk()]


@pytest.mark.parametrize(("kind", "url", "override", "expected"), [
    ("openai", "https://api.openai.com/v1", None, ("openai", "openai", "openai")),
    ("openai", "https://myres.openai.azure.com/openai/v1", None, ("azure", "openai", "azure.ai.openai")),
    ("openai", "https://api.anthropic.com/v1", None, ("anthropic", "anthropic", "anthropic")),
    ("openai", "http://127.0.0.1:11434/v1", None, (None, None, "openai_compatible")),
    ("openai", "http://litellm.internal/v1", "openai", ("openai", "openai", "openai")),
    ("embedded", None, None, (None, None, "llama_cpp")),
])
def test_provider_names_are_standard_values(kind: str, url: str | None, override: str | None,
                                            expected: tuple[str | None, str | None, str]) -> None:
    assert sc.provider_names(kind, url, override) == expected


def test_llm_span_carries_provider_cost_user_session_and_genai(gw: Callable[..., Gateway]) -> None:
    gateway = gw()
    with tracing.session("conv-42"), tracing.span("ask", gateway=gateway):
        res = gateway.chat("capital of France?", model="gpt-x", max_tokens=30, temperature=0.2)
    spans = {s.kind: s for s in _spans(gateway, res.trace_id)}
    llm, chain = spans["LLM"].attributes, spans["CHAIN"]
    assert (llm["llm.provider"], llm["llm.system"], llm["gen_ai.provider.name"]) == ("openai",) * 3
    assert llm["llm.cost.prompt"] == pytest.approx(10 * 1000 / 1e6)
    assert llm["llm.cost.completion"] == pytest.approx(20 * 2000 / 1e6)
    assert llm["llm.cost.total"] == pytest.approx(llm["llm.cost.prompt"] + llm["llm.cost.completion"])
    assert llm["user.id"] == "local" and llm["session.id"] == "conv-42"
    # OpenInference's metadata is a JSON string; tags a list of strings.
    assert json.loads(llm["metadata"])["team"] == "local" and "team:local" in llm["tag.tags"]
    assert llm["gen_ai.operation.name"] == "chat" and llm["gen_ai.conversation.id"] == "conv-42"
    assert (llm["gen_ai.usage.input_tokens"], llm["gen_ai.usage.output_tokens"]) == (10, 20)
    assert llm["gen_ai.request.model"] == "gpt-x"
    assert llm["gen_ai.response.model"] == "gpt-x" and llm["gen_ai.request.max_tokens"] == 30
    assert llm["gen_ai.response.finish_reasons"] == ["stop"]
    assert chain.status == "OK" and spans["LLM"].status == "OK"  # never "Unset"


def test_a_key_is_the_user(gw: Callable[..., Gateway]) -> None:
    gateway = gw()
    _, secret = gateway.policy.create_key(team="blue")
    res = gateway.as_key(secret).chat("hi", model="gpt-x")
    [llm] = [s for s in _spans(gateway, res.trace_id) if s.kind == "LLM"]
    assert llm.attributes["user.id"].startswith("key_")
    assert json.loads(llm.attributes["metadata"])["team"] == "blue"


def test_stream_records_the_first_token_event(gw: Callable[..., Gateway]) -> None:
    gateway = gw()
    stream = gateway.stream("capital of France?", model="gpt-x")
    text = "".join(stream.text())
    [llm] = [s for s in _spans(gateway, stream.trace_id) if s.kind == "LLM"]
    events = [e["name"] for e in llm.events]
    assert text and events.count(sc.FIRST_TOKEN_EVENT) == 1
    assert llm.attributes["workbench.ttft_ms"] is not None


def test_failures_carry_error_type_and_chain_status(gw: Callable[..., Gateway]) -> None:
    gateway = gw(FakeProvider(fail=-1, error=UpstreamError))
    with pytest.raises(UpstreamError), tracing.span("ask", gateway=gateway) as root:
        gateway.chat("hi", model="gpt-x")
    spans = {s.kind: s for s in _spans(gateway, root.trace_id)}
    assert spans["LLM"].status == "ERROR" and spans["CHAIN"].status == "ERROR"
    assert spans["LLM"].attributes["error.type"] == "upstream_error"


def test_genai_attributes_can_be_turned_off(gw: Callable[..., Gateway]) -> None:
    gateway = gw(genai_semconv=False)
    res = gateway.chat("hi", model="gpt-x")
    [llm] = [s for s in _spans(gateway, res.trace_id) if s.kind == "LLM"]
    assert not [k for k in llm.attributes if k.startswith("gen_ai.")]
    assert llm.attributes["llm.provider"] == "openai"  # OpenInference stays


def test_histograms_count_calls_and_tokens_on_metrics(gw: Callable[..., Gateway]) -> None:
    gateway = gw()
    metrics = genai_metrics()
    before = metrics.duration.count("chat", "gpt-x")
    gateway.chat("one", model="gpt-x")
    gateway.chat("two", model="gpt-x")
    assert metrics.duration.count("chat", "gpt-x") == before + 2
    text = ServiceMetrics().render()
    assert '# TYPE gen_ai_client_token_usage histogram' in text
    assert 'gen_ai_client_token_usage_bucket{gen_ai_operation_name="chat",gen_ai_request_model="gpt-x",' \
           'gen_ai_token_type="input",le="+Inf"}' in text
    assert 'gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name="chat",' \
           'gen_ai_request_model="gpt-x"}' in text


def test_grafana_dashboard_reads_only_metrics_the_service_exposes(gw: Callable[..., Gateway]) -> None:
    import re
    from pathlib import Path

    gw().chat("one", model="gpt-x")  # the GenAI histograms have a series
    exposed = set()
    for line in ServiceMetrics().render().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            exposed |= {name} | ({f"{name}_{s}" for s in ("bucket", "sum", "count")}
                                 if kind == "histogram" else set())
    dashboard = json.loads((Path(__file__).parents[2] / "docs" / "assets" /
                            "grafana-workbench.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b((?:workbench|gen_ai_client)_[a-z_]+)", e)}
    assert used and used <= exposed, used - exposed


def test_upstream_requests_carry_the_llm_spans_traceparent(make_gateway: Callable[..., Gateway]) -> None:
    import httpx

    from workbench.config import Profile
    from workbench.models.providers import OpenAICompatibleProvider

    seen: list[str] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("traceparent", ""))
        if json.loads(request.content).get("stream"):
            body = ('data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
                    'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
                    '"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\ndata: [DONE]\n\n')
            return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json={"id": "x", "model": "gpt-x", "choices": [{
            "index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1}})

    prov = OpenAICompatibleProvider("fake", Profile(**OPENAI), transport=httpx.MockTransport(upstream))
    gateway = make_gateway(providers={"fake": prov}, profiles={"fake": OPENAI},
                           models=[priced("gpt-x", provider="fake")])
    res = gateway.chat("hi", model="gpt-x")
    stream = gateway.stream("hi", model="gpt-x")
    assert "".join(stream.text()) == "hi"
    for trace_id, header in ((res.trace_id, seen[0]), (stream.trace_id, seen[1])):
        [llm] = [s for s in _spans(gateway, trace_id) if s.kind == "LLM"]
        version, tid, parent, flags = header.split("-")
        assert (version, tid, parent) == ("00", trace_id, llm.span_id)
        assert int(flags, 16) & 1  # sampled


def test_cost_split_adds_up_to_a_capped_charge(gw: Callable[..., Gateway]) -> None:
    """An upstream that reports more prompt tokens than the request can hold is charged
    the reservation at most; the span's split still adds up to what was charged."""
    gateway = gw(FakeProvider(text="ok", tokens_in=100_000, tokens_out=5))
    res = gateway.chat("hi", model="gpt-x")
    [llm] = [s for s in _spans(gateway, res.trace_id) if s.kind == "LLM"]
    a = llm.attributes
    assert a["llm.cost.total"] == pytest.approx(res.cost_usd) and res.cost_usd < 100_000 * 1000 / 1e6
    assert a["llm.cost.prompt"] + a["llm.cost.completion"] == pytest.approx(a["llm.cost.total"])
