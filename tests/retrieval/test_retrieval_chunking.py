"""Chunking strategies: spans map back to the text, sizes respect the budget, heading
paths follow the document structure."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from workbench.retrieval.chunking import ChunkingConfig, chunk_text, count_tokens, headings

DOC = """# Guide

## Install

### Linux
Run the installer. It sets everything up.

```bash
# this is a comment, not a heading
./install.sh
```

## Usage

""" + " ".join(f"Sentence number {i} explains one more detail." for i in range(120)) + """

## Last
Final words.
"""


@pytest.mark.parametrize("strategy", ["markdown", "paragraph", "fixed"])
def test_chunks_are_exact_spans_within_the_token_budget(strategy: str) -> None:
    cfg = ChunkingConfig(strategy=strategy, max_tokens=64, overlap=8)  # type: ignore[arg-type]
    chunks = chunk_text(DOC, cfg)
    assert len(chunks) > 3
    for c in chunks:
        assert DOC[c.start:c.end] == c.text and c.text.strip() == c.text
        assert 0 < c.n_tokens <= 64
        assert count_tokens([c.text]) == [c.n_tokens]
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)
    # Nothing is lost: every word of the document is in some chunk.
    covered = " ".join(c.text for c in chunks)
    assert all(word in covered for word in ("installer", "Final", "119", "./install.sh"))


def test_fixed_windows_overlap() -> None:
    chunks = chunk_text(DOC, ChunkingConfig(strategy="fixed", max_tokens=50, overlap=10))
    assert all(b.start < a.end for a, b in zip(chunks, chunks[1:], strict=False))


def test_markdown_chunks_follow_headings_and_ignore_code_fences() -> None:
    assert [h[2] for h in headings(DOC)] == ["Guide", "Install", "Linux", "Usage", "Last"]
    chunks = chunk_text(DOC, ChunkingConfig(max_tokens=64))
    first = chunks[0]
    # The empty "Guide"/"Install" headings travel with the first section that has a body.
    assert first.text.startswith("# Guide") and "Run the installer" in first.text
    assert first.heading == "Guide > Install > Linux"
    assert chunks[-1].heading == "Guide > Last" and chunks[-1].text == "## Last\nFinal words."
    usage = [c for c in chunks if c.heading == "Guide > Usage"]
    assert len(usage) > 1  # the long section was split, each piece keeps its heading path
    assert not any("Final words" in c.text for c in usage)


def test_paragraph_strategy_packs_small_paragraphs() -> None:
    text = "\n\n".join(f"Paragraph {i} is short." for i in range(10))
    chunks = chunk_text(text, ChunkingConfig(strategy="paragraph", max_tokens=200))
    assert len(chunks) == 1 and chunks[0].text == text


def test_empty_text_has_no_chunks() -> None:
    assert chunk_text("  \n\n ") == []


@pytest.mark.parametrize("bad", [{"strategy": "words"}, {"max_tokens": 4},
                                 {"max_tokens": 64, "overlap": 64}])
def test_invalid_chunking_settings_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ChunkingConfig(**bad)  # type: ignore[arg-type]
