"""The eval gate: CI fails when the service's answers to the golden questions regress.

Every golden question goes through the app's POST /ask (retrieval, prompt, model,
guardrails: the whole service), then each row's checks run on the answer (see
evals/golden.jsonl). Checks are deterministic, so the gate is stable on the small
embedded model. With a real model, add judge metrics and thresholds, e.g.
metrics=["faithfulness", "answer_relevancy"] and {"faithfulness": 0.8}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from workbench import evals

GOLDEN = Path(__file__).resolve().parent.parent / "evals" / "golden.jsonl"
THRESHOLDS = {"checks": 1.0}  # the share of individual checks that pass


def test_golden_set_passes_the_gate(service: TestClient) -> None:
    def ask(question: str) -> dict[str, Any]:
        resp = service.post("/ask", json={"question": question})
        resp.raise_for_status()
        body = resp.json()
        return {"answer": body["answer"], "contexts": [s["snippet"] for s in body["sources"]]}

    run = evals.evaluate(GOLDEN, target=evals.target(ask, kind="service"), metrics=[],
                         save=False)
    gate = run.gate(THRESHOLDS)
    assert gate.passed, f"eval gate failed:\n{gate}"
