"""Shared CLI pieces: the typer app, consoles, output helpers, the gateway factory."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="workbench",
    help="genai-workbench: governed model access, RAG, evals, tracing and feedback - offline first.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Piped output (CI logs, `| tee`) would be cut at Rich's 80-column default: tables of ids
# and models need more.
console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True)

KEY_HELP = "Act as this workbench key (default: $WORKBENCH_KEY, else the local owner)."


def gateway(key: str | None = None) -> Any:
    from workbench.api import connect

    return connect(key or os.environ.get("WORKBENCH_KEY") or None)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None) -> Table:
    t = Table(title=title)
    for c in columns:
        t.add_column(c, justify="right" if rows and isinstance(rows[0].get(c), int | float)
                     else "left")
    for r in rows:
        t.add_row(*[fmt(r.get(c)) for c in columns])
    return t


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6f}" if abs(v) < 1 else f"{v:.2f}"
    if isinstance(v, list | tuple):
        return ",".join(map(str, v))
    return str(v)


__all__ = [
    "KEY_HELP", "console", "err_console", "fmt", "gateway", "print_json", "table",
]
