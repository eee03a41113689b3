"""The eval step of ``workbench tour``: the shipped golden set with its checks and a
lexical metric (seconds, no judge calls), gated like a CI job would gate it."""

from __future__ import annotations

from typing import Any

from workbench.models.gateway import Gateway

TOUR_GATE = {"rouge": 0.4, "checks": 0.75}


def tour_step(gw: Gateway) -> dict[str, Any]:
    """Returns ``{"title", "ok", "lines", "data"}`` like the other tour steps."""
    from workbench.evals.runner import evaluate

    run = evaluate("sample", metrics=["rouge"], gateway=gw, name="tour")
    gate = run.gate(TOUR_GATE)
    lines = [f"evaluated {run.dataset_ref}: {len(run.samples)} recorded answers, "
             f"checks from the dataset + ROUGE-L (run {run.id})"]
    for metric, s in run.summary().items():
        what = "pass rate" if s.kind == "check" else "mean"
        lines.append(f"  {metric}: {what} {s.headline:.3f} over {s.n_ok} score(s)"
                     if s.headline is not None else f"  {metric}: nothing scored")
    lines += [f"  check failed on {s.sample_id}: {s.reason}" for s in run.failed_checks()]
    lines += [f"gate {'passed' if gate.passed else 'FAILED'}:"] + [f"  {x}" for x in gate.lines]
    lines.append("next: `workbench eval sample --report eval.html` adds the LLM judge "
                 "(slow on the embedded model; cached on re-runs)")
    return {"title": "Evals: a golden set, checks and a gate", "ok": gate.passed,
            "lines": lines, "data": {"run_id": run.id, "gate": gate.lines}}


__all__ = ["TOUR_GATE", "tour_step"]
