"""benchmarks/answers_bench.py still runs (its --quick mode: three questions, one
off-topic) and prints every figure the issue asks for, per strategy and for the
baseline. No assertion is about speed or accuracy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "answers_bench.py"


@pytest.mark.embedded
@pytest.mark.slow
def test_answers_bench_quick() -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True,
                          text=True, timeout=1800)
    out = proc.stdout
    assert proc.returncode == 0, f"{out}\n{proc.stderr}"
    assert re.search(r"loadavg\(1/5/15 min\)=[\d.]+/", out), out
    frac = r"\d+/3 +\d+%"
    for run in ("baseline", "free", "constrained", "extractive"):
        assert re.search(rf"^{run}\s+{frac}\s+{frac}\s+{frac}\s+\d/1\s+(\d+%|-)\s+"
                         r"[\d.]+\s+[\d.]+\s+[\d.]+$", out, re.M), out


def test_every_label_is_well_formed() -> None:
    sys.path.insert(0, str(BENCH.parent))
    try:
        from answers_bench import load_questions
    finally:
        sys.path.remove(str(BENCH.parent))
    qs = load_questions()
    on = [q for q in qs if not q.off_topic]
    assert len(on) >= 40 and len(qs) - len(on) >= 8
    assert len({q.id for q in qs}) == len(qs)
    for q in on:
        assert q.source and q.facts and all(q.facts), q.id
    assert all(not q.facts and q.source is None for q in qs if q.off_topic)
