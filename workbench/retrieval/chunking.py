"""Chunking strategies, measured in the embedder's own tokens (MiniLM word pieces).

- ``fixed``: windows of ``max_tokens`` tokens, ``overlap`` tokens shared between windows.
- ``paragraph``: whole paragraphs packed up to ``max_tokens``; a long paragraph is split
  at sentence ends, a very long sentence falls back to fixed windows.
- ``markdown`` (default): one chunk per heading section (heading path kept as metadata);
  long sections are split like ``paragraph``; a heading with no body of its own is
  merged into the section that follows it.

Every chunk keeps its character span in the document and the heading path in effect
where it starts, whatever the strategy, so sources can be cited precisely.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Strategy = Literal["markdown", "paragraph", "fixed"]
STRATEGIES: tuple[str, ...] = ("markdown", "paragraph", "fixed")

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*(.*?)[ \t]*$")
_PARA_BREAK = re.compile(r"\n[ \t]*\n+")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9`*])")


class ChunkingConfig(BaseModel):
    """Recorded in the collection schema: one collection, one chunking."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Strategy = "markdown"
    max_tokens: int = Field(200, ge=16, le=2048,
                            description="Chunk size in embedder tokens (MiniLM reads 256).")
    overlap: int = Field(32, ge=0, description="Tokens shared by neighbouring fixed windows.")

    @model_validator(mode="before")
    @classmethod
    def _default_overlap(cls, data: Any) -> Any:
        # The 32-token default overlap only fits chunks of 128+ tokens; scale it down.
        if isinstance(data, dict) and data.get("overlap") is None and "max_tokens" in data:
            data = {**data, "overlap": min(32, int(data["max_tokens"]) // 4)}
        return data

    @model_validator(mode="after")
    def _overlap_smaller(self) -> ChunkingConfig:
        if self.overlap >= self.max_tokens:
            raise ValueError("overlap must be smaller than max_tokens")
        return self

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump()


@dataclass
class Chunk:
    text: str
    start: int
    end: int
    heading: str
    n_tokens: int


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    from tokenizers import Tokenizer

    from workbench.models.embedded import tokenizer_path

    tok = Tokenizer.from_file(str(tokenizer_path()))
    tok.no_truncation()  # we measure whole texts; the embedder truncates on its own
    tok.no_padding()
    return tok


def count_tokens(texts: list[str]) -> list[int]:
    if not texts:
        return []
    return [len(e.ids) for e in _tokenizer().encode_batch(texts, add_special_tokens=False)]


# -- structure ----------------------------------------------------------------------------
class Fences:
    """Fenced code, line by line: ``code(line)`` is True for fence lines and lines inside.

    Rendered lab pages nest fences: a ```` ```python ```` cell whose string holds a
    ```` ```bash ```` block. A fence line with an info string inside a fence therefore
    opens a nested fence and a bare fence closes the innermost one. Treating every fence
    line as a toggle (as this module once did) closed the cell at ```` ```bash ````, so a
    shell comment (``# and in production, ...``) became a heading and the rest of the page
    was read inside out."""

    def __init__(self) -> None:
        self.stack: list[str] = []

    def code(self, line: str) -> bool:
        m = _FENCE.match(line.rstrip("\r\n"))
        if m is None:
            return bool(self.stack)
        run, info = m.group(1), m.group(2)
        if not self.stack:
            self.stack.append(run)
        elif not info and run[0] == self.stack[-1][0] and len(run) >= len(self.stack[-1]):
            self.stack.pop()
        elif info and "`" not in info:
            self.stack.append(run)
        return True


def headings(text: str) -> list[tuple[int, int, str]]:
    """(offset, level, title) of every Markdown ATX heading outside fenced code."""
    out = []
    fences = Fences()
    pos = 0
    for line in text.splitlines(keepends=True):
        if not fences.code(line):
            m = _HEADING.match(line.rstrip("\r\n"))
            if m:
                out.append((pos, len(m.group(1)), m.group(2).strip()))
        pos += len(line)
    return out


class HeadingIndex:
    """Heading path ("A > B > C") in effect at any offset."""

    def __init__(self, text: str):
        self.offsets: list[int] = []
        self.paths: list[str] = []
        stack: list[tuple[int, str]] = []
        for off, level, title in headings(text):
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            self.offsets.append(off)
            self.paths.append(" > ".join(t for _, t in stack))

    def at(self, pos: int) -> str:
        import bisect

        i = bisect.bisect_right(self.offsets, pos) - 1
        return self.paths[i] if i >= 0 else ""


# -- splitting ----------------------------------------------------------------------------
def _spans(text: str, pattern: re.Pattern[str], start: int, end: int) -> list[tuple[int, int]]:
    """Pieces of text[start:end] between matches of ``pattern`` (separators dropped)."""
    out, pos = [], start
    for m in pattern.finditer(text, start, end):
        if m.start() > pos:
            out.append((pos, m.start()))
        pos = m.end()
    if pos < end:
        out.append((pos, end))
    return [(a, b) for a, b in out if text[a:b].strip()]


def _fixed_spans(text: str, start: int, end: int, cfg: ChunkingConfig) -> list[tuple[int, int]]:
    enc = _tokenizer().encode(text[start:end], add_special_tokens=False)
    offsets = enc.offsets
    if not offsets:
        return []
    step = cfg.max_tokens - cfg.overlap
    out = []
    for i in range(0, len(offsets), step):
        window = offsets[i:i + cfg.max_tokens]
        out.append((start + window[0][0], start + window[-1][1]))
        if i + cfg.max_tokens >= len(offsets):
            break
    return out


def _pack(text: str, pieces: list[tuple[int, int]], cfg: ChunkingConfig,
          finer: list[re.Pattern[str]]) -> list[tuple[int, int]]:
    """Greedily join neighbouring pieces up to max_tokens; split oversize pieces finer."""
    sizes = count_tokens([text[a:b] for a, b in pieces])
    out: list[tuple[int, int]] = []
    cur: tuple[int, int] | None = None
    cur_size = 0
    for (a, b), n in zip(pieces, sizes, strict=True):
        if n > cfg.max_tokens:
            if cur:
                out.append(cur)
                cur, cur_size = None, 0
            if finer:
                out.extend(_pack(text, _spans(text, finer[0], a, b), cfg, finer[1:]))
            else:
                out.extend(_fixed_spans(text, a, b, cfg))
            continue
        # +2 approximates the separator tokens the join brings back.
        if cur and cur_size + n + 2 <= cfg.max_tokens:
            cur, cur_size = (cur[0], b), cur_size + n + 2
        else:
            if cur:
                out.append(cur)
            cur, cur_size = (a, b), n
    if cur:
        out.append(cur)
    return out


def _line_starts(text: str, a: int, b: int) -> list[int]:
    """Offsets of the non-blank lines of text[a:b]."""
    out, pos = [], a
    for line in text[a:b].splitlines(keepends=True):
        if line.strip():
            out.append(pos + len(line) - len(line.lstrip()))
        pos += len(line)
    return out


def _is_heading_block(text: str, a: int, b: int, heads: set[int]) -> bool:
    # Real headings only: a "# comment" paragraph inside fenced code is code.
    starts = _line_starts(text, a, b)
    return bool(starts) and all(_line_start(text, p) in heads for p in starts)


def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def _paragraph_spans(text: str, start: int, end: int, cfg: ChunkingConfig,
                     heads: set[int] | None = None) -> list[tuple[int, int]]:
    if heads is None:
        heads = {off for off, _, _ in headings(text)}
    pieces: list[tuple[int, int]] = []
    carry: int | None = None
    for a, b in _spans(text, _PARA_BREAK, start, end):
        if _is_heading_block(text, a, b, heads):
            # A heading belongs with the paragraph under it, never alone in a chunk.
            carry = a if carry is None else carry
            continue
        pieces.append((carry if carry is not None else a, b))
        carry = None
    if carry is not None:
        pieces.append((carry, end))
    return _pack(text, pieces, cfg, [_SENTENCE_END])


def _section_spans(text: str, cfg: ChunkingConfig) -> list[tuple[int, int]]:
    bounds = [off for off, _, _ in headings(text)]
    heads = set(bounds)
    if not bounds or bounds[0] != 0:
        bounds.insert(0, 0)
    bounds.append(len(text))
    sections = [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if text[a:b].strip()]
    merged: list[tuple[int, int]] = []
    carry: int | None = None
    for a, b in sections:
        body = text[a:b].split("\n", 1)
        heading_only = a in heads and (len(body) == 1 or not body[1].strip())
        if heading_only:
            carry = a if carry is None else carry
            continue
        merged.append((carry if carry is not None else a, b))
        carry = None
    if carry is not None:
        merged.append((carry, len(text)))
    out: list[tuple[int, int]] = []
    for a, b in merged:
        out.extend(_paragraph_spans(text, a, b, cfg, heads))
    return out


def chunk_text(text: str, cfg: ChunkingConfig | None = None) -> list[Chunk]:
    """Split a document into chunks according to ``cfg`` (default: markdown, 200 tokens)."""
    cfg = cfg or ChunkingConfig()
    if not text.strip():
        return []
    if cfg.strategy == "fixed":
        spans = _fixed_spans(text, 0, len(text), cfg)
    elif cfg.strategy == "paragraph":
        spans = _paragraph_spans(text, 0, len(text), cfg)
    else:
        spans = _section_spans(text, cfg)
    index = HeadingIndex(text)
    heads = set(index.offsets)
    pieces = []
    for a, b in spans:
        # Trim whitespace but keep exact offsets into the original text.
        raw = text[a:b]
        a += len(raw) - len(raw.lstrip())
        b -= len(raw) - len(raw.rstrip())
        if b > a:
            pieces.append((a, b))
    sizes = count_tokens([text[a:b] for a, b in pieces])
    return [Chunk(text[a:b], a, b, index.at(_body_offset(text, a, b, heads)), n)
            for (a, b), n in zip(pieces, sizes, strict=True)]


def _body_offset(text: str, a: int, b: int, heads: set[int]) -> int:
    """Offset of the chunk's first line that is not a heading: a chunk that opens with
    "# Guide / ## Install" is about "Guide > Install", not "Guide"."""
    for pos in _line_starts(text, a, b):
        if _line_start(text, pos) not in heads:
            return pos
    return a


__all__ = ["STRATEGIES", "Chunk", "ChunkingConfig", "Fences", "HeadingIndex", "chunk_text",
           "count_tokens", "headings"]
