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

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workbench.errors import BadRequest
from workbench.prompts.builtin import JUDGE_TEMPLATE

if TYPE_CHECKING:
    from workbench.evals.checks import Check
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
    threshold: float = Field(0.7, ge=0, le=1, description="semantic: minimum cosine.")
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
            from workbench.evals.checks import json_schema

            try:
                json_schema(self.target)  # the same validator the probe will run
            except BadRequest as exc:
                raise ValueError(exc.message) from None
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


def to_check(expect: Expectation, gateway: Gateway | None) -> Check:
    """The evals check an expectation compiles to (one check language for probes and
    evals); ``judge`` has no deterministic equivalent and is asked by :func:`check`."""
    from workbench.evals import checks

    if expect.kind == "exact":
        return checks.equals(str(expect.target).strip(), ignore_case=not expect.case_sensitive)
    if expect.kind == "pattern":
        return checks.regex(str(expect.target),
                            flags=0 if expect.case_sensitive else re.IGNORECASE)
    if expect.kind == "json_schema":
        return checks.json_schema(expect.target)
    if expect.kind == "semantic":
        return checks.semantic_similarity(str(expect.target),
                                          threshold=expect.threshold,
                                          gateway=gateway, model=_embed_model(gateway))
    raise BadRequest(f"{expect.kind} expectations have no deterministic check")


def _embed_model(gateway: Gateway | None) -> str:
    return gateway.settings.default_embed_model if gateway is not None else "minilm-l6-v2"


def check(expect: Expectation, output: str, question: str, gateway: Gateway | None) -> Verdict:
    """Judge ``output`` against ``expect``; ``gateway`` serves semantic and judge checks."""
    if expect.kind in ("semantic", "judge") and gateway is None:
        return Verdict(False, f"{expect.kind} checks need a Gateway (embeddings / judge)")
    if expect.kind == "judge":
        assert gateway is not None
        return _judge(expect, output, question, gateway)
    res = to_check(expect, gateway)(output)
    score = res.score if expect.kind == "semantic" else None
    return Verdict(res.passed, res.reason, None if score is None else round(score, 4))


def _judge(expect: Expectation, output: str, question: str, gateway: Gateway) -> Verdict:
    from workbench import prompts
    from workbench.observability import tracing

    template = prompts.production(gateway.store, prompts.PROBE_JUDGE)
    messages = template.render(criteria=expect.target, question=question, answer=output)
    with tracing.traffic("judge"), tracing.prompt_context(template.span_attributes()):
        res = gateway.chat(messages, model=expect.judge_model,
                           max_tokens=96, temperature=0,
                           response_format={"type": "json_object", "schema": JUDGE_SCHEMA})
    try:
        verdict = res.json()
        passed = verdict["pass"]
    except (ValueError, KeyError, TypeError):
        return Verdict(False, f"judge reply was not a verdict: {res.text[:80]!r}")
    return Verdict(bool(passed), f"judge: {str(verdict.get('reason', ''))[:120]}",
                   1.0 if passed else 0.0)


__all__ = ["JUDGE_TEMPLATE", "KINDS", "Expectation", "Verdict", "check", "to_check"]
