"""The workbench's own judge metrics (no ragas) against ragas' collections metrics: the
same scripted judge answers both, so any difference is in how the metric turns
judgements into a score. Everything else is real: the in-process proxy, the Gateway,
the ledger and the embedded MiniLM embeddings."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from tests.evals.rule_judge import RuleJudgeProvider
from workbench.evals import Judge
from workbench.evals.records import SampleRecord
from workbench.models.gateway import Gateway

pytestmark = pytest.mark.embedded  # MiniLM embeddings; no llama.cpp model is loaded

CTX = ["The default profile is embedded. It needs no API key and no network.",
       "Keys are created with workbench keys create and shown once."]
Q = "What does the default profile need?"
FIXED = [  # (sample id, answer, the faithfulness the rules give)
    ("all", "The default profile is embedded. It needs no API key and no network.", 1.0),
    ("half", "The default profile is embedded. It sends every prompt to OpenAI servers.", 0.5),
    ("none", "Budgets reset every Monday morning automatically.", 0.0),
    ("third", "Keys are created with workbench keys create. Teams share dashboards weekly. "
              "Billing exports arrive monthly.", 1 / 3),
    ("evasive", "I don't know what the default profile needs.", None),
]


@pytest.fixture
def gateway(make_gateway: Callable[..., Gateway]) -> tuple[Gateway, RuleJudgeProvider]:
    rules = RuleJudgeProvider()
    gw = make_gateway(providers={"rules": rules}, models=[{"name": "rule-judge", "provider": "rules"}])
    return gw, rules


def _records() -> list[SampleRecord]:
    return [SampleRecord(sid, Q, answer, CTX, None) for sid, answer, _ in FIXED]


def _scores(gw: Gateway, metrics: list[str]) -> dict[tuple[str, str], float]:
    with Judge(gw, model="rule-judge", cache=False) as judge:
        scores = judge.score(_records(), metrics)
    failed = [(s.sample_id, s.metric, s.reason) for s in scores if s.status != "ok"]
    assert not failed, failed
    return {(s.sample_id, s.metric): float(s.value or 0.0) for s in scores}


def test_own_metrics_agree_with_ragas_on_a_fixed_set(
        gateway: tuple[Gateway, RuleJudgeProvider]) -> None:
    gw, _ = gateway
    got = _scores(gw, ["faithfulness", "wb_faithfulness", "answer_relevancy",
                       "wb_answer_relevancy"])
    for sid, _, expected in FIXED:
        ours, theirs = got[(sid, "wb_faithfulness")], got[(sid, "faithfulness")]
        assert ours == pytest.approx(theirs, abs=1e-9), sid
        if expected is not None:
            assert ours == pytest.approx(expected), sid  # the set spans 0, 1/3, 1/2 and 1
        ours, theirs = got[(sid, "wb_answer_relevancy")], got[(sid, "answer_relevancy")]
        assert ours == pytest.approx(theirs, abs=1e-4), sid
    assert got[("evasive", "wb_answer_relevancy")] == 0.0  # noncommittal
    assert got[("all", "wb_answer_relevancy")] > 0.3


def test_own_faithfulness_makes_one_call_where_ragas_makes_two(
        gateway: tuple[Gateway, RuleJudgeProvider]) -> None:
    gw, rules = gateway
    _scores(gw, ["wb_faithfulness"])
    ours, rules.calls = rules.calls, 0
    _scores(gw, ["faithfulness"])
    assert (ours, rules.calls) == (len(FIXED), 2 * len(FIXED))


def test_own_metrics_run_without_ragas(gateway: tuple[Gateway, RuleJudgeProvider],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    gw, _ = gateway
    for name in [m for m in sys.modules if m == "ragas" or m.startswith("ragas.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ragas", None)  # `import ragas` now raises ImportError
    got = _scores(gw, ["wb_faithfulness", "wb_answer_relevancy"])
    assert got[("half", "wb_faithfulness")] == pytest.approx(0.5)
    with pytest.raises(ImportError):
        _scores(gw, ["faithfulness"])
