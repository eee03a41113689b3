import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 6b · Evals: compare runs")

with app.setup:
    import re
    from pathlib import Path
    from types import SimpleNamespace

    import labkit
    import marimo as mo

    from workbench import evals, retrieval
    from workbench.evals import checks as c
    from workbench.retrieval import ChunkingConfig

    FACT_CHECK = "check:fact_in_one_chunk"  # how a run names our retrieval check's scores


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # Lab 6b · Evals: compare runs

    Lab 6 built the pieces of an eval: a golden set, metrics from free to judged, stored
    runs. Now the real job. A teammate proposes **fixed 24-token chunks** (smaller
    prompts, cheaper calls); someone else wants a bigger model. Are they better? You
    **freeze the eval** (the same golden set, target settings, metrics and checks for
    every variant), change one thing at a time, and let `evals.compare` say what moved.

    **Learning goals**

    - Write a custom check that separates retrieval regressions from generation ones.
    - Freeze an eval in one function; compare a chunking change and a model swap, and
      find which samples moved and why.
    - Read a comparison honestly (sample size, what each number can tell you), then gate
      a run and write the report a CI job attaches.

    **Time:** about 25 minutes. Everything runs offline; each variant answers every
    golden question with the embedded model (a few seconds per answer on a laptop).
    """)
    return


@app.cell
def _():
    gw = labkit.connect()
    FAST = labkit.ci_mode()  # CI: the same evals on fewer samples
    handbook = labkit.HANDBOOK  # five short Markdown pages (see labs/labkit.py)
    corpus = labkit.write_corpus(Path(gw.settings.data_dir) / "lab6b-corpus", handbook)
    baseline_ingest = retrieval.ingest(
        gw, [corpus], collection="lab6b_markdown",
        chunking=ChunkingConfig(strategy="markdown", max_tokens=120), progress=False)
    # Lab 6's recipe for the handbook: a reference from the page and a check for the one
    # fact a right answer must contain.
    golden = evals.from_rows([
        {"id": "expenses-due", "question": "When are expense reports due?",
         "reference": "Expense reports are due on the 5th of each month.",
         "tags": ["expenses"], "checks": [{"contains": "5th"}]},
        {"id": "vpn-password", "question": "How often does the VPN password rotate?",
         "reference": "The VPN password rotates every 90 days.",
         "tags": ["it"], "checks": [{"contains": "90 days"}]},
        {"id": "err-4711", "question": "What does ERR-4711 mean?",
         "reference": "ERR-4711 means the badge reader lost its network connection: "
                      "power-cycle it.",
         "tags": ["it", "codes"], "checks": [{"contains": "badge"}]},
        {"id": "err-4712", "question": "What does ERR-4712 mean?",
         "reference": "ERR-4712 means the printer queue is full: cancel old jobs.",
         "tags": ["it", "codes"], "checks": [{"contains": "queue"}]},
        {"id": "leave-days", "question": "How many days of paid leave do I get?",
         "reference": "Everyone gets 28 days of paid leave per year, including public "
                      "holidays.", "tags": ["hr"], "checks": [{"contains": "28"}]},
        {"id": "book-leave", "question": "How far ahead must I book leave?",
         "reference": "Book leave at least two weeks ahead in the HR portal.",
         "tags": ["hr"], "checks": [{"contains": "two weeks"}]},
    ], name="handbook", version="1")
    # Every answer costs a model call on a CPU: CI runs the same eval on the first four.
    eval_set = golden.head(4) if FAST else golden
    mo.md(f"Lab 4's company handbook again: {len(handbook)} pages, "
          f"{baseline_ingest.total_chunks} chunks in `lab6b_markdown` (markdown chunking), "
          f"and a golden set about it, `{golden.ref}`: {len(eval_set)} of its "
          f"{len(golden)} questions are evaluated below."
          + (" **CI mode:** the evals below run on fewer samples." if FAST else ""))
    return baseline_ingest, corpus, eval_set, gw


@app.cell
def _(eval_set):
    eval_set
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 1. A retrieval check

    Lab 4 said to evaluate retrieval and generation separately. One check for the first:
    did retrieval bring back the reference's fact **in one chunk**? It is a custom check:
    a name and a function from an `Output` (answer, contexts, question, reference) to a
    `CheckResult`. No model call.
    """)
    return


@app.function
def content_words(text):
    """Lower-case words and codes (ERR-4711, 5th), minus a few filler words."""
    filler = {"the", "and", "for", "are", "per", "its", "it", "of", "on", "in", "at", "to",
              "a", "an", "is", "each", "every", "must", "with", "from", "that", "this"}
    return {w for w in re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", text.lower())
            if w not in filler}


@app.function
def fact_in_one_chunk(out):
    """Retrieval check: some retrieved chunk holds >= 75% of the reference's words."""
    want = content_words(out.reference or "")
    if not want:
        return evals.CheckResult("fact_in_one_chunk", False, 0.0, "the row has no reference")
    best = max((len(want & content_words(ctx)) / len(want) for ctx in out.contexts),
               default=0.0)
    return evals.CheckResult("fact_in_one_chunk", best >= 0.75, best,
                             f"best chunk holds {best:.0%} of the reference's words")


@app.cell
def _():
    fact_check = evals.Check("fact_in_one_chunk", fact_in_one_chunk)
    _ref = "The VPN password rotates every 90 days."
    labkit.table([{"contexts": " | ".join(_ctx), "result": str(fact_check(
        c.Output("(any answer)", _ctx, reference=_ref)))} for _ctx in [
            ("# VPN ## Access Connect from home with the VPN client. The VPN password "
             "rotates every 90 days.",),
            ("# VPN ## Access Connect to the office network from home with the VPN client.",
             "The VPN password rotates every 90 days. ## Travel Some countries block VPNs"),
            ("client. The VPN password", "rotates every 90 days."),
        ]])
    return (fact_check,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 2. Compare a chunking change

    The frozen eval, as one function: every variant goes through it. The answers are
    short (`max_tokens=32`) and use two sources (`k=2`) to keep a CPU run quick; the
    target records those settings, the chunking and the model in the run's config, which
    is what lets `evals.compare` say *what* changed.
    """)
    return


@app.function
def handbook_eval(gw, dataset, fact_check, *, collection, model=None, name):
    """The same eval for every variant: golden set, target settings, metrics, checks."""
    target = evals.rag_target(gw, collection=collection, k=2, max_tokens=32, model=model)
    return evals.evaluate(dataset, target, metrics=["rouge", "semantic_similarity"],
                          checks=[fact_check], gateway=gw, name=name)


@app.function(hide_code=True)
def scoreboard(runs):
    """One row per run: the retrieval check, the answer checks, the metrics, the time."""
    rows = []
    for label, run in runs.items():
        checks = [s for s in run.scores if s.kind == "check" and s.status == "ok"]
        fact = [s for s in checks if s.metric == FACT_CHECK]
        answer = [s for s in checks if s.metric != FACT_CHECK]
        summary = run.summary()

        def mean(metric, summary=summary):
            value = summary[metric].mean if metric in summary else None
            return "-" if value is None else f"{value:.3f}"

        rows.append({"run": label, "fact in one chunk": f"{sum(bool(s.passed) for s in fact)}"
                     f"/{len(fact)}", "answer checks": f"{sum(bool(s.passed) for s in answer)}"
                     f"/{len(answer)}", "rouge": mean("rouge"),
                     "semantic_similarity": mean("semantic_similarity"),
                     "answering s": f"{run.usage.get('target_s', 0):.1f}"})
    return labkit.table(rows)


@app.cell
def _(baseline_ingest, eval_set, fact_check, gw):
    _ = baseline_ingest
    base_run = handbook_eval(gw, eval_set, fact_check, collection="lab6b_markdown",
                             name="lab6b-baseline")
    return (base_run,)


@app.cell
def _(corpus, eval_set, fact_check, gw):
    _fixed = retrieval.ingest(gw, [corpus], collection="lab6b_fixed24",
                              chunking=ChunkingConfig(strategy="fixed", max_tokens=24,
                                                      overlap=0), progress=False)
    fixed_run = handbook_eval(gw, eval_set, fact_check, collection="lab6b_fixed24",
                              name="lab6b-fixed24")
    return (fixed_run,)


@app.cell
def _(base_run, fixed_run):
    scoreboard({"baseline: markdown chunks": base_run, "fixed 24-token chunks": fixed_run})
    return


@app.cell
def _(base_run, fixed_run):
    chunk_cmp = evals.compare(base_run, fixed_run)
    chunk_cmp
    return (chunk_cmp,)


@app.cell
def _(base_run, fixed_run):
    _b = {s.sample_id: s for s in base_run.scores if s.metric == FACT_CHECK}
    _f = {s.sample_id: s for s in fixed_run.scores if s.metric == FACT_CHECK}
    labkit.table([{"sample": _a.sample_id,
                   "fact (markdown)": f"{_b[_a.sample_id].value:.0%}",
                   "fact (fixed 24)": f"{_f[_a.sample_id].value:.0%}",
                   "answer (markdown)": _a.answer, "answer (fixed 24)": _z.answer}
                  for _a, _z in zip(base_run.samples, fixed_run.samples, strict=True)])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    `evals.compare(A, B)` lines the runs up sample by sample: the metric deltas, **what
    changed** in the config (the collection and its chunking, nothing else: that is the
    point of freezing the eval), and every sample that got worse by more than the
    tolerance (0.1) or whose check flipped from pass to fail. The CLI does the same:
    `workbench eval compare lab6b-baseline lab6b-fixed24`.

    ### Exercise 6b.1 · Which facts did the new chunking lose?

    Set `lost_fact` to the list of sample ids whose `fact_in_one_chunk` check newly failed
    with fixed chunks. Read them from `chunk_cmp.regressions` (each has `sample_id` and
    `metric`; our check's metric is `"check:fact_in_one_chunk"`), not from the averages.
    """)
    return


@app.cell
def _():
    # Exercise 6b.1: replace None with a list of sample ids
    lost_fact = None
    return (lost_fact,)


@app.function(hide_code=True)
def check_lost_fact(value, comparison):
    """Exercise 6b.1: the samples whose retrieval check regressed."""
    if value is None:
        return labkit.todo("Set lost_fact to a list of sample ids.")
    if isinstance(value, str) or not isinstance(value, list | tuple | set):
        return labkit.wrong("lost_fact should be a list of sample ids, like ['err-4711'].")
    want = {r.sample_id for r in comparison.regressions if r.metric == FACT_CHECK}
    got = set(value)
    if got - want:
        return labkit.wrong(f"{sorted(got - want)} did not lose the fact: only count "
                            f"regressions whose metric is {FACT_CHECK!r}.")
    if want - got:
        return labkit.wrong(f"{len(want - got)} more sample(s) lost the fact; look at every "
                            "regression with that metric.")
    if not want:
        return labkit.right("Right: on this run no sample lost its fact.")
    return labkit.right(
        f"Right: {', '.join(sorted(want))}. Fixed windows cut those sentences in two, so no "
        "chunk holds the whole fact; compare their answers in the table above. A retrieval "
        "check tells you *where* an answer regression comes from before you read a single "
        "answer.")


@app.cell(hide_code=True)
def _(chunk_cmp, lost_fact):
    ex_lost = labkit.Exercise(
        "6b.1", "Which facts did the new chunking lose?", answer="lost_fact",
        check=lambda v: check_lost_fact(v, chunk_cmp),
        solution=("lost_fact = sorted(r.sample_id for r in chunk_cmp.regressions\n"
                  '                   if r.metric == "check:fact_in_one_chunk")'),
        hints=["chunk_cmp.regressions is a list; filter it on r.metric.",
               "Several metrics can regress on the same sample: keep only the check's."])
    ex_lost.feedback(lost_fact, env={"chunk_cmp": chunk_cmp})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 3. Swap the model

    The same eval again, changing only the model that answers: **Gemma 3 270M** (a base
    model, twice SmolLM2's size, also embedded) instead of SmolLM2 135M, on the baseline
    chunks. On another profile pick two of its models; the code is the same.
    """)
    return


@app.cell
def _(base_run, eval_set, fact_check, gw):
    _ = base_run  # one model load at a time on a small machine
    swap_run = handbook_eval(gw, eval_set, fact_check, collection="lab6b_markdown",
                             model="gemma3-270m", name="lab6b-gemma")
    model_cmp = evals.compare(base_run, swap_run)
    scoreboard({"baseline: smollm2-135m": base_run, "swap: gemma3-270m": swap_run})
    return model_cmp, swap_run


@app.cell
def _(model_cmp):
    model_cmp
    return


@app.cell
def _(base_run, swap_run):
    labkit.table([{"sample": _a.sample_id, "smollm2-135m": _a.answer, "gemma3-270m": _z.answer}
                  for _a, _z in zip(base_run.samples, swap_run.samples, strict=True)])
    return


@app.cell
def _(base_run, eval_set, model_cmp, swap_run):
    def _passed(run):
        return sum(bool(s.passed) for s in run.scores
                   if s.kind == "check" and s.metric != FACT_CHECK and s.status == "ok")

    def _facts(run):
        return {s.sample_id: s.value for s in run.scores if s.metric == FACT_CHECK}

    _n = len(eval_set)
    _changes = ", ".join(f"`{k}`" for k in model_cmp.config_changes) or "nothing"
    _same = _facts(base_run) == _facts(swap_run)
    mo.md(f"""
    What changed: {_changes}. The `fact_in_one_chunk` check
    {"did not move, and it should not: retrieval is the same, so the comparison isolates "
     "the model" if _same else "moved, although retrieval should be the same: look at the "
     "contexts of both runs before you trust this comparison"}. SmolLM2 passed
    {_passed(base_run)} of {_n} answer checks, Gemma {_passed(swap_run)} of {_n};
    {len(model_cmp.regressions)} (sample, metric) pairs got worse and
    {len(model_cmp.improvements)} got better. Before you call a winner, read the next
    section.
    """)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 4. Read the comparison honestly

    An eval produces confident-looking numbers. What these can and cannot tell you:

    - **Did retrieval find the fact?** Reliably: `fact_in_one_chunk` is deterministic and
      needs no model. It counts words, so a paraphrased fact would slip past it.
    - **Did the answer change?** Reliably: checks and lexical metrics see every change.
      They do not say whether the change is an improvement.
    - **Is the answer right?** Only for the one fact each row's check names.
    - **Is model B better than A?** On 4-6 questions, only a large and consistent gap: one
      answer moves a pass rate by 17-25 points.

    Rules that follow:

    - **Count, then average.** With *n* samples, one sample moves a pass rate by 1/*n*.
      Report "4/6", not "67%", and do not ship on a difference of one sample.
    - **Change one thing per run.** `config_changes` should name exactly the change under
      test; anything else means the eval was not frozen.
    - **Judge on a strong model, nightly:** lab 6's judge metrics fit the same frozen eval
      (add them to `metrics=`), with the caveats of lab 6's last section.
    """)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 5. Gate the run, write the report

    What CI does with a run: hold it to minimums (a **gate**) and attach the evidence (a
    **report**), so a reviewer sees why a change was blocked without re-running anything.
    """)
    return


@app.cell
def _(base_run, gw):
    gate = base_run.gate({"checks": 0.5, "rouge": 0.2})
    report_path = base_run.write_report(str(Path(gw.settings.data_dir) / "lab6b-report.html"),
                                        gate={"checks": 0.5, "rouge": 0.2})
    _report = mo.md(f"""
    **The report.** `run.write_report(path, gate=...)` writes one self-contained HTML page
    (inline CSS and SVG, no CDN: attach it to a CI job): the summary with the gate, score
    distributions, a per-tag breakdown, every failure with its reason, every sample with
    its answer and contexts, and the configuration. This one is at `{report_path}`.

    A **gate** is a set of minimums (`checks` is the checks' pass rate); in CI,
    `evals.assert_run(run, thresholds)` or `workbench eval DATASET --fail-under
    checks=0.5` fails the job when one is missed. Lab 9 wires that into CI. The baseline
    against `{{"checks": 0.5, "rouge": 0.2}}`: **{"passed" if gate.passed else "FAILED"}**

    ```
    {chr(10).join(gate.lines)}
    ```

    And the Markdown summary, for a CI job page or a pull-request comment (shown as its
    source here; a CI page renders it):
    """)
    # A fence, not inline Markdown: the summary's own headings would otherwise join this
    # lab's table of contents.
    mo.vstack([_report, mo.md("````markdown\n" + base_run.to_markdown().strip() + "\n````")])
    return


@app.cell
def _(gw):
    labkit.table([{k: (f"{v:.3f}" if isinstance(v, float) and k != "created_at" else v)
                   for k, v in _r.items() if k != "created_at"}
                  for _r in evals.list_runs(gw, limit=6)])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    Every run is stored (`evals.list_runs(gw)`, `workbench eval runs`): compare any two
    by id or name, or `latest` and `previous`.

    ## Recap

    - Freeze the eval in one function; change one thing; `evals.compare` names the config
      change and the samples that moved.
    - A cheap retrieval check separates retrieval regressions from generation ones.
    - Read honestly: count samples, keep failures visible, and do not call a winner on a
      difference of one sample.
    - A gate turns a run into a CI verdict; the report is the evidence beside it.

    ## Take it to your team

    - Freeze the eval in one function (or `notebooks/eval_suite.ipynb`) and run it on
      every change to prompts, chunking, retrieval or model.
    - Add a retrieval check to your golden rows' checks: it tells you where a regression
      comes from before you read a single answer.
    - The evaluation playbook (`docs/playbooks/evaluation.md`) has the full method; the
      route-to-live playbook (`docs/playbooks/route-to-live.md`) shows where the eval
      gate sits: "tested" is the stop before "traced".

    **Next:** Lab 7, tracing and debugging.
    """)
    return


@app.cell
def test_lost_fact_check():
    _cmp = SimpleNamespace(regressions=[
        SimpleNamespace(sample_id="err-4711", metric=FACT_CHECK),
        SimpleNamespace(sample_id="err-4711", metric="rouge"),
        SimpleNamespace(sample_id="vpn-password", metric=FACT_CHECK),
        SimpleNamespace(sample_id="expenses-due", metric="check:contains('5th')")])
    assert check_lost_fact(None, _cmp).todo
    assert not check_lost_fact("err-4711", _cmp).ok
    assert not check_lost_fact(["err-4711"], _cmp).ok
    assert not check_lost_fact(["err-4711", "vpn-password", "expenses-due"], _cmp).ok
    assert check_lost_fact(["vpn-password", "err-4711"], _cmp).ok
    assert check_lost_fact([], SimpleNamespace(regressions=[])).ok
    return


@app.cell
def test_fact_in_one_chunk():
    _ref = "ERR-4711 means the badge reader lost its network connection: power-cycle it."
    _whole = c.Output("x", ("If a door does not open: ERR-4711 means the badge reader lost "
                            "its network connection: power-cycle it.",), reference=_ref)
    _split = c.Output("x", ("display. ERR-4711 means the badge", "reader lost its network "
                            "connection: power-cycle it."), reference=_ref)
    assert fact_in_one_chunk(_whole).passed and fact_in_one_chunk(_whole).score == 1.0
    assert not fact_in_one_chunk(_split).passed
    assert not fact_in_one_chunk(c.Output("x", (), reference=_ref)).passed
    assert not fact_in_one_chunk(c.Output("x", ("anything",))).passed
    assert content_words("ERR-4711 is due on the 5th") == {"err-4711", "due", "5th"}
    return



if __name__ == "__main__":
    app.run()
