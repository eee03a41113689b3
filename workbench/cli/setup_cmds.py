"""CLI for setup and the main job: doctor, migrate, tour."""

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


def migrate(
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Only list applied and pending migrations; change nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Bring the store up to this workbench's schema (opening a store does it too): run
    it once before rolling out a new version, or with --dry-run to see what would change.
    Exits 1 if a newer workbench migrated the store."""
    from workbench.config import load_settings
    from workbench.store import Store

    store = Store(load_settings().resolved_store_url, migrate=False)
    try:
        applied, pending = store.migration_status()
        done = [] if dry_run else store.migrate()
    finally:
        store.dispose()
    rows = [{"version": m.version, "name": m.name,
             "status": "applied now" if m.version in done else "pending"} for m in pending]
    if as_json:
        print_json({"store": store.safe_url, "dry_run": dry_run, "applied": applied,
                    "pending": [] if done else [{"version": m.version, "name": m.name}
                                                for m in pending],
                    "applied_now": done})
        return
    console.print(f"store {escape(store.safe_url)}: {len(applied)} migrations applied "
                  f"(latest {max(applied, default=0)})", highlight=False)
    if not pending:
        console.print("[green]up to date[/]")
        return
    console.print(table(rows, ["version", "name", "status"]))
    if dry_run:
        console.print(f"{len(pending)} pending; run `workbench migrate` to apply them")


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
    app.command("migrate")(migrate)
    app.command("tour")(tour)


__all__ = [
    "register",
]
