"""Shared helpers for the lab/notebook CI tests: paths, and subprocesses with a timeout
whose failure message shows the tail of their output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LABS = REPO / "labs"
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def lab_files() -> list[Path]:
    return sorted(LABS.glob("[0-9][0-9]_*.py"))


def notebooks() -> list[Path]:
    """Every committed notebook: the Jupyter lab editions and the templates."""
    return sorted([*(LABS / "jupyter").glob("*.ipynb"), *(REPO / "notebooks").glob("*.ipynb")])


def run(cmd: list[str], *, timeout: float, cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # Drop the outer pytest's markers: marimo reads them to decide how to build test cells.
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("PYTEST_CURRENT_TEST", "PYTEST_VERSION")}
    full_env.update({"NO_MKDOCS_2_WARNING": "1", **(env or {})})
    try:
        return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        raise AssertionError(f"{' '.join(cmd)} timed out after {timeout:.0f} s\n{out[-3000:]}") from None


def tail(proc: subprocess.CompletedProcess[str], n: int = 4000) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-n:]}\n--- stderr\n{proc.stderr[-n:]}"
