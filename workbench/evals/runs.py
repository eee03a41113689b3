"""Eval runs: what was scored (dataset version, pipeline config, judge) and every score,
stored in the SQL store; gates (thresholds) and run-vs-run comparison.

A run's ``config`` is ``{"target": {...}, "judge": {...}, "metrics": [...]}``; the
target part (model, prompt hash, chunking, retrieval mode) is what :func:`compare` diffs
to say *why* two runs differ.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select

from workbench.errors import BadRequest, NotFound
from workbench.evals.records import SampleRecord, Score
from workbench.evals.schema import eval_runs, eval_samples, eval_scores

if TYPE_CHECKING:
    from workbench.guardrails import Guardrails
    from workbench.store import Store

CHECKS = "checks"  # the aggregate of every check on every sample


@dataclass
class MetricSummary:
    metric: str
    kind: str
    n: int
    n_ok: int
    n_failed: int
    n_skipped: int
    mean: float | None
    minimum: float | None
    maximum: float | None
    pass_rate: float | None = None  # checks: share of checks that passed

    @property
    def failed_rate(self) -> float:
        attempted = self.n_ok + self.n_failed
        return self.n_failed / attempted if attempted else 0.0

    @property
    def headline(self) -> float | None:
        """What a threshold compares with: the pass rate for checks, else the mean."""
        return self.pass_rate if self.kind == "check" else self.mean

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "failed_rate": self.failed_rate}


def _summarise(metric: str, scores: Sequence[Score]) -> MetricSummary:
    ok = [s.value for s in scores if s.status == "ok" and s.value is not None]
    kind = scores[0].kind if scores else "metric"
    passed = [s.passed for s in scores if s.kind == "check" and s.status == "ok"]
    return MetricSummary(
        metric=metric, kind=kind, n=len(scores), n_ok=len(ok),
        n_failed=sum(s.status == "failed" for s in scores),
        n_skipped=sum(s.status == "skipped" for s in scores),
        mean=sum(ok) / len(ok) if ok else None, minimum=min(ok) if ok else None,
        maximum=max(ok) if ok else None,
        pass_rate=(sum(bool(p) for p in passed) / len(passed)) if passed else None)


@dataclass
class GateResult:
    """Thresholds applied to a run: ``passed`` and one line per threshold."""

    passed: bool
    lines: list[str]
    failing: list[Score] = field(default_factory=list)
    per_metric: dict[str, bool] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return "\n".join(self.lines)


@dataclass
class Run:
    """One evaluation: the samples, their responses and every score."""

    id: str
    dataset: str
    dataset_version: str
    dataset_fingerprint: str
    config: dict[str, Any]
    samples: list[SampleRecord]
    scores: list[Score]
    name: str | None = None
    created_at: float = field(default_factory=time.time)
    usage: dict[str, Any] = field(default_factory=dict)

    # -- views ---------------------------------------------------------------------------
    def metrics(self) -> list[str]:
        names = list(dict.fromkeys(s.metric for s in self.scores if s.kind != "check"))
        return names + ([CHECKS] if any(s.kind == "check" for s in self.scores) else [])

    def scores_of(self, metric: str) -> list[Score]:
        if metric == CHECKS:
            return [s for s in self.scores if s.kind == "check"]
        return [s for s in self.scores if s.metric == metric]

    def summary(self) -> dict[str, MetricSummary]:
        out = {m: _summarise(m, self.scores_of(m)) for m in self.metrics()}
        if CHECKS in out:
            out[CHECKS].kind = "check"
        return out

    def values(self, metric: str) -> dict[str, float]:
        """``sample_id -> value`` for the samples this metric scored."""
        return {s.sample_id: float(s.value) for s in self.scores_of(metric)
                if s.status == "ok" and s.value is not None}

    def by_tag(self) -> dict[str, dict[str, MetricSummary]]:
        tags: dict[str, set[str]] = {}
        for rec in self.samples:
            for t in rec.tags or ["(untagged)"]:
                tags.setdefault(t, set()).add(rec.sample_id)
        out: dict[str, dict[str, MetricSummary]] = {}
        for tag, ids in sorted(tags.items()):
            out[tag] = {m: _summarise(m, [s for s in self.scores_of(m) if s.sample_id in ids])
                        for m in self.metrics()}
        return out

    def failures(self) -> list[Score]:
        """Scores that could not be computed (judge or target failures), with reasons."""
        return [s for s in self.scores if s.status == "failed"]

    def failed_checks(self) -> list[Score]:
        return [s for s in self.scores if s.kind == "check" and s.status == "ok" and not s.passed]

    def sample(self, sample_id: str) -> SampleRecord:
        for rec in self.samples:
            if rec.sample_id == sample_id:
                return rec
        raise NotFound(f"run {self.id} has no sample {sample_id!r}")

    @property
    def label(self) -> str:
        return f"{self.id}" + (f" ({self.name})" if self.name else "")

    @property
    def dataset_ref(self) -> str:
        return f"{self.dataset}@{self.dataset_version}#{self.dataset_fingerprint}"

    # -- gating --------------------------------------------------------------------------
    def gate(self, thresholds: Mapping[str, float], *, allow_failed: float = 0.0) -> GateResult:
        """Each ``metric: minimum`` must hold: the mean (pass rate for ``checks``) over
        the scored samples is at least the minimum, at least one sample was scored, and
        no more than ``allow_failed`` (a fraction) of the attempted samples failed."""
        summary = self.summary()
        unknown = [m for m in thresholds if m not in summary]
        if unknown:
            raise BadRequest(f"cannot gate on {unknown}: this run has {', '.join(summary) or 'no metrics'}")
        lines, failing, per_metric = [], [], {}
        for metric, minimum in thresholds.items():
            s = summary[metric]
            value = s.headline
            problems = []
            if value is None:
                problems.append("no sample was scored")
            elif value < minimum:
                problems.append(f"{value:.3f} < {minimum:g}")
            if s.failed_rate > allow_failed:
                problems.append(f"{s.n_failed} failed sample(s) ({s.failed_rate:.0%} > allowed "
                                f"{allow_failed:.0%})")
            what = "pass rate" if s.kind == "check" else "mean"
            shown = "-" if value is None else f"{value:.3f}"
            per_metric[metric] = not problems
            if problems:
                lines.append(f"FAIL {metric}: {what} {shown} (min {minimum:g}): " + "; ".join(problems))
                failing += [sc for sc in self.scores_of(metric)
                            if sc.status == "failed" or (sc.kind == "check" and not sc.passed)
                            or (sc.value is not None and sc.kind != "check" and sc.value < minimum)]
            else:
                lines.append(f"ok   {metric}: {what} {shown} >= {minimum:g} "
                             f"({s.n_ok} scored, {s.n_failed} failed, {s.n_skipped} skipped)")
        return GateResult(all(per_metric.values()), lines, failing, per_metric)

    # -- output --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "created_at": self.created_at,
            "dataset": {"name": self.dataset, "version": self.dataset_version,
                        "fingerprint": self.dataset_fingerprint},
            "config": self.config, "usage": self.usage,
            "summary": {m: s.to_dict() for m, s in self.summary().items()},
            "samples": [r.to_dict() for r in self.samples],
            "scores": [s.to_dict() for s in self.scores],
        }

    def to_markdown(self, **kw: Any) -> str:
        from workbench.evals.report import run_markdown

        return run_markdown(self, **kw)

    def to_html(self, **kw: Any) -> str:
        from workbench.evals.report import run_html

        return run_html(self, **kw)

    def write_report(self, path: str, **kw: Any) -> str:
        from workbench.evals.report import write_report

        return str(write_report(self, path, **kw))

    def to_pandas(self) -> Any:
        """One row per sample, one column per metric (notebooks)."""
        import pandas as pd

        rows: dict[str, dict[str, Any]] = {
            r.sample_id: {"sample_id": r.sample_id, "question": r.question, "answer": r.answer,
                          "tags": ",".join(r.tags)} for r in self.samples}
        for s in self.scores:
            if s.kind != "check":
                rows[s.sample_id][s.metric] = s.value
        return pd.DataFrame(list(rows.values()))

    def __repr__(self) -> str:
        parts = [f"{m}={s.headline:.3f}" if s.headline is not None else f"{m}=-"
                 for m, s in self.summary().items()]
        return f"Run({self.label}, {self.dataset_ref}, {len(self.samples)} samples, {', '.join(parts)})"

    def _repr_html_(self) -> str:
        from workbench.evals.report import run_fragment

        return run_fragment(self)


# -- storage ---------------------------------------------------------------------------
def new_run_id() -> str:
    return "run_" + time.strftime("%Y%m%d%H%M%S") + "_" + secrets.token_hex(3)


class RunStore:
    """Runs in the SQL store. Text is PII-masked on the way in (with ``guardrails``, else
    the redaction policy of the settings)."""

    def __init__(self, store: Store, guardrails: Guardrails | None = None):
        self.store = store
        self.guardrails = guardrails  # None: the settings' policy (default_guardrails)

    def save(self, run: Run) -> Run:
        from workbench.guardrails import default_guardrails

        g = self.guardrails or default_guardrails()

        def m(text: str | None) -> str | None:
            return None if text is None else g.mask(text).text

        summary = {k: v.to_dict() for k, v in run.summary().items()}
        with self.store.write() as conn:
            conn.execute(delete(eval_scores).where(eval_scores.c.run_id == run.id))
            conn.execute(delete(eval_samples).where(eval_samples.c.run_id == run.id))
            conn.execute(delete(eval_runs).where(eval_runs.c.id == run.id))
            conn.execute(insert(eval_runs).values(
                id=run.id, name=run.name, created_at=run.created_at, dataset=run.dataset,
                dataset_version=run.dataset_version, dataset_fingerprint=run.dataset_fingerprint,
                n_samples=len(run.samples), config=run.config, summary=summary, usage=run.usage))
            if run.samples:
                conn.execute(insert(eval_samples), [{
                    "run_id": run.id, "sample_id": r.sample_id, "position": i,
                    "question": m(r.question), "answer": m(r.answer), "reference": m(r.reference),
                    "contexts": [m(c) for c in r.contexts], "tags": list(r.tags),
                    "latency_ms": r.latency_ms, "cost_usd": r.cost_usd, "trace_id": r.trace_id,
                    "error": m(r.error)} for i, r in enumerate(run.samples)])
            if run.scores:
                conn.execute(insert(eval_scores), [{
                    "run_id": run.id, "sample_id": s.sample_id, "metric": s.metric,
                    "kind": s.kind, "status": s.status, "value": s.value,
                    "passed": None if s.passed is None else int(s.passed), "reason": m(s.reason),
                    "cached": int(s.cached), "calls": s.calls, "embed_calls": s.embed_calls,
                    "prompt_tokens": s.prompt_tokens,
                    "completion_tokens": s.completion_tokens, "latency_ms": s.latency_ms,
                    "trace_id": s.trace_id} for s in run.scores])
        return run

    def _resolve_id(self, ref: str) -> str:
        with self.store.read() as conn:
            if ref in ("latest", "previous"):
                rows = conn.execute(select(eval_runs.c.id).order_by(
                    eval_runs.c.created_at.desc()).limit(2)).all()
                idx = 0 if ref == "latest" else 1
                if len(rows) <= idx:
                    raise NotFound(f"there is no {ref} run; run `workbench eval DATASET` first")
                return str(rows[idx][0])
            exact = conn.execute(select(eval_runs.c.id).where(eval_runs.c.id == ref)).first()
            if exact:
                return str(exact[0])
            named = conn.execute(select(eval_runs.c.id).where(eval_runs.c.name == ref)
                                 .order_by(eval_runs.c.created_at.desc())).first()
            if named:
                return str(named[0])  # the newest run with that name
            matches = conn.execute(select(eval_runs.c.id).where(
                eval_runs.c.id.startswith(ref, autoescape=True))).all()
        if not matches:
            raise NotFound(f"no eval run {ref!r}; see `workbench eval runs`")
        if len(matches) > 1:
            raise BadRequest(f"{ref!r} matches {len(matches)} runs; give more of the id")
        return str(matches[0][0])

    def load(self, ref: str) -> Run:
        """A run by id, unique id prefix, name (the newest with it), ``latest`` or
        ``previous``."""
        run_id = self._resolve_id(ref)
        with self.store.read() as conn:
            row = conn.execute(select(eval_runs).where(eval_runs.c.id == run_id)).one()
            samples = conn.execute(select(eval_samples).where(eval_samples.c.run_id == run_id)
                                   .order_by(eval_samples.c.position)).all()
            scores = conn.execute(select(eval_scores).where(eval_scores.c.run_id == run_id)).all()
        return Run(
            id=row.id, name=row.name, created_at=row.created_at, dataset=row.dataset,
            dataset_version=row.dataset_version, dataset_fingerprint=row.dataset_fingerprint,
            config=dict(row.config), usage=dict(row.usage),
            samples=[SampleRecord(sample_id=r.sample_id, question=r.question, answer=r.answer,
                                  contexts=list(r.contexts or []), reference=r.reference,
                                  tags=list(r.tags or []), latency_ms=r.latency_ms,
                                  cost_usd=r.cost_usd, trace_id=r.trace_id, error=r.error)
                     for r in samples],
            scores=order_scores([Score(sample_id=s.sample_id, metric=s.metric, kind=s.kind,
                                   status=s.status, value=s.value, reason=s.reason,
                                   passed=None if s.passed is None else bool(s.passed),
                                   cached=bool(s.cached), calls=s.calls,
                                   embed_calls=s.embed_calls,
                                   prompt_tokens=s.prompt_tokens,
                                   completion_tokens=s.completion_tokens,
                                   latency_ms=s.latency_ms, trace_id=s.trace_id)
                             for s in scores], [r.sample_id for r in samples],
                            list((row.config or {}).get("metrics") or [])))

    def list(self, limit: int = 20) -> list[dict[str, Any]]:
        with self.store.read() as conn:
            rows = conn.execute(select(eval_runs).order_by(eval_runs.c.created_at.desc())
                                .limit(limit)).all()
        out = []
        for r in rows:
            summ = r.summary or {}
            out.append({
                "id": r.id, "name": r.name, "created_at": r.created_at,
                "dataset": f"{r.dataset}@{r.dataset_version}", "samples": r.n_samples,
                "target": (r.config.get("target") or {}).get("kind"),
                **{m: (s.get("pass_rate") if s.get("kind") == "check" else s.get("mean"))
                   for m, s in summ.items()},
            })
        return out


def order_scores(scores: Iterable[Score], sample_order: Sequence[str],
                 metric_order: Sequence[str]) -> list[Score]:
    """Metrics in the order asked, then samples in dataset order; checks last, per sample."""
    pos = {sid: i for i, sid in enumerate(sample_order)}
    mpos = {m: i for i, m in enumerate(metric_order)}
    return sorted(scores, key=lambda s: (s.kind == "check", mpos.get(s.metric, len(mpos)),
                                         pos.get(s.sample_id, 0), s.metric))


# -- comparison ------------------------------------------------------------------------
@dataclass
class MetricDelta:
    metric: str
    mean_a: float | None
    mean_b: float | None
    n_a: int
    n_b: int
    failed_a: int
    failed_b: int
    tolerance: float

    @property
    def delta(self) -> float | None:
        if self.mean_a is None or self.mean_b is None:
            return None
        return self.mean_b - self.mean_a

    @property
    def regressed(self) -> bool:
        d = self.delta
        return (d is not None and d < -self.tolerance) or self.failed_b > self.failed_a

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "mean_a": self.mean_a, "mean_b": self.mean_b,
                "delta": self.delta, "n_a": self.n_a, "n_b": self.n_b,
                "failed_a": self.failed_a, "failed_b": self.failed_b, "regressed": self.regressed}


@dataclass
class SampleChange:
    sample_id: str
    metric: str
    before: str
    after: str
    delta: float | None
    question: str
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def _show(s: Score | None) -> str:
    if s is None:
        return "absent"
    if s.status != "ok":
        return s.status
    if s.kind == "check":
        return "pass" if s.passed else "fail"
    return f"{s.value:.3f}"


_IGNORED_CONFIG = ("judge.key_id", "judge.concurrency", "judge.timeout_s")


@dataclass
class Comparison:
    """Run B against run A (the baseline): per-metric deltas, the samples that regressed
    or improved, what changed in the config, and judge agreement when only the judge did."""

    run_a: Run
    run_b: Run
    deltas: list[MetricDelta]
    regressions: list[SampleChange]
    improvements: list[SampleChange]
    config_changes: dict[str, tuple[Any, Any]]
    tolerance: float
    judge_agreement: dict[str, dict[str, float | int]] = field(default_factory=dict)

    @property
    def same_dataset(self) -> bool:
        return self.run_a.dataset_fingerprint == self.run_b.dataset_fingerprint

    @property
    def regressed(self) -> bool:
        return bool(self.regressions) or any(d.regressed for d in self.deltas)

    @property
    def prompt_change(self) -> str | None:
        """"the prompt changed: rag.answer@a -> rag.answer@b" when the two runs answered
        with different registry prompt versions (None when they did not, or did not say)."""
        def ref(run: Run) -> str | None:
            p = (run.config.get("target") or {}).get("prompt") or {}
            return f"{p.get('name')}@{p.get('version')}" if p else None

        a, b = ref(self.run_a), ref(self.run_b)
        if a == b or (a is None and b is None):
            return None
        return f"the prompt changed: {a or 'unknown'} -> {b or 'unknown'}"

    def to_dict(self) -> dict[str, Any]:
        return {"run_a": self.run_a.id, "run_b": self.run_b.id, "regressed": self.regressed,
                "prompt_change": self.prompt_change,
                "same_dataset": self.same_dataset, "tolerance": self.tolerance,
                "config_changes": {k: {"a": a, "b": b} for k, (a, b) in self.config_changes.items()},
                "metrics": [d.to_dict() for d in self.deltas],
                "regressions": [c.to_dict() for c in self.regressions],
                "improvements": [c.to_dict() for c in self.improvements],
                "judge_agreement": self.judge_agreement}

    def to_markdown(self) -> str:
        from workbench.evals.report import comparison_markdown

        return comparison_markdown(self)

    def to_html(self) -> str:
        from workbench.evals.report import comparison_html

        return comparison_html(self)

    def _repr_html_(self) -> str:
        from workbench.evals.report import comparison_fragment

        return comparison_fragment(self)

    def __repr__(self) -> str:
        verdict = "REGRESSED" if self.regressed else "no regression"
        return (f"Comparison({self.run_a.id} -> {self.run_b.id}: {verdict}, "
                f"{len(self.regressions)} sample regression(s), "
                f"{len(self.improvements)} improvement(s))")


def compare(run_a: Run, run_b: Run, *, tolerance: float = 0.1) -> Comparison:
    """Compare run B with baseline A on the samples both scored. A sample regresses when
    its score drops by more than ``tolerance``, it newly fails, or a check newly fails."""
    if tolerance < 0:
        raise BadRequest("tolerance must be >= 0")
    sa, sb = run_a.summary(), run_b.summary()
    deltas = []
    for metric in list(dict.fromkeys([*sa, *sb])):
        a, b = sa.get(metric), sb.get(metric)
        deltas.append(MetricDelta(metric, a.headline if a else None, b.headline if b else None,
                                  a.n_ok if a else 0, b.n_ok if b else 0,
                                  a.n_failed if a else 0, b.n_failed if b else 0, tolerance))
    index_a = {(s.sample_id, s.metric): s for s in run_a.scores}
    questions = {r.sample_id: r.question for r in run_a.samples + run_b.samples}
    regressions: list[SampleChange] = []
    improvements: list[SampleChange] = []
    for s in run_b.scores:
        before = index_a.get((s.sample_id, s.metric))
        if before is None:
            continue
        change = _change(before, s, tolerance)
        if change is None:
            continue
        item = SampleChange(s.sample_id, s.metric, _show(before), _show(s),
                            None if before.value is None or s.value is None or s.kind == "check"
                            else s.value - before.value, questions.get(s.sample_id, ""),
                            s.reason if change == "worse" else None)
        (regressions if change == "worse" else improvements).append(item)
    fa = {k: v for k, v in _flat(run_a.config).items() if k not in _IGNORED_CONFIG}
    fb = {k: v for k, v in _flat(run_b.config).items() if k not in _IGNORED_CONFIG}
    changes = {k: (fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb))
               if fa.get(k) != fb.get(k)}
    agreement_out: dict[str, dict[str, float | int]] = {}
    if any(k.startswith("judge.model") for k in changes):
        from workbench.evals.judge import agreement

        answers_a = {r.sample_id: r.answer for r in run_a.samples}
        same = {r.sample_id for r in run_b.samples if answers_a.get(r.sample_id) == r.answer}
        for metric in sa:
            if metric == CHECKS or metric not in sb:
                continue
            va = {k: v for k, v in run_a.values(metric).items() if k in same}
            vb = {k: v for k, v in run_b.values(metric).items() if k in same}
            agreement_out[metric] = agreement(va, vb)
    return Comparison(run_a, run_b, deltas, regressions, improvements, changes, tolerance,
                      agreement_out)


def _change(a: Score, b: Score, tolerance: float) -> str | None:
    if a.kind == "check":
        if a.status == b.status == "ok" and a.passed != b.passed:
            return "worse" if a.passed else "better"
        return None
    if a.status == "ok" and b.status == "failed":
        return "worse"
    if a.status == "failed" and b.status == "ok":
        return "better"
    if a.status == b.status == "ok" and a.value is not None and b.value is not None:
        if b.value < a.value - tolerance:
            return "worse"
        if b.value > a.value + tolerance:
            return "better"
    return None


def parse_thresholds(items: Iterable[str]) -> dict[str, float]:
    """``["faithfulness=0.7", "checks=1"]`` -> ``{"faithfulness": 0.7, "checks": 1.0}``."""
    out: dict[str, float] = {}
    for item in items:
        for part in item.split(","):
            if not part.strip():
                continue
            name, sep, value = part.partition("=")
            try:
                if not sep:
                    raise ValueError
                out[name.strip()] = float(value)
            except ValueError:
                raise BadRequest(f"--fail-under expects metric=value (e.g. faithfulness=0.7), "
                                 f"got {part!r}") from None
    return out


def dumps(run: Run) -> str:
    return json.dumps(run.to_dict(), indent=2, default=str)


__all__ = ["CHECKS", "Comparison", "GateResult", "MetricDelta", "MetricSummary", "Run", "RunStore",
           "SampleChange", "compare", "dumps", "new_run_id", "order_scores", "parse_thresholds"]
