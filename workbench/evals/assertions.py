"""Assertion helpers for tests and notebooks: a failure says which checks or metrics
failed, on which samples, and why.

    assert_eval(answer, checks=[c.contains("keys create"), c.pii_free()])
    assert_eval(answer, question=q, contexts=ctx, judge=judge, metrics={"faithfulness": 0.5})
    assert_run(run, fail_under={"rouge": 0.3, "checks": 1.0})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from workbench.evals.checks import Check, CheckResult, Output, as_output

if TYPE_CHECKING:
    from workbench.evals.judge import Judge
    from workbench.evals.records import Score
    from workbench.evals.runs import GateResult, Run

MAX_LISTED = 10


class EvalAssertionError(AssertionError):
    """An eval assertion failed; ``results`` holds what was checked."""

    def __init__(self, message: str, results: Sequence[Any] = ()):
        super().__init__(message)
        self.results = list(results)


def _preview(text: str, n: int = 80) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= n else flat[:n - 1] + "…")


def assert_eval(answer: Any, checks: Sequence[Check] = (), *, question: str | None = None,
                reference: str | None = None, contexts: Sequence[str] | None = None,
                judge: Judge | None = None, metrics: Mapping[str, float] | None = None
                ) -> list[CheckResult]:
    """Run ``checks`` on ``answer`` (a string, ChatResult, Answer or Output) and, with a
    ``judge``, the judge ``metrics`` (``{name: minimum}``). Raises
    :class:`EvalAssertionError` listing every failure with its reason; returns the check
    results when all pass."""
    out = as_output(answer)
    if question is not None or reference is not None or contexts is not None:
        out = Output(out.answer, tuple(contexts if contexts is not None else out.contexts),
                     out.latency_ms, out.cost_usd, question or out.question,
                     reference or out.reference, out.facts)
    results = [c(out) for c in checks]
    problems = [f"  FAIL {r.name}: {r.reason}" for r in results if not r.passed]
    scores: list[Score] = []
    if metrics:
        if judge is None:
            raise ValueError("assert_eval(metrics=...) needs judge=Judge(...) (pytest: the "
                             "`eval_judge` fixture)")
        if not out.question:
            raise ValueError("assert_eval(metrics=...) needs question=...")
        scored = judge.score_one(out.question, out.answer, contexts=out.contexts,
                                 reference=out.reference, metrics=list(metrics))
        scores = list(scored.values())
        for name, minimum in metrics.items():
            s = scored[name]
            if s.status != "ok":
                problems.append(f"  FAIL {name}: {s.status} ({s.reason})")
            elif s.value is not None and s.value < minimum:
                problems.append(f"  FAIL {name}: {s.value:.3f} < {minimum:g}")
    if problems:
        total = len(results) + len(metrics or {})
        raise EvalAssertionError(
            f"{len(problems)} of {total} eval assertion(s) failed for answer "
            f"{_preview(out.answer)}:\n" + "\n".join(problems), [*results, *scores])
    return results


def _failing_lines(run: Run, gate: GateResult) -> list[str]:
    questions = {r.sample_id: r.question for r in run.samples}
    lines = []
    for s in gate.failing[:MAX_LISTED]:
        what = (f"{s.value:.3f}" if s.status == "ok" and s.kind != "check" else
                "check failed" if s.kind == "check" else s.status)
        lines.append(f"  - {s.sample_id} [{s.metric}] {what}: {s.reason or ''} "
                     f"(question: {_preview(questions.get(s.sample_id, ''), 60)})")
    if len(gate.failing) > MAX_LISTED:
        lines.append(f"  ... and {len(gate.failing) - MAX_LISTED} more")
    return lines


def assert_run(run: Run, fail_under: Mapping[str, float], *, allow_failed: float = 0.0) -> GateResult:
    """Gate a run on thresholds (see :meth:`Run.gate`); on failure the message lists the
    failing thresholds and the samples behind them with reasons."""
    gate = run.gate(fail_under, allow_failed=allow_failed)
    if not gate.passed:
        raise EvalAssertionError(
            f"eval run {run.label} on {run.dataset_ref} failed its gate:\n"
            + "\n".join(f"  {line}" for line in gate.lines)
            + "\nfailing samples:\n" + "\n".join(_failing_lines(run, gate)), gate.failing)
    return gate


__all__ = ["EvalAssertionError", "assert_eval", "assert_run"]
