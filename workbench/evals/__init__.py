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

import importlib
from typing import TYPE_CHECKING, Any

from workbench.lazy import lazy_exports

# public name -> module that defines it. Loaded on first use (PEP 562): the pytest plugin
# imports this package in every pytest session, which must not pay for SQLAlchemy.
_EXPORTS: dict[str, str] = {
    "Check": "checks", "CheckResult": "checks", "Output": "checks",
    "EvalAssertionError": "assertions", "assert_eval": "assertions", "assert_run": "assertions",
    "DatasetError": "datasets", "GoldenDataset": "datasets", "GoldenSample": "datasets",
    "from_answers": "datasets", "from_feedback": "datasets", "from_retrieval": "datasets",
    "from_rows": "datasets", "load": "datasets", "sample_path": "datasets",
    "Judge": "judge", "agreement": "judge",
    "DEFAULT_METRICS": "metrics", "REGISTRY": "metrics",
    "SampleRecord": "records", "Score": "records",
    "evaluate": "runner",
    "Comparison": "runs", "GateResult": "runs", "Run": "runs", "RunStore": "runs",
    "compare": "runs",
    "Response": "targets", "Target": "targets", "chat_target": "targets",
    "rag_target": "targets", "target": "targets",
}

if TYPE_CHECKING:
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
    from workbench.models.gateway import Gateway


_exported = lazy_exports(__name__, _EXPORTS, globals(), prefix="workbench.evals.")


def __getattr__(name: str) -> Any:
    if name == "checks":
        return importlib.import_module("workbench.evals.checks")
    return _exported(name)


def load_run(gateway: Gateway, ref: str) -> Run:
    """A stored run by id, id prefix, name, ``latest`` or ``previous``."""
    from workbench.evals.runs import RunStore

    return RunStore(gateway.store).load(ref)


def list_runs(gateway: Gateway, limit: int = 20) -> list[dict[str, Any]]:
    """The latest ``limit`` stored runs, newest first (id, name, when, summary)."""
    from workbench.evals.runs import RunStore

    return RunStore(gateway.store).list(limit)


__all__ = ["Check", "CheckResult", "Comparison", "DEFAULT_METRICS", "DatasetError",
    "EvalAssertionError", "GateResult", "GoldenDataset", "GoldenSample", "Judge", "Output",
    "REGISTRY", "Response", "Run", "RunStore", "SampleRecord", "Score", "Target", "agreement",
    "assert_eval", "assert_run", "chat_target", "checks", "compare", "evaluate", "from_answers",
    "from_feedback", "from_retrieval", "from_rows", "list_runs", "load", "load_run", "rag_target",
    "sample_path", "target"]


def __dir__() -> list[str]:
    return __all__
