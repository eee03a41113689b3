"""Incremental ingestion: files -> chunks -> vectors (through the Gateway) -> LanceDB.

Identity and change detection:
- a document is identified by its resolved path (``doc_id``) and versioned by the
  sha256 of its bytes (``doc_hash``): an unchanged file is skipped before it is parsed;
- a changed file's chunks replace its old ones in ONE ``merge_insert`` commit (upsert by
  chunk id + delete the document's leftovers), so readers never see half a document;
- vectors are cached by (model, sha256 of the embedded text) in the SQL store and written
  after every embedding batch, so a killed run loses at most one batch of work and the
  next run resumes where it stopped. Lance commits are atomic: a kill between commits
  leaves the table at its last committed version.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import BadRequest
from workbench.models.gateway import Gateway, new_trace_id
from workbench.retrieval.cache import EmbeddingCache
from workbench.retrieval.chunking import ChunkingConfig, chunk_text
from workbench.retrieval.collections import (
    DEFAULT_COLLECTION,
    ChunkingMismatch,
    CollectionMeta,
    Collections,
    EmbeddingMismatch,
    check_dim,
    check_model,
    check_name,
    row_schema,
)
from workbench.retrieval.loaders import Skip, doc_type, load_bytes, mask_doc, read_file

if TYPE_CHECKING:
    import pyarrow as pa

IGNORED_DIRS = frozenset({
    "node_modules", "__pycache__", "site", "build", "dist", "__marimo__", "venv", "env",
})
# benchmarks/retrieval_bench.py (idle 2-core machine): at 2k chunks IVF_HNSW_SQ is no
# faster than brute force; at 20k it halves vector-query latency (43 -> 20 ms p50 with
# the query embedding, 6 s build); at 100k brute force is 6x slower (140 vs 22 ms).
VECTOR_INDEX_MIN_ROWS = 20_000


class MaskingMismatch(BadRequest):
    """A collection's recorded PII-masking setting differs from the one asked for."""

    code = "masking_mismatch"


@dataclass
class Skipped:
    path: str
    reason: str


@dataclass
class IngestReport:
    collection: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    missing_paths: list[str] = field(default_factory=list)
    chunks_written: int = 0
    chunks_embedded: int = 0
    cache_hits: int = 0
    embed_calls: int = 0
    total_chunks: int = 0
    created: bool = False
    indexes_built: list[str] = field(default_factory=list)
    seconds: float = 0.0
    trace_id: str = ""
    mask_pii: bool = False

    @property
    def ok(self) -> bool:
        """False when a named path was missing or nothing at all could be ingested."""
        return not self.missing_paths and bool(self.added or self.updated or self.unchanged
                                               or self.removed)

    def skipped_by_reason(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for s in self.skipped:
            out.setdefault(s.reason, []).append(s.path)
        return out

    def summary_lines(self, max_examples: int = 3) -> list[str]:
        lines = [
            f"collection {self.collection!r}: {len(self.added)} added, {len(self.updated)} "
            f"updated, {self.unchanged} unchanged, {len(self.removed)} removed, "
            f"{len(self.skipped)} skipped",
            f"chunks: {self.chunks_written} written, {self.chunks_embedded} embedded, "
            f"{self.cache_hits} from the embedding cache; {self.total_chunks} in the "
            f"collection ({self.embed_calls} embedding calls, {self.seconds:.1f} s)"
            + ("" if self.mask_pii else "; PII masking OFF (chunks stored as written)"),
        ]
        if self.indexes_built:
            lines.append("indexes built: " + ", ".join(self.indexes_built))
        for reason, paths in sorted(self.skipped_by_reason().items()):
            more = f" (+{len(paths) - max_examples} more)" if len(paths) > max_examples else ""
            lines.append(f"skipped {len(paths)} - {reason}: "
                         f"{', '.join(paths[:max_examples])}{more}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        data = asdict(self)
        data["ok"] = self.ok
        return data

    def __repr__(self) -> str:
        return "IngestReport(" + "; ".join(self.summary_lines()) + ")"

    def _repr_html_(self) -> str:
        import html

        return "<pre>" + html.escape("\n".join(self.summary_lines(10))) + "</pre>"


@dataclass
class _Doc:
    doc_id: str
    source: str
    path: str
    doc_hash: str
    title: str
    doc_type: str
    rows: list[dict[str, Any]]
    is_new: bool


def doc_id_for(path: Path) -> str:
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]


def _hash(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def _sql_list(values: Iterable[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


OUTSIDE_ROOT = ("resolves outside the folder being ingested (a symlink or '..'): left out; "
                "--follow-symlinks / follow_symlinks=True includes it")
OUTSIDE_GIVEN_ROOT = "outside the given root (a '..' path or an absolute path elsewhere)"


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def discover(paths: Sequence[str | Path], *, root: str | Path | None = None,
             follow_symlinks: bool = False
             ) -> tuple[list[tuple[str, Path]], list[Skipped], list[str], list[Path]]:
    """(source, path) of every file to consider, skipped files, missing paths, dir roots.

    Hidden files and folders (``.git``, ``.venv``…) and build output are left out quietly;
    files of an unsupported type inside a folder are listed as skipped.

    Containment: a file or folder found inside a folder argument must resolve inside that
    folder, and a file argument inside the folder it sits in, so a symlink planted in a
    docs folder cannot pull ``~/.ssh`` or ``/etc`` into a collection that is then served.
    Such paths are skipped with :data:`OUTSIDE_ROOT` unless ``follow_symlinks``. With
    ``root``, relative paths are taken from it and every path (``..`` included) must stay
    inside it; only symlinks may leave it, and only with ``follow_symlinks``."""
    found: list[tuple[str, Path]] = []
    skipped: list[Skipped] = []
    missing: list[str] = []
    roots: list[Path] = []
    seen: set[str] = set()
    base = os.path.realpath(root) if root is not None else None

    def add(source: str, path: Path, bound: str) -> None:
        key = os.path.realpath(path)
        if not follow_symlinks and not _inside(key, bound):
            skipped.append(Skipped(source, OUTSIDE_ROOT))
            return
        if key in seen:
            return
        seen.add(key)
        if doc_type(path) is None:
            skipped.append(Skipped(source, f"unsupported file type {path.suffix or '(none)'}"))
        else:
            found.append((source, path))

    def walk(top: Path, bound: str) -> None:
        visited = {os.path.realpath(top)}
        # followlinks: symlinked folders are checked (and refused or followed) like files.
        for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
            keep = []
            for d in sorted(dirnames):
                if d.startswith(".") or d in IGNORED_DIRS:
                    continue
                real = os.path.realpath(os.path.join(dirpath, d))
                if not follow_symlinks and not _inside(real, bound):
                    skipped.append(Skipped(os.path.join(dirpath, d) + os.sep, OUTSIDE_ROOT))
                elif real not in visited:  # a symlink loop is walked once
                    visited.add(real)
                    keep.append(d)
            dirnames[:] = keep
            for name in sorted(filenames):
                if not name.startswith("."):
                    f = Path(dirpath) / name
                    add(str(f), f, bound)

    for raw in paths:
        p = Path(raw)
        if base is not None:
            p = Path(base) / p  # an absolute p replaces base, and is checked like '..'
            if not _inside(os.path.abspath(p), base):
                skipped.append(Skipped(str(raw), OUTSIDE_GIVEN_ROOT))
                continue
        if p.is_dir():
            bound = base or os.path.realpath(p)
            if not follow_symlinks and not _inside(os.path.realpath(p), bound):
                skipped.append(Skipped(str(raw), OUTSIDE_ROOT))
                continue
            roots.append(p.resolve())
            walk(p, bound)
        elif p.exists() or p.is_symlink():
            add(str(raw) if base else str(p), p,
                base or os.path.realpath(os.path.dirname(os.path.abspath(p))))
        else:
            missing.append(str(raw))
            skipped.append(Skipped(str(raw), "path not found"))
    return found, skipped, missing, roots


def embedding_batches(items: list[tuple[str, str]], batch_size: int,
                      window_batches: int = 8) -> Iterator[list[tuple[str, str]]]:
    """(hash, text) pairs in batches, sorted by length within windows of a few batches.

    A batch is padded to its longest text, so mixing a 250-token section with 20-token
    one-liners wastes most of the compute: sorting halves CPU per chunk on the stdlib
    corpus (benchmarks/retrieval_bench.py). Sorting only within a window keeps documents
    completing roughly in order, so commits keep flowing during a long ingest."""
    window = batch_size * window_batches
    for w in range(0, len(items), window):
        part = sorted(items[w:w + window], key=lambda item: len(item[1]))
        for i in range(0, len(part), batch_size):
            yield part[i:i + batch_size]


def _context(title: str, heading: str) -> str:
    parts = [title] + [h for h in heading.split(" > ") if h]
    dedup = [p for i, p in enumerate(parts) if p and p not in parts[:i]]
    return " > ".join(dedup)


def embed_text(title: str, heading: str, text: str) -> str:
    """What the embedder sees: the chunk with its title/heading path in front, so a
    chunk that says "Run it with --fast" still knows it is about "Install > Flags"."""
    ctx = _context(title, heading)
    return f"{ctx}\n\n{text}" if ctx else text


def upsert_documents(table: Any, data: pa.Table, doc_ids: list[str]) -> Any:
    """Replace these documents' chunks by ``data`` in ONE commit: upsert by chunk id, and
    delete the documents' chunks that ``data`` no longer has. Returns LanceDB's MergeResult.

    Concurrent writers: Lance retries a commit that conflicts with another writer's. Two
    writers inserting the same new chunk ids would both succeed (duplicates) unless the
    table declares ``id`` its primary key, which :func:`row_schema` does: the later commit
    is then retried and updates those rows instead."""
    return (table.merge_insert("id")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .when_not_matched_by_source_delete(f"doc_id IN ({_sql_list(doc_ids)})")
            .execute(data))


class _Writer:
    """Commits finished documents to the collection table (creating it on first use)."""

    def __init__(self, cols: Collections, name: str, meta: CollectionMeta | None,
                 model: str, chunking: ChunkingConfig, mask_pii: bool):
        self.cols, self.name, self.meta = cols, name, meta
        self.model, self.chunking, self.mask_pii = model, chunking, mask_pii
        self.table: Any = cols.open(name) if meta else None
        self.created = False
        self.changed = False

    def dim_check(self, dim: int) -> None:
        if self.meta is not None:
            check_dim(self.meta, dim, self.model)

    def commit(self, docs: list[_Doc]) -> None:
        import pyarrow as pa

        rows = [r for d in docs for r in d.rows]
        if not rows:
            return
        if self.meta is None:
            self.meta = CollectionMeta(name=self.name, embed_model=self.model,
                                       dim=len(rows[0]["vector"]),
                                       chunking=self.chunking.as_dict(),
                                       mask_pii=self.mask_pii)
        data = pa.Table.from_pylist(rows, schema=row_schema(self.meta))
        if self.table is None:
            try:
                self.table = self.cols.create(self.meta, data)
                self.created = self.changed = True
                return
            except ValueError as exc:
                if "already exists" not in str(exc):
                    raise
            self._join_existing()  # a concurrent ingest created the collection meanwhile
            data = data.replace_schema_metadata(row_schema(self.meta).metadata)
        upsert_documents(self.table, data, [d.doc_id for d in docs])
        self.changed = True

    def _join_existing(self) -> None:
        """Adopt the collection another process created, if it holds the same vectors."""
        meta = self.cols.require_meta(self.name)
        check_model(meta, self.model)
        if self.meta is not None:
            check_dim(meta, self.meta.dim, self.model)
        if meta.chunking != self.chunking.as_dict():
            raise ChunkingMismatch(f"collection {self.name!r} was just created by another "
                                   f"ingest with chunking {meta.chunking}; this one uses "
                                   f"{self.chunking.as_dict()}")
        self.meta, self.table = meta, self.cols.open(self.name)

    def delete_docs(self, doc_ids: list[str]) -> None:
        if doc_ids and self.table is not None:
            self.table.delete(f"doc_id IN ({_sql_list(doc_ids)})")
            self.changed = True


def _existing_docs(table: Any) -> dict[str, tuple[str, str, str]]:
    """doc_id -> (doc_hash, source, path) for every document in the table."""
    if table is None:
        return {}
    cols = table.search().select(["doc_id", "doc_hash", "source", "path"]).limit(None).to_arrow()
    return {d: (h, s, p) for d, h, s, p in zip(
        cols.column("doc_id").to_pylist(), cols.column("doc_hash").to_pylist(),
        cols.column("source").to_pylist(), cols.column("path").to_pylist(), strict=True)}


# Two writers of one collection (two ingest processes, replicas on S3) race on Lance's
# optimistic commits: an index build that loses to a concurrent write fails with a
# commit conflict and succeeds when retried on the newer version.
_CONFLICTS = ("Incompatible transaction", "commit conflict", "Retryable commit conflict")
CONFLICT_RETRIES = 5


def _is_commit_conflict(exc: Exception) -> bool:
    return any(marker in str(exc) for marker in _CONFLICTS)


def maintain_indexes(table: Any, *, vector_index_min_rows: int = VECTOR_INDEX_MIN_ROWS
                     ) -> list[str]:
    """FTS indexes (text, heading) always; a vector index once the table is big enough;
    then compact and fold new rows into existing indexes (``optimize``). Retried on the
    latest version when a concurrent writer wins the commit."""
    for attempt in range(CONFLICT_RETRIES):
        try:
            return _maintain_indexes(table, vector_index_min_rows)
        except (RuntimeError, OSError) as exc:
            if not _is_commit_conflict(exc) or attempt == CONFLICT_RETRIES - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
            table.checkout_latest()
    raise AssertionError("unreachable")  # the loop returns or raises


def _maintain_indexes(table: Any, vector_index_min_rows: int) -> list[str]:
    from lancedb.index import FTS, HnswSq

    built = []
    have = {tuple(i.columns): i.index_type for i in table.list_indices()}
    if ("text",) not in have:
        table.create_index("text", config=FTS(), replace=True)
        built.append("fts(text)")
    if ("heading",) not in have:
        # Headings are searchable words too: a chunk split off the middle of a section
        # does not repeat "Switching to a real provider" in its text.
        table.create_index("heading", config=FTS(), replace=True)
        built.append("fts(heading)")
    if ("vector",) not in have and table.count_rows() >= vector_index_min_rows:
        table.create_index("vector", config=HnswSq(distance_type="cosine"))
        built.append("IVF_HNSW_SQ(vector, cosine)")
    table.optimize()
    return built


def _resolve_setup(gw: Gateway, cols: Collections, collection: str,
                   chunking: ChunkingConfig | None, embed_model: str | None,
                   mask_pii: bool | None = None
                   ) -> tuple[CollectionMeta | None, str, ChunkingConfig, bool]:
    meta = cols.require_meta(collection) if cols.exists(collection) else None
    if meta is None:
        model = embed_model or gw.settings.default_embed_model
        gw.spec(model, kind="embedding")  # unknown / non-embedding model: fail before work
        return None, model, chunking or ChunkingConfig(), mask_pii is not False
    if mask_pii is not None and mask_pii != meta.mask_pii:
        now, asked = ("on", "off") if meta.mask_pii else ("off", "on")
        raise MaskingMismatch(
            f"collection {collection!r} was built with PII masking {now}; asking for it "
            f"{asked} would mix masked and raw chunks. Leave the flag out to keep the "
            f"collection's setting, or `workbench collections drop {collection}` and ingest "
            "again (or use a new collection name)")
    model = check_model(meta, embed_model)
    recorded = ChunkingConfig.model_validate(meta.chunking)
    if chunking is not None and chunking != recorded:
        raise ChunkingMismatch(
            f"collection {collection!r} was built with chunking {recorded.as_dict()}; "
            f"got {chunking.as_dict()}. Use another collection name to compare strategies, "
            f"or `workbench collections drop {collection}` and ingest again")
    return meta, model, recorded, meta.mask_pii


def _load(source: str, path: Path, data: bytes, doc_hash: str, doc_id: str, cfg: ChunkingConfig,
          is_new: bool, now: float, mask: bool = False) -> _Doc:
    import bisect

    loaded = load_bytes(data, path)
    if mask:  # before chunking: a chunk boundary must not split an email out of view
        loaded = mask_doc(loaded)
    rows = []
    for i, ch in enumerate(chunk_text(loaded.text, cfg)):
        etext = embed_text(loaded.title, ch.heading, ch.text)
        page = (bisect.bisect_right(loaded.page_starts, ch.start) if loaded.page_starts
                else None)
        rows.append({
            "id": f"{doc_id}:{i}", "doc_id": doc_id, "source": source,
            "path": str(path.resolve()), "title": loaded.title, "heading": ch.heading,
            "doc_type": loaded.doc_type, "chunk_index": i, "start": ch.start, "end": ch.end,
            "page": page, "n_tokens": ch.n_tokens, "text": ch.text,
            "chunk_hash": _hash(etext), "doc_hash": doc_hash, "ingested_at": now,
            "vector": None, "_embed_text": etext,
        })
    if not rows:
        raise Skip("no text found")
    return _Doc(doc_id, source, str(path.resolve()), doc_hash, loaded.title, loaded.doc_type,
                rows, is_new)


def _no_bar(progress: bool | None, pointless: bool) -> bool | None:
    """tqdm's ``disable``: None = only on a terminal (tqdm checks), unless told."""
    if pointless or progress is False:
        return True
    return False if progress else None


def _scan(files: list[tuple[str, Path]], existing: dict[str, tuple[str, str, str]],
          cfg: ChunkingConfig, report: IngestReport, progress: bool | None, mask: bool
          ) -> tuple[list[_Doc], list[str], set[str]]:
    """Read, hash, parse and chunk every file. Returns (new or changed documents,
    documents whose file is now empty, ids of every file seen)."""
    from tqdm.auto import tqdm

    docs: list[_Doc] = []
    emptied: list[str] = []
    seen: set[str] = set()
    now = time.time()
    for source, path in tqdm(files, desc=f"reading ({report.collection})", unit="file",
                             disable=_no_bar(progress, len(files) <= 20), leave=False):
        doc_id = doc_id_for(path)
        seen.add(doc_id)
        try:
            data = read_file(path)
            doc_hash = _hash(data)
            if doc_id in existing and existing[doc_id][0] == doc_hash:
                report.unchanged += 1
                continue
            docs.append(_load(source, path, data, doc_hash, doc_id, cfg,
                              doc_id not in existing, now, mask))
        except Skip as skip:
            reason = skip.reason
            if doc_id in existing and skip.reason in ("empty file", "no text found"):
                emptied.append(doc_id)  # the file is empty now: its old chunks are stale
                reason += " (its old chunks were removed)"
            report.skipped.append(Skipped(source, reason))
    return docs, emptied, seen


class _Committer:
    """Commits documents, in order, as soon as all their vectors exist: every
    ``commit_every`` chunks or ``interval_s`` seconds, and at the end."""

    def __init__(self, writer: _Writer, docs: list[_Doc], vectors: dict[str, Any],
                 report: IngestReport, commit_every: int, interval_s: float):
        self.writer, self.docs, self.vectors, self.report = writer, docs, vectors, report
        self.commit_every, self.interval_s = commit_every, interval_s
        self.ready: list[_Doc] = []
        self.next_doc = 0
        self.last = time.monotonic()

    def __call__(self, force: bool = False) -> None:
        while self.next_doc < len(self.docs) and all(
                r["chunk_hash"] in self.vectors for r in self.docs[self.next_doc].rows):
            self.ready.append(self.docs[self.next_doc])
            self.next_doc += 1
        n_ready = sum(len(d.rows) for d in self.ready)
        if not self.ready or not (force or n_ready >= self.commit_every
                                  or time.monotonic() - self.last >= self.interval_s):
            return
        for d in self.ready:
            for r in d.rows:
                r["vector"] = self.vectors[r["chunk_hash"]]
                r.pop("_embed_text", None)
            self.writer.dim_check(len(d.rows[0]["vector"]))
        self.writer.commit(self.ready)
        self.report.chunks_written += n_ready
        for d in self.ready:
            (self.report.added if d.is_new else self.report.updated).append(d.source)
        self.ready = []
        self.last = time.monotonic()


def ingest(gw: Gateway, paths: Sequence[str | Path], *, collection: str = DEFAULT_COLLECTION,
           chunking: ChunkingConfig | None = None, embed_model: str | None = None,
           prune: bool = False, batch_size: int = 32, commit_every: int = 256,
           commit_interval_s: float = 5.0, progress: bool | None = None,
           vector_index_min_rows: int = VECTOR_INDEX_MIN_ROWS, mask_pii: bool | None = None,
           root: str | Path | None = None, follow_symlinks: bool = False) -> IngestReport:
    """Ingest files and folders into ``collection`` (created on first use).

    Re-running is idempotent: unchanged files are skipped, changed ones replace their old
    chunks, and with ``prune=True`` documents whose files vanished from the given folders
    are removed. ``chunking``/``embed_model`` default to the collection's recorded ones.
    ``progress``: None shows bars only on a terminal.

    ``mask_pii``: mask PII/secrets (default guardrails) before chunks are stored and
    embedded. None keeps the collection's recorded setting; a new collection masks. The
    trade-off: what is stored, embedded and searched is the masked text, so a search for
    an email address finds nothing. ``root``/``follow_symlinks``: see :func:`discover`
    (paths that resolve outside the folder being ingested are skipped by default).

    Traced as one ``ingest`` CHAIN span: every embedding batch nests under it.
    """
    from workbench.observability import tracing

    with tracing.span("ingest", kind="CHAIN", gateway=gw,
                      attributes={"workbench.collection": collection}) as span:
        report = _ingest(gw, paths, collection=collection, chunking=chunking,
                         embed_model=embed_model, prune=prune, batch_size=batch_size,
                         commit_every=commit_every, commit_interval_s=commit_interval_s,
                         progress=progress, vector_index_min_rows=vector_index_min_rows,
                         mask_pii=mask_pii, root=root, follow_symlinks=follow_symlinks)
        span.set_output({"documents": len(report.added) + len(report.updated),
                         "chunks_embedded": report.chunks_embedded,
                         "skipped": len(report.skipped)})
    return report


def _ingest(gw: Gateway, paths: Sequence[str | Path], *, collection: str = DEFAULT_COLLECTION,
            chunking: ChunkingConfig | None = None, embed_model: str | None = None,
            prune: bool = False, batch_size: int = 32, commit_every: int = 256,
            commit_interval_s: float = 5.0, progress: bool | None = None,
            vector_index_min_rows: int = VECTOR_INDEX_MIN_ROWS, mask_pii: bool | None = None,
            root: str | Path | None = None, follow_symlinks: bool = False) -> IngestReport:
    from tqdm.auto import tqdm

    from workbench.observability import tracing

    started = time.perf_counter()
    check_name(collection)
    if batch_size < 1 or commit_every < 1:
        raise BadRequest("batch_size and commit_every must be at least 1")
    cols = Collections.for_settings(gw.settings)
    meta, model, cfg, mask = _resolve_setup(gw, cols, collection, chunking, embed_model,
                                            mask_pii)
    report = IngestReport(collection=collection, mask_pii=mask,
                          trace_id=tracing.current_trace_id() or new_trace_id())
    files, skipped, report.missing_paths, roots = discover(
        paths, root=root, follow_symlinks=follow_symlinks)
    report.skipped.extend(skipped)
    writer = _Writer(cols, collection, meta, model, cfg, mask)
    existing = _existing_docs(writer.table)
    docs, emptied, seen = _scan(files, existing, cfg, report, progress, mask)

    cache = EmbeddingCache(gw.store)
    all_hashes = [r["chunk_hash"] for d in docs for r in d.rows]
    vectors: dict[str, Any] = dict(cache.get(model, all_hashes))
    report.cache_hits = sum(1 for h in all_hashes if h in vectors)
    todo: dict[str, str] = {}
    for d in docs:
        for r in d.rows:
            if r["chunk_hash"] not in vectors:
                todo.setdefault(r["chunk_hash"], r["_embed_text"])

    commit = _Committer(writer, docs, vectors, report, commit_every, commit_interval_s)
    commit()  # documents served entirely from the cache
    items = list(todo.items())
    with tqdm(total=len(items), desc=f"embedding ({collection})", unit="chunk",
              disable=_no_bar(progress, not items)) as bar:
        for batch in embedding_batches(items, batch_size):
            vecs = gw.embed([t for _, t in batch], model=model,
                            trace_id=report.trace_id).vectors
            report.embed_calls += 1
            if len({len(v) for v in vecs}) != 1:
                raise EmbeddingMismatch(f"model {model!r} returned vectors of different "
                                        "sizes in one batch")
            writer.dim_check(len(vecs[0]))
            pairs = [(h, v) for (h, _), v in zip(batch, vecs, strict=True)]
            cache.put(model, pairs)  # before the commit: a kill now loses no embedding
            vectors.update(pairs)
            report.chunks_embedded += len(batch)
            bar.update(len(batch))
            commit()
    commit(force=True)

    writer.delete_docs(emptied)
    report.removed.extend(existing[d][1] for d in emptied)
    if prune and writer.table is not None:
        gone = [d for d, (_, _, p) in existing.items() if d not in seen
                and any(Path(p).is_relative_to(root) for root in roots)]
        writer.delete_docs(gone)
        report.removed.extend(existing[d][1] for d in gone)
    if writer.changed and writer.table is not None:
        report.indexes_built = maintain_indexes(writer.table,
                                                vector_index_min_rows=vector_index_min_rows)
    report.created = writer.created
    report.total_chunks = writer.table.count_rows() if writer.table is not None else 0
    report.seconds = time.perf_counter() - started
    return report


__all__ = ["IGNORED_DIRS", "OUTSIDE_ROOT", "VECTOR_INDEX_MIN_ROWS", "IngestReport",
           "MaskingMismatch", "Skipped", "discover", "doc_id_for", "embed_text",
           "embedding_batches", "ingest", "maintain_indexes", "upsert_documents"]
