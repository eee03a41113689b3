"""Checks on what an agent did, not only what it said: which tools it called, whether the
arguments were valid, how many steps it took and why it stopped. They read the facts an
agent run carries (``AgentRun.eval_facts()``: ``steps``, ``stopped``, ``tool_calls``
with ``name``, ``arguments``, ``status``); combine them with the answer checks
(``contains``, ``numeric``...) for the final answer.

In Python (``assert_eval(run, checks=[...])``, the pytest plugin)::

    from workbench.evals import agent_checks as ac
    assert_eval(run, checks=[ac.tool_called("get_weather"), ac.max_steps(3)])

In a golden row: ``{"tool_called": "get_weather"}``, ``{"tool_not_called": "delete_db"}``,
``{"tool_args": {"tool": "get_weather", "schema": {...}}}`` (or ``{"tool_args": true}``:
every call's arguments fit its tool), ``{"max_steps": 3}``, ``{"stopped": "answer"}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from workbench.errors import BadRequest
from workbench.evals.checks import Check, CheckResult, Output, check

INVALID = ("invalid", "unknown")


def _facts(out: Output, name: str) -> Mapping[str, Any] | CheckResult:
    if out.facts is None:
        return CheckResult(name, False, 0.0, "not an agent run: no tool calls or steps to "
                                             "check (use --target agent, or pass an AgentRun)")
    return out.facts


FactsCheck = Callable[[Mapping[str, Any]], tuple[bool, str]]


def _on_facts(label: str) -> Callable[[FactsCheck], Check]:
    """A check on an agent run's facts (a plain answer fails it, saying why)."""
    def wrap(fn: FactsCheck) -> Check:
        @check(label)
        def run(out: Output) -> tuple[bool, str] | CheckResult:
            facts = _facts(out, label)
            return facts if isinstance(facts, CheckResult) else fn(facts)

        return run

    return wrap


def _names(values: str | Sequence[str]) -> list[str]:
    names = [values] if isinstance(values, str) else list(values)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise BadRequest("name at least one tool")
    return names


def _calls(facts: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(facts.get("tool_calls") or [])


def tool_called(*tools: str, ordered: bool = False) -> Check:
    """The agent called every tool named (in this order with ``ordered=True``)."""
    names = _names(list(tools))
    label = f"tool_called({', '.join(names)})"

    @_on_facts(label)
    def run(facts: Mapping[str, Any]) -> tuple[bool, str]:
        called = [str(c.get("name")) for c in _calls(facts)]
        missing = [n for n in names if n not in called]
        if missing:
            return False, f"never called {', '.join(missing)} (called: {called or 'nothing'})"
        if ordered:
            order = [called.index(n) for n in names]
            if order != sorted(order):
                return False, f"called in the order {called}, expected {names}"
        return True, f"called {', '.join(names)}"

    return run


def tool_not_called(*tools: str) -> Check:
    """The agent never called (asked for) any of these tools."""
    names = _names(list(tools))
    label = f"tool_not_called({', '.join(names)})"

    @_on_facts(label)
    def run(facts: Mapping[str, Any]) -> tuple[bool, str]:
        bad = [str(c.get("name")) for c in _calls(facts) if c.get("name") in names]
        return (not bad, f"called {', '.join(bad)}" if bad else "none of them called")

    return run


def tool_args(tool: str | None = None, schema: Mapping[str, Any] | None = None) -> Check:
    """Every call (of ``tool``, if named) had arguments that fit ``schema`` (if given) and
    the tool's own schema (the agent marks calls with invalid arguments ``invalid``)."""
    label = f"tool_args({tool or 'all'})"
    validator = None
    if schema is not None:
        import jsonschema

        try:
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise BadRequest(f"tool_args: the schema is not a valid JSON schema "
                             f"({exc.message[:200]})") from None
        validator = cls(schema)

    @_on_facts(label)
    def run(facts: Mapping[str, Any]) -> tuple[bool, str]:
        calls = [c for c in _calls(facts) if tool is None or c.get("name") == tool]
        if not calls:
            return False, f"no call{' of ' + tool if tool else ''} to check"
        for c in calls:
            if c.get("status") in INVALID:
                return False, f"{c.get('name')}: {c.get('status')} call ({c.get('result')})"
            if validator is not None:
                errors = list(validator.iter_errors(c.get("arguments") or {}))
                if errors:
                    return False, f"{c.get('name')}: {errors[0].message[:200]}"
        return True, f"{len(calls)} call(s) with valid arguments"

    return run


def max_steps(limit: int) -> Check:
    """The agent needed at most ``limit`` model calls."""
    label = f"max_steps({limit})"

    @_on_facts(label)
    def run(facts: Mapping[str, Any]) -> tuple[bool, str]:
        steps = int(facts.get("steps") or 0)
        return steps <= limit, f"{steps} step(s), limit {limit}"

    return run


def stopped(reason: str = "answer") -> Check:
    """The run ended for this reason: answer, max_steps, max_cost or stop_rule."""
    label = f"stopped({reason})"

    @_on_facts(label)
    def run(facts: Mapping[str, Any]) -> tuple[bool, str]:
        got = str(facts.get("stopped"))
        return got == reason, f"stopped by {got}"

    return run


def _tools_arg(v: Any) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def _tool_args_spec(v: Any) -> Check:
    if v is True:
        return tool_args()
    if isinstance(v, str):
        return tool_args(v)
    if isinstance(v, Mapping):
        return tool_args(v.get("tool"), v.get("schema"))
    raise BadRequest("tool_args takes true, a tool name, or {\"tool\": ..., \"schema\": {...}}")


BUILDERS: dict[str, Callable[[Any], Check]] = {
    "tool_called": lambda v: tool_called(*_tools_arg(v)),
    "tool_called_in_order": lambda v: tool_called(*_tools_arg(v), ordered=True),
    "tool_not_called": lambda v: tool_not_called(*_tools_arg(v)),
    "tool_args": _tool_args_spec,
    "max_steps": lambda v: max_steps(int(v)),
    "stopped": lambda v: stopped(str(v)),
}

__all__ = ["BUILDERS", "max_steps", "stopped", "tool_args", "tool_called", "tool_not_called"]
