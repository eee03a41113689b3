"""LLM-judged metrics with the workbench's own prompts: no ragas needed.

ragas 0.4.3 (January 2026) may be its last release, so the two judge metrics teams use
most have a second implementation here, behind the same metric seam
(:mod:`workbench.evals.metrics`): ``wb_faithfulness`` and ``wb_answer_relevancy``. They
compute what ragas' collections metrics compute (share of the answer's statements the
contexts support; cosine of the question and a question generated from the answer, 0 when
the answer is noncommittal) with fewer calls: faithfulness splits and verifies in ONE
schema-constrained call where ragas makes two. A test runs both implementations on a fixed
set against the same scripted judge and asserts equal scores.

Every call goes through the OpenAI client the :class:`~workbench.evals.judge.Judge` hands
over, i.e. through the Gateway's proxy: governed, counted, cached like ragas' calls.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from workbench.prompts.builtin import FAITHFULNESS_INSTRUCTION, MAX_STATEMENTS, RELEVANCY_INSTRUCTION


class _Statement(BaseModel):
    statement: str
    supported: bool


class FaithfulnessVerdicts(BaseModel):
    """What the faithfulness judge returns."""

    statements: list[_Statement] = Field(min_length=1, max_length=MAX_STATEMENTS)


class GeneratedQuestion(BaseModel):
    """What the answer-relevancy judge returns."""

    question: str
    noncommittal: bool


@dataclass(frozen=True)
class MetricValue:
    """A score and why (the shape the judge reads from every metric)."""

    value: float
    reason: str | None = None


class JudgeOutputInvalid(ValueError):
    """The judge's reply did not match the schema after every attempt (deterministic at
    temperature 0, so the failure is cached like ragas' instructor failures)."""

    def __init__(self, metric: str, attempts: int, detail: str):
        super().__init__(f"{metric}: judge output did not validate after {attempts} "
                         f"attempt(s): {detail}")
        self.n_attempts = attempts


def _schema(model: type[BaseModel], name: str) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True,
                                                   "schema": model.model_json_schema()}}


def _prompt(instruction: str, data: dict[str, Any]) -> str:
    return f"{instruction}\n\ninput: {json.dumps(data, ensure_ascii=False, indent=2)}\nOutput: "


def _version(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass
class _JudgeCall:
    """One schema-constrained judge call with bounded re-asks on invalid output."""

    client: Any  # openai.AsyncOpenAI on the Gateway's proxy
    model: str
    max_tokens: int
    temperature: float
    max_attempts: int
    instruction: str = ""  # the registry's judge prompt when a team overrides it

    async def ask(self, metric: str, instruction: str, data: dict[str, Any],
                  out: type[BaseModel]) -> Any:
        last = ""
        for _ in range(max(self.max_attempts, 1)):
            resp = await self.client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": _prompt(instruction, data)}],
                max_tokens=self.max_tokens, temperature=self.temperature,
                response_format=_schema(out, metric))
            text = resp.choices[0].message.content or ""
            try:
                return out.model_validate_json(text)
            except ValidationError as exc:
                last = f"{exc.error_count()} error(s), first: {exc.errors()[0]['msg']}"
        raise JudgeOutputInvalid(metric, self.max_attempts, last)


class Faithfulness(_JudgeCall):
    """Share of the answer's statements that the contexts support (1 call)."""

    name = "wb_faithfulness"

    def prompt_version(self) -> str:
        return _version(self.name, self.instruction or FAITHFULNESS_INSTRUCTION,
                        FaithfulnessVerdicts.model_json_schema())

    async def ascore(self, user_input: str, response: str,
                     retrieved_contexts: list[str]) -> MetricValue:
        if not response or not user_input or not retrieved_contexts:
            raise ValueError("faithfulness needs a question, an answer and contexts")
        verdicts: FaithfulnessVerdicts = await self.ask(
            self.name, self.instruction or FAITHFULNESS_INSTRUCTION,
            {"question": user_input, "answer": response,
             "context": "\n".join(retrieved_contexts)}, FaithfulnessVerdicts)
        items = verdicts.statements
        unsupported = [s.statement for s in items if not s.supported]
        why = f"{len(items) - len(unsupported)}/{len(items)} statements supported"
        if unsupported:
            why += "; unsupported: " + "; ".join(repr(s[:80]) for s in unsupported[:3])
        return MetricValue((len(items) - len(unsupported)) / len(items), why)


@dataclass
class AnswerRelevancy(_JudgeCall):
    """Cosine of the question and a question generated from the answer; 0 when the judge
    finds the answer noncommittal (1 call + 1 embeddings call, like ragas' strictness=1)."""

    embed_model: str = ""
    name = "wb_answer_relevancy"

    def prompt_version(self) -> str:
        return _version(self.name, self.instruction or RELEVANCY_INSTRUCTION,
                        GeneratedQuestion.model_json_schema(), self.embed_model)

    async def ascore(self, user_input: str, response: str) -> MetricValue:
        if not response or not user_input:
            raise ValueError("answer relevancy needs a question and an answer")
        gen: GeneratedQuestion = await self.ask(self.name,
                                                self.instruction or RELEVANCY_INSTRUCTION,
                                                {"response": response}, GeneratedQuestion)
        if not gen.question.strip():
            return MetricValue(0.0, "the judge generated no question")
        emb = await self.client.embeddings.create(model=self.embed_model,
                                                  input=[user_input, gen.question])
        a, b = (d.embedding for d in sorted(emb.data, key=lambda d: d.index))
        na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
        cosine = sum(x * y for x, y in zip(a, b, strict=True)) / (na * nb) if na and nb else 0.0
        if gen.noncommittal:
            return MetricValue(0.0, f"noncommittal answer (generated {gen.question[:80]!r})")
        return MetricValue(cosine, f"generated question {gen.question[:80]!r}")


__all__ = ["FAITHFULNESS_INSTRUCTION", "MAX_STATEMENTS", "RELEVANCY_INSTRUCTION",
           "AnswerRelevancy", "Faithfulness", "FaithfulnessVerdicts", "GeneratedQuestion",
           "JudgeOutputInvalid", "MetricValue"]
