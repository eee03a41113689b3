"""benchmarks/retrieval_bench.py still runs (its tiny --quick mode) and prints every
figure the issue asks for. No assertion is about speed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "retrieval_bench.py"


@pytest.mark.embedded
@pytest.mark.slow
def test_retrieval_bench_quick() -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True,
                          text=True, timeout=1200)
    out = proc.stdout
    assert proc.returncode == 0, f"{out}\n{proc.stderr}"
    assert re.search(r"pipeline overhead vs raw embedder: -?\d+\.\d%", out), out
    assert re.search(r"^unchanged corpus\s+[\d.]+\s+0\s+0\s+\d+", out, re.M), out
    for mode, index in (("vector", "none"), ("fts", "FTS"), ("hybrid", "none"),
                        ("vector", "IVF_HNSW_SQ")):
        assert re.search(rf"^500\s+{mode}\s+{index}\s+[\d.]+\s+[\d.]+", out, re.M), out
    for method in ("vector", "fts", "hybrid", "bm25"):
        assert re.search(rf"^{method}\s+[01]\.\d+\s+[01]\.\d+", out, re.M), out
