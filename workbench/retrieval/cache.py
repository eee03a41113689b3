"""Embedding cache in the SQL store: (model, sha256 of the embedded text) -> vector.

Embedding is the slow part of ingestion (tens of chunks per second on a laptop CPU), so
every vector is kept by content hash. A re-ingest of changed files, the same files in a
second collection (a chunking comparison in a lab) or a run resumed after a crash only
embeds text it has never seen. Rows are written after each embedding batch, so work done
before a kill is not lost.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import (
    Column,
    Float,
    Integer,
    LargeBinary,
    String,
    Table,
    delete,
    func,
    select,
)

from workbench.store import Store, metadata

if TYPE_CHECKING:
    import numpy as np

_LOOKUP_BATCH = 500

embedding_cache = Table(
    "retrieval_embedding_cache", metadata,
    Column("model", String(128), primary_key=True),
    Column("hash", String(64), primary_key=True),
    Column("dim", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),  # float32, little-endian
    Column("created_at", Float, nullable=False),
)


class EmbeddingCache:
    def __init__(self, store: Store):
        self.store = store

    def get(self, model: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        import numpy as np

        wanted = list(dict.fromkeys(hashes))
        out: dict[str, np.ndarray] = {}
        with self.store.read() as conn:
            for i in range(0, len(wanted), _LOOKUP_BATCH):
                rows = conn.execute(select(
                    embedding_cache.c.hash, embedding_cache.c.vector).where(
                    embedding_cache.c.model == model,
                    embedding_cache.c.hash.in_(wanted[i:i + _LOOKUP_BATCH])))
                for h, blob in rows:
                    out[h] = np.frombuffer(blob, dtype="<f4")
        return out

    def put(self, model: str, items: Sequence[tuple[str, Sequence[float]]]) -> None:
        import numpy as np

        if not items:
            return
        now = time.time()
        rows = {}
        for h, vec in items:
            arr = np.asarray(vec, dtype="<f4")
            rows[h] = {"model": model, "hash": h, "dim": int(arr.shape[0]),
                       "vector": arr.tobytes(), "created_at": now}
        with self.store.write() as conn:
            if self.store.is_sqlite:
                from sqlalchemy.dialects.sqlite import insert
            else:
                from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
            # Two ingests may embed the same text at once; the first row wins, both agree.
            conn.execute(insert(embedding_cache).on_conflict_do_nothing(), list(rows.values()))

    def count(self, model: str | None = None) -> int:
        q = select(func.count()).select_from(embedding_cache)
        if model:
            q = q.where(embedding_cache.c.model == model)
        with self.store.read() as conn:
            return int(conn.execute(q).scalar_one())

    def clear(self, model: str | None = None) -> int:
        q = delete(embedding_cache)
        if model:
            q = q.where(embedding_cache.c.model == model)
        with self.store.write() as conn:
            return int(conn.execute(q).rowcount or 0)


__all__ = ["EmbeddingCache", "embedding_cache"]
