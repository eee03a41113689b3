"""Tool calling through the proxy, with the openai SDK: passed through to an
OpenAI-compatible upstream (the priced mock on loopback) and produced by the embedded
model through schema-constrained decoding; tool allowlists on the request and the answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from tests.priced_upstream import PricedUpstream
from tests.servers import live_server
from workbench.models import audit as audit_log
from workbench.models.gateway import Gateway
from workbench.models.server import create_app
from workbench.models.tool_schema import tool_events
from workbench.models.tools import set_allowlist

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city", "unit"]}}}
DELETE = {"type": "function", "function": {
    "name": "delete_db", "description": "Delete the whole database.",
    "parameters": {"type": "object", "properties": {}}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def events(gw: Gateway) -> list[dict[str, Any]]:
    with gw.store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(tool_events)
                                                       .order_by(tool_events.c.id))]


def collect_stream(stream: Any) -> tuple[dict[int, dict[str, str]], str, str | None]:
    """(tool calls by index, content, finish reason) from an openai SDK stream."""
    calls: dict[int, dict[str, str]] = {}
    content, finish = "", None
    for chunk in stream:
        for c in chunk.choices:
            for tc in c.delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"name": "", "arguments": "", "id": ""})
                if tc.id:
                    slot["id"] = tc.id
                if tc.function and tc.function.name:
                    slot["name"] += tc.function.name
                if tc.function and tc.function.arguments:
                    slot["arguments"] += tc.function.arguments
            content += c.delta.content or ""
            finish = c.finish_reason or finish
    return calls, content, finish


# -- an OpenAI-compatible upstream -----------------------------------------------------------
@pytest.fixture
def upstream() -> Iterator[PricedUpstream]:
    with PricedUpstream() as up:
        yield up


@pytest.fixture
def mock_gw(make_gateway: Any, upstream: PricedUpstream) -> Gateway:
    gw: Gateway = make_gateway(profile="mock", max_retries=0, profiles={"mock": {
        "base_url": upstream.base_url, "chat_model": "paid", "models": [
            {"name": "paid", "provider": "mock", "max_output_tokens": 100}]}})
    return gw


@pytest.fixture
def mock_proxy(mock_gw: Gateway) -> Iterator[tuple[str, Gateway]]:
    with live_server(create_app(mock_gw)) as url:
        yield f"{url}/v1", mock_gw


def _client(base_url: str, key: str) -> Any:
    import openai

    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_pass_through_to_an_openai_compatible_upstream(
        mock_proxy: tuple[str, Gateway], upstream: PricedUpstream, stream: bool) -> None:
    base_url, gw = mock_proxy
    _, key = gw.policy.create_key(team="t")
    upstream.tool_calls = [("get_weather", {"city": "Paris", "unit": "c"})]
    client = _client(base_url, key)
    kw: dict[str, Any] = {"model": "paid", "messages": ASK, "tools": [WEATHER],
                          "tool_choice": "auto"}
    if stream:
        calls, _, finish = collect_stream(client.chat.completions.create(stream=True, **kw))
        call = calls[0]
    else:
        resp = client.chat.completions.create(**kw)
        finish = resp.choices[0].finish_reason
        tc = resp.choices[0].message.tool_calls[0]
        call = {"id": tc.id, "name": tc.function.name, "arguments": tc.function.arguments}
    assert finish == "tool_calls"
    assert call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"city": "Paris", "unit": "c"}
    sent = upstream.bodies[-1]
    assert sent["tools"] == [WEATHER] and sent["tool_choice"] == "auto"
    # The second turn: the call and its result (role "tool") reach the upstream intact.
    upstream.tool_calls = None
    follow = [*ASK, {"role": "assistant", "content": None, "tool_calls": [
        {"id": call["id"], "type": "function",
         "function": {"name": "get_weather", "arguments": call["arguments"]}}]},
        {"role": "tool", "tool_call_id": call["id"], "content": "18 C, sunny"}]
    answer = client.chat.completions.create(model="paid", messages=follow, tools=[WEATHER])
    assert answer.choices[0].message.content
    sent = upstream.bodies[-1]["messages"]
    assert sent[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert sent[2] == {"role": "tool", "tool_call_id": call["id"], "content": "18 C, sunny"}
    kinds = [(e["kind"], e["tool"]) for e in events(gw)]
    assert kinds == [("call", "get_weather"), ("result", "get_weather")]


def test_request_offering_a_tool_the_key_may_not_use_is_403(
        mock_proxy: tuple[str, Gateway], upstream: PricedUpstream) -> None:
    import openai

    base_url, gw = mock_proxy
    key_id, key = gw.policy.create_key(team="t")
    set_allowlist(gw.store, "key", key_id, "get_weather")
    client = _client(base_url, key)
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(model="paid", messages=ASK, tools=[WEATHER, DELETE])
    err = info.value.body
    assert info.value.status_code == 403 and err["code"] == "tool_not_allowed"
    assert "delete_db" in err["message"] and "--tools" in err["message"]
    assert upstream.calls == 0  # refused before the upstream
    assert [(e["kind"], e["tool"]) for e in events(gw)] == [("denied", "delete_db")]
    # A team allowlist binds too, and a forced tool_choice counts as offering it.
    gw.policy.set_team("t2")
    set_allowlist(gw.store, "team", "t2", "none")
    _, key2 = gw.policy.create_key(team="t2")
    with pytest.raises(openai.PermissionDeniedError):
        _client(base_url, key2).chat.completions.create(
            model="paid", messages=ASK, tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_weather"}})
    # Plain chat still works for that key.
    assert _client(base_url, key2).chat.completions.create(
        model="paid", messages=ASK).choices[0].message.content


@pytest.mark.parametrize("stream", [False, True])
def test_a_call_to_a_tool_the_key_may_not_use_never_reaches_the_caller(
        mock_proxy: tuple[str, Gateway], upstream: PricedUpstream, stream: bool) -> None:
    base_url, gw = mock_proxy
    key_id, key = gw.policy.create_key(team="t")
    set_allowlist(gw.store, "key", key_id, "get_weather")
    # The model calls a tool it was not offered (and the key may not use) plus one allowed.
    upstream.tool_calls = [("delete_db", {}), ("get_weather", {"city": "Oslo", "unit": "c"})]
    client = _client(base_url, key)
    kw: dict[str, Any] = {"model": "paid", "messages": ASK, "tools": [WEATHER]}
    if stream:
        calls, _, finish = collect_stream(client.chat.completions.create(stream=True, **kw))
        names = [c["name"] for c in calls.values()]
    else:
        msg = client.chat.completions.create(**kw).choices[0]
        names, finish = [c.function.name for c in msg.message.tool_calls], msg.finish_reason
    assert names == ["get_weather"] and finish == "tool_calls"
    # Only the forbidden call: the answer becomes text saying it was withheld.
    upstream.tool_calls = [("delete_db", {})]
    if stream:
        calls, content, finish = collect_stream(client.chat.completions.create(stream=True, **kw))
        assert calls == {}
    else:
        choice = client.chat.completions.create(**kw).choices[0]
        assert not choice.message.tool_calls
        content, finish = choice.message.content or "", choice.finish_reason
    assert finish == "stop" and "delete_db" in content and "withheld" in content
    blocked = [e for e in events(gw) if e["kind"] == "blocked"]
    assert [e["tool"] for e in blocked] == ["delete_db", "delete_db"]
    rows = [r for r in audit_log.entries(gw.store, 50) if r["action"] == "tool.blocked"]
    assert len(rows) == 2 and rows[0]["details"]["tools"] == ["delete_db"]
    assert rows[0]["target"] == key_id


# -- the embedded model ------------------------------------------------------------------------
@pytest.mark.embedded
@pytest.mark.parametrize("stream", [False, True])
def test_embedded_model_calls_tools_with_valid_arguments(make_gateway: Any,
                                                          stream: bool) -> None:
    gw: Gateway = make_gateway()
    _, key = gw.policy.create_key(team="t")
    with live_server(create_app(gw)) as url:
        client = _client(f"{url}/v1", key)
        kw: dict[str, Any] = {"model": "smollm2-135m", "messages": ASK, "max_tokens": 64,
                              "temperature": 0, "tools": [WEATHER, DELETE]}
        named = {"type": "function", "function": {"name": "get_weather"}}
        if stream:
            calls, _, finish = collect_stream(client.chat.completions.create(
                stream=True, tool_choice=named, **kw))
            call = calls[0]
        else:
            choice = client.chat.completions.create(tool_choice=named, **kw).choices[0]
            finish = choice.finish_reason
            tc = choice.message.tool_calls[0]
            call = {"id": tc.id, "name": tc.function.name, "arguments": tc.function.arguments}
        assert finish == "tool_calls" and call["name"] == "get_weather" and call["id"]
        args = json.loads(call["arguments"])
        assert set(args) == {"city", "unit"} and args["unit"] in ("c", "f")
        assert isinstance(args["city"], str)
        # required: some offered tool, never free text; none: plain text, no call.
        choice = client.chat.completions.create(tool_choice="required", **kw).choices[0]
        assert choice.message.tool_calls[0].function.name in ("get_weather", "delete_db")
        choice = client.chat.completions.create(tool_choice="none", **{**kw, "max_tokens": 8}
                                                ).choices[0]
        assert not choice.message.tool_calls and choice.message.content


@pytest.mark.embedded
def test_embedded_tool_choice_naming_an_unknown_tool_is_400(make_gateway: Any) -> None:
    import openai

    gw: Gateway = make_gateway()
    _, key = gw.policy.create_key(team="t")
    with live_server(create_app(gw)) as url, pytest.raises(openai.BadRequestError) as info:
        _client(f"{url}/v1", key).chat.completions.create(
            model="smollm2-135m", messages=ASK, tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "nope"}})
    assert "not in tools" in info.value.body["message"]


# -- attacks on tool governance ----------------------------------------------------------------
def test_pii_in_tool_arguments_is_masked_for_the_caller_and_never_stored(
        mock_proxy: tuple[str, Gateway], upstream: PricedUpstream) -> None:
    from workbench.observability.traces import flush, get_trace

    base_url, gw = mock_proxy
    _, key = gw.policy.create_key(team="t")
    canary = "canary.7731@example.com"
    upstream.tool_calls = [("get_weather", {"city": "Paris", "unit": "c", "notify": canary})]
    raw = _client(base_url, key).chat.completions.with_raw_response.create(
        model="paid", messages=ASK, tools=[WEATHER])
    resp = raw.parse()
    args = resp.choices[0].message.tool_calls[0].function.arguments
    assert canary not in args and "[EMAIL]" in args
    assert canary not in json.dumps(events(gw), default=str)
    flush(gw.store)
    trace = get_trace(gw.store, raw.headers["x-workbench-trace-id"])
    spans = json.dumps([s.attributes for s in trace.spans], default=str)
    assert canary not in spans and "get_weather" in spans


def test_stream_guard_holds_deltas_until_the_name_arrives(make_gateway: Any) -> None:
    from workbench.models.tools import StreamGuard

    gw: Gateway = make_gateway()
    key_id, key = gw.policy.create_key(team="t")
    set_allowlist(gw.store, "key", key_id, "get_weather")
    guard = StreamGuard(gw.as_key(key), "0" * 32)

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = [
        chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"arguments": "{"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"name": "delete_db",
                                                       "arguments": "}"}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"arguments": "{\"ci"}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"name": "get_weather",
                                                       "arguments": "ty\": 1}"}}]}),
        chunk({}, "tool_calls")]
    shown = [c["choices"][0]["delta"] for c in guard.filter(chunks)]
    calls = [tc for d in shown for tc in d.get("tool_calls", [])]
    assert {tc["index"] for tc in calls} == {1}  # delete_db's fragments never shown
    assert "".join(tc["function"].get("arguments", "") for tc in calls) == '{"city": 1}'
    assert guard.blocked == ["delete_db"]


def test_cli_tools_option_validates_before_writing(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": repo, "WORKBENCH_DATA_DIR": str(tmp_path / "d")}

    def wb(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "workbench", *args], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)

    bad = wb("keys", "create", "--team", "t", "--tools", "get_weather,rm -rf")
    assert bad.returncode == 1 and "invalid tool name" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert json.loads(wb("keys", "list", "--json").stdout) == []  # no key was created
    made = json.loads(wb("keys", "create", "--team", "t", "--tools", "get_weather",
                         "--json").stdout)
    listed = json.loads(wb("tools", "list", "--json").stdout)
    assert listed == [{"subject": f"key:{made['id']}", "tools": "get_weather"}]
    missing = wb("keys", "set", "key_nope", "--tools", "none")
    assert missing.returncode == 1 and "no key with id key_nope" in missing.stderr
    assert wb("teams", "set", "t", "--tools", "none").returncode == 0
    assert {r["subject"] for r in json.loads(wb("tools", "list", "--json").stdout)} == {
        f"key:{made['id']}", "team:t"}


def test_allowlists_and_tool_events_on_sqlite_and_postgres(
        any_store: Any, make_gateway: Any, upstream: PricedUpstream) -> None:
    from workbench.errors import PermissionDenied
    from workbench.models.tools import allowlists

    gw: Gateway = make_gateway(store=any_store, profile="mock", max_retries=0, profiles={
        "mock": {"base_url": upstream.base_url, "chat_model": "paid", "models": [
            {"name": "paid", "provider": "mock", "max_output_tokens": 100}]}})
    gw.policy.set_team("ops")
    key_id, key = gw.policy.create_key(team="ops")
    set_allowlist(gw.store, "team", "ops", "get_weather,delete_db")
    set_allowlist(gw.store, "key", key_id, "get_weather")
    assert allowlists(gw.store) == {"team:ops": ["delete_db", "get_weather"],
                                    f"key:{key_id}": ["get_weather"]}
    bound = gw.as_key(key)
    with pytest.raises(PermissionDenied) as info:
        bound.chat(ASK, tools=[DELETE])
    assert info.value.code == "tool_not_allowed" and f"keys set {key_id}" in info.value.message
    upstream.tool_calls = [("delete_db", {})]
    res = bound.chat(ASK, tools=[WEATHER])
    assert "withheld" in res.text
    assert [(e["kind"], e["tool"]) for e in events(gw)] == [("denied", "delete_db"),
                                                            ("blocked", "delete_db")]
    set_allowlist(gw.store, "key", key_id, "all")  # the team's list still applies
    assert f"key:{key_id}" not in allowlists(gw.store)
    assert bound.chat(ASK, tools=[DELETE]).response["choices"][0]["message"]["tool_calls"]
