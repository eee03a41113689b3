"""Tool calling on the embedded model by schema-constrained decoding.

Small local models (SmolLM2 135M) do not emit tool calls of their own accord, and their
free-form JSON does not parse. So when a request offers ``tools`` the embedded provider
asks llama.cpp for JSON that *must* match a schema built from the tools' parameter
schemas (compiled to a GBNF grammar), then turns that JSON into OpenAI's ``tool_calls``:

- ``tool_choice="required"``: ``{"name": <one of the tools>, "arguments": {...}}``;
- a named tool: the same with that one name;
- ``"auto"`` (the default): either a call as above or ``{"answer": "..."}`` (plain text);
- ``"none"``: the tools are dropped and the model answers as usual.

The grammar guarantees *valid* calls (a known name, arguments that match the schema);
whether the 135M model picks the *right* tool is another matter: the labs say so. One
call per turn (``parallel_tool_calls`` is ignored). Earlier tool calls and ``tool``
results in the conversation are rendered as text the chat template understands.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from workbench.errors import BadRequest

ANSWER = "answer"


@dataclass
class ToolPlan:
    """What the embedded provider runs instead of the caller's messages."""

    messages: list[dict[str, Any]]
    schema: dict[str, Any]
    names: list[str]


def _functions(body: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise BadRequest("tools[] must be {'type': 'function', 'function': {...}} objects")
        fn = tool.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise BadRequest("each tool needs function.name (a string)")
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(params, dict):
            raise BadRequest(f"tool {fn['name']!r}: function.parameters must be a JSON schema "
                             "object")
        out.append({"name": fn["name"], "description": str(fn.get("description") or ""),
                    "parameters": params})
    return out


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """Objects without ``additionalProperties`` get ``false``: a small model given the
    freedom invents keys."""
    if schema.get("type") == "object" and "additionalProperties" not in schema:
        schema = {**schema, "additionalProperties": False}
    props = schema.get("properties")
    if isinstance(props, dict):
        schema = {**schema, "properties": {
            k: _closed(v) if isinstance(v, dict) else v for k, v in props.items()}}
    return schema


def _call_schema(fn: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"name": {"const": fn["name"]},
                                             "arguments": _closed(fn["parameters"])},
            "required": ["name", "arguments"], "additionalProperties": False}


def choice_of(body: dict[str, Any]) -> str | None:
    """``"none"``, ``"auto"``, ``"required"`` or the forced tool's name (None: no tools)."""
    if not body.get("tools"):
        return None
    choice = body.get("tool_choice", "auto")
    if choice in ("none", "auto", "required"):
        return str(choice)
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if isinstance(name, str):
            return name
    raise BadRequest("tool_choice must be 'none', 'auto', 'required' or "
                     "{'type': 'function', 'function': {'name': ...}}")


def _tool_text(fns: list[dict[str, Any]], choice: str) -> str:
    lines = ["You can call these tools:"]
    for fn in fns:
        lines.append(f"- {fn['name']}: {fn['description']} Arguments (JSON schema): "
                     f"{json.dumps(fn['parameters'], separators=(',', ':'))}")
    lines.append('To call a tool, reply with JSON: {"name": "<tool>", "arguments": {...}}.')
    if choice == "auto":
        lines.append('If no tool is needed, or a tool result already answers the question, '
                     'reply with JSON: {"answer": "<your answer>"}.')
    return "\n".join(lines)


def _render(messages: list[dict[str, Any]], tool_text: str) -> list[dict[str, Any]]:
    """The conversation as plain system/user/assistant turns (chat templates of small
    models know no ``tool`` role): calls as their JSON, results as user turns."""
    names: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    system_done = False
    for m in messages:
        role = m.get("role")
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        text = str(content or "")
        if role in ("system", "developer") and not system_done and tool_text:
            out.append({"role": "system", "content": f"{text}\n\n{tool_text}".strip()})
            system_done = True
        elif role == "assistant" and m.get("tool_calls"):
            calls = []
            for c in m["tool_calls"]:
                fn = c.get("function") or {}
                names[str(c.get("id"))] = str(fn.get("name"))
                try:
                    args = json.loads(fn.get("arguments") or "{}")
                except ValueError:
                    args = fn.get("arguments")
                calls.append(json.dumps({"name": fn.get("name"), "arguments": args}))
            out.append({"role": "assistant", "content": "\n".join(calls)})
        elif role == "tool":
            name = names.get(str(m.get("tool_call_id")), "the tool")
            out.append({"role": "user", "content": f"Result of {name}: {text}"})
        else:
            out.append({"role": "user" if role not in ("assistant", "system") else role,
                        "content": text})
    if not system_done and tool_text:
        out.insert(0, {"role": "system", "content": tool_text})
    return out


def plan(body: dict[str, Any]) -> ToolPlan | None:
    """The constrained run for a request with tools, or None (no tools, or ``none``)."""
    choice = choice_of(body)
    if choice is None:
        return None
    fns = _functions(body)
    if choice == "none":
        return ToolPlan(_render(body["messages"], ""), {}, [])
    if choice not in ("auto", "required"):
        fns = [f for f in fns if f["name"] == choice]
        if not fns:
            raise BadRequest(f"tool_choice names {choice!r}, which is not in tools")
    options = [_call_schema(f) for f in fns]
    if choice == "auto":
        options.append({"type": "object", "properties": {ANSWER: {"type": "string"}},
                        "required": [ANSWER], "additionalProperties": False})
    schema = options[0] if len(options) == 1 else {"anyOf": options}
    return ToolPlan(_render(body["messages"], _tool_text(fns, choice)), schema,
                    [f["name"] for f in fns])


def grammar(schema: dict[str, Any]) -> Any:
    """The GBNF grammar for ``schema``; a 400 naming the problem if llama.cpp's converter
    cannot express it (instead of llama.cpp's silent fallback to any JSON)."""
    from llama_cpp import LlamaGrammar

    try:
        return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    except (ValueError, KeyError, TypeError, NotImplementedError, RecursionError) as exc:
        raise BadRequest(f"the tools' parameter schemas cannot be turned into a grammar for "
                         f"the embedded model ({type(exc).__name__}: {str(exc)[:200]}); "
                         "simplify them (plain types, enums, objects, arrays)") from None


def to_message(text: str, finish: str | None) -> tuple[dict[str, Any], str | None]:
    """The assistant message (and finish reason) for the constrained output ``text``."""
    try:
        obj = json.loads(text)
    except ValueError:
        # Cut off by max_tokens mid-JSON: a started answer keeps its text; half a call
        # is returned as text (finish_reason "length"), never as a call.
        prefix = '{"' + ANSWER + '": "'
        if text.startswith(prefix):
            partial = text[len(prefix):]
            for end in range(len(partial), 0, -1):
                try:
                    return ({"role": "assistant", "content": json.loads('"' + partial[:end] + '"')},
                            finish or "length")
                except ValueError:
                    continue
        return {"role": "assistant", "content": text}, finish or "length"
    if isinstance(obj, dict) and isinstance(obj.get("name"), str):
        call = {"id": "call_" + uuid.uuid4().hex[:24], "type": "function",
                "function": {"name": obj["name"],
                             "arguments": json.dumps(obj.get("arguments") or {})}}
        return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
    if isinstance(obj, dict) and isinstance(obj.get(ANSWER), str):
        return {"role": "assistant", "content": obj[ANSWER]}, finish or "stop"
    return {"role": "assistant", "content": text}, finish or "stop"


def as_chunks(resp: dict[str, Any], piece_chars: int = 16) -> list[dict[str, Any]]:
    """A finished answer as OpenAI stream chunks: a tool call's id and name first, then
    its arguments in fragments, then the finish reason; text in pieces likewise."""
    base = {"id": resp["id"], "object": "chat.completion.chunk",
            "created": resp.get("created"), "model": resp.get("model")}
    choice = resp["choices"][0]
    msg = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    out = [chunk({"role": "assistant", "content": ""})]
    for i, call in enumerate(msg.get("tool_calls") or []):
        fn = call["function"]
        out.append(chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                          "function": {"name": fn["name"], "arguments": ""}}]}))
        args = fn["arguments"]
        for j in range(0, len(args), piece_chars):
            out.append(chunk({"tool_calls": [{"index": i, "function": {
                "arguments": args[j:j + piece_chars]}}]}))
    text = msg.get("content") or ""
    for j in range(0, len(text), piece_chars):
        out.append(chunk({"content": text[j:j + piece_chars]}))
    out.append(chunk({}, choice.get("finish_reason")))
    out.append({**base, "choices": [], "usage": resp.get("usage")})
    return out


__all__ = ["ToolPlan", "as_chunks", "choice_of", "grammar", "plan", "to_message"]
