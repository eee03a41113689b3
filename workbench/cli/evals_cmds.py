"""CLI for evals: ``workbench eval DATASET``, ``eval compare A B``, ``eval runs``,
``eval show RUN``, ``eval metrics``.

``eval`` is a group whose default command is ``run``: ``workbench eval data.jsonl`` is
``workbench eval run data.jsonl``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from workbench.cli.common import KEY_HELP, console, err_console, fmt, print_json, table
from workbench.errors import BadRequest


class _DefaultRun(TyperGroup):
    """Anything that is not a subcommand (or --help) is the ``run`` command's input."""

    default_command = "run"

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer vendors click
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


eval_app = typer.Typer(
    cls=_DefaultRun, no_args_is_help=True,
    help="Evaluate answers on a golden dataset: checks, lexical metrics and an LLM judge "
         "(ragas, through the Gateway). `workbench eval DATASET` runs it; DATASET is a "
         ".jsonl/.csv golden set or `sample` (the shipped one).")

TARGETS = ("auto", "recorded", "rag", "chat", "agent")


def _connect(key: str | None, cache: bool) -> Any:
    from workbench.api import connect

    # The response cache lets an unchanged re-run skip the target's model calls too
    # (identical prompt -> cached answer, recorded as `cached` in the ledger).
    return connect(key or os.environ.get("WORKBENCH_KEY") or None, cache=cache or None)


def _progress(enabled: bool) -> Any:
    if not enabled:
        return None
    last: dict[str, int] = {}

    def show(stage: str, done: int, total: int) -> None:
        step = max(1, total // 5)
        if done == total or done - last.get(stage, 0) >= step:
            last[stage] = done
            err_console.print(f"[dim]{stage}: {done}/{total}[/]", highlight=False)

    return show


def _target(kind: str, gw: Any, dataset: Any, *, collection: str, k: int, mode: str,
            model: str | None) -> Any:
    from workbench.evals import targets

    if kind == "auto":
        from workbench.evals.agent_checks import BUILDERS

        agentic = any(set(spec) & set(BUILDERS) for s in dataset for spec in s.checks)
        kind = ("recorded" if all(s.answer is not None for s in dataset)
                else "agent" if agentic else "rag")
    if kind == "recorded":
        return None
    if kind == "chat":
        return targets.chat_target(gw, model=model)
    if kind == "agent":
        from workbench.agents.evals import agent_target

        return agent_target(gw, model=model)  # the demo tools; see `agent-tasks`
    if kind == "rag":
        from workbench.retrieval import CollectionNotFound

        try:
            return targets.rag_target(gw, collection=collection, k=k, mode=mode, model=model)
        except CollectionNotFound:
            raise BadRequest(f"collection {collection!r} does not exist: ingest documents first "
                             f"(`workbench ingest docs/ --collection {collection}`) or use "
                             "--target recorded") from None
    raise BadRequest(f"unknown target {kind!r}; choose from {', '.join(TARGETS)}")


def _summary_table(run: Any) -> Any:
    rows = [{"metric": m, "score": s.headline, "kind": s.kind, "scored": s.n_ok,
             "failed": s.n_failed, "skipped": s.n_skipped}
            for m, s in run.summary().items()]
    return table(rows, ["metric", "kind", "score", "scored", "failed", "skipped"])


def _print_run(run: Any, gate: Any) -> None:
    judge = run.config.get("judge") or {}
    console.print(escape(f"{run.label} · {run.dataset_ref} · {len(run.samples)} samples · "
                         f"target {run.config['target'].get('kind')} · judge "
                         f"{judge.get('model') or '-'}"), highlight=False)
    if judge.get("warning"):
        console.print(f"[yellow]{escape(judge['warning'])}[/]", highlight=False)
    console.print(_summary_table(run))
    problems = run.failures() + run.failed_checks()
    for s in problems[:10]:
        what = "failed" if s.status == "failed" else "check failed"
        console.print(f"[red]{what}[/] {escape(f'{s.sample_id} [{s.metric}]: {s.reason}')}",
                      highlight=False)
    if len(problems) > 10:
        console.print(f"... {len(problems) - 10} more (see --report)")
    u = run.usage
    console.print(f"[dim]judge calls {u.get('judge_calls', 0)} · tokens "
                  f"{u.get('judge_prompt_tokens', 0)}+{u.get('judge_completion_tokens', 0)} · "
                  f"cache hits {u.get('cache_hits', 0)} · wall {u.get('wall_s', 0):.1f} s[/]",
                  highlight=False)
    if gate is not None:
        colour = "green" if gate.passed else "red"
        console.print(f"[{colour}]gate {'passed' if gate.passed else 'FAILED'}[/]")
        for line in gate.lines:
            console.print(f"  {line}", highlight=False, markup=False)


@eval_app.command("run")
def run_cmd(
    dataset: Annotated[str, typer.Argument(help="Golden dataset (.jsonl/.csv) or `sample`.")],
    metrics: Annotated[list[str] | None, typer.Option(
        "--metrics", "-m", help="Metrics (repeat or comma-separate); `workbench eval metrics` "
        "lists them. Default: faithfulness, answer_relevancy, context_precision, "
        "context_recall.")] = None,
    fail_under: Annotated[list[str] | None, typer.Option(
        "--fail-under", help="metric=minimum (repeatable; `checks` is the checks' pass rate). "
        "Exit 1 if any is missed.")] = None,
    allow_failed: Annotated[float, typer.Option(
        help="Share of judge failures a gated metric may have (0-1).")] = 0.0,
    target: Annotated[str, typer.Option(
        help="What answers: auto (recorded answers if every row has one, else agent when "
             "the rows use agent checks, else rag), "
             "recorded, rag (workbench ask), chat (no retrieval), agent (the agent loop "
             "with the demo tools; try the `agent-tasks` dataset).")] = "auto",
    collection: Annotated[str, typer.Option("--collection", "-c",
                                            help="Collection for --target rag.")] = "docs",
    k: Annotated[int, typer.Option(help="Sources per question (rag).")] = 3,
    mode: Annotated[str, typer.Option(help="Retrieval mode: hybrid, vector, fts (rag).")] = "hybrid",
    model: Annotated[str | None, typer.Option(help="Model that answers (rag/chat).")] = None,
    judge_model: Annotated[str | None, typer.Option(
        help="Judge model (default: the profile's chat model).")] = None,
    strictness: Annotated[int, typer.Option(
        help="answer_relevancy questions per sample (ragas default 3; 1 is a third of "
             "the calls).")] = 1,
    tags: Annotated[list[str] | None, typer.Option("--tag", help="Only rows with this tag.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N rows.")] = None,
    name: Annotated[str | None, typer.Option(help="A name for the run (compare by name).")] = None,
    concurrency: Annotated[int | None, typer.Option(
        help="Judge calls in flight (default: 1 embedded, 4 remote).")] = None,
    timeout: Annotated[float, typer.Option(help="Per-sample judge timeout, seconds.")] = 300.0,
    cache: Annotated[bool, typer.Option(
        help="Use the judge cache and the gateway response cache.")] = True,
    retry_failed: Annotated[bool, typer.Option(
        help="Re-ask the judge for samples whose failure was cached.")] = False,
    report: Annotated[Path | None, typer.Option(help="Write a self-contained HTML report.")] = None,
    markdown: Annotated[Path | None, typer.Option(
        help="Write a Markdown summary (e.g. $GITHUB_STEP_SUMMARY).")] = None,
    key: Annotated[str | None, typer.Option(help=KEY_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
) -> None:
    """Evaluate DATASET and store the run; exit 1 when a --fail-under gate fails.

    The target answers every question, the dataset's checks run on each answer, then the
    metrics (the judge ones through the Gateway, cached)."""
    from workbench.evals import Judge, evaluate, load
    from workbench.evals.runs import parse_thresholds

    thresholds = parse_thresholds(fail_under or [])
    ds = load(dataset)
    if tags:
        ds = ds.filter(tags=tags)
    if limit is not None:
        ds = ds.head(limit)
    if not len(ds):
        raise BadRequest("no rows left after --tag/--limit")
    gw = _connect(key, cache)
    try:
        tgt = _target(target, gw, ds, collection=collection, k=k, mode=mode, model=model)
        judge = Judge(gw, model=judge_model, concurrency=concurrency, timeout_s=timeout,
                      cache=cache, retry_failed=retry_failed,
                      options={"answer_relevancy": {"strictness": strictness}})
        try:
            # An agent run is judged by its checks (tools, arguments, steps, answer): the
            # RAG judge metrics make no sense there unless asked for.
            agentic = getattr(tgt, "config", {}).get("kind") == "agent"
            run = evaluate(ds, tgt, metrics=metrics or ([] if agentic else None), gateway=gw,
                           judge=judge, name=name, progress=_progress(not as_json))
        finally:
            judge.close()
        gate = run.gate(thresholds, allow_failed=allow_failed) if thresholds else None
        if report:
            run.write_report(str(report), gate=thresholds or None, allow_failed=allow_failed)
        if markdown:
            markdown.parent.mkdir(parents=True, exist_ok=True)
            with markdown.open("a", encoding="utf-8") as fh:  # job summaries accumulate
                fh.write(run.to_markdown(gate=thresholds or None, allow_failed=allow_failed))
        if as_json:
            print_json({**run.to_dict(), "gate": None if gate is None else
                        {"passed": gate.passed, "lines": gate.lines}})
        else:
            _print_run(run, gate)
            if report:
                console.print(f"report: {report}", highlight=False)
            console.print(f"[dim]compare with an earlier run: workbench eval compare "
                          f"previous {run.id}[/]", highlight=False)
    finally:
        gw.close()
    if gate is not None and not gate.passed:
        raise typer.Exit(1)


@eval_app.command("compare")
def compare_cmd(
    run_a: Annotated[str, typer.Argument(help="Baseline run: id, prefix, name, latest or previous.")],
    run_b: Annotated[str, typer.Argument(help="Candidate run.")],
    tolerance: Annotated[float, typer.Option(
        help="A sample regresses when its score drops by more than this.")] = 0.1,
    fail_on_regression: Annotated[bool, typer.Option(help="Exit 1 if B regressed.")] = False,
    report: Annotated[Path | None, typer.Option(help="Write an HTML comparison report.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Append a Markdown summary.")] = None,
    key: Annotated[str | None, typer.Option(help=KEY_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Per-metric deltas, the samples that regressed, and what changed in the config."""
    from workbench.evals import RunStore, compare

    gw = _connect(key, False)
    try:
        runs = RunStore(gw.store)
        result = compare(runs.load(run_a), runs.load(run_b), tolerance=tolerance)
    finally:
        gw.close()
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(result.to_html(), encoding="utf-8")
    if markdown:
        with markdown.open("a", encoding="utf-8") as fh:
            fh.write(result.to_markdown())
    if as_json:
        print_json(result.to_dict())
    else:
        console.print(f"A = {result.run_a.label}   B = {result.run_b.label}", highlight=False)
        if not result.same_dataset:
            console.print("[yellow]different dataset versions: only shared samples compared[/]")
        if result.prompt_change:
            console.print(result.prompt_change, highlight=False, markup=False)
        rows = [{"metric": d.metric, "A": d.mean_a, "B": d.mean_b, "delta": d.delta,
                 "failed": f"{d.failed_a}->{d.failed_b}", "": "REGRESSED" if d.regressed else ""}
                for d in result.deltas]
        console.print(table(rows, ["metric", "A", "B", "delta", "failed", ""]))
        for key_, (a, b) in result.config_changes.items():
            console.print(f"changed {key_}: {fmt(a)} -> {fmt(b)}", highlight=False, markup=False)
        for r in result.regressions[:15]:
            detail = f"{r.sample_id} [{r.metric}] {r.before} -> {r.after}" + (
                f": {r.reason}" if r.reason else "")
            console.print(f"[red]regressed[/] {escape(detail)}", highlight=False)
        if len(result.regressions) > 15:
            console.print(f"... {len(result.regressions) - 15} more")
        for m, a in result.judge_agreement.items():
            console.print(f"judge agreement {m}: {a['n']} pairs, mean |diff| {fmt(a['mae'])}, "
                          f"same side of 0.5 {fmt(a['agree'])}", highlight=False)
        colour = "red" if result.regressed else "green"
        console.print(f"[{colour}]{'REGRESSED' if result.regressed else 'no regression'}[/] "
                      f"({len(result.regressions)} sample regression(s), "
                      f"{len(result.improvements)} improvement(s))")
    if fail_on_regression and result.regressed:
        raise typer.Exit(1)


@eval_app.command("runs")
def runs_cmd(
    limit: Annotated[int, typer.Option(help="How many recent runs.")] = 20,
    key: Annotated[str | None, typer.Option(help=KEY_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recent eval runs, newest first."""
    from workbench.evals import RunStore

    gw = _connect(key, False)
    try:
        rows = RunStore(gw.store).list(limit)
    finally:
        gw.close()
    if as_json:
        print_json(rows)
        return
    metric_cols = list(dict.fromkeys(c for r in rows for c in r
                                     if c not in ("id", "name", "created_at", "dataset",
                                                  "samples", "target")))
    console.print(table(rows, ["id", "name", "dataset", "samples", "target", *metric_cols]))


@eval_app.command("show")
def show_cmd(
    run: Annotated[str, typer.Argument(help="Run id, prefix, name, latest or previous.")],
    report: Annotated[Path | None, typer.Option(help="Write its HTML report.")] = None,
    key: Annotated[str | None, typer.Option(help=KEY_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One stored run: summary, failures, config."""
    from workbench.evals import RunStore

    gw = _connect(key, False)
    try:
        loaded = RunStore(gw.store).load(run)
    finally:
        gw.close()
    if report:
        loaded.write_report(str(report))
    if as_json:
        print_json(loaded.to_dict())
    else:
        _print_run(loaded, None)


@eval_app.command("metrics")
def metrics_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The metrics `--metrics` accepts, what they need and what they call."""
    from workbench.evals.metrics import REGISTRY

    rows = [{"metric": m.name, "calls": m.calls, "needs": ",".join(m.needs),
             "description": m.description} for m in REGISTRY.values()]
    if as_json:
        print_json(rows)
    else:
        console.print(table(rows, ["metric", "calls", "needs", "description"]))


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


__all__ = ["eval_app", "register"]
