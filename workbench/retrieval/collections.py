"""Collections: one LanceDB table per collection, with its schema recorded in the table.

The collection's contract (embedding model, dimension, chunking settings, format version)
is written into the Arrow schema metadata when the table is created, so it travels with
the data wherever the LanceDB URI points (local dir, s3://, LanceDB Cloud) and cannot
drift from the vectors it describes. Tables without that metadata (a LlamaIndex table in
the same database, say) are not ours and are never listed or touched.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.config import Settings
from workbench.errors import BadRequest, NotFound

if TYPE_CHECKING:
    import pyarrow as pa

META_KEY = b"workbench.retrieval"
PRIMARY_KEY = b"lance-schema:unenforced-primary-key"
FORMAT_VERSION = 1
DEFAULT_COLLECTION = "docs"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class CollectionNotFound(NotFound):
    """No collection of that name in the store (HTTP 404)."""

    code = "collection_not_found"


class EmbeddingMismatch(BadRequest):
    """Vectors from two embedding models (or dimensions) would meet in one collection."""

    code = "embedding_mismatch"


class ChunkingMismatch(BadRequest):
    """Ingest asked for other chunking settings than the collection was built with."""

    code = "chunking_mismatch"


@dataclass(frozen=True)
class CollectionMeta:
    """What a collection promises about every row in it."""

    name: str
    embed_model: str
    dim: int
    chunking: dict[str, Any]
    version: int = FORMAT_VERSION
    created_at: float = field(default_factory=time.time)
    # PII/secrets masked before chunks are stored and embedded. Collections made before
    # this setting existed have no key in their metadata: they stay unmasked.
    mask_pii: bool = False

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> CollectionMeta:
        data = json.loads(raw)
        return cls(name=data["name"], embed_model=data["embed_model"], dim=int(data["dim"]),
                   chunking=dict(data["chunking"]), version=int(data["version"]),
                   created_at=float(data.get("created_at", 0.0)),
                   mask_pii=bool(data.get("mask_pii", False)))


def lancedb_uri(settings: Settings) -> str:
    return settings.lancedb_uri or str(Path(settings.data_dir) / "lancedb")


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise BadRequest(f"invalid collection name {name!r}: use 1-64 letters, digits, "
                         "'_', '-' or '.', starting with a letter or digit")
    return name


def row_schema(meta: CollectionMeta) -> pa.Schema:
    """Columns of a collection table. ``doc_id`` (hash of the resolved path) is the
    identity used for incremental updates; ``source`` is the path as the user gave it."""
    import pyarrow as pa

    fields = [
        # Declared the (unenforced) primary key so that Lance detects two writers inserting
        # the same new chunk ids at once (a retried merge updates instead of duplicating):
        # tests/retrieval/test_retrieval_s3.py shows the duplicates without it.
        pa.field("id", pa.string(), nullable=False, metadata={PRIMARY_KEY: b"true"}),
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("heading", pa.string()),
        pa.field("doc_type", pa.string()),
        pa.field("chunk_index", pa.int32()),
        pa.field("start", pa.int32()),
        pa.field("end", pa.int32()),
        pa.field("page", pa.int32()),
        pa.field("n_tokens", pa.int32()),
        pa.field("text", pa.string(), nullable=False),
        pa.field("chunk_hash", pa.string(), nullable=False),
        pa.field("doc_hash", pa.string(), nullable=False),
        pa.field("ingested_at", pa.float64()),
        pa.field("vector", pa.list_(pa.float32(), meta.dim)),
    ]
    return pa.schema(fields, metadata={META_KEY: meta.to_json()})


class Collections:
    """The collections in one LanceDB database."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None):
        self.uri = uri
        self.storage_options = dict(storage_options or {})
        self._db: Any = None

    @classmethod
    def for_settings(cls, settings: Settings) -> Collections:
        from workbench.retrieval.storage import storage_options

        return cls(lancedb_uri(settings), storage_options(settings))

    @property
    def db(self) -> Any:
        if self._db is None:
            import lancedb

            from workbench.retrieval.storage import object_store_errors

            if "://" not in self.uri:
                Path(self.uri).mkdir(parents=True, exist_ok=True)
            # Long-lived handles (a service's Searcher) must see ingests made by other
            # processes; LanceDB's default never re-checks. Every 5 s costs one manifest
            # lookup at most.
            with object_store_errors(self.uri, self.storage_options):
                self._db = lancedb.connect(self.uri, storage_options=self.storage_options or None,
                                           read_consistency_interval=timedelta(seconds=5))
        return self._db

    def _table_names(self) -> list[str]:
        from workbench.retrieval.storage import object_store_errors

        names: list[str] = []
        token: str | None = None
        with object_store_errors(self.uri, self.storage_options):
            while True:
                resp = self.db.list_tables(page_token=token)
                names.extend(resp.tables)
                token = resp.page_token
                if not token:
                    return sorted(names)

    def names(self) -> list[str]:
        return [n for n in self._table_names() if self.meta(n) is not None]

    def exists(self, name: str) -> bool:
        """A table of that name exists (ours or not: ``open`` tells them apart)."""
        return name in self._table_names()

    def open(self, name: str) -> Any:
        """The LanceDB table of a collection; a clear error when it does not exist."""
        check_name(name)
        if name not in self._table_names():
            have = self.names()
            hint = f"existing: {', '.join(have)}" if have else "there are no collections yet"
            raise CollectionNotFound(
                f"collection {name!r} does not exist ({hint}); create it with "
                f"`workbench ingest PATH --collection {name}`")
        table = self.db.open_table(name)
        if META_KEY not in (table.schema.metadata or {}):
            raise BadRequest(f"table {name!r} in {self.uri} was not created by workbench "
                             "retrieval; pick another collection name")
        return table

    def meta(self, name: str) -> CollectionMeta | None:
        table = self.db.open_table(name)
        raw = (table.schema.metadata or {}).get(META_KEY)
        return CollectionMeta.from_json(raw) if raw else None

    def require_meta(self, name: str) -> CollectionMeta:
        meta = CollectionMeta.from_json(self.open(name).schema.metadata[META_KEY])
        if meta.version > FORMAT_VERSION:
            raise BadRequest(f"collection {name!r} uses format v{meta.version}, newer than "
                             f"this workbench (v{FORMAT_VERSION}); upgrade genai-workbench")
        return meta

    def create(self, meta: CollectionMeta, data: pa.Table | None = None) -> Any:
        check_name(meta.name)
        schema = row_schema(meta)
        if data is not None:
            data = data.replace_schema_metadata(schema.metadata)
        return self.db.create_table(meta.name, data=data, schema=schema)

    def drop(self, name: str) -> None:
        self.open(name)  # raises the friendly error when missing
        self.db.drop_table(name)

    def stats(self, name: str) -> dict[str, Any]:
        table = self.open(name)
        meta = self.require_meta(name)
        cols = table.search().select(["doc_id", "ingested_at"]).limit(None).to_arrow()
        docs = len(set(cols.column("doc_id").to_pylist())) if cols.num_rows else 0
        last = max(cols.column("ingested_at").to_pylist()) if cols.num_rows else None
        tstats = table.stats()
        return {
            "name": name, "chunks": table.count_rows(), "documents": docs,
            "embed_model": meta.embed_model, "dim": meta.dim, "chunking": meta.chunking,
            "format_version": meta.version, "table_version": table.version,
            "indices": [f"{i.name}:{i.index_type}" for i in table.list_indices()],
            "size_bytes": int(tstats.get("total_bytes") or 0),
            "created_at": meta.created_at, "last_ingested_at": last, "uri": self.uri,
            "mask_pii": meta.mask_pii,
        }

    def __repr__(self) -> str:
        return f"Collections({self.uri!r})"


def check_model(meta: CollectionMeta, model: str | None) -> str:
    """The embedding model to use with a collection; refuses a different one."""
    if model is not None and model != meta.embed_model:
        raise EmbeddingMismatch(
            f"collection {meta.name!r} holds {meta.dim}-d vectors from {meta.embed_model!r}; "
            f"{model!r} would mix two embedding models. Use --embed-model "
            f"{meta.embed_model}, or re-index: `workbench collections drop {meta.name}` then "
            f"`workbench ingest PATH --collection {meta.name} --embed-model {model}` "
            "(or ingest into a new collection name)")
    return meta.embed_model


def check_dim(meta: CollectionMeta, got: int, model: str) -> None:
    if got != meta.dim:
        raise EmbeddingMismatch(
            f"embedding dimension mismatch: collection {meta.name!r} stores {meta.dim}-d "
            f"vectors but model {model!r} returned {got}-d ones (was the model behind that "
            f"name changed?). Re-index: `workbench collections drop {meta.name}` and ingest "
            "again, or use a new collection name")


__all__ = [
    "DEFAULT_COLLECTION", "FORMAT_VERSION", "ChunkingMismatch", "CollectionMeta",
    "CollectionNotFound", "Collections", "EmbeddingMismatch", "check_dim", "check_model",
    "check_name", "lancedb_uri", "row_schema",
]
