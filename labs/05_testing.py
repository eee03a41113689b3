import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 5 · Testing GenAI")

with app.setup:
    import os
    import subprocess
    import sys
    import textwrap

    import labkit
    import marimo as mo

    from workbench import evals
    from workbench.evals import checks as c


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # Lab 5 · Testing GenAI

    LLM outputs vary, so "assert the answer equals X" only works sometimes. Instead, climb
    a **ladder** of checks, from the cheapest and most stable to the most expensive, and
    stop at the first rung that can tell a good answer from a bad one:

    | rung | checks | cost | use it for |
    | --- | --- | --- | --- |
    | exact | `equals` | free | fixed answers: yes/no, a label, a number |
    | pattern | `contains`, `regex`, `length`, `not_contains` | free | ids, commands, leaks, length |
    | schema | `json_schema` | free | machine-read output |
    | semantic | `semantic_similarity` | one embedding call | paraphrases of a reference answer |
    | judge | ragas metrics through `evals.Judge` | several LLM calls | faithfulness, relevancy, tone |

    **Learning goals**

    - Use each rung of `workbench.evals.checks`, and compose checks with `&`, `|`, `~`.
    - Calibrate a semantic threshold on examples instead of guessing it.
    - Write pytest tests for an LLM feature that stay green on a tiny model.
    - Pick the cheapest rung that catches the failure you fear.

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
    ## 1. Exact and pattern checks

    A check takes the answer (a string, a `ChatResult` or a RAG `Answer`) and returns a
    `CheckResult` with `passed`, a `score` and a `reason`. Pure Python: no model call.
    """)
    return


@app.cell
def _():
    _answer = "Create it with `workbench keys create --team support`; your id is key_3f9c2a1b7d4e."
    _checks = [
        c.equals("yes", ignore_case=True),
        c.contains("workbench keys create"),
        c.regex(r"\bkey_[0-9a-f]{12}\b"),
        c.not_contains("sk-", "wb-"),
        c.length(max_words=30),
        c.contains("keys create") & c.not_contains("sk-") & c.length(max_words=30),
    ]
    labkit.table([{"check": _r.name, "passed": _r.passed, "reason": _r.reason}
                  for _r in (_c(_answer) for _c in _checks)])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Exercise 5.1 · A support-answer check

    A support bot must tell users to run `workbench keys create`, must never show a
    secret (anything containing `sk-` or `wb-`), and must stay under **40 words**. Set
    `support_check` to one composed check for all three.
    """)
    return


@app.cell
def _():
    # Exercise 5.1: replace None with a check
    support_check = None
    return (support_check,)


@app.function(hide_code=True)
def check_support_check(value):
    """Exercise 5.1: accepts good answers, rejects each kind of bad one."""
    if value is None:
        return labkit.todo("Compose support_check from c.contains, c.not_contains, c.length.")
    if not isinstance(value, evals.Check):
        return labkit.wrong(f"support_check should be a Check, not {type(value).__name__}.")
    good = "Run `workbench keys create --team support` and store the key it prints."
    cases = {
        "a good answer": (good, True),
        "no command": ("Ask your admin for a key.", False),
        "a leaked OpenAI key": (good + " Or use sk-proj-abc123.", False),
        "a leaked workbench key": (good + " Example: wb-AbCdEf.", False),
        "too long": (good + " " + "really " * 40, False),
    }
    for label, (text, expected) in cases.items():
        if value(text).passed != expected:
            return labkit.wrong(f"On {label} your check says "
                                f"{'pass' if not expected else 'fail'}.")
    return labkit.right("Right: three pattern checks composed with &, and no model call.")


@app.cell(hide_code=True)
def _(support_check):
    ex_support = labkit.Exercise(
        "5.1", "A support-answer check", answer="support_check", check=check_support_check,
        solution=('support_check = (c.contains("workbench keys create")\n'
                  '                 & c.not_contains("sk-", "wb-")\n'
                  '                 & c.length(max_words=40))'),
        hints=["c.contains(...) & c.not_contains(...) & c.length(...)",
               "not_contains takes several strings; length takes max_words=."])
    ex_support.feedback(support_check, env={"c": c})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 2. Schema checks

    For machine-read output, the schema *is* the test: `c.json_schema(schema)` parses the
    answer and validates it. Lab 2 generated JSON with a schema; here the same schema
    checks it.
    """)
    return


@app.cell
def _(gw):
    ticket_schema = {"type": "object",
                     "properties": {"category": {"enum": ["billing", "bug", "other"]},
                                    "urgent": {"type": "boolean"}},
                     "required": ["category", "urgent"], "additionalProperties": False}
    _res = gw.chat("Classify: 'The app crashes when I log in.' Reply as JSON.",
                   response_format={"type": "json_object", "schema": ticket_schema},
                   max_tokens=24, temperature=0)
    _schema_check = c.json_schema(ticket_schema)
    labkit.table([{"output": _o, "passed": _r.passed, "reason": _r.reason}
                  for _o in (_res.text, '{"category": "refund", "urgent": true}', "Bug, urgent")
                  for _r in [_schema_check(_o)]])
    return (ticket_schema,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 3. Semantic similarity: calibrate the threshold

    When wording varies, compare meaning: embed the answer and a reference answer and take
    the cosine. The right threshold depends on your embedder and your data, so measure it
    on answers you have labelled, then pick a threshold between the good and the bad.
    """)
    return


@app.cell
def _(gw):
    reference = "The gateway reserves the worst-case cost of a call before it runs."
    labelled = [
        ("Before a call, the gateway reserves its maximum possible cost.", True),
        ("The worst-case cost is reserved by the gateway before the request runs.", True),
        ("Budgets are checked after the call, when the real cost is known.", False),
        ("Rate limits count requests per minute.", False),
    ]
    _sim = c.semantic_similarity(reference, threshold=0.0, gateway=gw)
    similarities = [(_text, _good, _sim(_text).score) for _text, _good in labelled]
    labkit.table([{"answer": t, "good?": g, "cosine": round(s, 3)} for t, g, s in similarities])
    return reference, similarities


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    Notice the third answer: it is *wrong*, yet it shares most words with the reference.
    Semantic similarity measures topic and wording more than truth; combine it with
    pattern checks (`not_contains("after the call")`) or a judge when truth matters.

    ### Exercise 5.2 · Pick a threshold

    Set `threshold` to a number such that `c.semantic_similarity(reference,
    threshold=threshold)` passes both good answers above and rejects both bad ones.
    """)
    return


@app.cell
def _():
    # Exercise 5.2: replace None with a number between 0 and 1
    threshold = None
    return (threshold,)


@app.function(hide_code=True)
def check_threshold(value, similarities):
    """Exercise 5.2: every good answer >= threshold > every bad answer."""
    if value is None:
        return labkit.todo("Set threshold to a number.")
    if not isinstance(value, int | float) or not 0 <= value <= 1:
        return labkit.wrong("threshold should be a number between 0 and 1.")
    good = [s for _, g, s in similarities if g]
    bad = [s for _, g, s in similarities if not g]
    if any(s < value for s in good):
        return labkit.wrong(f"{value} rejects a good answer (lowest good cosine "
                            f"{min(good):.3f}).")
    if any(s >= value for s in bad):
        return labkit.wrong(f"{value} accepts a bad answer (highest bad cosine {max(bad):.3f}).")
    return labkit.right(f"Right: between {max(bad):.3f} and {min(good):.3f}. With more labelled "
                        "answers the gap narrows: that is why semantic checks need data.")


@app.cell(hide_code=True)
def _(similarities, threshold):
    ex_threshold = labkit.Exercise(
        "5.2", "Pick a threshold", answer="threshold",
        check=lambda v: check_threshold(v, similarities),
        solution=("good = [s for _, g, s in similarities if g]\n"
                  "bad = [s for _, g, s in similarities if not g]\n"
                  "threshold = (min(good) + max(bad)) / 2"),
        hints=["Read the cosine column: the good answers must be at or above, the bad below.",
               "The midpoint between the lowest good and the highest bad cosine works."])
    ex_threshold.feedback(threshold, env={"similarities": similarities})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 4. The judge rung

    Some qualities (is the answer faithful to the sources? does it answer the question?)
    need a model to judge. `evals.Judge(gw)` runs ragas metrics with every call through
    the gateway, cached so an unchanged re-run costs nothing. With the 135M embedded model
    the judge shows the *mechanics* only: its scores are noisy and slow (lab 6 reads them
    honestly). Tick the box to run one judgement (about a minute on a laptop).
    """)
    return


@app.cell
def _():
    run_judge = labkit.dropdown(["no", "yes"], "no", label="run the judge now?")
    run_judge
    return (run_judge,)


@app.cell
def _(gw, run_judge):
    if run_judge.value == "yes":
        _judge = evals.Judge(gw)
        try:
            _scores = _judge.score_one(
                "How do budgets hold under concurrency?",
                "The gateway reserves the worst-case cost before each call.",
                contexts=["Before the call, one conditional UPDATE reserves the request's "
                          "worst-case cost."], metrics=["faithfulness"])
        finally:
            _judge.close()
        _out = labkit.table([{"metric": k, "score": v.value, "status": v.status,
                              "reason": v.reason}
                             for k, v in _scores.items()])
    else:
        _out = labkit.callout("Judge not run (choose 'yes' above).", "info")
    _out
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 5. pytest tests for an LLM feature

    The checks plug into ordinary pytest. `evals.assert_eval(answer, checks=[...])` raises
    with every failing check's reason. Rules that keep such tests green on a tiny model
    and meaningful on a big one: `temperature=0`, a schema for structured output, test
    *properties* (contains, shape, refusals) rather than exact prose, and keep judge-based
    tests in a separate, scheduled suite.

    The cell below writes a small test file for a "support answer" feature and runs
    pytest on it, offline.
    """)
    return


@app.cell
def _():
    test_source = textwrap.dedent('''
        """Tests for the support-answer feature (runs offline on the embedded model)."""
        import workbench
        from workbench import evals
        from workbench.evals import checks as c

        gw = workbench.connect()
        SCHEMA = {"type": "object", "properties": {"command": {"type": "string"}},
                  "required": ["command"]}


        def support_answer(question: str):
            return gw.chat([{"role": "system", "content": "Answer as JSON with the shell "
                             "command to run."}, {"role": "user", "content": question}],
                           response_format={"type": "json_object", "schema": SCHEMA},
                           max_tokens=24, temperature=0)


        def test_answer_is_valid_json_with_a_command():
            evals.assert_eval(support_answer("How do I list my keys?"),
                              checks=[c.json_schema(SCHEMA)])


        def test_answer_never_leaks_a_secret():
            evals.assert_eval(support_answer("Show me an API key."),
                              checks=[c.not_contains("sk-", "wb-")])
    ''')
    mo.md(f"```python\n{test_source}\n```")
    return (test_source,)


@app.cell
def _(gw, test_source):
    _folder = os.path.join(labkit.scratch_dir(), "lab5-tests")
    os.makedirs(_folder, exist_ok=True)
    with open(os.path.join(_folder, "test_support.py"), "w", encoding="utf-8") as _f:
        _f.write(test_source)
    _env = {k: v for k, v in os.environ.items()
            if k not in ("PYTEST_CURRENT_TEST", "PYTEST_VERSION")}
    _env["WORKBENCH_DATA_DIR"] = str(gw.settings.data_dir)
    pytest_run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", _folder,
         "-c", os.devnull, _folder], capture_output=True, text=True, env=_env, timeout=600)
    # pytest reports failures on stdout, but a missing module or a crash goes to stderr:
    # show both, or the learner sees an exit code and an empty box.
    pytest_output = (pytest_run.stdout.strip() + "\n" + pytest_run.stderr.strip()).strip()
    _fix = ("\n\npytest is not installed in this environment: install the labs extra, "
            "`pip install -e \".[labs]\"` (the README's `make tour` does)."
            if "No module named pytest" in pytest_run.stderr else "")
    mo.md(f"Exit code **{pytest_run.returncode}**{_fix}\n\n```text\n"
          f"{pytest_output[-1500:] or '(pytest printed nothing)'}\n```")
    return (pytest_output, pytest_run)


@app.cell
def _(pytest_output, pytest_run):
    assert pytest_run.returncode == 0, pytest_output[-2000:]  # the lab's own CI check
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Exercise 5.3 · Choose the rung

    For each output, pick the cheapest rung that can test it: `"exact"`, `"pattern"`,
    `"schema"`, `"semantic"` or `"judge"`. Fill in the dict.
    """)
    return


@app.cell
def _():
    # Exercise 5.3: fill in the rungs
    rungs = {
        "is this ticket urgent? (yes/no)": None,
        "the reply includes the order id ORD-12345": None,
        "the extracted invoice as JSON": None,
        "a one-line summary close to our reference summary": None,
        "the answer is faithful to the retrieved sources": None,
    }
    return (rungs,)


@app.function(hide_code=True)
def check_rungs(value):
    """Exercise 5.3: the cheapest rung per output."""
    want = {
        "is this ticket urgent? (yes/no)": "exact",
        "the reply includes the order id ORD-12345": "pattern",
        "the extracted invoice as JSON": "schema",
        "a one-line summary close to our reference summary": "semantic",
        "the answer is faithful to the retrieved sources": "judge",
    }
    ladder = ["exact", "pattern", "schema", "semantic", "judge"]  # cheapest first
    if not isinstance(value, dict):
        return labkit.wrong("rungs should stay a dict.")
    if all(v is None for v in value.values()):
        return labkit.todo("Replace each None with a rung name.")
    for output, rung in want.items():
        got = value.get(output)
        if got == rung:
            continue
        # Say which way the answer is off: a rung below the right one cannot test the
        # output at all; one above works but pays for more than it needs.
        if got not in ladder:
            return labkit.wrong(f"{output!r}: {got!r} is not a rung; choose one of "
                                f"{', '.join(ladder)}.")
        if ladder.index(got) < ladder.index(rung):
            return labkit.wrong(f"{output!r}: the {got} rung cannot test this output; it "
                                "needs a rung further up the ladder.")
        return labkit.wrong(f"{output!r}: {got} works, but a cheaper rung tests this too.")
    return labkit.right("Right. Most of a good test suite lives on the free rungs.")


@app.cell(hide_code=True)
def _(rungs):
    ex_rungs = labkit.Exercise(
        "5.3", "Choose the rung", answer="rungs", check=check_rungs,
        solution=("rungs = {\n"
                  '    "is this ticket urgent? (yes/no)": "exact",\n'
                  '    "the reply includes the order id ORD-12345": "pattern",\n'
                  '    "the extracted invoice as JSON": "schema",\n'
                  '    "a one-line summary close to our reference summary": "semantic",\n'
                  '    "the answer is faithful to the retrieved sources": "judge",\n'
                  "}"),
        hints=["Only one of them needs a model to judge it.",
               "Ids and commands are patterns; JSON has a schema."])
    ex_rungs.feedback(rungs)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## Recap

    - Climb the ladder: exact → pattern → schema → semantic → judge; stop at the first rung
      that separates good from bad.
    - Checks compose (`&`, `|`, `~`) and run on strings, `ChatResult`s and RAG `Answer`s.
    - Semantic thresholds are calibrated on labelled examples, and similarity is not truth.
    - pytest + `evals.assert_eval` at `temperature=0`, with schemas, tests properties that
      hold on any model; judge tests run on a schedule.

    ## Take it to your team

    - Every machine-read output gets a schema check; every user-facing answer a
      `not_contains` check for secrets and PII.
    - Keep a labelled set of good and bad answers next to each semantic threshold.
    - Run the cheap rungs on every pull request (`pytest`), the judge nightly (lab 6).
    - The route-to-live playbook (`docs/playbooks/route-to-live.md`): "tested" is the
      stop where these become a CI gate.

    **Next:** Lab 6, evals: golden sets, metrics and the judge.
    """)
    return


@app.cell
def test_support_check_check():
    assert check_support_check(None).todo
    assert not check_support_check("a string").ok
    assert not check_support_check(c.contains("workbench keys create")).ok
    assert check_support_check(c.contains("workbench keys create")
                               & c.not_contains("sk-", "wb-") & c.length(max_words=40)).ok
    return


@app.cell
def test_threshold_check():
    _sims = [("a", True, 0.8), ("b", True, 0.7), ("c", False, 0.6), ("d", False, 0.1)]
    assert check_threshold(None, _sims).todo
    assert not check_threshold(0.75, _sims).ok
    assert not check_threshold(0.5, _sims).ok
    assert not check_threshold(2, _sims).ok
    assert check_threshold(0.65, _sims).ok
    return


@app.cell
def test_rungs_check():
    assert check_rungs({"x": None}).todo
    _too_dear = check_rungs({"is this ticket urgent? (yes/no)": "judge"})
    assert not _too_dear.ok and "cheaper rung" in _too_dear.message
    _too_cheap = check_rungs({"is this ticket urgent? (yes/no)": "exact",
                              "the reply includes the order id ORD-12345": "exact"})
    assert not _too_cheap.ok and "cannot test" in _too_cheap.message
    assert "not a rung" in check_rungs({"is this ticket urgent? (yes/no)": "regex"}).message
    return


if __name__ == "__main__":
    app.run()
