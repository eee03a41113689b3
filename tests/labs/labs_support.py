"""Shared helpers for the lab/notebook CI tests: paths, and subprocesses with a timeout
whose failure message shows the tail of their output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LABS = REPO / "labs"
PYTHON = sys.executable
BIN = Path(PYTHON).parent
# tests/labs/test_readme_install.py installs the README's way and runs every lab and
# notebook there; it costs an install, so it runs only when this is set (CI sets it).
README_INSTALL_ENV = "WORKBENCH_TEST_README_INSTALL"


def readme_install_enabled() -> bool:
    return os.environ.get(README_INSTALL_ENV, "").lower() in ("1", "true", "yes")


# For the tests whose runs test_readme_install.py repeats in the README's venv: there,
# once is enough (CI time), and the README's venv is the stricter place (no dev extra).
ran_in_readme_install = pytest.mark.skipif(
    readme_install_enabled(),
    reason="runs in the README install instead (tests/labs/test_readme_install.py)")


def lab_files() -> list[Path]:
    return sorted(LABS.glob("[0-9][0-9]*_*.py"))


def numbering_problems(numbers: list[str]) -> list[str]:
    """What is wrong with a list of lab numbers: they run 01, 02, ... without gaps, and a
    lab continued by a lettered one (06, 06b, 06c) comes right before it, in order."""
    problems, expected, before = [], 1, ""
    for number in numbers:
        base, letter = number[:2], number[2:]
        if not letter:
            if base != f"{expected:02d}":
                problems.append(f"{number} where {expected:02d} was expected")
            expected = int(base) + 1
        else:
            want = base + ("" if letter == "b" else chr(ord(letter) - 1))
            if before != want:
                problems.append(f"{number} does not follow {want}")
        before = number
    return problems


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
