"""Sessions on POST /ask (history through the gateway, session.id on spans, per-key
ownership), session-level escalate feedback, containment on /metrics and in the product
metrics, probe traffic left out, and a prompt label move showing up in answers and spans."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.service.service_helpers import FAKE_ANSWER, QUESTION, assert_error, sse
from workbench import prompts
from workbench.observability.metrics import product_metrics
from workbench.observability.traces import flush, get_trace, list_traces


def _ask(served: Any, question: str = QUESTION, session_id: str | None = None,
         headers: dict[str, str] | None = None) -> Any:
    body: dict[str, Any] = {"question": question}
    if session_id:
        body["session_id"] = session_id
    return served.client.post("/ask", json=body, headers={**served.headers, **(headers or {})})


def test_a_session_carries_history_through_the_gateway(served: Any) -> None:
    first = _ask(served)
    assert first.status_code == 200, first.text
    sid = first.json()["session_id"]
    assert sid and first.headers["x-workbench-session-id"] == sid
    assert first.json()["history_turns"] == 0
    second = _ask(served, "When does the keeper trim the wick?", sid)
    assert second.json()["session_id"] == sid and second.json()["history_turns"] == 1
    messages = served.provider.calls[-1]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == QUESTION and messages[2]["content"] == FAKE_ANSWER
    assert messages[3]["content"].endswith("Question: When does the keeper trim the wick?")
    # the header works as well as the body field; a new question without either is new
    third = _ask(served, "How often does the foghorn sound in fog?", headers={"x-workbench-session-id": sid})
    assert third.json()["history_turns"] == 2
    assert _ask(served).json()["session_id"] != sid

    flush(served.gw.store)
    ids = [r["trace_id"] for r in list_traces(served.gw.store, session=sid)]
    assert sorted(ids) == sorted(r.json()["trace_id"] for r in (first, second, third))
    cli = subprocess.run([sys.executable, "-m", "workbench", "traces", "--session", sid,
                          "--json"], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert sorted(r["trace_id"] for r in json.loads(cli.stdout)) == sorted(ids)
    trace = get_trace(served.gw.store, second.json()["trace_id"])
    assert {s.attributes.get("session.id") for s in trace.spans} == {sid}
    assert trace.roots[0].attributes["user.id"] == served.key_id


def test_streamed_answers_join_the_session(served: Any) -> None:
    sid = _ask(served).json()["session_id"]
    resp = served.client.post("/ask/stream", json={"question": "When is the wick trimmed by the keeper?",
                                                    "session_id": sid},
                              headers=served.headers)
    assert resp.headers["x-workbench-session-id"] == sid
    done = [d for e, d in sse(resp.text) if e == "done"][0]
    assert done["session_id"] == sid and done["history_turns"] == 1


def test_sessions_belong_to_their_key_and_ids_are_checked(served: Any) -> None:
    sid = _ask(served).json()["session_id"]
    _, other = served.new_key(team="other")
    resp = served.client.post("/ask", json={"question": QUESTION, "session_id": sid},
                              headers=other)
    assert_error(resp, 403, "session_forbidden")
    assert_error(_ask(served, session_id="bad id!"), 400, "invalid_session_id")
    # escalating someone else's session is refused too
    resp = served.client.post("/feedback", json={"session_id": sid, "kind": "escalate"},
                              headers=other)
    assert resp.status_code == 404, resp.text


def test_escalate_moves_containment_and_probe_traffic_is_left_out(served: Any) -> None:
    a = _ask(served).json()["session_id"]
    _ask(served, "When does the keeper trim the wick?", a)
    _ask(served)  # a second, contained session
    probe = _ask(served, headers={"x-workbench-traffic": "probe"})
    assert probe.status_code == 200
    assert_error(_ask(served, headers={"x-workbench-traffic": "robot"}), 400)

    resp = served.client.post("/feedback", json={"session_id": a, "kind": "escalate",
                                                  "source_id": "web"}, headers=served.headers)
    assert resp.status_code == 201, resp.text

    metrics = served.client.get("/metrics").text
    ratio = [line for line in metrics.splitlines()
             if line.startswith("workbench_sessions_contained_ratio{")]
    assert len(ratio) == 1 and ratio[0].endswith(" 0.5"), ratio
    assert 'workbench_feedback_messages{kind="escalate"} 1' in metrics

    table = product_metrics(served.gw.store, by=("model",))
    (row,) = table.rows
    assert row["answers"] == 3  # the probe's answer is not product traffic
    assert row["sessions"] == 2 and row["containment_rate"] == 0.5
    assert row["escalate_rate"] == round(1 / 3, 4)


def test_a_production_label_move_reaches_answers_and_spans(served: Any) -> None:
    store = served.gw.store
    before = _ask(served).json()
    assert before["prompt"] == prompts.builtins()[prompts.RAG_ANSWER].ref
    cand = prompts.push(store, prompts.RAG_ANSWER, [
        {"role": "system", "content": "You are the lighthouse desk. Cite sources like [1]."},
        {"role": "user", "content": "{{sources}}\n\nQ: {{question}}"}], labels=["candidate"])
    prompts.set_label(store, prompts.RAG_ANSWER, "production", cand.version, actor="test")
    after = _ask(served).json()
    assert after["prompt"] == cand.ref
    assert served.provider.calls[-1]["messages"][0]["content"].startswith("You are the light")
    flush(store)
    spans = get_trace(store, after["trace_id"]).spans
    llm = [s for s in spans if s.kind == "LLM"]
    assert llm and all(s.attributes["workbench.prompt.version"] == cand.version for s in llm)
    assert all(s.attributes["llm.prompt_template.version"] == cand.ref for s in llm)
    rows = product_metrics(store, by=("prompt_version",)).rows
    assert {r["prompt_version"] for r in rows} == {before["prompt"], cand.ref}


def test_history_is_stored_and_resent_masked(served: Any) -> None:
    canary = "alice.canary@example.com"
    sid = _ask(served, f"When does the keeper light the lamp? Mail me at {canary}").json()[
        "session_id"]
    _ask(served, "When does the keeper trim the wick?", sid)
    history = served.provider.calls[-1]["messages"][1]["content"]
    assert canary not in history and "[EMAIL]" in history
    from workbench.sessions import turns

    assert all(canary not in t["question"] for t in turns(served.gw.store, sid))
