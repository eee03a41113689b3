"""CLI for tool governance: ``workbench tools list`` (allowlists) and ``workbench tools
events`` (tool calls, results, refusals). Allowlists are set with ``--tools`` on
``keys create``, ``keys set`` and ``teams set``."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from workbench.cli.common import console, gateway, print_json, table

tools_app = typer.Typer(help="Tool allowlists and the tool-call record (set allowlists with "
                             "--tools on `keys create`, `keys set`, `teams set`).",
                        no_args_is_help=True)


@tools_app.command("list")
def tools_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Tool allowlists by key and team (a key or team not listed may use every tool)."""
    from workbench.models.tools import allowlists

    rows = [{"subject": s, "tools": ", ".join(t) or "(none)"}
            for s, t in sorted(allowlists(gateway().store).items())]
    if as_json:
        print_json(rows)
        return
    console.print(table(rows, ["subject", "tools"], title="tool allowlists"))


@tools_app.command("events")
def tools_events(
    limit: Annotated[int, typer.Option(min=1, help="Rows to show.")] = 20,
    kind: Annotated[str | None, typer.Option(
        help="Only this kind: call, result, denied, blocked, executed.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recent tool calls, results, refusals and runs (names and sizes, never arguments)."""
    from sqlalchemy import select

    from workbench.models.tool_schema import tool_events

    query = select(tool_events).order_by(tool_events.c.id.desc()).limit(limit)
    if kind:
        query = query.where(tool_events.c.kind == kind)
    with gateway().store.read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    if as_json:
        print_json(rows)
        return
    for r in rows:
        r["time"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["ts"]))
    console.print(table(rows, ["time", "kind", "tool", "outcome", "key_id", "team", "model",
                               "trace_id"], title="tool events"))


def register(app: typer.Typer) -> None:
    app.add_typer(tools_app, name="tools")


__all__ = ["register", "tools_app"]
