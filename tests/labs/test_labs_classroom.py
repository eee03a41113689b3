"""Labs 1-4 in CI mode on an attendee's machine joined to a facilitator's gateway (another
process, loopback): they pass unchanged, and their model calls reach the facilitator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.classroom_support import attendee, facilitator_gateway
from tests.labs.labs_support import LABS, PYTHON, run, tail

pytestmark = [pytest.mark.slow, pytest.mark.embedded]

LABS_1_TO_4 = ["01_welcome", "02_first_calls", "03_governance", "04_rag"]


def test_labs_1_to_4_run_through_the_facilitators_gateway(tmp_path: Path) -> None:
    with facilitator_gateway(tmp_path / "facilitator") as fac:
        (row,) = fac.create(1, budget=100, rpm=10_000, team="labs")
        ada = attendee(tmp_path, "ada")
        joined = ada.wb("join", fac.url, row["key"])
        assert joined.returncode == 0, joined.stderr
        for lab in LABS_1_TO_4:
            proc = run([PYTHON, str(LABS / f"{lab}.py"), "--ci", "1"], cwd=ada.root,
                       timeout=1200, env=ada.env)
            assert proc.returncode == 0, f"{lab}\n{tail(proc)}"
            assert row["key"] not in proc.stdout + proc.stderr
        usage = fac.wb("usage", "--by", "key,model", "--json")
        assert usage.returncode == 0, usage.stderr
        served = {(u["key"], u["model"]): u["calls"] for u in json.loads(usage.stdout)}
        # Chat and embeddings of the labs ran in the facilitator's process, on Ada's key.
        assert served.get((row["key_id"], "smollm2-135m"), 0) > 0, served
        assert served.get((row["key_id"], "minilm-l6-v2"), 0) > 0, served
