"""Issue 10, "Trust boundaries" and "Nothing lost": each test is the attack or the crash
that broke the promise before, against real parts (uvicorn on loopback, SQLite and
Postgres, the embedded llama.cpp model, subprocesses that exit).

- the proxy never lets key B join key A's trace through ``traceparent``;
- the audit chain is keyed (HMAC) and anchored outside the store: deleting the newest row,
  editing and re-chaining with plain SHA-256, a wrong key and a missing key are all caught;
- one-shot CLI commands and dropped Gateways lose no spans (local store and OTLP);
- client input never makes a 500: prompts over the context window, 20,000-deep JSON;
- ``/readyz`` turns red when the store cannot write.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import secrets
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, event, insert, select, update

from tests.fakes import FakeProvider
from tests.servers import live_server
from workbench.errors import ConfigError
from workbench.models import audit, ledger
from workbench.models.gateway import Gateway
from workbench.models.policy import Policy
from workbench.models.server import create_app
from workbench.observability.traces import flush, get_trace
from workbench.store import Store
from workbench.store import audit as audit_table

MODELS = [{"name": "fake-model", "provider": "fake"},
          {"name": "fake-embed", "provider": "fake", "kind": "embedding"}]
CHAT = "/v1/chat/completions"
HELLO = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def traceparent(trace_id: str, span_id: str | None = None) -> str:
    return f"00-{trace_id}-{span_id or secrets.token_hex(8)}-01"


# -- trust: the proxy --------------------------------------------------------------------
@pytest.fixture
def proxy(make_gateway: Callable[..., Gateway]) -> Iterator[tuple[Gateway, httpx.Client]]:
    gw = make_gateway(providers={"fake": FakeProvider()}, models=MODELS,
                      chat_model="fake-model", embed_model="fake-embed")
    with live_server(create_app(gw)) as base, httpx.Client(base_url=base, timeout=30) as c:
        yield gw, c


def test_proxy_key_b_cannot_join_key_a_trace(proxy: tuple[Gateway, httpx.Client]) -> None:
    gw, http = proxy
    a_id, a = gw.policy.create_key(team="a")
    b_id, b = gw.policy.create_key(team="b")
    a_trace = http.post(CHAT, json=HELLO, headers=bearer(a)).headers["x-workbench-trace-id"]
    parent = secrets.token_hex(8)
    for path, body in ((CHAT, HELLO), (CHAT, {**HELLO, "stream": True}),
                       ("/v1/embeddings", {"model": "fake-embed", "input": "x"})):
        resp = http.post(path, json=body,
                         headers={**bearer(b), "traceparent": traceparent(a_trace, parent)})
        assert resp.status_code == 200, resp.text
        assert resp.headers["x-workbench-trace-id"] != a_trace, path
    assert {r["key_id"] for r in ledger.entries(gw.store, trace_id=a_trace)} == {a_id}
    b_rows = [r for r in ledger.entries(gw.store, limit=100) if r["key_id"] == b_id]
    assert len(b_rows) == 3 and a_trace not in {r["trace_id"] for r in b_rows}
    flush(gw.store)
    b_span = get_trace(gw.store, b_rows[-1]["trace_id"]).spans[0]
    assert b_span.parent_id is None  # not a child of the span B named
    assert b_span.attributes["workbench.caller_trace_id"] == a_trace
    # A's own traceparent on a new trace is honoured, and A's span is the parent.
    fresh = secrets.token_hex(16)
    resp = http.post(CHAT, json=HELLO, headers={**bearer(a),
                                                "traceparent": traceparent(fresh, parent)})
    assert resp.headers["x-workbench-trace-id"] == fresh
    flush(gw.store)
    # Locally the span is the trace's root (the caller's span is not in this store); the
    # caller's span id is kept. OTLP export carries it as the real parent.
    root = get_trace(gw.store, fresh).spans[0]
    assert root.parent_id is None and root.attributes["workbench.remote_parent_id"] == parent
    # A caller whose own process writes spans to the same store (no model call, so no
    # ledger row) still joins its own trace through the proxy.
    from workbench.observability import tracing

    with tracing.span("app.step", gateway=gw) as app_span:
        pass
    flush(gw.store)
    resp = http.post(CHAT, json=HELLO, headers={
        **bearer(b), "traceparent": traceparent(app_span.trace_id, app_span.span_id)})
    assert resp.headers["x-workbench-trace-id"] == app_span.trace_id


def test_caller_span_is_the_otlp_parent_and_a_local_root(make_gateway: Callable[..., Gateway]
                                                         ) -> None:
    from tests.observability.test_obs_otlp import HttpReceiver
    from workbench.observability import tracing

    receiver = HttpReceiver()
    try:
        gw = make_gateway()
        tracer = tracing.Tracer(gw.store, otlp_endpoint=receiver.url)
        trace_id, caller = secrets.token_hex(16), secrets.token_hex(8)
        with tracing.caller_context(int(trace_id, 16), int(caller, 16), as_parent=True), \
                tracer.span("work"), tracer.span("inner"):
            pass
        other = secrets.token_hex(16)
        with tracing.caller_context(int(other, 16), int(caller, 16), as_parent=False), \
                tracer.span("linked") as linked:
            pass
        assert tracer.flush(20)
        by_name = {s["name"]: s for s in receiver.spans}
        assert by_name["work"]["trace_id"] == trace_id
        assert by_name["work"]["parent_id"] == caller  # W3C: the caller's span is the parent
        assert by_name["inner"]["parent_id"] == by_name["work"]["span_id"]
        local = get_trace(gw.store, trace_id)
        assert [s.name for s in local.roots] == ["work"]
        assert local.roots[0].attributes["workbench.remote_parent_id"] == caller
        assert linked.trace_id != other and by_name["linked"]["parent_id"] is None
        assert by_name["linked"]["attributes"]["workbench.caller_trace_id"] == other
    finally:
        receiver.close()


# -- audit: keyed chain and anchor -------------------------------------------------------
def _admin(store: Store) -> Policy:
    pol = Policy(store)
    key_id, _ = pol.create_key(team="t", budget_usd=1, actor=audit.cli_actor())
    pol.set_team("t", budget_usd=10, actor=audit.http_actor("key_admin1"))
    pol.revoke_key(key_id, actor=audit.cli_actor())
    return pol


def _data_dir() -> Path:
    return Path(os.environ["WORKBENCH_DATA_DIR"])


def test_audit_actors_key_file_and_a_clean_verify(any_store: Store) -> None:
    Policy(any_store).set_team("first", rpm=1, actor="cli")  # one action on a fresh engine
    anchor = audit.read_anchor(any_store)
    assert anchor is not None and anchor["rows"] == 2  # audit.keyed + team.set, committed
    _admin(any_store)
    rows = audit.entries(any_store)
    assert [r["actor"] for r in rows[:3]] == [f"cli:{getpass.getuser()}", "key:key_admin1",
                                              f"cli:{getpass.getuser()}"]
    key_file = audit._data_dir(any_store) / audit.KEY_FILE  # beside SQLite's file, else data dir
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().strip() not in json.dumps(rows, default=str)
    check = audit.verify(any_store)
    assert check.ok and check.keyed_rows == 5 and check.legacy_rows == 0, check
    assert check.anchor == "ok" and "intact" in check.summary()


def test_audit_deleting_the_newest_row_is_detected(any_store: Store) -> None:
    _admin(any_store)
    with any_store.write() as conn:
        newest = conn.execute(select(audit_table.c.id).order_by(audit_table.c.id.desc())
                              ).scalar()
        conn.execute(delete(audit_table).where(audit_table.c.id == newest))
    check = audit.verify(any_store)
    assert not check.ok and check.first_bad_id == newest and check.anchor == "stale"
    assert "newest rows were deleted" in check.reason


def test_audit_edit_and_rechain_with_plain_sha256_is_detected(any_store: Store) -> None:
    """The attack on the old chain: change a row, recompute every later hash."""
    _admin(any_store)
    with any_store.write() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(audit_table)
                                                       .order_by(audit_table.c.id))]
        rows[2]["details"] = {"budget_usd": 1_000_000}
        prev = audit.GENESIS
        for r in rows:
            payload = json.dumps([prev, repr(r["ts"]), r["actor"], r["action"], r["target"],
                                  r["details"]], sort_keys=True, default=str)
            h = hashlib.sha256(payload.encode()).hexdigest()
            conn.execute(update(audit_table).where(audit_table.c.id == r["id"])
                         .values(details=r["details"], prev_hash=prev, hash=h))
            prev = h
    check = audit.verify(any_store)
    assert not check.ok and check.first_bad_id == rows[0]["id"]  # the seal itself fails
    assert "HMAC does not match" in check.reason


def test_audit_wrong_and_missing_key(any_store: Store, monkeypatch: pytest.MonkeyPatch
                                     ) -> None:
    _admin(any_store)
    key_file = audit._data_dir(any_store) / audit.KEY_FILE
    monkeypatch.setenv(audit.KEY_ENV, secrets.token_hex(32))  # the env var wins over the file
    check = audit.verify(any_store)
    assert not check.ok and "wrong key" in check.reason
    monkeypatch.setenv(audit.KEY_ENV, "short")
    assert not audit.verify(any_store).ok
    monkeypatch.delenv(audit.KEY_ENV)
    assert audit.verify(any_store).ok  # the file's key again
    key_file.unlink()
    check = audit.verify(any_store)
    assert not check.ok and "no audit key" in check.reason
    # Appending would fork the chain under a new key: refused, and nothing is written.
    with pytest.raises(ConfigError, match="no audit key was found"):
        Policy(any_store).create_key(team="t")
    assert not key_file.exists()
    assert len(audit.entries(any_store)) == 4  # audit.keyed + the three actions


def test_audit_legacy_chain_is_sealed_and_reported(any_store: Store) -> None:
    """A chain written by the old code (plain SHA-256) verifies as legacy; the first keyed
    append seals it, after which editing a legacy row is caught too."""
    prev = audit.GENESIS
    with any_store.write() as conn:
        for i in range(3):
            ts, det = 1_700_000_000.0 + i, {"n": i}
            payload = json.dumps([prev, repr(ts), "cli", "key.create", f"key_{i}", det],
                                 sort_keys=True, default=str)
            h = hashlib.sha256(payload.encode()).hexdigest()
            conn.execute(insert(audit_table).values(ts=ts, actor="cli", action="key.create",
                                                    target=f"key_{i}", details=det,
                                                    prev_hash=prev, hash=h))
            prev = h
    before = audit.verify(any_store)
    assert before.ok and before.legacy_rows == 3 and before.keyed_rows == 0
    assert "not keyed yet" in before.summary()
    Policy(any_store).set_team("t", rpm=5, actor="admin")
    sealed = audit.verify(any_store)
    assert sealed.ok and sealed.legacy_rows == 3 and sealed.keyed_rows == 2
    seal = audit.entries(any_store)[1]
    assert seal["action"] == audit.MARKER and seal["details"]["legacy_rows"] == 3
    with any_store.write() as conn:  # edit a legacy row and re-chain the legacy part
        conn.execute(update(audit_table).where(audit_table.c.target == "key_2")
                     .values(details={"n": 99}))
        row = conn.execute(select(audit_table).where(audit_table.c.target == "key_2")).one()
        payload = json.dumps([row.prev_hash, repr(row.ts), row.actor, row.action, row.target,
                              {"n": 99}], sort_keys=True, default=str)
        conn.execute(update(audit_table).where(audit_table.c.id == row.id)
                     .values(hash=hashlib.sha256(payload.encode()).hexdigest()))
    check = audit.verify(any_store)
    assert not check.ok and check.first_bad_id == seal["id"]


def test_audit_rollback_never_moves_the_anchor(any_store: Store) -> None:
    _admin(any_store)
    with pytest.raises(RuntimeError), any_store.write() as conn:
        audit.append(any_store, conn, actor="cli", action="key.create", target="k")
        raise RuntimeError("the audited action failed after its row was written")
    assert audit.verify(any_store).ok  # a rolled-back row is not "the deleted newest row"


def test_cli_audit_verify_reports_and_exits_1(tmp_path: Path) -> None:
    def wb(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                              text=True, timeout=300, env=os.environ.copy())

    assert wb("keys", "create", "--team", "t").returncode == 0
    ok = wb("audit", "--verify")
    assert ok.returncode == 0 and "intact: 2 rows (2 keyed" in ok.stdout
    assert f"cli:{getpass.getuser()}" in wb("audit", "--json").stdout
    store = Store(f"sqlite:///{_data_dir() / 'workbench.db'}")
    with store.write() as conn:
        conn.execute(delete(audit_table).where(audit_table.c.action == "key.create"))
    store.dispose()
    broken = wb("audit", "--verify", "--json")
    assert broken.returncode == 1
    assert json.loads(broken.stdout)["anchor"] == "stale"


# -- nothing lost: spans of one-shot commands --------------------------------------------
def _wb(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                         text=True, timeout=600, env={**os.environ, **(env or {})})
    assert out.returncode == 0, out.stderr
    return out


def _tree(trace_id: str) -> dict[str, Any]:
    """The trace as another process reads it back."""
    return dict(json.loads(_wb("traces", "show", trace_id, "--json").stdout))


@pytest.mark.embedded
def test_one_shot_chat_and_ask_keep_every_span(tmp_path: Path) -> None:
    chat = json.loads(_wb("chat", "Say hi", "--max-tokens", "3", "--json").stdout)
    spans = _tree(chat["trace_id"])["spans"]
    assert [s["kind"] for s in spans] == ["LLM"]

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "lamp.md").write_text("# Lamp\n\nThe keeper lights the lamp at "
                                               "dusk.\n", encoding="utf-8")
    _wb("ingest", str(tmp_path / "docs"), "--collection", "c")
    from tests.observability.test_obs_otlp import HttpReceiver

    receiver = HttpReceiver()  # and a real OTLP/HTTP receiver on loopback
    try:
        ask = json.loads(_wb("ask", "When is the lamp lit?", "--collection", "c",
                             "--max-tokens", "4", "--json",
                             # free: the model answers (an LLM span in the tree too)
                             env={"WORKBENCH_OTLP_ENDPOINT": receiver.url,
                                  "WORKBENCH_ANSWER_STRATEGY": "free"}).stdout)
        exported = [s for s in receiver.spans if s["trace_id"] == ask["trace_id"]]
    finally:
        receiver.close()
    spans = _tree(ask["trace_id"])["spans"]
    kinds = {s["kind"] for s in spans}
    assert {"CHAIN", "RETRIEVER", "LLM", "EMBEDDING"} <= kinds, kinds
    ids = {s["span_id"] for s in spans}
    roots = [s for s in spans if s["parent_id"] is None]
    assert len(roots) == 1 and all(s["parent_id"] in ids for s in spans if s is not roots[0])
    # The collector got the same tree: every span, none orphaned.
    assert {s["span_id"] for s in exported} == ids
    assert {s["parent_id"] for s in exported} - {None} <= ids


def test_dropped_gateway_loses_no_spans(tmp_path: Path) -> None:
    """Library use: a Gateway made in a function and dropped at once (no close())."""
    script = tmp_path / "drop.py"
    script.write_text(
        "import gc, json\n"
        "from tests.fakes import FakeProvider\n"
        "from workbench.config import load_settings\n"
        "from workbench.models.gateway import Gateway\n"
        "from workbench.observability import tracing\n"
        "def once():\n"
        "    gw = Gateway(load_settings(models=[{'name': 'm', 'provider': 'fake'}],\n"
        "                 chat_model='m'), providers={'fake': FakeProvider()})\n"
        "    with tracing.span('outer', gateway=gw) as root:\n"
        "        gw.chat('hi')\n"
        "    return root.trace_id\n"
        "ids = [once() for _ in range(5)]\n"
        "gc.collect()\n"
        "print(json.dumps(ids))\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    store = Store(f"sqlite:///{_data_dir() / 'workbench.db'}")
    try:
        for tid in json.loads(out.stdout):
            trace = get_trace(store, tid)
            assert sorted(s.kind for s in trace.spans) == ["CHAIN", "LLM"]
            assert trace.llm_spans()[0].parent_id == trace.roots[0].span_id
    finally:
        store.dispose()


def test_one_shot_command_spans_reach_an_otlp_receiver_with_parents(tmp_path: Path) -> None:
    from tests.observability.test_obs_otlp import HttpReceiver

    receiver = HttpReceiver()
    try:
        toml = tmp_path / "workbench.toml"
        toml.write_text(
            "[workbench]\nchat_model = 'm'\nmodels = [{ name = 'm', provider = 'fake' }]\n",
            encoding="utf-8")
        script = tmp_path / "one_shot.py"
        script.write_text(
            "import json\n"
            "from tests.fakes import FakeProvider\n"
            "from workbench.config import load_settings\n"
            "from workbench.models.gateway import Gateway\n"
            "from workbench.observability import tracing\n"
            "gw = Gateway(load_settings(), providers={'fake': FakeProvider()})\n"
            "with tracing.span('ask', gateway=gw) as root:\n"
            "    with tracing.span('retrieve', kind='RETRIEVER'):\n"
            "        pass\n"
            "    gw.chat('hi')\n"
            "print(root.trace_id)\n", encoding="utf-8")
        env = {**os.environ, "WORKBENCH_OTLP_ENDPOINT": receiver.url,
               "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                              os.environ.get("PYTHONPATH", "")])}
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             timeout=300, env=env, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        trace_id = out.stdout.strip()
        got = [s for s in receiver.spans if s["trace_id"] == trace_id]
        assert sorted(s["name"] for s in got) == ["ask", "chat m", "retrieve"]
        ids = {s["span_id"] for s in got}
        assert all(s["parent_id"] in ids for s in got if s["name"] != "ask")  # no orphans
    finally:
        receiver.close()


# -- nothing lost: client input is a 400, not a 500 --------------------------------------
@pytest.mark.embedded
def test_embedded_prompt_over_the_context_window_is_400(make_gateway: Callable[..., Gateway]
                                                        ) -> None:
    gw = make_gateway()
    _, secret = gw.policy.create_key(team="t")
    client = TestClient(create_app(gw), raise_server_exceptions=False)
    long = "lighthouse keeper " * 1500  # ~3,000 tokens: over the 2,048-token window
    for stream in (False, True):
        resp = client.post(CHAT, headers=bearer(secret), json={
            "model": "smollm2-135m", "stream": stream, "max_tokens": 4,
            "messages": [{"role": "user", "content": long}]})
        assert resp.status_code == 400, resp.text
        err = resp.json()["error"]
        assert err["code"] == "context_length_exceeded" and "context window" in err["message"]
        assert "lighthouse" not in err["message"]
    ok = client.post(CHAT, headers=bearer(secret), json={
        "model": "smollm2-135m", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]})
    assert ok.status_code == 200
    rows = ledger.entries(gw.store, limit=10)
    assert [r["outcome"] for r in rows].count("error") == 2  # settled, not left reserved
    with gw.store.read() as conn:
        from workbench.store import reservations

        assert conn.execute(select(reservations)).first() is None


@pytest.mark.embedded
def test_service_question_of_3990_characters_is_400_not_500(
        make_gateway: Callable[..., Gateway], tmp_path: Path) -> None:
    from workbench.retrieval import ingest
    from workbench.service import ServiceSettings, create_service_app

    gw = make_gateway(answer_strategy="free")  # the question reaches the model
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Lamp\n\n" + "The keeper lights the lamp at dusk. " * 40,
                               encoding="utf-8")
    ingest(gw, [docs], collection="docs", progress=False)
    _, secret = gw.policy.create_key(team="t")
    app = create_service_app(gw, ServiceSettings(warmup=False, max_question_chars=4000))
    client = TestClient(app, raise_server_exceptions=False)
    # What a user pastes: a question and a log full of numbers (digits are one token each
    # for this tokenizer, so 3,990 characters are well over 2,048 tokens with the sources).
    question = ("When does the keeper light the lamp at dusk? Log: "
                + " ".join(str(4000 + i * 7) for i in range(800)))[:3990]
    assert len(question) == 3990
    resp = client.post("/ask", json={"question": question}, headers=bearer(secret))
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "context_length_exceeded"


DEEP = "[" * 20_000 + "]" * 20_000


def test_deep_json_is_400_on_the_proxy_and_feedback(make_gateway: Callable[..., Gateway]
                                                    ) -> None:
    from workbench.service import ServiceSettings, create_service_app

    gw = make_gateway(providers={"fake": FakeProvider()}, models=MODELS,
                      chat_model="fake-model")
    _, secret = gw.policy.create_key(team="t")
    headers = {**bearer(secret), "content-type": "application/json"}
    proxy = TestClient(create_app(gw), raise_server_exceptions=False)
    # Lenient feedback: the trace check would answer 404 before the body is looked at.
    service = TestClient(create_service_app(gw, ServiceSettings(warmup=False,
                                                                strict_feedback=False)),
                         raise_server_exceptions=False)
    bodies = [DEEP, '{"messages": ' + DEEP + "}",
              '{"model": "fake-model", "messages": [{"role": "user", "content": ' + DEEP + "}]}"]
    for body in bodies:
        resp = proxy.post(CHAT, content=body, headers=headers)
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "nested_too_deeply"
    feedback_bodies = [DEEP, '{"trace_id": ' + DEEP + "}",
                       '{"trace_id": "' + "a" * 32 + '", "kind": "thumbs", "value": true, '
                       '"metadata": {"x": ' + "[" * 200 + "]" * 200 + "}}"]
    for body in feedback_bodies:
        resp = service.post("/feedback", content=body, headers=headers)
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["code"] == "nested_too_deeply"
    resp = service.post("/ask", content='{"question": ' + DEEP + "}", headers=headers)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "nested_too_deeply"


# -- readiness: a store that cannot write ------------------------------------------------
def _read_only(store: Store) -> None:
    """Every new connection refuses writes (SQLite's query_only pragma): what a full disk
    or a read-only file look like to the store. Pooled connections are dropped first."""
    @event.listens_for(store.engine, "connect")
    def _ro(dbapi_conn: Any, _rec: Any) -> None:
        dbapi_conn.execute("PRAGMA query_only = ON")

    store.engine.dispose()


def test_readyz_is_red_when_the_store_cannot_write(make_gateway: Callable[..., Gateway]
                                                   ) -> None:
    from workbench.service import ServiceSettings, create_service_app

    gw = make_gateway(providers={"fake": FakeProvider()}, models=MODELS,
                      chat_model="fake-model", embed_model="fake-embed")
    _, secret = gw.policy.create_key(team="t")
    proxy = TestClient(create_app(gw), raise_server_exceptions=False)
    service = TestClient(create_service_app(gw, ServiceSettings(warmup=False)),
                         raise_server_exceptions=False)
    assert proxy.get("/readyz").json()["checks"]["store"] == "ok"
    _read_only(gw.store)
    for client in (proxy, service):
        resp = client.get("/readyz")
        assert resp.status_code == 503, resp.text
        store = resp.json()["checks"]["store"]
        assert store.startswith("error: cannot write") and "readonly" in store
    assert proxy.post(CHAT, json=HELLO, headers=bearer(secret)).status_code >= 400


def test_readyz_is_red_on_a_really_full_disk(make_gateway: Callable[..., Gateway],
                                             tmp_path: Path) -> None:
    """A tiny tmpfs filled to the last byte (needs root and mount rights: else skipped)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root or no CAP_SYS_ADMIN)")
    try:
        store = Store(f"sqlite:///{mnt / 'wb.db'}")
        gw = make_gateway(providers={"fake": FakeProvider()}, models=MODELS,
                          chat_model="fake-model", store=store)
        client = TestClient(create_app(gw), raise_server_exceptions=False)
        assert client.get("/readyz").status_code == 200
        with open(mnt / "filler", "wb", buffering=0) as fh:  # nothing left to flush at close
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        resp = client.get("/readyz")
        assert resp.status_code == 503, resp.text
        assert resp.json()["checks"]["store"].startswith("error: cannot write")
        store.dispose()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
