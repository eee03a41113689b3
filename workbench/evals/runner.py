"""``evaluate()``: golden dataset -> target -> checks -> metrics -> a stored :class:`Run`.

    >>> from workbench import evals
    >>> run = evals.evaluate("sample", target=my_rag, metrics=["faithfulness", "rouge"])
    >>> run.gate({"faithfulness": 0.7}).passed

One pass per stage, so each is cheap to reason about: the target answers every question
(failures recorded per sample), the dataset's and the caller's checks run on each answer,
then the judge scores every (sample, metric) through the Gateway with its cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.evals.checks import Check, Output, from_spec
from workbench.evals.datasets import GoldenDataset, GoldenSample, load
from workbench.evals.metrics import resolve
from workbench.evals.records import SampleRecord, Score, clean_reason
from workbench.evals.runs import Run, RunStore, new_run_id, order_scores
from workbench.evals.targets import Target, as_target

if TYPE_CHECKING:
    from workbench.evals.judge import Judge
    from workbench.models.gateway import Gateway

Progress = Callable[[str, int, int], None]


def _mask_error(exc: BaseException) -> str:
    from workbench.errors import WorkbenchError

    msg = exc.message if isinstance(exc, WorkbenchError) else str(exc)
    return clean_reason(f"{type(exc).__name__}: {msg}")


def respond(samples: Sequence[GoldenSample], tgt: Target | None,
            progress: Progress | None = None) -> list[SampleRecord]:
    """The target's answer to each golden question (or the recorded one)."""
    out: list[SampleRecord] = []
    for i, s in enumerate(samples, 1):
        rec = SampleRecord(s.id, s.question, reference=s.reference, tags=list(s.tags))
        if tgt is None:
            if s.answer is None:
                rec.error = ("no recorded answer in the dataset; pass a target "
                             "(e.g. --target rag) to generate one")
            else:
                rec.answer, rec.contexts = s.answer, list(s.contexts or [])
        else:
            try:
                resp = tgt(s.question)
            except Exception as exc:  # noqa: BLE001 - a failing target is recorded per sample
                rec.error = _mask_error(exc)
            else:
                rec.answer, rec.contexts = resp.answer, list(resp.contexts)
                rec.latency_ms, rec.cost_usd, rec.trace_id = (resp.latency_ms, resp.cost_usd,
                                                              resp.trace_id)
                rec.facts = resp.facts
        out.append(rec)
        if progress and tgt is not None:
            progress("answer", i, len(samples))
    return out


def run_checks(records: Sequence[SampleRecord], samples: Sequence[GoldenSample],
               checks: Sequence[Check], gateway: Gateway | None) -> list[Score]:
    scores: list[Score] = []
    for rec, sample in zip(records, samples, strict=True):
        row_checks = list(checks) + [from_spec(spec, gateway) for spec in sample.checks]
        for c in row_checks:
            metric = f"check:{c.name}"
            if rec.error is not None or rec.answer is None:
                scores.append(Score(rec.sample_id, metric, "check", "skipped",
                                    reason="no answer to check"))
                continue
            out = Output(rec.answer, tuple(rec.contexts), rec.latency_ms, rec.cost_usd,
                         rec.question, rec.reference, rec.facts)
            try:
                res = c(out)
            except Exception as exc:  # noqa: BLE001 - e.g. the embedder failed; per row
                scores.append(Score(rec.sample_id, metric, "check", "failed",
                                    reason=_mask_error(exc)))
                continue
            scores.append(Score(rec.sample_id, metric, "check", "ok", value=res.score,
                                reason=res.reason, passed=res.passed))
    return scores


def _usage(scores: Sequence[Score], records: Sequence[SampleRecord]) -> dict[str, Any]:
    judged = [s for s in scores if s.kind == "judge"]
    return {
        "judge_calls": sum(s.calls for s in judged),
        "judge_embed_calls": sum(s.embed_calls for s in judged),
        "judge_prompt_tokens": sum(s.prompt_tokens for s in judged),
        "judge_completion_tokens": sum(s.completion_tokens for s in judged),
        "cache_hits": sum(s.cached for s in judged),
        "calls_saved_by_cache": sum(s.saved_calls for s in judged),
        "failed": sum(s.status == "failed" for s in scores),
        "skipped": sum(s.status == "skipped" for s in scores),
        "target_failures": sum(r.error is not None for r in records),
        "target_cost_usd": sum(r.cost_usd or 0.0 for r in records),
    }


def evaluate(dataset: GoldenDataset | str | Path, target: Any = None, *,
             metrics: str | Sequence[str] | None = None, checks: Sequence[Check] = (),
             gateway: Gateway | None = None, judge: Judge | None = None,
             judge_model: str | None = None, judge_options: Mapping[str, Any] | None = None,
             name: str | None = None, config: Mapping[str, Any] | None = None,
             save: bool = True, progress: Progress | None = None) -> Run:
    """Evaluate ``target`` (a callable ``question -> answer``, a :class:`Target`, or None
    for the answers recorded in the dataset) on ``dataset`` and store the run.

    ``metrics``: names from :data:`workbench.evals.metrics.REGISTRY` (default: the four
    RAG judge metrics). ``checks``: deterministic checks for every sample, on top of the
    dataset's own. ``judge``: a configured :class:`Judge` (else one is made for the
    gateway and ``judge_model``, and closed at the end). ``config``: extra pipeline facts
    to record (merged into ``config["target"]``).
    """
    from workbench.evals.judge import Judge

    started = time.perf_counter()
    ds = dataset if isinstance(dataset, GoldenDataset) else load(dataset)
    specs = resolve(metrics)
    own_gateway = gateway is None and judge is None
    if gateway is None:
        from workbench.api import connect

        gateway = judge.gateway if judge is not None else connect()
    tgt = as_target(target)
    from workbench.observability import tracing

    try:
        with tracing.traffic("eval"):  # not product traffic: out of the product metrics
            records = respond(ds.samples, tgt, progress)
        t_answered = time.perf_counter()
        scores = run_checks(records, ds.samples, checks, gateway)
        own_judge = judge is None
        if judge is None:
            judge = Judge(gateway, model=judge_model,
                          options={k: dict(v) for k, v in (judge_options or {}).items()})
        try:
            with tracing.traffic("judge"):
                scores += (judge.score(records, [s.name for s in specs], progress)
                           if specs else [])
            # Only a run that asked a model has a judge worth describing (and warning about).
            judge_info = judge.describe() if any(s.uses_model for s in specs) else {"model": None}
        finally:
            if own_judge:
                judge.close()
        target_cfg = dict(tgt.config) if tgt is not None else {"kind": "recorded"}
        target_cfg.update(config or {})
        run = Run(
            id=new_run_id(), name=name, dataset=ds.name, dataset_version=ds.version,
            dataset_fingerprint=ds.fingerprint,
            config={"target": target_cfg, "judge": judge_info,
                    "metrics": [s.name for s in specs],
                    "checks": [c.name for c in checks]},
            samples=records, scores=order_scores(scores, [r.sample_id for r in records],
                                                  [s.name for s in specs]))
        run.usage = {**_usage(run.scores, records),
                     "target_s": round(t_answered - started, 3),
                     "wall_s": round(time.perf_counter() - started, 3)}
        if save:
            RunStore(gateway.store, gateway.guardrails).save(run)
        return run
    finally:
        if own_gateway:
            gateway.close()


__all__ = ["evaluate", "respond", "run_checks"]
