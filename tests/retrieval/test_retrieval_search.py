"""Search modes, scores, filters, the reranker seam and index maintenance."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from workbench.errors import BadRequest
from workbench.models.gateway import Gateway
from workbench.retrieval import Collections, GatewayReranker, Hit, Searcher, ingest, search
from workbench.retrieval.collections import CollectionMeta, row_schema
from workbench.retrieval.ingest import maintain_indexes
from workbench.retrieval.search import build_where, rrf

pytestmark = pytest.mark.embedded


@pytest.fixture
def docs(gw: Gateway, corpus: Path) -> Path:
    ingest(gw, [corpus], progress=False)
    return corpus


@pytest.mark.parametrize("mode", ["vector", "fts", "hybrid"])
@pytest.mark.parametrize("query, expected", [
    ("foghorn visibility", "guide.md"),
    ("feeding a sourdough starter", "bread.txt"),
    ("honey bees nectar", "bees.html"),
    ("icebergs calve", "glaciers.pdf"),
])
def test_each_mode_finds_the_right_document(gw: Gateway, docs: Path, mode: str, query: str,
                                            expected: str) -> None:
    hits = search(gw, query, k=3, mode=mode)  # type: ignore[arg-type]
    assert hits and Path(hits[0].source).name == expected
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(h.mode == mode for h in hits)


def test_scores_mean_what_each_mode_says(gw: Gateway, docs: Path) -> None:
    s = Searcher(gw)
    vec = s.search("lava and magma pressure", k=4, mode="vector")
    assert all(-1.0 <= h.score <= 1.0 and h.score == h.similarity for h in vec)
    assert [h.score for h in vec] == sorted((h.score for h in vec), reverse=True)
    assert vec[0].score > 0.4 > vec[-1].score  # on-topic vs off-topic cosine

    fts = s.search("magma", k=4, mode="fts")
    assert len(fts) == 1 and fts[0].score > 0 and fts[0].similarity is None  # BM25, no vector

    hyb = s.search("magma pressure", k=4, mode="hybrid")
    top = hyb[0]
    assert top.ranks == {"vector": 1, "fts": 1}
    assert top.score == pytest.approx(2 / 61)  # RRF: 1/(60+1) from each list
    assert all(h.similarity is not None for h in hyb)  # FTS-only hits get a cosine too


def test_filters_and_where(gw: Gateway, docs: Path) -> None:
    hits = search(gw, "nature", k=10, filters={"doc_type": "pdf"})
    assert hits and {h.doc_type for h in hits} == {"pdf"}
    both = search(gw, "nature", k=10, filters={"doc_type": ["md", "txt"]}, mode="vector")
    assert {h.doc_type for h in both} == {"md", "txt"}
    one = search(gw, "anything", k=10, filters={"source": str(docs / "guide.md")})
    assert {h.source for h in one} == {str(docs / "guide.md")}
    paged = search(gw, "icebergs", k=10, where="page = 1", mode="fts")
    assert [h.page for h in paged] == [1]  # both short PDF pages fit in one chunk
    assert search(gw, "icebergs", k=10, where="page = 2", mode="fts") == []
    quote = search(gw, "x", filters={"title": "it's not there"})
    assert quote == []  # quotes in values are escaped, not SQL


@pytest.mark.parametrize("kwargs, message", [
    ({"query": "  "}, "query is empty"),
    ({"query": "x", "mode": "semantic"}, "unknown search mode"),
    ({"query": "x", "k": 0}, "k must be"),
    ({"query": "x", "filters": {"password": "a"}}, "cannot filter on 'password'"),
    ({"query": "x", "filters": {"source": []}}, "empty list"),
    ({"query": "x", "where": "no_such_column = 1"}, "invalid filter"),
])
def test_bad_search_requests(gw: Gateway, docs: Path, kwargs: dict[str, object],
                             message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        search(gw, **kwargs)  # type: ignore[arg-type]


def test_build_where_combines_filters() -> None:
    assert build_where({"doc_type": "md", "source": ["a", "b'c"]}, "page > 1") == (
        "doc_type = 'md' AND source IN ('a', 'b''c') AND (page > 1)")
    assert build_where(None) is None


def test_rrf_rewards_agreement() -> None:
    def hit(i: str, mode: str) -> Hit:
        return Hit(id=i, source=i, title="", heading="", text=i, score=0.0, mode=mode)

    fused = rrf([hit("a", "vector"), hit("b", "vector")], [hit("b", "fts"), hit("c", "fts")])
    assert [h.id for h in fused] == ["b", "a", "c"]
    assert fused[0].ranks == {"vector": 2, "fts": 1}


class Reverse:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        self.seen = [h.id for h in hits]
        return list(reversed(hits))


def test_reranker_seam_sees_more_candidates_than_k(gw: Gateway, docs: Path) -> None:
    plain = search(gw, "glacier", k=2, mode="vector")
    rr = Reverse()
    reranked = search(gw, "glacier", k=2, mode="vector", reranker=rr)
    assert len(rr.seen) > 2  # candidates beyond k were offered to the reranker
    assert [h.id for h in reranked] == rr.seen[::-1][:2]
    assert [h.id for h in plain] != [h.id for h in reranked]


class GraderProvider:
    """A chat provider that grades passages mentioning 'queen' 9, everything else 1."""

    def chat(self, body: dict[str, object], spec: object) -> dict[str, object]:
        text = str(body["messages"][-1]["content"])  # type: ignore[index]
        score = 9 if "queen" in text else 1
        return {"choices": [{"index": 0, "message": {"role": "assistant",
                                                      "content": f'{{"score": {score}}}'}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 3}}

    def ping(self) -> None:
        return None


def test_gateway_reranker_grades_through_the_gateway(
        make_gateway: Callable[..., Gateway], docs: Path) -> None:
    gw = make_gateway(providers={"grader": GraderProvider()},
                      models=[{"name": "grader", "provider": "grader"}])
    hits = search(gw, "bees", k=3, reranker=GatewayReranker(gw, model="grader"))
    assert "queen" in hits[0].text and hits[0].rerank_score == 9
    assert gw.usage(by=("model",))[-1]["model"] in ("grader", "minilm-l6-v2")


def test_missing_fts_index_is_built_on_first_fts_search(gw: Gateway, docs: Path) -> None:
    table = Collections.for_settings(gw.settings).open("docs")
    table.drop_index("text_idx")  # as after a run killed before its index step
    assert search(gw, "sourdough", k=1, mode="fts")[0].source.endswith("bread.txt")
    reopened = Collections.for_settings(gw.settings).open("docs")
    assert any(i.index_type == "FTS" for i in reopened.list_indices())


def test_vector_index_is_built_past_the_threshold(gw: Gateway) -> None:
    cols = Collections.for_settings(gw.settings)
    meta = CollectionMeta(name="big", embed_model="minilm-l6-v2", dim=384,
                          chunking={"strategy": "markdown", "max_tokens": 200, "overlap": 32})
    rng = np.random.default_rng(0)
    n = 600
    vecs = rng.normal(size=(n, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    data = pa.Table.from_pylist([{
        "id": f"d{i}:0", "doc_id": f"d{i}", "source": f"s{i}.md", "path": f"/s{i}.md",
        "title": "t", "heading": "", "doc_type": "md", "chunk_index": 0, "start": 0, "end": 1,
        "page": None, "n_tokens": 3, "text": f"synthetic row {i}", "chunk_hash": str(i),
        "doc_hash": str(i), "ingested_at": 0.0, "vector": vecs[i]} for i in range(n)],
        schema=row_schema(meta))
    table = cols.create(meta, data)
    assert maintain_indexes(table, vector_index_min_rows=1000) == ["fts(text)", "fts(heading)"]
    built = maintain_indexes(table, vector_index_min_rows=500)
    assert built == ["IVF_HNSW_SQ(vector, cosine)"]
    s = Searcher(gw, "big")
    hits = s.vector(vecs[7], 3, None)
    assert hits[0].id == "d7:0" and hits[0].similarity == pytest.approx(1.0, abs=0.02)
