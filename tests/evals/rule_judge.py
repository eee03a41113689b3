"""A scripted judge LLM behind the Provider seam: it answers the judge prompts of ragas'
faithfulness/answer-relevancy AND of the workbench's own metrics by fixed rules (sentence
split, word overlap), so two implementations can be compared on identical judgements.
A test double for a seam: it never stands in for the real judge in integration tests."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from workbench.config import ModelSpec

SENTENCE = re.compile(r"(?<=[.!?])\s+")
WORD = re.compile(r"\w{4,}")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE.split(text.strip()) if s.strip()]


def supported(statement: str, context: str) -> bool:
    """At least 3/4 of the statement's content words appear in the context."""
    words = {w.lower() for w in WORD.findall(statement)}
    ctx = {w.lower() for w in WORD.findall(context)}
    return bool(words) and len(words & ctx) / len(words) >= 0.75


def question_for(response: str) -> str:
    return "What about " + " ".join(WORD.findall(response)[:5]).lower() + "?"


def noncommittal(response: str) -> bool:
    return any(p in response.lower() for p in ("don't know", "not sure", "cannot say"))


def _input(prompt: str) -> dict[str, Any]:
    start = prompt.rfind("input: ")
    end = prompt.rfind("\nOutput:")
    return dict(json.loads(prompt[start + len("input: "):end]))


def _schema(body: dict[str, Any]) -> dict[str, Any]:
    fmt = body.get("response_format") or {}
    return dict((fmt.get("json_schema") or {}).get("schema") or fmt.get("schema") or {})


def judge(body: dict[str, Any]) -> dict[str, Any]:
    """The JSON a rule-following judge returns for this request."""
    prompt = str(body["messages"][-1]["content"])
    data = _input(prompt)
    if set(data) == {"response"}:  # answer relevancy (ragas: int flag; ours: bool)
        schema = _schema(body)
        flag_type = ((schema.get("properties") or {}).get("noncommittal") or {}).get("type")
        flag = noncommittal(data["response"])
        return {"question": question_for(data["response"]),
                "noncommittal": flag if flag_type == "boolean" else int(flag)}
    if set(data) == {"question", "answer"}:  # ragas: statement generation
        return {"statements": sentences(data["answer"])}
    if set(data) == {"context", "statements"}:  # ragas: NLI verdicts
        return {"statements": [{"statement": s, "reason": "rule",
                                "verdict": int(supported(s, data["context"]))}
                               for s in data["statements"]]}
    if set(data) == {"question", "answer", "context"}:  # ours: split + verdicts in one call
        return {"statements": [{"statement": s, "supported": supported(s, data["context"])}
                               for s in sentences(data["answer"])]}
    raise AssertionError(f"rule judge: unknown prompt input {sorted(data)}")


class RuleJudgeProvider:
    name = "rules"

    def __init__(self) -> None:
        self.calls = 0

    def chat(self, body: dict[str, Any], spec: ModelSpec) -> dict[str, Any]:
        self.calls += 1
        text = json.dumps(judge(body))
        return {"id": "rule", "object": "chat.completion", "model": spec.name,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": len(str(body)) // 4, "completion_tokens": len(text) // 4}}

    def stream(self, body: dict[str, Any], spec: ModelSpec) -> Iterator[dict[str, Any]]:
        raise NotImplementedError("the rule judge does not stream")

    def embed(self, texts: list[str], spec: ModelSpec) -> dict[str, Any]:
        raise NotImplementedError("embeddings come from the embedded MiniLM")

    def ping(self) -> None:
        return None
