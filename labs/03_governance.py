import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Lab 3 · Governance")

with app.setup:
    import re
    import secrets
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import labkit
    import marimo as mo

    import workbench
    from workbench.guardrails import RegexRecognizer
    from workbench.models import audit


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    # Lab 3 · Governance

    A platform team gives every product team governed access to models: who may use which
    model, how much they may spend, how fast they may call, what data may leave, and a
    record of it all. In the workbench that is the **gateway**; this lab drives each of its
    controls and shows why they hold.

    **Learning goals**

    - Create teams and keys; act as a key; see a model allowlist deny a call (403).
    - See why a naive *check-then-spend* budget breaks under concurrent requests, and how
      the gateway's atomic **reservation** holds.
    - Hit a rate limit (429) and read the error.
    - Redact PII and secrets before a prompt leaves, in each mode, and add a recognizer.
    - Read the usage ledger and verify the tamper-evident audit log.

    **Time:** about 45 minutes.
    """)
    return


@app.cell
def _():
    pretend = workbench.ModelSpec(
        name="pretend-gpt", provider="embedded", upstream="smollm2-135m",
        input_usd_per_mtok=1000.0, output_usd_per_mtok=2000.0, max_output_tokens=64)
    gw = labkit.connect(models=[pretend])
    run = secrets.token_hex(2)  # lab runs do not collide in a shared store
    team = f"lab3-support-{run}"
    gw
    return gw, run, team


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    `gw` acts as the **local owner**: no key, no limits, like an admin at a terminal.
    `pretend-gpt` runs on the embedded model but is priced like an expensive hosted model,
    so budgets have something to count (lab 2 introduced it).

    ## 1. Teams and keys

    A **team** holds shared limits (an allowlist, a budget, rate limits); a **key** belongs
    to a team and can narrow them further. Both must allow a call. The key's secret
    (`wb-…`) is returned once; the store keeps only its SHA-256.
    """)
    return


@app.cell
def _(gw, team):
    gw.policy.set_team(team, models=["smollm2-135m", "pretend-gpt", "minilm-l6-v2"],
                       actor="lab3")
    alice_id, alice_secret = gw.policy.create_key(
        team=team, name="alice-notebook", models=["smollm2-135m"], actor="lab3")
    alice = gw.as_key(alice_secret)
    mo.md(f"""
    Created key **{alice_id}** for team **{team}**, allowed only `smollm2-135m`.
    Its secret starts with `{alice_secret[:7]}…` (never print the rest: treat it like a
    password). Acting as that key: `{alice!r}`
    """)
    return alice, alice_id


@app.cell
def _(alice):
    _ok = alice.chat("Say hi in three words.", max_tokens=8, temperature=0)
    try:
        alice.chat("Say hi.", model="pretend-gpt", max_tokens=8)
        _denied = "not denied: the allowlist is broken!"
    except workbench.PermissionDenied as _exc:
        _denied = f"HTTP {_exc.status} `{_exc.code}`: {_exc.message}"
    mo.md(f"""
    - `smollm2-135m`: allowed → *{_ok.text.strip()}*
    - `pretend-gpt`: {_denied}

    Over HTTP (`workbench gateway`) the same denial is a 403 in OpenAI's error shape, so
    any OpenAI SDK shows it as a `PermissionDeniedError`.
    """)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Exercise 3.1 · A key for the support bot

    Create a key in team `team` (the variable above) that may use **only `smollm2-135m`**
    and at most **3 requests per minute**. Set `support_key_id` to its id (`key_…`).
    """)
    return


@app.cell
def _():
    # Exercise 3.1: replace None
    support_key_id = None
    return (support_key_id,)


@app.function(hide_code=True)
def check_support_key(value, keys, team):
    """Exercise 3.1: the key exists in `team`, allows only smollm2-135m, rpm 3."""
    if value is None:
        return labkit.todo("Create the key and set support_key_id to its id.")
    if not isinstance(value, str) or not value.startswith("key_"):
        return labkit.wrong("support_key_id should be the key's id (key_…), not the secret.")
    row = next((k for k in keys if k["id"] == value), None)
    if row is None:
        return labkit.wrong(f"No key with id {value}.")
    if row["team"] != team:
        return labkit.wrong(f"The key is in team {row['team']!r}, not {team!r}.")
    if list(row["models"] or []) != ["smollm2-135m"]:
        return labkit.wrong(f"Its allowlist is {row['models']}, not ['smollm2-135m'].")
    if row["rpm"] != 3:
        return labkit.wrong(f"Its rpm is {row['rpm']}, not 3.")
    return labkit.right("Right: least privilege, one model, a small rate.")


@app.cell(hide_code=True)
def _(gw, support_key_id, team):
    ex_key = labkit.Exercise(
        "3.1", "A key for the support bot", answer="support_key_id",
        check=lambda v: check_support_key(v, gw.policy.list_keys(), team),
        solution=('support_key_id, support_secret = gw.policy.create_key(\n'
                  '    team=team, name="support-bot", models=["smollm2-135m"], rpm=3)'),
        hints=["gw.policy.create_key(team=..., models=[...], rpm=...) returns (id, secret).",
               "The CLI equivalent: workbench keys create --team T --models smollm2-135m --rpm 3"])
    ex_key.feedback(support_key_id, env={"gw": gw, "team": team})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 2. Budgets that hold under concurrency

    The obvious budget check reads the spend, calls the model, then adds the cost. With one
    request at a time it works. With many at once, **every request passes the check before
    any of them has paid**. Below is that naive budget in plain Python: a thread pool fires
    requests together; each "model call" is a short sleep.
    """)
    return


@app.class_definition
class NaiveBudget:
    """Check, then call, then spend: the bug class of many gateways."""

    def __init__(self, limit_usd):
        self.limit_usd = limit_usd
        self.spent_usd = 0.0

    def try_spend(self, cost_usd, call):
        if self.spent_usd + cost_usd > self.limit_usd:  # check...
            return False
        call()  # ...the model runs (seconds, in real life)...
        self.spent_usd += cost_usd  # ...and only now do we pay
        return True


@app.function
def hammer(budget, n_requests, cost_usd=0.02, call_s=0.05):
    """Fire n_requests at once against ``budget``; returns (allowed, max in flight)."""
    in_flight, peak, lock = [0], [0], threading.Lock()

    def call():
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(call_s)
        with lock:
            in_flight[0] -= 1

    start = threading.Barrier(n_requests)

    def one(_):
        start.wait()  # everyone arrives together, like a burst of users
        return budget.try_spend(cost_usd, call)

    with ThreadPoolExecutor(max_workers=n_requests) as pool:
        allowed = sum(pool.map(one, range(n_requests)))
    return allowed, peak[0]


@app.cell
def _():
    burst = labkit.slider(2, 50, 20, label="concurrent requests")
    burst
    return (burst,)


@app.cell
def _(burst):
    naive = NaiveBudget(limit_usd=0.10)
    naive_allowed, _ = hammer(naive, int(burst.value))
    mo.md(f"""
    Budget **$0.10**, each request costs **$0.02**, so at most 5 may run.
    {int(burst.value)} concurrent requests → **{naive_allowed} allowed**, spent
    **${naive.spent_usd:.2f}**: {"over budget by "
    f"{naive.spent_usd / naive.limit_usd:.0f}x" if naive.spent_usd > naive.limit_usd
    else "within budget (try more requests)"}.
    """)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    **The fix is a reservation.** Before the call, the gateway adds the request's
    *worst-case* cost (prompt size plus `max_tokens` at the output price) to `reserved`,
    in one conditional `UPDATE … WHERE spent + reserved + cost <= budget`. The database
    decides: the row count says whether this request got the money, so two requests (or
    two gateway replicas sharing PostgreSQL) can never both take the last dollar. After
    the call the reservation becomes the actual cost; on failure it is released.

    Now the same burst through the real gateway, against a key with a **$0.25** budget on
    `pretend-gpt`:
    """)
    return


@app.cell
def _(burst, gw, team):
    _key_id, _secret = gw.policy.create_key(team=team, name="budget-demo", budget_usd=0.25,
                                            models=["pretend-gpt"], actor="lab3")
    _user = gw.as_key(_secret)
    _go = threading.Barrier(int(burst.value))

    def _one(_):
        _go.wait()
        try:
            _user.chat([{"role": "system", "content": "Reply in one word."},
                        {"role": "user", "content": "Say hi"}],
                       model="pretend-gpt", max_tokens=8, temperature=0)
            return "ok"
        except workbench.BudgetExceeded:
            return "denied"

    with ThreadPoolExecutor(max_workers=int(burst.value)) as _pool:
        budget_outcomes = list(_pool.map(_one, range(int(burst.value))))
    budget_state = gw.policy.budget_state(_key_id)
    mo.md(f"""
    {int(burst.value)} concurrent requests → **{budget_outcomes.count("ok")} allowed**,
    {budget_outcomes.count("denied")} denied with HTTP 429 `insufficient_quota`.
    Spent **${budget_state["spent_usd"]:.3f}** of ${budget_state["budget_usd"]:.2f};
    still reserved: ${abs(budget_state["reserved_usd"]):.3f}.
    **{"Within budget." if budget_state["spent_usd"] <= budget_state["budget_usd"] + 1e-9
    else "OVER BUDGET: this is a bug."}**
    """)
    return budget_outcomes, budget_state


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    The denied requests never reached the model, and cost nothing. The price of safety: a
    request needs room for its *worst case*, so keep `max_tokens` honest.

    ### Exercise 3.2 · Fix the toy budget

    Write a class `SafeBudget` with the same interface as `NaiveBudget`
    (`__init__(self, limit_usd)`, `try_spend(self, cost_usd, call) -> bool`, a `spent_usd`
    attribute) that never overspends under the burst. Do **not** hold a lock while
    `call()` runs (that would serialise every request): reserve under a lock, call, then
    settle. The check fires 50 requests at it.
    """)
    return


@app.cell
def _():
    # Exercise 3.2: replace None with your class
    SafeBudget = None
    return (SafeBudget,)


@app.function(hide_code=True)
def check_safe_budget(cls):
    """Exercise 3.2: 50 concurrent requests, $0.10 budget, $0.02 each: exactly 5 allowed,
    spent <= budget, and calls overlapped (no lock held during the call)."""
    if cls is None:
        return labkit.todo("Define class SafeBudget.")
    if not isinstance(cls, type):
        return labkit.wrong("SafeBudget should be a class (class SafeBudget: ...).")
    budget = cls(0.10)
    allowed, peak = hammer(budget, 50)
    if budget.spent_usd > 0.10 + 1e-9:
        return labkit.wrong(f"{allowed} requests got through and spent "
                            f"${budget.spent_usd:.2f} of $0.10: still racing.")
    if allowed != 5:
        return labkit.wrong(f"{allowed} requests were allowed; the budget has room for 5.")
    if peak < 2:
        return labkit.wrong("Within budget, but the calls ran one at a time: do not hold the "
                            "lock while call() runs.")
    return labkit.right(f"Right: 5 allowed, ${budget.spent_usd:.2f} spent, up to {peak} calls "
                        "in parallel. The gateway does the same with one SQL UPDATE.")


@app.cell(hide_code=True)
def _(SafeBudget):
    ex_budget = labkit.Exercise(
        "3.2", "Fix the toy budget", answer="SafeBudget", check=check_safe_budget,
        solution=(
            "class SafeBudget:\n"
            "    def __init__(self, limit_usd):\n"
            "        self.limit_usd = limit_usd\n"
            "        self.spent_usd = 0.0\n"
            "        self.reserved_usd = 0.0\n"
            "        self._lock = threading.Lock()\n"
            "\n"
            "    def try_spend(self, cost_usd, call):\n"
            "        with self._lock:  # check and reserve in one step\n"
            "            if self.spent_usd + self.reserved_usd + cost_usd > self.limit_usd:\n"
            "                return False\n"
            "            self.reserved_usd += cost_usd\n"
            "        try:\n"
            "            call()  # no lock held: requests run in parallel\n"
            "        finally:\n"
            "            with self._lock:  # settle: reservation -> spend\n"
            "                self.reserved_usd -= cost_usd\n"
            "                self.spent_usd += cost_usd\n"
            "        return True"),
        hints=["Keep a reserved_usd next to spent_usd.",
               "Under a threading.Lock: if spent + reserved + cost fits, add cost to "
               "reserved; otherwise return False.",
               "After call() returns, move the cost from reserved to spent (under the lock)."])
    ex_budget.feedback(SafeBudget, env={"threading": threading})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 3. Rate limits

    Budgets bound money; **rate limits** bound load: requests per minute (`rpm`) and
    tokens per minute (`tpm`), per key and per team, counted atomically in the store (so
    they hold across replicas too). A refused request gets HTTP 429
    `rate_limit_exceeded`; OpenAI SDKs back off and retry on 429 by themselves.
    """)
    return


@app.cell
def _(gw, team):
    _key_id, _secret = gw.policy.create_key(team=team, name="rpm-demo", rpm=2, actor="lab3")
    _user = gw.as_key(_secret)
    _lines = []
    for _i in range(3):
        try:
            _user.chat("Say hi.", max_tokens=4)
            _lines.append(f"- call {_i + 1}: ok")
        except workbench.RateLimited as _exc:
            _lines.append(f"- call {_i + 1}: HTTP {_exc.status} `{_exc.code}`: {_exc.message}")
    mo.md(f"Key `{_key_id}` with `rpm=2`:\n\n" + "\n".join(_lines))
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 4. PII and secret redaction

    Before a prompt leaves, the gateway's **guardrails** find emails, phone numbers, card
    numbers (Luhn-checked), IBANs, IP addresses and secrets (API keys, tokens, private
    keys) and, by default, mask them. The model sees `[EMAIL]`; the ledger records only
    counts.
    """)
    return


@app.cell
def _():
    pii_box = labkit.text_area(
        "Refund jane.doe@example.com, card 4111 1111 1111 1111, call +44 20 7946 0958. "
        "Our key is sk-proj-abcdefghijklmnopqrstuvwx.", label="text with PII")
    pii_box
    return (pii_box,)


@app.cell
def _(gw, pii_box):
    _red = gw.guardrails.mask(pii_box.value)
    mo.md(f"""
    **The model would see:** {_red.text}

    **Found:** {_red.kinds or "nothing"}
    """)
    return


@app.cell
def _(alice, gw, team):
    _msg = "Write one polite line to jane.doe@example.com about her refund."
    _masked = alice.chat(_msg, max_tokens=16, temperature=0)
    _block_id, _block_secret = gw.policy.create_key(team=team, name="strict",
                                                    guardrail_mode="block", actor="lab3")
    try:
        gw.as_key(_block_secret).chat(_msg, max_tokens=8)
        _blocked = "sent (should have been blocked!)"
    except workbench.ContentBlocked as _exc:
        _blocked = f"HTTP {_exc.status} `{_exc.code}`: {_exc.message}"
    labkit.table([
        {"mode": "mask (default)", "what happens": f"sent as: {gw.guardrails.mask(_msg).text}",
         "recorded": f"redactions {_masked.redactions}"},
        {"mode": "block", "what happens": _blocked, "recorded": "a denied ledger row"},
        {"mode": "log-only", "what happens": "sent unchanged", "recorded": "counts per kind"},
        {"mode": "off", "what happens": "sent unchanged", "recorded": "nothing"},
    ])
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    The mode is a setting (`guardrail_mode`) and a per-key option
    (`workbench keys create --guardrails block`). Recognizers are a seam: anything with a
    `name` and `find(text)` plugs in, for example a regex for your company's identifiers.

    ### Exercise 3.3 · Mask employee ids

    Your company's employee ids look like `EMP-` followed by exactly six digits
    (`EMP-004211`). Set `employee_id_pattern` to a regular expression (a string) that
    matches them and nothing else: not `EMP-12345` (five digits), not `EMP-1234567`, not
    `TEMP-123456`. The check plugs it into a `RegexRecognizer` named `EMPLOYEE_ID`.
    """)
    return


@app.cell
def _():
    # Exercise 3.3: replace None with a regex string
    employee_id_pattern = None
    return (employee_id_pattern,)


@app.function(hide_code=True)
def check_employee_regex(pattern):
    """Exercise 3.3: masks EMP-dddddd, and only that."""
    if pattern is None:
        return labkit.todo("Set employee_id_pattern to a regex string.")
    if not isinstance(pattern, str):
        return labkit.wrong("employee_id_pattern should be a string, e.g. r'...'.")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        return labkit.wrong(f"Not a valid regex: {exc}.")
    guard = workbench.Guardrails([RegexRecognizer("EMPLOYEE_ID", compiled)])
    must = ["EMP-004211", "Ask EMP-123456 about it.", "(EMP-999999)"]
    must_not = ["EMP-12345", "EMP-1234567", "TEMP-123456", "EMP123456", "emp-123456 x"]
    for text in must:
        if "[EMPLOYEE_ID]" not in guard.mask(text).text:
            return labkit.wrong(f"{text!r} was not masked.")
    for text in must_not:
        if "[EMPLOYEE_ID]" in guard.mask(text).text:
            return labkit.wrong(f"{text!r} was masked, but it is not an employee id.")
    return labkit.right("Right. Add it for real with gw.guardrails.add(RegexRecognizer("
                        "'EMPLOYEE_ID', re.compile(pattern))).")


@app.cell(hide_code=True)
def _(employee_id_pattern):
    ex_regex = labkit.Exercise(
        "3.3", "Mask employee ids", answer="employee_id_pattern", check=check_employee_regex,
        solution='employee_id_pattern = r"\\bEMP-\\d{6}\\b"',
        hints=[r"\d{6} matches exactly six digits.",
               r"\b is a word boundary: it stops TEMP- and a seventh digit from matching."])
    ex_regex.feedback(employee_id_pattern)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ## 5. The usage ledger and the audit log

    Every call, allowed or not, leaves one **ledger** row: key, team, model, tokens, cost,
    latency, outcome (`ok`, `cached`, `denied`, `error`) and trace id. Never the prompt.
    This lab's traffic, by key and outcome:
    """)
    return


@app.cell
def _(budget_outcomes, gw, team):
    _ = budget_outcomes  # run after the budget demo so its rows are counted
    lab_usage = [r for r in gw.usage(by=("team", "key", "outcome")) if r["team"] == team]
    labkit.table(lab_usage, ["key", "outcome", "calls", "tokens_in", "tokens_out", "cost_usd"])
    return (lab_usage,)


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    ### Exercise 3.4 · What did the team spend?

    Using `gw.usage(...)`, set `team_spend` to the total cost in USD that team `team` has
    been charged so far (all keys, all outcomes).
    """)
    return


@app.cell
def _():
    # Exercise 3.4: replace None with a number
    team_spend = None
    return (team_spend,)


@app.function(hide_code=True)
def check_team_spend(value, rows, team):
    """Exercise 3.4: the team's total cost from the ledger."""
    if value is None:
        return labkit.todo("Set team_spend to a number.")
    if not isinstance(value, int | float):
        return labkit.wrong(f"team_spend should be a number, not {type(value).__name__}.")
    want = next((r["cost_usd"] for r in rows if r["team"] == team), 0.0)
    if abs(value - want) > 1e-9:
        return labkit.wrong(f"{value} is not what the ledger says for {team}.")
    return labkit.right(f"Right: ${want:.3f}. The same number: workbench usage --by team.")


@app.cell(hide_code=True)
def _(gw, lab_usage, team, team_spend):
    _ = lab_usage  # re-check after the ledger table above is up to date
    ex_spend = labkit.Exercise(
        "3.4", "What did the team spend?", answer="team_spend",
        check=lambda v: check_team_spend(v, gw.usage(by=("team",)), team),
        solution=('team_spend = next(r["cost_usd"] for r in gw.usage(by=("team",))\n'
                  '                  if r["team"] == team)'),
        hints=['gw.usage(by=("team",)) returns one row per team.',
               "Each row has a cost_usd column; pick the row whose team is yours."])
    ex_spend.feedback(team_spend, env={"gw": gw, "team": team})
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    Admin actions (creating keys and teams, revoking keys) go to the **audit log**. Each
    row's hash covers its content and the previous row's hash, so editing or deleting any
    row breaks the chain, and `workbench audit --verify` finds the first bad row. Rows
    hold ids, names and limits, never secrets.
    """)
    return


@app.cell
def _(gw):
    _rows = [r for r in audit.entries(gw.store, 50) if r["actor"] == "lab3"][:6]
    for _r in _rows:
        _r["time"] = time.strftime("%H:%M:%S", time.localtime(_r["ts"]))
        _r["hash"] = _r["hash"][:12] + "…"
    labkit.table(_rows, ["id", "time", "action", "target", "hash"])
    return


@app.cell(hide_code=True)
def _(alice_id, gw):
    mo.md(f"Chain check: `{audit.verify(gw.store)}`. Alice's key `{alice_id}` is in it; her "
          "secret is not.")
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    What does tampering look like? On a **scratch** store (not yours), an "insider" edits
    an audit row to hide a budget they gave themselves:
    """)
    return


@app.cell
def _():
    import json as _json
    import os
    import tempfile

    from sqlalchemy import text as _sql

    with tempfile.TemporaryDirectory(prefix="lab3-") as _tmp:
        _scratch = labkit.connect(data_dir=os.path.join(_tmp, "data"))
        _scratch.policy.create_key(team="insiders", budget_usd=1_000_000, actor="mallory")
        _before = audit.verify(_scratch.store)
        with _scratch.store.write() as _conn:
            # The insider's own SQL, straight at the database: no workbench API involved.
            _conn.execute(_sql("UPDATE audit SET details = :details"),
                          {"details": _json.dumps({"team": "insiders", "budget_usd": 5})})
        _after = audit.verify(_scratch.store)
        _scratch.close()
    mo.md(f"""
    - before the edit: `{_before}`
    - after the edit: `{_after}`
    """)
    return


@app.cell(hide_code=True)
def _():
    mo.md(r"""
    (An attacker who can rewrite the *whole* chain can forge it too: ship the latest hash
    somewhere they cannot write, such as your log pipeline, to anchor it.)

    ## Recap

    - Teams and keys carry allowlists, budgets, rate limits and a guardrail mode; both
      must allow a call. Keys are shown once and stored hashed.
    - Check-then-spend overruns under concurrency; an atomic worst-case **reservation**,
      settled afterwards, holds, even across replicas sharing PostgreSQL.
    - Rate limits (rpm/tpm) answer 429; budgets answer 429 `insufficient_quota`.
    - Guardrails mask (or block) PII and secrets before prompts leave; recognizers plug in.
    - The ledger records every call without prompts; the hash-chained audit log makes
      admin changes tamper-evident.

    ## Take it to your team

    - One key per app and environment, least privilege (`--models`), an expiry, and a
      budget with headroom for `max_tokens`.
    - Run `workbench usage --by team,model` weekly; alert on `denied` and `error` rates.
    - Add recognizers for your own identifiers before the first real data arrives.
    - Anchor the audit chain: ship `workbench audit --json` to your log store daily.
    - The governance playbook (`docs/playbooks/governance.md`) has the details; the
      route-to-live playbook (`docs/playbooks/route-to-live.md`) says when each control
      becomes mandatory.

    **Next:** Lab 4, RAG on LanceDB.
    """)
    return


@app.cell
def test_support_key_check():
    _rows = [{"id": "key_a", "team": "t", "models": ["smollm2-135m"], "rpm": 3},
            {"id": "key_b", "team": "t", "models": ["smollm2-135m", "gemma3-270m"], "rpm": 3},
            {"id": "key_c", "team": "t", "models": ["smollm2-135m"], "rpm": None}]
    assert check_support_key(None, _rows, "t").todo
    assert not check_support_key("wb-secret", _rows, "t").ok
    assert not check_support_key("key_z", _rows, "t").ok
    assert not check_support_key("key_b", _rows, "t").ok
    assert not check_support_key("key_c", _rows, "t").ok
    assert not check_support_key("key_a", _rows, "other").ok
    assert check_support_key("key_a", _rows, "t").ok
    return


@app.cell
def test_safe_budget_check():
    class _GlobalLock:
        """Safe but serial: holds the lock during the call."""

        def __init__(self, limit_usd):
            self.limit_usd, self.spent_usd, self._lock = limit_usd, 0.0, threading.Lock()

        def try_spend(self, cost_usd, call):
            with self._lock:
                if self.spent_usd + cost_usd > self.limit_usd:
                    return False
                call()
                self.spent_usd += cost_usd
                return True

    assert check_safe_budget(None).todo
    assert not check_safe_budget(NaiveBudget).ok
    assert not check_safe_budget(_GlobalLock).ok
    return


@app.cell
def test_employee_regex_check():
    assert check_employee_regex(None).todo
    assert not check_employee_regex("(").ok
    assert not check_employee_regex(r"EMP-\d+").ok
    assert not check_employee_regex(r"EMP-\d{6}").ok
    assert check_employee_regex(r"\bEMP-\d{6}\b").ok
    return


@app.cell
def test_team_spend_check():
    _rows = [{"team": "t", "cost_usd": 0.19}, {"team": "u", "cost_usd": 1.0}]
    assert check_team_spend(None, _rows, "t").todo
    assert not check_team_spend("0.19", _rows, "t").ok
    assert not check_team_spend(1.19, _rows, "t").ok
    assert check_team_spend(0.19, _rows, "t").ok
    return


if __name__ == "__main__":
    app.run()
