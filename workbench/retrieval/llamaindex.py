"""LlamaIndex integration, for teams whose code already speaks LlamaIndex.

- :func:`configure` sets ``Settings.llm``, ``Settings.embed_model`` and
  ``Settings.tokenizer`` explicitly to Gateway-backed objects, so nothing in LlamaIndex
  falls back to OpenAI (its default) or downloads a tokenizer;
- :class:`GatewayLLM` / :class:`GatewayEmbedding`: LlamaIndex models whose every call
  goes through the governed Gateway (policy, guardrails, ledger, trace ids);
- :class:`WorkbenchNodeParser`: the workbench chunkers as a LlamaIndex node parser;
- :func:`retriever` / :func:`query_engine`: a workbench collection as a LlamaIndex
  retriever (vector, FTS or hybrid) and a ``RetrieverQueryEngine`` over it.

We keep our own LanceDB table rather than ``LanceDBVectorStore``: its "overwrite" mode
appends (STACK.md), and it does not know our incremental ingestion or schema checks.

LlamaIndex is an optional extra (``genai-workbench[rag]``); this module imports it at
import time, so import it only when you want it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# This module *is* the LlamaIndex adapter (its classes subclass LlamaIndex's), so it
# imports LlamaIndex at module level; nothing in workbench imports it implicitly.
from llama_index.core import Settings  # noqa: TID253
from llama_index.core.base.llms.types import (  # noqa: TID253
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.embeddings import BaseEmbedding  # noqa: TID253
from llama_index.core.llms import CustomLLM  # noqa: TID253
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback  # noqa: TID253
from llama_index.core.node_parser import NodeParser  # noqa: TID253
from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: TID253
from llama_index.core.retrievers import BaseRetriever  # noqa: TID253
from llama_index.core.schema import BaseNode, NodeWithScore, QueryBundle, TextNode  # noqa: TID253
from pydantic import ConfigDict, Field, PrivateAttr

from workbench.models.gateway import Gateway
from workbench.retrieval.chunking import ChunkingConfig, chunk_text
from workbench.retrieval.collections import DEFAULT_COLLECTION
from workbench.retrieval.search import Hit, Mode, Searcher


def _messages(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    role = {MessageRole.SYSTEM: "system", MessageRole.USER: "user",
            MessageRole.ASSISTANT: "assistant", MessageRole.DEVELOPER: "developer",
            MessageRole.TOOL: "tool"}
    return [{"role": role.get(m.role, "user"), "content": m.content or ""} for m in messages]


class GatewayLLM(CustomLLM):
    """A LlamaIndex LLM that calls ``Gateway.chat`` / ``Gateway.stream``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    model: str | None = Field(default=None, description="Chat model (Gateway default if None).")
    max_tokens: int = Field(default=128, gt=0)
    temperature: float = Field(default=0.0, ge=0)
    context_window: int = Field(default=2048, gt=0)
    _gw: Gateway = PrivateAttr()

    def __init__(self, gw: Gateway, **kw: Any):
        spec = gw.spec(kw.get("model"))
        kw.setdefault("context_window", spec.context_window)
        super().__init__(**kw)
        self._gw = gw

    @classmethod
    def class_name(cls) -> str:
        return "WorkbenchGatewayLLM"

    @property
    def metadata(self) -> LLMMetadata:
        name = self.model or self._gw.settings.default_chat_model
        return LLMMetadata(context_window=self.context_window, num_output=self.max_tokens,
                           is_chat_model=True, model_name=name)

    def _params(self, kw: dict[str, Any]) -> dict[str, Any]:
        return {"model": self.model, "max_tokens": kw.get("max_tokens", self.max_tokens),
                "temperature": kw.get("temperature", self.temperature)}

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        res = self._gw.chat(_messages(messages), **self._params(kwargs))
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=res.text),
                            raw=res.response, additional_kwargs={"trace_id": res.trace_id})

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any
                 ) -> CompletionResponse:
        res = self._gw.chat(prompt, **self._params(kwargs))
        return CompletionResponse(text=res.text, raw=res.response,
                                  additional_kwargs={"trace_id": res.trace_id})

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any
                        ) -> CompletionResponseGen:
        stream = self._gw.stream(prompt, **self._params(kwargs))

        def gen() -> CompletionResponseGen:
            text = ""
            for piece in stream.text():
                text += piece
                yield CompletionResponse(text=text, delta=piece)

        return gen()

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        stream = self._gw.stream(_messages(messages), **self._params(kwargs))

        def gen() -> ChatResponseGen:
            text = ""
            for piece in stream.text():
                text += piece
                yield ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT,
                                                       content=text), delta=piece)

        return gen()


class GatewayEmbedding(BaseEmbedding):
    """A LlamaIndex embedding model that calls ``Gateway.embed``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    _gw: Gateway = PrivateAttr()

    def __init__(self, gw: Gateway, model: str | None = None, embed_batch_size: int = 32):
        spec = gw.spec(model, kind="embedding")
        super().__init__(model_name=spec.name, embed_batch_size=embed_batch_size)
        self._gw = gw

    @classmethod
    def class_name(cls) -> str:
        return "WorkbenchGatewayEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._gw.embed(query, model=self.model_name).vectors[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return (await self._gw.aembed(query, model=self.model_name)).vectors[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_query_embedding(text)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._gw.embed(texts, model=self.model_name).vectors


class WorkbenchNodeParser(NodeParser):
    """The workbench chunkers (markdown / paragraph / fixed, in MiniLM tokens)."""

    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)

    @classmethod
    def class_name(cls) -> str:
        return "WorkbenchNodeParser"

    def _parse_nodes(self, nodes: Sequence[BaseNode], show_progress: bool = False,
                     **kwargs: Any) -> list[BaseNode]:
        out: list[BaseNode] = []
        for node in nodes:
            text = node.get_content()
            for i, ch in enumerate(chunk_text(text, self.chunking)):
                meta = {**node.metadata, "heading": ch.heading, "chunk_index": i,
                        "start": ch.start, "end": ch.end}
                out.append(TextNode(text=ch.text, metadata=meta,
                                    start_char_idx=ch.start, end_char_idx=ch.end))
        return out


def _node(hit: Hit) -> NodeWithScore:
    meta = {"source": hit.source, "title": hit.title, "heading": hit.heading,
            "doc_type": hit.doc_type, "chunk_index": hit.chunk_index,
            "similarity": hit.similarity}
    if hit.page is not None:
        meta["page"] = hit.page
    return NodeWithScore(node=TextNode(id_=hit.id, text=hit.text, metadata=meta),
                         score=hit.score)


class WorkbenchRetriever(BaseRetriever):
    """A workbench collection as a LlamaIndex retriever."""

    def __init__(self, gw: Gateway, collection: str = DEFAULT_COLLECTION, k: int = 5,
                 mode: Mode = "hybrid", filters: dict[str, Any] | None = None):
        super().__init__()
        self._searcher = Searcher(gw, collection)
        self._k, self._mode, self._filters = k, mode, filters

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self._searcher.search(query_bundle.query_str, k=self._k, mode=self._mode,
                                     filters=self._filters)
        return [_node(h) for h in hits]


def configure(gw: Gateway, *, chat_model: str | None = None,
              embed_model: str | None = None) -> None:
    """Point LlamaIndex's global ``Settings`` at the Gateway (never at OpenAI)."""
    from workbench.retrieval.chunking import _tokenizer

    Settings.llm = GatewayLLM(gw, model=chat_model)
    Settings.embed_model = GatewayEmbedding(gw, model=embed_model)
    tok = _tokenizer()
    Settings.tokenizer = lambda text: tok.encode(text, add_special_tokens=False).ids


def retriever(gw: Gateway, collection: str = DEFAULT_COLLECTION, *, k: int = 5,
              mode: Mode = "hybrid", filters: dict[str, Any] | None = None
              ) -> WorkbenchRetriever:
    return WorkbenchRetriever(gw, collection, k=k, mode=mode, filters=filters)


def query_engine(gw: Gateway, collection: str = DEFAULT_COLLECTION, *, k: int = 3,
                 mode: Mode = "hybrid", chat_model: str | None = None,
                 max_tokens: int = 128) -> RetrieverQueryEngine:
    """A LlamaIndex query engine over a collection, answering through the Gateway."""
    return RetrieverQueryEngine.from_args(
        retriever(gw, collection, k=k, mode=mode),
        llm=GatewayLLM(gw, model=chat_model, max_tokens=max_tokens))


__all__ = ["GatewayEmbedding", "GatewayLLM", "WorkbenchNodeParser", "WorkbenchRetriever",
           "configure", "query_engine", "retriever"]
