"""Budgets and limits against a hostile caller and a misbehaving upstream.

Every test runs the real gateway (in process, and behind the real proxy app) against
:class:`tests.priced_upstream.PricedUpstream`, a real HTTP server on loopback that bills
like a provider, on SQLite and PostgreSQL. The promises: a key never spends past its
budget (the upstream's own invoice stays under it), tpm counts actual tokens, usage an
upstream reports is validated, every malformed answer is an OpenAI-shaped 502 with the
reservation settled, and reservations of a killed gateway are swept at the next start
(never those of a live process).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select, update

from tests.priced_upstream import (
    CHAT_BODIES,
    EMBED_BODIES,
    USAGE_OVERRIDES,
    PricedUpstream,
    prompt_tokens,
)
from tests.servers import free_port, stop_process
from workbench.errors import BadRequest, BudgetExceeded, RateLimited, UpstreamError
from workbench.models import metering
from workbench.models.gateway import Gateway
from workbench.models.server import create_app
from workbench.store import Store, audit, keys, ledger, processes, rate_windows, reservations

PRICE_IN, PRICE_OUT = 1000.0, 2000.0  # USD per million tokens: $0.001 / $0.002 per token
HIDDEN = "A" * 400_000
HI = {"role": "user", "content": "hi"}
CHAT = "/v1/chat/completions"


# -- fixtures and helpers ------------------------------------------------------------------
@pytest.fixture
def upstream() -> Iterator[PricedUpstream]:
    with PricedUpstream(price_in_mtok=PRICE_IN, price_out_mtok=PRICE_OUT) as up:
        yield up


def mock_profile(base_url: str) -> dict[str, Any]:
    return {"base_url": base_url, "chat_model": "paid", "embed_model": "paid-embed",
            "models": [
                {"name": "paid", "provider": "mock", "input_usd_per_mtok": PRICE_IN,
                 "output_usd_per_mtok": PRICE_OUT, "max_output_tokens": 100},
                {"name": "paid-embed", "provider": "mock", "kind": "embedding",
                 "input_usd_per_mtok": PRICE_IN}]}


def priced_gateway(make_gateway: Any, store: Store, upstream: PricedUpstream) -> Gateway:
    gw: Gateway = make_gateway(store=store, profile="mock", max_retries=0,
                               profiles={"mock": mock_profile(upstream.base_url)})
    return gw


def state(store: Store, key_id: str) -> dict[str, Any]:
    with store.read() as conn:
        row = conn.execute(select(keys.c.spent_usd, keys.c.reserved_usd)
                           .where(keys.c.id == key_id)).one()
        n_open = conn.execute(select(func.count()).select_from(reservations)).scalar_one()
    return {"spent": row.spent_usd, "reserved": row.reserved_usd, "open": n_open}


def assert_settled(store: Store, key_id: str) -> dict[str, Any]:
    now = state(store, key_id)
    assert now["open"] == 0 and now["reserved"] == pytest.approx(0.0, abs=1e-9), now
    return now


def assert_openai_error(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "code"}
    assert "Traceback" not in resp.text
    return dict(body["error"])


def ledger_rows(store: Store, key_id: str) -> list[Any]:
    with store.read() as conn:
        return list(conn.execute(select(ledger).where(ledger.c.key_id == key_id)
                                 .order_by(ledger.c.id)))


def audit_rows(store: Store, action: str) -> list[Any]:
    with store.read() as conn:
        return list(conn.execute(select(audit).where(audit.c.action == action)))


def sse_data(text: str) -> list[str]:
    return [block[len("data: "):] for block in text.split("\n\n") if block.startswith("data: ")]


# -- 1. the worst-case estimate covers everything that carries prompt text ---------------
HIDDEN_SHAPES: dict[str, dict[str, Any]] = {
    "list_content": {"messages": [{"role": "user", "content": [
        {"type": "text", "text": HIDDEN}]}]},
    "name": {"messages": [{**HI, "name": HIDDEN}]},
    "tool_call_arguments": {"messages": [HI, {"role": "assistant", "content": None,
                                              "tool_calls": [{"id": "c1", "type": "function",
                                                              "function": {"name": "f",
                                                                           "arguments": json.dumps(
                                                                               {"x": HIDDEN})}}]},
                                         {"role": "tool", "tool_call_id": "c1", "content": "ok"}]},
    "tools": {"messages": [HI], "tools": [{"type": "function", "function": {
        "name": "f", "description": HIDDEN, "parameters": {"type": "object"}}}]},
    "response_format": {"messages": [HI], "response_format": {
        "type": "json_schema", "json_schema": {"name": "x", "schema": {"description": HIDDEN}}}},
    "image_parts": {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://img.invalid/a.png"}}]}]},
}


@pytest.mark.parametrize("via", ["proxy", "in_process"])
@pytest.mark.parametrize("shape", sorted(HIDDEN_SHAPES))
def test_request_whose_worst_case_exceeds_the_budget_is_refused_before_the_call(
        any_store: Store, make_gateway: Any, upstream: PricedUpstream, shape: str,
        via: str) -> None:
    gw = priced_gateway(make_gateway, any_store, upstream)
    key_id, secret = gw.policy.create_key(team="t", budget_usd=0.10)
    body = {"model": "paid", "max_tokens": 10, **HIDDEN_SHAPES[shape]}
    if via == "proxy":
        client = TestClient(create_app(gw), raise_server_exceptions=False)
        resp = client.post(CHAT, json=body, headers={"Authorization": f"Bearer {secret}"})
        assert assert_openai_error(resp, 429)["code"] == "insufficient_quota"
    else:
        with pytest.raises(BudgetExceeded):
            gw.as_key(secret).chat(body)
    assert upstream.calls == 0  # refused before the provider was called
    assert upstream.billed_usd == 0.0
    assert assert_settled(any_store, key_id)["spent"] == 0.0


def test_the_400k_list_content_repro_cannot_spend_past_ten_cents(
        any_store: Store, make_gateway: Any, upstream: PricedUpstream) -> None:
    gw = priced_gateway(make_gateway, any_store, upstream)
    key_id, secret = gw.policy.create_key(team="t", budget_usd=0.10)
    client = TestClient(create_app(gw), raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {secret}"}
    big = {"model": "paid", "messages": [{"role": "user", "content": [
        {"type": "text", "text": HIDDEN}]}]}
    small = {"model": "paid", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "hello there"}]}]}
    statuses = [client.post(CHAT, json=big, headers=headers).status_code]
    for _ in range(40):  # small list-content calls until the budget is spent
        statuses.append(client.post(CHAT, json=small, headers=headers).status_code)
    assert statuses[0] == 429 and 200 in statuses and statuses[-1] == 429
    spent = assert_settled(any_store, key_id)["spent"]
    assert upstream.billed_usd <= 0.10 + 1e-9  # the provider's invoice, not our ledger
    assert spent == pytest.approx(upstream.billed_usd)  # honest upstream: ledger == invoice


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
_part = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, _text),
    st.just({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}),
    st.builds(lambda t: {"type": "input_audio", "input_audio": {"data": t, "format": "wav"}},
              _text))
_message = st.one_of(
    st.builds(lambda t: {"role": "user", "content": t}, _text),
    st.builds(lambda ps: {"role": "user", "content": ps}, st.lists(_part, max_size=4)),
    st.builds(lambda t, n: {"role": "user", "content": t, "name": n}, _text, _text),
    st.builds(lambda a: {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": a}}]}, _text),
    st.builds(lambda t: {"role": "tool", "tool_call_id": "c", "content": t}, _text))
_body = st.fixed_dictionaries(
    {"messages": st.lists(_message, min_size=1, max_size=5)},
    optional={"tools": st.builds(lambda d: [{"type": "function", "function": {
                  "name": "f", "description": d, "parameters": {"type": "object"}}}], _text),
              "response_format": st.builds(lambda d: {"type": "json_schema", "json_schema": {
                  "name": "s", "schema": {"description": d}}}, _text),
              "x_vendor_hint": _text})


@given(_body)
@settings(max_examples=300, deadline=None)
def test_worst_case_estimate_bounds_what_a_provider_can_bill(body: dict[str, Any]) -> None:
    # A BPE tokenizer never makes more tokens than UTF-8 bytes; the priced upstream bills
    # every string it reads (messages, names, tool calls, tools, extras) and images.
    assert metering.prompt_size(body).worst_tokens >= prompt_tokens(body)


@given(st.lists(_body, min_size=1, max_size=6))
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_any_sequence_of_requests_stays_under_the_budget(
        make_gateway: Any, upstream: PricedUpstream, tmp_path: Path,
        bodies: list[dict[str, Any]]) -> None:
    store = Store(f"sqlite:///{tmp_path / 'prop.db'}")
    gw = priced_gateway(make_gateway, store, upstream)
    budget = 0.05
    key_id, secret = gw.policy.create_key(team="t", budget_usd=budget)
    billed_before = upstream.billed_usd
    user = gw.as_key(secret)
    try:
        for body in bodies:
            # BadRequest: a gateway that refuses unknown fields (x_vendor_hint) may say so.
            with contextlib.suppress(BudgetExceeded, BadRequest):
                user.chat({"model": "paid", "max_tokens": 5, **body})
        spent = assert_settled(store, key_id)["spent"]
    finally:
        store.dispose()
    assert spent <= budget + 1e-9
    assert upstream.billed_usd - billed_before <= budget + 1e-9
    assert spent == pytest.approx(upstream.billed_usd - billed_before)


@pytest.mark.parametrize("inputs", [HIDDEN, ["B" * 500] * 800])
def test_embeddings_worst_case_is_refused_before_the_call(
        any_store: Store, make_gateway: Any, upstream: PricedUpstream, inputs: Any) -> None:
    gw = priced_gateway(make_gateway, any_store, upstream)
    key_id, secret = gw.policy.create_key(team="t", budget_usd=0.10)
    client = TestClient(create_app(gw), raise_server_exceptions=False)
    resp = client.post("/v1/embeddings", json={"model": "paid-embed", "input": inputs},
                       headers={"Authorization": f"Bearer {secret}"})
    assert assert_openai_error(resp, 429)["code"] == "insufficient_quota"
    assert upstream.calls == 0
    ok = gw.as_key(secret).embed(["short text"], model="paid-embed")  # a small one fits
    assert ok.cost_usd == pytest.approx(upstream.billed_usd) and ok.cost_usd > 0
    assert assert_settled(any_store, key_id)["spent"] == pytest.approx(upstream.billed_usd)


# -- 2. tpm counts actual prompt and completion tokens -----------------------------------
def _window_tokens(store: Store, key_id: str) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.coalesce(func.sum(rate_windows.c.tokens), 0))
                                .where(rate_windows.c.subject == f"key:{key_id}")).scalar_one())


def _usage_total(upstream: PricedUpstream) -> int:
    total = 0
    for body in upstream.bodies:
        if "messages" in body:
            total += prompt_tokens(body) + min(5, int(body.get("max_tokens") or 5))
        else:
            total += sum(-(-len(t.encode()) // 3) + 1 for t in body["input"])
    return total


@pytest.mark.parametrize("kind", ["chat", "stream", "embed"])
def test_tpm_counts_the_actual_prompt_tokens(any_store: Store, make_gateway: Any,
                                             upstream: PricedUpstream, kind: str) -> None:
    gw = priced_gateway(make_gateway, any_store, upstream)
    key_id, secret = gw.policy.create_key(team="t", tpm=1000)
    user = gw.as_key(secret)
    text = "z" * 4000  # ~1,337 tokens at the upstream: over the key's 1,000 tpm
    if kind == "chat":
        user.chat({"model": "paid", "max_tokens": 5, "messages": [
            {"role": "user", "content": [{"type": "text", "text": text}]}]})
    elif kind == "stream":
        s = user.stream({"model": "paid", "max_tokens": 5, "messages": [
            {"role": "user", "content": [{"type": "text", "text": text}]}]})
        assert "".join(s.text())
    else:
        user.embed([text], model="paid-embed")
    # The window holds what the upstream counted (prompt + completion), not an estimate.
    assert _window_tokens(any_store, key_id) == _usage_total(upstream)
    with pytest.raises(RateLimited):
        user.chat("hi", model="paid", max_tokens=5)
    assert len(upstream.bodies) == 1


# -- 3. usage is validated and clamped; overcharges are anomalies ------------------------
@pytest.mark.parametrize("behaviour", sorted(set(USAGE_OVERRIDES) - {"usage_string",
                                                                     "usage_list"}))
@pytest.mark.parametrize("kind", ["chat", "stream"])
def test_lying_usage_never_credits_a_key_and_is_recorded(
        any_store: Store, make_gateway: Any, upstream: PricedUpstream, behaviour: str,
        kind: str) -> None:
    upstream.behaviour = behaviour
    gw = priced_gateway(make_gateway, any_store, upstream)
    key_id, secret = gw.policy.create_key(team="t", budget_usd=1.0)
    client = TestClient(create_app(gw), raise_server_exceptions=False)
    body = {"model": "paid", "max_tokens": 20, "messages": [HI], "stream": kind == "stream"}
    resp = client.post(CHAT, json=body, headers={"Authorization": f"Bearer {secret}"})
    assert resp.status_code == 200, resp.text
    spent = assert_settled(any_store, key_id)["spent"]
    worst = gw.spec("paid").cost(metering.prompt_size(
        {**body, "max_tokens": 20}).worst_tokens, 20)
    assert 0 < spent <= worst + 1e-12  # never a credit, never past the reservation
    (row,) = ledger_rows(any_store, key_id)
    assert row.outcome == "ok" and row.anomaly and row.cost_usd == pytest.approx(spent)
    assert row.tokens_in >= 0 and row.tokens_out >= 0
    audited = [r for r in audit_rows(any_store, "usage.anomaly") if r.target == key_id]
    if behaviour == "no_usage":
        assert row.anomaly == "usage_missing" and not audited
    else:
        assert audited and audited[0].details["charged_usd"] == pytest.approx(spent)
    if behaviour in ("overreport", "huge_usage"):
        assert "charge_above_reservation" in row.anomaly
        assert audited[0].details["reported_usd"] > audited[0].details["charged_usd"]
        assert spent == pytest.approx(worst)


def test_negative_prompt_tokens_charge_the_estimate(any_store: Store, make_gateway: Any,
                                                    upstream: PricedUpstream) -> None:
    upstream.behaviour = "negative_usage"
    gw = priced_gateway(make_gateway, any_store, upstream)
    key_id, secret = gw.policy.create_key(team="t", budget_usd=1.0)
    res = gw.as_key(secret).chat("hi", model="paid", max_tokens=5)
    assert res.cost_usd > 0
    (row,) = ledger_rows(any_store, key_id)
    assert row.tokens_in > 0 and row.anomaly == "usage_invalid"
    assert assert_settled(any_store, key_id)["spent"] == pytest.approx(res.cost_usd)
    check = gw.as_key(secret).embed(["x"], model="paid-embed")  # embeddings too
    assert check.cost_usd > 0 and ledger_rows(any_store, key_id)[-1].anomaly == "usage_invalid"


# -- 4. malformed answers: OpenAI-shaped 502, reservation settled ------------------------
CHAT_FAULTS = sorted(CHAT_BODIES) + ["usage_string", "usage_list", "not_json"]
STREAM_FAULTS_ALL = ["stream_not_sse", "stream_bad_chunk", "stream_choices_ints",
                     "stream_breaks", "stream_no_done", "usage_string", "not_json"]
EMBED_FAULTS = sorted(EMBED_BODIES) + ["usage_string", "not_json"]
FAULT_CASES = ([("chat", b) for b in CHAT_FAULTS] + [("stream", b) for b in STREAM_FAULTS_ALL]
               + [("embed", b) for b in EMBED_FAULTS])


@pytest.mark.parametrize(("kind", "behaviour"), FAULT_CASES)
def test_malformed_upstream_answer_is_a_502_through_the_proxy(
        any_store: Store, make_gateway: Any, upstream: PricedUpstream, kind: str,
        behaviour: str) -> None:
    upstream.behaviour = behaviour
    gw = priced_gateway(make_gateway, any_store, upstream)
    key_id, secret = gw.policy.create_key(team="t", budget_usd=1.0)
    client = TestClient(create_app(gw), raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {secret}"}
    if kind == "embed":
        resp = client.post("/v1/embeddings", json={"model": "paid-embed", "input": ["a"]},
                           headers=headers)
    else:
        resp = client.post(CHAT, json={"model": "paid", "max_tokens": 20, "messages": [HI],
                                       "stream": kind == "stream"}, headers=headers)
    if resp.status_code == 200 and kind == "stream":
        # The upstream failed after the first chunk: headers were sent, so the failure
        # is an OpenAI error event (the SDKs raise APIError) and the stream has no [DONE].
        events = sse_data(resp.text)
        assert events[-1] != "[DONE]"
        assert json.loads(events[-1])["error"]["type"] == "upstream_error"
    else:
        err = assert_openai_error(resp, 502)
        assert err["type"] == "upstream_error"
    now = assert_settled(any_store, key_id)
    (row,) = ledger_rows(any_store, key_id)
    assert row.outcome == "error" and row.cost_usd == pytest.approx(now["spent"])
    assert now["spent"] <= gw.spec("paid").cost(metering.prompt_size(
        {"messages": [HI]}).worst_tokens, 20) + 1e-12


@pytest.mark.parametrize(("kind", "behaviour"), FAULT_CASES)
def test_malformed_upstream_answer_raises_upstream_error_in_process(
        tmp_path: Path, make_gateway: Any, upstream: PricedUpstream, kind: str,
        behaviour: str) -> None:
    store = Store(f"sqlite:///{tmp_path / 'inproc.db'}")
    upstream.behaviour = behaviour
    gw = priced_gateway(make_gateway, store, upstream)
    key_id, secret = gw.policy.create_key(team="t", budget_usd=1.0)
    user = gw.as_key(secret)
    with pytest.raises(UpstreamError) as caught:
        if kind == "embed":
            user.embed(["a"], model="paid-embed")
        elif kind == "chat":
            user.chat("hi", model="paid", max_tokens=20)
        else:
            list(user.stream("hi", model="paid", max_tokens=20))
    assert caught.value.status == 502
    assert_settled(store, key_id)
    assert [r.outcome for r in ledger_rows(store, key_id)] == ["error"]


# -- 5. reservations of dead processes are swept; live ones never ------------------------
def _env(store_url: str, root: Path) -> dict[str, str]:
    # Processes that share a store share its audit key (the chain is keyed): give the
    # child this process's key, as an operator does with WORKBENCH_AUDIT_KEY or the file.
    key = Path(os.environ["WORKBENCH_DATA_DIR"]) / "audit.key"
    if key.exists():
        (root / ".wb").mkdir(exist_ok=True)
        shutil.copy2(key, root / ".wb" / "audit.key")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env.update(WORKBENCH_STORE_URL=store_url, WORKBENCH_DATA_DIR=str(root / ".wb"),
               WORKBENCH_CONFIG=str(root / "workbench.toml"))
    return env


_HOLDER = ("import sys; from workbench.store import Store; "
           "from workbench.models.policy import Policy; pol = Policy(Store(sys.argv[1])); "
           "pol.reserve(pol.authenticate(sys.argv[2]), float(sys.argv[3])); "
           "print('held', flush=True); sys.stdin.read()")


def _sweep_cli(store: Store, root: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "workbench", "keys", "sweep", "--json"],
                         capture_output=True, text=True, env=_env(store.url, root),
                         cwd=root, timeout=120)
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_sweep_never_releases_a_live_process_reservation(any_store: Store, make_gateway: Any,
                                                         tmp_path: Path) -> None:
    gw = make_gateway(store=any_store)
    key_id, secret = gw.policy.create_key(team="t", budget_usd=1.0)
    live = subprocess.Popen([sys.executable, "-c", _HOLDER, any_store.url, secret, "0.25"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert live.stdout is not None and live.stdout.readline().strip() == "held"
        mine = gw.policy.reserve(gw.policy.authenticate(secret), 0.125)  # this process
        # A replica on another machine, heartbeat fresh: alive as far as anyone can tell.
        now = time.time()
        with any_store.write() as conn:
            conn.execute(insert(processes).values(
                id="f" * 32, host="elsewhere", host_key="other-machine", pid=live.pid,
                pid_start=None, started_at=now, heartbeat_at=now))
            conn.execute(insert(reservations).values(
                id="r" * 32, key_id=key_id, team="t", amount_usd=0.0625, created_at=now,
                owner="f" * 32))
            conn.execute(update(keys).where(keys.c.id == key_id)
                         .values(reserved_usd=keys.c.reserved_usd + 0.0625))

        first = _sweep_cli(any_store, tmp_path)  # from a third process
        assert first["released"] == 0 and first["kept"] == 3
        assert state(any_store, key_id) == {"spent": 0.0, "reserved": pytest.approx(0.4375),
                                            "open": 3}

        live.kill()  # kill -9 the holder
        live.wait()
        with any_store.write() as conn:  # and let the remote replica miss its heartbeats
            conn.execute(update(processes).where(processes.c.id == "f" * 32)
                         .values(heartbeat_at=now - 3600))
        second = _sweep_cli(any_store, tmp_path)
        assert second["released"] == 2 and second["kept"] == 1
        assert second["released_usd"] == pytest.approx(0.3125)
        assert state(any_store, key_id) == {"spent": 0.0, "reserved": pytest.approx(0.125),
                                            "open": 1}
        assert audit_rows(any_store, "reservations.sweep")
        gw.policy.settle(mine, 0.01)
        assert state(any_store, key_id) == {"spent": pytest.approx(0.01),
                                            "reserved": pytest.approx(0.0, abs=1e-9), "open": 0}
        human = subprocess.run([sys.executable, "-m", "workbench", "keys", "sweep"],
                               capture_output=True, text=True, timeout=120,
                               env=_env(any_store.url, tmp_path), cwd=tmp_path)
        assert human.returncode == 0 and "released 0 reservations" in human.stdout
    finally:
        if live.poll() is None:
            live.kill()
            live.wait()


def _write_gateway_config(root: Path, upstream: PricedUpstream) -> None:
    models = ", ".join(
        "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in m.items()) + " }"
        for m in mock_profile(upstream.base_url)["models"])
    (root / "workbench.toml").write_text(
        "[workbench]\nprofile = \"mock\"\nmax_retries = 0\nrequest_timeout_s = 300\n\n"
        "[workbench.profiles.mock]\nkind = \"openai\"\n"
        f"base_url = {json.dumps(upstream.base_url)}\nchat_model = \"paid\"\n"
        f"embed_model = \"paid-embed\"\nmodels = [{models}]\n", encoding="utf-8")


class _GatewayProcess:
    def __init__(self, root: Path, store_url: str, name: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = root / f"{name}.log"
        self._out = open(self.log, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workbench", "gateway", "--port", str(self.port)],
            cwd=root, env=_env(store_url, root), stdout=self._out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"gateway not ready:\n{self.log.read_text()}")

    def close(self) -> None:
        stop_process(self.proc)
        self._out.close()


@pytest.mark.slow
def test_kill_9_with_20_in_flight_then_restart_sweeps_every_reservation(
        any_store: Store, make_gateway: Any, tmp_path: Path) -> None:
    with PricedUpstream(price_in_mtok=PRICE_IN, price_out_mtok=PRICE_OUT,
                        behaviour="hold") as upstream:
        _write_gateway_config(tmp_path, upstream)
        gw = make_gateway(store=any_store)
        key_id, secret = gw.policy.create_key(team="crash", budget_usd=10.0)
        gw.policy.set_team("crash", budget_usd=20.0)
        first = _GatewayProcess(tmp_path, any_store.url, "first")
        second: _GatewayProcess | None = None
        threads: list[threading.Thread] = []
        try:
            first.wait_ready()

            answers: list[str] = []  # none expected before the kill

            def call() -> None:
                try:
                    r = httpx.post(first.base + CHAT, json={"model": "paid", "max_tokens": 50,
                                                            "messages": [HI]},
                                   headers={"Authorization": f"Bearer {secret}"}, timeout=300)
                    answers.append(f"{r.status_code} {r.text[:300]}")
                except httpx.HTTPError:
                    pass  # the gateway dies under it

            threads = [threading.Thread(target=call) for _ in range(20)]
            for t in threads:
                t.start()
            try:
                upstream.wait_in_flight(20, timeout_s=180)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; answers {answers}; gateway log:\n"
                                     f"{first.log.read_text()[-3000:]}") from None
            held = state(any_store, key_id)
            assert held["open"] == 20 and held["reserved"] > 0

            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait()
            assert state(any_store, key_id)["open"] == 20  # nobody settles for the dead

            second = _GatewayProcess(tmp_path, any_store.url, "second")
            second.wait_ready()
            assert assert_settled(any_store, key_id) == {"spent": 0.0,
                                                         "reserved": pytest.approx(0.0, abs=1e-9),
                                                         "open": 0}
            with any_store.read() as conn:
                team = conn.execute(select(keys.c.team).where(keys.c.id == key_id)).scalar_one()
                from workbench.store import teams

                trow = conn.execute(select(teams).where(teams.c.name == team)).one()
            assert trow.reserved_usd == pytest.approx(0.0, abs=1e-9) and trow.spent_usd == 0.0
            assert "released 20 reservations" in second.log.read_text()
            (swept,) = audit_rows(any_store, "reservations.sweep")
            assert swept.details["released"] == 20
            # The new gateway serves: budgets are whole again.
            upstream.behaviour = "ok"
            resp = httpx.post(second.base + CHAT, json={"model": "paid", "max_tokens": 5,
                                                        "messages": [HI]},
                              headers={"Authorization": f"Bearer {secret}"}, timeout=60)
            assert resp.status_code == 200, resp.text
            assert assert_settled(any_store, key_id)["spent"] == pytest.approx(
                upstream.cost(prompt_tokens({"messages": [HI]}), 5))
        finally:
            upstream.release()
            first.close()
            if second is not None:
                second.close()
            for t in threads:
                t.join(timeout=60)
