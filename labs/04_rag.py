import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 4 · RAG on LanceDB")

with app.setup:
    import os
    from pathlib import Path

    import labkit
    import marimo as mo

    from workbench import retrieval
    from workbench.retrieval import ChunkingConfig, Collections, chunk_text


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # Lab 4 · RAG on LanceDB

    Retrieval-augmented generation (RAG) answers questions from *your* documents: find the
    passages that matter, put them in the prompt, and ask the model to answer from them,
    citing its sources. The workbench runs it as a service on **LanceDB**: collections,
    incremental ingestion, vector, full-text and hybrid search, and grounded answers. Every
    embedding and chat call goes through the governed gateway.

    **Learning goals**

    - Ingest a folder into a collection, and re-ingest incrementally.
    - Compare chunking strategies side by side.
    - Compare vector, full-text (BM25) and hybrid search, and know when each wins.
    - Rerank candidates through a pluggable reranker.
    - Answer with numbered citations, and inspect the table behind the collection.

    **Time:** about 45 minutes.
    """)
    return


@app.cell
def _():
    gw = labkit.connect()
    handbook = labkit.HANDBOOK  # five short Markdown pages (see labs/labkit.py)
    corpus = labkit.write_corpus(Path(gw.settings.data_dir) / "lab4-corpus", handbook)
    mo.md(f"A tiny company handbook, {len(handbook)} Markdown files in `{corpus}`. Small on "
          "purpose: every result below fits on the screen.")
    return corpus, gw, handbook


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 1. Chunking

    Documents are split into **chunks** before they are embedded: small enough that one
    chunk is about one thing (and fits the embedder, MiniLM reads 256 tokens), big enough
    to carry its context. The strategies:

    - `markdown` (default): split at headings, then paragraphs; every chunk remembers its
      heading path (`VPN > Access`), which helps both search and citations.
    - `paragraph`: split at blank lines, packing paragraphs up to `max_tokens`.
    - `fixed`: windows of `max_tokens` with `overlap` tokens shared between neighbours;
      blind to structure, a useful baseline.
    """)
    return


@app.cell
def _():
    chunk_size = labkit.slider(16, 128, 32, step=16, label="max_tokens per chunk")
    chunk_size
    return (chunk_size,)


@app.cell
def _(chunk_size, handbook):
    _rows = []
    for _strategy in ("markdown", "paragraph", "fixed"):
        _cfg = ChunkingConfig(strategy=_strategy, max_tokens=int(chunk_size.value))
        for _i, _c in enumerate(chunk_text(handbook["vpn.md"], _cfg)):
            _rows.append({"strategy": _strategy, "#": _i, "tokens": _c.n_tokens,
                          "heading": _c.heading, "text": " ".join(_c.text.split())[:70]})
    labkit.table(_rows)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Exercise 4.1 · Fixed windows

    Set `fixed_chunks` to the chunks of `handbook["expenses.md"]` with the `fixed` strategy
    and windows of at most **32** tokens (use `chunk_text` and `ChunkingConfig`).
    """)
    return


@app.cell
def _():
    # Exercise 4.1: replace None
    fixed_chunks = None
    return (fixed_chunks,)


@app.function(hide_code=True)
def crosses_heading(text):
    """True when body text comes before a heading inside one chunk."""
    body_seen = False
    for line in text.strip().splitlines():
        if line.startswith("#") and body_seen:
            return True
        body_seen = body_seen or (bool(line.strip()) and not line.startswith("#"))
    return False


@app.function(hide_code=True)
def check_fixed_chunks(value):
    """Exercise 4.1: fixed windows of at most 32 tokens covering the document."""
    if value is None:
        return labkit.todo("Set fixed_chunks to the result of chunk_text(...).")
    if not isinstance(value, list) or not value or not hasattr(value[0], "n_tokens"):
        return labkit.wrong("fixed_chunks should be the list chunk_text(...) returns.")
    biggest = max(c.n_tokens for c in value)
    if biggest > 32:
        return labkit.wrong(f"One chunk has {biggest} tokens; set max_tokens=32.")
    if "Receipts" not in " ".join(c.text for c in value):
        return labkit.wrong("These are not the chunks of expenses.md.")
    if not any(crosses_heading(c.text) for c in value):
        return labkit.wrong("Every chunk starts at a heading: that is the markdown or paragraph "
                            "strategy. Use strategy='fixed'.")
    return labkit.right(f"Right: {len(value)} windows of at most 32 tokens, and one of them "
                        "runs across the '## Receipts' heading: fixed windows are blind to "
                        "structure, which is why the default is 'markdown'.")


@app.cell(hide_code=True)
def _(fixed_chunks, handbook):
    ex_chunks = labkit.Exercise(
        "4.1", "Fixed windows", answer="fixed_chunks", check=check_fixed_chunks,
        solution=('fixed_chunks = chunk_text(handbook["expenses.md"],\n'
                  '                          ChunkingConfig(strategy="fixed", max_tokens=32))'),
        hints=["ChunkingConfig(strategy=..., max_tokens=...) describes the split.",
               "chunk_text(text, config) returns the chunks."])
    ex_chunks.feedback(fixed_chunks, env={"chunk_text": chunk_text,
                                          "ChunkingConfig": ChunkingConfig,
                                          "handbook": handbook})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 2. Ingest

    `retrieval.ingest(gw, paths, collection=...)` reads the files, chunks them, embeds the
    chunks through the gateway (`minilm-l6-v2`, offline) and writes them to a LanceDB
    table, with a full-text index. The chunking is recorded in the collection: one
    collection, one chunking. Run it again and unchanged files are skipped.
    """)
    return


@app.cell
def _(corpus, gw):
    first = retrieval.ingest(gw, [corpus], collection="lab4_handbook",
                             chunking=ChunkingConfig(strategy="markdown", max_tokens=120),
                             progress=False)
    again = retrieval.ingest(gw, [corpus], collection="lab4_handbook", progress=False)
    mo.md("**First run:**\n\n" + "\n".join(f"- {line}" for line in first.summary_lines())
          + "\n\n**Second run:**\n\n"
          + "\n".join(f"- {line}" for line in again.summary_lines()))
    return (first,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 3. Vector, full-text or hybrid?

    - **vector**: embed the query and find the nearest chunks. Finds paraphrases
      ("remote access" → VPN), but embeddings blur exact tokens such as codes and ids.
    - **fts**: BM25 full-text search over words. Exact tokens win; synonyms are missed.
    - **hybrid** (default): both, fused by reciprocal rank (RRF). Its scores are rank-based
      (`1/(60+rank)` summed), so compare ranks, not score values.
    """)
    return


@app.cell
def _():
    query_box = labkit.text_area("ERR-4711", label="query")
    query_box
    return (query_box,)


@app.cell
def _(first, gw, query_box):
    _ = first  # search after the collection exists
    _rows = []
    for _mode in ("vector", "fts", "hybrid"):
        for _h in retrieval.search(gw, query_box.value, collection="lab4_handbook", k=2,
                                   mode=_mode):
            _rows.append({"mode": _mode, "rank": _h.rank, "source": Path(_h.source).name,
                          "heading": _h.heading, "score": round(_h.score, 4)})
    labkit.table(_rows)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    Try `ERR-4712`, then a paraphrase such as *how often do I need a new password for
    remote access?*, then *can I take pictures of my receipts?*

    ### Exercise 4.2 · Which mode tells codes apart?

    Measure, do not guess. For the queries `ERR-4711` and `ERR-4712`, search the
    `lab4_handbook` collection with `k=2` in each mode and compute how far ahead the top
    hit is: the **relative margin** `(score of #1 − score of #2) / score of #1` (1 when a
    mode returns a single hit). Set `margins_by_mode` to a dict of the margin per mode,
    averaged over the two queries: `{"vector": ..., "fts": ..., "hybrid": ...}`. The check
    measures the same and tells you which mode keeps the codes apart.
    """)
    return


@app.cell
def _():
    # Exercise 4.2: replace None with {"vector": ..., "fts": ..., "hybrid": ...}
    margins_by_mode = None
    return (margins_by_mode,)


@app.function(hide_code=True)
def check_margins(value, measured):
    """Exercise 4.2: the learner's measured margins match the check's own measurement."""
    if value is None:
        return labkit.todo("Set margins_by_mode to a dict: mode -> average relative margin.")
    if not isinstance(value, dict):
        return labkit.wrong(f"margins_by_mode should be a dict, not {type(value).__name__}.")
    missing = sorted(set(measured) - set(value))
    if missing:
        return labkit.wrong(f"Give a margin for every mode; missing: {', '.join(missing)}.")
    for mode, expected in measured.items():
        got = value[mode]
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return labkit.wrong(f"The {mode} margin should be a number, not {got!r}.")
        if abs(got - expected) > 0.01:
            # The measured value stays hidden: the exercise is to measure it.
            return labkit.wrong(f"Your {mode} margin ({got:.3f}) is not what search returns: "
                                "compute (score #1 - score #2) / score #1 for each code, "
                                "then average the two.")
    best = max(measured, key=measured.get)
    shown = ", ".join(f"{m} {v:.0%}" for m, v in measured.items())
    why = (" Exact tokens are what BM25 is for; hybrid keeps that strength and adds the "
           "paraphrases vector search finds." if best == "fts" else "")
    return labkit.right(f"Right ({shown}): {best} tells the codes apart best.{why}")


@app.cell(hide_code=True)
def _(first, gw, margins_by_mode):
    _ = first

    def _measure():
        # Private to this cell (marimo: leading underscore), so the answer cannot call it.
        out = {}
        for mode in ("vector", "fts", "hybrid"):
            total = 0.0
            for code in ("ERR-4711", "ERR-4712"):
                hits = retrieval.search(gw, code, collection="lab4_handbook", k=2, mode=mode)
                total += 1.0 if len(hits) < 2 else (hits[0].score - hits[1].score) / hits[0].score
            out[mode] = total / 2
        return out

    ex_mode = labkit.Exercise(
        "4.2", "Which mode tells codes apart?", answer="margins_by_mode",
        check=lambda v: check_margins(v, _measure()),
        solution=(
            "def _margin(mode, code):\n"
            '    hits = retrieval.search(gw, code, collection="lab4_handbook", k=2, mode=mode)\n'
            "    if len(hits) < 2:\n"
            "        return 1.0\n"
            "    return (hits[0].score - hits[1].score) / hits[0].score\n"
            "\n"
            'margins_by_mode = {m: (_margin(m, "ERR-4711") + _margin(m, "ERR-4712")) / 2\n'
            '                   for m in ("vector", "fts", "hybrid")}'),
        hints=["retrieval.search(gw, query, collection=..., k=2, mode=...) returns hits with "
               ".score; the query box above shows the same numbers.",
               "Vector scores are cosine similarities: two codes that differ in one digit "
               "embed almost the same."])
    ex_mode.feedback(margins_by_mode, env={"gw": gw, "retrieval": retrieval})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 4. Reranking

    Search returns candidates fast; a **reranker** reorders them with a slower, more
    careful judgement (a cross-encoder, or an LLM). Rerankers are a seam: anything with
    `rerank(query, hits) -> hits` plugs in. `retrieval.GatewayReranker(gw)` asks a chat
    model through the gateway to grade each candidate; with the tiny embedded model the
    grades are close to noise and cost about a second each, so here is a cheap rule-based
    one that shows the mechanics: it prefers chunks whose *heading* shares a word with the
    question.
    """)
    return


@app.class_definition
class HeadingReranker:
    """Stable re-sort: chunks whose heading shares a word with the query come first."""

    def rerank(self, query, hits):
        words = {w.strip("?.,!").lower() for w in query.split() if len(w) > 3}
        return sorted(hits, key=lambda h: -len(words & set(h.heading.lower().split())))


@app.cell
def _(first, gw):
    _ = first
    _q = "what should I keep for receipts after an expense?"
    _plain = retrieval.search(gw, _q, collection="lab4_handbook", k=3, mode="vector")
    _reranked = retrieval.search(gw, _q, collection="lab4_handbook", k=3, mode="vector",
                                 reranker=HeadingReranker())
    labkit.table([{"rank": i + 1, "vector only": f"{Path(a.source).name} · {a.heading}",
                   "reranked": f"{Path(b.source).name} · {b.heading}"}
                  for i, (a, b) in enumerate(zip(_plain, _reranked, strict=False))])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 5. Grounded answers with citations

    `retrieval.ask(gw, question, collection=...)` searches, keeps sources above a
    similarity floor (no relevant source: it says so instead of asking the model), builds
    a prompt with numbered sources, and asks the model to answer from them and cite `[n]`.
    The answer carries its `trace_id` and which sources it cited.
    """)
    return


@app.cell
def _(first, gw):
    _ = first
    grounded = retrieval.ask(gw, "How many days of paid leave do I get?",
                             collection="lab4_handbook", max_tokens=48)
    labkit.table([{"n": s.n, "cited": "yes" if s.cited else "", "source": Path(s.source).name,
                   "heading": s.heading, "similarity": s.similarity}
                  for s in grounded.sources])
    return (grounded,)


@app.cell(hide_code=True)
def _(grounded):
    mo.md(f"""
    **Answer:** {grounded.answer or "(empty)"}

    The sources are right; the tiny model's wording may not be. That split is the point of
    lab 6b: evaluate retrieval (did we find the passage?) and generation (did the model use
    it?) separately. An off-topic question gets no sources and a plain "I don't know".
    """)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Exercise 4.3 · Ask the handbook

    Set `expense_answer` to the `Answer` for *"When are expense reports due?"* from the
    `lab4_handbook` collection (`max_tokens=48` keeps it quick).
    """)
    return


@app.cell
def _():
    # Exercise 4.3: replace None
    expense_answer = None
    return (expense_answer,)


@app.function(hide_code=True)
def check_expense_answer(value, ledger_rows):
    """Exercise 4.3: a grounded Answer of a real ask (in the ledger) whose top source is
    expenses.md."""
    if value is None:
        return labkit.todo("Set expense_answer to the result of retrieval.ask(...).")
    if not isinstance(value, retrieval.Answer):
        return labkit.wrong(f"expense_answer should be an Answer, not {type(value).__name__}.")
    if not labkit.made_by_gateway(value, ledger_rows):
        return labkit.wrong("This answer's trace is not in the usage ledger: call "
                            "retrieval.ask(gw, ...), do not build the Answer by hand.")
    if not value.grounded or not value.sources:
        return labkit.wrong("No sources were found: did you use collection='lab4_handbook'?")
    names = [Path(s.source).name for s in value.sources]
    if names[0] != "expenses.md":
        return labkit.wrong(f"The top source is {names[0]}, not expenses.md: check the question.")
    said = "the 5th" in value.answer or "5th" in value.answer
    return labkit.right("Right: the deadline passage is source [1]" + (
        ", and the model even quoted it." if said else
        ". The model's sentence may still be off: that is generation, not retrieval."))


@app.cell(hide_code=True)
def _(expense_answer, first, gw):
    _ = first
    ex_ask = labkit.Exercise(
        "4.3", "Ask the handbook", answer="expense_answer",
        check=lambda v: check_expense_answer(v, labkit.ledger_lookup(gw)),
        solution=('expense_answer = retrieval.ask(gw, "When are expense reports due?",\n'
                  '                                collection="lab4_handbook", max_tokens=48)'),
        hints=["retrieval.ask(gw, question, collection=..., max_tokens=...)."])
    ex_ask.feedback(expense_answer, env={"gw": gw, "retrieval": retrieval})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 6. Inspect the table

    A collection is a LanceDB table you can open directly: one row per chunk with its
    text, vector, source, heading and ingestion facts. The collection's chunking and
    embedding model are recorded in its schema, so a mismatched re-ingest is refused.
    """)
    return


@app.cell
def _(first, gw):
    _ = first
    _stats = Collections.for_settings(gw.settings).stats("lab4_handbook")
    labkit.table([{k: _stats[k] for k in ("name", "chunks", "documents", "embed_model",
                                          "dim", "indices", "uri")}])
    return


@app.cell
def _(first, gw):
    _ = first
    _rows = (Collections.for_settings(gw.settings).open("lab4_handbook").search()
             .select(["source", "heading", "chunk_index", "text"]).limit(4).to_list())
    for _r in _rows:
        _r["source"] = Path(_r["source"]).name
        _r["text"] = " ".join(_r["text"].split())[:60]
    labkit.table(_rows)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## Recap

    - Chunking decides what a "passage" is: `markdown` keeps headings, `fixed` is the blind
      baseline; one collection has one chunking.
    - Ingestion is incremental: unchanged files cost nothing on the next run.
    - Vector search finds meaning, BM25 finds exact tokens, hybrid (RRF) gets both; RRF
      scores are ranks in disguise.
    - Rerankers are a seam: a cross-encoder or a real model through the gateway.
    - `retrieval.ask` answers from numbered sources, refuses without relevant sources, and
      returns a `trace_id`.

    ## Take it to your team

    - Start with hybrid search and the `markdown` strategy; change one thing at a time and
      measure it with an eval (labs 6 and 6b), not by eye.
    - Keep a collection per corpus and chunking; re-ingest on a schedule or in CI
      (`workbench ingest PATH --collection C`).
    - For more than one machine, point `lancedb_uri` at object storage (see
      the scaling playbook, `docs/playbooks/scaling.md`); the code stays the same.
    - Where RAG sits on the road to production: the
      route-to-live playbook (`docs/playbooks/route-to-live.md`).

    **Next:** Lab 5, testing GenAI.
    """)
    return


@app.cell
def test_fixed_chunks_check():
    _text = ("# Expenses\n\n## Deadlines\n\nExpense reports are due on the 5th of each month. "
             "Late reports are paid the month after.\n\n## Receipts\n\nKeep receipts for "
             "seven years. Photos of receipts are accepted.\n")
    assert check_fixed_chunks(None).todo
    assert not check_fixed_chunks("chunks").ok
    assert not check_fixed_chunks(chunk_text(_text, ChunkingConfig(max_tokens=120))).ok
    assert check_fixed_chunks(
        chunk_text(_text, ChunkingConfig(strategy="fixed", max_tokens=32))).ok
    return


@app.cell
def test_margins_check():
    _measured = {"vector": 0.05, "fts": 0.6, "hybrid": 0.02}
    assert check_margins(None, _measured).todo
    assert not check_margins("fts", _measured).ok  # the old three-way guess
    assert not check_margins({"vector": 0.05, "fts": 0.6}, _measured).ok
    assert not check_margins({"vector": 0.5, "fts": 0.6, "hybrid": 0.02}, _measured).ok
    assert not check_margins({"vector": 0.05, "fts": True, "hybrid": 0.02}, _measured).ok
    _ok = check_margins({"vector": 0.051, "fts": 0.6, "hybrid": 0.02}, _measured)
    assert _ok.ok and "fts tells the codes apart" in _ok.message
    return


@app.cell
def test_expense_answer_check():
    def _answer(sources, grounded=True):
        return retrieval.Answer("q", "Due on the 5th [1].", [
            retrieval.Source(n=i + 1, source=s, title="", heading="", score=0.0,
                             similarity=0.5, snippet="") for i, s in enumerate(sources)],
            "0" * 32, model="smollm2-135m", grounded=grounded, usage={"completion_tokens": 9})

    def _ledger(trace_id):  # the ask with trace 0… was made through the gateway
        return [{"outcome": "ok", "model": "smollm2-135m", "tokens_out": 9}] \
            if trace_id == "0" * 32 else []

    _expenses = _answer([os.path.join("x", "expenses.md")])
    assert check_expense_answer(None, _ledger).todo
    assert not check_expense_answer("Due on the 5th", _ledger).ok
    assert not check_expense_answer(_answer([], grounded=False), _ledger).ok
    assert not check_expense_answer(_answer([os.path.join("x", "vpn.md")]), _ledger).ok
    _expenses_by_hand = retrieval.Answer("q", "Due on the 5th [1].", _expenses.sources,
                                         "f" * 32, grounded=True)
    assert not check_expense_answer(_expenses_by_hand, _ledger).ok
    assert check_expense_answer(_expenses, _ledger).ok
    return


if __name__ == "__main__":
    app.run()
