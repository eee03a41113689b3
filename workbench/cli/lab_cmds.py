"""CLI for the guided labs: ``workbench lab [NAME] [--jupyter] [--list]``.

The labs are marimo notebooks in ``labs/`` (Jupyter editions in ``labs/jupyter/``) of a
clone of the repository. This command finds them, then starts ``marimo edit`` or
JupyterLab with the embedded profile and one data directory shared by both editions.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from workbench.cli.common import console, print_json, table
from workbench.errors import BadRequest, ConfigError

_TITLE = re.compile(r'app_title="([^"]+)"')
# A lab's number: two digits, and a letter for a lab that continues the one before it
# (06b follows 06 without renumbering the labs after it).
_NUMBER = re.compile(r"0*(\d+)([a-z]?)")


@dataclass(frozen=True)
class Lab:
    number: str
    name: str
    title: str
    path: Path

    @property
    def jupyter_path(self) -> Path:
        return self.path.parent / "jupyter" / f"{self.path.stem}.ipynb"


def labs_dir() -> Path:
    """``./labs`` if the working directory is a clone, else the clone this package runs
    from (an editable install)."""
    candidates = [Path.cwd() / "labs", Path(__file__).resolve().parents[2] / "labs"]
    for cand in candidates:
        if (cand / "labkit.py").exists():
            return cand
    raise ConfigError("no labs/ folder found: run `workbench lab` inside a clone of the "
                      "genai-workbench repository (the labs are not part of the wheel)")


def all_labs(root: Path | None = None) -> list[Lab]:
    root = root or labs_dir()
    out = []
    for path in sorted(root.glob("[0-9][0-9]*_*.py")):
        number, name = path.stem.split("_", 1)
        found = _TITLE.search(path.read_text(encoding="utf-8"))
        out.append(Lab(number, name, found.group(1) if found else path.stem, path))
    return out


def find_lab(query: str, labs: list[Lab]) -> Lab:
    """By number (``3``, ``03``, ``6b``), file stem (``03_governance``) or a word of the
    name."""
    q = query.strip().lower().removesuffix(".py").removesuffix(".ipynb")
    number = _NUMBER.fullmatch(q)
    if number:
        hits = [lab for lab in labs if (found := _NUMBER.fullmatch(lab.number))
                and found.groups() == number.groups()]
    else:
        hits = [lab for lab in labs if q in (lab.path.stem, lab.name)] or \
               [lab for lab in labs if q in lab.name or q in lab.title.lower()]
    if len(hits) != 1:
        names = ", ".join(f"{lab.number} ({lab.name})" for lab in labs)
        what = "matches several labs" if hits else "matches no lab"
        raise BadRequest(f"{query!r} {what}; choose one of: {names}")
    return hits[0]


def launch_env(root: Path, profile: str | None) -> dict[str, str]:
    """Both editions share one data dir (Jupyter kernels start in labs/jupyter/). No
    profile: ``embedded``, or the joined classroom's (``workbench join``)."""
    env = dict(os.environ)
    if profile is None:
        from workbench.classroom.attendee import PROFILE, load

        profile = PROFILE if load() is not None else "embedded"
    env["WORKBENCH_PROFILE"] = profile
    env.setdefault("WORKBENCH_DATA_DIR", str(root.parent / ".workbench"))
    return env


def marimo_command(target: Path, host: str, port: int, headless: bool) -> list[str]:
    cmd = [sys.executable, "-m", "marimo", "edit", str(target), "--host", host,
           "--port", str(port)]
    return [*cmd, "--headless"] if headless else cmd


def jupyter_command(target: Path, host: str, port: int, headless: bool, token: str) -> list[str]:
    cmd = [sys.executable, "-m", "jupyterlab", str(target),
           f"--ServerApp.ip={host}", f"--ServerApp.port={port}",
           f"--ServerApp.root_dir={target if target.is_dir() else target.parent}",
           f"--IdentityProvider.token={token}"]
    if headless:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and Binder-like setups run as root
    return cmd


def lab(
    name: Annotated[str | None, typer.Argument(
        help="Lab number or name (e.g. 3, 6b, 03_governance, governance); none opens them all.")]
    = None,
    jupyter: Annotated[bool, typer.Option(
        "--jupyter", help="Open the Jupyter edition in JupyterLab instead of marimo.")] = False,
    list_labs: Annotated[bool, typer.Option("--list", help="List the labs and exit.")] = False,
    profile: Annotated[str | None, typer.Option(
        help="Profile the labs run on (default: embedded, or the classroom you joined).")]
    = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (marimo 2718, JupyterLab 8888).")] = 0,
    no_browser: Annotated[bool, typer.Option(
        "--no-browser", help="Do not open a browser (servers, containers).")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the command instead of running it.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --list: print JSON.")] = False,
) -> None:
    """Open the guided labs in marimo (or JupyterLab), offline on the embedded profile."""
    root = labs_dir()
    labs = all_labs(root)
    if list_labs:
        rows = [{"number": lab.number, "name": lab.name, "title": lab.title,
                 "marimo": str(lab.path), "jupyter": str(lab.jupyter_path)} for lab in labs]
        if as_json:
            print_json(rows)
        else:
            console.print(table(rows, ["number", "name", "title"], title="labs"))
            console.print("open one with: workbench lab NUMBER [--jupyter]", highlight=False)
        return
    chosen = find_lab(name, labs) if name else None
    if jupyter:
        target = chosen.jupyter_path if chosen else root / "jupyter"
        token = secrets.token_urlsafe(24)
        cmd = jupyter_command(target, host, port or 8888, no_browser, token)
        tool = "jupyterlab"
        shown = f"http://{host}:{port or 8888}/lab?token={token}"
    else:
        target = chosen.path if chosen else root
        cmd = marimo_command(target, host, port or 2718, no_browser)
        tool = "marimo"
        shown = f"http://{host}:{port or 2718} (marimo prints the link with its token)"
    if not target.exists():
        raise ConfigError(f"{target} is missing; run `python scripts/build_jupyter_labs.py`")
    if dry_run:
        typer.echo(" ".join(cmd))
        return
    if shutil.which(tool) is None and not _importable(tool):
        raise ConfigError(f"{tool} is not installed: pip install 'genai-workbench[labs]'")
    env = launch_env(root, profile)
    console.print(f"opening {target.name} in {tool} on profile {env['WORKBENCH_PROFILE']}: "
                  f"{shown}", highlight=False)
    run_server(cmd, env=env, cwd=root.parent)


def run_server(cmd: list[str], env: dict[str, str], cwd: Path) -> None:
    """Become the server process (``exec``), so a signal sent to ``workbench lab`` (Ctrl+C,
    a process manager's SIGTERM) reaches marimo or JupyterLab itself and the port is freed:
    a child started with ``subprocess.call`` outlived a killed parent and kept the port.
    Windows has no exec that keeps the process id, so there the child runs in the
    foreground and is terminated when the parent stops."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.chdir(cwd)
        os.execve(cmd[0], cmd, env)  # does not return: this process is now the server
        return
    child = subprocess.Popen(cmd, env=env, cwd=cwd)
    try:
        code = child.wait()
    finally:
        if child.poll() is None:
            child.terminate()
            child.wait()
    raise typer.Exit(code)


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def register(app: typer.Typer) -> None:
    app.command("lab")(lab)


__all__ = [
    "Lab", "all_labs", "find_lab", "register",
]
