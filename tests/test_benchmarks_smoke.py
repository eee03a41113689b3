"""The benchmark scripts still run: each in its tiny ``--quick`` mode, checked for the
figures it prints. No assertion is about speed (speed belongs to the scripts' output)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(name: str, *args: str, timeout: float = 600) -> str:
    proc = subprocess.run([sys.executable, str(BENCH / name), "--quick", *args],
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def number_after(label: str, text: str) -> float:
    m = re.search(re.escape(label) + r"\s+([\d,]+\.?\d*)", text)
    assert m, f"no figure after {label!r} in:\n{text}"
    return float(m.group(1).replace(",", ""))


def test_mock_upstream_speaks_openai() -> None:
    import httpx

    sys.path.insert(0, str(BENCH))
    try:
        from mock_upstream import COMPLETION_TEXT, MockUpstream
    finally:
        sys.path.remove(str(BENCH))
    with MockUpstream() as mock, httpx.Client(base_url=mock.base_url) as client:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        resp = client.post("/chat/completions", json=body).json()
        assert resp["choices"][0]["message"]["content"] == COMPLETION_TEXT
        assert resp["usage"]["total_tokens"] > 0
        with client.stream("POST", "/chat/completions",
                           json={**body, "stream": True,
                                 "stream_options": {"include_usage": True}}) as stream:
            events = [line for line in stream.iter_lines() if line.startswith("data:")]
        assert events[-1] == "data: [DONE]"
        assert '"usage"' in events[-2]
        emb = client.post("/embeddings", json={"model": "e", "input": ["a", "b"]}).json()
        assert len(emb["data"]) == 2
        assert client.get("/models").json()["data"]


def test_gateway_overhead_quick() -> None:
    out = run_script("gateway_overhead.py", "--no-litellm")
    for target in ("mock direct", "floor proxy", "python api", "workbench proxy"):
        assert re.search(rf"^{target}\s+\d", out, re.M), out
    assert "litellm proxy: not measured" in out
    assert number_after("one at a time): p50", out) >= 0  # x-workbench-overhead-ms
    assert "governance over the floor" in out
    assert number_after("sustains", out) > 0
    assert "0 open reservations" in out
    assert number_after("governance check:", out) > 0  # ledger rows written for the key


@pytest.mark.embedded
@pytest.mark.slow
def test_embedded_throughput_quick() -> None:
    out = run_script("embedded_throughput.py")
    assert re.search(r"^raw\s+\d", out, re.M) and re.search(r"^gateway\s+\d", out, re.M), out
    assert "same output text on both paths: True" in out
    assert number_after("gateway/raw tokens/s:", out) > 0


def test_import_time_quick() -> None:
    out = run_script("import_time.py")
    assert re.search(r"import workbench adds -?\d+ ms", out), out
    assert "heavy packages imported by `import workbench`: none" in out


def test_guardrails_cost_quick() -> None:
    out = run_script("guardrails_cost.py")
    assert number_after("ascii prose, no PII", out) > 0
    assert "ratio now/base per request:" in out


def test_session_overhead_bench() -> None:
    out = run_script("session_overhead.py", timeout=300)
    assert number_after("prompt lookup, cached (answer path)", out) > 0
    assert number_after("session turn: open + add (2 reads, 1 write)", out) > 0
def test_tool_governance_bench_reports_overhead() -> None:
    out = run_script("tool_governance.py", "--no-embedded")
    assert number_after("chat + 2 allowed tools", out) >= 0  # n column
    assert "tools/plain p50 ratio:" in out
