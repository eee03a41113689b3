"""The agent loop against a real OpenAI-compatible HTTP upstream on loopback (scripted tool
calls) and against the embedded model: budgets, stop rule, approval, allowlists, spans."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pytest
from sqlalchemy import select

from tests.priced_upstream import PricedUpstream
from workbench.agents import Agent, Tool, tool
from workbench.errors import BadRequest
from workbench.models import audit as audit_log
from workbench.models.gateway import Gateway
from workbench.models.tool_schema import tool_events
from workbench.models.tools import set_allowlist
from workbench.observability.traces import flush, get_trace

TASK = "What is the weather in Paris?"
CALLS: list[tuple[str, dict[str, Any]]] = []  # what the tools below actually ran


@tool
def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
    """Current weather in a city."""
    CALLS.append(("get_weather", {"city": city, "unit": unit}))
    return f"18 degrees {unit.upper()}, sunny, in {city}"


@tool(dangerous=True)
def delete_db(confirm: bool) -> str:
    """Delete the whole database."""
    CALLS.append(("delete_db", {"confirm": confirm}))
    return "deleted"


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()


def executed(gw: Gateway) -> list[tuple[str, str]]:
    with gw.store.read() as conn:
        return [(r.tool, r.outcome) for r in conn.execute(
            select(tool_events).where(tool_events.c.kind == "executed")
            .order_by(tool_events.c.id))]


def test_schema_from_type_hints() -> None:
    @tool
    def search(query: Annotated[str, "what to look for"], k: int = 3,
               tags: list[str] | None = None) -> list[str]:
        """Search the notes.

        Longer text that is not the description."""
        return []

    assert isinstance(search, Tool) and search.description == "Search the notes."
    assert search.parameters == {
        "type": "object", "additionalProperties": False, "required": ["query"],
        "properties": {"query": {"type": "string", "description": "what to look for"},
                       "k": {"type": "integer", "default": 3},
                       "tags": {"type": "array", "items": {"type": "string"},
                                "default": None}}}
    assert search.validate({"query": "x"}) is None
    assert "k" in (search.validate({"query": "x", "k": "three"}) or "")
    def untyped(x):  # type: ignore[no-untyped-def]
        return x

    with pytest.raises(BadRequest, match="needs a type hint"):
        tool(untyped)


def test_plan_call_observe_answer_is_traced_as_agent_llm_tool(
        gw: Gateway, upstream: PricedUpstream) -> None:
    upstream.tool_calls = [("get_weather", {"city": "Paris", "unit": "c"})]
    run = Agent(gw, tools=[get_weather]).run(TASK)
    assert run.stopped == "answer" and run.answer and len(run.steps) == 2
    assert CALLS == [("get_weather", {"city": "Paris", "unit": "c"})]
    [call] = run.tool_calls
    assert call.status == "ok" and call.result == "18 degrees C, sunny, in Paris"
    # The observation went back to the model as a tool message.
    second = upstream.bodies[-1]["messages"]
    assert second[-1] == {"role": "tool", "tool_call_id": call.id, "content": call.result}
    assert run.cost_usd > 0 and executed(gw) == [("get_weather", "ok")]
    flush(gw.store)
    trace = get_trace(gw.store, run.trace_id)
    [root] = trace.roots
    assert root.kind == "AGENT" and root.attributes["workbench.agent.stopped"] == "answer"
    assert [c.kind for c in sorted(root.children, key=lambda s: s.start_ns)] == [
        "LLM", "TOOL", "LLM"]
    tool_span = next(c for c in root.children if c.kind == "TOOL")
    assert tool_span.attributes["tool.name"] == "get_weather"
    assert "Paris" in (tool_span.input or "") and "sunny" in (tool_span.output or "")
    llm = next(c for c in root.children if c.kind == "LLM")
    assert llm.attributes[
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name"] == "get_weather"


def test_step_budget_stops_a_model_that_keeps_calling_tools(
        gw: Gateway, upstream: PricedUpstream) -> None:
    upstream.tool_calls = [("get_weather", {"city": "Paris", "unit": "c"})]
    upstream.tool_calls_always = True
    run = Agent(gw, tools=[get_weather], max_steps=3).run(TASK)
    assert run.stopped == "max_steps" and run.answer is None
    assert len(run.steps) == 3 and upstream.calls == 3 and len(CALLS) == 3


def test_cost_budget_and_stop_rule(gw: Gateway, upstream: PricedUpstream) -> None:
    upstream.tool_calls = [("get_weather", {"city": "Paris", "unit": "c"})]
    upstream.tool_calls_always = True
    run = Agent(gw, tools=[get_weather], max_steps=10, max_cost_usd=1e-9).run(TASK)
    assert run.stopped == "max_cost" and len(run.steps) == 1  # one call spends past it
    run = Agent(gw, tools=[get_weather], max_steps=10,
                stop=lambda step: any(c.status == "ok" for c in step.tool_calls)).run(TASK)
    assert run.stopped == "stop_rule" and len(run.steps) == 1


def test_dangerous_tool_runs_only_with_approval(gw: Gateway, upstream: PricedUpstream) -> None:
    upstream.tool_calls = [("delete_db", {"confirm": True})]
    asked: list[str] = []

    def no(call: Any) -> bool:
        asked.append(call.name)
        return False

    run = Agent(gw, tools=[get_weather, delete_db], approve=no).run("Clean up.")
    assert asked == ["delete_db"] and CALLS == []
    assert run.tool_calls[0].status == "denied" and "approval" in (run.tool_calls[0].result or "")
    assert Agent(gw, tools=[delete_db]).run("Clean up.").tool_calls[0].status == "denied"
    rows = [r for r in audit_log.entries(gw.store, 20) if r["action"] == "tool.blocked"]
    assert len(rows) == 2
    run = Agent(gw, tools=[delete_db], approve=lambda call: True).run("Clean up.")
    assert run.tool_calls[0].status == "ok" and CALLS == [("delete_db", {"confirm": True})]


def test_invalid_arguments_are_not_run(gw: Gateway, upstream: PricedUpstream) -> None:
    upstream.tool_calls = [("get_weather", {"city": 3, "unit": "kelvin"})]
    run = Agent(gw, tools=[get_weather], max_steps=1).run(TASK)
    assert run.tool_calls[0].status == "invalid" and CALLS == []
    assert "invalid arguments" in (run.tool_calls[0].result or "")


def test_allowlist_hides_a_tool_and_its_calls_never_run(
        gw: Gateway, upstream: PricedUpstream) -> None:
    key_id, key = gw.policy.create_key(team="agents")
    set_allowlist(gw.store, "key", key_id, "get_weather")
    agent = Agent(gw.as_key(key), tools=[get_weather, delete_db],
                  approve=lambda call: True)
    assert [t.name for t in agent.offered()] == ["get_weather"]
    upstream.tool_calls = [("delete_db", {"confirm": True})]
    run = agent.run("Clean up.")
    offered = [t["function"]["name"] for t in upstream.bodies[0]["tools"]]
    assert offered == ["get_weather"]
    # The gateway withheld the call: the agent saw a text answer, nothing ran.
    assert run.stopped == "answer" and run.tool_calls == [] and CALLS == []
    assert "delete_db" in (run.answer or "")
    assert any(r["action"] == "tool.blocked" for r in audit_log.entries(gw.store, 20))


@pytest.mark.embedded
def test_embedded_agent_calls_a_tool_offline(make_gateway: Any) -> None:
    gw: Gateway = make_gateway()
    run = Agent(gw, tools=[get_weather], tool_choice="required", max_steps=1,
                max_tokens=48).run(TASK)
    assert run.stopped == "max_steps" and len(run.steps) == 1
    [call] = run.tool_calls
    assert call.name == "get_weather" and call.status == "ok"
    assert CALLS and CALLS[0][1]["unit"] in ("c", "f")
