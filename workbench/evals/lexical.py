"""Non-LLM metrics, computed exactly as ragas' collections versions (same libraries, same
formulas; ``tests/evals`` checks they agree) without importing ragas, which takes
seconds: a pytest gate on ROUGE should not pay for the judge's imports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    value: float
    reason: str | None = None


class ExactMatch:
    name = "exact_match"

    async def ascore(self, reference: str, response: str) -> Result:
        return Result(float(reference == response))


class StringSimilarity:
    """1 - normalised Levenshtein distance (rapidfuzz)."""

    name = "string_similarity"

    async def ascore(self, reference: str, response: str) -> Result:
        from rapidfuzz.distance import Levenshtein

        return Result(float(1 - Levenshtein.normalized_distance(reference, response)))


class Bleu:
    """sacrebleu corpus BLEU over ". "-split sentences, scaled to 0-1 (as ragas)."""

    name = "bleu"

    async def ascore(self, reference: str, response: str) -> Result:
        from sacrebleu import corpus_bleu

        refs = [[r] for r in reference.split(". ")]
        return Result(float(corpus_bleu(response.split(". "), refs).score / 100))


class Rouge:
    """ROUGE-L F1 with stemming (rouge_score)."""

    name = "rouge"

    async def ascore(self, reference: str, response: str) -> Result:
        from rouge_score import rouge_scorer

        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
        return Result(float(scorer.score(reference, response)["rougeL"].fmeasure))


__all__ = ["Bleu", "ExactMatch", "Result", "Rouge", "StringSimilarity"]
