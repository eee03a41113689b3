"""Shared pieces of the service tests: the corpus, the served app, small assertions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.fakes import FakeProvider
from workbench.models.gateway import Gateway

CORPUS = {
    "keys.md": ("# Keys\n\n## Creating keys\n\nCreate a key with `workbench keys create --team "
                "T`. The secret is printed once; only its hash is stored.\n\n## Budgets\n\n"
                "Every key can have a budget in US dollars. A request reserves its worst-case "
                "cost before it runs, so concurrent requests cannot overspend.\n"),
    "lighthouse.md": ("# Lighthouse keeping\n\nThe keeper lights the Fresnel lamp at dusk and "
                      "trims the wick at midnight. When fog rolls in, the foghorn sounds every "
                      "thirty seconds.\n"),
    "bread.md": ("# Sourdough\n\nSourdough bread needs a lively starter. Feed the starter with "
                 "flour and water every twelve hours, then bake at a high temperature.\n"),
}
FAKE_ANSWER = "The keeper lights the lamp at dusk [1]."
FAKE_MODELS = [{"name": "fake-model", "provider": "fake"},
               {"name": "pricey", "provider": "fake", "input_usd_per_mtok": 1000.0,
                "output_usd_per_mtok": 2000.0, "max_output_tokens": 100}]
QUESTION = "When does the keeper light the lamp?"


def write_corpus(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in CORPUS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@dataclass
class Served:
    gw: Gateway
    app: Any
    client: TestClient
    provider: FakeProvider
    headers: dict[str, str] = field(default_factory=dict)
    key_id: str = ""

    def new_key(self, **limits: Any) -> tuple[str, dict[str, str]]:
        key_id, secret = self.gw.policy.create_key(team=limits.pop("team", "svc"), **limits)
        return key_id, bearer(secret)

    def ask(self, question: str = QUESTION, headers: dict[str, str] | None = None) -> Any:
        return self.client.post("/ask", json={"question": question},
                                headers=self.headers if headers is None else headers)


def assert_error(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The service's one error shape, with the response's trace id in the body."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"message", "type", "code", "trace_id"} and err["message"]
    assert err["trace_id"] == resp.headers["x-workbench-trace-id"]
    if code is not None:
        assert err["code"] == code, err
    assert "Traceback" not in resp.text
    return dict(err)


def sse(text: str) -> list[tuple[str, Any]]:
    """(event, data) pairs of a server-sent-events body."""
    events = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


# -- a project folder served by `workbench serve` in its own process ----------------------
BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
MOCK_MODEL = "mock-chat"


def mock_upstream(delay_ms: float = 0.0) -> Any:
    """The benchmarks' OpenAI-compatible server (its own process, on loopback)."""
    import sys

    sys.path.insert(0, str(BENCH))
    try:
        from mock_upstream import MockUpstream
    finally:
        sys.path.remove(str(BENCH))
    return MockUpstream(delay_ms=delay_ms)


def write_project(root: Path, *, upstream: str | None = None, store_url: str | None = None,
                  price_in: float = 10.0, price_out: float = 20_000.0, **service: Any) -> Path:
    """A team's folder: workbench.toml ([workbench] + [service]) and a corpus. With
    ``upstream``, chat goes to that OpenAI-compatible URL as the priced model
    ``mock-chat``: by default $10 / $20,000 per million input / output tokens, so a
    budget reservation is dominated by max_tokens (64 tokens: $1.28) and budgets run out
    after a few answers (the mock answers with 9 tokens: $0.18)."""
    write_corpus(root / "corpus")
    lines = ["[workbench]", f"data_dir = {json.dumps(str(root / '.workbench'))}"]
    if store_url:
        lines.append(f"store_url = {json.dumps(store_url)}")
    if upstream:
        lines += ['profile = "mock"', "max_retries = 0", "",
                  "[workbench.profiles.mock]", 'kind = "openai"',
                  f"base_url = {json.dumps(upstream)}", f'chat_model = "{MOCK_MODEL}"',
                  'embed_model = "minilm-l6-v2"',
                  f'models = [{{ name = "{MOCK_MODEL}", provider = "mock", '
                  f"input_usd_per_mtok = {price_in}, output_usd_per_mtok = {price_out}, "
                  # a hosted model's window: `auto` answers with it (free strategy)
                  "max_output_tokens = 64, context_window = 128000 }]"]
    lines += ["", "[service]"] + [f"{k} = {json.dumps(v)}" for k, v in service.items()]
    (root / "workbench.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / "workbench.toml"


def project_env(root: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env["WORKBENCH_CONFIG"] = str(root / "workbench.toml")
    return env


class ServeProcess:
    """``workbench serve`` in its own process group, in ``root``; stopped with SIGTERM."""

    def __init__(self, root: Path, *args: str, log_name: str = "serve.log"):
        import subprocess
        import sys

        from tests.servers import free_port

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = root / log_name
        self._out = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workbench", "serve", "--port", str(self.port), *args],
            cwd=root, env=project_env(root), stdout=self._out, stderr=subprocess.STDOUT,
            start_new_session=True)

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        import time

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"serve exited:\n{self.tail()}"
            try:
                if httpx.get(self.base + "/readyz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"serve not ready in {timeout_s:.0f} s:\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM (graceful: in-flight requests finish); the exit code."""
        import os
        import signal
        import subprocess

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._out.close()
        return int(self.proc.returncode)
