"""The judge: ragas collections through the real Gateway proxy (in-process ASGI), the
judge cache, and failures per row.

The judge LLM is a FakeProvider behind the Provider seam (so outputs and failures are
exact and fast); everything else is real: the proxy, policy, ledger, ragas, instructor,
and the embedded MiniLM for embeddings. The real embedded judge runs in
test_evals_cli.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.fakes import FakeProvider, priced
from workbench.errors import PermissionDenied
from workbench.evals import Judge, evaluate, from_rows
from workbench.evals.judge import fit_contexts, run_sync
from workbench.evals.records import SampleRecord
from workbench.models import ledger
from workbench.models.gateway import Gateway

pytestmark = pytest.mark.embedded  # MiniLM embeddings (fast); no llama.cpp model is loaded

RELEVANT = json.dumps({"question": "Which profile is the default?", "noncommittal": 0})
Q = "Which profile does the workbench use by default?"
A = "The default profile is embedded; it needs no key and no network."
CTX = ["The default profile is `embedded`: no key, no network."]
REF = "The default profile is embedded."


@pytest.fixture
def judge_env(make_gateway: Callable[..., Gateway]) -> Callable[..., tuple[Gateway, FakeProvider]]:
    def make(text: str = RELEVANT, **fake_kw: Any) -> tuple[Gateway, FakeProvider]:
        fake = FakeProvider(text=text, **fake_kw)
        gw = make_gateway(providers={"fake": fake},
                          models=[{"name": "fake-judge", "provider": "fake"},
                                  priced("pricey-judge", provider="fake")])
        return gw, fake

    return make


def rec(answer: str = A, **kw: Any) -> SampleRecord:
    return SampleRecord(kw.pop("sample_id", "s1"), Q, answer, kw.pop("contexts", CTX),
                        kw.pop("reference", REF), **kw)


def judge_rows(gw: Gateway, trace_id: str) -> list[dict[str, Any]]:
    return ledger.entries(gw.store, limit=100, trace_id=trace_id)


def test_judge_calls_are_governed_counted_and_cached(judge_env: Any) -> None:
    gw, fake = judge_env()
    with Judge(gw, model="fake-judge") as judge:
        [score] = judge.score([rec()], ["answer_relevancy"])
        assert score.status == "ok" and score.value is not None and 0.5 < score.value <= 1.0
        # strictness 1: one chat call, then two embedding calls (question, generated one)
        assert score.calls == 3 and score.embed_calls == 2 and score.prompt_tokens == 10
        assert not score.cached
        rows = judge_rows(gw, str(score.trace_id))
        assert sorted(r["endpoint"] for r in rows) == ["chat", "embeddings", "embeddings"]
        assert {r["team"] for r in rows} == {"evals"} and {r["outcome"] for r in rows} == {"ok"}
        key_id = judge.describe()["key_id"]
        assert {r["key_id"] for r in rows} == {key_id}
        # The judge asked for schema-constrained JSON (what the embedded runtime turns
        # into a grammar) at temperature 0.
        body = fake.calls[0]
        assert body["response_format"]["type"] == "json_schema" and body["temperature"] == 0

        n_fake, n_ledger = len(fake.calls), len(ledger.entries(gw.store, limit=1000))
        [again] = judge.score([rec()], ["answer_relevancy"])
        assert again.cached and again.calls == 0 and again.saved_calls == 3
        assert again.value == score.value
        assert len(fake.calls) == n_fake and len(ledger.entries(gw.store, limit=1000)) == n_ledger

        [changed] = judge.score([rec(answer=A + " Really.")], ["answer_relevancy"])
        assert not changed.cached and changed.calls == 3
    keys = {k["id"]: k for k in gw.policy.list_keys()}
    assert keys[key_id]["team"] == "evals" and keys[key_id]["revoked_at"] is not None
    assert keys[key_id]["models"] == ["fake-judge", "minilm-l6-v2"]


def test_metric_settings_are_part_of_the_cache_key(judge_env: Any) -> None:
    gw, fake = judge_env()
    with Judge(gw, model="fake-judge") as one:
        one.score([rec()], ["answer_relevancy"])
    calls = len(fake.calls)
    with Judge(gw, model="fake-judge", options={"answer_relevancy": {"strictness": 3}}) as three:
        [score] = three.score([rec()], ["answer_relevancy"])
    assert not score.cached and len(fake.calls) == calls + 3  # ragas' default: 3 calls
    with Judge(gw, model="fake-judge", options={"answer_relevancy": {"strictness": 3}}) as again:
        assert again.score([rec()], ["answer_relevancy"])[0].cached


def test_nan_becomes_a_cached_failure_never_an_average(judge_env: Any) -> None:
    gw, fake = judge_env(text=json.dumps({"statements": []}))
    ds = from_rows([{"id": "a", "question": Q, "answer": A, "contexts": CTX, "reference": REF},
                    {"id": "b", "question": Q, "answer": A + " More.", "contexts": CTX}])
    with Judge(gw, model="fake-judge") as judge:
        run = evaluate(ds, metrics=["faithfulness", "rouge"], judge=judge)
    faith = run.summary()["faithfulness"]
    assert faith.n_failed == 2 and faith.n_ok == 0 and faith.mean is None
    failure = run.failures()[0]
    assert failure.value is None and "NaN" in (failure.reason or "")
    assert run.summary()["rouge"].n_skipped == 1  # row b has no reference: said, not dropped
    gate = run.gate({"faithfulness": 0.1})
    assert not gate.passed and "no sample was scored" in gate.lines[0]
    calls = len(fake.calls)
    with Judge(gw, model="fake-judge") as judge:
        cached = evaluate(ds, metrics=["faithfulness"], judge=judge)
    assert len(fake.calls) == calls and all(s.cached for s in cached.failures())
    with Judge(gw, model="fake-judge", retry_failed=True) as judge:
        evaluate(ds, metrics=["faithfulness"], judge=judge)
    assert len(fake.calls) > calls


def test_invalid_judge_output_fails_the_row_after_bounded_attempts(judge_env: Any) -> None:
    gw, fake = judge_env(text="I think it is relevant, yes!")
    with Judge(gw, model="fake-judge", max_attempts=2) as judge:
        [score] = judge.score([rec()], ["answer_relevancy"])
    assert score.status == "failed"
    assert "did not validate after 2 attempt(s)" in (score.reason or "")
    assert len(fake.calls) == 2 and score.calls == 2


def test_timeouts_fail_the_row_and_are_retried_next_run(judge_env: Any) -> None:
    gw, fake = judge_env(delay_s=1.5)
    recs = [rec(sample_id="slow"), rec(sample_id="also-slow", answer="Another answer.")]
    with Judge(gw, model="fake-judge", timeout_s=0.3, concurrency=2) as judge:
        scores = judge.score(recs, ["answer_relevancy"])
        assert [s.status for s in scores] == ["failed", "failed"]
        assert all("timed out after 0.3s" in (s.reason or "") for s in scores)
        calls = len(fake.calls)
        judge.score(recs[:1], ["answer_relevancy"])  # transient: not cached
        assert len(fake.calls) == calls + 1


def test_gateway_refusals_are_row_failures(judge_env: Any) -> None:
    gw, fake = judge_env()
    gw.policy.set_team("evals", budget_usd=0.0000001)
    with Judge(gw, model="pricey-judge") as judge:
        [score] = judge.score([rec()], ["answer_relevancy"])
    assert score.status == "failed" and "gateway 429" in (score.reason or "")
    assert "budget" in (score.reason or "") and not fake.calls
    denied = [r for r in ledger.entries(gw.store, limit=10) if r["outcome"] == "denied"]
    assert denied and denied[0]["team"] == "evals"


def test_a_team_allowlist_without_the_judge_model_fails_up_front(judge_env: Any) -> None:
    gw, _ = judge_env()
    gw.policy.set_team("evals", models=["smollm2-135m", "minilm-l6-v2"])
    judge = Judge(gw, model="fake-judge")
    with pytest.raises(PermissionDenied, match="may not use 'fake-judge'"):
        judge.score([rec()], ["answer_relevancy"])
    judge.close()


def test_missing_fields_and_failed_targets_are_skipped_with_reasons(judge_env: Any) -> None:
    gw, fake = judge_env()
    with Judge(gw, model="fake-judge") as judge:
        no_ref = judge.score([rec(reference=None)], ["context_recall"])[0]
        broken = judge.score([rec(error="UpstreamError: down")], ["answer_relevancy"])[0]
    assert no_ref.status == "skipped" and "needs reference" in (no_ref.reason or "")
    assert broken.status == "skipped" and "target failed" in (broken.reason or "")
    assert not fake.calls


def test_contexts_are_fitted_to_a_small_judge_window(judge_env: Any) -> None:
    long = ["word " * 400, "other " * 400]
    fitted = fit_contexts(long, 1000)
    assert sum(len(c) for c in fitted) <= 1010 and all(c.endswith(" …") for c in fitted)
    assert fit_contexts(CTX, 1000) == CTX and fit_contexts(long, None) == long
    gw, _ = judge_env()
    small = Judge(gw)  # smollm2-135m: 2k context window
    assert small.max_context_chars is not None and small.concurrency == 1
    assert small.describe()["warning"] and "smollm2-135m" in small.describe()["warning"]
    big = Judge(gw, model="fake-judge")
    assert big.max_context_chars is None and big.concurrency == 4 and not big.describe()["warning"]


def test_run_sync_works_inside_a_running_loop() -> None:
    async def inner() -> int:
        return 7

    async def notebook_cell() -> int:
        return run_sync(inner())  # what a Jupyter cell does

    assert asyncio.run(notebook_cell()) == 7


def test_lexical_metrics_match_ragas() -> None:
    import os

    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
    from ragas.metrics import collections as rc

    from workbench.evals import lexical

    pairs = [(REF, A), ("Run workbench keys create. The key is printed once.",
                        "Run `workbench keys create --team T`. It is shown once."), ("x", "x")]
    ours = [lexical.ExactMatch(), lexical.StringSimilarity(), lexical.Bleu(), lexical.Rouge()]
    theirs = [rc.ExactMatch(), rc.NonLLMStringSimilarity(), rc.BleuScore(), rc.RougeScore()]

    async def both() -> None:
        for ref, resp in pairs:
            for a, b in zip(ours, theirs, strict=True):
                mine = (await a.ascore(reference=ref, response=resp)).value
                ref_value = (await b.ascore(reference=ref, response=resp)).value
                assert mine == pytest.approx(ref_value), type(a).__name__

    asyncio.run(both())
