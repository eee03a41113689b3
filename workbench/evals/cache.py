"""The judge cache: (metric, its prompt version, judge model, the sample) -> score.

An unchanged re-run makes zero model calls, which is what makes evals affordable on a
laptop: 94-97% of every judge prompt is fixed instructions, and a golden set changes a
few rows at a time. Changing the answer, a context, the judge model, a metric setting
(strictness, mode) or ragas' prompt text changes the key.

Deterministic failures are cached too (the judge's output did not validate, the metric
returned NaN): at temperature 0 they repeat, and re-asking costs minutes on a CPU.
Transient ones (timeouts, rate limits, upstream errors) are not. ``retry_failed`` skips
cached failures.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from workbench.evals.schema import judge_cache
from workbench.store import Store


@dataclass(frozen=True)
class Cached:
    status: str  # ok | failed
    value: float | None
    reason: str | None
    calls: int
    prompt_tokens: int
    completion_tokens: int


def cache_key(metric: str, prompt_version: str, model: str, sample: Mapping[str, Any]) -> str:
    blob = json.dumps({"metric": metric, "prompt_version": prompt_version, "model": model,
                       "sample": sample}, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class JudgeCache:
    """Judge results in the SQL store (shared by everyone who shares the store)."""

    def __init__(self, store: Store):
        self.store = store

    def get(self, key: str, *, retry_failed: bool = False) -> Cached | None:
        with self.store.read() as conn:
            row = conn.execute(select(judge_cache).where(judge_cache.c.key == key)).first()
        if row is None or (retry_failed and row.status != "ok"):
            return None
        with self.store.write() as conn:
            conn.execute(update(judge_cache).where(judge_cache.c.key == key)
                         .values(hits=judge_cache.c.hits + 1))
        return Cached(row.status, row.value, row.reason, row.calls, row.prompt_tokens,
                      row.completion_tokens)

    def put(self, key: str, *, metric: str, prompt_version: str, model: str,
            entry: Cached) -> None:
        with self.store.write() as conn:
            conn.execute(delete(judge_cache).where(judge_cache.c.key == key))
            conn.execute(insert(judge_cache).values(
                key=key, metric=metric, prompt_version=prompt_version, model=model,
                status=entry.status, value=entry.value, reason=entry.reason,
                calls=entry.calls, prompt_tokens=entry.prompt_tokens,
                completion_tokens=entry.completion_tokens, created_at=time.time(), hits=0))

    def stats(self) -> list[dict[str, Any]]:
        stmt = select(judge_cache.c.metric, judge_cache.c.model, judge_cache.c.status,
                      func.count().label("entries"), func.sum(judge_cache.c.hits).label("hits"),
                      func.sum(judge_cache.c.calls).label("calls_saved_per_hit")
                      ).group_by(judge_cache.c.metric, judge_cache.c.model, judge_cache.c.status)
        with self.store.read() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def clear(self, metric: str | None = None) -> int:
        stmt = delete(judge_cache)
        if metric:
            stmt = stmt.where(judge_cache.c.metric == metric)
        with self.store.write() as conn:
            return int(conn.execute(stmt).rowcount or 0)


__all__ = ["Cached", "JudgeCache", "cache_key"]
