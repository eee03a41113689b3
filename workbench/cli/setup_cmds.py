"""CLI for setup and the main job: doctor, tour."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from workbench.cli.common import console, gateway, print_json, table


def doctor(
    smoke: Annotated[bool, typer.Option(help="Also run a 4-token generation.")] = True,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check Python, packages, embedded models, the store and the profile's endpoint."""
    from workbench.doctor import as_dicts, run_checks

    checks = run_checks(smoke=smoke)
    failed = [c for c in checks if c.status == "fail"]
    if as_json:
        print_json(as_dicts(checks))
    else:
        colour = {"ok": "green", "warn": "yellow", "fail": "red"}
        for c in checks:
            fix = f"  [dim]-> {escape(c.fix)}[/]" if c.fix and c.status != "ok" else ""
            console.print(f"[{colour[c.status]}]{c.status:>4}[/] {escape(f'{c.name}: {c.detail}')}{fix}",
                          highlight=False)
        console.print("[red]some checks failed[/]" if failed else "[green]all good[/]")
    raise typer.Exit(1 if failed else 0)


def tour(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The main job, headless: governed calls, a denied call, redaction, usage."""
    from workbench.tour import Step, run

    def report(step: Step) -> None:
        if as_json:
            return
        mark = "[green]✓[/]" if step.ok else "[red]✗[/]"
        console.rule(f"{mark} {step.title}")
        for line in step.lines:
            console.print(line, highlight=False, markup=False)
        if "usage" in step.data:
            rows = [{"team": r["team"], "key": r["key"], "model": r["model"], "calls": r["calls"],
                     "ok": r["ok"], "denied": r["denied"], "err": r["errors"],
                     "tok in": r["tokens_in"], "tok out": r["tokens_out"],
                     "cost $": r["cost_usd"]} for r in step.data["usage"]]
            console.print(table(rows, list(rows[0]) if rows else []))

    steps = run(gateway(), report)
    if as_json:
        print_json([{"title": s.title, "ok": s.ok, "lines": s.lines, "data": s.data}
                    for s in steps])
    if not all(s.ok for s in steps):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
    app.command("tour")(tour)


__all__ = [
    "register",
]
