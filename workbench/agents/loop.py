"""A small agent loop: plan -> call a tool -> observe -> answer, through the Gateway.

No framework: a list of messages, a model that may answer with ``tool_calls``, and plain
Python tools. Every model call is a governed Gateway call (allowlists, budgets, guardrails,
ledger, LLM span); every tool run is a TOOL span under the run's AGENT span and a
``tool_events`` row. Four things stop a run:

- the model answers without a tool call (``stopped="answer"``);
- the step budget: at most ``max_steps`` model calls (``"max_steps"``);
- the cost budget: no new model call once ``max_cost_usd`` is spent (``"max_cost"``);
- the stop rule: ``stop(step)`` returned True after a step (``"stop_rule"``).

Tools marked ``dangerous`` run only if the ``approve`` hook says yes (a human in a
notebook: :func:`ask_human`); with no hook they are refused. A tool the key may not use
(tool allowlist) is never offered to the model, and a call to it is refused and audited.

Three lines from a notebook::

    agent = Agent(gw, tools=[get_weather])
    run = agent.run("What is the weather in Paris?")
    run            # answer, steps, cost, trace id
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.agents.tools import Tool, from_function, result_text
from workbench.errors import BadRequest, WorkbenchError
from workbench.models import tools as tool_gov
from workbench.observability import tracing

if TYPE_CHECKING:
    from workbench.models.gateway import Gateway

Approver = Callable[["ToolCall"], bool]
STOP_REASONS = ("answer", "max_steps", "max_cost", "stop_rule")


@dataclass
class ToolCall:
    """One tool call the model made, and what became of it."""

    id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str = ""
    result: str | None = None
    status: str = "pending"  # ok | error | invalid | denied | not_allowed | unknown
    dangerous: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments,
                "status": self.status, "result": self.result}


@dataclass
class Step:
    """One model call and the tool calls it asked for."""

    index: int
    text: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    cost_usd: float = 0.0
    trace_id: str = ""


@dataclass
class AgentRun:
    """What :meth:`Agent.run` returns."""

    task: str
    answer: str | None
    stopped: str
    steps: list[Step]
    cost_usd: float
    trace_id: str
    latency_ms: float = 0.0

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [c for s in self.steps for c in s.tool_calls]

    def eval_facts(self) -> dict[str, Any]:
        """What the agent checks read (``workbench.evals.agent_checks``)."""
        return {"steps": len(self.steps), "stopped": self.stopped,
                "tool_calls": [c.as_dict() for c in self.tool_calls]}

    def as_dict(self) -> dict[str, Any]:
        return {"task": self.task, "answer": self.answer, "stopped": self.stopped,
                "steps": len(self.steps), "cost_usd": self.cost_usd,
                "trace_id": self.trace_id,
                "tool_calls": [c.as_dict() for c in self.tool_calls]}

    def __repr__(self) -> str:
        calls = ", ".join(f"{c.name}:{c.status}" for c in self.tool_calls) or "none"
        return (f"AgentRun(stopped={self.stopped!r}, steps={len(self.steps)}, "
                f"tools=[{calls}], answer={(self.answer or '')[:60]!r}, "
                f"cost=${self.cost_usd:.6f}, trace={self.trace_id})")

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{s.index + 1}</td><td>{html.escape(c.name)}</td>"
            f"<td><code>{html.escape(json.dumps(c.arguments)[:120])}</code></td>"
            f"<td>{c.status}</td><td>{html.escape((c.result or '')[:120])}</td></tr>"
            for s in self.steps for c in s.tool_calls)
        return (f"<div><b>stopped:</b> {self.stopped} · {len(self.steps)} step(s) · "
                f"${self.cost_usd:.6f} · trace {self.trace_id}"
                f"<p style='white-space:pre-wrap'>{html.escape(self.answer or '')}</p>"
                + (f"<table><tr><th>step</th><th>tool</th><th>arguments</th><th>status</th>"
                   f"<th>result</th></tr>{rows}</table>" if rows else "") + "</div>")


def ask_human(call: ToolCall) -> bool:
    """An approval hook for notebooks and terminals: asks on stdin."""
    reply = input(f"Allow {call.name}({json.dumps(call.arguments)})? [y/N] ")
    return reply.strip().lower() in ("y", "yes")


class Agent:
    """An agent over a Gateway; see the module docs."""

    def __init__(self, gateway: Gateway, tools: Iterable[Tool | Callable[..., Any]] = (), *,
                 model: str | None = None, system: str | None = None, max_steps: int = 5,
                 max_cost_usd: float | None = None, approve: Approver | None = None,
                 stop: Callable[[Step], bool] | None = None,
                 tool_choice: str | dict[str, Any] = "auto",
                 max_tokens: int = 128, temperature: float = 0.0):
        if max_steps < 1:
            raise BadRequest("max_steps must be at least 1")
        if max_cost_usd is not None and max_cost_usd < 0:
            raise BadRequest("max_cost_usd must be >= 0")
        self.gateway = gateway
        self.tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)
        self.model = model
        self.system = system
        self.max_steps = max_steps
        self.max_cost_usd = max_cost_usd
        self.approve = approve
        self.stop = stop
        self.tool_choice = tool_choice
        self.max_tokens = max_tokens
        self.temperature = temperature

    def add(self, t: Tool | Callable[..., Any]) -> Tool:
        item = t if isinstance(t, Tool) else from_function(t)
        if item.name in self.tools:
            raise BadRequest(f"two tools are named {item.name!r}")
        self.tools[item.name] = item
        return item

    # -- the loop ------------------------------------------------------------------------
    def offered(self) -> list[Tool]:
        """The tools this agent's key may use (the others are never shown to the model)."""
        rules = tool_gov.rules_for(self.gateway.store, self.gateway.principal)
        return [t for t in self.tools.values() if rules.allows(t.name)]

    def run(self, task: str, *, messages: Sequence[dict[str, Any]] = ()) -> AgentRun:
        started = time.perf_counter()
        gw = self.gateway
        offered = self.offered()
        history: list[dict[str, Any]] = []
        if self.system:
            history.append({"role": "system", "content": self.system})
        history += [*messages, {"role": "user", "content": task}]
        steps: list[Step] = []
        spent = 0.0
        answer: str | None = None
        stopped = "max_steps"
        with tracing.span("agent", kind="AGENT", input=gw.guardrails.mask(task).text,
                          gateway=gw) as root:
            root.set_attributes({"workbench.agent.max_steps": self.max_steps,
                                 "workbench.agent.tools": [t.name for t in offered]})
            for index in range(self.max_steps):
                if self.max_cost_usd is not None and spent >= self.max_cost_usd:
                    stopped = "max_cost"
                    break
                step = self._step(index, history, offered)
                steps.append(step)
                spent += step.cost_usd
                if not step.tool_calls:
                    answer, stopped = step.text, "answer"
                    break
                if self.stop is not None and self.stop(step):
                    stopped = "stop_rule"
                    break
            root.set_output(gw.guardrails.mask(answer or "").text)
            root.set_attributes({"workbench.agent.stopped": stopped,
                                 "workbench.agent.steps": len(steps),
                                 "workbench.agent.cost_usd": spent})
            trace_id = root.trace_id
        return AgentRun(task=task, answer=answer, stopped=stopped, steps=steps,
                        cost_usd=spent, trace_id=trace_id,
                        latency_ms=(time.perf_counter() - started) * 1000)

    def _step(self, index: int, history: list[dict[str, Any]], offered: list[Tool]) -> Step:
        params: dict[str, Any] = {"max_tokens": self.max_tokens,
                                  "temperature": self.temperature}
        if offered:
            params.update(tools=[t.spec() for t in offered], tool_choice=self.tool_choice)
        result = self.gateway.chat(list(history), model=self.model, **params)
        msg = (result.response.get("choices") or [{}])[0].get("message") or {}
        step = Step(index=index, text=msg.get("content"), cost_usd=result.cost_usd,
                    trace_id=result.trace_id)
        raw_calls = msg.get("tool_calls") or []
        if not raw_calls:
            return step
        history.append({"role": "assistant", "content": msg.get("content"),
                        "tool_calls": raw_calls})
        for raw in raw_calls:
            call = self._parse(raw)
            step.tool_calls.append(call)
            self._execute(call, offered, result.trace_id)
            history.append({"role": "tool", "tool_call_id": call.id,
                            "content": call.result or ""})
        return step

    @staticmethod
    def _parse(raw: dict[str, Any]) -> ToolCall:
        fn = raw.get("function") or {}
        text = fn.get("arguments") or "{}"
        try:
            args = json.loads(text)
        except ValueError:
            args = None
        call = ToolCall(id=str(raw.get("id") or ""), name=str(fn.get("name") or ""),
                        arguments=args if isinstance(args, dict) else {}, raw_arguments=text)
        if not isinstance(args, dict):
            call.status = "invalid"
            call.result = "error: the arguments are not a JSON object"
        return call

    def _execute(self, call: ToolCall, offered: list[Tool], trace_id: str) -> None:
        gw = self.gateway
        tool = next((t for t in offered if t.name == call.name), None)
        mask = gw.guardrails.mask
        with tracing.span(f"tool {tool_gov.safe_name(call.name)}", kind="TOOL",
                          input=mask(json.dumps(call.arguments)).text, gateway=gw) as span:
            span.set_attributes({"tool.name": tool_gov.safe_name(call.name),
                                 "tool.call_id": call.id[:64]})
            if tool is not None:
                call.dangerous = tool.dangerous
                span.set_attributes({"tool.description": tool.description[:500],
                                     "tool.parameters": json.dumps(tool.parameters)[:4000]})
            self._decide_and_run(call, tool)
            span.set_output(mask(call.result or "").text)
            span.set_attributes({"workbench.tool.status": call.status})
        tool_gov.record_executed(gw, call.name, trace_id=trace_id, call_id=call.id,
                                 size=len((call.result or "").encode()),
                                 outcome="ok" if call.status == "ok" else call.status)

    def _decide_and_run(self, call: ToolCall, tool: Tool | None) -> None:
        if call.status == "invalid":
            return
        if tool is None:
            known = call.name in self.tools
            call.status = "not_allowed" if known else "unknown"
            call.result = (f"error: tool {call.name!r} may not be used with this key"
                           if known else f"error: there is no tool named {call.name!r}")
            return
        problem = tool.validate(call.arguments)
        if problem:
            call.status, call.result = "invalid", f"error: invalid arguments ({problem})"
            return
        if tool.dangerous and not (self.approve is not None and self.approve(call)):
            call.status = "denied"
            call.result = (f"error: {call.name} needs a human's approval and did not get it"
                           if self.approve else
                           f"error: {call.name} is dangerous and no approver is configured")
            return
        try:
            call.result = result_text(tool(**call.arguments))
            call.status = "ok"
        except WorkbenchError as exc:
            call.status, call.result = "error", f"error: {exc.message}"
        except Exception as exc:  # noqa: BLE001 - a tool's failure is the model's observation
            # The model sees the failure's type only (messages may hold data); the run goes on.
            call.status, call.result = "error", f"error: {type(exc).__name__}"


__all__ = ["STOP_REASONS", "Agent", "AgentRun", "Approver", "Step", "ToolCall", "ask_human"]
