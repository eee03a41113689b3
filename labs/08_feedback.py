import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 8 · Feedback and metrics that matter")

with app.setup:
    import os
    from pathlib import Path

    import labkit
    import marimo as mo
    from fastapi.testclient import TestClient

    from workbench import evals, retrieval
    from workbench.observability import feedback, metrics
    from workbench.retrieval import ChunkingConfig
    from workbench.service import ServiceSettings, create_service_app

    LIVE_PAGE = {}  # the optional live chat page: one server per lab session


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # Lab 8 · Feedback and metrics that matter

    Tracing (lab 7) tells you what the system did. **Feedback** tells you whether it
    helped. Users say so explicitly (thumbs, a comment) now and then, and implicitly all
    the time: they copy an answer they can use, regenerate one they cannot, fix it by
    hand, or ask again in other words. Every signal is keyed by the answer's `trace_id`,
    so it joins the trace, the ledger row and the logs.

    **Learning goals**

    - Collect feedback with the service's chat widget: thumbs, copy, retry, edit, through
      the real `POST /feedback` endpoint.
    - Derive an implicit signal (a rephrased question) from behaviour, in code.
    - Measure conversations: sessions, an escalate-to-a-human signal, containment rate.
    - Tell a product metric (did answers help?) from a vanity metric (how much traffic?).
    - Turn feedback into golden data for evals: edits are reference answers.

    **Time:** about 30 minutes.
    """)
    return


@app.cell
def _():
    # A throwaway data dir, in class and in CI: the numbers below count this lab's
    # traffic only, not the requests of earlier labs in .workbench/. In CI mode, one
    # llama.cpp thread: on a shared CI machine two threads wait on each other (measured
    # 4x slower than one when other jobs hold the cores).
    gw = labkit.connect(data_dir=os.path.join(labkit.scratch_dir(), "data"),
                        **({"n_threads": 1} if labkit.ci_mode() else {}))
    _corpus = labkit.write_corpus(Path(gw.settings.data_dir) / "lab8-corpus", {
        "badges.md": labkit.HANDBOOK["badges.md"],
        "holidays.md": labkit.HANDBOOK["holidays.md"],
        "printers.md": labkit.HANDBOOK["printers.md"],
        "vpn.md": "# VPN\n\n## Access\n\nConnect from home with the VPN client. The VPN "
                  "password rotates every 90 days.\n\n## Travel\n\nSome countries block "
                  "VPNs: ask IT before you travel.\n",
    })
    _ingested = retrieval.ingest(gw, [_corpus], collection="lab8_helpdesk",
                                 chunking=ChunkingConfig(max_tokens=120), progress=False)
    # The production service, in this process: the same app `workbench serve` runs.
    # auth=False is for a lab on loopback only (requests act as the local owner).
    service = create_service_app(gw, ServiceSettings(
        collection="lab8_helpdesk", title="Lab 8 helpdesk", k=2, max_tokens=24, auth=False,
        feedback_read=True, warmup=False))
    client = TestClient(service)
    mo.md(f"A four-page helpdesk corpus ({_ingested.total_chunks} chunks in "
          "`lab8_helpdesk`) and the workbench service around it, called through a FastAPI "
          "`TestClient`: real HTTP requests and responses, no network port.")
    return client, gw, service


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 1. The chat widget

    The service's chat page (`GET /`, in `workbench/service/static/`) shows every answer
    with its sources and trace id, and five controls. Each one sends one small JSON body
    to `POST /feedback`, keyed by the answer's `trace_id`:

    | control | body sent | signal |
    | --- | --- | --- |
    | Helpful / Not helpful | `{"kind": "thumbs", "value": true}` | explicit; rare |
    | Copy answer | `{"kind": "copy", "value": true}` | implicit: usable |
    | Regenerate | `{"kind": "retry", "value": true}` | implicit: not usable |
    | Edit answer → Save | `{"kind": "edit", "value": "<text>"}` | implicit: the fix |

    Thumbs may carry a `comment`; Regenerate then asks the question again; an edit stores
    the user's text and a diff against the model's answer, and is the most valuable
    signal of all: the user wrote the answer they wanted. Most users never click thumbs.

    The store keeps **one row per answer per kind per user**: clicking thumbs-up three
    times updates the row (`occurrences` counts the clicks), and a later thumbs-down
    replaces an earlier thumbs-up. So signals are never double counted.

    Want to click the buttons yourself? Turn on the live page: the same app on a loopback
    port in this process. (It only opens when this notebook runs on your own machine; on
    a remote host, forward the port.)
    """)
    return


@app.cell
def _():
    page_switch = labkit.dropdown(["off", "on"], "off", label="live chat page")
    page_switch
    return (page_switch,)


@app.function(hide_code=True)
def serve_chat_page(service_app, on):
    """Serve ``service_app`` with uvicorn on a free loopback port, in a daemon thread.
    Returns the page's URL, or None when switched off."""
    import socket
    import threading

    import uvicorn

    running = LIVE_PAGE.get("server")
    if running is not None and (not on or LIVE_PAGE.get("app") is not service_app):
        running.should_exit = True
        LIVE_PAGE.clear()
    if not on:
        return None
    if "url" not in LIVE_PAGE:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(service_app, log_level="warning"))
        threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
        LIVE_PAGE.update(server=server, app=service_app,
                         url=f"http://127.0.0.1:{sock.getsockname()[1]}/")
    return LIVE_PAGE["url"]


@app.cell
def _(page_switch, service):
    if labkit.ci_mode():
        _shown = labkit.callout("CI mode: no browser here; the next section sends what the "
                                "widget sends.")
    else:
        _url = serve_chat_page(service, page_switch.value == "on")
        _shown = (labkit.Html(f"<p>The chat page: <a href='{_url}' target='_blank'>{_url}</a>"
                              " (it opens in a new tab: the page forbids being framed). Ask "
                              "<i>What does ERR-4711 mean?</i>, then try the buttons and "
                              "read the feedback log under the answer.</p>", _url)
                  if _url else labkit.callout("Live page off: switch it on above to try "
                                              "the widget in your browser."))
    _shown
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 2. A morning of traffic

    Eight questions from five colleagues, replayed through the real endpoints: `POST /ask`
    for each question, then `POST /feedback` with exactly the bodies the widget sends for
    what each user did. The clock (`t`, seconds into the morning) is scripted; the answers
    and the feedback rows are real. `source_id` is the user, so each user has their own
    row per answer and kind.
    """)
    return


@app.cell
def _():
    MORNING = [
        # user, t (s), question, what the user did with the answer
        ("ana", 0, "What does ERR-4711 mean?",
         [{"kind": "edit", "value": "ERR-4711 means the badge reader lost its network "
                                    "connection: power-cycle it."}]),
        ("ana", 25, "Where do I book leave?",
         [{"kind": "edit", "value": "Book leave at least two weeks ahead in the HR portal."}]),
        ("ben", 40, "How many days of paid leave do I get?",
         [{"kind": "copy", "value": True}, {"kind": "retry", "value": True}]),
        ("carla", 300, "How often does the VPN password rotate?",
         [{"kind": "copy", "value": True}, {"kind": "thumbs", "value": True}]),
        ("dan", 600, "Who do I call when the printer is broken?", []),
        ("dan", 630, "printer broken, who to call?", []),
        ("erik", 640, "My printer is broken: who do I call?",
         [{"kind": "thumbs", "value": False,
           "comment": "The handbook does not say who to call."}]),
        ("carla", 1200, "How often does the VPN password change?",
         [{"kind": "copy", "value": True}]),
    ]
    return (MORNING,)


@app.cell
def _(MORNING, client):
    events = []  # what the service saw: who asked what, when, and the answer's trace id
    for _user, _t, _question, _signals in MORNING:
        _resp = client.post("/ask", json={"question": _question})
        _resp.raise_for_status()
        _answer = _resp.json()
        events.append({"user": _user, "t": _t, "question": _question,
                       "trace_id": _answer["trace_id"], "answer": _answer["answer"]})
        for _signal in _signals:  # what the widget posts when the user clicks
            _fb = client.post("/feedback", json={"trace_id": _answer["trace_id"],
                                                 "source_id": _user, **_signal})
            _fb.raise_for_status()
    answer_ids = [e["trace_id"] for e in events]
    labkit.table([{k: e[k] for k in ("user", "t", "question", "answer")} for e in events])
    return answer_ids, events


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    The answers come from the tiny embedded model; the reactions are scripted to fit the
    answers it usually gives (yours may differ a little; on the live page, react to what
    you read). Now the rules of the endpoint, on carla's first answer: a user
    double-clicking, a client re-sending after a timeout (same `idempotency_id`), a bad
    value, and a trace id this service never answered.
    """)
    return


@app.cell
def _(client, events):
    _tid = events[3]["trace_id"]
    _attempts = [
        ("carla clicks thumbs-up again", {"trace_id": _tid, "source_id": "carla",
                                        "kind": "thumbs", "value": True}),
        ("... and again", {"trace_id": _tid, "source_id": "carla", "kind": "thumbs",
                           "value": True}),
        ("a rating, sent with an idempotency id", {
            "trace_id": _tid, "source_id": "carla", "kind": "rating", "value": 4,
            "idempotency_id": "carla-rating-1"}),
        ("the same request re-sent", {
            "trace_id": _tid, "source_id": "carla", "kind": "rating", "value": 4,
            "idempotency_id": "carla-rating-1"}),
        ("a thumbs value that is not a boolean", {"trace_id": _tid, "kind": "thumbs",
                                                  "value": "maybe"}),
        ("a trace id nobody was given", {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                                         "kind": "thumbs", "value": True}),
    ]
    _rows = []
    for _what, _body in _attempts:
        _r = client.post("/feedback", json=_body)
        _data = _r.json()
        _rows.append({"request": _what, "HTTP": _r.status_code,
                      "result": _data.get("status") or _data["error"]["message"][:70]})
    labkit.table(_rows)
    return


@app.cell
def _(answer_ids, client):
    _ = answer_ids  # after the morning's traffic
    # GET /feedback lists everyone's comments and edits: the service serves it only with
    # feedback_read=True (an internal service, or this lab).
    labkit.table(client.get("/feedback", params={"limit": 100}).json(),
                 columns=["trace_id", "kind", "value", "comment", "source_id", "occurrences",
                          "linked"])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    Three thumbs-up clicks by carla are one row with `occurrences` 3; the re-sent rating
    was a `duplicate`; bad input and unknown trace ids are refused with a message that
    says what to fix (and never reveal which trace ids exist). `linked` says the answer's
    trace is in the store: feedback that arrives before its trace is accepted and linked
    later.

    ## 3. Implicit signals from behaviour

    The widget sees button clicks. It does not see dan give up on an answer and ask again
    in other words 30 seconds later; the service does, in its request log. That is an
    implicit **retry**, and code can record it through the same endpoint, with
    `source_kind: "code"` so it is never mistaken for a user's click.

    A rephrase is *the same user* asking a *similar* question *within a short window*
    of their previous question. Similarity here is a simple word overlap (below); in
    production, compare embeddings (lab 5) instead.
    """)
    return


@app.function
def question_words(question):
    """Lower-case words of four letters or more (drops 'the', 'who', 'do', ...)."""
    words = (w.strip("?,.:;!'\"").lower() for w in question.split())
    return {w for w in words if len(w) >= 4}


@app.function
def similar(a, b, at_least=0.5):
    """Two questions share at least half the words of the shorter one."""
    wa, wb = question_words(a), question_words(b)
    return bool(wa and wb) and len(wa & wb) / min(len(wa), len(wb)) >= at_least


@app.cell
def _(events):
    RETRY_WINDOW_S = 60
    labkit.table([{"#": i + 1, "user": e["user"], "t": e["t"], "question": e["question"],
                   "similar to": ", ".join(f"#{j + 1}" for j, o in enumerate(events)
                                           if o is not e and similar(o["question"],
                                                                     e["question"]))}
                  for i, e in enumerate(events)])
    return (RETRY_WINDOW_S,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Exercise 8.1 · Spot the rephrased questions

    Complete `implicit_retries(events, window_s)`: return the **set of trace ids of the
    answers users gave up on**: an answer is given up on when the *same user's next*
    question comes at most `window_s` seconds later and is `similar` to it. Each event
    is a dict with `user`, `t`, `question` and `trace_id`. Mind the look-alikes in the
    table: a similar question from *another* user, a similar question a quarter of an
    hour later, and a different question asked quickly.
    """)
    return


@app.cell
def _(RETRY_WINDOW_S):
    # Exercise 8.1: complete the function
    def implicit_retries(events, window_s=RETRY_WINDOW_S):
        return None

    return (implicit_retries,)


@app.function(hide_code=True)
def find_implicit_retries(events, window_s):
    """The reference: per user, an answer followed by a similar question within the window."""
    flagged, last = set(), {}
    for e in sorted(events, key=lambda e: e["t"]):
        prev = last.get(e["user"])
        if prev and e["t"] - prev["t"] <= window_s and similar(prev["question"], e["question"]):
            flagged.add(prev["trace_id"])
        last[e["user"]] = e
    return flagged


@app.function(hide_code=True)
def rephrase_cases():
    """Hand-made events with a known answer (the check runs them as well as the morning)."""
    def ev(tid, user, t, q):
        return {"trace_id": tid, "user": user, "t": t, "question": q}

    return [
        ("the basic case", [ev("a1", "u", 0, "How do I reset my VPN password?"),
                            ev("a2", "u", 20, "reset VPN password how")], 60, {"a1"}),
        ("two users", [ev("b1", "u", 0, "How do I reset my VPN password?"),
                       ev("b2", "v", 5, "How do I reset my VPN password?")], 60, set()),
        ("outside the window", [ev("c1", "u", 0, "How do I reset my VPN password?"),
                                ev("c2", "u", 61, "reset VPN password how")], 60, set()),
        ("a different question", [ev("d1", "u", 0, "How do I reset my VPN password?"),
                                  ev("d2", "u", 10, "Where is the printer?")], 60, set()),
        ("another window", [ev("e1", "u", 0, "How do I reset my VPN password?"),
                            ev("e2", "u", 20, "reset VPN password how")], 10, set()),
        ("events out of order", [ev("f2", "u", 30, "reset VPN password how"),
                                 ev("f1", "u", 0, "How do I reset my VPN password?")], 60,
         {"f1"}),
    ]


@app.function(hide_code=True)
def check_implicit_retries(fn, events, window_s):
    """Exercise 8.1: the function finds exactly the given-up answers, here and on the cases."""
    if fn is None or fn(events, window_s) is None:
        return labkit.todo("Complete implicit_retries so that it returns a set of trace ids.")
    got = fn(events, window_s)
    if not isinstance(got, set | frozenset | list | tuple):
        return labkit.wrong(f"implicit_retries should return a set of trace ids, not "
                            f"{type(got).__name__}.")
    for label, case, window, want in rephrase_cases():
        found = set(fn(case, window))
        if found != want:
            if label == "two users":
                return labkit.wrong("Questions from different users are not retries: compare "
                                    "each question with the same user's previous one.")
            if label in ("outside the window", "another window"):
                return labkit.wrong("An answer is only given up on if the next question comes "
                                    "within window_s seconds (use the parameter).")
            if label == "a different question":
                return labkit.wrong("A quick follow-up about something else is not a retry: "
                                    "use similar(previous, next).")
            if label == "events out of order":
                return labkit.wrong("Sort the events by t first: logs do not always arrive in "
                                    "order.")
            if found and not found & want:
                return labkit.wrong("Flag the earlier answer (the one given up on), not the "
                                    "question that replaced it.")
            return labkit.wrong(f"On {label} you found {sorted(found)}, expected {sorted(want)}.")
    want = find_implicit_retries(events, window_s)
    if set(got) != want:
        return labkit.wrong(f"On the morning you found {len(set(got))} trace ids; there are "
                            f"{len(want)} answers given up on.")
    who = ", ".join(e["user"] for e in events if e["trace_id"] in want)
    return labkit.right(f"Right: {len(want)} answer(s) given up on ({who}). No button was "
                        "clicked for it; only behaviour says so.")


@app.cell(hide_code=True)
def _(RETRY_WINDOW_S, events, implicit_retries):
    ex_retries = labkit.Exercise(
        "8.1", "Spot the rephrased questions", answer="implicit_retries",
        check=lambda fn: check_implicit_retries(fn, events, RETRY_WINDOW_S),
        solution=("def implicit_retries(events, window_s=RETRY_WINDOW_S):\n"
                  "    flagged, last = set(), {}\n"
                  "    for e in sorted(events, key=lambda e: e['t']):\n"
                  "        prev = last.get(e['user'])\n"
                  "        if (prev and e['t'] - prev['t'] <= window_s\n"
                  "                and similar(prev['question'], e['question'])):\n"
                  "            flagged.add(prev['trace_id'])\n"
                  "        last[e['user']] = e\n"
                  "    return flagged"),
        hints=["Walk the events in time order and remember each user's last event in a "
               "dict keyed by user.",
               "For each event, look at the same user's previous one: close enough in time "
               "(e['t'] - prev['t'] <= window_s) and similar(prev['question'], "
               "e['question'])? Then flag prev['trace_id']."])
    ex_retries.feedback(implicit_retries, env={"RETRY_WINDOW_S": RETRY_WINDOW_S,
                                               "similar": similar})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    The service records what it found as feedback from code (the reference
    implementation runs here, so the rest of the lab works whatever your answer):
    """)
    return


@app.cell
def _(RETRY_WINDOW_S, client, events):
    implicit = sorted(find_implicit_retries(events, RETRY_WINDOW_S))
    for _tid in implicit:
        client.post("/feedback", json={"trace_id": _tid, "kind": "retry", "value": True,
                                       "source_kind": "code", "source_id": "rephrase-detector",
                                       "metadata": {"window_s": RETRY_WINDOW_S}}
                    ).raise_for_status()
    labkit.table([{"trace_id": e["trace_id"], "user": e["user"], "question": e["question"]}
                  for e in events if e["trace_id"] in implicit])
    return (implicit,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 4. Vanity metrics and product metrics

    A **vanity metric** goes up whether or not the feature helps: requests served,
    tokens generated, feedback events received, thumbs-up *clicks*. Traffic can grow
    while answers get worse (people retry!). A **product metric** is a rate per answer
    that moves when answers get better or worse: the share of answers users accepted,
    retried or had to fix. Here is the vanity dashboard, from the service's Prometheus
    endpoint (`GET /metrics`) and the stored feedback:
    """)
    return


@app.cell
def _(client, implicit):
    _ = implicit  # after the implicit retries were recorded
    fb_rows = client.get("/feedback", params={"limit": 1000}).json()
    _totals = {}
    for _line in client.get("/metrics").text.splitlines():
        if _line and not _line.startswith("#"):
            _name = _line.split("{")[0].split(" ")[0]
            _totals[_name] = _totals.get(_name, 0.0) + float(_line.rsplit(" ", 1)[1])
    labkit.table([
        {"vanity metric": "HTTP requests served",
         "value": int(_totals["workbench_service_requests_total"])},
        {"vanity metric": "model tokens used",
         "value": int(_totals.get("workbench_service_tokens_total", 0))},
        {"vanity metric": "feedback events received",
         "value": sum(r["occurrences"] for r in fb_rows)},
        {"vanity metric": "thumbs-up clicks",
         "value": sum(r["occurrences"] for r in fb_rows
                      if r["kind"] == "thumbs" and r["value"] is True)},
    ])
    return (fb_rows,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    Big numbers, and none of them says whether anyone was helped. The library computes
    the product rates per day, model and prompt version: `metrics.product_metrics(store)`
    (the feedback dashboard notebook template plots them over time). Rates are per
    answered trace; the thumbs-up rate is per thumbs *given*, never mixed with implicit
    signals.
    """)
    return


@app.cell
def _(fb_rows, gw):
    _ = fb_rows
    metrics.product_metrics(gw.store, by=("model",))
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    None of these rates alone says *the answer was good enough to use*. Define that as a
    product metric of your own.

    ### Exercise 8.2 · Answer acceptance rate

    Complete `acceptance_rate(answer_ids, rows)`: the share of **answers served**
    (`answer_ids`, the trace ids) that were **accepted**: they got a copy or a
    thumbs-up, and no retry, no edit and no thumbs-down. `rows` are feedback rows as
    `GET /feedback` returns them (`trace_id`, `kind`, `value`, ...; a thumbs row's
    `value` is `True` or `False`). Count answers, not rows; answers nobody reacted to
    count too.
    """)
    return


@app.cell
def _():
    # Exercise 8.2: complete the function
    def acceptance_rate(answer_ids, rows):
        return None

    return (acceptance_rate,)


@app.function(hide_code=True)
def reference_acceptance(answer_ids, rows):
    """The reference: accepted answers / answers served."""
    ids = set(answer_ids)
    good, bad = set(), set()
    for r in rows:
        if r["trace_id"] not in ids:
            continue
        if r["kind"] == "copy" or (r["kind"] == "thumbs" and r["value"] is True):
            good.add(r["trace_id"])
        if r["kind"] in ("retry", "edit") or (r["kind"] == "thumbs" and r["value"] is False):
            bad.add(r["trace_id"])
    return len(good - bad) / len(ids) if ids else 0.0


@app.function(hide_code=True)
def acceptance_cases():
    """Hand-made answers and rows with a known acceptance rate."""
    def row(tid, kind, value=True):
        return {"trace_id": tid, "kind": kind, "value": value, "occurrences": 1}

    return [
        ("a copy and a thumbs-up on one answer", ["a", "b"],
         [row("a", "copy"), row("a", "thumbs"), row("b", "comment", "meh")], 0.5),
        ("a thumbs-down", ["a", "b"], [row("a", "thumbs", False), row("b", "thumbs")], 0.5),
        ("a copy, then a retry", ["a", "b"], [row("a", "copy"), row("a", "retry"),
                                              row("b", "copy")], 0.5),
        ("a copy, then an edit", ["a", "b"], [row("a", "copy"), row("a", "edit", "fixed"),
                                              row("b", "copy")], 0.5),
        ("silent answers", ["a", "b", "c", "d"], [row("a", "copy")], 0.25),
        ("feedback on another service's answer", ["a", "b"],
         [row("a", "copy"), row("zzz", "copy")], 0.5),
    ]


@app.function(hide_code=True)
def check_acceptance(fn, answer_ids, rows):
    """Exercise 8.2: the function matches the reference here and on the hand-made cases."""
    if fn is None or fn(answer_ids, rows) is None:
        return labkit.todo("Complete acceptance_rate so that it returns a number.")
    got = fn(answer_ids, rows)
    if isinstance(got, bool) or not isinstance(got, int | float) or not 0 <= got <= 1:
        return labkit.wrong(f"acceptance_rate should return a share between 0 and 1, got "
                            f"{got!r}.")
    advice = {
        "a copy and a thumbs-up on one answer": "Count answers, not rows: an answer that "
        "was copied and thumbed up is one accepted answer (collect trace ids in a set).",
        "a thumbs-down": "A thumbs row with value False is a thumbs-down: it counts against "
        "the answer, not for it.",
        "a copy, then a retry": "An answer copied and then regenerated was not accepted: "
        "retry, edit and thumbs-down rule it out.",
        "a copy, then an edit": "An answer the user had to edit was not accepted as it was.",
        "silent answers": "Divide by the answers served (len(answer_ids)), not by the answers "
        "that got feedback: silence is most of your traffic.",
        "feedback on another service's answer": "Only count rows whose trace_id is one of "
        "answer_ids.",
    }
    for label, ids, case_rows, want in acceptance_cases():
        value = fn(ids, case_rows)
        if value is None or abs(float(value) - want) > 1e-9:
            return labkit.wrong(f"On {label}: got {value!r}, expected {want}. {advice[label]}")
    want = reference_acceptance(answer_ids, rows)
    if abs(float(got) - want) > 1e-9:
        return labkit.wrong(f"On the morning: got {got:.3f}, expected {want:.3f}.")
    return labkit.right(f"Right: {want:.0%} of the answers were accepted. That number moves "
                        "when answers improve; the request count does not care.")


@app.cell(hide_code=True)
def _(acceptance_rate, answer_ids, fb_rows):
    ex_acceptance = labkit.Exercise(
        "8.2", "Answer acceptance rate", answer="acceptance_rate",
        check=lambda fn: check_acceptance(fn, answer_ids, fb_rows),
        solution=("def acceptance_rate(answer_ids, rows):\n"
                  "    ids = set(answer_ids)\n"
                  "    good, bad = set(), set()\n"
                  "    for r in rows:\n"
                  "        if r['trace_id'] not in ids:\n"
                  "            continue\n"
                  "        if r['kind'] == 'copy' or (r['kind'] == 'thumbs' and r['value'] is True):\n"
                  "            good.add(r['trace_id'])\n"
                  "        if r['kind'] in ('retry', 'edit') or (\n"
                  "                r['kind'] == 'thumbs' and r['value'] is False):\n"
                  "            bad.add(r['trace_id'])\n"
                  "    return len(good - bad) / len(ids)"),
        hints=["Two sets of trace ids: answers with a positive signal, answers with a "
               "negative one. Accepted = positive minus negative.",
               "Thumbs rows have kind 'thumbs' whether up or down: look at r['value'].",
               "The denominator is len(set(answer_ids))."])
    ex_acceptance.feedback(acceptance_rate, env={})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    Compare it with what the rates above would have told you alone: the copy rate counts
    the answer ben copied and then regenerated; the thumbs-up rate rests on two thumbs
    for eight answers. Put the acceptance rate next to the retry and edit rates, per model
    and prompt version, and watch it when you change either. (The tiny model's rate is
    low: that is the point of lab 2's profile switch.)

    ## 5. Feedback → golden data

    The most useful feedback is an **edit**: the user wrote the answer they wanted, for
    a real question, with the trace saying which sources the model saw. That is a golden
    row with a reference, for free. A thumbs-down with a comment is a row *without* a
    reference: it goes to a review queue until someone writes one.

    `feedback.golden_rows(store, select_=...)` turns feedback into golden rows (`edit`,
    `thumbs-down`, `thumbs-up`, `rating-low`); `evals.from_feedback(rows)` validates them
    into a `GoldenDataset` (lab 6), tagging rows without a reference `needs-reference`.
    Here is everything with the default selection (edits and thumbs-down):
    """)
    return


@app.cell
def _(fb_rows, gw):
    _ = fb_rows
    _everything = evals.from_feedback(gw.store)
    labkit.table([{"question": s.question, "reference": s.reference, "tags": ", ".join(s.tags),
                   "model's answer": s.answer} for s in _everything])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Exercise 8.3 · A golden set from the edits

    Set `golden` to a `GoldenDataset` of the answers users **edited**, and only those:
    every row must have the user's edited text as its reference. (The thumbs-down row
    stays in the review queue.)
    """)
    return


@app.cell
def _():
    # Exercise 8.3: replace None
    golden = None
    return (golden,)


@app.function(hide_code=True)
def check_golden(value, edits):
    """Exercise 8.3: exactly the edited traces, each with the edit as its reference.
    ``edits`` maps trace id -> the user's edited answer."""
    if value is None:
        return labkit.todo("Set golden to the result of evals.from_feedback(...).")
    if not isinstance(value, evals.GoldenDataset):
        return labkit.wrong(f"golden should be a GoldenDataset, not {type(value).__name__}.")
    if any(not s.reference for s in value):
        return labkit.wrong("Some rows have no reference (tagged needs-reference): those are "
                            "the thumbs-down rows. Select only the edits.")
    by_trace = {s.metadata.get("trace_id"): s for s in value}
    missing = set(edits) - set(by_trace)
    if missing:
        return labkit.wrong(f"{len(missing)} edited answer(s) are missing.")
    extra = set(by_trace) - set(edits)
    if extra:
        return labkit.wrong(f"{len(extra)} row(s) are not edits (a thumbs-up answer is the "
                            "model's own text: it would only freeze today's behaviour).")
    for tid, text in edits.items():
        if by_trace[tid].reference != text:
            return labkit.wrong(f"The reference of {by_trace[tid].question!r} is not the "
                                "user's edited text.")
    return labkit.right(f"Right: {len(value)} golden rows with references written by users. "
                        "Review them before they join the eval set: users make mistakes too.")


@app.cell(hide_code=True)
def _(golden, gw):
    _edits = {r["trace_id"]: r["value"] for r in feedback.list_feedback(
        gw.store, kind="edit", limit=1000)}
    ex_golden = labkit.Exercise(
        "8.3", "A golden set from the edits", answer="golden",
        check=lambda v: check_golden(v, _edits),
        solution=('golden = evals.from_feedback(\n'
                  '    feedback.golden_rows(gw.store, select_=("edit",)))'),
        hints=["evals.from_feedback(gw.store) takes the default selection: edits and "
               "thumbs-down.",
               "feedback.golden_rows(store, select_=(...)) chooses which feedback becomes "
               "rows; from_feedback accepts those rows."])
    ex_golden.feedback(golden, env={"evals": evals, "feedback": feedback, "gw": gw})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    Close the loop: save the rows as a dataset file and score the answers users were
    given against the references they wrote. The rows carry the recorded answer, so this
    costs no model call; `string_similarity` (1 − normalised edit distance) is a cheap
    lexical metric (lab 6 has the judged ones). That score is the baseline a prompt or
    model change must beat; in CI the same file gates the live pipeline:

    ```bash
    workbench eval run lab8_from_feedback.jsonl --target rag --collection helpdesk \
        --metrics string_similarity --fail-under string_similarity=0.6
    ```

    (`workbench feedback export --select edit` writes the raw export with its feedback
    fields; `workbench eval run` converts such a file on the fly. Save a reviewed dataset,
    as here, when it is to live in git.)
    """)
    return


@app.cell
def _(gw):
    _from_edits = evals.from_feedback(feedback.golden_rows(gw.store, select_=("edit",)),
                                      name="lab8_from_feedback")
    _from_edits.save(Path(gw.settings.data_dir) / "lab8_from_feedback.jsonl")
    evals.evaluate(_from_edits, metrics=["string_similarity"], gateway=gw, save=False)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 6. Conversations and the containment rate

    A helpdesk assistant is a conversation, not a single answer. `POST /ask` returns a
    `session_id`; send it back with the next question and the model sees the earlier
    turns (trimmed to its context by one rule: the system prompt and the newest *whole*
    turns that fit, never half a turn). The chat page keeps the conversation for you, and
    it has a **Talk to a human** button: it posts an `escalate` signal for the session.

    For a support bot the product metric that matters is the **containment rate**: the
    share of conversations that ended *without* asking for a human. A conversation, not
    an answer, is the unit: a user who asked three times and then gave up is one failed
    conversation, not two good answers and a bad one. The platform's own traffic (probes,
    eval runs, judges) is marked (`x-workbench-traffic`) and never counted.

    An afternoon of conversations, through the real endpoints:
    """)
    return


@app.cell
def _(client):
    AFTERNOON = [
        # user, the questions of one conversation, did they ask for a human at the end?
        ("ana", ["How many days of paid leave do I get?", "Where do I book leave?"], False),
        ("ben", ["What does ERR-4711 mean?", "What should I do when ERR-4711 shows?"], True),
        ("carla", ["How often does the VPN password rotate?"], False),
    ]
    conversations = []
    for _user, _questions, _escalate in AFTERNOON:
        _sid, _ids = None, []
        for _q in _questions:
            _body = {"question": _q, **({"session_id": _sid} if _sid else {})}
            _r = client.post("/ask", json=_body)
            _r.raise_for_status()
            _sid = _r.json()["session_id"]
            _ids.append(_r.json()["trace_id"])
        if _escalate:  # what the "Talk to a human" button posts
            client.post("/feedback", json={"session_id": _sid, "kind": "escalate",
                                           "source_id": _user}).raise_for_status()
        conversations.append({"user": _user, "session_id": _sid, "trace_ids": _ids,
                              "traffic": None})
    # The platform's probe asks too: marked, so it never counts as a user's conversation.
    _p = client.post("/ask", json={"question": "How often does the VPN password rotate?"},
                     headers={"x-workbench-traffic": "probe"}).json()
    conversations.append({"user": "(probe)", "session_id": _p["session_id"],
                          "trace_ids": [_p["trace_id"]], "traffic": "probe"})
    labkit.table([{"user": c["user"], "session_id": c["session_id"][:18] + "…",
                   "answers": len(c["trace_ids"]), "traffic": c["traffic"] or "product"}
                  for c in conversations])
    return (conversations,)


@app.cell
def _(client, conversations, gw):
    _ = conversations
    _lines = [line for line in client.get("/metrics").text.splitlines()
              if line.startswith(("workbench_sessions", "workbench_feedback_messages{kind=\"esc"))]
    mo.vstack([
        mo.md("`GET /metrics` (what the platform alerts on), per model and prompt version "
              "of each conversation's last answer:\n\n```\n" + "\n".join(_lines) + "\n```"),
        mo.md("And in the notebook view, next to the thumbs, retry, edit and copy rates "
              "(`metrics.product_metrics`, also in the feedback dashboard template):"),
        metrics.product_metrics(gw.store, by=("model",)),
    ])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Exercise 8.4 · Containment rate

    Complete `containment_rate(conversations, rows)`: the share of **users'
    conversations** (skip those whose `traffic` is not `None`) with **no** `escalate`
    row on any of their answers. `conversations` is the list above (`trace_ids` are the
    answers of each conversation); `rows` are feedback rows as `GET /feedback` returns
    them (`trace_id`, `kind`, `value`, `session_id`, ...).
    """)
    return


@app.cell
def _():
    # Exercise 8.4: complete the function
    def containment_rate(conversations, rows):
        return None

    return (containment_rate,)


@app.function(hide_code=True)
def reference_containment(conversations, rows):
    """The reference: contained users' conversations / users' conversations."""
    escalated = {r["trace_id"] for r in rows if r["kind"] == "escalate"}
    users = [c for c in conversations if c.get("traffic") is None]
    kept = [c for c in users if not escalated & set(c["trace_ids"])]
    return len(kept) / len(users) if users else 0.0


@app.function(hide_code=True)
def containment_cases():
    """Hand-made conversations and rows with a known containment rate."""
    def conv(*ids, traffic=None):
        return {"trace_ids": list(ids), "traffic": traffic}

    def row(tid, kind, value=True):
        return {"trace_id": tid, "kind": kind, "value": value, "occurrences": 1}

    return [
        ("a long conversation that escalated", [conv("a1", "a2", "a3"), conv("b1")],
         [row("a3", "escalate")], 0.5),
        ("the probe's conversation", [conv("a1"), conv("b1"), conv("c1"),
                                      conv("p1", traffic="probe")],
         [row("a1", "escalate")], 2 / 3),
        ("a thumbs-down without an escalate", [conv("a1"), conv("b1")],
         [row("a1", "thumbs", False)], 1.0),
        ("an escalate clicked twice", [conv("a1", "a2"), conv("b1"), conv("c1")],
         [{**row("a2", "escalate"), "occurrences": 2}], 2 / 3),
    ]


@app.function(hide_code=True)
def check_containment(fn, conversations, rows):
    """Exercise 8.4: the function matches the reference here and on the hand-made cases."""
    if fn is None or fn(conversations, rows) is None:
        return labkit.todo("Complete containment_rate so that it returns a number.")
    got = fn(conversations, rows)
    if isinstance(got, bool) or not isinstance(got, int | float) or not 0 <= got <= 1:
        return labkit.wrong(f"containment_rate should return a share between 0 and 1, got "
                            f"{got!r}.")
    advice = {
        "a long conversation that escalated": "Count conversations, not answers: a "
        "conversation with three answers that ended in an escalate is one failed "
        "conversation.",
        "the probe's conversation": "Leave out the platform's own traffic (traffic is not "
        "None): a probe is not a user.",
        "a thumbs-down without an escalate": "Only an escalate makes a conversation not "
        "contained; a thumbs-down is a different signal.",
        "an escalate clicked twice": "Count conversations with an escalate, not escalate "
        "clicks (occurrences).",
    }
    for label, convs, case_rows, want in containment_cases():
        value = fn(convs, case_rows)
        if value is not None and abs(float(value) - (1 - want)) < 1e-9 and want != 0.5:
            return labkit.wrong("That is the escalation rate: containment is the share of "
                                "conversations that did *not* escalate.")
        if value is None or abs(float(value) - want) > 1e-9:
            return labkit.wrong(f"On {label}: got {value!r}, expected {want:.3f}. "
                                f"{advice[label]}")
    want = reference_containment(conversations, rows)
    if abs(float(got) - want) > 1e-9:
        return labkit.wrong(f"On the afternoon: got {got:.3f}, expected {want:.3f}.")
    return labkit.right(f"Right: {want:.0%} of the conversations were contained. Watch it "
                        "per prompt version: a prompt change that makes answers shorter can "
                        "raise the thumbs-up rate and still send more people to a human.")


@app.cell(hide_code=True)
def _(containment_rate, conversations, fb_rows, client):
    _ = fb_rows
    _rows = client.get("/feedback", params={"limit": 1000}).json()
    ex_containment = labkit.Exercise(
        "8.4", "Containment rate", answer="containment_rate",
        check=lambda fn: check_containment(fn, conversations, _rows),
        solution=("def containment_rate(conversations, rows):\n"
                  "    escalated = {r['trace_id'] for r in rows if r['kind'] == 'escalate'}\n"
                  "    users = [c for c in conversations if c['traffic'] is None]\n"
                  "    kept = [c for c in users if not escalated & set(c['trace_ids'])]\n"
                  "    return len(kept) / len(users)"),
        hints=["Keep the conversations whose traffic is None.",
               "Collect the trace ids that got an escalate in a set; a conversation is "
               "contained when none of its trace_ids is in it.",
               "contained conversations / users' conversations."])
    ex_containment.feedback(containment_rate, env={})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## Recap

    - Every answer carries a `trace_id`; the widget posts thumbs, copy, retry and edit to
      `POST /feedback` keyed by it. One row per answer per kind per user: repeats update,
      re-sends with an `idempotency_id` are no-ops, bad input gets a clear 400.
    - Most signals are implicit. Code can derive more from behaviour (a rephrased
      question) and record them with `source_kind: "code"`.
    - Requests, tokens and clicks are vanity metrics. Rates per answer (acceptance,
      retry, edit, thumbs-up per thumbs given) are product metrics: they move when quality
      moves.
    - Edits are golden rows with a reference; thumbs-down rows need a human to write one.
    - A conversation is a session (`session_id` on `/ask`); its containment rate (no
      "talk to a human") is the chatbot's product metric, per day, model and prompt
      version, with probe and eval traffic left out.

    ## Take it to your team

    - Ship the trace id in every response and the feedback endpoint with the first
      release: a thumbs widget is a day's work, a quarter of missing data is not.
    - Record implicit signals (copy, regenerate, edit, rephrase) before you ask for
      ratings; most users never click thumbs.
    - Choose one product metric (acceptance rate is a good start), put it on the team's
      dashboard per model and prompt version, and review it with every change.
    - Export edits weekly (`workbench feedback export --select edit`), turn them into a
      dataset with `evals.from_feedback(path)`, review it, and grow the golden set that
      gates your pull requests.
    - The feedback and metrics playbook (`docs/playbooks/feedback-metrics.md`), and the
      route-to-live playbook (`docs/playbooks/route-to-live.md`): production is where
      feedback starts, not where the work ends.

    **Next:** Lab 9, ship it.
    """)
    return


@app.cell
def test_implicit_retries_check():
    _events = [
        {"trace_id": "m1", "user": "u", "t": 0,
         "question": "Who do I call when the printer is broken?"},
        {"trace_id": "m2", "user": "u", "t": 30, "question": "printer broken, who to call?"},
        {"trace_id": "m3", "user": "v", "t": 35, "question": "My printer is broken: who do I call?"}]
    assert check_implicit_retries(None, _events, 60).todo
    assert check_implicit_retries(lambda e, w=60: None, _events, 60).todo
    assert check_implicit_retries(find_implicit_retries, _events, 60).ok
    assert find_implicit_retries(_events, 60) == {"m1"}

    def _any_user(events, window_s=60):  # forgets to compare users
        ordered = sorted(events, key=lambda e: e["t"])
        return {a["trace_id"] for a, b in zip(ordered, ordered[1:], strict=False)
                if b["t"] - a["t"] <= window_s and similar(a["question"], b["question"])}

    def _no_window(events, window_s=60):
        return find_implicit_retries(events, 10**9)

    def _later_one(events, window_s=60):
        ordered = sorted(events, key=lambda e: e["t"])
        return {b["trace_id"] for a, b in zip(ordered, ordered[1:], strict=False)
                if a["user"] == b["user"] and b["t"] - a["t"] <= window_s
                and similar(a["question"], b["question"])}

    def _unsorted(events, window_s=60):
        flagged, last = set(), {}
        for e in events:
            prev = last.get(e["user"])
            if prev and e["t"] - prev["t"] <= window_s and similar(prev["question"], e["question"]):
                flagged.add(prev["trace_id"])
            last[e["user"]] = e
        return flagged

    for _wrong in (_any_user, _no_window, _later_one, _unsorted, lambda e, w=60: "m1"):
        assert not check_implicit_retries(_wrong, _events, 60).ok
    assert "Sort the events" in check_implicit_retries(_unsorted, _events, 60).message
    assert "different users" in check_implicit_retries(_any_user, _events, 60).message
    assert "earlier answer" in check_implicit_retries(_later_one, _events, 60).message
    return


@app.cell
def test_acceptance_check():
    def _row(tid, kind, value=True):
        return {"trace_id": tid, "kind": kind, "value": value, "occurrences": 1}

    _ids = ["a", "b", "c", "d"]
    _rows = [_row("a", "copy"), _row("a", "thumbs"), _row("b", "copy"), _row("b", "retry"),
             _row("c", "thumbs", False)]
    assert reference_acceptance(_ids, _rows) == 0.25
    assert check_acceptance(None, _ids, _rows).todo
    assert check_acceptance(lambda i, r: None, _ids, _rows).todo
    assert check_acceptance(reference_acceptance, _ids, _rows).ok

    def _rows_counted(ids, rows):  # a vanity-style count of rows
        return sum(r["kind"] in ("copy", "thumbs") for r in rows) / max(len(rows), 1)

    def _only_reacted(ids, rows):
        reacted = {r["trace_id"] for r in rows if r["trace_id"] in set(ids)}
        return reference_acceptance(ids, rows) * len(set(ids)) / max(len(reacted), 1)

    def _no_negatives(ids, rows):
        good = {r["trace_id"] for r in rows if r["trace_id"] in set(ids)
                and (r["kind"] == "copy" or (r["kind"] == "thumbs" and r["value"]))}
        return len(good) / len(set(ids))

    for _wrong in (_rows_counted, _only_reacted, _no_negatives, lambda i, r: 2.0,
                   lambda i, r: True):
        assert not check_acceptance(_wrong, _ids, _rows).ok
    assert "answers served" in check_acceptance(_only_reacted, _ids, _rows).message
    return


@app.cell
def test_golden_check():
    def _dataset(rows):
        return evals.from_rows(rows, name="t")

    _edits = {"t1": "Book leave two weeks ahead.", "t2": "It rotates every 90 days."}
    _good = _dataset([{"id": f"r{i}", "question": f"q{i}", "reference": text,
                       "metadata": {"trace_id": tid}}
                      for i, (tid, text) in enumerate(_edits.items())])
    assert check_golden(None, _edits).todo
    assert not check_golden([], _edits).ok
    assert check_golden(_good, _edits).ok
    _with_review = _dataset([*(s.to_dict() for s in _good),
                             {"id": "r9", "question": "q9", "tags": ["needs-reference"],
                              "metadata": {"trace_id": "t9"}}])
    assert "no reference" in check_golden(_with_review, _edits).message
    assert not check_golden(_good.head(1), _edits).ok
    _thumbs_up = _dataset([*(s.to_dict() for s in _good),
                           {"id": "r8", "question": "q8", "reference": "model text",
                            "metadata": {"trace_id": "t8"}}])
    assert not check_golden(_thumbs_up, _edits).ok
    _swapped = _dataset([{"id": "r0", "question": "q0", "reference": "model text",
                          "metadata": {"trace_id": "t1"}},
                         {"id": "r1", "question": "q1", "reference": _edits["t2"],
                          "metadata": {"trace_id": "t2"}}])
    assert not check_golden(_swapped, _edits).ok
    return


@app.cell
def test_containment_check():
    _convs = [{"trace_ids": ["a1", "a2"], "traffic": None},
              {"trace_ids": ["b1"], "traffic": None},
              {"trace_ids": ["p1"], "traffic": "probe"}]
    _rows = [{"trace_id": "a2", "kind": "escalate", "value": True, "occurrences": 1}]

    def _per_answer(convs, rows):
        ids = [t for c in convs if c["traffic"] is None for t in c["trace_ids"]]
        bad = {r["trace_id"] for r in rows if r["kind"] == "escalate"}
        return sum(t not in bad for t in ids) / len(ids)

    def _with_probes(convs, rows):
        bad = {r["trace_id"] for r in rows if r["kind"] == "escalate"}
        return sum(not bad & set(c["trace_ids"]) for c in convs) / len(convs)

    def _escalation_rate(convs, rows):
        return 1 - reference_containment(convs, rows)

    def _any_negative(convs, rows):
        bad = {r["trace_id"] for r in rows if r["kind"] in ("escalate", "thumbs")}
        users = [c for c in convs if c["traffic"] is None]
        return sum(not bad & set(c["trace_ids"]) for c in users) / len(users)

    assert check_containment(None, _convs, _rows).todo
    assert check_containment(lambda c, r: None, _convs, _rows).todo
    assert not check_containment(lambda c, r: 50.0, _convs, _rows).ok
    assert not check_containment(_per_answer, _convs, _rows).ok
    assert not check_containment(_with_probes, _convs, _rows).ok
    assert not check_containment(_escalation_rate, _convs, _rows).ok
    assert not check_containment(_any_negative, _convs, _rows).ok
    assert check_containment(reference_containment, _convs, _rows).ok
    return


if __name__ == "__main__":
    app.run()
