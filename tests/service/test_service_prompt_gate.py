"""The route to live of a prompt change, end to end on the service: a candidate version
is evaluated, moved to production behind the eval gate, and then shows up in the answers'
spans, in the eval runs (and `eval compare`), in the probes' drift report and in the
route-to-live deployments."""

from __future__ import annotations

from typing import Any

import pytest

from tests.servers import live_server
from tests.service.service_helpers import QUESTION
from workbench import evals, prompts
from workbench.evals import probes
from workbench.observability.traces import flush, get_trace

NEW = [{"role": "system", "content": "You are the lighthouse desk. Cite sources like [1]."},
       {"role": "user", "content": "{{sources}}\n\nQ: {{question}}"}]
GOLDEN = [{"id": "lamp", "question": QUESTION, "checks": [{"contains": "dusk"}]}]


def test_candidate_to_production_behind_the_gate(served: Any) -> None:
    with live_server(served.app) as base:
        _route_to_live(served, probes.HttpTarget(
            base + "/ask", key=served.headers["Authorization"].split()[1]))


def _route_to_live(served: Any, target: probes.HttpTarget) -> None:
    gw, store = served.gw, served.gw.store
    probe = probes.Probe(name="lamp", input=QUESTION, expect={"pattern": "dusk"})
    first = probes.run_probes([probe], target, store)
    assert first.ok and first.results[0].prompt_version == prompts.get(
        store, prompts.RAG_ANSWER).ref

    live = evals.evaluate(evals.from_rows(GOLDEN), evals.rag_target(gw, collection="docs"),
                          metrics=[], gateway=gw)
    cand = prompts.push(store, prompts.RAG_ANSWER, NEW, labels=["candidate"],
                        description="the desk's voice")
    run = evals.evaluate(evals.from_rows(GOLDEN), evals.rag_target(
        gw, collection="docs", prompt="rag.answer@candidate"), metrics=[], gateway=gw)
    assert run.config["target"]["prompt"] == {"name": "rag.answer", "version": cand.version}
    assert evals.compare(live, run).prompt_change == (
        f"the prompt changed: {prompts.builtins()[prompts.RAG_ANSWER].ref} -> {cand.ref}")
    # the eval's own traffic is not product traffic
    flush(store)
    assert get_trace(store, run.samples[0].trace_id).roots[0].attributes[
        "workbench.traffic"] == "eval"

    with pytest.raises(prompts.GateBlocked):  # a run of the live prompt cannot ship it
        prompts.promote(store, prompts.RAG_ANSWER, live, {"checks": 1.0})
    prompts.promote(store, prompts.RAG_ANSWER, run, {"checks": 1.0}, actor="ci")

    answer = served.client.post("/ask", json={"question": QUESTION},
                                headers=served.headers).json()
    assert answer["prompt"] == cand.ref
    flush(store)
    spans = get_trace(store, answer["trace_id"]).spans
    assert {s.attributes.get("workbench.prompt.version") for s in spans} == {cand.version}

    second = probes.run_probes([probe], target, store)
    assert second.results[0].prompt_version == cand.ref
    (drift,) = second.drift
    assert drift.kind == "prompt" and cand.ref in drift.message
    assert probes.history(store, "lamp")[0]["prompt_version"] == cand.ref

    (deploy,) = prompts.deployments(store)
    assert deploy["change"] == f"prompt {cand.ref}" and deploy["kind"] == "prompt"
    assert deploy["gate"] == f"{run.id}: passed" and deploy["failure"] is None
    # the probes' answers were marked as probe traffic by HttpTarget's header
    assert get_trace(store, second.results[0].trace_id or "").roots[0].attributes[
        "workbench.traffic"] == "probe"
