"""How ``ask()`` turns evidence into an answer, and the verifier every answer passes.

- ``extractive``: no generation. The best-scoring evidence sentences (see
  :mod:`workbench.retrieval.evidence`), one or two, joined with ``[n]`` citations of the
  sources they come from. Fast, and right whenever retrieval is.
- ``constrained``: the model chooses. It sees the candidate sentences numbered and must
  answer with JSON ``{"sentences": [ids]}`` whose ids are an enum of the candidates (a
  JSON-schema ``response_format``: the embedded runtime turns it into a grammar, so a
  135M model cannot produce anything else). The chosen sentences are joined as in
  ``extractive``.
- ``free``: the model writes the answer from numbered sources (today's prompt), under
  the same citation contract.

Every answer goes through :func:`verify`: citations of sources that do not exist are
dropped, and an answer with no citation left, or whose words do not overlap the sources
it cites, is rejected; ``ask()`` then falls back to the extractive answer (or "I don't
know" when there is no evidence).

The strategy is a setting per profile (``answer_strategy``); ``auto``, the default,
picks by model size (:func:`resolve`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from workbench.config import ModelSpec
from workbench.errors import BadRequest
from workbench.models.gateway import Gateway
from workbench.retrieval.evidence import Sentence, content_words

Strategy = Literal["extractive", "constrained", "free"]
STRATEGIES: tuple[str, ...] = ("extractive", "constrained", "free")
# A model is "tiny" when it runs in-process or has a small context: it answers by
# selecting evidence, with a repetition penalty and a short answer budget.
TINY_CONTEXT = 4096
TINY_MAX_TOKENS = 96
TINY_FREQUENCY_PENALTY = 0.5
# Below this evidence score (cosine + lexical bonus) the best sentence is not an answer.
MIN_EVIDENCE = 0.25
# A second sentence joins the answer when it scores within this margin of the best.
SECOND_MARGIN = 0.06
MAX_ANSWER_SENTENCES = 2
# Candidates shown to the model in ``constrained``.
CANDIDATES = 6
# Share of the answer's content words that must appear in the sources it cites.
MIN_OVERLAP = 0.35
# Not after a word character: "a[0]" in a quoted docstring is indexing, not a citation.
_CITE = re.compile(r"(?<!\w)\[(\d+(?:\s*,\s*\d+)*)\]")
_IDK = re.compile(r"\bi (?:don'?t|do not) know\b", re.I)
CONSTRAINED_PROMPT = (
    "Which numbered sentences answer the question? Reply with the ids of one or two "
    "sentences that answer it, best first.")


def is_tiny(spec: ModelSpec) -> bool:
    """In-process (embedded) models and small-context ones are treated as tiny."""
    return spec.provider == "embedded" or spec.context_window <= TINY_CONTEXT


def resolve(gw: Gateway, spec: ModelSpec, requested: str | None = None) -> Strategy:
    """The strategy for ``spec``: ``requested``, else the ``answer_strategy`` setting,
    else the active profile's; ``auto`` means ``extractive`` for tiny models (measured
    best on benchmarks/answers_bench.py) and ``free`` for the rest."""
    choice = (requested or gw.settings.answer_strategy
              or gw.settings.active_profile().answer_strategy)
    if choice == "auto":
        return "extractive" if is_tiny(spec) else "free"
    if choice not in STRATEGIES:
        raise BadRequest(f"unknown answer strategy {choice!r}; choose one of "
                         f"{', '.join(STRATEGIES)} or auto")
    return choice  # type: ignore[return-value]


def generation_params(spec: ModelSpec, max_tokens: int) -> dict[str, Any]:
    """Sampling parameters: greedy; tiny models also get a repetition penalty and a short
    answer budget (they loop on a sentence until max_tokens otherwise)."""
    if is_tiny(spec):
        return {"temperature": 0, "max_tokens": min(max_tokens, TINY_MAX_TOKENS),
                "frequency_penalty": TINY_FREQUENCY_PENALTY}
    return {"temperature": 0, "max_tokens": max_tokens}


# -- composing from evidence ------------------------------------------------------------
def choose(ranked: list[Sentence]) -> list[Sentence]:
    """The sentences an extractive answer quotes: the best, plus the next when it is
    nearly as good and says something else. Empty when even the best is too weak."""
    if not ranked or ranked[0].score < MIN_EVIDENCE:
        return []
    chosen = [ranked[0]]
    for s in ranked[1:]:
        if len(chosen) >= MAX_ANSWER_SENTENCES or s.score < ranked[0].score - SECOND_MARGIN:
            break
        if content_words(s.text) <= content_words(" ".join(c.text for c in chosen)):
            continue  # says nothing new
        chosen.append(s)
    return chosen


def compose(chosen: list[Sentence]) -> str:
    """Join sentences in reading order; each source's run ends with its ``[n]``; a
    heading is written once for a run of sentences under it."""
    ordered = sorted(chosen, key=lambda s: s.n)
    parts: list[str] = []
    for i, s in enumerate(ordered):
        prev = ordered[i - 1] if i else None
        same_run = prev is not None and prev.source == s.source and prev.heading == s.heading
        text = s.text if same_run else s.labelled()
        nxt = ordered[i + 1] if i + 1 < len(ordered) else None
        ends_run = nxt is None or nxt.source != s.source or nxt.heading != s.heading
        parts.append(f"{text} [{s.source}]" if ends_run else text)
    return " ".join(parts)


def constrained_messages(question: str, candidates: list[Sentence]
                         ) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """The prompt and ``response_format`` of the constrained strategy: candidates are
    shown as 1..len(candidates); the schema only admits those ids."""
    lines = [f"{i}. {s.labelled()}" for i, s in enumerate(candidates, 1)]
    user = "Sentences:\n" + "\n".join(lines) + f"\n\nQuestion: {question}"
    ids = list(range(1, len(candidates) + 1))
    schema = {"type": "object", "additionalProperties": False, "required": ["sentences"],
              "properties": {"sentences": {"type": "array", "minItems": 1,
                                           "maxItems": MAX_ANSWER_SENTENCES,
                                           "items": {"type": "integer", "enum": ids}}}}
    return ([{"role": "system", "content": CONSTRAINED_PROMPT},
             {"role": "user", "content": user}],
            {"type": "json_object", "schema": schema})


def parse_choice(text: str, candidates: list[Sentence]) -> list[Sentence]:
    """The candidates the model chose; ids that are not candidates are ignored (a provider
    without schema support may still answer with anything)."""
    try:
        data = json.loads(text)
    except ValueError:
        return []
    ids = data.get("sentences") if isinstance(data, dict) else None
    if not isinstance(ids, list):
        return []
    out: list[Sentence] = []
    for i in ids:
        valid = isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= len(candidates)
        if valid and candidates[i - 1] not in out:
            out.append(candidates[i - 1])
    return out[:MAX_ANSWER_SENTENCES]


# -- the verifier -----------------------------------------------------------------------
@dataclass
class Verdict:
    """What :func:`verify` found. ``text`` has fabricated citations removed."""

    ok: bool
    text: str
    cited: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    idk: bool = False
    overlap: float = 0.0
    reason: str = ""


def citations(text: str) -> list[int]:
    """Source numbers cited as ``[n]`` or ``[n, m]``, in order, without repeats."""
    out: list[int] = []
    for group in _CITE.findall(text):
        for n in group.split(","):
            if int(n) not in out:
                out.append(int(n))
    return out


def _strip_citations(text: str, keep: set[int]) -> str:
    def repl(m: re.Match[str]) -> str:
        kept = [n.strip() for n in m.group(1).split(",") if int(n) in keep]
        return f"[{', '.join(kept)}]" if kept else ""

    out = re.sub(r"[ \t]+([.,;:!?])", r"\1", _CITE.sub(repl, text))
    return re.sub(r"[ \t]{2,}", " ", out).strip()


def verify(text: str, sources: list[str], *, min_overlap: float = MIN_OVERLAP) -> Verdict:
    """Check an answer against the numbered ``sources`` it may cite (``sources[0]`` is
    [1]). Drops citations of sources that do not exist; rejects an answer without a
    valid citation or whose content words overlap its cited sources less than
    ``min_overlap``. An "I don't know" is accepted as such (``idk``)."""
    if _IDK.search(text):
        return Verdict(True, text.strip(), idk=True)
    found = citations(text)
    cited = [n for n in found if 1 <= n <= len(sources)]
    dropped = [n for n in found if n not in cited]
    clean = _strip_citations(text, set(cited)) if dropped else text.strip()
    if not cited:
        reason = ("cites only sources that do not exist: " + str(dropped) if dropped
                  else "cites no source")
        return Verdict(False, clean, [], dropped, reason=reason)
    words = content_words(_CITE.sub(" ", clean))
    if not words:
        return Verdict(False, clean, cited, dropped, reason="says nothing")
    evidence = content_words(" ".join(sources[n - 1] for n in cited))
    share = len(words & evidence) / len(words)
    if share < min_overlap:
        return Verdict(False, clean, cited, dropped, overlap=share,
                       reason=f"only {share:.0%} of its words are in the sources it cites")
    return Verdict(True, clean, cited, dropped, overlap=share)


__all__ = ["CANDIDATES", "MIN_EVIDENCE", "MIN_OVERLAP", "STRATEGIES", "Strategy", "Verdict",
           "choose", "citations", "compose", "constrained_messages", "generation_params",
           "is_tiny", "parse_choice", "resolve", "verify"]
