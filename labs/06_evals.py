import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 6 · Evals: golden sets, metrics and the judge")

with app.setup:
    import math
    import re

    import labkit
    import marimo as mo

    from workbench import evals
    from workbench.evals import checks as c


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # Lab 6 · Evals: golden sets, metrics and the judge

    Lab 5 tested *one* answer at a time. An **eval** scores a whole system on a fixed set
    of questions, so that you can change one thing (the chunking, the model, the prompt)
    and *measure* what the change did, instead of eyeballing three answers. The recipe:

    1. a **golden dataset**: questions with reference answers, versioned like code;
    2. a **target**: the system under test (`question → answer + contexts`);
    3. **metrics and checks**: lexical (free), semantic (embeddings), and an LLM **judge**
       running [ragas](https://docs.ragas.io) metrics, every call through the governed
       gateway and a cache;
    4. a stored **run** you can gate, report and **compare** with the next one.

    This lab covers 1 and 3 on recorded answers, and stores each run; **lab 6b** adds a
    target (a RAG pipeline answering live), then compares, gates and reports runs.

    **Learning goals**

    - Write golden rows, with checks that can actually fail.
    - Know what each metric costs and what it measures; run the ragas judge.
    - Measure the judge against human labels before trusting it, and know what a
      135M-parameter judge can and cannot tell you.

    **Time:** about 25 minutes. Everything runs offline; the judge cells are the slow ones
    (seconds to a minute per sample on a laptop), and their results are cached.
    """)
    return


@app.cell
def _():
    gw = labkit.connect()
    mo.md(f"Connected to the `{gw.settings.profile}` profile: the metrics' embeddings and "
          "the judge's calls go through this gateway.")
    return (gw,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 1. Golden datasets

    A golden row is a question plus what a good answer must contain: a `reference` answer,
    optionally the `reference_contexts` a retriever should find, `tags` for slicing the
    results, and `checks`: lab 5's cheap checks written as data. A row may also carry a
    recorded `answer` (and `contexts`), e.g. one exported from user feedback, so it can be
    scored without calling the system again.

    The workbench ships a sample set about its own docs, with recorded answers. Two of them
    are deliberately flawed, and say so in their `metadata`.
    """)
    return


@app.cell
def _():
    sample = evals.load("sample")
    sample
    return (sample,)


@app.cell
def _(sample):
    labkit.table([{"id": _s.id, "tags": ", ".join(_s.tags),
                   "checks": ", ".join(str(_spec) for _spec in _s.checks),
                   "recorded answer": _s.answer[:70] + ("…" if len(_s.answer) > 70 else ""),
                   "note": _s.metadata.get("note", "")} for _s in sample])
    return


@app.cell
def _(sample):
    _lines = evals.sample_path().read_text(encoding="utf-8").splitlines()[:2]
    mo.md(f"""
    On disk it is JSONL, one row per line, with an optional header line that names and
    versions the set (CSV works too). A run records the set as
    `name@version#fingerprint`, here **`{sample.ref}`**: the fingerprint hashes the
    rows, so an edited file never passes for the version it was.

    ```json
    {chr(10).join(_lines)}
    ```
    """)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    Files are edited by hand, so loading validates every row and reports **all** the
    problems at once, with their line (here: row) numbers:
    """)
    return


@app.cell
def _():
    try:
        evals.from_rows([
            {"id": "vpn", "question": "How often does the VPN password rotate?",
             "refrence": "Every 90 days."},
            {"id": "vpn", "question": "Can I use the VPN abroad?"},
            {"question": "   ", "checks": [{"contians": "90"}]},
        ], name="broken")
    except evals.DatasetError as _exc:
        _message = _exc.message
    mo.md(f"```\n{_message}\n```")
    return


@app.cell
def _(sample):
    _parts = sample.split({"dev": 0.5, "test": 0.5}, seed=0)
    mo.md(f"""
    Bigger sets get **split**: tune prompts and thresholds on `dev`, report on `test`,
    so the number you report was not fitted to. `sample.split(...)` is deterministic
    (same seed, same rows, same split) and keeps each tag's share in every part:
    dev = {", ".join(s.id for s in _parts["dev"])}; test =
    {", ".join(s.id for s in _parts["test"])}.
    """)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Exercise 6.1 · A golden row that can fail

    Lab 4's company handbook has a page on expenses (shown below). Write the golden row
    for *"How long must I keep receipts?"* as a dict: an `id`, the `question`, a
    `reference` that says what the handbook says, the tag `expenses`, and
    `checks` (a list of check specs such as `{"contains": "..."}` or `{"regex": "..."}`).

    A check that passes everything tests nothing: yours must pass right answers and fail
    wrong ones, including *"Keep receipts for seventy years."* The checker tries it on
    several answers.
    """)
    return


@app.cell
def _():
    mo.md("```markdown\n" + labkit.HANDBOOK["expenses.md"].strip() + "\n```")
    return


@app.cell
def _():
    # Exercise 6.1: replace None with a dict
    receipts_row = None
    return (receipts_row,)


@app.function(hide_code=True)
def check_receipts_row(value):
    """Exercise 6.1: a valid row whose checks separate right answers from wrong ones."""
    good = ["Keep receipts for seven years.",
            "You must keep your receipts for seven years; photos of them are fine."]
    bad = ["Keep receipts for one year.", "Keep receipts for seventy years.",
           "Photos of receipts are accepted.", "I don't know."]
    if value is None:
        return labkit.todo("Set receipts_row to a dict with id, question, reference, tags "
                           "and checks.")
    if not isinstance(value, dict):
        return labkit.wrong(f"receipts_row should be a dict (one golden row), not "
                            f"{type(value).__name__}.")
    try:
        row = evals.from_rows([value], name="exercise")[0]
    except evals.DatasetError as exc:
        return labkit.wrong("The row does not validate: "
                            + "; ".join(msg for _, msg in exc.errors))
    if "receipt" not in row.question.lower():
        return labkit.wrong("The question should ask about keeping receipts.")
    if not row.reference or not re.search(r"\b(seven|7) years\b", row.reference.lower()):
        return labkit.wrong("The reference should say what the handbook says: seven years.")
    if "expenses" not in row.tags:
        return labkit.wrong("Tag the row 'expenses' (tags slice the results later).")
    if not row.checks:
        return labkit.wrong("Add at least one check: without one, only the judge can tell "
                            "a right answer from a wrong one.")
    if "semantic_similarity" in str(row.checks):
        return labkit.wrong("Keep this one on the free rungs (contains, regex, ...): "
                            "'seven' and 'seventy' embed almost alike.")
    row_checks = [c.from_spec(spec) for spec in row.checks]

    def passes(text):
        return all(check(text).passed for check in row_checks)

    if not passes(row.reference):
        return labkit.wrong("Your checks fail your own reference answer.")
    for text in good:
        if not passes(text):
            return labkit.wrong(f"Your checks reject a right answer: {text!r}.")
    for text in bad:
        if passes(text):
            return labkit.wrong(f"Your checks pass a wrong answer: {text!r}.")
    return labkit.right("Right: the row validates, and its checks pass the right answers "
                        "and fail all four wrong ones. Check for the whole fact, not a word "
                        "that a wrong answer can contain too.")


@app.cell(hide_code=True)
def _(receipts_row):
    ex_row = labkit.Exercise(
        "6.1", "A golden row that can fail", answer="receipts_row", check=check_receipts_row,
        solution=('receipts_row = {\n'
                  '    "id": "receipts",\n'
                  '    "question": "How long must I keep receipts?",\n'
                  '    "reference": "Keep receipts for seven years.",\n'
                  '    "tags": ["expenses"],\n'
                  '    "checks": [{"contains": "seven years"}],\n'
                  '}'),
        hints=["Copy the shape of a row of the sample set above.",
               "{'contains': 'seven'} also passes 'seventy years': check the whole fact."])
    ex_row.feedback(receipts_row)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 2. Metrics, and what they cost

    `workbench eval metrics` (or `evals.REGISTRY`) lists the metrics. They climb lab 5's
    ladder: **lexical** metrics compare words with the reference and cost nothing;
    **semantic** similarity costs two embedding calls; the **judge** metrics (ragas'
    prompts, answered by an LLM as schema-constrained JSON) cost one or more chat calls
    of ~500-1,600 prompt tokens *per sample*.
    """)
    return


@app.cell
def _():
    labkit.table([{"metric": _m.name, "calls": _m.calls, "needs": ", ".join(_m.needs),
                   "what it measures": _m.description} for _m in evals.REGISTRY.values()])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    A first run: the sample set's *recorded* answers (no target: nothing is generated),
    scored with two cheap metrics plus the checks each row declares. `evals.evaluate`
    stores the run in the workbench store; its display is the same report the CLI
    writes (`workbench eval sample -m rouge,semantic_similarity`).
    """)
    return


@app.cell
def _(gw, sample):
    first_run = evals.evaluate(sample, metrics=["rouge", "semantic_similarity"], gateway=gw,
                               name="lab6-recorded")
    first_run
    return (first_run,)


@app.cell
def _(first_run):
    _rouge, _sem = first_run.values("rouge"), first_run.values("semantic_similarity")
    labkit.table([{"sample": _s.sample_id, "check": _s.metric, "reason": _s.reason,
                   "rouge": f"{_rouge.get(_s.sample_id, float('nan')):.2f}",
                   "semantic": f"{_sem.get(_s.sample_id, float('nan')):.2f}"}
                  for _s in first_run.failed_checks()])
    return


@app.cell
def _(first_run, gw, sample):
    _flawed = [_s.id for _s in sample if "note" in _s.metadata]
    _rouge, _sem = first_run.values("rouge"), first_run.values("semantic_similarity")
    _separated = all(max(_m[k] for k in _flawed) < min(v for k, v in _m.items() if k not in _flawed)
                     for _m in (_rouge, _sem))
    # Two answers to the default-profile question: right but reworded, wrong but in the
    # reference's own words. Same metrics, not stored (save=False).
    _row = sample[1]
    _answers = {
        "right, reworded": "Out of the box it runs a built-in local model: offline, without "
                           "any API key.",
        "wrong, in the reference's words": "The default profile is openai: it needs a key "
                                           "and a network.",
    }
    _tricky = evals.evaluate(evals.from_rows(
        [{"id": f"a{_i}", "question": _row.question, "reference": _row.reference,
          "answer": _text} for _i, _text in enumerate(_answers.values())], name="lab6-tricky"),
        metrics=["rouge", "semantic_similarity"], gateway=gw, save=False)
    _tr, _ts = _tricky.values("rouge"), _tricky.values("semantic_similarity")
    _table = "\n".join(f"| {_label}: *{_text}* | {_tr[f'a{_i}']:.2f} | {_ts[f'a{_i}']:.2f} |"
                       for _i, (_label, _text) in enumerate(_answers.items()))
    _fooled = [_m for _m, _v in (("ROUGE", _tr), ("semantic similarity", _ts))
               if _v["a1"] > _v["a0"]]
    mo.md(f"""
    The row checks caught both flawed answers, for free. Beside them, ROUGE and semantic
    similarity {"also put the two flawed answers below every correct one here" if _separated
                else "do not even separate the flawed answers from the correct ones here"}.
    But both measure closeness to the reference's *wording and topic*, not truth. Two more
    answers to *"{_row.question}"* (reference: *{_row.reference}*):

    | answer | ROUGE | semantic similarity |
    | --- | --- | --- |
    {_table}

    {("The wrong answer wins on " + " and ".join(_fooled) + ".") if _fooled else
     "Here the right answer wins, but by less than you would hope."} Lexical and semantic
    metrics are good at noticing that answers *changed*; they are weak at saying whether an
    answer is *true*. That is what checks on the facts and the judge metrics are for.
    """)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 3. The judge: ragas through the gateway

    `evals.Judge(gw)` runs ragas metrics with the gateway as the judge's OpenAI-compatible
    endpoint: a short-lived key of team `evals` makes every judge call governed, in the
    ledger and traced, and a **judge cache** keyed on (metric, prompt version, judge
    model, sample) makes an unchanged re-run free.

    - `answer_relevancy`: the judge writes the question the answer seems to respond to,
      and flags a *noncommittal* answer (which then scores 0); the score is the cosine
      between that question and the real one. One chat call and two embeddings.
    - `faithfulness`: the judge splits the answer into statements, then decides for each
      whether the contexts support it. Two calls, ~1,500 prompt tokens: about half a
      minute to a minute per sample on a laptop CPU.

    Pick the metrics and how many of the sample rows to judge (the first three are a good
    answer, the refusal and the made-up one):
    """)
    return


@app.cell
def _():
    judge_metrics = labkit.dropdown(["answer_relevancy", "answer_relevancy,faithfulness"],
                                    "answer_relevancy", label="judge metrics")
    judge_n = labkit.slider(3, 8, 3, step=1, label="sample rows to judge")
    labkit.vstack([judge_metrics, judge_n])
    return judge_metrics, judge_n


@app.cell
def _(judge_metrics, judge_n, sample):
    _order = ["default-profile", "audit-verify", "budget-concurrency", "keys-create",
              "switch-provider", "pii-masking", "ledger-contents", "embed-model"]
    judged_ids = _order[:int(judge_n.value)]
    judged_metrics = judge_metrics.value.split(",")
    judged_set = sample.filter(ids=judged_ids)
    # Humans labelled these answers: the rows with a note are deliberately flawed.
    labels = {_s.id: 0.0 if "note" in _s.metadata else 1.0 for _s in sample}
    return judged_metrics, judged_set, labels


@app.cell
def _(gw, judged_metrics, judged_set):
    judge = evals.Judge(gw)
    try:
        judged = evals.evaluate(judged_set, metrics=judged_metrics, judge=judge, gateway=gw,
                                name="lab6-judge")
        judge_info = judge.describe()
    finally:
        judge.close()  # revokes the judge's short-lived key
    labkit.callout(judge_info["warning"] or f"Judge: {judge_info['model']}.", "warn")
    return (judged,)


@app.cell
def _(judged, labels):
    _rows = []
    for _s in judged.scores:
        if _s.kind != "judge":
            continue
        _rows.append({"sample": _s.sample_id,
                      "label": "flawed" if labels.get(_s.sample_id) == 0.0 else "good",
                      "metric": _s.metric,
                      "score": "-" if _s.value is None else f"{_s.value:.3f}",
                      "status": _s.status, "reason": _s.reason or "",
                      "calls": _s.calls, "prompt tokens": _s.prompt_tokens,
                      "seconds": f"{_s.latency_ms / 1000:.1f}",
                      "cached": "yes" if _s.cached else ""})
    labkit.table(_rows)
    return


@app.cell
def _(gw, judged, judged_metrics, judged_set):
    _again = evals.evaluate(judged_set, metrics=judged_metrics, gateway=gw, name="lab6-judge")
    _u, _first = _again.usage, judged.usage
    mo.md(f"""
    **The cache.** The same eval again: {_u["judge_calls"]} judge calls and
    {_u["cache_hits"]} cache hits ({_u["calls_saved_by_cache"]} calls saved), in
    {_u["wall_s"]:.1f} s instead of {_first["wall_s"]:.1f} s (the first run's figure may be
    small too if you have run this lab before: the cache lives in your store). Change an
    answer, the judge model or a metric setting and only the affected rows are judged
    again. Failures that would repeat (invalid JSON from the judge) are cached too;
    timeouts are retried next time.
    """)
    return


@app.cell
def _(judged, labels):
    _rel = judged.values("answer_relevancy")
    _lines = []
    if "audit-verify" in _rel:
        _v = _rel["audit-verify"]
        _lines.append(
            f"- The refusal (`audit-verify`, *\"I don't know.\"*) scored **{_v:.3f}**. "
            + ("The judge flagged it as noncommittal: exactly what this metric is for."
               if _v == 0 else
               "Not exactly 0, so the judge did *not* flag it as noncommittal; the score "
               "is low only because the question it generated has nothing to do with the "
               "real one." if _v < 0.3 else
               "The judge missed it: a refusal should score near 0."))
    if "budget-concurrency" in _rel and "default-profile" in _rel:
        _b, _d = _rel["budget-concurrency"], _rel["default-profile"]
        _lines.append(
            f"- The made-up budget answer scored **{_b:.3f}**, the correct `default-profile` "
            f"answer **{_d:.3f}**. "
            + ("The wrong answer scored *higher*: " if _b > _d else "")
            + "answer relevancy asks *does this answer address the question?*, not *is it "
            "true?* A confident wrong answer on topic is relevant. Truth is faithfulness's "
            "job (choose it above, and be patient).")
    _ok = [s for s in judged.scores if s.kind == "judge" and s.status == "ok"]
    _failed = [s for s in judged.scores if s.kind == "judge" and s.status == "failed"]
    _lines.append(f"- {len(_ok)} judgement(s) succeeded and {len(_failed)} failed"
                  + (": a failure is a row with a reason (often *cut off at max_tokens*: the "
                     "small model rambled), never a silent 0 in the average." if _failed
                     else "; when the small model rambles, a judgement fails with a reason "
                     "instead of entering the average as a number."))
    mo.md("**Reading the judge's scores against the labels:**\n\n" + "\n".join(_lines)
          + "\n\nThe labels come from people (the dataset's authors): "
          f"{sum(v == 0.0 for v in labels.values())} of the {len(labels)} sample answers are "
          "flawed.")
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Exercise 6.2 · Check the judge against the labels

    Before you trust a judge, measure it against answers people have labelled. Set
    `judge_vs_labels` to the agreement between the judge's `answer_relevancy` scores
    (`judged.values("answer_relevancy")`, a dict `sample_id → score`) and `labels` (the
    human labels above: 0.0 for a flawed answer, 1.0 for a good one), using
    `evals.agreement(scores, labels, threshold=0.5)`: it counts how often both sit on the
    same side of 0.5.
    """)
    return


@app.cell
def _():
    # Exercise 6.2: replace None
    judge_vs_labels = None
    return (judge_vs_labels,)


@app.function(hide_code=True)
def check_judge_labels(value, scores, labels):
    """Exercise 6.2: evals.agreement(judge scores, human labels, threshold=0.5)."""
    if value is None:
        return labkit.todo("Set judge_vs_labels to evals.agreement(...).")
    if not isinstance(value, dict) or not {"n", "agree"} <= set(value):
        return labkit.wrong("judge_vs_labels should be the dict evals.agreement(...) returns.")
    want = evals.agreement(scores, labels, threshold=0.5)
    if value["n"] != want["n"]:
        return labkit.wrong(f"Your agreement covers {value['n']} sample(s); the judge scored "
                            f"{want['n']}. Pass the judge's scores and a label for every "
                            "sample.")
    same = (math.isnan(value["agree"]) and math.isnan(want["agree"])) or \
        abs(value["agree"] - want["agree"]) < 1e-9
    if not same:
        return labkit.wrong("Same samples, different agreement: use the labels above and "
                            "threshold=0.5.")
    if want["n"] == 0:
        return labkit.right("Right, but the judge scored nothing: every judgement failed. "
                            "That is a finding too.")
    hits = round(want["agree"] * want["n"])
    return labkit.right(
        f"Right: the judge agrees with the humans on {hits} of {want['n']} answers "
        f"({want['agree']:.0%}). With {want['n']} labelled samples that number could swing "
        "by a whole sample either way: a calibration set needs dozens of labelled answers "
        "before a judge's agreement means anything.")


@app.cell(hide_code=True)
def _(judge_vs_labels, judged, labels):
    ex_labels = labkit.Exercise(
        "6.2", "Check the judge against the labels", answer="judge_vs_labels",
        check=lambda v: check_judge_labels(v, judged.values("answer_relevancy"), labels),
        solution=('judge_vs_labels = evals.agreement(judged.values("answer_relevancy"),\n'
                  '                                  labels, threshold=0.5)'),
        hints=["judged.values('answer_relevancy') gives the judge's scores by sample id.",
               "evals.agreement(a, b, threshold=0.5) compares two such dicts."])
    ex_labels.feedback(judge_vs_labels, env={"evals": evals, "judged": judged,
                                             "labels": labels})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 4. Read the judge honestly

    An eval produces confident-looking numbers. What this lab's can and cannot tell you:

    - **Did the answer change?** Reliably: checks and lexical metrics see every change.
      They do not say whether the change is an improvement.
    - **Is the answer right?** Only for the one fact each row's check names.
    - **Is it relevant, faithful?** Here: the opinion of a 135M-parameter judge. Enough to
      run the mechanics end to end, and sometimes to spot a refusal; not a score to decide
      on. It can call a wrong answer on the right topic relevant, and long judgements may
      fail outright.

    Rules that follow:

    - **Failures are not zeros.** A judge that could not score a row records a failure
      with its reason; the mean is over the rows it did score, and a gate fails when a
      gated metric has failures (unless you allow a share).
    - **Measure the judge before you trust it:** agreement with human labels (exercise
      6.2) on dozens of answers, and again whenever the judge model or ragas changes.
    - **Use a real judge for real decisions:** `WORKBENCH_PROFILE=openai` (or your
      provider) or `--judge-model`: same code, same dataset, same cache.

    Every run above is stored (`evals.list_runs(gw)`, `workbench eval runs`), with its
    dataset fingerprint and configuration: lab 6b compares runs, gates them and writes
    the report a CI job attaches.

    ## Recap

    - A golden row is a question, a reference, tags and checks that can fail; the set is
      versioned and fingerprinted, and loading reports every bad row at once.
    - Metrics climb the ladder: lexical (free) → semantic (embeddings) → ragas judge
      (several LLM calls per sample, through the gateway, cached).
    - Lexical and semantic metrics notice that an answer *changed*; checks on the facts
      and the judge say whether it is *right*, and the judge itself needs calibrating
      against labels.

    ## Take it to your team

    - Start a golden set this week: 30-50 real questions with references, from support
      tickets and user feedback (lab 8 turns feedback into golden rows), tagged by topic.
    - Checks and lexical metrics on every pull request; the judge nightly, on a strong
      model, with its agreement against labels tracked.
    - The evaluation playbook (`docs/playbooks/evaluation.md`) has the full method.

    **Next:** Lab 6b, comparing runs: a chunking change and a model swap.
    """)
    return


@app.cell
def test_receipts_row_check():
    _row = {"id": "receipts", "question": "How long must I keep receipts?",
            "reference": "Keep receipts for seven years.", "tags": ["expenses"],
            "checks": [{"contains": "seven years"}]}
    assert check_receipts_row(None).todo
    assert not check_receipts_row("receipts").ok
    assert not check_receipts_row({**_row, "refrence": "x"}).ok
    assert not check_receipts_row({**_row, "checks": []}).ok
    assert not check_receipts_row({**_row, "tags": []}).ok
    assert not check_receipts_row({**_row, "checks": [{"contains": "seven"}]}).ok
    assert not check_receipts_row({**_row, "checks": [{"contains": "receipt"}]}).ok
    assert not check_receipts_row({**_row, "checks": [{"contains": "7 years"}]}).ok
    assert check_receipts_row(_row).ok
    assert check_receipts_row({**_row, "checks": [{"regex": r"\bseven years\b"}]}).ok
    return


@app.cell
def test_judge_labels_check():
    _scores = {"a": 0.9, "b": 0.7, "c": 0.8}
    _labels = {"a": 1.0, "b": 0.0, "c": 1.0, "d": 0.0}
    _want = evals.agreement(_scores, _labels, threshold=0.5)
    assert check_judge_labels(None, _scores, _labels).todo
    assert not check_judge_labels(0.66, _scores, _labels).ok
    assert not check_judge_labels(evals.agreement(_scores, {"a": 1.0}), _scores, _labels).ok
    assert not check_judge_labels(evals.agreement(_scores, {k: 1.0 for k in _labels}),
                                  _scores, _labels).ok
    assert check_judge_labels(_want, _scores, _labels).ok
    assert check_judge_labels(evals.agreement({}, _labels), {}, _labels).ok
    return



if __name__ == "__main__":
    app.run()
