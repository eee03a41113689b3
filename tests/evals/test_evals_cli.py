"""`workbench eval`: the shipped sample offline, the real embedded judge, the cache, gates,
comparisons and clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


def wb(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command in a child process (what a CI job runs)."""
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, env=dict(os.environ), timeout=900)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """``workbench.cli.main`` in this process: the same exit codes and output as the
    command, without paying the imports again for every call."""
    from workbench.cli import main

    def run(*args: str) -> Result:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["workbench", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return run


@pytest.mark.embedded
@pytest.mark.slow
def test_sample_set_offline_with_the_embedded_judge_then_cached(tmp_path: Path) -> None:
    args = ["eval", "sample", "--limit", "1", "-m", "answer_relevancy,rouge", "--json"]
    first = wb(*args, "--report", "first.html")
    assert first.returncode == 0, first.stderr
    run = json.loads(first.stdout)
    judged = next(s for s in run["scores"] if s["metric"] == "answer_relevancy")
    # The tiny judge may fail a row; then the reason says why. Never a silent NaN.
    assert (judged["status"] == "ok" and judged["value"] is not None) or judged["reason"]
    assert judged["calls"] >= 1 and run["usage"]["judge_calls"] >= 1
    assert run["config"]["judge"]["model"] == "smollm2-135m"
    assert "not for trusting the scores" in run["config"]["judge"]["warning"]
    assert run["config"]["judge"]["team"] == "evals"
    report = (tmp_path / "first.html").read_text(encoding="utf-8")
    assert "<svg" in report and "Tiny judge" in report and "https://" not in report

    second = wb(*args)
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert again["usage"]["judge_calls"] == 0 and again["usage"]["cache_hits"] == 1
    cached = next(s for s in again["scores"] if s["metric"] == "answer_relevancy")
    assert cached["cached"] and cached["value"] == judged["value"]

    compared = wb("eval", "compare", run["id"], "latest", "--json")
    assert compared.returncode == 0, compared.stderr
    assert json.loads(compared.stdout)["regressed"] is False


def test_gate_failure_exits_1_and_lists_failing_samples(cli: Callable[..., Result],
                                                        tmp_path: Path) -> None:
    wb = cli
    out = wb("eval", "sample", "-m", "rouge", "--fail-under", "rouge=0.3",
             "--fail-under", "checks=0.99", "--markdown", "summary.md")
    assert out.returncode == 1, out.stderr
    assert "FAIL checks: pass rate 0.800" in out.stdout
    assert "budget-concurrency" in out.stdout and "missing 'reserv'" in out.stdout
    assert "ok   rouge" in out.stdout
    md = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "Gate: FAILED" in md and "| rouge |" in md

    ok = wb("eval", "run", "sample", "-m", "rouge", "--tag", "setup", "--name", "setup-only")
    assert ok.returncode == 0, ok.stderr
    listed = json.loads(wb("eval", "runs", "--json").stdout)
    assert [r["name"] for r in listed] == ["setup-only", None]
    assert listed[0]["samples"] == 3
    cmp = wb("eval", "compare", "previous", "setup-only")
    assert cmp.returncode == 0 and "different dataset versions" in cmp.stdout
    shown = wb("eval", "show", "setup-only", "--report", "show.html")
    assert shown.returncode == 0 and (tmp_path / "show.html").exists()


def test_bad_input_is_a_clear_error(cli: Callable[..., Result], tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"question": "ok?"}\n{"answer": "no question"}\n')
    out = wb("eval", "bad.jsonl", "-m", "rouge")  # a real child process: exit code, stderr
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "line 2: question: Field required" in out.stderr
    wb_ = cli
    for args, msg in ((["eval", "sample", "-m", "nope"], "unknown metric"),
                      (["eval", "sample", "--fail-under", "rouge"], "metric=value"),
                      (["eval", "sample", "--target", "rag", "-m", "rouge"], "ingest documents"),
                      (["eval", "compare", "previous", "latest"], "no previous run")):
        res = wb_(*args)
        assert res.returncode == 1 and msg in res.stderr and "Traceback" not in res.stderr, args
    metrics = json.loads(wb_("eval", "metrics", "--json").stdout)
    assert {m["metric"] for m in metrics} >= {"faithfulness", "answer_relevancy", "rouge", "bleu"}
