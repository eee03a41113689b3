"""benchmarks/service_load.py still runs (tiny --quick mode, mock upstream only) and
reports its figures; no assertion is about speed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "service_load.py"


@pytest.mark.slow
def test_service_load_quick() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--skip-embedded"],
                          capture_output=True, text=True, timeout=900)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    for label in ("mock in-process ask (baseline)", "mock POST /ask", "mock feedback"):
        assert re.search(rf"^{re.escape(label)}\s+\d", out, re.M), out
    assert re.search(r"server RSS first / last / max MB\s+\d+ / \d+ / \d+", out), out
    assert re.search(r"mock persistence: (\d+)/\1 acknowledged answers in the ledger, "
                     r"(\d+)/\2 acknowledged feedback rows stored, 0 open reservations "
                     r"-> nothing lost", out), out
