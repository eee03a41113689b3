"""Evals: the testing ladder for GenAI, exact -> pattern -> schema -> semantic ->
LLM-as-judge, on versioned golden datasets, from notebooks, the CLI and pytest.

    >>> from workbench import evals
    >>> from workbench.evals import checks as c
    >>> evals.assert_eval("Run `workbench keys create`.", checks=[c.contains("keys create")])
    >>> run = evals.evaluate("sample", target=evals.rag_target(gw), metrics=["faithfulness"])
    >>> run.gate({"faithfulness": 0.7})          # thresholds
    >>> evals.compare(evals.load_run(gw, "previous"), run)   # what regressed, and why

Every judge call goes through the Gateway (governed, in the ledger, traced) and through
the judge cache, so an unchanged re-run makes no model calls. The embedded judge is tiny:
it shows the mechanics offline; switch the profile for scores you can trust.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.evals import checks
from workbench.evals.assertions import EvalAssertionError, assert_eval, assert_run
from workbench.evals.checks import Check, CheckResult, Output
from workbench.evals.datasets import (
    DatasetError,
    GoldenDataset,
    GoldenSample,
    from_answers,
    from_feedback,
    from_retrieval,
    from_rows,
    load,
    sample_path,
)
from workbench.evals.judge import Judge, agreement
from workbench.evals.metrics import DEFAULT_METRICS, REGISTRY
from workbench.evals.records import SampleRecord, Score
from workbench.evals.runner import evaluate
from workbench.evals.runs import Comparison, GateResult, Run, RunStore, compare
from workbench.evals.targets import Response, Target, chat_target, rag_target, target

if TYPE_CHECKING:
    from workbench.models.gateway import Gateway


def load_run(gateway: Gateway, ref: str) -> Run:
    """A stored run by id, id prefix, name, ``latest`` or ``previous``."""
    return RunStore(gateway.store).load(ref)


def list_runs(gateway: Gateway, limit: int = 20) -> list[dict[str, Any]]:
    return RunStore(gateway.store).list(limit)


__all__ = [
    "DEFAULT_METRICS", "REGISTRY", "Check", "CheckResult", "Comparison", "DatasetError",
    "EvalAssertionError", "GateResult", "GoldenDataset", "GoldenSample", "Judge", "Output",
    "Response", "Run", "RunStore", "SampleRecord", "Score", "Target", "agreement",
    "assert_eval", "assert_run", "chat_target", "checks", "compare", "evaluate", "from_answers",
    "from_feedback", "from_retrieval", "from_rows", "list_runs", "load", "load_run",
    "rag_target", "sample_path", "target",
]
