"""LlamaIndex integration: explicit Settings (never OpenAI), node parser, retriever and
query engine over a workbench collection, every model call through the Gateway."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench.models.gateway import Gateway
from workbench.retrieval import ChunkingConfig, ingest

li = pytest.importorskip("llama_index.core")
from llama_index.core import Document, Settings  # noqa: E402

from workbench.retrieval import llamaindex as wli  # noqa: E402

pytestmark = pytest.mark.embedded


@pytest.fixture
def restore_settings() -> Iterator[None]:
    saved = (Settings._llm, Settings._embed_model, Settings._tokenizer)
    yield
    Settings._llm, Settings._embed_model, Settings._tokenizer = saved


class EchoProvider:
    def __init__(self) -> None:
        self.prompts: list[str] = []

    def chat(self, body: dict[str, Any], spec: object) -> dict[str, Any]:
        self.prompts.append("\n".join(str(m["content"]) for m in body["messages"]))
        return {"choices": [{"index": 0, "message": {"role": "assistant",
                                                      "content": "Every thirty seconds."}}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 4}}

    def ping(self) -> None:
        return None


def test_configure_sets_gateway_models_not_openai(gw: Gateway,
                                                  restore_settings: None) -> None:
    wli.configure(gw)
    assert isinstance(Settings.llm, wli.GatewayLLM)
    assert isinstance(Settings.embed_model, wli.GatewayEmbedding)
    assert Settings.embed_model.model_name == "minilm-l6-v2"
    assert Settings.llm.metadata.context_window == 2048  # smollm2's, from the model spec
    vecs = Settings.embed_model.get_text_embedding_batch(["a lighthouse", "a beehive"])
    assert len(vecs) == 2 and len(vecs[0]) == 384
    assert Settings.tokenizer("Hello world") == [7592, 2088]  # MiniLM word pieces


def test_node_parser_uses_workbench_chunking() -> None:
    parser = wli.WorkbenchNodeParser(chunking=ChunkingConfig(max_tokens=32))
    doc = Document(text="# Guide\n\n## Install\n\nRun the installer.\n\n## Use\n\nCall it.",
                   metadata={"source": "guide.md"})
    nodes = parser.get_nodes_from_documents([doc])
    assert [n.metadata["heading"] for n in nodes] == ["Guide > Install", "Guide > Use"]
    assert all(n.metadata["source"] == "guide.md" for n in nodes)


def test_retriever_and_query_engine_over_a_collection(
        make_gateway: Callable[..., Gateway], corpus: Path) -> None:
    echo = EchoProvider()
    gw = make_gateway(providers={"echo": echo}, models=[{"name": "echo", "provider": "echo"}])
    ingest(gw, [corpus], progress=False)
    nodes = wli.retriever(gw, k=2).retrieve("when does the foghorn sound")
    assert len(nodes) == 2 and nodes[0].node.metadata["source"] == str(corpus / "guide.md")
    assert nodes[0].score is not None and nodes[0].score > 0

    engine = wli.query_engine(gw, k=2, chat_model="echo")
    resp = engine.query("When does the foghorn sound?")
    assert str(resp) == "Every thirty seconds."
    assert resp.source_nodes[0].node.metadata["source"] == str(corpus / "guide.md")
    assert "foghorn" in echo.prompts[-1]  # the retrieved context reached the model
    assert {r["model"] for r in gw.usage(by=("model",))} == {"echo", "minilm-l6-v2"}
