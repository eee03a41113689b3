"""Redaction over the whole request and the whole answer, as an attacker would try it.

A canary (email, Luhn-valid card, IBAN, phone, OpenAI/workbench/AWS keys, signed and
unsigned JWTs), wrapped in Unicode disguises, is placed in ANY field of a chat request
(content, parts, image URL, name, tool-call arguments, tool results, tools, stop,
response_format, user, unknown fields and their keys) and sent through the in-process
Gateway and the HTTP proxy. The provider records the body it got and echoes the canary
in its answer (content, tool-call arguments split over fragments, refusal, logprobs, an
unknown field), streamed and not. The canary must survive nowhere; block mode refuses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.disguises import (
    CANARIES,
    Canary,
    EchoProvider,
    canaries,
    disguised,
    strings,
    survives,
)
from workbench.errors import ContentBlocked
from workbench.models.gateway import Gateway
from workbench.models.redaction import walk_strings
from workbench.models.server import create_app

MODELS = [{"name": "fake-model", "provider": "fake"},
          {"name": "fake-embed", "provider": "fake", "kind": "embedding"}]
CHAT = "/v1/chat/completions"
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _with(field: str, text: str) -> dict[str, Any]:
    """A chat request carrying ``text`` in ``field``."""
    msg: dict[str, Any] = {"role": "user", "content": "hello"}
    body: dict[str, Any] = {"messages": [msg], "max_tokens": 16}
    call = {"id": "call_1", "type": "function",
            "function": {"name": "lookup", "arguments": json.dumps({"q": text})}}
    if field == "content":
        msg["content"] = f"note: {text} end"
    elif field == "parts":
        msg["content"] = [{"type": "text", "text": "see"}, {"type": "text", "text": text}]
    elif field == "image_url":
        msg["content"] = [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {
            "url": f"https://img.example/a.png?who={text}", "detail": "low"}}]
    elif field == "name":
        msg["name"] = text
    elif field == "tool_call_arguments":
        body["messages"] += [{"role": "assistant", "content": None, "tool_calls": [call]},
                             {"role": "tool", "tool_call_id": "call_1", "content": "done"}]
    elif field == "tool_result":
        body["messages"] += [{"role": "assistant", "content": None,
                              "tool_calls": [{**call, "function": {"name": "lookup",
                                                                   "arguments": "{}"}}]},
                             {"role": "tool", "tool_call_id": "call_1", "content": text}]
    elif field == "tools":
        body["tools"] = [{"type": "function", "function": {
            "name": "lookup", "description": f"Find {text}",
            "parameters": {"type": "object", "properties": {
                "q": {"type": "string", "description": text, "enum": [text]}}}}}]
    elif field == "tool_parameter_name":
        body["tools"] = [{"type": "function", "function": {
            "name": "lookup", "parameters": {"type": "object",
                                             "properties": {text: {"type": "string"}}}}}]
    elif field == "stop":
        body["stop"] = ["END", text]
    elif field == "response_format":
        body["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "answer", "schema": {"type": "object", "description": text}}}
    elif field == "user":
        body["user"] = text
    elif field == "unknown_field":
        body["metadata"] = {"note": [text]}
    elif field == "unknown_key":
        body["x_extra"] = {text: True}
    elif field == "message_extra":
        msg["x_note"] = text
    else:  # pragma: no cover - a typo in FIELDS
        raise AssertionError(field)
    return body


FIELDS = ["content", "parts", "image_url", "name", "tool_call_arguments", "tool_result",
          "tools", "tool_parameter_name", "stop", "response_format", "user",
          "unknown_field", "unknown_key", "message_extra"]


@st.composite
def attack(draw: st.DrawFn) -> tuple[Canary, str, str, int]:
    canary = draw(canaries)
    return canary, draw(disguised(canary)), draw(st.sampled_from(FIELDS)), draw(st.integers(1, 9))


def _gateway(make_gateway: Callable[..., Gateway], **settings: Any) -> tuple[Gateway, EchoProvider]:
    echo = EchoProvider()
    gw = make_gateway(providers={"fake": echo}, models=MODELS, chat_model="fake-model",
                      cache=False, **settings)
    return gw, echo


def _streamed(chunks: list[dict[str, Any]]) -> tuple[str, dict[int, str]]:
    """What an OpenAI client reassembles: the content and each tool call's arguments."""
    content, args = "", {}
    for c in chunks:
        for choice in c.get("choices") or []:
            delta = choice.get("delta") or {}
            content += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                ix = call["index"]
                args[ix] = args.get(ix, "") + ((call.get("function") or {}).get("arguments") or "")
    return content, args


def _assert_clean_answer(canary: Canary, answer: Any, chunks: list[dict[str, Any]]) -> None:
    assert not survives(canary, answer), answer
    content, args = _streamed(chunks)
    assert not survives(canary, content), content
    assert len(args) == 2
    for text in args.values():
        assert not survives(canary, text), text
        assert json.loads(text) == {"q": f"[{canary.kind}]"}  # still valid JSON
    assert not survives(canary, chunks)


@SETTINGS
@given(attack())
def test_gateway_never_lets_a_disguised_canary_through(make_gateway: Any,
                                                        case: tuple[Canary, str, str, int]
                                                        ) -> None:
    canary, text, field, size = case
    gw, echo = _gateway(make_gateway)
    echo.echo, echo.size = text, size
    body = _with(field, text)
    assert survives(canary, body)  # the attack is real
    result = gw.chat(dict(body))
    sent = echo.calls[-1]
    assert not survives(canary, sent), (field, sent)
    assert result.redactions.get(canary.kind, 0) >= 1
    assert sent["model"] == "fake-model" and sent["messages"][0]["role"] == "user"
    message = result.response["choices"][0]["message"]
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {
        "q": f"[{canary.kind}]"}
    assert result.response["choices"][0]["logprobs"] is None  # its tokens spelled it out
    stream = gw.stream(dict(body))
    chunks = list(stream)
    assert not survives(canary, echo.calls[-1])
    _assert_clean_answer(canary, result.response, chunks)
    assert stream.result is not None and not survives(canary, stream.result.response)


@SETTINGS
@given(attack())
def test_http_proxy_never_lets_a_disguised_canary_through(make_gateway: Any,
                                                           case: tuple[Canary, str, str, int]
                                                           ) -> None:
    canary, text, field, size = case
    gw, echo = _gateway(make_gateway)
    echo.echo, echo.size = text, size
    _, secret = gw.policy.create_key(team="t")
    client = TestClient(create_app(gw), raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {secret}"}
    body = _with(field, text)
    resp = client.post(CHAT, json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    assert not survives(canary, echo.calls[-1])
    with client.stream("POST", CHAT, json={**body, "stream": True}, headers=headers) as s:
        events = [line[len("data: "):] for line in s.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert not survives(canary, echo.calls[-1])
    _assert_clean_answer(canary, resp.json(), [json.loads(e) for e in events[:-1]])


@SETTINGS
@given(attack())
def test_block_mode_refuses_a_disguised_canary_in_any_field(make_gateway: Any,
                                                             case: tuple[Canary, str, str, int]
                                                             ) -> None:
    canary, text, field, _ = case
    gw, echo = _gateway(make_gateway)
    _, secret = gw.policy.create_key(team="t", guardrail_mode="block")
    before = len(echo.calls)
    with pytest.raises(ContentBlocked) as exc:
        gw.as_key(secret).chat(_with(field, text))
    assert canary.kind in exc.value.message and not survives(canary, exc.value.message)
    with pytest.raises(ContentBlocked):
        gw.as_key(secret).stream(_with(field, text))
    client = TestClient(create_app(gw), raise_server_exceptions=False)
    resp = client.post(CHAT, json=_with(field, text),
                       headers={"Authorization": f"Bearer {secret}"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "content_blocked"
    assert not survives(canary, resp.text)
    assert len(echo.calls) == before  # the provider never saw it


@SETTINGS
@given(canaries.flatmap(lambda c: st.tuples(st.just(c), disguised(c))))
def test_embedding_inputs_to_a_remote_provider_are_masked(make_gateway: Any,
                                                           case: tuple[Canary, str]) -> None:
    canary, text = case
    gw, echo = _gateway(make_gateway)
    gw.embed(["plain", f"embed {text} now"], model="fake-embed")
    assert echo.calls[-1]["input"][0] == "plain"
    assert not survives(canary, echo.calls[-1])


def test_log_only_sends_the_original_and_counts_every_field(make_gateway: Any) -> None:
    gw, echo = _gateway(make_gateway, guardrail_mode="log-only")
    body = _with("tools", "bob@example.com")
    body["user"] = "4111 1111 1111 1111"
    result = gw.chat(body)
    assert echo.calls[-1]["tools"] == body["tools"] and echo.calls[-1]["user"] == body["user"]
    # tools: description + parameter description + enum; user: the card.
    assert result.redactions == {"EMAIL": 3, "CARD": 1}


def test_off_sends_everything_as_is(make_gateway: Any) -> None:
    gw, echo = _gateway(make_gateway, guardrail_mode="off")
    body = _with("stop", "bob@example.com")
    result = gw.chat(body)
    assert echo.calls[-1]["stop"] == ["END", "bob@example.com"] and not result.redactions


@settings(max_examples=100, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(alphabet="abcdefghij XYZ_-.,", max_size=20),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(alphabet="abcxyz_", max_size=8), inner, max_size=4),
    max_leaves=30))
def test_a_body_without_pii_is_sent_unchanged(value: Any) -> None:
    # (No ":" in the alphabet: "a::b" is a valid IPv6 address, so masking it is right.)
    from workbench.guardrails import Guardrails

    g = Guardrails()
    assert walk_strings(value, lambda s: g.mask(s).text) == value


def test_walker_handles_deep_nesting_and_colliding_keys() -> None:
    deep: Any = "alice@example.com"
    for _ in range(50_000):
        deep = [deep]
    out = walk_strings(deep, lambda s: s.replace("alice@example.com", "[EMAIL]"))
    for _ in range(50_000):
        out = out[0]
    assert out == "[EMAIL]"
    keys = walk_strings({"a@x.io": 1, "b@y.io": 2, "[EMAIL]": 3},
                        lambda s: "[EMAIL]" if "@" in s else s)
    assert sorted(keys.values()) == [1, 2, 3]  # none overwritten


def test_every_canary_kind_is_covered() -> None:
    kinds = {c.kind for c in CANARIES}
    assert kinds == {"EMAIL", "CARD", "IBAN", "PHONE", "SECRET"}
    assert list(strings({"k": ['{"a": "b"}']})).count("b") == 1  # JSON inside strings
