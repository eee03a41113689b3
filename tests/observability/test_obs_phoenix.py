"""What a Phoenix user sees, checked against a real Arize Phoenix server on loopback.

Phoenix lives in its own virtualenv (CI installs it into ``.venv-phoenix``; locally set
``WORKBENCH_PHOENIX_BIN``). Without it these tests skip, unless
``WORKBENCH_REQUIRE_PHOENIX=1`` (CI) makes a missing Phoenix a failure. Everything is read
back through Phoenix's own REST API: what Phoenix stored, not what we meant to send.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes import FakeProvider, priced
from tests.servers import stop_process
from workbench.models.gateway import Gateway
from workbench.observability import tracing

REPO = Path(__file__).resolve().parents[2]
OPENAI = {"kind": "openai", "base_url": "https://api.openai.com/v1", "chat_model": "gpt-4o-mini"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _phoenix_bin() -> Path | None:
    for cand in (os.environ.get("WORKBENCH_PHOENIX_BIN"), REPO / ".venv-phoenix" / "bin" / "phoenix"):
        if cand and Path(cand).exists():
            return Path(cand)
    return None


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = _phoenix_bin()
    if exe is None:
        if os.environ.get("WORKBENCH_REQUIRE_PHOENIX") == "1":
            pytest.fail("WORKBENCH_REQUIRE_PHOENIX=1 but no Phoenix: set WORKBENCH_PHOENIX_BIN")
        pytest.skip("no Arize Phoenix (CI installs it in .venv-phoenix)")
    port, grpc = _free_port(), _free_port()
    work = tmp_path_factory.mktemp("phoenix")
    env = {**os.environ, "PHOENIX_HOST": "127.0.0.1", "PHOENIX_PORT": str(port),
           "PHOENIX_GRPC_PORT": str(grpc),  # its gRPC port binds every interface: pick ours
           "PHOENIX_WORKING_DIR": str(work), "PHOENIX_TELEMETRY_ENABLED": "false"}
    log = (work / "phoenix.log").open("wb")
    proc = subprocess.Popen([str(exe), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # first start runs its migrations; slow on a busy box
    try:
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("Phoenix did not start: "
                            + (work / "phoenix.log").read_text(errors="replace")[-2000:])
            time.sleep(1)
        yield url
    finally:
        stop_process(proc)
        log.close()


def _spans(url: str, project: str, want: Callable[[list[dict[str, Any]]], bool],
           timeout_s: float = 60) -> list[dict[str, Any]]:
    """Phoenix ingests asynchronously: poll until ``want`` holds."""
    deadline = time.monotonic() + timeout_s
    got: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        resp = httpx.get(f"{url}/v1/projects/{project}/spans", params={"limit": 500}, timeout=10)
        if resp.status_code == 200:
            got = resp.json()["data"]
            if want(got):
                return got
        time.sleep(1)
    raise AssertionError(f"Phoenix never showed the expected spans; it has {len(got)}: "
                         f"{sorted((s['span_kind'], s['name']) for s in got)}")


@pytest.mark.slow
def test_phoenix_shows_the_workbench_as_a_user_expects(
        phoenix: str, make_gateway: Callable[..., Gateway], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.propagate import inject
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from workbench.models.server import create_app
    from workbench.observability import feedback
    from workbench.observability.feedback_export import FeedbackExporter
    from workbench.retrieval import ask, ingest

    project = f"wb-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", f"openinference.project.name={project}")
    gw = make_gateway(providers={"fake": FakeProvider(text="Keys are made with keys create [1].",
                                                      tokens_in=120, tokens_out=9)},
                      profiles={"fake": OPENAI}, models=[priced("gpt-4o-mini", provider="fake")],
                      otlp_endpoint=phoenix)
    _, secret = gw.policy.create_key(team="blue")

    # A client application with its own OpenTelemetry, calling the proxy with traceparent.
    client_provider = TracerProvider(resource=Resource.create(
        {"service.name": "client-app", "openinference.project.name": project}))
    client_provider.add_span_processor(SimpleSpanProcessor(
        OTLPSpanExporter(endpoint=f"{phoenix}/v1/traces")))
    http = TestClient(create_app(gw))
    with client_provider.get_tracer("client").start_as_current_span("client.request") as client:
        headers = {"Authorization": f"Bearer {secret}"}
        inject(headers)  # W3C traceparent of the client span
        resp = http.post("/v1/chat/completions", headers=headers,
                         json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200, resp.text
    client_ids = (f"{client.get_span_context().trace_id:032x}",
                  f"{client.get_span_context().span_id:016x}")
    client_provider.shutdown()

    # In-process: a conversation, a stream, embeddings, ingest and a RAG answer.
    with tracing.session("conv-7"):
        chat = gw.chat("capital of France?", model="gpt-4o-mini")
    stream = gw.stream("capital of France?", model="gpt-4o-mini")
    assert "".join(stream.text())
    gw.embed(["one text", "another"])
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "keys.md").write_text("# Keys\n\nCreate a key with `workbench keys create --team T`.\n")
    ingest(gw, [docs], collection="docs", progress=False)
    answer = ask(gw, "How do I create a key?", collection="docs", model="gpt-4o-mini",
                 min_similarity=-1.0)
    tracing.tracer_for(gw.store).flush(30)

    def complete(spans: list[dict[str, Any]]) -> bool:
        kinds = {s["span_kind"] for s in spans}
        traces = {s["context"]["trace_id"] for s in spans}
        return ({"LLM", "EMBEDDING", "RETRIEVER", "CHAIN"} <= kinds
                and {chat.trace_id, stream.trace_id, answer.trace_id, client_ids[0]} <= traces)

    spans = _spans(phoenix, project, complete)
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        by_trace.setdefault(s["context"]["trace_id"], []).append(s)

    # 1. The proxy's span nests under the client's span: one tree, not two roots.
    proxied = [s for s in by_trace[client_ids[0]] if s["span_kind"] == "LLM"]
    assert proxied and proxied[0]["parent_id"] == client_ids[1]
    assert proxied[0]["attributes"]["user.id"].startswith("key_")
    # 2. Kinds, statuses (never UNSET), tokens, cost, provider Phoenix can price.
    ours = [s for s in spans if s["context"]["span_id"] != client_ids[1]]  # not the client's
    assert all(s["status_code"] == "OK" for s in ours), [
        (s["name"], s["status_code"]) for s in ours if s["status_code"] != "OK"]
    [llm] = [s for s in by_trace[chat.trace_id] if s["span_kind"] == "LLM"]
    attrs = llm["attributes"]
    assert (attrs["llm.token_count.prompt"], attrs["llm.token_count.completion"]) == (120, 9)
    assert attrs["llm.cost.total"] > 0 and attrs["llm.provider"] == "openai"
    assert attrs["session.id"] == "conv-7" and attrs["user.id"] == "local"
    # 3. The stream's first-token event.
    [streamed] = [s for s in by_trace[stream.trace_id] if s["span_kind"] == "LLM"]
    assert [e["name"] for e in streamed["events"]] == ["First Token Stream Event"]
    # 4. ask: rag.ask (CHAIN) > rag.retrieve (RETRIEVER, documents) + EMBEDDING + LLM.
    tree = by_trace[answer.trace_id]
    root = [s for s in tree if s["parent_id"] is None]
    assert [r["name"] for r in root] == ["rag.ask"]
    retriever = [s for s in tree if s["span_kind"] == "RETRIEVER"]
    assert retriever and any(k.startswith("retrieval.documents.") for k in retriever[0]["attributes"])
    # 5. ingest is one tree: every EMBEDDING span of it under the `ingest` root.
    ingest_roots = [s for s in spans if s["name"] == "ingest"]
    assert len(ingest_roots) == 1
    ingest_tree = by_trace[ingest_roots[0]["context"]["trace_id"]]
    assert all(s["parent_id"] == ingest_roots[0]["context"]["span_id"]
               for s in ingest_tree if s["span_kind"] == "EMBEDDING")

    # 6. Feedback arrives as trace annotations, and re-sending updates instead of adding.
    feedback.record(gw.store, trace_id=chat.trace_id, kind="thumbs", value=True,
                    comment="right answer")
    rows = feedback.list_feedback(gw.store, trace_id=chat.trace_id)
    for _ in range(2):
        report = FeedbackExporter("phoenix", phoenix).export(rows)
        assert (report.sent, report.failed) == (1, 0), report.errors
    notes = httpx.get(f"{phoenix}/v1/projects/{project}/trace_annotations",
                      params={"trace_ids": chat.trace_id}, timeout=10).json()["data"]
    assert len(notes) == 1
    note = notes[0]
    assert note["name"] == "thumbs" and note["annotator_kind"] == "HUMAN"
    assert note["result"]["label"] == "up" and note["result"]["score"] == 1.0
