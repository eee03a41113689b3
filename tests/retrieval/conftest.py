"""Fixtures for retrieval tests: a small mixed-format corpus and a real gateway
(embedded ONNX embedder; the session-wide runtime comes from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from retrieval_corpus import write_corpus

from workbench.models.gateway import Gateway


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus")


@pytest.fixture
def gw(make_gateway: Callable[..., Gateway]) -> Gateway:
    return make_gateway()
