"""The observability benchmark scripts still run (tiny ``--quick`` mode); no assertion is
about speed, only that they print the figures the report quotes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def run(name: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_TEST_POSTGRES_URL"}
    proc = subprocess.run([sys.executable, str(BENCH / name), "--quick", *args],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_tracing_bench_prints_per_span_and_per_call_costs() -> None:
    out = run("tracing_bench.py", "--no-embedded")
    assert "per-span cost over the loop baseline (us)" in out
    assert "per-call tracing cost (us)" in out
    assert "otlp unreachable: exported=0" in out


def test_feedback_bench_reports_nothing_lost() -> None:
    out = run("tracing_feedback_bench.py")
    assert "acknowledged but not persisted  0" in out
