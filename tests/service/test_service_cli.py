"""Service settings and `workbench serve`: a real server process on loopback, probed with
`workbench probe --url`, shut down gracefully with SIGTERM while a request is running."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.service_helpers import (
    QUESTION,
    ServeProcess,
    bearer,
    mock_upstream,
    project_env,
    write_project,
)
from workbench.api import connect
from workbench.config import load_settings
from workbench.errors import ConfigError
from workbench.retrieval import ingest
from workbench.service.settings import ServiceSettings, env_for, load_service_settings

PROBES = """
[defaults]
every = "1m"

[[probe]]
name = "grounded-answer"
input = "When does the keeper light the lamp?"
expect = { pattern = '\\[\\d+\\]' }  # cited (the verifier keeps only cited answers)

[[probe]]
name = "says-it-does-not-know"
input = "Quantum chromodynamics of gluon plasma in neutron stars?"
expect = { pattern = "(?i)don't know" }
"""


# -- settings ----------------------------------------------------------------------------
def test_settings_file_then_environment_then_overrides(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("[workbench]\n", encoding="utf-8")
    cfg = tmp_path / "workbench.toml"
    cfg.write_text('[workbench]\nprofile = "embedded"\n\n[service]\ncollection = "handbook"\n'
                   'k = 4\ncors_origins = ["https://a.example"]\n', encoding="utf-8")
    env = {"WORKBENCH_SERVICE_K": "5", "WORKBENCH_SERVICE_AUTH": "false",
           "WORKBENCH_SERVICE_CORS_ORIGINS": "https://b.example, https://c.example"}
    svc = load_service_settings(cfg, environ=env, max_tokens=64, model=None)
    assert svc.collection == "handbook" and svc.k == 5 and svc.auth is False
    assert svc.cors_origins == ["https://b.example", "https://c.example"]
    assert svc.max_tokens == 64 and svc.model is None
    assert load_settings(cfg).profile == "embedded"  # the workbench part still loads
    # How `workbench serve` hands the settings to its workers: as environment variables.
    assert load_service_settings(tmp_path / "empty.toml", environ=env_for(svc)) == svc


def test_defaults_without_a_file(tmp_path: Path) -> None:
    assert load_service_settings(environ={}) == ServiceSettings()


@pytest.mark.parametrize("text,needle", [
    ('profile = "embedded"\n[service]\nk = 3\n', "[workbench] table"),
    ('[workbench]\n[service]\nk = 0\n', "k: Input should be greater than or equal to 1"),
    ('[workbench]\n[service]\nnope = 1\n', "nope: Extra inputs are not permitted"),
    ("[workbench\n", "not valid TOML"),
])
def test_bad_service_settings_are_config_errors(tmp_path: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "workbench.toml"
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_service_settings(cfg, environ={})
    assert needle in info.value.message


def test_serve_refuses_to_run_without_keys_on_a_public_interface(tmp_path: Path) -> None:
    write_project(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "workbench", "serve", "--no-auth",
                           "--host", "0.0.0.0"], cwd=tmp_path, env=project_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "refusing to serve without keys on 0.0.0.0" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- a real server ---------------------------------------------------------------------
def test_serve_answers_probes_and_drains_on_sigterm(tmp_path: Path) -> None:
    with mock_upstream(delay_ms=1500) as upstream:
        cfg = write_project(tmp_path, upstream=upstream.base_url, title="Lighthouse desk")
        gw = connect(settings=load_settings(cfg))
        ingest(gw, [tmp_path / "corpus"], collection="docs", progress=False)
        _, secret = gw.policy.create_key(team="probes")
        gw.close()
        (tmp_path / "probes.toml").write_text(PROBES, encoding="utf-8")
        server = ServeProcess(tmp_path)
        try:
            server.wait_ready()
            assert httpx.get(server.base + "/info").json()["title"] == "Lighthouse desk"
            assert "<title>" in httpx.get(server.base + "/").text

            probe = subprocess.run(
                [sys.executable, "-m", "workbench", "probe", "probes.toml", "--url",
                 server.base + "/ask", "--key", secret, "--json"], cwd=tmp_path,
                env=project_env(tmp_path), capture_output=True, text=True, timeout=300)
            assert probe.returncode == 0, probe.stdout + probe.stderr
            report = json.loads(probe.stdout)
            assert report["ok"] and {r["probe"] for r in report["results"]} == {
                "grounded-answer", "says-it-does-not-know"}
            assert all(r["trace_id"] for r in report["results"])

            # SIGTERM while an answer is being generated: it still completes.
            result: dict[str, Any] = {}

            def slow_ask() -> None:
                result["resp"] = httpx.post(server.base + "/ask", json={"question": QUESTION},
                                            headers=bearer(secret), timeout=60)

            asker = threading.Thread(target=slow_ask)
            asker.start()
            _wait_for_inflight(server.base)
        finally:
            code = server.stop()
        asker.join(30)
        # uvicorn re-raises the SIGTERM it handled once it has drained (one worker: -15);
        # the supervisor of several workers exits 0.
        assert code in (0, -signal.SIGTERM), server.tail()
        assert result["resp"].status_code == 200, result["resp"].text
        body = result["resp"].json()
        # The model's (uncited) draft was generated through the drain; the verifier then
        # answered from the cited evidence.
        assert body["model"] == "mock-chat" and "[1]" in body["answer"]


def _wait_for_inflight(base: str) -> None:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        metrics = httpx.get(base + "/metrics").text
        # The scrape itself is one request in flight; a second one is the answer.
        if "workbench_service_requests_in_flight 2" in metrics:
            return
        time.sleep(0.05)
    raise AssertionError("the slow request never started")
