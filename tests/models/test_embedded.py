"""The real embedded runtime: llama.cpp (SmolLM2, Gemma 3 270M) and the ONNX MiniLM."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.embedded


def test_chat_respects_max_tokens_and_reports_usage(make_gateway: Any) -> None:
    gw = make_gateway()
    res = gw.chat("Name three colours.", max_tokens=8, temperature=0)
    assert res.text.strip()
    assert 0 < res.usage["completion_tokens"] <= 8
    assert res.usage["prompt_tokens"] > 5
    assert res.cost_usd == 0  # embedded models are free but still counted
    row = gw.usage(by=("model",))[0]
    assert row["tokens_out"] == res.usage["completion_tokens"]


def test_stop_sequence_and_determinism(make_gateway: Any) -> None:
    gw = make_gateway()
    prompt = "Count from 1 to 10 separated by commas."
    a = gw.chat(prompt, max_tokens=30, temperature=0, stop=["5"])
    b = gw.chat(prompt, max_tokens=30, temperature=0, stop=["5"])
    assert "5" not in a.text and "6" not in a.text
    assert a.text == b.text  # temperature 0 is greedy


def test_json_schema_constrained_output_parses(make_gateway: Any) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"},
                                               "country": {"type": "string"}},
              "required": ["city", "country"]}
    gw = make_gateway()
    res = gw.chat("Paris is the capital of France. Give city and country as JSON.",
                  max_tokens=60, temperature=0,
                  response_format={"type": "json_schema", "json_schema": {"name": "c",
                                                                          "schema": schema}})
    data = res.json()
    assert set(data) >= {"city", "country"} and all(isinstance(v, str) for v in data.values())


def test_streaming_yields_tokens_then_usage(make_gateway: Any) -> None:
    # Output masking holds back 64 characters; without it every token is its own chunk.
    gw = make_gateway(output_guardrails=False)
    s = gw.stream("Say hello to the workshop.", max_tokens=12, temperature=0)
    pieces = list(s.text())
    assert len(pieces) >= 2
    assert s.result is not None
    assert s.result.text == "".join(pieces)
    assert s.result.usage["completion_tokens"] == len(pieces)
    assert s.result.usage["prompt_tokens"] > 0


def test_gemma_completion_model(make_gateway: Any) -> None:
    gw = make_gateway()
    res = gw.chat("What is the capital of France?", model="gemma3-270m", max_tokens=12,
                  temperature=0)
    assert res.model == "gemma3-270m" and res.usage["completion_tokens"] > 0
    assert "Q:" not in res.text  # the completion stops before inventing the next question


def test_embeddings_are_normalised_and_semantic(make_gateway: Any) -> None:
    gw = make_gateway()
    res = gw.embed(["A cat sat on the mat.", "A kitten rested on the rug.",
                    "Quarterly revenue grew by eight percent."])
    v = np.array(res.vectors)
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    long_text = "token " * 400  # longer than the 256-token truncation: still embeds
    assert len(gw.embed(long_text).vectors[0]) == 384


def test_embedding_batches_match_single_calls(make_gateway: Any) -> None:
    gw = make_gateway()
    texts = ["short", "a somewhat longer sentence about retrieval augmented generation"]
    batch = np.array(gw.embed(texts).vectors)
    single = np.array([gw.embed(t).vectors[0] for t in texts])
    assert np.allclose(batch, single, atol=1e-4)  # padding must not change vectors


def test_a_priced_short_call_stays_within_its_reservation(make_gateway: Any) -> None:
    """SmolLM2's chat template adds a default system turn ("hi" is ~31 prompt tokens, its
    bytes 2): the worst case counts it, so a short call is not flagged as charged above
    its reservation."""
    from workbench.models import ledger

    gw = make_gateway(models=[{"name": "smollm2-135m", "provider": "embedded",
                               "context_window": 2048, "max_output_tokens": 256,
                               "input_usd_per_mtok": 1000.0, "output_usd_per_mtok": 1000.0}])
    res = gw.chat("hi", max_tokens=4)
    assert res.usage["prompt_tokens"] > 2 + 8 + 8  # more than the bytes-based bound alone
    rows = ledger.entries(gw.store, trace_id=res.trace_id)
    assert rows and all(not r.get("anomaly") for r in rows), rows
