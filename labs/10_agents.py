import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 10 · Agents and tools under governance")

with app.setup:
    import json
    import secrets
    from types import SimpleNamespace

    import labkit
    import marimo as mo

    import workbench
    from workbench.agents import Agent, AgentRun, ToolCall, tool
    from workbench.agents.evals import agent_target
    from workbench.evals import agent_checks as ac
    from workbench.evals import evaluate, load
    from workbench.models import tools as tool_policy
    from workbench.observability import traces


    @tool
    def get_weather(city: str, unit: str = "c") -> str:
        """Current weather in a city (demo data)."""
        temps = {"paris": 18, "oslo": 4, "lisbon": 24}
        temp = temps.get(city.strip().lower())
        if temp is None:
            return f"no weather data for {city}"
        value = temp if unit == "c" else round(temp * 9 / 5 + 32)
        return f"{value} degrees {unit.upper()} in {city}"

    @tool(dangerous=True)
    def delete_records(table: str) -> str:
        """Delete every record of a table (demo: nothing is deleted)."""
        return f"deleted every record of {table}"


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # Lab 10 · Agents and tools under governance

    An **agent** is a loop: the model plans, calls a **tool**, observes the result, and
    answers (or calls another tool). Tools turn a chat model into something that *acts*,
    which is why they need the same governance as models: who may call which tool, how
    far an agent may go, which actions wait for a human, and a record of it all. In the
    workbench, tools go through the same gateway as every model call.

    **Learning goals**

    - Turn a Python function into a tool; see the embedded model call it (a JSON schema
      constrains its output, so even a 135M model makes *valid* calls).
    - Give a key a **tool allowlist** and see a dangerous tool refused (403).
    - Run the agent loop; stop a runaway agent with a **step budget**; read its trace.
    - Put a **human approval hook** in front of a dangerous tool.
    - **Evaluate** an agent: did it choose the right tool, with valid arguments, in few
      steps?

    **Time:** about 40 minutes. The embedded model is tiny: it makes valid calls, not
    always wise ones. Switch the profile to a real model to see an agent plan well.
    """)
    return


@app.cell
def _():
    gw = labkit.connect()
    run = secrets.token_hex(2)  # lab runs do not collide in a shared store
    team = f"lab10-agents-{run}"
    gw.policy.set_team(team, actor="lab10")
    gw
    return gw, team


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 1. Tools are Python functions

    `@tool` reads the argument schema from the type hints and the description from the
    docstring. `dangerous=True` marks a tool that must not run without a human's yes.
    The lab's two tools (defined at the top of this file) are harmless demos:

    ```python
    @tool
    def get_weather(city: str, unit: str = "c") -> str:
        "Current weather in a city (demo data)."
        ...

    @tool(dangerous=True)
    def delete_records(table: str) -> str:
        "Delete every record of a table (demo: nothing is deleted)."
        ...
    ```
    """)
    return


@app.cell
def _():
    labkit.table([{"tool": t.name, "dangerous": t.dangerous, "description": t.description,
                   "parameters": t.parameters["properties"]}
                  for t in (get_weather, delete_records)])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    A model sees tools as OpenAI `tools` entries (`get_weather.spec()`). With
    `tool_choice="required"` it must answer with a call instead of text. The gateway hands
    the embedded model a grammar built from the tools' schemas, so its answer is always a
    known tool with arguments that fit; a hosted model gets the request as is.
    """)
    return


@app.cell
def _(gw):
    first = gw.chat("What is the weather in Paris?", tools=[get_weather.spec()],
                    tool_choice="required", max_tokens=48, temperature=0)
    first_call = first.response["choices"][0]["message"]["tool_calls"][0]
    mo.md(f"""
    The model answered with a **tool call**, not text:
    `{first_call['function']['name']}({first_call['function']['arguments']})`
    (finish reason `{first.response['choices'][0]['finish_reason']}`). Running the tool is
    the caller's job: here, `get_weather(**arguments)` →
    *{get_weather(**json.loads(first_call['function']['arguments']))}*.
    """)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 2. Tool allowlists

    Like model allowlists, a key and its team can each carry a list of the tools they may
    use (`workbench keys create --tools get_weather`, `workbench teams set T --tools ...`;
    `none` allows no tool, no list allows all). The gateway enforces it twice:

    - on the **request**: offering a tool the key may not use is refused with HTTP 403
      `tool_not_allowed`, before any model runs;
    - on the **answer**: if the model calls such a tool anyway, the call is withheld from
      the caller and written to the audit log.
    """)
    return


@app.cell
def _(gw, team):
    intern_id, intern_secret = gw.policy.create_key(team=team, name="intern-bot", actor="lab10")
    tool_policy.set_allowlist(gw.store, "key", intern_id, ["get_weather"], actor="lab10")
    intern = gw.as_key(intern_secret)
    try:
        intern.chat("Clean up the users table.", tools=[delete_records.spec()], max_tokens=16)
        _refused = "not refused: the allowlist is broken!"
    except workbench.PermissionDenied as _exc:
        _refused = f"HTTP {_exc.status} `{_exc.code}`: {_exc.message}"
    mo.md(f"""
    Key **{intern_id}** may use only `get_weather`. Offering it `delete_records`:

    {_refused}
    """)
    return (intern,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Exercise 10.1 · A key for the weather bot

    Create a key in team `team` that may use **only the `get_weather` tool** (use
    `tool_policy.set_allowlist(gw.store, "key", key_id, [...])` after
    `gw.policy.create_key(...)`). Set `weather_key_id` to its id (`key_…`).
    """)
    return


@app.cell
def _():
    # Exercise 10.1: replace None
    weather_key_id = None
    return (weather_key_id,)


@app.function(hide_code=True)
def check_weather_key(value, keys, allowlists, team):
    """Exercise 10.1: a key of `team` whose tool allowlist is exactly ['get_weather']."""
    if value is None:
        return labkit.todo("Create the key and set weather_key_id to its id.")
    if not isinstance(value, str) or not value.startswith("key_"):
        return labkit.wrong("weather_key_id should be the key's id (key_…), not the secret.")
    row = next((k for k in keys if k["id"] == value), None)
    if row is None:
        return labkit.wrong(f"No key with id {value}.")
    if row["team"] != team:
        return labkit.wrong(f"The key is in team {row['team']!r}, not {team!r}.")
    tools = allowlists.get(f"key:{value}")
    if tools is None:
        return labkit.wrong("The key has no tool allowlist: it may use every tool.")
    if sorted(tools) != ["get_weather"]:
        return labkit.wrong(f"Its tool allowlist is {tools}, not ['get_weather'].")
    return labkit.right("Right: least privilege for tools too. On the CLI: "
                        "workbench keys create --team T --tools get_weather")


@app.cell(hide_code=True)
def _(gw, team, weather_key_id):
    ex_key = labkit.Exercise(
        "10.1", "A key for the weather bot", answer="weather_key_id",
        check=lambda v: check_weather_key(v, gw.policy.list_keys(),
                                          tool_policy.allowlists(gw.store), team),
        solution=('weather_key_id, _secret = gw.policy.create_key(team=team, name="weather")\n'
                  'tool_policy.set_allowlist(gw.store, "key", weather_key_id, ["get_weather"])'),
        hints=["gw.policy.create_key(team=...) returns (id, secret).",
               "tool_policy.set_allowlist(gw.store, 'key', key_id, ['get_weather'])"])
    ex_key.feedback(weather_key_id, env={"gw": gw, "team": team, "tool_policy": tool_policy})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 3. The agent loop and its budgets

    `Agent(gw, tools=[...])` runs plan → call a tool → observe → answer, every model call
    through the gateway. A run stops when the model answers, or at the **step budget**
    (`max_steps` model calls), the **cost budget** (`max_cost_usd`), or a **stop rule**
    you give it. Below, `tool_choice="required"` forces a tool call at every step: the
    loop would never end without its step budget.
    """)
    return


@app.cell
def _(intern):
    looping = Agent(intern, tools=[get_weather, delete_records], tool_choice="required",
                    max_steps=2, max_tokens=48)
    looping_run = looping.run("What is the weather in Paris?")
    looping_run
    return (looping_run,)


@app.cell(hide_code=True)
def _(looping_run):
    mo.md(f"""
    Stopped by **{looping_run.stopped}** after {len(looping_run.steps)} model calls. The
    intern key's agent was never even offered `delete_records` (its allowlist), so the
    model could not pick it. The trace shows the loop: an AGENT span with an LLM span per
    step and a TOOL span per tool run (arguments and results masked like prompts).
    """)
    return


@app.cell
def _(gw, looping_run):
    traces.get_trace(gw.store, looping_run.trace_id)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Exercise 10.2 · Stop it after one step

    Run an agent over `gw` with the `get_weather` tool that is stopped by its step budget
    after **exactly one** model call (it must have asked for a tool, so the budget, not
    an answer, ended it). Set `budget_run` to the run (`agent.run(...)` returns it).
    """)
    return


@app.cell
def _():
    # Exercise 10.2: replace None
    budget_run = None
    return (budget_run,)


@app.function(hide_code=True)
def check_budget_run(value, ledger_rows):
    """Exercise 10.2: a real AgentRun stopped by max_steps after one step."""
    if value is None:
        return labkit.todo("Run an agent and set budget_run to its result.")
    if not isinstance(value, AgentRun):
        return labkit.wrong(f"budget_run is a {type(value).__name__}, not what Agent.run returns.")
    if value.stopped != "max_steps":
        return labkit.wrong(f"The run was stopped by {value.stopped!r}, not by its step budget "
                            "(max_steps). Force a tool call with tool_choice='required'.")
    if len(value.steps) != 1:
        return labkit.wrong(f"The run took {len(value.steps)} steps, not 1: set max_steps=1.")
    if not value.tool_calls:
        return labkit.wrong("The step made no tool call.")
    if not ledger_rows(value.steps[0].trace_id):
        return labkit.wrong("The gateway's ledger has no call for this run: run a real agent.")
    return labkit.right("Right: a step budget is the cheapest guard against a looping agent. "
                        "Pair it with max_cost_usd when the model is paid.")


@app.cell(hide_code=True)
def _(budget_run, gw):
    ex_budget = labkit.Exercise(
        "10.2", "Stop it after one step", answer="budget_run",
        check=lambda v: check_budget_run(v, labkit.ledger_lookup(gw)),
        solution=('budget_run = Agent(gw, tools=[get_weather], tool_choice="required",\n'
                  '                   max_steps=1, max_tokens=48).run("Weather in Oslo?")'),
        hints=["Agent(gw, tools=[...], max_steps=...) then .run(question).",
               "tool_choice='required' makes the model call a tool at every step."])
    ex_budget.feedback(budget_run, env={"gw": gw, "Agent": Agent, "get_weather": get_weather})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 4. A human in the loop

    A tool marked `dangerous` runs only if the agent's `approve` hook returns `True` for
    that call; with no hook it is refused. The refusal is the model's observation (it can
    say so in its answer) and an audit row. Here the model is told to call
    `delete_records`; the hook says no.
    """)
    return


@app.cell
def _(gw):
    asked = []

    def _say_no(call):
        asked.append(f"{call.name}({call.arguments})")
        return False

    _forced = {"type": "function", "function": {"name": "delete_records"}}
    guarded_run = Agent(gw, tools=[delete_records], tool_choice=_forced, max_steps=1,
                        approve=_say_no, max_tokens=32).run("Clean up the users table.")
    [_call] = guarded_run.tool_calls
    mo.md(f"""
    The hook was asked about `{asked[0]}` and said no. The call's status is
    **{_call.status}**; what the model observed: *{_call.result}*.
    In a notebook, `approve=ask_human` (from `workbench.agents`) asks you on the spot.
    """)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Exercise 10.3 · Approve only the scratch table

    Write `approve_scratch(call)`: return `True` only for a `delete_records` call whose
    `table` argument is exactly `"scratch"`, `False` for anything else. `call` is a
    `ToolCall` with `.name` and `.arguments` (a dict).
    """)
    return


@app.cell
def _():
    # Exercise 10.3: replace the body
    def approve_scratch(call):
        return None
    return (approve_scratch,)


@app.function(hide_code=True)
def check_approver(fn):
    """Exercise 10.3: approve delete_records(table="scratch") only."""
    if fn is None:
        return labkit.todo("Define approve_scratch.")
    cases = [
        (ToolCall("1", "delete_records", {"table": "scratch"}), True),
        (ToolCall("2", "delete_records", {"table": "users"}), False),
        (ToolCall("3", "delete_records", {"table": "Scratch"}), False),
        (ToolCall("4", "delete_records", {}), False),
        (ToolCall("5", "drop_table", {"table": "scratch"}), False),
    ]
    for call, want in cases:
        got = fn(call)
        if got is None and want:
            return labkit.todo("approve_scratch returns None: write its body.")
        if got is not want:
            return labkit.wrong(f"approve_scratch({call.name}, {call.arguments}) returned "
                                f"{got!r}; it should return {want}.")
    return labkit.right("Right: approve the narrow case, refuse everything else (the "
                        "default must be no).")


@app.cell(hide_code=True)
def _(approve_scratch):
    ex_approve = labkit.Exercise(
        "10.3", "Approve only the scratch table", answer="approve_scratch",
        check=check_approver,
        solution=('def approve_scratch(call):\n'
                  '    return call.name == "delete_records" and '
                  'call.arguments.get("table") == "scratch"'),
        hints=["Compare call.name and call.arguments.get('table').",
               "Return a real bool: `a == b and c == d` is one."])
    ex_approve.feedback(approve_scratch)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 5. Evaluate the agent

    An agent's answer is not enough to grade it: *how* it got there matters. The agent
    checks read what the run did: `tool_called`, `tool_not_called`, `tool_args` (valid,
    or matching a schema), `max_steps`, `stopped`. The shipped golden set `agent-tasks`
    uses them; `workbench eval agent-tasks --target agent` runs it from the CLI, and
    `assert_eval(run, checks=[...])` in pytest. Two of its tasks, one step each:
    """)
    return


@app.cell
def _(gw):
    _agent = Agent(gw, tools=[get_weather, delete_records], tool_choice="required",
                   max_steps=1, max_tokens=48)
    agent_eval = evaluate(load("agent-tasks").head(2), agent_target(_agent), metrics=[],
                          gateway=gw, name="lab10")
    labkit.table([{"task": s.sample_id, "check": s.metric.removeprefix("check:"),
                   "passed": s.passed, "why": s.reason} for s in agent_eval.scores])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Exercise 10.4 · Checks that catch a bad agent

    Set `my_checks` to a list of agent checks (from `ac`) for the task *"What is the
    weather in Oslo?"* that **pass** a good run (it called `get_weather`, one step, then
    answered) and **fail** each of these bad runs: one that called `delete_records` too,
    one that answered without calling any tool, and one that took 6 steps.
    """)
    return


@app.cell
def _():
    # Exercise 10.4: replace None with a list of checks, e.g. [ac.max_steps(10)]
    my_checks = None
    return (my_checks,)


@app.function(hide_code=True)
def sample_runs():
    """(good run, [bad runs]) for exercise 10.4, built by hand: no model needed."""
    def _run(calls, steps=2, stopped="answer"):
        tool_calls = [ToolCall(f"c{i}", n, {"city": "Oslo"}, status="ok")
                      for i, n in enumerate(calls)]
        step_list = [SimpleNamespace(tool_calls=tool_calls)] + [
            SimpleNamespace(tool_calls=[]) for _ in range(steps - 1)]
        return AgentRun(task="What is the weather in Oslo?", answer="4 degrees C",
                        stopped=stopped, steps=step_list, cost_usd=0.0, trace_id="0" * 32)

    good = _run(["get_weather"])
    bad = [_run(["get_weather", "delete_records"]), _run([], steps=1), _run(["get_weather"], 6)]
    return good, bad


@app.function(hide_code=True)
def check_agent_checks(value):
    """Exercise 10.4: the checks pass the good run and fail every bad one."""
    if value is None:
        return labkit.todo("Set my_checks to a list of checks.")
    if not isinstance(value, list | tuple) or not value:
        return labkit.wrong("my_checks should be a non-empty list of checks.")
    if not all(callable(c) and hasattr(c, "name") for c in value):
        return labkit.wrong("Every item should be a check, e.g. ac.tool_called('get_weather').")
    good, bad = sample_runs()
    failing = [c.name for c in value if not c(good).passed]
    if failing:
        return labkit.wrong(f"The good run fails {failing}: a check that rejects good "
                            "behaviour is a flaky gate.")
    for label, run in zip(("called delete_records", "called no tool", "took 6 steps"), bad,
                          strict=True):
        if all(c(run).passed for c in value):
            return labkit.wrong(f"The run that {label} passes every check.")
    return labkit.right("Right: tool choice, a forbidden tool and a step bound, each "
                        "checked; add the answer checks (contains, numeric) on top.")


@app.cell(hide_code=True)
def _(my_checks):
    ex_checks = labkit.Exercise(
        "10.4", "Checks that catch a bad agent", answer="my_checks",
        check=check_agent_checks,
        solution=('my_checks = [ac.tool_called("get_weather"),\n'
                  '             ac.tool_not_called("delete_records"), ac.max_steps(3)]'),
        hints=["One check per bad run: which fact differs from the good run?",
               "ac.tool_called, ac.tool_not_called and ac.max_steps are enough."])
    ex_checks.feedback(my_checks, env={"ac": ac})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## Tools from MCP servers

    Tools can also come from any **MCP server** (install the `agents` extra:
    `pip install 'genai-workbench[agents]'`). Their tools join the agent under the same
    allowlists, approval hook, spans and audit; MCP's `destructiveHint` marks a tool
    dangerous:

    ```python
    from workbench.agents.mcp_bridge import MCPTools

    with MCPTools(["python", "my_server.py"]) as server:      # or "http://127.0.0.1:8000/mcp"
        run = Agent(gw, tools=server.tools(), approve=ask_human).run("...")
    ```

    ## Recap

    - A tool is a typed Python function; the embedded model calls it through a
      schema-constrained grammar, so calls are valid even from a tiny model.
    - Tool allowlists per key and team: 403 `tool_not_allowed` on the request, calls
      withheld and audited on the answer.
    - The agent loop stops at an answer, a step budget, a cost budget or a stop rule;
      dangerous tools wait for a human; every step is traced (AGENT > LLM / TOOL).
    - Agent evals check tool choice, arguments, steps and the answer.

    ## Take it to your team

    - Least privilege for tools: a `--tools` list on every key that offers tools; no
      dangerous tool without an approval hook.
    - Always set `max_steps`, and `max_cost_usd` on paid models.
    - Gate agent changes on an eval of tool choice and arguments, not only the answer.
    - The governance playbook (`docs/playbooks/governance.md`) has the details.
    """)
    return


@app.cell
def test_weather_key_check():
    _keys = [{"id": "key_a", "team": "t"}, {"id": "key_b", "team": "t"},
             {"id": "key_c", "team": "u"}, {"id": "key_d", "team": "t"}]
    _lists = {"key:key_a": ["get_weather"], "key:key_b": ["delete_records", "get_weather"],
              "key:key_c": ["get_weather"]}
    assert check_weather_key(None, _keys, _lists, "t").todo
    assert not check_weather_key("wb-secret", _keys, _lists, "t").ok
    assert not check_weather_key("key_z", _keys, _lists, "t").ok
    assert not check_weather_key("key_b", _keys, _lists, "t").ok
    assert not check_weather_key("key_c", _keys, _lists, "t").ok
    assert not check_weather_key("key_d", _keys, _lists, "t").ok
    assert check_weather_key("key_a", _keys, _lists, "t").ok
    return


@app.cell
def test_budget_run_check():
    def _run(stopped, n_steps, calls=("get_weather",)):
        _steps = [SimpleNamespace(trace_id=f"t{i}", tool_calls=[]) for i in range(n_steps)]
        if _steps:
            _steps[0].tool_calls = [ToolCall("c", n, {}) for n in calls]
        return AgentRun(task="q", answer=None, stopped=stopped, steps=_steps, cost_usd=0.0,
                        trace_id="0" * 32)

    _in_ledger = {"t0": [{"outcome": "ok"}]}.get
    _nowhere = {}.get
    assert check_budget_run(None, _in_ledger).todo
    assert not check_budget_run({"stopped": "max_steps"}, _in_ledger).ok
    assert not check_budget_run(_run("answer", 1), _in_ledger).ok
    assert not check_budget_run(_run("max_steps", 2), _in_ledger).ok
    assert not check_budget_run(_run("max_steps", 1, calls=()), _in_ledger).ok
    assert not check_budget_run(_run("max_steps", 1), _nowhere).ok
    assert check_budget_run(_run("max_steps", 1), _in_ledger).ok
    return


@app.cell
def test_approver_check():
    assert check_approver(None).todo
    assert check_approver(lambda call: None).todo
    assert not check_approver(lambda call: True).ok
    assert not check_approver(lambda call: False).ok
    assert not check_approver(lambda call: call.name == "delete_records").ok
    assert not check_approver(
        lambda call: call.arguments.get("table", "").lower() == "scratch").ok
    assert check_approver(lambda call: call.name == "delete_records"
                          and call.arguments.get("table") == "scratch").ok
    return


@app.cell
def test_agent_checks_check():
    assert check_agent_checks(None).todo
    assert not check_agent_checks([]).ok
    assert not check_agent_checks(["tool_called"]).ok
    assert not check_agent_checks([ac.max_steps(10)]).ok
    assert not check_agent_checks([ac.tool_called("get_weather")]).ok
    assert not check_agent_checks([ac.tool_called("add"), ac.max_steps(3)]).ok
    assert check_agent_checks([ac.tool_called("get_weather"),
                               ac.tool_not_called("delete_records"), ac.max_steps(3)]).ok
    return


if __name__ == "__main__":
    app.run()
