"""RAG as a service on LanceDB: collections, incremental ingestion, search, grounded answers.

    >>> import workbench
    >>> from workbench import retrieval
    >>> gw = workbench.connect()
    >>> retrieval.ingest(gw, ["docs/"])                      # collection "docs"
    >>> retrieval.search(gw, "how do budgets work?", k=3)    # hybrid (vector + BM25, RRF)
    >>> retrieval.ask(gw, "How do I create a key?")          # answer, sources, trace_id

Every embedding and chat call goes through the Gateway, so governance, the ledger and
trace ids apply. LanceDB, pyarrow and LlamaIndex load on first use, inside functions.

The functions are bound here eagerly, not lazily: ``ingest`` and ``search`` are also
submodule names, and a lazy binding would be shadowed by the submodule the first time
anything imported it.
"""

from __future__ import annotations

from workbench.retrieval.chunking import ChunkingConfig, chunk_text
from workbench.retrieval.collections import (
    ChunkingMismatch,
    CollectionMeta,
    CollectionNotFound,
    Collections,
    EmbeddingMismatch,
)
from workbench.retrieval.ingest import IngestReport, ingest
from workbench.retrieval.rag import MIN_SIMILARITY, Answer, Source, ask, build_prompt
from workbench.retrieval.search import GatewayReranker, Hit, Reranker, Searcher, search
from workbench.retrieval.tour import tour_step

__all__ = [
    "MIN_SIMILARITY", "build_prompt",
    "Answer", "ChunkingConfig", "ChunkingMismatch", "CollectionMeta", "CollectionNotFound",
    "Collections", "EmbeddingMismatch", "GatewayReranker", "Hit", "IngestReport", "Reranker",
    "Searcher", "Source", "ask", "chunk_text", "ingest", "search", "tour_step",
]
