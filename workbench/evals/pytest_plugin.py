"""pytest plugin for evals (registered as ``workbench_evals`` through the ``pytest11``
entry point, so it is active wherever genai-workbench is installed).

    from workbench.evals import checks as c
    from workbench.evals.pytest_plugin import assert_eval

    def test_answer_names_the_command(eval_gateway):
        answer = eval_gateway.chat("How do I create a key?").text
        assert_eval(answer, checks=[c.not_contains("sk-"), c.pii_free(), c.length(max_words=120)])

    def test_golden_set_gate(eval_run):
        eval_run("sample", metrics=["rouge"], fail_under={"rouge": 0.3, "checks": 0.75})

Fixtures: ``eval_gateway`` (``workbench.connect()``), ``eval_judge`` (a :class:`Judge`
on it; ``--eval-judge-model`` picks the model), ``golden`` (loads datasets) and
``eval_run`` (evaluate + gate; a failed gate lists the failing samples and reasons).
``--eval-report DIR`` writes an HTML report per ``eval_run`` call.

The module imports nothing heavy: it is loaded in every pytest session.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from workbench.evals.assertions import EvalAssertionError, assert_eval, assert_run

if TYPE_CHECKING:
    from workbench.evals.datasets import GoldenDataset
    from workbench.evals.judge import Judge
    from workbench.evals.runs import Run
    from workbench.models.gateway import Gateway


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("workbench-evals", "genai-workbench evals")
    group.addoption("--eval-report", metavar="DIR", default=None,
                    help="Write an HTML report for every eval_run into DIR.")
    group.addoption("--eval-judge-model", metavar="MODEL", default=None,
                    help="Judge model for the eval_judge / eval_run fixtures "
                         "(default: the profile's chat model).")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "eval: an eval test (golden data, checks or a judge)")


@pytest.fixture
def eval_gateway() -> Iterator[Gateway]:
    """``workbench.connect()`` for this test (settings from the working directory)."""
    from workbench.api import connect

    gw = connect()
    yield gw
    gw.close()


@pytest.fixture
def eval_judge(eval_gateway: Gateway, request: pytest.FixtureRequest) -> Iterator[Judge]:
    """A judge through ``eval_gateway``; its short-lived key is revoked afterwards."""
    from workbench.evals.judge import Judge

    judge = Judge(eval_gateway, model=request.config.getoption("--eval-judge-model"))
    yield judge
    judge.close()


@pytest.fixture
def golden() -> Callable[[str | Path], GoldenDataset]:
    """``golden("sample")`` or ``golden("tests/data/qa.jsonl")``: a validated dataset."""
    from workbench.evals.datasets import load

    return load


@pytest.fixture
def eval_run(eval_gateway: Gateway, request: pytest.FixtureRequest) -> Callable[..., Run]:
    """``eval_run(dataset, target=None, metrics=..., checks=..., fail_under=..., allow_failed=0)``
    evaluates, stores the run, writes a report with ``--eval-report``, and asserts the
    thresholds (the message lists failing samples with reasons)."""
    from workbench.evals.judge import Judge
    from workbench.evals.runner import evaluate

    def run(dataset: Any, target: Any = None, *, metrics: str | Sequence[str] | None = None,
            checks: Sequence[Any] = (), fail_under: Mapping[str, float] | None = None,
            allow_failed: float = 0.0, **kw: Any) -> Run:
        judge = Judge(eval_gateway, model=request.config.getoption("--eval-judge-model"))
        try:
            result = evaluate(dataset, target, metrics=metrics, checks=checks,
                              gateway=eval_gateway, judge=judge, **kw)
        finally:
            judge.close()
        out_dir = request.config.getoption("--eval-report")
        if out_dir:
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
            result.write_report(str(Path(out_dir) / f"{safe}.html"), gate=fail_under,
                                allow_failed=allow_failed)
        if fail_under:
            assert_run(result, fail_under, allow_failed=allow_failed)
        return result

    return run


__all__ = ["EvalAssertionError", "assert_eval", "assert_run"]
