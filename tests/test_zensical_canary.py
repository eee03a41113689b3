"""The Zensical canary's comparison (the builds themselves run in CI's canary step)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.labs.labs_support import REPO


def _canary():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("zensical_canary",
                                                  REPO / "scripts" / "zensical_canary.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_compare_reports_missing_pages_and_changed_text() -> None:
    diff = _canary().compare({"a.html": 100, "b.html": 100, "c.html": 10},
                             {"a.html": 100, "b.html": 50, "d.html": 5})
    assert diff["only_mkdocs"] == ["c.html"] and diff["only_zensical"] == ["d.html"]
    assert diff["text_differs"] == ["b.html (100 vs 50 words)"]


def test_page_words_counts_the_article_only(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "index.html").write_text(
        "<nav>menu words here</nav><article><h1>Title</h1><p>two&nbsp;words</p></article>")
    assert _canary().page_words(tmp_path) == {"x/index.html": 3}
