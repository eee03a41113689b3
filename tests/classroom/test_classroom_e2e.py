"""Classroom mode end to end: a facilitator's `workbench gateway` process (embedded model,
priced) and two attendees in other processes with their own stores, on loopback."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import pytest

from tests.classroom_support import attendee, facilitator_gateway

pytestmark = [pytest.mark.embedded, pytest.mark.slow]

GUIDE = ("# Guide\n\nThe workshop coffee break starts at half past ten. Bring a mug.\n\n"
         "## Lunch\n\nLunch is served in the atrium at noon.\n")
SPEND_UNTIL_DENIED = """
import workbench
from workbench.errors import BudgetExceeded
gw = workbench.connect()
for i in range(25):
    try:
        gw.chat([{"role": "user", "content": "Hi"}], max_tokens=4)
    except BudgetExceeded as err:
        print("DENIED", i, err.message)
        break
else:
    print("NEVER DENIED")
"""


def ledger(db: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT endpoint, model, provider FROM ledger").fetchall()


def test_two_attendees_share_one_gateway_with_their_own_budgets(tmp_path: Path) -> None:
    with facilitator_gateway(tmp_path / "facilitator") as fac:
        ada_row, bob_row = fac.create(2, budget=0.15, rpm=120)
        ada, bob = attendee(tmp_path, "ada"), attendee(tmp_path, "bob")

        # Joining: the key from stdin (not the shell history), never echoed.
        joined = ada.wb("join", fac.url, "-", stdin=ada_row["key"] + "\n")
        assert joined.returncode == 0, joined.stderr
        assert f"as {ada_row['key_id']}" in joined.stdout
        assert ada_row["key"] not in joined.stdout + joined.stderr
        checked = bob.wb("join", fac.url + "/v1/", bob_row["key"], "--check")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "ok   embeddings" in checked.stdout and bob_row["key"] not in checked.stdout

        # Chat, embeddings, ingest + ask: the model runs in the facilitator's process.
        chat = ada.wb("chat", "Say hello.", "--max-tokens", "8", "--json")
        assert chat.returncode == 0, chat.stderr
        assert json.loads(chat.stdout)["model"] == "smollm2-135m"
        emb = ada.py("import workbench; r = workbench.connect().embed(['a', 'b']); "
                     "print(len(r.vectors), len(r.vectors[0]))")
        assert emb.stdout.split() == ["2", "384"], emb.stderr
        (ada.root / "docs").mkdir()
        (ada.root / "docs" / "guide.md").write_text(GUIDE, encoding="utf-8")
        ingest = ada.wb("ingest", "docs", "--collection", "notes")
        assert ingest.returncode == 0, ingest.stderr
        ask = ada.wb("ask", "When does the coffee break start?", "--collection", "notes",
                     "--json")
        assert ask.returncode == 0, ask.stderr
        answer = json.loads(ask.stdout)
        assert "half past ten" in answer["answer"] and "[1]" in answer["answer"]

        # The attendee's own store holds their ledger and traces, all routed to the room.
        ada_db = ada.root / ".workbench" / "workbench.db"
        rows = ledger(ada_db)
        assert {("chat", "smollm2-135m"), ("embeddings", "minilm-l6-v2")} <= {
            (e, m) for e, m, _ in rows}
        assert {p for _, _, p in rows} == {"classroom"}
        traces = ada.wb("traces", "--json")
        assert traces.returncode == 0 and len(json.loads(traces.stdout)) >= 3, traces.stderr
        fb = ada.wb("feedback", "add", answer["trace_id"], "--kind", "thumbs", "--value", "up",
                    "--json")
        assert fb.returncode == 0 and json.loads(fb.stdout)["feedback"]["linked"], fb.stderr

        # Probes (a semantic check embeds too) run through the classroom as well.
        (ada.root / "probes.toml").write_text(
            '[[probe]]\nname = "greets"\ninput = "Say hello."\nmax_tokens = 6\n'
            'expect = { semantic = "Hello! How can I help you?", threshold = 0.1 }\n',
            encoding="utf-8")
        probed = ada.wb("probe", "probes.toml")
        assert probed.returncode == 0, probed.stdout + probed.stderr
        assert {("chat", "classroom"), ("embeddings", "classroom")} <= {
            (e, p) for e, _, p in ledger(ada_db)[len(rows):]}

        # Ada's budget runs out; Bob's key still works.
        spent = ada.py(SPEND_UNTIL_DENIED)
        assert "DENIED" in spent.stdout, spent.stdout + spent.stderr
        assert f"budget of key {ada_row['key_id']} is exhausted" in spent.stdout
        denied = ada.wb("chat", "Hi", "--max-tokens", "4")
        assert denied.returncode == 1 and "exhausted" in denied.stderr
        assert "Traceback" not in denied.stderr
        assert bob.wb("chat", "Hi", "--max-tokens", "4").returncode == 0

        # The facilitator sees both, Ada as stuck, on the CLI and on the page.
        status = fac.wb("classroom", "status", "--json")
        assert status.returncode == 0, status.stderr
        by_key = {r["key_id"]: r for r in json.loads(status.stdout)}
        assert by_key[ada_row["key_id"]]["state"] == "stuck: insufficient_quota"
        assert by_key[bob_row["key_id"]]["state"] == "ok"
        assert by_key[ada_row["key_id"]]["spent_usd"] <= 0.15 + 1e-9
        assert all(r["calls"] > 0 for r in by_key.values())
        table = fac.wb("classroom", "status")
        assert "attendee-01" in table.stdout and "attendee-02" in table.stdout
        page = httpx.get(f"{fac.url}/classroom", auth=("workshop", fac.page_token()))
        assert page.status_code == 200
        assert "attendee-01" in page.text and "attendee-02" in page.text
        assert "stuck: insufficient_quota" in page.text
        assert httpx.get(f"{fac.url}/classroom",
                         auth=("workshop", bob_row["key"])).status_code == 401

        # Revoking the classroom takes effect at once, with a clear message.
        assert fac.wb("classroom", "revoke", "--yes").returncode == 0
        late = bob.wb("chat", "Hi", "--max-tokens", "4")
        assert late.returncode == 1 and "was revoked" in late.stderr, late.stderr
        recheck = bob.wb("join", "--check")
        assert recheck.returncode == 1 and "your key was refused" in recheck.stdout

        # Leaving removes the key; the attendee is back on their own (embedded) model.
        left = bob.wb("leave")
        assert left.returncode == 0 and not list((bob.root / "classroom-home").iterdir())
        local = bob.wb("chat", "Hi", "--max-tokens", "4", "--json")
        assert local.returncode == 0, local.stderr
        assert ledger(bob.root / ".workbench" / "workbench.db")[-1][2] == "embedded"

        # No key anywhere it should not be: logs, stores, traces.
        secrets = [ada_row["key"], bob_row["key"]]
        for path in [fac.log, fac.root / ".workbench" / "workbench.db", ada_db,
                     *(ada.root / ".workbench").rglob("*.db*")]:
            blob = path.read_bytes()
            assert not any(s.encode() in blob for s in secrets), path
