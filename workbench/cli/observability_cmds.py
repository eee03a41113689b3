"""CLI for observability: traces, feedback and probes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from workbench.cli.common import KEY_HELP, console, gateway, print_json, table

traces_app = typer.Typer(help="Recorded traces: list recent ones, show one as a tree.",
                         invoke_without_command=True)
feedback_app = typer.Typer(help="Feedback on answers: add, list, stats, export to golden data.",
                           no_args_is_help=True)


def _store() -> Any:
    return gateway().store


LimitOpt = Annotated[int, typer.Option(help="How many traces.")]
SinceOpt = Annotated[float | None, typer.Option(help="Only the last N hours.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
SessionOpt = Annotated[str | None, typer.Option(
    "--session", help="Only the traces of this conversation (session.id).")]


@traces_app.callback()
def traces_default(ctx: typer.Context, limit: LimitOpt = 20, since_hours: SinceOpt = None,
                   as_json: JsonOpt = False, session: SessionOpt = None) -> None:
    """List recent traces (newest first). `workbench traces show ID` shows one."""
    if ctx.invoked_subcommand is None:
        traces_list(limit, since_hours, as_json, session)


@traces_app.command("list")
def traces_list(limit: LimitOpt = 20, since_hours: SinceOpt = None,
                as_json: JsonOpt = False, session: SessionOpt = None) -> None:
    """List recent traces (newest first): root span, duration, spans, model, errors."""
    from workbench.observability.traces import list_traces

    since = time.time() - since_hours * 3600 if since_hours else None
    rows = list_traces(_store(), limit=limit, since=since, session=session).rows
    if session and not rows and not as_json:
        console.print(f"no traces in session {session!r}", highlight=False, markup=False)
        return
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no traces yet: run `workbench chat \"hello\"` or `workbench tour`")
        return
    console.print(table(rows, ["trace_id", "started", "root", "kind", "duration_ms", "spans",
                               "model", "tokens_in", "tokens_out", "errors"], title="traces"))


@traces_app.command("show")
def traces_show(
    trace_id: Annotated[str, typer.Argument(help="Trace id (or a unique prefix of 6+ chars).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the spans as JSON.")] = False,
    html: Annotated[Path | None, typer.Option(help="Also write the waterfall to this file.")]
    = None,
) -> None:
    """Show one trace as a tree with timings, and its feedback."""
    from workbench.observability import feedback
    from workbench.observability.traces import get_trace

    store = _store()
    trace = get_trace(store, trace_id)
    if html is not None:
        html.write_text(f"<!doctype html><meta charset='utf-8'>{trace._repr_html_()}",
                        encoding="utf-8")
    fb = feedback.list_feedback(store, trace_id=trace.trace_id)
    if as_json:
        print_json({**trace.to_dict(), "feedback": list(fb)})
        return
    for line in trace.lines():
        console.print(line, highlight=False, markup=False)
    for row in fb:
        console.print(f"feedback: {row['kind']} {row['name'] if row['kind'] == 'score' else ''}"
                      f"= {row['value']!r} ({row['source_kind']}, x{row['occurrences']})",
                      highlight=False, markup=False)


def _cli_value(raw: str | None) -> Any:
    if raw is None:
        return None
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


@feedback_app.command("add")
def feedback_add(
    trace_id: Annotated[str, typer.Argument(help="The answer's trace id.")],
    kind: Annotated[str, typer.Option(
        help="thumbs, rating, comment, copy, retry, edit, abandon or score.")],
    value: Annotated[str | None, typer.Option(
        help="up/down, 1-5, text, ... (implicit kinds need none).")] = None,
    name: Annotated[str | None, typer.Option(help="Score name (kind=score).")] = None,
    comment: Annotated[str | None, typer.Option(help="Free-text comment.")] = None,
    source_kind: Annotated[str, typer.Option(help="user, code or llm-judge.")] = "user",
    source_id: Annotated[str | None, typer.Option(help="Who gave it.")] = None,
    idempotency_id: Annotated[str | None, typer.Option(
        help="Client id: re-sending it is a no-op.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Record one feedback signal."""
    from workbench.observability import feedback

    res = feedback.record(_store(), trace_id=trace_id, kind=kind, value=_cli_value(value),
                          name=name, comment=comment, source_kind=source_kind,
                          source_id=source_id, idempotency_id=idempotency_id)
    if as_json:
        print_json({"status": res.status, "feedback": res.feedback})
        return
    console.print(f"{res.status} {res.id} ({res.feedback['kind']} on {trace_id}, "
                  f"linked={res.feedback['linked']})")


@feedback_app.command("list")
def feedback_list(
    trace: Annotated[str | None, typer.Option(help="Only this trace.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List feedback, newest first."""
    from workbench.observability import feedback

    rows = feedback.list_feedback(_store(), trace_id=trace, kind=kind, limit=limit)
    if as_json:
        print_json(list(rows))
        return
    for r in rows:
        r["when"] = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["updated_at"]))
        r["value"] = str(r["value"])[:40]
    console.print(table(rows, ["when", "trace_id", "kind", "name", "value", "comment",
                               "source_kind", "occurrences", "linked"], title="feedback"))


@feedback_app.command("stats")
def feedback_stats(
    days: Annotated[int, typer.Option(help="Period for product metrics.")] = 30,
    by: Annotated[str, typer.Option(help="Group metrics by: day,model,prompt_version.")]
    = "day,model,prompt_version",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Signals per kind, and product metrics (thumbs-up, retry, edit, copy rates, latency)."""
    from workbench.observability import feedback
    from workbench.observability.metrics import COLUMNS, product_metrics

    store = _store()
    groups = tuple(b.strip() for b in by.split(",") if b.strip())
    kinds = feedback.stats(store, since=time.time() - days * 86400)
    metrics = product_metrics(store, days=days, by=groups)
    if as_json:
        print_json({"kinds": kinds, "metrics": metrics.rows})
        return
    console.print(table(kinds, ["kind", "name", "data_type", "messages", "occurrences",
                                "up_rate", "mean", "linked"], title="feedback by kind"))
    cols = [c for c in COLUMNS if c in groups or c not in ("day", "model", "prompt_version")]
    console.print(table(metrics.rows, cols, title=f"product metrics (last {days} days)"))


@feedback_app.command("export")
def feedback_export(
    path: Annotated[Path, typer.Argument(help="Output JSONL file (a golden dataset).")],
    select: Annotated[str, typer.Option(
        help="Comma list: edit, thumbs-down, thumbs-up, rating-low.")] = "edit,thumbs-down",
    days: Annotated[int | None, typer.Option(help="Only feedback from the last N days.")]
    = None,
) -> None:
    """Export selected feedback as golden data (question, reference, contexts, tags)."""
    from workbench.observability import feedback

    chosen = [s.strip() for s in select.split(",") if s.strip()]
    since = time.time() - days * 86400 if days else None
    n = feedback.export(_store(), path, chosen, since=since)
    console.print(f"wrote {n} rows to {path}")


@feedback_app.command("send")
def feedback_send(
    target: Annotated[str, typer.Argument(help="phoenix (trace annotations) or langfuse (scores).")],
    url: Annotated[str, typer.Option(help="Phoenix server or Langfuse host, e.g. "
                                          "http://127.0.0.1:6006.")],
    days: Annotated[int | None, typer.Option(help="Only feedback from the last N days.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows (newest first).")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Send feedback to Phoenix (annotations) or Langfuse (scores); re-sending updates.
    Langfuse keys come from LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY."""
    from workbench.errors import BadRequest
    from workbench.observability import feedback
    from workbench.observability.feedback_export import FeedbackExporter

    if target not in ("phoenix", "langfuse"):
        raise BadRequest(f"unknown target {target!r}: use phoenix or langfuse")
    since = time.time() - days * 86400 if days else None
    rows = feedback.list_feedback(_store(), since=since, limit=limit)
    report = FeedbackExporter(target, url).export(rows)  # type: ignore[arg-type]
    if as_json:
        print_json(report.__dict__)
    else:
        console.print(f"sent {report.sent} feedback rows to {target}"
                      + (f", {report.failed} failed" if report.failed else ""), highlight=False)
        for err in report.errors[:5]:
            console.print(f"  {err}", highlight=False, markup=False)
    if report.failed:
        raise typer.Exit(1)


def probe(
    file: Annotated[Path | None, typer.Argument(
        help="Probe file (TOML/YAML); default probes.toml or probes.yaml here.")] = None,
    url: Annotated[str | None, typer.Option(
        help="Probe a running service instead of the in-process Gateway.")] = None,
    api: Annotated[str, typer.Option(
        help="With --url: openai (/v1/chat/completions), ask (POST /ask) or auto.")] = "auto",
    key: Annotated[str | None, typer.Option(help=KEY_HELP)] = None,
    watch: Annotated[bool, typer.Option(help="Keep running probes on their schedules.")]
    = False,
    max_cycles: Annotated[int | None, typer.Option(help="With --watch: stop after N runs.")]
    = None,
    fail_on_drift: Annotated[bool, typer.Option(help="Exit 1 on drift too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print reports as JSON.")] = False,
) -> None:
    """Run health-check probes, store results, report drift; exit 1 on failure."""
    import os

    from workbench.errors import BadRequest
    from workbench.evals import probes as pr

    if api not in ("auto", "openai", "ask"):
        raise BadRequest(f"--api {api!r}: use openai, ask or auto")
    probes_ = pr.load_probes(file)
    gw = gateway(key)
    target: pr.Target = (pr.HttpTarget(url, api=api,  # type: ignore[arg-type]
                                       key=key or os.environ.get("WORKBENCH_KEY"))
                         if url else pr.GatewayTarget(gw))
    reports = (pr.watch(probes_, target, gw.store, gw, max_cycles=max_cycles) if watch
               else iter([pr.run_probes(probes_, target, gw.store, gw)]))
    failed = False
    for report in reports:
        failed = failed or not report.ok or bool(fail_on_drift and report.drift)
        if as_json:
            print_json(report.to_dict())
            continue
        console.print(table(report.rows(), ["probe", "ok", "check", "model", "latency_ms",
                                            "detail"], title=f"probes · {report.target}"))
        console.print(f"{len(report.results) - len(report.failed)}/{len(report.results)} "
                      f"passed · run {report.run_id}")
        for d in report.drift:
            console.print(f"[yellow]drift:[/] {d.message}", highlight=False)
    raise typer.Exit(1 if failed else 0)


def register(app: typer.Typer) -> None:
    app.add_typer(traces_app, name="traces")
    app.add_typer(feedback_app, name="feedback")
    app.command("probe")(probe)


__all__ = [
    "register",
]
