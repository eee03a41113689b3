"""Agent evals: the checks (tool choice, argument validity, steps, stop reason) reject
wrong runs, the golden agent tasks run through `evaluate` and `workbench eval --target
agent`, and the pytest plugin's assert_eval reports agent failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.agents.conftest import mock_profile
from tests.priced_upstream import PricedUpstream
from workbench.agents import Agent
from workbench.agents.demo_tools import demo_tools
from workbench.agents.evals import agent_target
from workbench.agents.loop import AgentRun, Step, ToolCall
from workbench.errors import BadRequest
from workbench.evals import agent_checks as ac
from workbench.evals.assertions import EvalAssertionError, assert_eval
from workbench.evals.checks import from_spec
from workbench.evals.datasets import load
from workbench.evals.runner import evaluate
from workbench.models.gateway import Gateway


def make_run(calls: list[tuple[str, dict[str, Any], str]], steps: int = 2,
             stopped: str = "answer", answer: str | None = "18 degrees") -> AgentRun:
    tool_calls = [ToolCall(id=f"c{i}", name=n, arguments=a, status=s)
                  for i, (n, a, s) in enumerate(calls)]
    step_list = [Step(index=0, text=None, tool_calls=tool_calls)] + [
        Step(index=i, text=answer) for i in range(1, steps)]
    return AgentRun(task="t", answer=answer, stopped=stopped, steps=step_list, cost_usd=0.0,
                    trace_id="0" * 32)


GOOD = make_run([("get_weather", {"city": "Paris", "unit": "c"}, "ok")])


@pytest.mark.parametrize("check, wrong", [
    (ac.tool_called("get_weather"), make_run([("add", {"a": 1, "b": 2}, "ok")])),
    (ac.tool_called("get_weather"), make_run([], steps=1)),
    (ac.tool_not_called("delete_records"),
     make_run([("delete_records", {"table": "users"}, "denied")])),
    (ac.tool_args("get_weather", {"properties": {"city": {"pattern": "(?i)paris"}}}),
     make_run([("get_weather", {"city": "Oslo", "unit": "c"}, "ok")])),
    (ac.tool_args(), make_run([("get_weather", {"city": 3}, "invalid")])),
    (ac.max_steps(3), make_run([("get_weather", {"city": "Paris"}, "ok")], steps=4)),
    (ac.stopped("answer"), make_run([("get_weather", {"city": "Paris"}, "ok")],
                                    stopped="max_steps", answer=None)),
])
def test_each_agent_check_passes_the_good_run_and_rejects_a_wrong_one(
        check: Any, wrong: AgentRun) -> None:
    assert check(GOOD).passed
    result = check(wrong)
    assert not result.passed and result.reason


def test_agent_checks_from_data_and_on_a_plain_answer() -> None:
    from workbench.evals.checks import AGENT_CHECK_TYPES, CHECK_TYPES

    assert set(AGENT_CHECK_TYPES) == set(ac.BUILDERS) <= set(CHECK_TYPES)
    for spec in ({"tool_called": "get_weather"}, {"tool_not_called": ["delete_records"]},
                 {"tool_args": True}, {"max_steps": 2}, {"stopped": "answer"},
                 {"tool_args": {"tool": "get_weather", "schema": {"required": ["city"]}}}):
        assert from_spec(spec)(GOOD).passed, spec
    result = from_spec({"tool_called": "get_weather"})("just text")
    assert not result.passed and "not an agent run" in result.reason
    with pytest.raises(BadRequest, match="not a valid JSON schema"):
        ac.tool_args("x", {"type": 3})


def test_assert_eval_lists_what_the_agent_did_wrong() -> None:
    bad = make_run([("delete_records", {"table": "users"}, "denied")], steps=4)
    with pytest.raises(EvalAssertionError) as info:
        assert_eval(bad, checks=[ac.tool_called("get_weather"), ac.max_steps(3),
                                 ac.tool_not_called("delete_records")])
    text = str(info.value)
    assert "never called get_weather" in text and "4 step(s), limit 3" in text
    assert "called delete_records" in text
    assert assert_eval(GOOD, checks=[ac.tool_called("get_weather"), ac.max_steps(3)])


# -- the golden agent tasks, end to end ------------------------------------------------------
PARIS = [("get_weather", {"city": "Paris", "unit": "c"})]


def test_golden_agent_tasks_through_evaluate(gw: Gateway, upstream: PricedUpstream) -> None:
    upstream.tool_calls = PARIS
    ds = load("agent-tasks")
    assert len(ds) >= 4 and all(s.checks for s in ds)
    run = evaluate(ds, agent_target(Agent(gw, tools=demo_tools(), max_steps=3)),
                   metrics=[], gateway=gw)
    by = {(s.sample_id, s.metric): s for s in run.scores}
    # The scripted model always asks for Paris's weather: right for one task only.
    assert all(s.passed for (sid, _), s in by.items() if sid == "weather-paris")
    assert not by[("add-numbers", "check:tool_called(add)")].passed
    assert not by[("weather-oslo-f", "check:tool_args(get_weather)")].passed
    assert run.config["target"]["kind"] == "agent"
    assert run.config["target"]["tools"] == ["add", "delete_records", "get_weather"]


def test_workbench_eval_agent_tasks_cli(tmp_path: Path, upstream: PricedUpstream) -> None:
    upstream.tool_calls = PARIS
    prof = mock_profile(upstream)
    (tmp_path / "workbench.toml").write_text(
        "[workbench]\nprofile = \"mock\"\nmax_retries = 0\n\n[workbench.profiles.mock]\n"
        f"kind = \"openai\"\nbase_url = {json.dumps(prof['base_url'])}\n"
        "chat_model = \"paid\"\nembed_model = \"paid-embed\"\n"
        "models = [{ name = \"paid\", provider = \"mock\", max_output_tokens = 100 },\n"
        "  { name = \"paid-embed\", provider = \"mock\", kind = \"embedding\" }]\n",
        encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", "eval", "agent-tasks", "--json",
         "--fail-under", "checks=0.9"], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr  # the gate fails: the model is scripted
    out = json.loads(proc.stdout)
    assert out["config"]["target"]["kind"] == "agent" and out["config"]["metrics"] == []
    assert out["gate"]["passed"] is False
