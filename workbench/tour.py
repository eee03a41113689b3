"""``workbench tour``: the main job, headless. Each step uses the public library and
reports what happened: governed calls (allowed, denied, redacted, rate-limited), retrieval
over the playbooks, the trace of that answer with feedback on it, a small gated eval, and
the usage table."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import WorkbenchError
from workbench.models.gateway import Gateway

TOUR_TEAM = "tour"
PII_PROMPT = ("Write one polite sentence to our customer jane.doe@example.com, "
              "card 4111 1111 1111 1111, confirming the refund.")


@dataclass
class Step:
    title: str
    ok: bool
    lines: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


Reporter = Callable[[Step], None]


def _denied_call(gw: Gateway, secret: str, key_id: str) -> Step:
    user = gw.as_key(secret)
    try:
        user.chat("Hello", model="gemma3-270m", max_tokens=8)
    except WorkbenchError as exc:
        return Step("Call denied by policy", True,
                    [f"key {key_id} asked for gemma3-270m -> HTTP {exc.status} {exc.code}",
                     f"message: {exc.message}"], {"status": exc.status, "code": exc.code})
    return Step("Call denied by policy", False, ["the call was NOT denied: policy is broken"])


def _redacted_call(gw: Gateway, secret: str) -> Step:
    user = gw.as_key(secret)
    seen = gw.guardrails.mask(PII_PROMPT).text
    res = user.chat(PII_PROMPT, max_tokens=40, temperature=0)
    return Step("PII redacted before the prompt reached the model", bool(res.redactions),
                [f"you sent:       {PII_PROMPT}", f"the model saw:  {seen}",
                 f"redactions: {res.redactions}", f"answer: {res.text.strip()}"],
                {"redactions": res.redactions, "trace_id": res.trace_id})


def _rate_limited(gw: Gateway) -> Step:
    key_id, secret = gw.policy.create_key(team=TOUR_TEAM, name="tour-rpm1", rpm=1, actor="tour")
    user = gw.as_key(secret)
    user.chat("Say hi.", max_tokens=4)
    try:
        user.chat("Say hi again.", max_tokens=4)
    except WorkbenchError as exc:
        return Step("Rate limit (rpm=1): second call refused", exc.status == 429,
                    [f"key {key_id}: HTTP {exc.status} {exc.code}"])
    return Step("Rate limit (rpm=1): second call refused", False, ["second call was allowed"])


def run(gw: Gateway, report: Reporter) -> list[Step]:
    steps: list[Step] = []
    started = time.time()

    def add(step: Step) -> Step:
        steps.append(step)
        report(step)
        return step

    add(Step("Profile", True, [repr(gw)]))
    # One key carries the allowed/denied/redacted demo; the secret never leaves this process.
    key_id, secret = gw.policy.create_key(team=TOUR_TEAM, name="tour-demo",
                                          models=["smollm2-135m"], rpm=120, actor="tour")
    user = gw.as_key(secret)
    res = user.chat([
        {"role": "system", "content": "Answer in one short sentence."},
        {"role": "user", "content": "What is a vector database used for?"}],
        max_tokens=48, temperature=0)
    add(Step("Allowed call through the governed gateway", True,
             [f"key {key_id} (team {TOUR_TEAM}, allowlist: smollm2-135m)",
              f"answer: {res.text.strip()}", res._facts()],
             {"key_id": key_id, "trace_id": res.trace_id}))
    add(_denied_call(gw, secret, key_id))
    add(_redacted_call(gw, secret))
    add(_rate_limited(gw))
    # Later capabilities contribute their own steps (each returns Step's fields as a dict).
    from workbench.evals.tour import tour_step as evals_step
    from workbench.observability.tour import tour_step as observability_step
    from workbench.retrieval.tour import tour_step as retrieval_step

    rag = add(Step(**retrieval_step(gw)))
    add(Step(**observability_step(gw, trace_id=rag.data.get("trace_id"))))
    add(Step(**evals_step(gw)))
    rows = gw.usage(by=("team", "key", "model"), since=started)
    add(Step("Usage of this tour (from the ledger)", True, [], {"usage": rows}))
    return steps


__all__ = ["Step", "run"]
