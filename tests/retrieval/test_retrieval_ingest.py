"""Ingestion with the real embedder and real LanceDB: formats, incremental updates,
pruning, the embedding cache, schema checks and bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from retrieval_corpus import FILES, write_corpus
from sqlalchemy import select

from workbench.config import ModelSpec
from workbench.errors import BadRequest
from workbench.models.gateway import Gateway
from workbench.retrieval import (
    ChunkingConfig,
    ChunkingMismatch,
    CollectionNotFound,
    Collections,
    EmbeddingMismatch,
    ingest,
    search,
)
from workbench.retrieval.cache import EmbeddingCache
from workbench.store import ledger

pytestmark = pytest.mark.embedded


def rows(gw: Gateway, collection: str = "docs") -> list[dict[str, Any]]:
    table = Collections.for_settings(gw.settings).open(collection)
    return list(table.search().select(["id", "doc_id", "source", "chunk_hash", "page",
                                       "doc_type", "heading"]).limit(None).to_list())


def embed_calls(gw: Gateway) -> int:
    with gw.store.read() as conn:
        return len(conn.execute(select(ledger.c.id).where(
            ledger.c.endpoint == "embeddings")).all())


def test_every_format_is_ingested_with_metadata(gw: Gateway, corpus: Path) -> None:
    report = ingest(gw, [corpus], progress=False)
    assert report.ok and report.created and not report.skipped
    assert sorted(Path(s).name for s in report.added) == sorted(Path(f).name for f in FILES)
    got = rows(gw)
    assert {r["doc_type"] for r in got} == {"md", "txt", "html", "py", "ipynb", "pdf"}
    assert len({r["id"] for r in got}) == len(got) == report.total_chunks
    # source is the path as given on the command line, joined with the file's place.
    assert {r["source"] for r in got} == {str(corpus / f) for f in FILES}
    pdf = [r for r in got if r["doc_type"] == "pdf"]
    assert pdf and all(r["page"] in (1, 2) for r in pdf)
    assert any(r["heading"] == "Lighthouse keeping > Fog signals" for r in got)
    stats = Collections.for_settings(gw.settings).stats("docs")
    assert stats["embed_model"] == "minilm-l6-v2" and stats["dim"] == 384
    assert stats["chunking"] == ChunkingConfig().as_dict() and stats["format_version"] == 1
    assert stats["documents"] == len(FILES) and "text_idx:FTS" in stats["indices"]
    # Every embedding call went through the Gateway under the ingest's trace id.
    with gw.store.read() as conn:
        traces = {r[0] for r in conn.execute(select(ledger.c.trace_id).where(
            ledger.c.endpoint == "embeddings"))}
    assert traces == {report.trace_id}
    # ...and every EMBEDDING span nests under the one `ingest` root span (status OK).
    from workbench.observability import tracing
    from workbench.observability.traces import get_trace

    tracing.tracer_for(gw.store).flush()
    trace = get_trace(gw.store, report.trace_id)
    [root] = trace.roots
    assert root.name == "ingest" and root.kind == "CHAIN" and root.status == "OK"
    embeds = [s for _, s in trace.walk() if s.kind == "EMBEDDING"]
    assert embeds and all(s.parent_id == root.span_id for s in embeds)


def test_reingest_is_a_no_op_and_changes_replace_only_their_document(
        gw: Gateway, corpus: Path) -> None:
    first = ingest(gw, [corpus], progress=False)
    version = Collections.for_settings(gw.settings).open("docs").version
    calls = embed_calls(gw)

    again = ingest(gw, [corpus], progress=False)
    assert again.unchanged == len(FILES) and not (again.added or again.updated)
    assert again.chunks_written == again.embed_calls == 0
    assert embed_calls(gw) == calls
    assert Collections.for_settings(gw.settings).open("docs").version == version
    assert len(rows(gw)) == first.total_chunks

    guide = corpus / "guide.md"
    guide.write_text(FILES["guide.md"] + "\n## Storms\n\nIn a storm the keeper stays awake "  # type: ignore[operator]
                     "all night.\n", encoding="utf-8")
    changed = ingest(gw, [corpus], progress=False)
    assert changed.updated == [str(guide)] and changed.unchanged == len(FILES) - 1
    # Only the new section needed an embedding; the guide's other chunks came from cache.
    assert changed.chunks_embedded == 1 and changed.cache_hits == changed.chunks_written - 1
    got = rows(gw)
    assert len({r["id"] for r in got}) == len(got)
    guide_rows = [r for r in got if r["source"] == str(guide)]
    assert len(guide_rows) == changed.chunks_written
    hits = search(gw, "what does the keeper do in a storm", k=1, mode="fts")
    assert hits[0].source == str(guide) and "storm" in hits[0].text

    guide.write_text("# Lighthouse keeping\n\nShort now.\n", encoding="utf-8")
    shrunk = ingest(gw, [corpus], progress=False)
    assert shrunk.updated == [str(guide)]
    assert len([r for r in rows(gw) if r["source"] == str(guide)]) == 1  # no leftovers


def test_deleted_files_are_pruned_only_on_request(gw: Gateway, corpus: Path) -> None:
    ingest(gw, [corpus], progress=False)
    bread = corpus / "notes" / "bread.txt"
    bread.unlink()
    kept = ingest(gw, [corpus], progress=False)
    assert not kept.removed and any(r["source"] == str(bread) for r in rows(gw))
    pruned = ingest(gw, [corpus], prune=True, progress=False)
    assert pruned.removed == [str(bread)]
    assert not any(r["source"] == str(bread) for r in rows(gw))
    # Pruning is scoped to the folders given: ingesting one file prunes nothing else.
    other = ingest(gw, [corpus / "guide.md"], prune=True, progress=False)
    assert not other.removed and other.unchanged == 1


def test_a_file_emptied_since_last_ingest_loses_its_chunks(gw: Gateway, corpus: Path) -> None:
    ingest(gw, [corpus], progress=False)
    bread = corpus / "notes" / "bread.txt"
    bread.write_text("")
    report = ingest(gw, [corpus], progress=False)
    assert report.removed == [str(bread)]
    assert "empty file (its old chunks were removed)" in report.skipped_by_reason()
    assert not any(r["source"] == str(bread) for r in rows(gw))


def test_bad_inputs_are_skipped_and_the_rest_is_ingested(gw: Gateway, tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "mixed", {
        "good.md": "# Good\n\nThis file is fine and mentions kayaks.",
        "binary.md": b"\x00\x01\x02 not text",
        "empty.txt": "",
        "broken.pdf": b"%PDF-1.7 truncated garbage",
        "data.bin": b"\x00\x00",
    })
    (root / "dangling.md").symlink_to(root / "gone.md")
    report = ingest(gw, [root, tmp_path / "missing-dir", tmp_path / "nope.md"], progress=False)
    assert report.added == [str(root / "good.md")]
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert reasons["binary.md"].startswith("binary file")
    assert reasons["empty.txt"] == "empty file"
    assert reasons["broken.pdf"].startswith("PDF failed to parse")
    assert reasons["data.bin"] == "unsupported file type .bin"
    assert reasons["dangling.md"].startswith("unreadable")
    assert reasons["missing-dir"] == reasons["nope.md"] == "path not found"
    assert report.missing_paths == [str(tmp_path / "missing-dir"), str(tmp_path / "nope.md")]
    assert not report.ok  # a named path was missing: the CLI exits 1 after ingesting
    assert search(gw, "kayaks", k=1)[0].source == str(root / "good.md")
    lines = "\n".join(report.summary_lines())
    assert "skipped 2 - path not found" in lines and "binary.md" in lines


def test_nothing_usable_creates_no_collection(gw: Gateway, tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "junk", {"empty.md": "", "x.bin": b"\x00"})
    report = ingest(gw, [root], progress=False)
    assert not report.ok and not report.created and report.total_chunks == 0
    assert not Collections.for_settings(gw.settings).exists("docs")
    with pytest.raises(CollectionNotFound, match="does not exist"):
        search(gw, "anything")


def test_embedding_cache_serves_a_second_collection(gw: Gateway, corpus: Path) -> None:
    first = ingest(gw, [corpus], progress=False)
    second = ingest(gw, [corpus], collection="docs-copy", progress=False)
    assert second.created and second.chunks_written == first.chunks_written
    assert second.chunks_embedded == 0 and second.embed_calls == 0
    assert EmbeddingCache(gw.store).count("minilm-l6-v2") == first.chunks_embedded
    assert Collections.for_settings(gw.settings).names() == ["docs", "docs-copy"]


def test_chunking_is_fixed_per_collection(gw: Gateway, corpus: Path) -> None:
    ingest(gw, [corpus / "guide.md"], chunking=ChunkingConfig(strategy="fixed"),
           progress=False)
    again = ingest(gw, [corpus / "guide.md"], progress=False)  # None: the recorded one
    assert again.unchanged == 1
    with pytest.raises(ChunkingMismatch, match="another collection name"):
        ingest(gw, [corpus], chunking=ChunkingConfig(strategy="paragraph"), progress=False)


class TwoDimEmbedder:
    """Returns 2-d vectors: a stand-in for 'a different embedding model'."""

    def embed(self, texts: list[str], spec: ModelSpec) -> dict[str, Any]:
        return {"data": [{"embedding": [1.0, 0.0]} for _ in texts],
                "usage": {"prompt_tokens": len(texts)}}

    def ping(self) -> None:
        return None


def test_mixing_embedding_models_is_refused(make_gateway: Callable[..., Gateway],
                                            gw: Gateway, corpus: Path) -> None:
    ingest(gw, [corpus / "guide.md"], progress=False)
    other = make_gateway(providers={"two": TwoDimEmbedder()},
                         models=[{"name": "two-d", "provider": "two", "kind": "embedding"}])
    with pytest.raises(EmbeddingMismatch) as info:
        ingest(other, [corpus], embed_model="two-d", progress=False)
    assert "minilm-l6-v2" in info.value.message and "collections drop docs" in info.value.message
    # Without an explicit model the collection's own model is used: search still works.
    assert search(other, "fog signal", k=1)[0].heading.endswith("Fog signals")


def test_dimension_mismatch_is_a_clear_error(make_gateway: Callable[..., Gateway],
                                             gw: Gateway, corpus: Path) -> None:
    ingest(gw, [corpus / "guide.md"], progress=False)
    # Same model name, different vectors (a profile pointed the name elsewhere).
    swapped = make_gateway(providers={"two": TwoDimEmbedder()}, models=[
        {"name": "minilm-l6-v2", "provider": "two", "kind": "embedding"}])
    with pytest.raises(EmbeddingMismatch, match="stores 384-d vectors .* returned 2-d"):
        search(swapped, "fog", mode="vector")
    (corpus / "guide.md").write_text("# Changed\n\nNew text.", encoding="utf-8")
    with pytest.raises(EmbeddingMismatch, match="dimension mismatch"):
        ingest(swapped, [corpus / "guide.md"], progress=False)
    assert len(rows(gw)) == 2  # the old version of the guide is intact


@pytest.mark.parametrize("name", ["", "../etc", "a b", "x" * 65])
def test_bad_collection_names_are_refused(gw: Gateway, corpus: Path, name: str) -> None:
    with pytest.raises(BadRequest, match="invalid collection name"):
        ingest(gw, [corpus], collection=name, progress=False)


def test_drop_removes_the_collection(gw: Gateway, corpus: Path) -> None:
    ingest(gw, [corpus / "guide.md"], progress=False)
    cols = Collections.for_settings(gw.settings)
    cols.drop("docs")
    assert cols.names() == []
    with pytest.raises(CollectionNotFound):
        cols.drop("docs")


def test_lancedb_uri_setting_moves_the_collections(make_gateway: Callable[..., Gateway],
                                                   corpus: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_LANCEDB_URI", str(tmp_path / "shared-lance"))
    gw = make_gateway()
    ingest(gw, [corpus / "guide.md"], progress=False)
    assert (tmp_path / "shared-lance" / "docs.lance").is_dir()
    assert not (tmp_path / ".workbench" / "lancedb" / "docs.lance").exists()
    assert Collections.for_settings(gw.settings).uri == str(tmp_path / "shared-lance")
