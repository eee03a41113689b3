"""Sentence-level evidence for grounded answers.

A tiny model cannot compose a good answer from three 600-character sources, but the
sources already hold the answer, usually in one or two sentences. This module splits the
retrieved chunks into numbered sentences (each keeps the heading it sits under, so "Return
a random URL-safe text string" still knows it is about ``secrets.token_urlsafe``) and
scores them against the question: cosine similarity from the collection's own embedder
(through the Gateway, so the call is governed and traced) plus lexical overlap.

Fenced code is left out: it is not prose a reader can be pointed to, and small models
copy its layout. Paragraphs without sentence ends (pseudo-code in docstrings, lists) are
split by line once they get long.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from workbench.models.gateway import Gateway
from workbench.retrieval.chunking import _HEADING, _SENTENCE_END, Fences
from workbench.retrieval.search import Hit

# A paragraph longer than this with no sentence end is split by line instead.
MAX_SENTENCE_CHARS = 320
# Sentences scored per answer: bounds the embedding call (MiniLM, ~10 ms a sentence).
MAX_SENTENCES = 48
# Weight of the lexical overlap next to the cosine (both 0..1). Measured on
# benchmarks/answers_bench.py: names and numbers the question repeats ("uuid4", "RFC")
# are what the embedder blurs most.
LEXICAL_WEIGHT = 0.35
_LIST_MARK = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_RULE = re.compile(r"^\s*(?:[=\-|:+ ]{3,}|[-*_]{3,})\s*$")
_WORD = re.compile(r"[a-z0-9_]+")
STOPWORDS = frozenset(re.findall(r"\w+",
    "a an and are as at be by can could do does for from how i if in into is it its me my "
    "of on or should so than that the their them then there these this to was what when "
    "where which who why will with would you your use used using get"))


@dataclass
class Sentence:
    """One candidate sentence: ``n`` is its id (1-based, in reading order), ``source`` the
    number of the source [k] it came from."""

    n: int
    source: int
    heading: str
    text: str
    score: float = 0.0
    cosine: float = 0.0
    lexical: float = 0.0

    def labelled(self) -> str:
        """The sentence with its heading in front unless the sentence already names it."""
        if not self.heading or self.heading.lower() in self.text.lower():
            return self.text
        return f"{self.heading}: {self.text}"


def content_words(text: str) -> set[str]:
    """Lower-case words minus stopwords, plural ``s`` folded: what overlap is measured on."""
    out = set()
    for w in _WORD.findall(text.lower()):
        if w in STOPWORDS or len(w) < 2:
            continue
        out.add(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w)
    return out


def overlap(question_words: set[str], text: str) -> float:
    """Share of the question's content words that ``text`` contains (0..1)."""
    if not question_words:
        return 0.0
    return len(question_words & content_words(text)) / len(question_words)


def _unit(v: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / norm for x in v]


def _last_heading(path: str) -> str:
    return path.split(" > ")[-1].strip() if path else ""


def _pieces(paragraph: list[str]) -> list[str]:
    joined = " ".join(line.strip() for line in paragraph)
    parts = [p.strip() for p in _SENTENCE_END.split(joined)]
    out = []
    for part in parts:
        if len(part) > MAX_SENTENCE_CHARS:
            # Docstring pseudo-code and tables: one statement a line, no full stops.
            lines = [ln.strip() for ln in paragraph if ln.strip()]
            if len(lines) > 1:
                return [ln for ln in lines if len(ln) <= MAX_SENTENCE_CHARS * 2]
        out.append(part)
    return out


def split_sentences(text: str, heading: str = "") -> list[tuple[str, str]]:
    """(heading, sentence) pairs of a chunk, code blocks and rules left out.

    ``heading`` is the chunk's heading path; a heading line inside the chunk replaces it
    for the sentences below it."""
    current = _last_heading(heading)
    out: list[tuple[str, str]] = []
    para: list[str] = []
    fences = Fences()

    def flush() -> None:
        for piece in _pieces(para):
            if len(piece.split()) >= 3:
                out.append((current, piece))
        para.clear()

    for line in text.splitlines():
        if fences.code(line):
            flush()
            continue
        h = _HEADING.match(line.strip())
        if h:
            flush()
            current = h.group(2).strip()
            continue
        if not line.strip() or _RULE.match(line):
            flush()
            continue
        if _LIST_MARK.match(line):
            flush()
            line = _LIST_MARK.sub("", line)
        para.append(line)
    flush()
    return out


def gather(hits: Sequence[Hit]) -> list[Sentence]:
    """Every sentence of ``hits`` (source k = position in ``hits`` + 1), numbered."""
    out: list[Sentence] = []
    for k, hit in enumerate(hits, 1):
        for heading, text in split_sentences(hit.text, hit.heading or hit.title):
            out.append(Sentence(n=len(out) + 1, source=k, heading=heading, text=text))
            if len(out) >= MAX_SENTENCES:
                return out
    return out


def score(gw: Gateway, question: str, sentences: list[Sentence], *, embed_model: str,
          trace_id: str | None = None) -> list[Sentence]:
    """Score ``sentences`` against ``question`` in place; returns them best first.

    One embedding call for the question and all sentences (with their headings, as the
    chunks were embedded with theirs)."""
    if not sentences:
        return []
    texts = [question] + [f"{s.heading}\n{s.text}" if s.heading else s.text
                          for s in sentences]
    vectors = gw.embed(texts, model=embed_model, trace_id=trace_id).vectors
    q = _unit(vectors[0])
    words = content_words(question)
    for s, v in zip(sentences, vectors[1:], strict=True):
        s.cosine = sum(a * b for a, b in zip(q, _unit(v), strict=True))
        s.lexical = overlap(words, f"{s.heading} {s.text}")
        s.score = s.cosine + LEXICAL_WEIGHT * s.lexical
    return sorted(sentences, key=lambda s: -s.score)


__all__ = ["LEXICAL_WEIGHT", "MAX_SENTENCES", "Sentence", "content_words", "gather",
           "overlap", "score", "split_sentences"]
