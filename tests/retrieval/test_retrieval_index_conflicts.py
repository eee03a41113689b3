"""Index maintenance retries a lost optimistic commit (a concurrent writer of the same
collection) on the latest version, and only that."""

from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Any

import pytest

# The module, not the ``workbench.retrieval.ingest`` function the package re-exports.
ingest = importlib.import_module("workbench.retrieval.ingest")


class _Table:
    """A table whose first ``fail`` index builds lose the commit race with ``message``."""

    def __init__(self, fail: int, message: str) -> None:
        self.fail, self.message = fail, message
        self.indices: list[Any] = []
        self.checkouts = 0

    def list_indices(self) -> list[Any]:
        return self.indices

    def create_index(self, column: str, **_: Any) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError(self.message)
        self.indices.append(SimpleNamespace(columns=[column], index_type="FTS"))

    def count_rows(self) -> int:
        return 10

    def optimize(self) -> None:
        pass

    def checkout_latest(self) -> None:
        self.checkouts += 1


def test_a_lost_commit_is_retried_on_the_latest_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest.time, "sleep", lambda _s: None)
    table = _Table(2, "lance error: Incompatible transaction: This CreateIndex transaction "
                      "is incompatible with concurrent transaction Overwrite at version 2.")
    assert ingest.maintain_indexes(table) == ["fts(text)", "fts(heading)"]
    assert table.checkouts == 2


def test_other_errors_and_endless_conflicts_are_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest.time, "sleep", lambda _s: None)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest.maintain_indexes(_Table(1, "disk full"))
    endless = _Table(99, "Retryable commit conflict for version 3")
    with pytest.raises(RuntimeError, match="commit conflict"):
        ingest.maintain_indexes(endless)
    assert endless.checkouts == ingest.CONFLICT_RETRIES - 1
