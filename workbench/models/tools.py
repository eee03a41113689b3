"""Tool governance in the Gateway: per-key and per-team tool allowlists, enforced on the
request (403 ``tool_not_allowed``) and on the answer (a tool call the key may not use is
withheld and audited), and tool calls / tool results recorded in ``tool_events`` and on
the call's LLM span (OpenInference ``llm.output_messages.0.message.tool_calls.*``).

The Gateway calls three things: :func:`check_request` while it prepares a call,
:func:`on_answer` when it finishes one, and :class:`StreamGuard` around a provider's
stream. Allowlists are read only when a call involves tools, so plain chat pays nothing.

An allowlist works like a model allowlist: unset (no row) = every tool; a key's and its
team's lists must both allow a tool. The local principal (notebook/CLI owner, no key) has
no allowlist.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select

from workbench.errors import BadRequest, NotFound, PermissionDenied
from workbench.models import audit as audit_log
from workbench.models.tool_schema import tool_allowlists, tool_events
from workbench.store import Store, keys, teams

if TYPE_CHECKING:
    from workbench.models.gateway import Gateway
    from workbench.models.policy import Principal

TOOL_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")  # OpenAI's pattern, plus MCP's '.' ':'
BLOCKED_NOTE = ("The model asked for tool {names}, which key {key} may not use; the call "
                "was withheld. Ask an admin to add it with `workbench keys set {key} --tools "
                "...` if it should be allowed.")


class ToolNotAllowed(PermissionDenied):
    """The request offers (or forces) a tool the key or its team may not use."""

    code = "tool_not_allowed"


# -- allowlists --------------------------------------------------------------------------
def parse_tools(tools: list[str] | str | None) -> list[str] | None:
    """``--tools`` as given: ``a,b`` -> ["a", "b"]; ``none`` -> [] (no tool at all);
    ``all`` or ``*`` -> None (every tool: the allowlist is removed)."""
    if tools is None:
        return None
    if isinstance(tools, str):
        if tools.strip().lower() in ("all", "*"):
            return None
        if tools.strip().lower() == "none":
            return []
        tools = [t.strip() for t in tools.split(",")]
    cleaned = [t for t in tools if t]
    if not cleaned:
        raise BadRequest("--tools needs tool names (a,b), 'none' for no tools, or 'all'")
    bad = [t for t in cleaned if not TOOL_NAME.match(t)]
    if bad:
        raise BadRequest(f"invalid tool name {bad[0][:80]!r}: use 1-64 letters, digits, "
                         "'_', '-', '.', ':'")
    return sorted(set(cleaned))


def _subject(kind: str, ident: str) -> str:
    return f"{kind}:{ident}"


def set_allowlist(store: Store, kind: str, ident: str, tools: list[str] | str | None, *,
                  actor: str = "admin") -> list[str] | None:
    """Set the tool allowlist of a key (``kind="key"``, its id) or a team; ``tools``
    parsed by :func:`parse_tools` (None or 'all' removes the allowlist). Audited."""
    if kind not in ("key", "team"):
        raise BadRequest("allowlist kind must be 'key' or 'team'")
    parsed = parse_tools(tools) if not isinstance(tools, list) or tools else []
    subject = _subject(kind, ident)
    store.migrate()  # a store opened before this module was imported lacks the tables
    with store.write() as conn:
        if kind == "key":
            if conn.execute(select(keys.c.id).where(keys.c.id == ident)).first() is None:
                raise NotFound(f"no key with id {ident}; see `workbench keys list`")
        elif conn.execute(select(teams.c.name).where(teams.c.name == ident)).first() is None:
            raise NotFound(f"no team named {ident!r}; create it with `workbench teams set`")
        conn.execute(delete(tool_allowlists).where(tool_allowlists.c.subject == subject))
        if parsed is not None:
            conn.execute(insert(tool_allowlists).values(subject=subject, tools=parsed,
                                                        updated_at=time.time()))
        audit_log.append(store, conn, actor=actor, action="tools.set", target=subject,
                         details={"tools": parsed})
    return parsed


def allowlists(store: Store) -> dict[str, list[str]]:
    """Every allowlist, by subject (``key:<id>`` / ``team:<name>``)."""
    store.migrate()
    with store.read() as conn:
        return {r.subject: list(r.tools) for r in conn.execute(select(tool_allowlists))}


@dataclass(frozen=True)
class ToolRules:
    """The tool allowlists that apply to one principal (None = no limit)."""

    key_tools: frozenset[str] | None = None
    team_tools: frozenset[str] | None = None
    label: str = "local"
    team: str = "local"

    @property
    def limited(self) -> bool:
        return self.key_tools is not None or self.team_tools is not None

    def allows(self, name: str) -> bool:
        return all(allowed is None or name in allowed
                   for allowed in (self.key_tools, self.team_tools))


def rules_for(store: Store, principal: Principal) -> ToolRules:
    if principal.key_id is None:
        return ToolRules(label=principal.label, team=principal.team)
    subjects = [_subject("key", principal.key_id), _subject("team", principal.team)]
    store.migrate()  # no-op once applied
    with store.read() as conn:
        rows = {r.subject: frozenset(r.tools) for r in conn.execute(
            select(tool_allowlists).where(tool_allowlists.c.subject.in_(subjects)))}
    return ToolRules(rows.get(subjects[0]), rows.get(subjects[1]), principal.label,
                     principal.team)


# -- reading requests and answers --------------------------------------------------------
def _name_of(fn: Any) -> str | None:
    name = fn.get("name") if isinstance(fn, dict) else None
    return name if isinstance(name, str) else None


def requested_tools(body: dict[str, Any]) -> list[str]:
    """Tool names a request offers or forces: ``tools``, legacy ``functions``, a named
    ``tool_choice`` / ``function_call``."""
    names: list[str] = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and (n := _name_of(tool.get("function"))):
            names.append(n)
    for fn in body.get("functions") or []:
        if n := _name_of(fn):
            names.append(n)
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and (n := _name_of(choice.get("function"))):
        names.append(n)
    if n := _name_of(body.get("function_call")):
        names.append(n)
    return list(dict.fromkeys(names))


def safe_name(name: str) -> str:
    """A tool name fit for a row or a span (client input: anything odd is not stored)."""
    return name if TOOL_NAME.match(name) else "<invalid name>"


def tool_results(body: dict[str, Any]) -> list[tuple[str, str | None, int]]:
    """(tool name, call id, size) of the tool results this turn sends back: the ``tool``
    messages after the last assistant message that made tool calls."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    last = max((i for i, m in enumerate(messages)
                if m.get("role") == "assistant" and m.get("tool_calls")), default=None)
    if last is None:
        return []
    names = {c.get("id"): _name_of(c.get("function")) or "?"
             for c in messages[last]["tool_calls"] if isinstance(c, dict)}
    out = []
    for m in messages[last + 1:]:
        if m.get("role") == "tool":
            call_id = m.get("tool_call_id")
            size = len(json.dumps(m.get("content"), ensure_ascii=False).encode())
            out.append((names.get(call_id, "?"), call_id if isinstance(call_id, str) else None,
                        size))
    return out


@dataclass
class _Event:
    tool: str
    kind: str
    call_id: str | None = None
    size: int = 0
    outcome: str = "ok"


def _record(gw: Gateway, events: list[_Event], *, trace_id: str | None, model: str | None,
            blocked: list[str] | None = None) -> None:
    if not events:
        return
    p = gw.principal
    now = time.time()
    gw.store.migrate()
    with gw.store.write() as conn:
        conn.execute(insert(tool_events), [
            {"ts": now, "trace_id": trace_id, "key_id": p.key_id, "team": p.team,
             "model": model, "tool": safe_name(e.tool), "kind": e.kind,
             "call_id": (e.call_id or "")[:64] or None, "size_bytes": e.size,
             "outcome": e.outcome} for e in events])
        if blocked:
            audit_log.append(gw.store, conn, actor="gateway", action="tool.blocked",
                             target=p.label, details={
                                 "tools": [safe_name(n) for n in blocked], "team": p.team,
                                 "model": model, "trace_id": trace_id})


def record_executed(gw: Gateway, tool: str, *, trace_id: str | None, call_id: str | None,
                    size: int, outcome: str) -> None:
    """A tool the agent loop or the MCP bridge ran (or refused to run)."""
    _record(gw, [_Event(tool, "executed", call_id, size, outcome)], trace_id=trace_id,
            model=None, blocked=[tool] if outcome in ("denied", "not_allowed") else None)


# -- the Gateway's hooks -----------------------------------------------------------------
def check_request(gw: Gateway, body: dict[str, Any], trace_id: str, model: str) -> None:
    """Refuse (403 ``tool_not_allowed``) a request that offers or forces a tool the
    principal may not use; the message names the tool and what to do."""
    names = requested_tools(body)
    if not names or gw.principal.key_id is None:
        return
    rules = rules_for(gw.store, gw.principal)
    bad = [n for n in names if not rules.allows(n)]
    if not bad:
        return
    _record(gw, [_Event(n, "denied", outcome="denied") for n in bad], trace_id=trace_id,
            model=model)
    which = "key" if rules.key_tools is not None and not all(
        n in rules.key_tools for n in bad) else "team"
    raise ToolNotAllowed(
        f"key {rules.label} (team {rules.team}) may not use tool {bad[0]!r}"
        + (f" (nor {', '.join(repr(n) for n in bad[1:])})" if len(bad) > 1 else "")
        + f"; remove it from the request's tools, or ask an admin to add it to the {which}'s "
        f"tools (`workbench {'keys set ' + rules.label if which == 'key' else 'teams set ' + rules.team}"
        " --tools ...`)")


def _withhold(choice: dict[str, Any], blocked: list[str], label: str) -> None:
    """Turn a choice whose tool calls were all withheld into a plain answer."""
    msg = choice.get("message") if "message" in choice else choice.get("delta")
    if not isinstance(msg, dict):
        return
    if not msg.get("content"):
        msg["content"] = BLOCKED_NOTE.format(
            names=", ".join(repr(safe_name(n)) for n in blocked), key=label)
    if choice.get("finish_reason") in ("tool_calls", "function_call"):
        choice["finish_reason"] = "stop"


def on_answer(gw: Gateway, body: dict[str, Any], resp: dict[str, Any], *,
              trace_id: str, model: str) -> None:
    """Withhold tool calls the principal may not use (in place), then record the calls,
    this turn's tool results and the withheld calls (audited), and put the calls on the
    active LLM span."""
    events = [_Event(name, "result", cid, size) for name, cid, size in tool_results(body)]
    blocked: list[str] = []
    rules: ToolRules | None = None
    shown: list[dict[str, Any]] = []
    for choice in resp.get("choices") or []:
        msg = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(msg, dict) or not msg.get("tool_calls"):
            continue
        calls = msg["tool_calls"]
        if rules is None:
            rules = rules_for(gw.store, gw.principal)
        kept = []
        for call in calls:
            name = _name_of(call.get("function")) or ""
            if rules.allows(name):
                kept.append(call)
                args = (call.get("function") or {}).get("arguments")
                events.append(_Event(name, "call", call.get("id"),
                                     len(str(args or "").encode())))
            else:
                blocked.append(name)
                events.append(_Event(name, "blocked", call.get("id"), outcome="blocked"))
        if len(kept) != len(calls):
            if kept:
                msg["tool_calls"] = kept
            else:
                msg.pop("tool_calls", None)
                _withhold(choice, blocked, rules.label)
        shown.extend(kept)
    _record(gw, events, trace_id=trace_id, model=model, blocked=blocked)
    _annotate_span(gw, shown, blocked)


def _annotate_span(gw: Gateway, calls: list[dict[str, Any]], blocked: list[str]) -> None:
    """OpenInference's tool-call attributes on the active (LLM) span, arguments masked."""
    if not calls and not blocked:
        return
    from opentelemetry import trace as otel_trace

    span = otel_trace.get_current_span()
    if not span.is_recording():
        return
    prefix = "llm.output_messages.0.message.tool_calls"
    for j, call in enumerate(calls):
        fn = call.get("function") or {}
        args = gw.guardrails.mask(str(fn.get("arguments") or "")).text
        span.set_attribute(f"{prefix}.{j}.tool_call.id", str(call.get("id") or ""))
        span.set_attribute(f"{prefix}.{j}.tool_call.function.name",
                           safe_name(str(fn.get("name") or "")))
        span.set_attribute(f"{prefix}.{j}.tool_call.function.arguments", args[:8000])
    if blocked:
        span.set_attribute("workbench.tools.blocked", [safe_name(n) for n in blocked])
        span.add_event("tool_call_blocked", {"tools": [safe_name(n) for n in blocked]})


@dataclass
class _Call:
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    held: list[dict[str, Any]] = field(default_factory=list)  # deltas before the name


class StreamGuard:
    """Filters a provider's stream: tool-call deltas of a tool the principal may not use
    never reach the caller. A tool call's first delta carries its name (OpenAI's shape);
    deltas before the name are held until it arrives. Collects the calls shown, so the
    stream's result carries them (:meth:`attach`)."""

    def __init__(self, gw: Gateway, trace_id: str):
        self.gw = gw
        self.trace_id = trace_id
        self._rules: ToolRules | None = None
        self._calls: dict[tuple[int, int], _Call] = {}
        self.blocked: list[str] = []

    def _allows(self, name: str) -> bool:
        if self._rules is None:
            self._rules = rules_for(self.gw.store, self.gw.principal)
        return self._rules.allows(name)

    def filter(self, chunks: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for chunk in chunks:
            yield self._filter(chunk)

    def _filter(self, chunk: Any) -> Any:
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        if not isinstance(choices, list):
            return chunk  # malformed: the Gateway's shape check reports it
        for choice in choices:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                continue
            cix = _choice_index(choice.get("index"))
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                out = self._filter_calls(cix, calls)
                if out:
                    delta["tool_calls"] = out
                else:
                    delta.pop("tool_calls", None)
            if choice.get("finish_reason") and self.blocked and not any(
                    c.name and self._allows(c.name) for k, c in self._calls.items()
                    if k[0] == cix):
                _withhold(choice, self.blocked, self._label())
        return chunk

    def _filter_calls(self, cix: int, calls: list[Any]) -> list[Any]:
        out: list[Any] = []
        for tc in calls:
            if not isinstance(tc, dict):
                out.append(tc)
                continue
            index = tc.get("index")
            state = self._calls.setdefault((cix, index if isinstance(index, int) else 0),
                                           _Call())
            fn: dict[str, Any] = tc["function"] if isinstance(tc.get("function"), dict) else {}
            state.id = state.id or tc.get("id")
            if isinstance(fn.get("arguments"), str):
                state.arguments += fn["arguments"]
            if state.name is None and isinstance(fn.get("name"), str):
                state.name = fn["name"]
                if not self._allows(state.name):
                    self.blocked.append(state.name)
                else:
                    out.extend(state.held)
                state.held = []
            if state.name is None:
                state.held.append(tc)
            elif self._allows(state.name):
                out.append(tc)
        return out

    def _label(self) -> str:
        return self._rules.label if self._rules else self.gw.principal.label

    def attach(self, resp: dict[str, Any]) -> None:
        """Put the tool calls that were shown on a stream's assembled answer (masked like
        the stream was); the Gateway's ``on_answer`` then records them."""
        shown = [c for (cix, _), c in sorted(self._calls.items())
                 if cix == 0 and c.name is not None and self._allows(c.name)]
        choice = (resp.get("choices") or [{}])[0]
        msg = choice.setdefault("message", {"role": "assistant"})
        if shown:
            mask = (self.gw.guardrails.mask if self.gw.settings.output_guardrails
                    and self.gw.guardrail_mode != "off" else None)
            msg["tool_calls"] = [
                {"id": c.id or f"call_{i}", "type": "function", "function": {
                    "name": c.name,
                    "arguments": mask(c.arguments).text if mask else c.arguments}}
                for i, c in enumerate(shown)]
        elif self.blocked:
            _withhold(choice, self.blocked, self._label())
        if self.blocked:
            _record(self.gw, [_Event(n, "blocked", outcome="blocked") for n in self.blocked],
                    trace_id=self.trace_id, model=resp.get("model"), blocked=self.blocked)


def _choice_index(cix: Any) -> int:
    return cix if isinstance(cix, int) else 0


__all__ = [
    "BLOCKED_NOTE", "StreamGuard", "ToolNotAllowed", "ToolRules", "allowlists",
    "check_request", "on_answer", "parse_tools", "record_executed", "requested_tools",
    "rules_for", "safe_name", "set_allowlist", "tool_results",
]
