"""Tracing through the Gateway: one trace id, nesting, redaction, errors, streams, and no
span lost under 20 concurrent writers. The provider is a test double where the test is
about the span plumbing; the embedded model runs in the integration test at the end."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.fakes import FakeProvider
from workbench.errors import BadRequest, UpstreamError
from workbench.models.gateway import Gateway
from workbench.observability import tracing
from workbench.observability.schema import spans
from workbench.observability.traces import get_trace, list_traces
from workbench.store import ledger

FAKE_MODEL = {"name": "fake-chat", "provider": "fake"}
FAKE_EMBED = {"name": "fake-embed", "provider": "fake", "kind": "embedding"}


@pytest.fixture
def fake_gw(make_gateway: Callable[..., Gateway]) -> Callable[..., Gateway]:
    def make(provider: FakeProvider | None = None, **overrides: Any) -> Gateway:
        return make_gateway(providers={"fake": provider or FakeProvider(text="the answer")},
                            models=[FAKE_MODEL, FAKE_EMBED], chat_model="fake-chat",
                            embed_model="fake-embed", **overrides)
    return make


def all_span_rows(gw: Gateway) -> list[dict[str, Any]]:
    tracing.tracer_for(gw.store).flush()
    with gw.store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(spans).order_by(spans.c.start_ns))]


def test_rag_style_chain_nests_gateway_spans_in_one_trace(fake_gw: Callable[..., Gateway]) -> None:
    gw = fake_gw()
    with tracing.span("ask", kind="CHAIN", input="what is x?", gateway=gw) as root:
        with tracing.span("retrieve", kind="RETRIEVER", input="what is x?") as ret:
            ret.set_documents([{"id": "doc-1", "score": 0.9, "content": "x is y"},
                               {"id": "doc-2", "score": 0.4}])
        emb = gw.embed("what is x?")
        ans = gw.chat("Context: x is y. What is x?")
        root.set_output(ans.text)
    assert root.trace_id == ret.trace_id == emb.trace_id == ans.trace_id
    trace = get_trace(gw.store, ans.trace_id)
    tree = [(depth, s.name, s.kind) for depth, s in trace.walk()]
    assert tree == [(0, "ask", "CHAIN"), (1, "retrieve", "RETRIEVER"),
                    (1, "embed fake-embed", "EMBEDDING"), (1, "chat fake-chat", "LLM")]
    retriever = trace.spans[1]
    assert retriever.documents() == [{"id": "doc-1", "score": 0.9, "content": "x is y"},
                                     {"id": "doc-2", "score": 0.4}]
    llm = trace.llm_spans()[0]
    assert llm.model == "fake-chat" and llm.tokens_in == 10 and llm.tokens_out == 5
    assert llm.attributes["llm.output_messages.0.message.content"] == "the answer"
    assert llm.attributes["llm.input_messages.0.message.role"] == "user"
    assert trace.answer() == "the answer" and trace.question() == "what is x?"
    # The ledger rows carry the same trace id.
    with gw.store.read() as conn:
        ids = {r[0] for r in conn.execute(select(ledger.c.trace_id))}
    assert ids == {ans.trace_id}


def test_explicit_trace_id_is_the_otel_trace_id(fake_gw: Callable[..., Gateway]) -> None:
    gw = fake_gw()
    tid = "0af7651916cd43dd8448eb211c80319c"
    res = gw.chat("hi", trace_id=tid)
    assert res.trace_id == tid
    assert [s.name for s in get_trace(gw.store, tid).spans] == ["chat fake-chat"]
    # UUID form is accepted and normalised; garbage is a clear 400.
    res2 = gw.chat("hi", trace_id="0AF76519-16CD-43DD-8448-EB211C80319D")
    assert res2.trace_id == "0af7651916cd43dd8448eb211c80319d"
    with pytest.raises(BadRequest, match="W3C trace id"):
        gw.chat("hi", trace_id="not-a-trace")


def test_trace_id_from_another_thread_nests_under_the_open_root(
        fake_gw: Callable[..., Gateway]) -> None:
    gw = fake_gw()
    with tracing.span("request", gateway=gw) as root:
        # A worker thread does not share the context; the trace id alone links it.
        out: list[str] = []
        t = threading.Thread(target=lambda: out.append(gw.chat("hi", trace_id=root.trace_id)
                                                       .trace_id))
        t.start()
        t.join()
    trace = get_trace(gw.store, root.trace_id)
    assert out == [root.trace_id]
    assert [(d, s.name) for d, s in trace.walk()] == [(0, "request"), (1, "chat fake-chat")]


def test_errors_mark_the_span_and_propagate(fake_gw: Callable[..., Gateway]) -> None:
    gw = fake_gw(FakeProvider(fail=-1))
    with pytest.raises(UpstreamError):
        gw.chat("hi", trace_id="1" * 32)
    span = get_trace(gw.store, "1" * 32).spans[0]
    assert span.status == "ERROR"
    assert span.attributes["workbench.error_code"] == "upstream_error"
    assert any(e["name"] == "exception" for e in span.events)
    with pytest.raises(UpstreamError), tracing.span("outer", gateway=gw) as outer:
        gw.chat("hi")
    assert [s.status for s in get_trace(gw.store, outer.trace_id).spans] == ["ERROR", "ERROR"]


@pytest.mark.parametrize("mode", ["mask", "log-only", "off"])
def test_traces_never_hold_pii(fake_gw: Callable[..., Gateway], mode: str) -> None:
    secret = "jane.doe@example.com"
    gw = fake_gw(FakeProvider(text=f"I will write to {secret}"), guardrail_mode=mode)
    gw.chat(f"Email {secret} about card 4111 1111 1111 1111")
    gw.embed(f"profile of {secret}")
    s = gw.stream(f"Stream to {secret}")
    list(s)
    rows = all_span_rows(gw)
    assert len(rows) == 3
    blob = json.dumps(rows, default=str)
    assert secret not in blob and "4111 1111" not in blob
    assert "[EMAIL]" in blob


def test_stream_span_records_ttft_and_disconnects(fake_gw: Callable[..., Gateway]) -> None:
    gw = fake_gw(FakeProvider(text="one two three four"))
    s = gw.stream("count", trace_id="2" * 32)
    assert "".join(s.text()).strip() == "one two three four"
    span = get_trace(gw.store, "2" * 32).spans[0]
    assert span.kind == "LLM" and span.status == "OK"
    assert span.attributes["workbench.ttft_ms"] >= 0
    assert span.output == "one two three four "  # the fake streams word + space
    # A client that stops reading: the span ends, marked as a disconnect.
    s2 = gw.stream("count", trace_id="3" * 32)
    next(iter(s2))
    s2.close()
    span2 = get_trace(gw.store, "3" * 32).spans[0]
    assert span2.status == "ERROR" and span2.attributes["workbench.error_code"] == \
        "client_disconnected"


def test_tracing_off_records_nothing_but_ids_still_flow(fake_gw: Callable[..., Gateway]) -> None:
    gw = fake_gw(tracing=False)
    with tracing.span("ask", gateway=gw) as root:
        res = gw.chat("hi")
    assert res.trace_id == root.trace_id
    assert all_span_rows(gw) == []


def test_unknown_span_kind_is_refused(fake_gw: Callable[..., Gateway]) -> None:
    with pytest.raises(BadRequest, match="unknown span kind"), \
            tracing.span("x", kind="DATABASE", gateway=fake_gw()):
        pass


@pytest.mark.parametrize("max_queue", [4096, 4])
def test_no_span_lost_under_20_concurrent_writers(make_gateway: Callable[..., Gateway],
                                                  max_queue: int) -> None:
    """20 threads x 30 nested spans; a tiny queue forces the caller-writes path."""
    gw = make_gateway()
    tracer = tracing.Tracer(gw.store, max_queue=max_queue)
    barrier = threading.Barrier(20)
    acked: list[str] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        barrier.wait()
        for i in range(10):
            with tracer.span(f"w{n}-{i}") as root, tracer.span("child", kind="RETRIEVER"), \
                    tracer.span("leaf", kind="TOOL"):
                pass
            with lock:
                acked.append(root.trace_id)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert tracer.flush(30)
    stats = tracer.stats()["store"]
    with gw.store.read() as conn:
        stored = conn.execute(select(func.count()).select_from(spans)).scalar_one()
        traces = conn.execute(select(func.count(func.distinct(spans.c.trace_id)))).scalar_one()
    assert stored == 600 and traces == len(acked) == 200
    assert stats["failed"] == 0 and stats["dropped"] == 0
    assert stats["exported"] == 600  # "inline" counts those the callers wrote themselves
    if max_queue == 4:
        assert stats["inline"] > 0
    assert len(list_traces(gw.store, limit=500)) == 200


def test_concurrent_gateway_calls_each_get_their_span(fake_gw: Callable[..., Gateway]) -> None:
    gw = fake_gw()
    results: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        r = gw.chat("hi")
        with lock:
            results.append(r.trace_id)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = all_span_rows(gw)
    assert sorted(r["trace_id"] for r in rows) == sorted(results)
    assert len(set(results)) == 20


@pytest.mark.embedded
def test_embedded_model_call_is_traced(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway()
    with tracing.span("ask", input="capital?", gateway=gw) as root:
        res = gw.chat("What is the capital of France? One word.", max_tokens=8, temperature=0)
    trace = get_trace(gw.store, root.trace_id)
    llm = trace.llm_spans()[0]
    assert res.trace_id == root.trace_id
    assert llm.model == "smollm2-135m" and llm.attributes["workbench.profile"] == "embedded"
    # No OpenInference provider value fits a local llama.cpp model: none is invented.
    assert "llm.provider" not in llm.attributes and "llm.system" not in llm.attributes
    assert llm.attributes["gen_ai.provider.name"] == "llama_cpp"
    assert llm.tokens_in and llm.tokens_out and llm.tokens_out <= 8
    assert llm.output == res.text
    assert 0 < llm.duration_ms <= trace.duration_ms
