"""benchmarks/retrieval_s3_bench.py still runs (its tiny --quick mode: 300 chunks) and
prints every figure the issue asks for: ingest throughput and index build, query p50/p95
per mode, the first query after start, each on S3 and on local disk, and the S3/local
ratios. No assertion is about speed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.s3_server import S3Server

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "retrieval_s3_bench.py"
NUM = r"[\d,]+\.\d+"


@pytest.mark.s3
@pytest.mark.embedded
@pytest.mark.slow
def test_retrieval_s3_bench_quick(s3_server: S3Server) -> None:
    # s3_server: only so that a missing `weed` skips (or fails in CI) like the other S3
    # tests; the script starts its own server, as it does when run by hand.
    proc = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True,
                          text=True, timeout=1200)
    out = proc.stdout
    assert proc.returncode == 0, f"{out}\n{proc.stderr}"
    for store in ("local", "s3"):
        assert re.search(rf"^{store}\s+{NUM}\s+{NUM}\s+2\s+{NUM}$", out, re.M), out
        for mode in ("vector", "fts", "hybrid"):
            assert re.search(rf"^{store}\s+{mode}\s+one Searcher\s+{NUM}\s+{NUM}$", out,
                             re.M), out
        assert re.search(rf"^{store}\s+hybrid\s+new Searcher per query\s+{NUM}\s+{NUM}$",
                         out, re.M), out
        assert re.search(rf"^{store}\s+{NUM}\s+{NUM}$", out, re.M), out  # first, second query
    assert re.search(r"^S3/local: ingest time \d+\.\dx, index build \d+\.\dx$", out, re.M)
    assert re.search(r"^S3/local p50: vector \d+\.\dx, fts \d+\.\dx, hybrid \d+\.\dx, "
                     r"per-request \d+\.\dx$", out, re.M), out
    assert re.search(r"^S3/local: first query \d+\.\dx$", out, re.M), out
