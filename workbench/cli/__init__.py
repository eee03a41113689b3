"""The ``workbench`` command. Thin: every command calls the library.

User errors (``WorkbenchError``) print one line to stderr and exit 1, never a traceback;
usage errors exit 2 (click's convention).
"""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from workbench.cli import (
    classroom_cmds,
    conversation_cmds,
    evals_cmds,
    gateway_cmds,
    lab_cmds,
    observability_cmds,
    prompts_cmds,
    retrieval_cmds,
    service_cmds,
    setup_cmds,
    tools_cmds,
)
from workbench.cli.common import app, err_console
from workbench.errors import WorkbenchError

gateway_cmds.register(app)
setup_cmds.register(app)
retrieval_cmds.register(app)
observability_cmds.register(app)
service_cmds.register(app)
evals_cmds.register(app)
lab_cmds.register(app)
prompts_cmds.register(app)
conversation_cmds.register(evals_cmds.eval_app)
classroom_cmds.register(app)
tools_cmds.register(app)


def _flush_spans() -> None:
    """One-shot commands end right after their last span: write what is still queued
    (bounded) before the process exits. Commands that never traced skip the import."""
    tracing = sys.modules.get("workbench.observability.tracing")
    if tracing is not None:
        tracing.flush_all(3.0)


def main() -> None:
    """Run the ``workbench`` command (the console-script entry point)."""
    try:
        app()
    except WorkbenchError as exc:
        # escape: messages quote things like [otlp-grpc] or [[probe]] that are not markup
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    finally:
        _flush_spans()


__all__ = ["app", "main", "typer"]
