import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 2 · First calls through the governed gateway")

with app.setup:
    import itertools
    import json
    import time

    import labkit
    import marimo as mo

    import workbench


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # Lab 2 · First calls through the governed gateway

    Every model call in the workbench goes through one **gateway**. This lab is about the
    call itself: how a prompt is built, how answers stream, what a call costs, how to get
    JSON you can trust, and how to switch to another model without touching your code.

    **Learning goals**

    - Build prompts as *messages* (system, user, assistant) and tune `max_tokens`,
      `temperature` and `stop`.
    - Stream an answer and measure the time to the first token.
    - Read tokens and cost, and compute the cost of a call yourself.
    - Get JSON that parses every time, with a schema.
    - Switch profiles and fall back to the embedded model when a provider is down.

    **Time:** about 35 minutes.
    """)
    return


@app.cell
def _():
    gw = labkit.connect()
    gw
    return (gw,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 1. Prompts are messages

    Chat models take a list of **messages**. The `system` message sets the rules, `user`
    messages are the questions, and `assistant` messages are earlier answers (or examples
    you write yourself: *few-shot* prompting). `gw.chat("text")` is short for one user
    message.

    Try the playground: edit the prompts, move the sliders. Small models follow short,
    concrete instructions best.
    """)
    return


@app.cell
def _():
    system_box = labkit.text_area("You are a concise assistant. Answer in one sentence.",
                                  label="system")
    user_box = labkit.text_area("What is a vector database?", label="user")
    tokens_slider = labkit.slider(8, 64, 24, step=8, label="max_tokens")
    temp_slider = labkit.slider(0.0, 1.5, 0.0, step=0.1, label="temperature")
    labkit.vstack([system_box, user_box, tokens_slider, temp_slider])
    return system_box, temp_slider, tokens_slider, user_box


@app.cell
def _(gw, system_box, temp_slider, tokens_slider, user_box):
    playground = gw.chat(
        [{"role": "system", "content": system_box.value},
         {"role": "user", "content": user_box.value}],
        max_tokens=int(tokens_slider.value), temperature=float(temp_slider.value))
    playground
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    `temperature=0` picks the most likely token every time, so the same prompt gives the
    same answer: use it for tests and extraction. Higher values sample more freely.

    **Few-shot:** show the model the pattern you want with a made-up exchange.
    """)
    return


@app.cell
def _(gw):
    few_shot = gw.chat([
        {"role": "system", "content": "Classify the sentiment as positive or negative."},
        {"role": "user", "content": "I love this library!"},
        {"role": "assistant", "content": "positive"},
        {"role": "user", "content": "The build failed again."},
        {"role": "assistant", "content": "negative"},
        {"role": "user", "content": "Setup took two minutes, great docs."},
    ], max_tokens=3, temperature=0, stop=["\n"])
    few_shot
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Exercise 2.1 · Write the messages

    Set `messages` to a list of messages that makes the model answer **as a pirate**: a
    `system` message with that rule first, then a `user` question of your choice. The cell
    after the check sends it.
    """)
    return


@app.cell
def _():
    # Exercise 2.1: replace None
    messages = None
    return (messages,)


@app.function(hide_code=True)
def check_messages(value):
    """Exercise 2.1: a system message about a pirate, then a user message."""
    if value is None:
        return labkit.todo("Set messages to a list of dicts.")
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        return labkit.wrong("messages should be a list of dicts with role and content.")
    if len(value) < 2:
        return labkit.wrong("You need at least two messages: system, then user.")
    roles = [m.get("role") for m in value]
    if roles[0] != "system":
        return labkit.wrong(f"The first message should have role 'system', not {roles[0]!r}.")
    if roles[-1] != "user":
        return labkit.wrong(f"The last message should be the user's, not {roles[-1]!r}.")
    if any(not isinstance(m.get("content"), str) or not m["content"].strip() for m in value):
        return labkit.wrong("Every message needs a non-empty string content.")
    if "pirate" not in value[0]["content"].lower():
        return labkit.wrong("The system message should tell the model to be a pirate.")
    return labkit.right("Arr, right. The system message is where rules belong.")


@app.cell(hide_code=True)
def _(gw, messages):
    ex_messages = labkit.Exercise(
        "2.1", "Write the messages", answer="messages", check=check_messages,
        solution=('messages = [\n'
                  '    {"role": "system", "content": "You are a pirate. Talk like one."},\n'
                  '    {"role": "user", "content": "How do I learn Python?"},\n]'),
        hints=['Each message is a dict: {"role": ..., "content": ...}.',
               "The system message comes first and mentions the pirate."])
    ex_messages.feedback(messages, env={"gw": gw})
    return


@app.cell
def _(gw, messages):
    pirate = (gw.chat(messages, max_tokens=24, temperature=0.7)
              if check_messages(messages).ok else None)
    pirate
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 2. Streaming

    For a chat UI you show tokens as they arrive. `gw.stream(...)` goes through the same
    governance as `gw.chat(...)` (errors are raised before the first token), and yields
    OpenAI-style chunks. `.text()` gives just the text pieces; `.result` holds the full
    `ChatResult` once the stream ends.
    """)
    return


@app.cell
def _(gw):
    _t0 = time.perf_counter()
    stream = gw.stream("List three uses of a language model, comma separated.",
                       max_tokens=24, temperature=0)
    _pieces = stream.text()
    _first = next(_pieces, "")
    ttft_ms = (time.perf_counter() - _t0) * 1000
    streamed_text = labkit.live_text(itertools.chain([_first], _pieces))
    return stream, streamed_text, ttft_ms


@app.cell(hide_code=True)
def _(stream, streamed_text, ttft_ms):
    mo.md(f"""
    Time to first token: **{ttft_ms:.0f} ms**. Whole answer: {len(streamed_text)}
    characters. Facts from `stream.result`: `{stream.result._facts() if stream.result else ""}`
    """)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    Time to first token is what users feel. Lab 7 traces it; lab 9 watches it in
    production.

    ## 3. Tokens and cost

    Providers charge per **token** (a word piece), with different prices for input
    (prompt) and output (completion) tokens, quoted per million tokens. The embedded
    models cost nothing, so to make the arithmetic visible this lab adds a pretend model:
    `pretend-gpt` runs on the embedded SmolLM2 but is *priced* like an expensive hosted
    model. Extra models are a setting (`models` in `workbench.toml`).
    """)
    return


@app.cell
def _():
    pretend = workbench.ModelSpec(
        name="pretend-gpt", provider="embedded", upstream="smollm2-135m",
        input_usd_per_mtok=1000.0, output_usd_per_mtok=2000.0, max_output_tokens=64)
    priced_gw = labkit.connect(models=[pretend])
    priced = priced_gw.chat("Name one planet.", model="pretend-gpt", max_tokens=8,
                            temperature=0)
    priced
    return priced, priced_gw, pretend


@app.cell
def _(priced):
    labkit.table([{"prompt_tokens": priced.usage.get("prompt_tokens"),
                   "completion_tokens": priced.usage.get("completion_tokens"),
                   "cost_usd": priced.cost_usd}])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    Notice the prompt has more tokens than the words you typed: the chat template adds
    role markers (and SmolLM2 adds a default system prompt when you give none).

    ### Exercise 2.2 · Compute the cost yourself

    Write `my_cost(tokens_in, tokens_out)` that returns the cost in USD of a
    `pretend-gpt` call. Prices are per **million** tokens: input 1000 USD, output
    2000 USD. The check compares it with the gateway on several calls' worth of tokens.
    """)
    return


@app.cell
def _():
    # Exercise 2.2: replace None with a function
    my_cost = None
    return (my_cost,)


@app.function(hide_code=True)
def check_cost_fn(fn, reference):
    """Exercise 2.2: fn(tokens_in, tokens_out) must match the model's pricing."""
    if fn is None:
        return labkit.todo("Define my_cost(tokens_in, tokens_out).")
    if not callable(fn):
        return labkit.wrong("my_cost should be a function.")
    for t_in, t_out in ((22, 8), (1000, 0), (0, 500), (123456, 789)):
        got, want = fn(t_in, t_out), reference(t_in, t_out)
        if not isinstance(got, int | float) or abs(got - want) > 1e-9:
            return labkit.wrong(f"my_cost({t_in}, {t_out}) = {got!r}; the gateway charges "
                                f"{want:.6f}.")
    return labkit.right("Right. The gateway records exactly this in the usage ledger.")


@app.cell(hide_code=True)
def _(my_cost, pretend):
    ex_cost = labkit.Exercise(
        "2.2", "Compute the cost", answer="my_cost",
        check=lambda fn: check_cost_fn(fn, pretend.cost),
        solution=("def my_cost(tokens_in, tokens_out):\n"
                  "    return (tokens_in * 1000.0 + tokens_out * 2000.0) / 1_000_000"),
        hints=["Multiply each token count by its price, add them up.",
               "Divide by 1,000,000: prices are per million tokens."])
    ex_cost.feedback(my_cost)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    The usage ledger has one row per call (never the prompt text). Per model:
    """)
    return


@app.cell
def _(priced_gw):
    labkit.table(priced_gw.usage(by=("model",)),
                 ["model", "calls", "tokens_in", "tokens_out", "cost_usd"])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 4. JSON you can trust: use a schema

    Asking a small model for JSON in plain words mostly gives you prose, or almost-JSON.
    With `response_format={"type": "json_object", "schema": {...}}` the embedded runtime
    *constrains* generation to the schema (a grammar), so the output always parses. Hosted
    providers offer the same through structured outputs.
    """)
    return


@app.cell
def _(gw):
    _loose = gw.chat("Give me a city and its country as JSON.", max_tokens=32, temperature=0)
    try:
        json.loads(_loose.text)
        _verdict = "parsed (lucky this time)"
    except json.JSONDecodeError as _exc:
        _verdict = f"did not parse: {_exc.msg}"
    mo.md(f"Without a schema: `{_loose.text.strip()[:120]}` → **{_verdict}**")
    return


@app.cell
def _(gw):
    city_schema = {"type": "object",
                   "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
                   "required": ["city", "country"]}
    _strict = gw.chat("Give me a city and its country as JSON.", max_tokens=40, temperature=0,
                      response_format={"type": "json_object", "schema": city_schema})
    mo.md(f"With a schema: `{_strict.text.strip()}` → parsed: `{_strict.json()}`")
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    The values may still be wrong (the tiny model invents cities): a schema guarantees the
    *shape*, not the truth. Lab 5 tests both.

    ### Exercise 2.3 · Triage a support ticket

    Set `ticket` to the result of a `gw.chat(...)` call (the `ChatResult`, not its text)
    that classifies this ticket: *"I was charged twice for my subscription, please fix it
    today!"* Its JSON (`ticket.json()`) must have `category`, one of `"billing"`, `"bug"`,
    `"other"`, and `urgent`, a boolean. Use a schema with an `enum`. The check finds your
    call in the usage ledger by its trace id: a dict typed by hand does not pass.
    """)
    return


@app.cell
def _():
    # Exercise 2.3: replace None with the ChatResult of your call
    ticket = None
    return (ticket,)


@app.function(hide_code=True)
def check_ticket(value, ledger_rows):
    """Exercise 2.3: a real call (in the ledger) whose JSON has an enum category and a
    boolean urgent. ``ledger_rows(trace_id)`` returns that trace's ledger rows."""
    if value is None:
        return labkit.todo("Set ticket to the ChatResult of your gw.chat(...) call.")
    if isinstance(value, dict):
        return labkit.wrong("That is a dict: keep the ChatResult (the check reads its trace "
                            "id and parses its JSON itself).")
    if not isinstance(value, workbench.ChatResult):
        return labkit.wrong(f"ticket should be a ChatResult, not {type(value).__name__}.")
    if not labkit.made_by_gateway(value, ledger_rows):
        return labkit.wrong("No call with this trace id, model and token count is in the "
                            "usage ledger: make the call with gw.chat(...).")
    try:
        parsed = value.json()
    except ValueError:
        return labkit.wrong("The answer is not JSON: pass response_format with a schema.")
    if not isinstance(parsed, dict):
        return labkit.wrong(f"The JSON is a {type(parsed).__name__}, not an object.")
    missing = {"category", "urgent"} - set(parsed)
    if missing:
        return labkit.wrong(f"Missing keys: {', '.join(sorted(missing))}.")
    if parsed["category"] not in ("billing", "bug", "other"):
        return labkit.wrong(f"category is {parsed['category']!r}: constrain it with an enum.")
    if not isinstance(parsed["urgent"], bool):
        return labkit.wrong("urgent should be a JSON boolean (true/false).")
    note = "" if parsed["category"] == "billing" else (
        f" (The model said {parsed['category']!r}: the shape is right, the judgement is the "
        "tiny model's. Lab 5 measures that.)")
    return labkit.right("Right: valid, typed JSON every time." + note)


@app.cell(hide_code=True)
def _(gw, ticket):
    ex_json = labkit.Exercise(
        "2.3", "Triage with a schema", answer="ticket",
        check=lambda v: check_ticket(v, labkit.ledger_lookup(gw)),
        solution=(
            'ticket_schema = {\n'
            '    "type": "object",\n'
            '    "properties": {\n'
            '        "category": {"type": "string", "enum": ["billing", "bug", "other"]},\n'
            '        "urgent": {"type": "boolean"},\n'
            '    },\n'
            '    "required": ["category", "urgent"],\n'
            '}\n'
            'ticket = gw.chat(\n'
            '    "Classify this support ticket: I was charged twice for my subscription, "\n'
            '    "please fix it today!",\n'
            '    response_format={"type": "json_object", "schema": ticket_schema},\n'
            '    max_tokens=40, temperature=0,\n'
            ')'),
        hints=["Start from city_schema above; change the properties.",
               'An enum: {"type": "string", "enum": ["billing", "bug", "other"]}.',
               "ticket.json() parses the text: try it to see what the model said."])
    ex_json.feedback(ticket, env={"gw": gw})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 5. Switching profiles

    Your code names a model (or uses the default); the **profile** decides where that model
    runs. The same notebook runs on OpenAI with `WORKBENCH_PROFILE=openai` and
    `OPENAI_API_KEY` set, or on a vLLM server with a `[profiles.vllm]` section in
    `workbench.toml`:

    ```toml
    profile = "vllm"
    [profiles.vllm]
    base_url = "http://127.0.0.1:8000/v1"
    api_key_env = "VLLM_API_KEY"
    chat_model = "qwen2.5-7b-instruct"
    ```

    Below, the `openai` profile is only *inspected* (no call: this machine may be offline).
    """)
    return


@app.cell
def _():
    openai_gw = labkit.connect(profile="openai")
    labkit.table([{"name": m.name, "kind": m.kind, "provider": m.provider,
                   "input $/Mtok": m.input_usd_per_mtok, "output $/Mtok": m.output_usd_per_mtok}
                  for m in openai_gw.models()])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    **Fallbacks** keep a feature working when a provider is down. The `ollama` profile
    expects a server on `localhost:11434`; if none answers, the gateway retries, then tries
    the next model in `fallbacks`. In `workbench.toml`:

    ```toml
    [fallbacks]
    "llama3.2" = ["smollm2-135m"]
    ```

    ### Exercise 2.4 · Survive an outage

    Set `resilient` to the result of a call on a gateway with profile `ollama`, `fallbacks`
    from `llama3.2` to `smollm2-135m`, and `max_retries=0` (so the lab does not wait). If
    you have no Ollama running, the answer comes from the embedded model and says where it
    fell back from.
    """)
    return


@app.cell
def _():
    # Exercise 2.4: replace None
    resilient = None
    return (resilient,)


@app.function(hide_code=True)
def check_resilient(value, ledger_rows):
    """Exercise 2.4: a ChatResult from llama3.2, or from the fallback smollm2-135m, made
    by a real call (in the usage ledger)."""
    if value is None:
        return labkit.todo("Set resilient to a ChatResult.")
    if not isinstance(value, workbench.ChatResult):
        return labkit.wrong(f"resilient should be a ChatResult, not {type(value).__name__}.")
    if not labkit.made_by_gateway(value, ledger_rows):
        return labkit.wrong("This result is not in the usage ledger: make the call through "
                            "a gateway (connect(...).chat(...)), do not build it by hand.")
    if value.model == "llama3.2":
        return labkit.right("Ollama answered, so no fallback was needed. Stop it and try again "
                            "to see the fallback.")
    if value.model == "smollm2-135m" and value.fallback_from == "llama3.2":
        return labkit.right("Right: llama3.2 failed, smollm2-135m answered, and the result "
                            "says so (fallback_from).")
    return labkit.wrong(f"The answer came from {value.model!r} without falling back from "
                        "llama3.2: use profile='ollama' and the fallbacks setting.")


@app.cell(hide_code=True)
def _(gw, resilient):
    ex_fallback = labkit.Exercise(
        "2.4", "Survive an outage", answer="resilient",
        check=lambda v: check_resilient(v, labkit.ledger_lookup(gw)),
        solution=('ollama_gw = labkit.connect(profile="ollama", max_retries=0,\n'
                  '                          fallbacks={"llama3.2": ["smollm2-135m"]})\n'
                  'resilient = ollama_gw.chat("Say hi.", max_tokens=8)'),
        hints=["connect() takes profile=..., fallbacks=... and max_retries=... keywords.",
               'fallbacks is a dict: model name -> list of models to try next.'])
    ex_fallback.feedback(resilient, env={"labkit": labkit})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## Recap

    - Prompts are messages; the system message holds the rules; few-shot examples show the
      pattern. `temperature=0` for repeatable answers.
    - `gw.stream(...)` streams under the same governance; watch time to first token.
    - Cost = tokens × price per token, input and output priced apart; the ledger records
      every call (never the prompt).
    - For JSON, pass a schema: shape guaranteed, truth not.
    - Profiles move the same code between the embedded model, Ollama, OpenAI, vLLM, …;
      fallbacks keep it answering when a provider fails.

    ## Take it to your team

    - Put schemas on every machine-read answer, and keep them in code next to the feature.
    - Set `max_tokens` deliberately: it bounds cost, latency and the budget reservation
      (lab 3).
    - Configure fallbacks for user-facing features, and alert on `fallback_from` rates.
    - Where this fits on the way to production: the
      route-to-live playbook (`docs/playbooks/route-to-live.md`).

    **Next:** Lab 3, governance: keys, budgets, rate limits, redaction, audit.
    """)
    return


@app.cell
def test_messages_check():
    assert check_messages(None).todo
    assert not check_messages("be a pirate").ok
    assert not check_messages([{"role": "user", "content": "hi"}]).ok
    assert not check_messages([{"role": "system", "content": "Be nice."},
                               {"role": "user", "content": "hi"}]).ok
    assert check_messages([{"role": "system", "content": "Talk like a Pirate."},
                           {"role": "user", "content": "hi"}]).ok
    return


@app.cell
def test_cost_check():
    def _ref(t_in, t_out):
        return (t_in * 1000.0 + t_out * 2000.0) / 1e6

    assert check_cost_fn(None, _ref).todo
    assert not check_cost_fn(lambda a, b: a + b, _ref).ok
    assert not check_cost_fn(lambda a, b: (a + b) * 1000 / 1e6, _ref).ok
    assert check_cost_fn(_ref, _ref).ok
    return


@app.cell
def test_ticket_check():
    def _result(text, tokens=7, trace="a" * 32):
        return workbench.ChatResult(
            response={"choices": [{"message": {"content": text}}],
                      "usage": {"prompt_tokens": 5, "completion_tokens": tokens}},
            trace_id=trace, model="smollm2-135m")

    def _ledger(trace_id):  # one real call: trace "a"*32, 7 tokens out
        return ([{"outcome": "ok", "model": "smollm2-135m", "tokens_out": 7}]
                if trace_id == "a" * 32 else [])

    _good = '{"category": "billing", "urgent": true}'
    assert check_ticket(None, _ledger).todo
    assert not check_ticket({"category": "billing", "urgent": True}, _ledger).ok  # typed
    assert not check_ticket(_good, _ledger).ok
    assert not check_ticket(_result(_good, trace="b" * 32), _ledger).ok  # not in the ledger
    assert not check_ticket(_result(_good, tokens=9), _ledger).ok  # not that call
    assert not check_ticket(_result('{"category": "money", "urgent": true}'), _ledger).ok
    assert not check_ticket(_result('{"category": "billing", "urgent": "yes"}'), _ledger).ok
    assert not check_ticket(_result("billing, urgent"), _ledger).ok
    assert check_ticket(_result(_good), _ledger).ok
    assert check_ticket(_result('{"category": "other", "urgent": false}'), _ledger).ok
    return


@app.cell
def test_resilient_check():
    def _result(model, fallback_from=None, trace="0" * 32):
        return workbench.ChatResult(response={"choices": [], "usage": {"completion_tokens": 3}},
                                    trace_id=trace, model=model, fallback_from=fallback_from)

    def _ledger(trace_id):  # trace 0…: llama3.2 failed, smollm2 answered; 1…: llama3.2 ok
        return {"0" * 32: [{"outcome": "error", "model": "llama3.2", "tokens_out": 0},
                           {"outcome": "ok", "model": "smollm2-135m", "tokens_out": 3}],
                "1" * 32: [{"outcome": "ok", "model": "llama3.2", "tokens_out": 3}]
                }.get(trace_id, [])

    assert check_resilient(None, _ledger).todo
    assert not check_resilient(_result("smollm2-135m"), _ledger).ok
    assert not check_resilient(_result("smollm2-135m", "llama3.2", "f" * 32), _ledger).ok
    assert check_resilient(_result("smollm2-135m", "llama3.2"), _ledger).ok
    assert check_resilient(_result("llama3.2", trace="1" * 32), _ledger).ok
    return


if __name__ == "__main__":
    app.run()
