import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 7 · Tracing and debugging")

with app.setup:
    import time
    from pathlib import Path
    from types import SimpleNamespace

    import labkit
    import marimo as mo

    from workbench import retrieval
    from workbench.observability import traces, tracing
    from workbench.retrieval import ChunkingConfig, build_prompt


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # Lab 7 · Tracing and debugging

    When an answer is wrong or slow, a **trace** tells you why: one tree of timed steps
    (spans) per request, from the entry point through retrieval to every model call, with
    inputs, outputs, token counts and cost. The workbench records OpenTelemetry spans with
    OpenInference conventions into its own store (offline, the default) and, when
    configured, exports them over OTLP to Phoenix, Jaeger, Tempo, Langfuse, ...

    **Learning goals**

    - Instrument a RAG pipeline with spans; see gateway calls nest inside automatically.
    - Read a trace: the waterfall, span kinds, inputs/outputs, tokens.
    - Find the slow span, and the bad retrieval, from the trace alone.
    - Know how to export traces to an OTLP collector.

    **Time:** about 30 minutes.
    """)
    return


@app.cell
def _():
    gw = labkit.connect()
    _corpus = labkit.write_corpus(Path(gw.settings.data_dir) / "lab7-corpus", {
        "badges.md": labkit.HANDBOOK["badges.md"],
        "printers.md": labkit.HANDBOOK["printers.md"],
        "vpn.md": "# VPN\n\n## Access\n\nConnect from home with the VPN client. The VPN "
                  "password rotates every 90 days.\n",
    })
    ingested = retrieval.ingest(gw, [_corpus], collection="lab7_helpdesk",
                                chunking=ChunkingConfig(max_tokens=120), progress=False)
    gw.chat("Hi", max_tokens=1)  # load the model now, so its load time is not in a trace
    mo.md(f"A three-page helpdesk corpus: {ingested.total_chunks} chunks in `lab7_helpdesk`.")
    return gw, ingested


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 1. Instrument the pipeline

    `tracing.span(name, kind=...)` opens a span for a block. Kinds follow OpenInference:
    `CHAIN` for a pipeline step, `RETRIEVER` for search (with the documents it found),
    `LLM` and `EMBEDDING` for model calls, which the gateway opens for you, nested under
    whatever span is active. The pipeline below has one deliberately slow step, standing
    in for the kind of thing traces are for.
    """)
    return


@app.function
def helpdesk_answer(gw, question, mode="hybrid", slow_s=1.0):
    """A traced RAG pipeline: retrieve -> "policy check" -> generate. Returns (text, trace_id)."""
    with tracing.span("helpdesk.answer", kind="CHAIN", input=question, gateway=gw) as root:
        with tracing.span("retrieve", kind="RETRIEVER", input=question, gateway=gw) as ret:
            hits = retrieval.search(gw, question, collection="lab7_helpdesk", k=2, mode=mode)
            ret.set_documents([{"id": Path(h.source).name, "score": h.score,
                                "content": h.snippet(120)} for h in hits])
        with tracing.span("policy_check", kind="CHAIN", gateway=gw):
            time.sleep(slow_s)  # a slow dependency (a policy service, a cold cache, ...)
        result = gw.chat(build_prompt(question, hits[:1]), max_tokens=32, temperature=0)
        root.set_output(result.text)
        return result.text, root.trace_id


@app.cell
def _(gw, ingested):
    _ = ingested
    first_text, first_trace_id = helpdesk_answer(gw, "What does ERR-4711 mean?")
    first_trace = traces.get_trace(gw.store, first_trace_id)
    first_trace
    return (first_trace,)


@app.cell(hide_code=True)
def _(first_trace):
    mo.md(f"""
    The same trace as text (`workbench traces show {first_trace.trace_id[:8]}` prints it
    too):

    ```
    {chr(10).join(first_trace.lines())}
    ```
    """)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    The embedding call made by `search` and the chat call both landed inside the trace,
    because the gateway joins the active span; the chat result's `trace_id` is the trace's
    id. That id is what the ledger row, the user's feedback and your logs share.

    ### Exercise 7.1 · Find the slow span

    Set `slowest` to the **name** of the slowest span in `first_trace` other than the
    root. Compute it from `first_trace.spans` (each has `name`, `duration_ms`, and
    `parent_id`, which is `None` for the root).
    """)
    return


@app.cell
def _():
    # Exercise 7.1: replace None
    slowest = None
    return (slowest,)


@app.function(hide_code=True)
def check_slowest(value, trace):
    """Exercise 7.1: the non-root span with the largest duration."""
    if value is None:
        return labkit.todo("Set slowest to a span name.")
    children = [s for s in trace.spans if s.parent_id is not None]
    want = max(children, key=lambda s: s.duration_ms)
    if value != want.name:
        found = next((s for s in children if s.name == value), None)
        detail = f"{found.duration_ms:.0f} ms" if found else "not a span of this trace"
        return labkit.wrong(f"{value!r} ({detail}) is not the slowest; {want.duration_ms:.0f} "
                            "ms is.")
    return labkit.right(f"Right: {want.name} took {want.duration_ms:.0f} ms of "
                        f"{trace.duration_ms:.0f} ms. On a real model the LLM span usually "
                        "wins; then look at its tokens_in (prompt size) first.")


@app.cell(hide_code=True)
def _(first_trace, slowest):
    ex_slow = labkit.Exercise(
        "7.1", "Find the slow span", answer="slowest",
        check=lambda v: check_slowest(v, first_trace),
        solution=("slowest = max((s for s in first_trace.spans if s.parent_id is not None),\n"
                  "              key=lambda s: s.duration_ms).name"),
        hints=["Filter out the root: parent_id is None.",
               "max(..., key=lambda s: s.duration_ms)"])
    ex_slow.feedback(slowest, env={"first_trace": first_trace})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 2. The bad retrieval

    A user reports a wrong answer to *"the display shows ERR-4711"*. The trace shows
    what the model was given: open the RETRIEVER span's documents.
    """)
    return


@app.cell
def _(gw, ingested):
    _ = ingested
    bad_text, bad_trace_id = helpdesk_answer(gw, "the display shows ERR-4711",
                                             mode="vector", slow_s=0.0)
    bad_trace = traces.get_trace(gw.store, bad_trace_id)
    _retriever = next(s for s in bad_trace.spans if s.kind == "RETRIEVER")
    labkit.table([{"rank": i + 1, **{k: d.get(k) for k in ("id", "score", "content")}}
                  for i, d in enumerate(_retriever.documents())])
    return (bad_trace,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Exercise 7.2 · Name the culprit

    Set `retrieved_first` to the document id (a file name) the RETRIEVER span ranked
    first in `bad_trace`, and `better_mode` to a search mode (`"fts"` or `"hybrid"`) for
    which `helpdesk_answer` ranks `badges.md` first for the same question.
    """)
    return


@app.cell
def _():
    # Exercise 7.2: replace the Nones
    retrieved_first = None
    better_mode = None
    return better_mode, retrieved_first


@app.function(hide_code=True)
def check_culprit(answer, trace, rank_first):
    """Exercise 7.2: (retrieved_first, better_mode)."""
    retrieved_first, better_mode = answer
    if retrieved_first is None and better_mode is None:
        return labkit.todo("Set retrieved_first and better_mode.")
    docs = next(s for s in trace.spans if s.kind == "RETRIEVER").documents()
    if retrieved_first != docs[0].get("id"):
        return labkit.wrong(f"retrieved_first: the span's first document is not "
                            f"{retrieved_first!r}; read documents()[0]['id'].")
    if better_mode not in ("fts", "hybrid"):
        return labkit.wrong("better_mode should be 'fts' or 'hybrid'.")
    got = rank_first(better_mode)
    if got != "badges.md":
        return labkit.wrong(f"With mode={better_mode!r} the first document is {got}; try the "
                            "other one.")
    return labkit.right(f"Right: vector search put {retrieved_first} first (the codes embed "
                        f"almost alike), {better_mode} finds badges.md. Lab 4 showed why.")


@app.cell(hide_code=True)
def _(bad_trace, better_mode, gw, retrieved_first):
    def _rank_first(mode):
        _hits = retrieval.search(gw, "the display shows ERR-4711",
                                 collection="lab7_helpdesk", k=1, mode=mode)
        return Path(_hits[0].source).name if _hits else None

    ex_culprit = labkit.Exercise(
        "7.2", "Name the culprit", answer="answer_72",
        check=lambda v: check_culprit(v, bad_trace, _rank_first),
        solution=('retrieved_first = next(s for s in bad_trace.spans\n'
                  '                       if s.kind == "RETRIEVER").documents()[0]["id"]\n'
                  'better_mode = "fts"\n'
                  'answer_72 = (retrieved_first, better_mode)'),
        hints=["bad_trace.spans has one span with kind 'RETRIEVER'; .documents() lists "
               "what it found, best first.",
               "Exact codes are a job for BM25 (fts)."])
    ex_culprit.feedback((retrieved_first, better_mode), env={"bad_trace": bad_trace})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 3. Recent traces, and exporting them

    `traces.list_traces(store)` (or `workbench traces`) lists recent requests with their
    duration, span count, model and errors: the place to start from a user's complaint
    or a latency alert.
    """)
    return


@app.cell
def _(gw):
    traces.list_traces(gw.store, limit=5)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    To send spans to your observability stack as well, set an OTLP endpoint; the local
    store keeps working, and a slow or absent collector never blocks a request (export is
    bounded and drops with a count instead):

    ```toml
    # workbench.toml
    otlp_endpoint = "http://otel-collector:4318"   # Phoenix, Jaeger, Tempo, Langfuse, ...
    otlp_protocol = "http/protobuf"                # or "grpc" (extra [otlp-grpc])
    ```

    or the standard `OTEL_EXPORTER_OTLP_ENDPOINT` variable. Prompts in spans are the
    *redacted* ones the model saw: PII masking happens before tracing.

    ## Recap

    - A span per step, a trace per request; the gateway's LLM and EMBEDDING spans nest
      under your CHAIN and RETRIEVER spans automatically.
    - The waterfall shows where time goes; the RETRIEVER span shows what the model was
      given, which is where most wrong answers start.
    - One `trace_id` connects the answer, the ledger row, feedback and logs.
    - OTLP export is configuration, not code.

    ## Take it to your team

    - Wrap every pipeline step in a span before launch; record retrieved documents with
      `set_documents`.
    - Put the `trace_id` in every API response and log line.
    - Start each investigation from a trace; alert on p95 span durations, not averages.
    - The route-to-live playbook (`docs/playbooks/route-to-live.md`): "traced" is the
      stop before production.

    **Next:** Lab 8, feedback and metrics that matter.
    """)
    return


@app.cell
def test_slowest_check():
    _trace = SimpleNamespace(duration_ms=500.0, spans=[
        SimpleNamespace(name="root", parent_id=None, duration_ms=500.0),
        SimpleNamespace(name="retrieve", parent_id="r", duration_ms=40.0),
        SimpleNamespace(name="policy_check", parent_id="r", duration_ms=300.0)])
    assert check_slowest(None, _trace).todo
    assert not check_slowest("root", _trace).ok
    assert not check_slowest("retrieve", _trace).ok
    assert check_slowest("policy_check", _trace).ok
    return


@app.cell
def test_culprit_check():
    _span = SimpleNamespace(kind="RETRIEVER", documents=lambda: [{"id": "printers.md"}, {"id": "badges.md"}])
    _trace = SimpleNamespace(spans=[_span])
    _fts_wins = {"fts": "badges.md", "hybrid": "printers.md"}.get
    assert check_culprit((None, None), _trace, _fts_wins).todo
    assert not check_culprit(("badges.md", "fts"), _trace, _fts_wins).ok
    assert not check_culprit(("printers.md", "vector"), _trace, _fts_wins).ok
    assert not check_culprit(("printers.md", "hybrid"), _trace, _fts_wins).ok
    assert check_culprit(("printers.md", "fts"), _trace, _fts_wins).ok
    return


if __name__ == "__main__":
    app.run()
