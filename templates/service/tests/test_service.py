"""The service's contract: probes, an answer with sources and a trace id, feedback."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_probes_are_green(service: TestClient) -> None:
    assert service.get("/healthz").json() == {"status": "ok"}
    ready = service.get("/readyz")
    assert ready.status_code == 200, ready.json()


def test_answers_with_sources_and_a_trace_id(service: TestClient) -> None:
    resp = service.post("/ask", json={"question": "What is the daily meal allowance?"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["answer"].strip()
    assert body["sources"][0]["source"].endswith("expenses.md")
    assert resp.headers["x-workbench-trace-id"] == body["trace_id"]


def test_feedback_on_an_answer(service: TestClient) -> None:
    trace_id = service.post("/ask", json={"question": "Who approves business class?"}
                            ).json()["trace_id"]
    resp = service.post("/feedback", json={"trace_id": trace_id, "kind": "thumbs",
                                           "value": True, "comment": "clear"})
    assert resp.status_code == 201, resp.text


def test_team_routes_and_the_chat_page(service: TestClient) -> None:
    assert service.get("/version").json()["service"] == "handbook-assistant"
    assert "<title>" in service.get("/").text
