import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 9 · Ship it")

with app.setup:
    import atexit
    import math
    import os
    import statistics
    import textwrap
    import time
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor
    from datetime import datetime
    from pathlib import Path

    import httpx
    import labkit
    import marimo as mo
    import yaml
    from pydantic import ValidationError

    import workbench
    from workbench import evals, prompts, retrieval
    from workbench.evals import checks, probes
    from workbench.observability import traces
    from workbench.retrieval import MIN_SIMILARITY, ChunkingConfig
    from workbench.service import BackgroundServer, ServiceSettings, create_service_app

    SERVERS = {}  # name -> BackgroundServer: a cell that runs again replaces its server


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # Lab 9 · Ship it

    The last stop of the route to live: the feature becomes a **service** that the
    platform can check, CI can gate, and a team can measure. Everything here runs for
    real on this machine: the service on a loopback port, probes against it, an eval gate
    that compares what is live with a candidate change, a load test, and the delivery
    metrics of a (scripted) month of LLM changes.

    **Learning goals**

    - Start the production service (`workbench serve`) and know its contract:
      `/ask`, `/healthz`, `/readyz`, `/metrics`, errors with a trace id.
    - Tell liveness and readiness from **quality probes**, and write a probe.
    - Gate a change on an eval, and pick a threshold that blocks the bad change.
    - Read a CI workflow that runs notebooks (nbmake), the eval gate and the probes.
    - Load-test the service and read p50, p95 and errors.
    - Measure the road: lead time and change failure rate, where prompt, model and index
      changes are changes too.
    - Move a prompt version from candidate to production behind the eval gate.

    **Time:** about 45 minutes.
    """)
    return


@app.cell
def _():
    # A throwaway data dir, in class and in CI: the keys, collections and numbers below
    # belong to this lab only, not to the .workbench/ of earlier labs.
    gw = labkit.connect(data_dir=os.path.join(labkit.scratch_dir(), "data"))
    MAX_TOKENS = 24 if labkit.ci_mode() else 64  # short answers keep the lab quick on a CPU
    HANDBOOK = {
        "expenses.md": "# Expenses and travel\n\n## Meal allowance\n\nWhen you travel for "
                       "work, the daily meal allowance is 45 euros. Submit the receipts "
                       "within 30 days of the trip.\n\n## Booking travel\n\nBook trains and "
                       "flights through the travel desk. Economy class is the default; "
                       "business class needs your director's approval for flights longer "
                       "than six hours.\n",
        "on-call.md": "# On-call\n\n## The rota\n\nEngineers join the on-call rota after "
                      "their third month. A shift lasts one week.\n\n## Paging\n\nA page "
                      "must be acknowledged within 15 minutes. If the primary does not "
                      "acknowledge it, the pager escalates to the secondary.\n",
        "onboarding.md": "# Onboarding\n\n## Your first week\n\nOn your first day you get a "
                         "laptop, a badge and a buddy from your team.\n\n## Accounts\n\n"
                         "Access to production systems is granted after the security "
                         "training, which takes two hours.\n",
    }
    _corpus = labkit.write_corpus(Path(gw.settings.data_dir) / "lab9-corpus", HANDBOOK)
    live_index = retrieval.ingest(gw, [_corpus], collection="lab9_handbook",
                                  chunking=ChunkingConfig(max_tokens=120), progress=False)
    # One key per purpose, as in production: the app's clients, the probe runner (no
    # response cache: a probe answered from a cache proves nothing), the load test.
    _, app_key = gw.policy.create_key(team="lab9-app", cache=True, expires_in_days=1)
    _, probe_key = gw.policy.create_key(team="lab9-probes", budget_usd=1.0, expires_in_days=1)
    _, load_key = gw.policy.create_key(team="lab9-load", expires_in_days=1)
    mo.md(f"The team handbook, {len(HANDBOOK)} pages: {live_index.total_chunks} chunks in "
          "`lab9_handbook`, and three keys: `lab9-app` (response cache on), `lab9-probes`, "
          "`lab9-load`.")
    return HANDBOOK, MAX_TOKENS, app_key, gw, live_index, load_key, probe_key


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 1. The service

    `workbench serve` runs `create_service_app()` under uvicorn: the same RAG pipeline as
    lab 4, behind workbench keys (each request gets the Gateway bound to the caller's key,
    so allowlists, budgets, guardrails and the ledger apply), with a trace id on every
    response. From a terminal:

    ```bash
    workbench ingest corpus/ --collection lab9_handbook
    workbench keys create --team lab9-app
    workbench serve --collection lab9_handbook --port 8000
    ```

    Here the lab does the same inside this notebook: `BackgroundServer` (from
    `workbench.service`) runs uvicorn in a thread of this process, on a port the operating
    system picks (port 0), so it never collides with anything you run. Nothing leaves
    `127.0.0.1`. `stop()` is graceful: no new connections, in-flight answers finish, the
    app's shutdown flushes its traces.
    """)
    return


@app.cell
def _(MAX_TOKENS, gw, live_index):
    _ = live_index
    live_settings = ServiceSettings(collection="lab9_handbook", title="Ask the team handbook",
                                    k=3, max_tokens=MAX_TOKENS, max_inflight=8)
    _previous = SERVERS.pop("live", None)
    if _previous is not None:  # this cell ran again: replace its server, do not leak it
        _previous.stop()
    # start() returns once the app's start-up (loading the models) is done
    live = BackgroundServer(create_service_app(gw, live_settings)).start(timeout_s=300)
    SERVERS["live"] = live
    atexit.register(live.stop)
    live_url = live.url.rstrip("/")
    labkit.callout(f"The service is up at {live_url} (chat page at /, API docs at /docs). "
                   "It runs until this notebook stops.", "ok")
    return live, live_settings, live_url


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Its contract

    A service is a promise to its callers and to the platform. Before any question: the
    platform's endpoints answer without a key, the API refuses a request without one,
    and every error has one shape with a trace id (quote it when you report a problem).
    """)
    return


@app.cell
def _(app_key, live_url):
    contract_rows = []
    for _method, _path, _body, _key, _why in [
        ("GET", "/healthz", None, None, "liveness: the process answers"),
        ("GET", "/readyz", None, None, "readiness: store, collection, model provider"),
        ("POST", "/ask", {"question": "Who approves business class?"}, None, "no key"),
        ("POST", "/ask", {"question": "Who approves business class?"}, "wb-not-a-key",
         "an unknown key"),
        ("POST", "/ask", {"question": " "}, app_key, "a blank question"),
    ]:
        _resp = httpx.request(_method, live_url + _path, json=_body, timeout=60,
                              headers={"Authorization": f"Bearer {_key}"} if _key else {})
        _data = _resp.json()
        contract_rows.append({
            "request": f"{_method} {_path}", "sends": _why, "status": _resp.status_code,
            "body": (_data["error"]["message"] if "error" in _data else str(_data))[:70],
            "trace id header": _resp.headers.get("x-workbench-trace-id", "")[:12] + "…"})
    labkit.table(contract_rows)
    return (contract_rows,)


@app.cell
def _(app_key, live_url):
    first_answer = httpx.post(live_url + "/ask", timeout=120,
                              json={"question": "What is the daily meal allowance when "
                                                "travelling?"},
                              headers={"Authorization": f"Bearer {app_key}"}).json()
    mo.md(f"""
    A real question with the app's key. **Answer:** {first_answer["answer"]}

    Sources: {", ".join(f"[{s['n']}] {Path(s['source']).name} · {s['heading']}"
                        for s in first_answer["sources"])} · model `{first_answer["model"]}`
    · {first_answer["latency_ms"]:.0f} ms · trace `{first_answer["trace_id"]}`

    The small model's wording is not the point (lab 2): the sources, the trace id and the
    governed call are.
    """)
    return (first_answer,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 2. Probes: is it up, and is it still right?

    Two different questions, two kinds of probe:

    - **Liveness and readiness** (`/healthz`, `/readyz`) are for the orchestrator: restart
      a process that hangs, stop routing to a replica whose store or model provider is
      unreachable. They say nothing about the answers.
    - **Quality probes** are known questions with expectations, sent to the running
      service on a schedule (`workbench probe probes.toml --url …/ask --watch`). They
      catch what an LLM feature does wrong while every HTTP status is 200: a model
      update that stops citing, a re-index that lost a document, a prompt that now
      refuses. Expectations climb lab 5's ladder: `exact`, `pattern`, `json_schema`,
      `semantic`, `judge`.

    Every result is stored with the model, its version and a hash of the probe's prompt,
    so when a probe flips, the report says whether the model or the prompt changed.
    """)
    return


@app.cell
def _():
    PROBES_TOML = r"""
    [defaults]
    every = "10m"

    [[probe]]
    name = "answers-from-the-handbook"
    input = "What is the daily meal allowance when travelling?"
    # the service found a source and asked the model (its refusal starts like this)
    expect = { pattern = "^(?!I don't know: the collection has nothing relevant)" }

    [[probe]]
    name = "refuses-off-topic"
    input = "What is the boiling point of tungsten?"
    expect = { pattern = "(?i)don't know" }
    """
    probes_file = Path(labkit.scratch_dir()) / "probes.toml"
    probes_file.write_text(textwrap.dedent(PROBES_TOML), encoding="utf-8")
    suite = probes.load_probes(probes_file)  # what `workbench probe probes.toml` reads
    labkit.table([{"probe": p.name, "expect": p.expect.kind, "target": p.expect.target,
                   "every": p.every} for p in suite])
    return probes_file, suite


@app.cell
def _(gw, live_url, probe_key, suite):
    _health = {p: httpx.get(live_url + p, timeout=30).status_code for p in ("/healthz", "/readyz")}
    probe_report = probes.run_probes(suite, probes.HttpTarget(live_url + "/ask", key=probe_key),
                                     gw.store, checker=gw)
    mo.vstack([
        mo.md(f"Platform probes: `/healthz` {_health['/healthz']}, `/readyz` "
              f"{_health['/readyz']}. Quality probes, stored as run `{probe_report.run_id}`:"),
        probe_report,
    ])
    return (probe_report,)


@app.cell(hide_code=True)
def _(live_url, probes_file):
    mo.md(f"""
    The same run from a terminal (CI does exactly this after starting the service; exit
    code 1 when a probe fails):

    ```bash
    workbench probe {probes_file.name} --url {live_url}/ask --key "$PROBE_KEY"
    # and in production, each probe on its own schedule:
    workbench probe {probes_file.name} --url {live_url}/ask --key "$PROBE_KEY" --watch
    ```

    ### Exercise 9.1 · A probe for citations

    The service's prompt asks the model to cite its sources as `[1]`, `[2]`, …, and the
    chat page links those numbers to the documents. An answer without a citation is
    still a 200, so no platform probe notices. Write `my_probe`: a probe (a dict with
    `name`, `input` and `expect`, or the same as a TOML `[[probe]]` string) that **fails
    on an answer without a citation** and passes on one with a citation. Its input must
    be a question the handbook answers (otherwise the service refuses and the probe
    fails for the wrong reason).
    """)
    return


@app.cell
def _():
    # Exercise 9.1: replace None, e.g. {"name": "...", "input": "...", "expect": {...}}
    my_probe = None
    return (my_probe,)


@app.function(hide_code=True)
def as_probe(value):
    """A probe from a dict or a TOML string with one [[probe]] (what probes.toml holds)."""
    if isinstance(value, str):
        path = Path(labkit.scratch_dir()) / "exercise-9-1.toml"
        path.write_text(value, encoding="utf-8")
        found = probes.load_probes(path)
        if len(found) != 1:
            raise ValueError(f"the TOML holds {len(found)} probes; write exactly one")
        return found[0]
    try:
        return probes.Probe.model_validate(value)
    except ValidationError as exc:
        raise ValueError("; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'probe'}: "
                                   f"{e['msg']}" for e in exc.errors())[:300]) from None


@app.function(hide_code=True)
def check_cites_probe(value, answerable):
    """Exercise 9.1: valid, on an answerable question, passes cited answers, fails the rest."""
    if value is None:
        return labkit.todo("Set my_probe to a dict (or a TOML string) describing the probe.")
    try:
        probe = as_probe(value)
    except ValueError as exc:
        return labkit.wrong(f"Not a valid probe: {exc}")
    cited = ["The daily meal allowance is 45 euros [1].",
             "Your director approves it [2].",
             "Economy is the default [1][3]; business class needs approval."]
    uncited = ["The daily meal allowance is 45 euros.",
               "I don't know: the collection has nothing relevant to this question.",
               "See the travel policy [link] for details.",
               "It is 45 euros (source 1)."]
    missed = [t for t in cited if not probes.check_output(probe, t).ok]
    let_through = [t for t in uncited if probes.check_output(probe, t).ok]
    if missed:
        return labkit.wrong(f"Your probe fails a cited answer: {missed[0]!r}. A citation "
                            "has a fixed shape: a pattern sees it.")
    if let_through:
        return labkit.wrong(f"Your probe passes an answer without a citation: "
                            f"{let_through[0]!r}. Require a number inside the brackets.")
    if not answerable(probe.input):
        return labkit.wrong(f"The handbook has nothing on {probe.input!r}: the service "
                            "would refuse, and the probe would fail for the wrong reason.")
    return labkit.right(f"Right: {probe.name!r} ({probe.expect.kind} "
                        f"{probe.expect.target!r}) passes every cited answer and fails "
                        "every uncited one. The service marks sources as cited with the "
                        r"same rule, \[(\d+)\].")


@app.cell(hide_code=True)
def _(gw, my_probe):
    def _answerable(question):
        _hits = retrieval.search(gw, question, collection="lab9_handbook", k=1)
        return bool(_hits) and (_hits[0].similarity or 0.0) >= MIN_SIMILARITY

    ex_probe = labkit.Exercise(
        "9.1", "A probe for citations", answer="my_probe",
        check=lambda v: check_cites_probe(v, _answerable),
        solution=('my_probe = {\n'
                  '    "name": "cites-a-source",\n'
                  '    "input": "What is the daily meal allowance when travelling?",\n'
                  '    "expect": {"pattern": r"\\[\\d+\\]"},\n'
                  '}'),
        hints=["The cheapest rung that sees a shape is a pattern: "
               "expect = {\"pattern\": r\"...\"}.",
               "A citation is a number in square brackets: \\[ and \\] are literal "
               "brackets, \\d+ is a number.",
               "Use a question from section 1: the handbook answers it."])
    probe_feedback = ex_probe.feedback(my_probe)
    probe_feedback
    return (probe_feedback,)


@app.cell
def _(gw, live_url, my_probe, probe_feedback, probe_key):
    # Your probe against the live service, once its check is green (CI runs the reference).
    _reference = {"name": "cites-a-source", "expect": {"pattern": r"\[\d+\]"},
                  "input": "What is the daily meal allowance when travelling?"}
    _probe = (as_probe(my_probe) if probe_feedback.ok
              else as_probe(_reference) if labkit.ci_mode() else None)
    my_probe_run = (None if _probe is None else probes.run_probes(
        [_probe], probes.HttpTarget(live_url + "/ask", key=probe_key), gw.store))
    (my_probe_run if my_probe_run is not None else
     labkit.callout("When your check is green, this cell runs your probe against the live "
                    "service."))
    return (my_probe_run,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    If it failed: that is the probe doing its job. The 135M-parameter model often forgets
    the citation. With a real model it is a good production probe; with this one, it tells
    you that the model (not the service) is the weak link, which is what probes are for.

    ## 3. The eval gate: block the bad change before it ships

    Probes watch production. An **eval gate** stops a change before it gets there: the
    golden questions go through the *candidate* service, checks run on every answer, and
    the pull request cannot merge when the score is below the threshold. It is the
    template's `tests/test_eval_gate.py`, here run against two services:

    - **live**: what runs today (the `lab9_handbook` index);
    - **candidate**: a pull request that re-indexes the handbook after a docs migration.
      Nobody noticed that `on-call.md` did not survive it.

    An index change is a change, exactly like a code change: it needs the gate.
    The checks are deterministic (did the service answer, did it retrieve the passage
    with the fact), so the gate is stable on the tiny model; the judge metrics of lab 6
    are added once a real model answers.
    """)
    return


@app.cell
def _():
    _on_topic = [{"not_contains": "I don't know: the collection has nothing relevant"}]
    GOLDEN = evals.from_rows([
        {"id": "meal-allowance", "question": "What is the daily meal allowance when "
         "travelling?", "reference": "45 euros", "checks": _on_topic},
        {"id": "business-class", "question": "Who approves business class flights?",
         "reference": "director's approval", "checks": _on_topic},
        {"id": "page-ack", "question": "How quickly must an on-call page be acknowledged?",
         "reference": "15 minutes", "checks": _on_topic},
        {"id": "off-topic", "question": "What is the boiling point of tungsten?",
         "checks": [{"contains": "don't know"}]},
    ], name="handbook-gate", version="1")

    @checks.check("found_the_passage")
    def found_the_passage(out):
        """Retrieval: a source holds the reference fact (off-topic: no source at all)."""
        if not out.reference:
            return not out.contexts, f"{len(out.contexts)} source(s) for an off-topic question"
        hit = any(out.reference.lower() in c.lower() for c in out.contexts)
        return hit, f"{'a' if hit else 'no'} source has {out.reference!r}"

    labkit.table([{"id": s.id, "question": s.question, "reference": s.reference,
                   "checks": ", ".join(next(iter(c)) for c in s.checks) + ", found_the_passage"}
                  for s in GOLDEN.samples])
    return GOLDEN, found_the_passage


@app.function
def gate_service(url, key, golden, extra_checks, gw, name, **config):
    """The eval gate through a running service: every golden question goes to POST /ask
    (retrieval, prompt, model, guardrails), then every check runs on the answer.
    ``config`` (e.g. the index) is recorded in the run, so a comparison names the change."""
    def ask(question):
        resp = httpx.post(url.rstrip("/") + "/ask", json={"question": question}, timeout=120,
                          headers={"Authorization": f"Bearer {key}"})
        resp.raise_for_status()
        body = resp.json()
        return {"answer": body["answer"], "trace_id": body["trace_id"],
                "contexts": [s["snippet"] for s in body["sources"]]}

    return evals.evaluate(golden, target=evals.target(ask, kind="service", **config),
                          metrics=[], checks=extra_checks, gateway=gw, name=name)


@app.cell
def _(GOLDEN, HANDBOOK, app_key, found_the_passage, gw, live_settings, live_url):
    # The candidate: the same service on the migrated index, in a staging slot of its own.
    _migrated = labkit.write_corpus(  # on-call.md was lost in the migration
        Path(gw.settings.data_dir) / "lab9-corpus-v2",
        {_n: _t for _n, _t in HANDBOOK.items() if _n != "on-call.md"})
    retrieval.ingest(gw, [_migrated], collection="lab9_handbook_v2",
                     chunking=ChunkingConfig(max_tokens=120), progress=False)
    _candidate_app = create_service_app(
        gw, live_settings.model_copy(update={"collection": "lab9_handbook_v2"}))
    # Both gates use the app key: its response cache answers a prompt it has seen (same
    # sources, temperature 0) without the model, so only the rows the change touched cost.
    gate_runs = {"live": gate_service(live_url, app_key, GOLDEN, [found_the_passage], gw,
                                      "lab9 live", index="lab9_handbook")}
    with BackgroundServer(_candidate_app) as _candidate:
        gate_runs["candidate"] = gate_service(_candidate.url, app_key, GOLDEN,
                                              [found_the_passage], gw, "lab9 candidate",
                                              index="lab9_handbook_v2")
    # The candidate service is stopped again: it never took traffic.
    gate_scores = {k: r.summary()["checks"].headline for k, r in gate_runs.items()}
    _rows = []
    for _s in GOLDEN.samples:
        _row = {"question": _s.id}
        for _k, _run in gate_runs.items():
            _failed = [sc.metric.removeprefix("check:") for sc in _run.scores
                       if sc.sample_id == _s.id and sc.kind == "check" and not sc.passed]
            _row[_k] = "pass" if not _failed else "FAIL " + ", ".join(_failed)
        _rows.append(_row)
    mo.vstack([labkit.table(_rows),
               mo.md(" · ".join(f"**{k}**: checks pass rate {v:.2f}"
                                for k, v in gate_scores.items()))])
    return gate_runs, gate_scores


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    Both runs are stored in the lab's store. `evals.compare(live, candidate)` (the CLI:
    `workbench eval compare "lab9 live" "lab9 candidate"`) lists what regressed and what
    changed in the recorded config, so the report names the culprit:
    """)
    return


@app.cell
def _(gate_runs):
    evals.compare(gate_runs["live"], gate_runs["candidate"])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    A gate turns such a comparison into a yes or no: `run.gate({"checks": threshold})`
    passes when the pass rate is at least the threshold; `workbench eval …
    --fail-under checks=…` exits 1 otherwise, and that exit code fails the CI job.

    ### Exercise 9.2 · The threshold that blocks it

    Set `gate_threshold` (a number between 0 and 1) so that the gate **passes the live
    version and blocks the candidate**. The check applies it to both stored runs.
    """)
    return


@app.cell
def _():
    # Exercise 9.2: replace None with a number between 0 and 1
    gate_threshold = None
    return (gate_threshold,)


@app.function(hide_code=True)
def check_threshold(value, passes):
    """Exercise 9.2: ``passes(which, threshold)`` is the real gate on run ``which``."""
    if value is None:
        return labkit.todo("Set gate_threshold to a number between 0 and 1.")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return labkit.wrong(f"gate_threshold should be a number, not {type(value).__name__}.")
    if not 0 <= value <= 1:
        return labkit.wrong("A pass rate is between 0 and 1: so is its threshold.")
    if not passes("live", value):
        return labkit.wrong(f"With {value} the gate blocks what is live today: every pull "
                            "request would fail, and people learn to ignore the gate.")
    if passes("candidate", value):
        return labkit.wrong(f"With {value} the candidate passes: the lost on-call page "
                            "would ship. Raise it above the candidate's pass rate.")
    return labkit.right(f"Right: {value} keeps today's version green and blocks the "
                        "migration. For deterministic checks, demand 1.0 (all of them); for "
                        "a judge metric, leave a margin for its noise and compare runs.")


@app.cell(hide_code=True)
def _(gate_runs, gate_threshold):
    ex_gate = labkit.Exercise(
        "9.2", "The threshold that blocks it", answer="gate_threshold",
        check=lambda v: check_threshold(
            v, lambda which, t: gate_runs[which].gate({"checks": t}).passed),
        solution=("# deterministic checks: all of them must pass\n"
                  "gate_threshold = 1.0"),
        hints=["The gate passes when the pass rate is at least the threshold.",
               "Pick a number above the candidate's pass rate and no higher than the "
               "live one (see the line under the table)."])
    ex_gate.feedback(gate_threshold)
    return


@app.cell
def _(gate_runs):
    _gate = gate_runs["candidate"].gate({"checks": 1.0})
    mo.md("The candidate's gate at 1.0, as CI prints it:\n\n```\n" + str(_gate) + "\n"
          + "\n".join(f"  {sc.sample_id} [{sc.metric}]: {sc.reason}" for sc in _gate.failing)
          + "\n```")
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 4. What CI runs

    The service template (`templates/service/`) ships a CI workflow that copies into a
    team's repository as is. On every pull request, offline on the embedded model (or on
    a real one, with the provider key as a CI secret):
    """)
    return


@app.cell
def _():
    _template = Path(workbench.__file__).resolve().parents[1] / "templates" / "service"
    _workflow = _template / ".github" / "workflows" / "ci.yml"
    if _workflow.exists():
        _steps = yaml.safe_load(_workflow.read_text(encoding="utf-8"))["jobs"]["test"]["steps"]
        _rows = [{"step": s.get("name") or s.get("uses"),
                  "runs": " ".join((s.get("run") or "").split())[:110]} for s in _steps]
        _shown = mo.vstack([labkit.table(_rows), labkit.Html(labkit.details(
            "The whole workflow (templates/service/.github/workflows/ci.yml)",
            labkit.code_block(_workflow.read_text(encoding="utf-8"))))])
    else:
        _shown = labkit.callout("templates/service/ is not next to this workbench install "
                                "(open the lab from a clone to see the workflow).", "warn")
    _shown
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    Read it as the route to live in YAML:

    - **nbmake** (`pytest --nbmake notebooks/`) executes every notebook top to bottom in a
      fresh kernel and fails the job on the first error: the prototype notebook the
      service grew from cannot rot. The workbench runs its own labs the same way: the
      Jupyter edition of this lab under `pytest --nbmake labs/jupyter/`, the marimo one as
      `python labs/09_ship_it.py --ci 1` (every exercise proves its check rejects the
      starter and accepts the solution) plus `marimo check --strict`.
    - **pytest** runs the service's contract tests and the eval gate
      (`tests/test_eval_gate.py`: the golden set through `POST /ask`, `assert gate.passed`).
    - **the eval report** (`workbench eval run … --fail-under checks=1.0 --markdown
      "$GITHUB_STEP_SUMMARY"`) puts the scores on the pull request page.
    - **start the service and probe it**: the service must come up (`/readyz`) and pass
      its probes before anything is deployed.

    The same gate then runs after the deploy, against production: a probe or a nightly
    eval that fails *after* a deploy is a **change failure** (section 6).

    ## 5. Load test

    How many questions per second does one replica answer, and how long does a user
    wait? Measure it before launch and after big changes, and size `max_inflight`,
    replicas, budgets and rate limits from the figures. The load generator below is a
    thread pool of HTTP clients; `benchmarks/service_load.py` is the full version (a
    separate server process, a soak with memory sampling, store consistency checks).
    """)
    return


@app.function
def percentile(values, p):
    """Nearest-rank percentile of ``values`` (p in 0-100); None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@app.function
def load_test(url, key, questions, requests, concurrency):
    """``requests`` POST /ask calls, ``concurrency`` at a time: latency and status of each."""
    def one(i):
        started = time.perf_counter()
        try:
            status = client.post("/ask", json={"question": questions[i % len(questions)]}
                                 ).status_code
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        return status, (time.perf_counter() - started) * 1000

    with httpx.Client(base_url=url, timeout=300, headers={"Authorization": f"Bearer {key}"},
                      limits=httpx.Limits(max_connections=concurrency)) as client:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            results = list(pool.map(one, range(requests)))
        wall_s = time.perf_counter() - started
    ok_ms = [ms for status, ms in results if status == 200]
    return {"requests": requests, "concurrency": concurrency, "ok": len(ok_ms),
            "errors": requests - len(ok_ms),
            "p50_ms": percentile(ok_ms, 50), "p95_ms": percentile(ok_ms, 95),
            "max_ms": max(ok_ms, default=None), "req_per_s": requests / wall_s,
            "statuses": dict(Counter(status for status, _ in results))}


@app.cell
def _():
    concurrency = labkit.slider(1, 16, 4, label="concurrent clients")
    concurrency
    return (concurrency,)


@app.cell
def _(GOLDEN, app_key, concurrency, gate_runs, live_url, load_key):
    _ = gate_runs  # after the gate: its answers are in the app key's response cache
    _questions = [s.question for s in GOLDEN.samples if s.reference]
    _c = int(concurrency.value)
    if labkit.ci_mode():  # CI: a couple of dozen cached requests, two through the model
        load_results = {"cached (app key)": load_test(live_url, app_key, _questions, 24, _c),
                        "model (load key)": load_test(live_url, load_key, _questions, 2, 2)}
    else:
        load_results = {"cached (app key)": load_test(live_url, app_key, _questions, 48, _c),
                        "model (load key)": load_test(live_url, load_key, _questions, 2 * _c,
                                                      _c)}
    labkit.table([{"run": _k, **_r, "req_per_s": f"{_r['req_per_s']:.1f}",
                   **{_m: None if _r[_m] is None else round(_r[_m])
                      for _m in ("p50_ms", "p95_ms", "max_ms")}}
                  for _k, _r in load_results.items()])
    return (load_results,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    How to read it:

    - **cached**: the app key has the response cache on, and the gate asked these
      questions already, so the model is skipped. What is left is the service's own cost
      per request: auth, the query embedding, LanceDB search, budget reservation and
      ledger, tracing. FAQ-like traffic looks like this.
    - **model**: every answer is generated. The embedded model answers one request at a
      time (one model, one lock), so requests queue: p50 grows with the number of
      concurrent clients and throughput does not. Try 1, then 8 clients. A hosted model
      serves requests in parallel, and then rate limits and budgets are what you size.
    - **errors**: the service sheds load rather than drowning: above `max_inflight` (8
      here) answers in progress it returns 503 with `Retry-After: 1`. Move the slider to
      12 and they appear in `statuses`. Clients (and load balancers) retry those.
    - The load generator shares this process and its CPU with the service: for figures
      you can size from, run `benchmarks/service_load.py`, or a load generator on another
      machine.
    """)
    return


@app.cell
def _(live_url, load_results):
    _ = load_results
    _text = httpx.get(live_url + "/metrics", timeout=30).text
    service_metrics = [line for line in _text.splitlines()
                       if line.startswith(("workbench_service_asks_total",
                                           "workbench_service_requests_total{"))
                       and ('route="/ask"' in line or "asks_total" in line)]
    mo.md("What the platform scrapes from `GET /metrics` (Prometheus): answers by outcome "
          "and requests by status. Alert on these and on the latency histogram, next to "
          "the probes.\n\n```\n" + "\n".join(service_metrics) + "\n```")
    return (service_metrics,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 6. Measure the road: route-to-live metrics

    The DORA metrics measure how a team delivers; they apply to LLM features with two
    adaptations:

    - **What counts as a change**: not only code. A prompt edit, a model swap (or the
      provider's silent update you chose to accept), a re-index or re-chunking, a
      retrieval setting: each one ships, and each one can break answers.
    - **What counts as a failure**: a deployed change that needs a rollback or a hotfix,
      including quality failures: a probe that fails after the deploy, a nightly eval
      that drops below its gate, a thumbs-down spike, not only an outage.

    | metric | definition | note |
    | --- | --- | --- |
    | lead time for changes | first commit → running in production | median, in hours |
    | deployment frequency | deploys per week | deployed changes only |
    | change failure rate | failed deploys / deploys | a PR the gate blocked never deployed |
    | time to restore | failure detected → restored | median, in hours |

    A month of changes to the handbook assistant (the docs migration of section 3 is
    PR-118):
    """)
    return


@app.cell
def _():
    CHANGE_LOG = [
        {"change": "PR-101", "kind": "prompt", "summary": "cite sources as [n]",
         "first_commit": "2026-03-02T09:10", "deployed": "2026-03-02T16:40", "failure": None},
        {"change": "PR-103", "kind": "index", "summary": "weekly re-ingest: travel policy",
         "first_commit": "2026-03-03T10:00", "deployed": "2026-03-04T11:30", "failure": None},
        {"change": "PR-104", "kind": "model", "summary": "smollm2 -> a hosted model",
         "first_commit": "2026-03-04T14:00", "deployed": "2026-03-09T14:15",
         "failure": "probe cites-a-source failed 40 min after the deploy",
         "detected": "2026-03-09T14:55", "restored": "2026-03-09T17:05"},
        {"change": "PR-107", "kind": "code", "summary": "stream answers on the chat page",
         "first_commit": "2026-03-10T09:00", "deployed": "2026-03-10T13:00", "failure": None},
        {"change": "PR-108", "kind": "prompt", "summary": "shorter system prompt (-30% tokens)",
         "first_commit": "2026-03-11T10:00", "deployed": "2026-03-12T16:00",
         "failure": "nightly eval: faithfulness 0.64 < gate 0.75",
         "detected": "2026-03-13T02:00", "restored": "2026-03-13T10:30"},
        {"change": "PR-110", "kind": "config", "summary": "retrieve 4 sources instead of 3",
         "first_commit": "2026-03-16T11:00", "deployed": "2026-03-16T13:30", "failure": None},
        {"change": "PR-112", "kind": "index", "summary": "re-chunk: 120 -> 200 tokens",
         "first_commit": "2026-03-17T09:00", "deployed": "2026-03-19T10:00", "failure": None},
        {"change": "PR-115", "kind": "code", "summary": "LanceDB on the shared bucket",
         "first_commit": "2026-03-23T09:30", "deployed": "2026-03-23T15:30",
         "failure": "/readyz red on 2 of 3 replicas (bucket permissions)",
         "detected": "2026-03-23T15:34", "restored": "2026-03-23T16:05"},
        {"change": "PR-118", "kind": "index", "summary": "docs migration v2",
         "first_commit": "2026-03-24T09:00", "deployed": None, "failure": None,
         "gate": "blocked: checks 0.75 < 1.0 (on-call.md lost)"},
        {"change": "PR-119", "kind": "prompt", "summary": "answer in the user's language",
         "first_commit": "2026-03-25T10:00", "deployed": "2026-03-26T08:00", "failure": None},
    ]
    labkit.table([{k: c.get(k) for k in ("change", "kind", "summary", "first_commit",
                                          "deployed", "failure")} | {"gate": c.get("gate")}
                  for c in CHANGE_LOG])
    return (CHANGE_LOG,)


@app.function
def hours(start, end):
    """Hours between two ISO timestamps."""
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 3600


@app.cell
def _(CHANGE_LOG):
    _deployed = [c for c in CHANGE_LOG if c["deployed"]]
    _failed = [c for c in _deployed if c["failure"]]
    _span_weeks = hours(min(c["deployed"] for c in _deployed),
                        max(c["deployed"] for c in _deployed)) / (24 * 7)
    _restore_h = statistics.median(hours(c["detected"], c["restored"]) for c in _failed)
    _by_kind = []
    for _kind in sorted({c["kind"] for c in CHANGE_LOG}):
        _mine = [c for c in CHANGE_LOG if c["kind"] == _kind]
        _by_kind.append({"kind": _kind, "changes": len(_mine),
                         "deployed": sum(bool(c["deployed"]) for c in _mine),
                         "blocked by the gate": sum(bool(c.get("gate")) for c in _mine),
                         "failed after deploy": sum(bool(c["failure"]) for c in _mine)})
    mo.vstack([
        mo.md(f"**Deployment frequency:** {len(_deployed)} deploys in {_span_weeks:.1f} "
              f"weeks, {len(_deployed) / _span_weeks:.1f} per week. **Time to restore:** "
              f"median {_restore_h:.1f} h over {len(_failed)} failures."),
        labkit.table(_by_kind),
    ])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    Only one of the failures was an outage; the others returned 200 to every request.
    Without probes and a nightly eval they would have been found by users, days later.

    ### Exercise 9.3 · Lead time and change failure rate

    From `CHANGE_LOG`, compute `change_failure_rate` (a fraction between 0 and 1) and
    `median_lead_time_h` (the median lead time of the deployed changes, in hours). The
    `hours(start, end)` helper and `statistics.median` are there to use.
    """)
    return


@app.cell
def _():
    # Exercise 9.3: replace the Nones
    change_failure_rate = None
    median_lead_time_h = None
    return change_failure_rate, median_lead_time_h


@app.function(hide_code=True)
def check_route_metrics(answer, changes):
    """Exercise 9.3: (change_failure_rate, median_lead_time_h) of ``changes``."""
    cfr, lead = answer
    if cfr is None and lead is None:
        return labkit.todo("Set change_failure_rate and median_lead_time_h.")
    deployed = [c for c in changes if c.get("deployed")]
    failed = [c for c in deployed if c.get("failure")]
    blocked = [c for c in changes if not c.get("deployed")]
    want_cfr = len(failed) / len(deployed)
    leads = sorted((datetime.fromisoformat(c["deployed"])
                    - datetime.fromisoformat(c["first_commit"])).total_seconds() / 3600
                   for c in deployed)
    want_lead = statistics.median(leads)

    def near(x, y):
        return isinstance(x, int | float) and not isinstance(x, bool) and abs(x - y) < 0.01

    if not isinstance(cfr, int | float) or isinstance(cfr, bool):
        return labkit.wrong("change_failure_rate should be a number (a fraction).")
    if near(cfr, 100 * want_cfr):
        return labkit.wrong("That is a percentage: give the fraction (between 0 and 1).")
    if blocked and near(cfr, len(failed) / len(changes)):
        return labkit.wrong("The denominator counts a change that never shipped: a change "
                            "the gate blocked is not a deployment.")
    if blocked and (near(cfr, (len(failed) + len(blocked)) / len(changes))
                    or near(cfr, (len(failed) + len(blocked)) / len(deployed))):
        return labkit.wrong("A change the eval gate blocked is the gate working, not a "
                            "change failure: it never reached users.")
    if not near(cfr, want_cfr):
        return labkit.wrong(f"change_failure_rate {cfr:.3f} is off: count the deployed "
                            "changes that failed in production (any failure: probe, eval, "
                            "outage), over all deployed changes.")
    if not isinstance(lead, int | float) or isinstance(lead, bool):
        return labkit.wrong("median_lead_time_h should be a number of hours.")
    if near(lead, 60 * want_lead) or near(lead, want_lead / 24):
        return labkit.wrong("Check the unit: median_lead_time_h is in hours.")
    if near(lead, statistics.mean(leads)):
        return labkit.wrong("That is the mean: one slow model migration pulls it up. The "
                            "median is the typical change.")
    if not near(lead, want_lead):
        return labkit.wrong(f"median_lead_time_h {lead:.2f} is off: first commit to deploy, "
                            "for the deployed changes only, then the median.")
    return labkit.right(f"Right: {want_cfr:.0%} of deploys failed, and a typical change "
                        f"took {want_lead:.0f} h from first commit to production. Two of "
                        "the failures were quality failures: without probes and a nightly "
                        "eval the rate would look better than it is.")


@app.cell(hide_code=True)
def _(CHANGE_LOG, change_failure_rate, median_lead_time_h):
    ex_route = labkit.Exercise(
        "9.3", "Lead time and change failure rate", answer="answer_93",
        check=lambda v: check_route_metrics(v, CHANGE_LOG),
        solution=('deployed = [c for c in CHANGE_LOG if c["deployed"]]\n'
                  'change_failure_rate = sum(1 for c in deployed if c["failure"]) / '
                  'len(deployed)\n'
                  'median_lead_time_h = statistics.median(\n'
                  '    hours(c["first_commit"], c["deployed"]) for c in deployed)\n'
                  'answer_93 = (change_failure_rate, median_lead_time_h)'),
        hints=["Keep only the changes with a deployed time: a blocked PR is not a deploy.",
               "change failure rate = deployed changes with a failure / deployed changes.",
               "Lead time = hours(first_commit, deployed) per deployed change; then "
               "statistics.median."])
    ex_route.feedback((change_failure_rate, median_lead_time_h),
                      env={"CHANGE_LOG": CHANGE_LOG, "hours": hours, "statistics": statistics})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 7. A prompt change is a deployment

    Prompts are versioned artifacts in the workbench's registry (`workbench prompts`):
    every version is a content hash, and **labels** say which version does what. The
    service answers with the version labelled `production` (`rag.answer`; until a team
    labels one, the built-in default). A new version is pushed as `candidate`, goes
    through the same eval gate as an index change, and only `prompts.promote()` moves
    `production` to it, refusing when the gate fails or when the run evaluated another
    version. The move is audited and recorded as a **deployment**, with the version's
    push time as its first commit: lead time and change failure rate count it.

    ```bash
    workbench prompts push rag.answer --file answer.yaml --label candidate
    workbench prompts diff rag.answer production candidate
    workbench prompts label rag.answer production <version>   # no gate: avoid
    workbench prompts deployments
    ```
    """)
    return


@app.cell
def _(gw):
    _live = prompts.get(gw.store, "rag.answer")
    candidate = prompts.push(gw.store, "rag.answer", [
        {"role": "system", "content": "You answer colleagues' questions from the team "
                                      "handbook. Use only the numbered sources and cite "
                                      "them like [1]. If they do not say, answer \"I don't "
                                      "know\". One or two sentences."},
        {"role": "user", "content": "Sources:\n\n{{sources}}\n\nQuestion: {{question}}"},
    ], labels=["candidate"], description="the handbook voice, shorter answers")
    mo.vstack([
        mo.md(f"Production: `{_live.ref}` ({_live.source}). Candidate: `{candidate.ref}`."),
        labkit.Html(labkit.code_block(
            prompts.diff(gw.store, "rag.answer", "production", "candidate"))),
    ])
    return (candidate,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Exercise 9.4 · Ship the prompt behind the gate

    Run the golden set (`GOLDEN`, with the `found_the_passage` check) on the **candidate**
    (`evals.rag_target(gw, collection="lab9_handbook", max_tokens=MAX_TOKENS,
    prompt="rag.answer@candidate")`, `metrics=[]`), then promote it with
    `prompts.promote(gw.store, "rag.answer", run, thresholds)`. Set `prompt_run` to the
    run. The check looks at the run and at the recorded deployment.
    """)
    return


@app.cell
def _():
    # Exercise 9.4: evaluate the candidate, promote it, keep the run
    prompt_run = None
    return (prompt_run,)


@app.function(hide_code=True)
def check_prompt_ship(run, deploys, candidate):
    """Exercise 9.4: ``run`` ({id, prompt}) evaluated ``candidate`` (a version) and the
    deployment of ``candidate`` went through a gate on that run demanding every check."""
    if run is None:
        return labkit.todo("Set prompt_run to the eval run of the candidate.")
    used = run.get("prompt") or {}
    if used.get("version") != candidate:
        return labkit.wrong(f"That run evaluated {used.get('name', 'no registry prompt')}@"
                            f"{used.get('version', '?')}, not the candidate {candidate}: "
                            "pass prompt='rag.answer@candidate' to rag_target.")
    mine = [d for d in deploys if d["change"].endswith("@" + candidate)]
    if not mine:
        return labkit.wrong("The candidate is not in production: call prompts.promote(gw.store, "
                            "'rag.answer', prompt_run, thresholds).")
    last = mine[-1]
    if not last.get("gate_run"):
        return labkit.wrong("Production moved without a gate (set_label or `prompts label`): "
                            "use prompts.promote with the eval run.")
    if last["gate_run"] != run["id"]:
        return labkit.wrong("The deployment was gated on another run than prompt_run.")
    if (last.get("thresholds") or {}).get("checks", 0) < 1.0:
        return labkit.wrong("The checks are deterministic: the gate should demand all of "
                            "them ({'checks': 1.0}), as for the index change.")
    return labkit.right(f"Right: {candidate} is in production, gated on {run['id']}. The route "
                        "metrics of section 6 now count it as a deployment.")


@app.function(hide_code=True)
def run_facts(run):
    """What 9.4's check needs of an eval run."""
    return None if run is None else {"id": run.id,
                                     "prompt": run.config["target"].get("prompt") or {}}


@app.cell(hide_code=True)
def _(GOLDEN, MAX_TOKENS, candidate, found_the_passage, gw, prompt_run):
    ex_prompt = labkit.Exercise(
        "9.4", "Ship the prompt behind the gate", answer="prompt_run",
        check=lambda run: check_prompt_ship(run_facts(run), prompts.deployments(
            gw.store, "rag.answer"), candidate.version),
        solution=('prompt_run = evals.evaluate(\n'
                  '    GOLDEN, target=evals.rag_target(gw, collection="lab9_handbook",\n'
                  '                                    max_tokens=MAX_TOKENS,\n'
                  '                                    prompt="rag.answer@candidate"),\n'
                  '    metrics=[], checks=[found_the_passage], gateway=gw,\n'
                  '    name="lab9 prompt candidate")\n'
                  'prompts.promote(gw.store, "rag.answer", prompt_run, {"checks": 1.0})'),
        hints=["rag_target(..., prompt='rag.answer@candidate') pins the candidate version "
               "for the whole run and records it in run.config.",
               "prompts.promote refuses a run of another version and a failing gate: read "
               "its message.",
               "Deterministic checks: demand all of them, {'checks': 1.0}."])
    ex_prompt.feedback(prompt_run, env={"GOLDEN": GOLDEN, "evals": evals, "gw": gw,
                                        "MAX_TOKENS": MAX_TOKENS, "prompts": prompts,
                                        "found_the_passage": found_the_passage})
    return (ex_prompt,)


@app.cell
def _(CHANGE_LOG, app_key, ex_prompt, gw, live_url):
    _ = ex_prompt  # after the exercise (in CI its solution promoted the candidate)
    _answer = httpx.post(live_url + "/ask", json={"question": "What is the daily meal "
                                                  "allowance when travelling?"},
                         headers={"Authorization": f"Bearer {app_key}"}, timeout=300).json()
    traces.flush(gw.store, 5.0)
    _versions = sorted({s.attributes.get("workbench.prompt.version") or "-"
                        for s in traces.get_trace(gw.store, _answer["trace_id"]).spans})
    prompt_deploys = prompts.deployments(gw.store, "rag.answer")
    _road = [*CHANGE_LOG, *prompt_deploys]
    _deployed = [c for c in _road if c["deployed"]]
    mo.vstack([
        mo.md(f"The live service now answers with `{_answer.get('prompt')}`; the spans of "
              f"that answer record prompt version(s) {', '.join(_versions)}."),
        labkit.table([{k: d.get(k) for k in ("change", "first_commit", "deployed", "gate",
                                             "failure")} for d in prompt_deploys])
        if prompt_deploys else labkit.callout("No prompt deployment yet: do exercise 9.4.",
                                              "todo"),
        mo.md(f"The road now has {len(_deployed)} deployments: "
              f"{len(_deployed) - len(prompt_deploys)} from the month's change log plus "
              f"{len(prompt_deploys)} prompt move(s) from the registry "
              "(`prompts.deployments()` has the same fields as `CHANGE_LOG`). A rollback "
              "(`workbench prompts rollback rag.answer`) marks the deployment it undoes "
              "as a change failure."),
    ])
    return (prompt_deploys,)


@app.cell
def _(
    contract_rows,
    first_answer,
    gate_runs,
    gw,
    live,
    live_url,
    load_results,
    my_probe_run,
    probe_report,
    prompt_deploys,
    service_metrics,
):
    # In CI (and nbmake) the lab stops what it started, after every cell that uses the
    # service; in class the service keeps running until the notebook stops.
    _ = (contract_rows, first_answer, gate_runs, load_results, my_probe_run, probe_report,
         prompt_deploys, service_metrics)
    if labkit.ci_mode():
        for _server in SERVERS.values():
            _server.stop()
        SERVERS.clear()
        traces.flush(gw.store, 5.0)  # spans of the last requests, before the process ends
    labkit.callout(f"The live service is running at {live_url}: open it in your browser, or "
                   "stop it with live.stop()." if live.running else
                   "The live service is stopped.")
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## Recap

    - `workbench serve` is the feature as a service: keys, trace ids, one error shape,
      `/healthz`, `/readyz`, `/metrics`. In a notebook, the same app runs in a thread.
    - Liveness and readiness say the process is up; **quality probes** say the answers are
      still right, and their history says what changed when one flips.
    - An **eval gate** runs the golden set through the candidate service; with
      deterministic checks demand all of them, and pick thresholds from measured runs.
      Index, prompt and model changes need the gate as much as code does.
    - CI runs the notebooks (nbmake), the contract tests and the gate, then starts the
      service and probes it; the same probes keep running in production.
    - A load test gives p50, p95 and errors at a concurrency; the embedded model queues
      requests, a hosted one hits rate limits and budgets first.
    - Lead time and change failure rate measure the road; count prompt, model and index
      changes, and count quality failures as failures.
    - Prompts are versioned artifacts: push a candidate, gate it, `prompts.promote()` it;
      the production move is audited, shows in spans, eval runs and the probes' drift
      report, and counts as a deployment.

    ## Take it to your team

    - Start from `templates/service/`: copy it, replace the corpus, keep its CI workflow.
      The deployment playbook (`docs/playbooks/deployment.md`) covers containers,
      secrets, PostgreSQL, LanceDB on object storage and replicas.
    - Give the probe runner its own key (small budget, no cache) and run
      `workbench probe --watch` against production; alert on failures and drift
      (the production health playbook, `docs/playbooks/production-health.md`).
    - Put the eval gate in every pull request that touches a prompt, a model, the index or
      its chunking, not only code.
    - Log every LLM change with its first commit, deploy time and outcome, and review lead
      time and change failure rate monthly: the
      route-to-live playbook (`docs/playbooks/route-to-live.md`) lists the stops and
      their exit criteria.

    **You have finished the labs.** The facilitator guide (`docs/facilitator.md`) has the
    wrap-up: each team picks one control to adopt next week.
    """)
    return


@app.cell
def test_cites_probe_check():
    def _answerable(question):
        return "allowance" in question

    _good = {"name": "cites", "input": "What is the daily meal allowance?",
             "expect": {"pattern": r"\[\d+\]"}}
    assert check_cites_probe(None, _answerable).todo
    assert not check_cites_probe({"name": "x"}, _answerable).ok  # no input, no expect
    assert not check_cites_probe({**_good, "expect": {"pattern": r"\["}}, _answerable).ok
    assert not check_cites_probe({**_good, "expect": {"exact": "[1]"}}, _answerable).ok
    assert not check_cites_probe({**_good, "expect": {"judge": "cites"}}, _answerable).ok
    assert not check_cites_probe({**_good, "input": "Boiling point of tungsten?"},
                                 _answerable).ok
    assert check_cites_probe(_good, _answerable).ok
    _toml = ('[[probe]]\nname = "cites"\ninput = "What is the daily meal allowance?"\n'
             "expect = { pattern = '\\[\\d+\\]' }\n")
    assert check_cites_probe(_toml, _answerable).ok
    return


@app.cell
def test_threshold_check():
    _scores = {"live": 1.0, "candidate": 0.8}

    def _passes(which, threshold):
        return _scores[which] >= threshold

    assert check_threshold(None, _passes).todo
    assert not check_threshold("0.9", _passes).ok
    assert not check_threshold(1.5, _passes).ok
    assert not check_threshold(0.5, _passes).ok  # the candidate ships
    assert not check_threshold(0.8, _passes).ok  # at the candidate's rate it still passes
    assert check_threshold(0.9, _passes).ok
    assert check_threshold(1.0, _passes).ok
    return


@app.cell
def test_route_metrics_check():
    _log = [
        {"first_commit": "2026-01-01T00:00", "deployed": "2026-01-01T02:00", "failure": None},
        {"first_commit": "2026-01-02T00:00", "deployed": "2026-01-02T04:00",
         "failure": "probe"},
        {"first_commit": "2026-01-03T00:00", "deployed": "2026-01-03T12:00", "failure": None},
        {"first_commit": "2026-01-04T00:00", "deployed": "2026-01-05T00:00", "failure": None},
        {"first_commit": "2026-01-06T00:00", "deployed": None, "failure": None},
    ]
    # 4 deploys, 1 failure; lead times 2, 4, 12, 24 -> median 8, mean 10.5
    assert check_route_metrics((None, None), _log).todo
    assert not check_route_metrics((25.0, 8.0), _log).ok  # a percentage
    assert not check_route_metrics((0.2, 8.0), _log).ok  # the blocked change counted
    assert not check_route_metrics((0.4, 8.0), _log).ok  # blocked counted as a failure
    assert not check_route_metrics((0.25, 10.5), _log).ok  # the mean
    assert not check_route_metrics((0.25, 480.0), _log).ok  # minutes
    assert not check_route_metrics((0.25, 7.0), _log).ok
    assert check_route_metrics((0.25, 8.0), _log).ok
    return


@app.cell
def test_percentile():
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    assert percentile(list(range(1, 101)), 50) == 50
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([3, 1, 2], 100) == 3
    return


@app.cell
def test_prompt_ship_check():
    _gated = {"change": "prompt rag.answer@abc", "gate_run": "run_1",
              "thresholds": {"checks": 1.0}}
    _run = {"id": "run_1", "prompt": {"name": "rag.answer", "version": "abc"}}
    assert check_prompt_ship(None, [], "abc").todo
    assert not check_prompt_ship({"id": "run_1", "prompt": {"name": "rag.answer",
                                                             "version": "old"}},
                                 [_gated], "abc").ok  # evaluated the live prompt
    assert not check_prompt_ship(_run, [], "abc").ok  # never promoted
    assert not check_prompt_ship(_run, [{**_gated, "gate_run": None}], "abc").ok  # no gate
    assert not check_prompt_ship(_run, [{**_gated, "gate_run": "run_0"}], "abc").ok
    assert not check_prompt_ship(_run, [{**_gated, "thresholds": {"checks": 0.5}}], "abc").ok
    assert check_prompt_ship(_run, [_gated], "abc").ok
    return


if __name__ == "__main__":
    app.run()
