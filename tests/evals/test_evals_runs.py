"""Runs: evaluate() with targets, storage, gates, comparisons and reports."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from workbench.errors import BadRequest, NotFound
from workbench.evals import (
    RunStore,
    assert_run,
    compare,
    evaluate,
    from_rows,
    load_run,
    target,
)
from workbench.evals import checks as c
from workbench.evals.assertions import EvalAssertionError
from workbench.models.gateway import Gateway

ROWS = [
    {"id": "capital", "question": "What is the capital of France?", "reference": "Paris",
     "tags": ["geo"], "checks": [{"contains": "Paris"}]},
    {"id": "sum", "question": "What is 2 + 2?", "reference": "4", "tags": ["math"],
     "checks": [{"numeric": 4}]},
    {"id": "mail", "question": "Who do I contact?", "reference": "The support team.",
     "tags": ["support"]},
]
GOOD = {"What is the capital of France?": "Paris", "What is 2 + 2?": "4",
        "Who do I contact?": "The support team."}
BAD = {**GOOD, "What is the capital of France?": "Lyon",
       "Who do I contact?": "Write to jane.doe@example.com"}


@pytest.fixture
def gw(make_gateway: Callable[..., Gateway]) -> Gateway:
    return make_gateway()


def lookup(answers: dict[str, str], **config: Any) -> Any:
    return target(lambda q: (answers[q], [f"context for {q}"]), **config)


def test_evaluate_runs_checks_and_metrics_and_stores_the_run(gw: Gateway) -> None:
    ds = from_rows(ROWS, name="mini", version="7")
    run = evaluate(ds, lookup(GOOD, model="m1", prompt="You answer briefly."), gateway=gw,
                   metrics=["exact_match", "rouge"], checks=[c.pii_free()], name="baseline")
    summary = run.summary()
    assert summary["exact_match"].mean == 1.0 and summary["exact_match"].n_ok == 3
    assert summary["checks"].pass_rate == 1.0 and summary["checks"].n == 5
    assert run.config["target"]["model"] == "m1" and run.config["target"]["prompt_hash"]
    assert run.config["metrics"] == ["exact_match", "rouge"]
    assert run.usage["judge_calls"] == 0 and run.samples[0].latency_ms is not None
    loaded = load_run(gw, run.id)
    assert loaded.to_dict()["summary"] == run.to_dict()["summary"]
    assert [s.to_dict() for s in loaded.scores] == [s.to_dict() for s in run.scores]
    assert loaded.dataset_ref == "mini@7#" + ds.fingerprint
    assert load_run(gw, "baseline").id == run.id == load_run(gw, "latest").id
    assert load_run(gw, run.id[:-2]).id == run.id
    assert "geo" in run.by_tag() and run.by_tag()["math"]["exact_match"].mean == 1.0


def test_a_failing_target_is_recorded_per_sample(gw: Gateway) -> None:
    def flaky(q: str) -> str:
        if "France" in q:
            raise RuntimeError("upstream down for jane.doe@example.com")
        return GOOD[q]

    run = evaluate(from_rows(ROWS), flaky, gateway=gw, metrics=["exact_match"])
    failed = run.sample("capital")
    assert failed.error and "upstream down" in failed.error and "jane.doe" not in failed.error
    scores = {(s.sample_id, s.metric): s for s in run.scores}
    assert scores[("capital", "exact_match")].status == "skipped"
    assert scores[("capital", "check:contains('Paris')")].status == "skipped"
    assert run.usage["target_failures"] == 1 and run.summary()["exact_match"].n_ok == 2
    recorded = evaluate(from_rows(ROWS), gateway=gw, metrics=["rouge"])  # no answers recorded
    assert all(r.error and "no recorded answer" in r.error for r in recorded.samples)


def test_stored_text_is_pii_masked(gw: Gateway) -> None:
    run = evaluate(from_rows(ROWS), lookup(BAD), gateway=gw, metrics=["rouge"])
    assert "jane.doe" in (run.sample("mail").answer or "")  # in memory: the real answer
    stored = load_run(gw, run.id).sample("mail")
    assert stored.answer == "Write to [EMAIL]"
    db = Path(gw.settings.data_dir, "workbench.db").read_bytes()
    assert b"jane.doe@example.com" not in db


def test_gates_hold_thresholds_and_failures(gw: Gateway) -> None:
    run = evaluate(from_rows(ROWS), lookup(BAD), gateway=gw, metrics=["exact_match"],
                   checks=[c.pii_free()])
    gate = run.gate({"exact_match": 0.3, "checks": 0.5})
    assert gate.passed and gate.per_metric == {"exact_match": True, "checks": True}
    strict = run.gate({"exact_match": 0.9, "checks": 1.0})
    assert not strict.passed and strict.lines[0].startswith("FAIL exact_match: mean 0.333")
    with pytest.raises(EvalAssertionError) as err:
        assert_run(run, {"exact_match": 0.9})
    msg = str(err.value)
    assert "capital [exact_match] 0.000" in msg and "What is the capital of France?" in msg
    with pytest.raises(BadRequest, match="cannot gate on"):
        run.gate({"faithfulness": 0.5})


def test_compare_shows_what_regressed_and_why(gw: Gateway) -> None:
    ds = from_rows(ROWS)
    base = evaluate(ds, lookup(GOOD, model="big-model"), gateway=gw,
                    metrics=["exact_match", "rouge"], checks=[c.pii_free()])
    cand = evaluate(ds, lookup(BAD, model="small-model"), gateway=gw,
                    metrics=["exact_match", "rouge"], checks=[c.pii_free()])
    result = compare(base, cand)
    assert result.regressed and result.same_dataset
    assert result.config_changes["target.model"] == ("big-model", "small-model")
    regressed = {(r.sample_id, r.metric) for r in result.regressions}
    assert ("capital", "exact_match") in regressed and ("mail", "check:pii_free") in regressed
    assert ("sum", "exact_match") not in regressed
    delta = next(d for d in result.deltas if d.metric == "exact_match")
    assert delta.delta == pytest.approx(-2 / 3) and delta.regressed
    assert not compare(base, base).regressed
    back = compare(cand, base)
    assert not back.regressions and back.improvements
    md = result.to_markdown()
    assert "REGRESSED" in md and "`target.model`: `big-model` → `small-model`" in md
    stored = compare(load_run(gw, "previous"), load_run(gw, "latest"))
    assert [r.to_dict() for r in stored.regressions] == [r.to_dict() for r in result.regressions]


def test_run_references_resolve_or_explain(gw: Gateway) -> None:
    with pytest.raises(NotFound, match="no previous run"):
        load_run(gw, "previous")
    a = evaluate(from_rows(ROWS), lookup(GOOD), gateway=gw, metrics=["rouge"])
    b = evaluate(from_rows(ROWS), lookup(GOOD), gateway=gw, metrics=["rouge"])
    assert load_run(gw, "previous").id == a.id and load_run(gw, "latest").id == b.id
    with pytest.raises(BadRequest, match="matches 2 runs"):
        load_run(gw, "run_")
    with pytest.raises(NotFound):
        load_run(gw, "run_nope")
    assert [r["id"] for r in RunStore(gw.store).list()] == [b.id, a.id]


def test_reports_are_self_contained(gw: Gateway, tmp_path: Path) -> None:
    base = evaluate(from_rows(ROWS), lookup(GOOD), gateway=gw, metrics=["rouge", "exact_match"])
    run = evaluate(from_rows(ROWS), lookup(BAD), gateway=gw, metrics=["rouge", "exact_match"])
    html = run.to_html(gate={"rouge": 0.9}, comparison=compare(base, run))
    assert html.startswith("<!doctype html>") and "<svg" in html and "<style>" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing to fetch
    assert "Gate FAILED" in html and "Regressed samples" in html and "rouge by tag" in html
    assert "&lt;script&gt;" in evaluate(
        from_rows([{"question": "<script>alert(1)</script>?", "reference": "x"}]),
        lambda q: "x", gateway=gw, metrics=["rouge"]).to_html()
    out = Path(run.write_report(str(tmp_path / "r" / "report.html")))
    assert out.read_text(encoding="utf-8") .count("<svg") >= 3
    md = Path(run.write_report(str(tmp_path / "summary.md"), gate={"rouge": 0.9}))
    text = md.read_text(encoding="utf-8")
    assert "| rouge |" in text and "Gate: FAILED" in text
    assert "<table" in run._repr_html_()


def _extractive(gw: Gateway, collection: str) -> Any:
    """A retrieval-only target (no LLM): the best chunk is the answer."""
    from workbench.retrieval import Collections, search

    meta = Collections.for_settings(gw.settings).require_meta(collection)

    def answer(q: str) -> tuple[str, list[str]]:
        hits = search(gw, q, collection=collection, k=1, mode="vector")
        return (hits[0].text if hits else ""), [h.text for h in hits]

    return target(answer, chunking=meta.chunking, retrieval_mode="vector")


CORPUS = """# Rotating keys

Operators rotate the signing key with `workbench keys rotate --grace-hours 48` on the
primary replica, then restart every gateway worker so the new key is loaded everywhere.

# Restoring backups

To restore the store, stop all replicas and run `workbench store restore --from nightly`
before anyone starts a gateway again, otherwise the ledger diverges between replicas.

# Raising budgets

A team's spend limit is raised by an admin with `workbench teams set analytics --budget-usd 250`
and the change applies to the very next request that the team makes.
"""


@pytest.mark.embedded
def test_a_chunking_change_shows_up_as_a_regression(gw: Gateway, tmp_path: Path) -> None:
    from workbench.retrieval import ChunkingConfig, ingest

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ops.md").write_text(CORPUS)
    ingest(gw, [docs], collection="by_section", progress=False)
    ingest(gw, [docs], collection="tiny_windows", progress=False,
           chunking=ChunkingConfig(strategy="fixed", max_tokens=16, overlap=0))
    ds = from_rows([
        {"id": "rotate", "question": "How do operators rotate the signing key?",
         "reference": "workbench keys rotate --grace-hours 48, then restart every gateway worker",
         "checks": [{"contains": ["keys rotate --grace-hours 48", "restart every gateway worker"]}]},
        {"id": "restore", "question": "How do I restore the store from a backup?",
         "reference": "stop all replicas and run workbench store restore --from nightly",
         "checks": [{"contains": ["stop all replicas", "store restore --from nightly"]}]},
        {"id": "budget", "question": "How is a team's budget raised?",
         "reference": "workbench teams set analytics --budget-usd 250",
         "checks": [{"contains": ["teams set analytics --budget-usd 250", "very next request"]}]},
    ], name="ops")
    base = evaluate(ds, _extractive(gw, "by_section"), gateway=gw, metrics=["rouge"])
    cand = evaluate(ds, _extractive(gw, "tiny_windows"), gateway=gw, metrics=["rouge"])
    assert base.summary()["checks"].pass_rate == 1.0
    result = compare(base, cand)
    assert result.regressed
    assert result.config_changes["target.chunking.strategy"] == ("markdown", "fixed")
    assert result.config_changes["target.chunking.max_tokens"] == (200, 16)
    assert any(r.metric.startswith("check:contains") for r in result.regressions)
    checks = next(d for d in result.deltas if d.metric == "checks")
    assert checks.delta is not None and checks.delta < 0


@pytest.mark.embedded
@pytest.mark.slow
def test_rag_target_answers_with_contexts_and_records_the_pipeline(gw: Gateway,
                                                                   tmp_path: Path) -> None:
    from workbench.evals import rag_target
    from workbench.models import ledger
    from workbench.retrieval import ingest

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ops.md").write_text(CORPUS)
    ingest(gw, [docs], collection="ops", progress=False)
    tgt = rag_target(gw, collection="ops", k=2, mode="hybrid", max_tokens=8)
    ds = from_rows([{"id": "rotate", "question": "How do operators rotate the signing key?",
                     "reference": "workbench keys rotate --grace-hours 48"}])
    run = evaluate(ds, tgt, gateway=gw, metrics=["rouge"])
    rec = run.samples[0]
    assert rec.error is None and rec.answer and rec.trace_id
    assert rec.contexts and "keys rotate" in rec.contexts[0]
    cfg = run.config["target"]
    assert cfg["kind"] == "rag" and cfg["retrieval_mode"] == "hybrid" and cfg["k"] == 2
    assert cfg["chunking"]["strategy"] == "markdown" and cfg["model"] == "smollm2-135m"
    assert cfg["prompt_hash"] and cfg["embed_model"] == "minilm-l6-v2"
    # The embedded model answers extractively: retrieval and evidence scoring embed, no
    # chat call; every call of the answer is in one trace.
    assert cfg["answer_strategy"] == "extractive"
    endpoints = {r["endpoint"] for r in ledger.entries(gw.store, trace_id=rec.trace_id)}
    assert endpoints == {"embeddings"}
