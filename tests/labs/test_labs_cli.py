"""`workbench lab`: lists the labs, finds one by number or name, builds the marimo and
JupyterLab commands, and really opens both servers on loopback."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.labs.labs_support import BIN, REPO, tail
from tests.servers import free_port
from workbench.cli import app, lab_cmds
from workbench.errors import BadRequest, ConfigError

runner = CliRunner()


def test_list_shows_every_lab_with_its_title() -> None:
    res = runner.invoke(app, ["lab", "--list", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    numbers = [r["number"] for r in rows]
    assert numbers == ["01", "02", "03", "04", "05", "06", "06b", "07", "08", "09", "10"]
    assert rows[2]["title"] == "Lab 3 · Governance"
    assert rows[6]["title"] == "Lab 6b · Evals: compare runs"
    assert all(Path(r["marimo"]).exists() and Path(r["jupyter"]).exists() for r in rows)


@pytest.mark.parametrize("query", ["3", "03", "03_governance", "governance", "GOVERNANCE"])
def test_find_lab_by_number_or_name(query: str) -> None:
    assert lab_cmds.find_lab(query, lab_cmds.all_labs()).path.name == "03_governance.py"


@pytest.mark.parametrize("query", ["6b", "06b", "06B", "06b_compare", "compare"])
def test_find_the_lettered_lab(query: str) -> None:
    """6b is lab 6's second half: its own number, not lab 6 (nor a clash with it)."""
    assert lab_cmds.find_lab(query, lab_cmds.all_labs()).path.name == "06b_compare.py"
    assert lab_cmds.find_lab("6", lab_cmds.all_labs()).path.name == "06_evals.py"


@pytest.mark.parametrize("query", ["42", "6c", "nothing-like-it"])
def test_unknown_lab_is_a_user_error(query: str) -> None:
    with pytest.raises(BadRequest, match="choose one of: 01 \\(welcome\\)"):
        lab_cmds.find_lab(query, lab_cmds.all_labs())
    res = runner.invoke(app, ["lab", query])
    assert res.exit_code == 1 and isinstance(res.exception, BadRequest)


def test_missing_labs_folder_says_what_to_do(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab_cmds, "__file__", str(tmp_path / "a" / "b" / "lab_cmds.py"))
    with pytest.raises(ConfigError, match="inside a clone"):
        lab_cmds.labs_dir()


def test_dry_run_marimo_command() -> None:
    res = runner.invoke(app, ["lab", "2", "--dry-run", "--port", "2799", "--no-browser"])
    assert res.exit_code == 0, res.output
    cmd = res.output.split()
    assert cmd[1:4] == ["-m", "marimo", "edit"]
    assert cmd[4].endswith("labs/02_first_calls.py")
    assert cmd[cmd.index("--port"):cmd.index("--port") + 2] == ["--port", "2799"]
    assert "--headless" in cmd


def test_dry_run_jupyter_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    res = runner.invoke(app, ["lab", "1", "--jupyter", "--dry-run"])
    assert res.exit_code == 0, res.output
    cmd = res.output.split()
    assert cmd[1:3] == ["-m", "jupyterlab"] and cmd[3].endswith("labs/jupyter/01_welcome.ipynb")
    assert any(re.fullmatch(r"--IdentityProvider\.token=[\w-]{20,}", c) for c in cmd)
    assert "--allow-root" in cmd
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "--allow-root" not in runner.invoke(app, ["lab", "1", "--jupyter", "--dry-run"]).output


def test_launch_env_uses_embedded_profile_and_one_data_dir(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("WORKBENCH_PROFILE", "openai")
    env = lab_cmds.launch_env(REPO / "labs", "embedded")
    assert env["WORKBENCH_PROFILE"] == "embedded"
    assert env["WORKBENCH_DATA_DIR"] == str(REPO / ".workbench")


def _serve(args: list[str], url_of: callable, timeout: float = 180) -> None:  # type: ignore[valid-type]
    """Start `workbench lab ...`, wait until the server answers, then stop it."""
    proc = subprocess.Popen([str(BIN / "workbench"), "lab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # our "opening ..." line
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, f"server exited {proc.returncode}: {first}"
            try:
                if url_of(first).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"no answer after {timeout:.0f} s: {first}"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
def test_opens_marimo_for_real() -> None:
    port = free_port()
    _serve(["1", "--no-browser", "--port", str(port)],
           lambda _line: httpx.get(f"http://127.0.0.1:{port}/health", timeout=5))


@pytest.mark.slow
def test_opens_jupyterlab_for_real_with_a_token() -> None:
    port = free_port()

    def status(line: str) -> httpx.Response:
        token = re.search(r"token=([\w-]+)", line)
        assert token, f"no token in {line!r}"
        base = f"http://127.0.0.1:{port}/api/status"
        assert httpx.get(base, timeout=5).status_code in (401, 403)  # the token is required
        return httpx.get(base, headers={"Authorization": f"token {token.group(1)}"}, timeout=5)

    _serve(["3", "--jupyter", "--no-browser", "--port", str(port)], status)


def test_tail_helper_formats_output() -> None:
    proc = subprocess.CompletedProcess(["x"], 3, "out", "err")
    assert "exit 3" in tail(proc) and "out" in tail(proc) and "err" in tail(proc)


@pytest.mark.slow
def test_killing_workbench_lab_frees_the_port() -> None:
    """SIGTERM to the `workbench lab` process itself (not its process group, as a process
    manager or a closed terminal sends it) stops the marimo server and frees the port:
    `workbench lab` execs into marimo instead of leaving an orphan child holding it."""
    port = free_port()
    proc = subprocess.Popen([str(BIN / "workbench"), "lab", "1", "--no-browser", "--port",
                             str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/health"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"exited {proc.returncode}: {proc.stdout.read()}"  # type: ignore[union-attr]
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "marimo did not answer within 180 s"
            time.sleep(0.5)
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 30
        while True:  # nothing answers on the port any more, and it can be bound again
            try:
                httpx.get(url, timeout=2)
            except httpx.TransportError:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
                break
            assert time.monotonic() < deadline, f"port {port} still answers after SIGTERM"
            time.sleep(0.5)
    finally:
        if proc.poll() is None or _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_run_server_execs_on_posix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """On POSIX the CLI becomes the server (same pid), in the labs' parent folder."""
    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(os, "execve", lambda path, argv, env: calls.append((path, argv, env)))
    monkeypatch.setattr(os, "chdir", lambda path: calls.append(("chdir", [str(path)], {})))
    lab_cmds.run_server(["/bin/true", "x"], env={"A": "1"}, cwd=tmp_path)
    assert calls == [("chdir", [str(tmp_path)], {}), ("/bin/true", ["/bin/true", "x"], {"A": "1"})]
