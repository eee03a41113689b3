"""The retrieval step of ``workbench tour``: ingest the workbench's own docs (the sample
corpus), search them, and ask them a question through the governed Gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.models.gateway import Gateway
from workbench.retrieval.ingest import ingest
from workbench.retrieval.rag import ask
from workbench.retrieval.search import search

TOUR_COLLECTION = "docs"
TOUR_QUERY = "budgets and rate limits"
TOUR_QUESTION = "How do I switch the workbench to a real model provider?"
# What a right answer to TOUR_QUESTION names (tests/retrieval/test_retrieval_answers.py).
TOUR_SOURCE = "getting-started.md"


def sample_corpus() -> list[Path]:
    """The hand-written pages of the repo's ``docs/`` (the playbooks, getting started,
    the facilitator guide), else the README. The generated reference and the rendered lab
    pages are left out: 370 KB of API tables and notebook output made most of the tour's
    ingest time and crowded the playbooks out of the top results."""
    import workbench

    root = Path(workbench.__file__).resolve().parent.parent
    docs = root / "docs"
    pages = sorted(docs.glob("*.md")) + sorted((docs / "playbooks").glob("*.md"))
    if pages:
        return pages
    readme = root / "README.md"
    return [readme] if readme.exists() else []


def tour_step(gw: Gateway, collection: str = TOUR_COLLECTION) -> dict[str, Any]:
    """Ingest, search, ask. Returns ``{"title", "ok", "lines", "data"}`` for the tour."""
    title = "Retrieval: ingest the playbooks, search them, ask them"
    corpus = sample_corpus()
    if not corpus:
        return {"title": title, "ok": False, "lines": [
            "no sample corpus: neither docs/ nor README.md next to the workbench package"],
            "data": {}}
    report = ingest(gw, corpus, collection=collection, progress=False)
    lines = [f"ingest {len(corpus)} pages under {_common_dir(corpus)}",
             *report.summary_lines()]
    hits = search(gw, TOUR_QUERY, collection=collection, k=3)
    lines.append(f"search {TOUR_QUERY!r} (hybrid):")
    lines += [f"  {h.rank}. {h.source} - {h.heading or h.title} (rrf {h.score:.4f})"
              for h in hits]
    answer = ask(gw, TOUR_QUESTION, collection=collection)
    lines.append(f"ask {TOUR_QUESTION!r}:")
    lines += ["  " + line for line in answer.lines()]
    return {"title": title, "ok": bool(hits) and bool(answer.trace_id),
            "lines": lines,
            "data": {"ingest": report.to_dict(), "hits": [h.to_dict() for h in hits],
                     "answer": answer.to_dict(), "trace_id": answer.trace_id}}


def _common_dir(paths: list[Path]) -> str:
    import os

    return os.path.commonpath([str(p.parent) for p in paths])


__all__ = ["TOUR_COLLECTION", "sample_corpus", "tour_step"]
