"""How a team gates its GenAI feature in CI: checks on single answers, and a golden set
with thresholds. The fixtures come from the workbench pytest plugin (entry point
``workbench_evals``); copy this file into your own repo's tests.

Deterministic rungs (checks, lexical metrics) make reliable gates anywhere. Judge metrics
(``metrics=["faithfulness", ...]``) need a strong judge model to be worth gating on:
``pytest --eval-judge-model gpt-4o-mini`` with the openai profile.
"""

from __future__ import annotations

from typing import Any

from workbench.evals import checks as c
from workbench.evals.pytest_plugin import assert_eval


def my_feature(question: str) -> tuple[str, list[str]]:
    """Stand-in for your RAG pipeline: ``question -> (answer, contexts)``."""
    return ("Run `workbench keys create --team <team>`; the key is printed once.",
            ["The key is printed once. The store keeps only its SHA-256."])


def test_single_answer_passes_its_checks() -> None:
    answer, _ = my_feature("How do I create a key?")
    assert_eval(answer, checks=[
        c.contains("keys create"),
        c.not_contains("sk-") & c.pii_free(),
        c.length(max_words=60),
        c.no_refusal(),
    ])


def test_golden_set_meets_its_thresholds(eval_run: Any) -> None:
    run = eval_run("sample", metrics=["rouge", "string_similarity"],
                   fail_under={"rouge": 0.4, "checks": 0.75})
    assert run.summary()["rouge"].n_failed == 0
