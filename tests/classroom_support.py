"""Two real processes on loopback for classroom tests: a facilitator's `workbench gateway`
(the embedded model, priced so budgets bite) and attendees, each with their own working
directory, data dir and classroom dir, talking to it over HTTP."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.servers import free_port, stop_process

REPO = Path(__file__).resolve().parents[1]
# USD per million tokens: a 40-token call costs $0.04, so a few cents of budget run out.
PRICED_MODELS = """
[[models]]
name = "smollm2-135m"
provider = "embedded"
context_window = 2048
max_output_tokens = 256
input_usd_per_mtok = 1000.0
output_usd_per_mtok = 1000.0
"""


def clean_env(root: Path, **extra: str) -> dict[str, str]:
    """The parent's environment without workbench settings (the child gets only its own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")
           and k not in ("PYTEST_CURRENT_TEST", "PYTEST_VERSION")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["WORKBENCH_DATA_DIR"] = str(root / ".workbench")
    env["WORKBENCH_CLASSROOM_DIR"] = str(root / "classroom-home")
    env.update(extra)
    return env


@dataclass
class Party:
    """One side (facilitator or attendee): its own directory and environment."""

    root: Path
    env: dict[str, str]

    def wb(self, *args: str, timeout: float = 300, stdin: str | None = None
           ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "workbench", *args], cwd=self.root,
                              env=self.env, capture_output=True, text=True, timeout=timeout,
                              input=stdin)

    def py(self, code: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", code], cwd=self.root, env=self.env,
                              capture_output=True, text=True, timeout=timeout)


@dataclass
class Facilitator(Party):
    url: str
    log: Path

    def create(self, n: int, budget: float, rpm: int, team: str = "workshop"
               ) -> list[dict[str, str]]:
        """`classroom create`; returns the sheet's rows (label, key_id, key, ...)."""
        out = self.root / f"{team}.csv"
        proc = self.wb("classroom", "create", str(n), "--budget", str(budget), "--rpm",
                       str(rpm), "--team", team, "--url", self.url, "--out", str(out))
        assert proc.returncode == 0, proc.stderr
        with out.open(encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    def page_token(self, team: str = "workshop") -> str:
        text = (self.root / f"{team}-facilitator.txt").read_text(encoding="utf-8")
        return text.split("Password:")[1].split()[0]


def attendee(root: Path, name: str) -> Party:
    home = root / name
    home.mkdir()
    return Party(home, clean_env(home))


@contextmanager
def facilitator_gateway(root: Path) -> Iterator[Facilitator]:
    """`workbench gateway` in its own process (own dir, store, priced embedded model)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "workbench.toml").write_text(PRICED_MODELS, encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "gateway.log"
    env = clean_env(root)
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "workbench", "gateway", "--port",
                                 str(port)], cwd=root, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "gateway did not start:\n" + log.read_text()
            time.sleep(0.3)
        yield Facilitator(root, env, url, log)
    finally:
        stop_process(proc)
