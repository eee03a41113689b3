"""``workbench eval conversations FILE``: golden conversations run turn by turn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench.cli.common import KEY_HELP, console, gateway, print_json, table


def conversations_cmd(
    file: Annotated[Path, typer.Argument(help="A conversations file (.yaml / .json).")],
    collection: Annotated[str, typer.Option(help="Collection to answer from (in process).")]
    = "docs",
    url: Annotated[str | None, typer.Option(
        help="Run through a running service (POST /ask with a session) instead.")] = None,
    service_key: Annotated[str | None, typer.Option(
        help="The service key for --url (default: $WORKBENCH_KEY).")] = None,
    prompt: Annotated[str | None, typer.Option(
        help="Registry prompt to answer with, e.g. rag.answer@candidate (in process).")] = None,
    model: Annotated[str | None, typer.Option(help="Chat model (in process).")] = None,
    max_tokens: Annotated[int, typer.Option(help="Answer length limit.")] = 128,
    name: Annotated[str | None, typer.Option(help="A name for the saved run.")] = None,
    key: Annotated[str | None, typer.Option(help=KEY_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the turns as JSON.")] = False,
) -> None:
    """Run golden conversations turn by turn (each turn sees the history), check every
    turn, save an eval run; exit 1 if a turn failed."""
    import os

    from workbench.evals.conversations import run_conversations

    gw = gateway(key)
    try:
        out = run_conversations(gw, file, collection=collection, url=url,
                                key=service_key or os.environ.get("WORKBENCH_KEY"),
                                prompt=prompt, model=model, max_tokens=max_tokens, name=name)
    finally:
        gw.close()
    if as_json:
        print_json({"run_id": out.run.id if out.run else None, "prompt": out.prompt,
                    "passed": out.passed, "turns": out.rows()})
    else:
        console.print(table(out.rows(), ["conversation", "turn", "ok", "history", "question",
                                         "why"], title=f"conversations ({out.target})"))
        console.print(out.lines()[-1], highlight=False, markup=False)
    raise typer.Exit(0 if out.passed else 1)


def register(eval_app: typer.Typer) -> None:
    eval_app.command("conversations")(conversations_cmd)


__all__ = ["conversations_cmd", "register"]
