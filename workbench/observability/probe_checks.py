"""Probe expectations, cheapest first: exact, pattern, JSON schema, semantic, judge.

Written in a probe file as one key naming the kind, plus options::

    expect = { exact = "Paris" }                       # case_sensitive = false
    expect = { pattern = "(?i)\\bparis\\b" }
    expect = { json_schema = { type = "object", required = ["city"] } }
    expect = { semantic = "Paris is the capital.", threshold = 0.6 }
    expect = { judge = "The answer names Paris as the capital of France." }

``semantic`` embeds with the Gateway's embedding model; ``judge`` asks the Gateway's
chat model (or ``judge_model``) for a schema-constrained verdict. The embedded judge is
tiny: it shows the mechanics; switch the profile for a judge you can trust.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from workbench.models.gateway import Gateway

ExpectKind = Literal["exact", "pattern", "json_schema", "semantic", "judge"]
KINDS: tuple[ExpectKind, ...] = ("exact", "pattern", "json_schema", "semantic", "judge")
JUDGE_SCHEMA = {"type": "object", "properties": {"pass": {"type": "boolean"},
                                                  "reason": {"type": "string"}},
                "required": ["pass", "reason"]}


class Expectation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ExpectKind
    target: Any = Field(description="The text, regex, schema, reference or criteria.")
    case_sensitive: bool = False
    threshold: float = Field(0.7, ge=-1, le=1, description="semantic: minimum cosine.")
    judge_model: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        if isinstance(data, dict) and "kind" not in data:
            named = [k for k in KINDS if k in data]
            if len(named) != 1:
                raise ValueError(f"name exactly one expectation kind ({', '.join(KINDS)})")
            data = dict(data)
            data["target"] = data.pop(named[0])
            data["kind"] = named[0]
        return data

    @model_validator(mode="after")
    def _check_target(self) -> Expectation:
        if self.kind == "json_schema":
            if not isinstance(self.target, dict):
                raise ValueError("json_schema needs a schema object")
            import jsonschema_rs

            try:
                jsonschema_rs.validator_for(self.target)
            except (ValueError, jsonschema_rs.ValidationError) as exc:
                raise ValueError(f"json_schema is not a valid JSON Schema: {exc}") from None
        elif not isinstance(self.target, str) or not self.target:
            raise ValueError(f"{self.kind} needs a non-empty string")
        elif self.kind == "pattern":
            try:
                re.compile(self.target)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regular expression: {exc}") from None
        return self


@dataclass
class Verdict:
    ok: bool
    detail: str
    score: float | None = None


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def check(expect: Expectation, output: str, question: str, gateway: Gateway | None) -> Verdict:
    """Judge ``output`` against ``expect``; ``gateway`` serves semantic and judge checks."""
    if expect.kind == "exact":
        got, want = output.strip(), str(expect.target).strip()
        if not expect.case_sensitive:
            got, want = got.casefold(), want.casefold()
        return Verdict(got == want, "exact match" if got == want
                       else f"expected {str(expect.target)[:60]!r}")
    if expect.kind == "pattern":
        flags = 0 if expect.case_sensitive else re.IGNORECASE
        found = re.search(str(expect.target), output, flags)
        return Verdict(found is not None, f"matched {found.group(0)[:40]!r}" if found
                       else f"no match for /{expect.target}/")
    if expect.kind == "json_schema":
        import jsonschema_rs

        try:
            data = json.loads(output)
        except ValueError:
            return Verdict(False, "output is not JSON")
        errors = [e.message for e in jsonschema_rs.validator_for(expect.target)
                  .iter_errors(data)]
        return Verdict(not errors, "valid against the schema" if not errors
                       else f"schema: {errors[0][:120]}")
    if gateway is None:
        return Verdict(False, f"{expect.kind} checks need a Gateway (embeddings / judge)")
    if expect.kind == "semantic":
        vecs = gateway.embed([output or " ", str(expect.target)]).vectors
        score = _cosine(vecs[0], vecs[1])
        return Verdict(score >= expect.threshold,
                       f"cosine {score:.3f} {'>=' if score >= expect.threshold else '<'} "
                       f"{expect.threshold}", round(score, 4))
    return _judge(expect, output, question, gateway)


def _judge(expect: Expectation, output: str, question: str, gateway: Gateway) -> Verdict:
    prompt = ("You grade an assistant's answer. Reply in JSON with pass (true/false) and a "
              f"short reason.\nCriteria: {expect.target}\nQuestion: {question}\n"
              f"Answer: {output}")
    res = gateway.chat([{"role": "user", "content": prompt}], model=expect.judge_model,
                       max_tokens=96, temperature=0,
                       response_format={"type": "json_object", "schema": JUDGE_SCHEMA})
    try:
        verdict = res.json()
        passed = verdict["pass"]
    except (ValueError, KeyError, TypeError):
        return Verdict(False, f"judge reply was not a verdict: {res.text[:80]!r}")
    return Verdict(bool(passed), f"judge: {str(verdict.get('reason', ''))[:120]}",
                   1.0 if passed else 0.0)


__all__ = ["KINDS", "Expectation", "Verdict", "check"]
