"""Redaction of whole request and answer bodies, not just message text.

Everything a caller sends may reach the provider: message content and parts, ``name``,
tool calls and their arguments, ``tools`` (descriptions, parameter schemas), ``stop``,
``response_format``, ``user``, image URLs, fields the proxy does not know, and the keys of
any dict. So the Gateway walks every string of the body (dict keys included) through
:meth:`Guardrails.apply`; only ``model`` is skipped, because the Gateway sets it from its
own configuration. Answers are walked the same way; streamed deltas go through one
:class:`StreamRedactor` per field (content, each tool call's arguments, ...), so a value
split across fragments is still seen whole.

No masking logic lives here: this module only decides *which* strings are masked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workbench.guardrails import Guardrails, StreamRedactor

# Request fields the Gateway sets itself (the resolved upstream model name).
_GATEWAY_FIELDS = frozenset({"model"})
# Streamed delta fields that arrive whole (ids, enums, function names): masked at once
# instead of being held back, so clients see them in the first chunk as usual.
_WHOLE_FIELDS = frozenset({"id", "type", "role", "name"})

Path = tuple[Any, ...]


def walk_strings(value: Any, fix: Callable[[str], str], skip: frozenset[str] = frozenset()
                 ) -> Any:
    """A copy of a JSON-like tree with every string (values and dict keys) replaced by
    ``fix(string)``. ``skip``: top-level keys copied unchanged. Iterative, so a deeply
    nested body cannot exhaust the stack; two keys that mask to the same text are kept
    apart (``[EMAIL]``, ``[EMAIL]#2``) rather than one overwriting the other."""
    holder: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, bool]] = [(value, holder, 0, True)]
    while stack:
        item, parent, slot, top = stack.pop()
        if isinstance(item, str):
            parent[slot] = fix(item)
        elif isinstance(item, dict):
            new: dict[Any, Any] = {}
            parent[slot] = new
            for k, v in item.items():
                if top and k in skip:
                    new[k] = v
                    continue
                key = fix(k) if isinstance(k, str) else k
                base, n = key, 1
                while key in new:
                    n += 1
                    key = f"{base}#{n}"
                new[key] = None
                stack.append((v, new, key, False))
        elif isinstance(item, list | tuple):
            items: list[Any] = [None] * len(item)
            parent[slot] = items
            for i, v in enumerate(item):
                stack.append((v, items, i, False))
        else:
            parent[slot] = item
    return holder[0]


def _add(counts: dict[str, int], kinds: dict[str, int]) -> None:
    for k, v in kinds.items():
        counts[k] = counts.get(k, 0) + v


def redact_request(guardrails: Guardrails, body: dict[str, Any], mode: str
                   ) -> tuple[dict[str, Any], dict[str, int]]:
    """The body to send upstream under ``mode`` (mask, block, log-only, off) and the
    findings per kind. ``block`` raises :class:`ContentBlocked` on the first finding."""
    counts: dict[str, int] = {}
    if mode == "off":
        return body, counts
    # Keys and enums repeat (type, string, object, description ...): scan each text once.
    seen: dict[str, tuple[str, dict[str, int]]] = {}

    def fix(text: str) -> str:
        if text not in seen:
            red = guardrails.apply(text, mode)
            seen[text] = (red.text, red.kinds)
        out, kinds = seen[text]
        _add(counts, kinds)
        return out

    return walk_strings(body, fix, _GATEWAY_FIELDS), counts


def redact_response(guardrails: Guardrails, resp: dict[str, Any]) -> dict[str, int]:
    """Mask every string of a (non-streamed) answer in place: content, tool-call
    arguments, refusals, unknown fields. A choice with findings loses its ``logprobs``:
    their tokens would spell out what was masked."""
    counts: dict[str, int] = {}

    def fix(text: str) -> str:
        red = guardrails.mask(text)
        _add(counts, red.kinds)
        return red.text

    choices = resp.get("choices")
    masked = walk_strings({k: v for k, v in resp.items() if k != "choices"}, fix)
    if isinstance(choices, list):
        out = []
        for choice in choices:
            before = sum(counts.values())
            if isinstance(choice, dict) and choice.get("logprobs") is not None:
                new = walk_strings({k: v for k, v in choice.items() if k != "logprobs"}, fix)
                new["logprobs"] = (None if sum(counts.values()) > before
                                   else walk_strings(choice["logprobs"], fix))
                out.append(new)
            else:
                out.append(walk_strings(choice, fix))
        masked["choices"] = out
    elif "choices" in resp:
        masked["choices"] = walk_strings(choices, fix)
    resp.clear()
    resp.update(masked)
    return counts


class ChunkRedactor:
    """Masks a stream of chat-completion chunks, field by field.

    Each string field of each choice's ``delta`` (``content``, every tool call's
    ``function.arguments``, ``refusal``, unknown ones) has its own :class:`StreamRedactor`,
    keyed by choice index and path (tool calls by their ``index``), so a card split over
    argument fragments is masked whole. Held-back text is released into the delta that
    ends a field: a later tool call starting, the choice's ``finish_reason``, or
    :meth:`finish`. ``logprobs`` are dropped (their tokens would leak held-back text);
    other chunk fields are masked whole.
    """

    def __init__(self, guardrails: Guardrails):
        self.guardrails = guardrails
        self._fields: dict[tuple[Any, Path], StreamRedactor] = {}
        self._seen: dict[str, str] = {}  # id, model, ... repeat in every chunk: mask once

    def _whole(self, text: str) -> str:
        if text not in self._seen:
            if len(self._seen) > 256:
                self._seen.clear()
            self._seen[text] = self.guardrails.mask(text).text
        return self._seen[text]

    def _redact_delta(self, choice_ix: Any, value: Any, path: Path) -> Any:
        if isinstance(value, str):
            if path and path[-1] in _WHOLE_FIELDS:
                return self._whole(value)
            key = (choice_ix, path)
            red = self._fields.get(key)
            if red is None:
                red = self._fields[key] = StreamRedactor(self.guardrails)
            return red.feed(value)
        if isinstance(value, dict):
            return {self._whole(k) if isinstance(k, str) else k:
                    self._redact_delta(choice_ix, v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            out = []
            for pos, item in enumerate(value):
                ix = item.get("index") if isinstance(item, dict) else None
                step = ("#", ix) if isinstance(ix, int) else pos
                out.append(self._redact_delta(choice_ix, item, (*path, step)))
            return out
        return value

    def _release(self, choice_ix: Any, delta: dict[str, Any],
                 keep: Callable[[Path], bool] = lambda p: False) -> None:
        """Flush the choice's field redactors (except those ``keep`` spares) into delta."""
        for (cix, path), red in list(self._fields.items()):
            if cix != choice_ix or keep(path):
                continue
            del self._fields[(cix, path)]
            rest = red.flush()
            if rest:
                _append_at(delta, path, rest)

    def redact(self, chunk: dict[str, Any]) -> dict[str, Any] | None:
        """The chunk to send (masked, maybe with released text), or None when it
        carries nothing yet (all held back)."""
        choices = chunk.get("choices")
        out = {k: (v if k == "usage" else walk_strings(v, self._whole))
               for k, v in chunk.items() if k != "choices"}
        if not isinstance(choices, list):
            if choices is not None:
                out["choices"] = walk_strings(choices, self._whole)
            return out
        carries = bool(chunk.get("usage")) or not choices
        new_choices = []
        for choice in choices:
            if not isinstance(choice, dict):
                new_choices.append(walk_strings(choice, self._whole))
                carries = True
                continue
            cix = choice.get("index", 0)
            cix = cix if isinstance(cix, int) else repr(cix)  # a malformed upstream's
            new = {k: walk_strings(v, self._whole) for k, v in choice.items()
                   if k not in ("delta", "logprobs")}
            if "logprobs" in choice:
                new["logprobs"] = None
            delta = choice.get("delta")
            new_delta = self._redact_delta(cix, delta, ()) if isinstance(delta, dict) else {}
            calls = delta.get("tool_calls") if isinstance(delta, dict) else None
            started = {("#", c.get("index")) for c in calls if isinstance(c, dict)
                       and c.get("id")} if isinstance(calls, list) else set()
            if started:
                # A new tool call began: the earlier ones' arguments are complete.
                self._release(cix, new_delta, keep=_spare_all_but_tool_calls_before(started))
            if choice.get("finish_reason"):
                self._release(cix, new_delta)
            if isinstance(delta, dict) or new_delta:
                new["delta"] = new_delta
            elif "delta" in choice:
                new["delta"] = walk_strings(delta, self._whole)  # malformed: not an object
            carries = carries or bool(choice.get("finish_reason")) or _has_text(new_delta)
            new_choices.append(new)
        out["choices"] = new_choices
        return out if carries else None

    def finish(self, template: dict[str, Any]) -> list[dict[str, Any]]:
        """Chunks (shaped like ``template``) releasing whatever is still held back."""
        out = []
        for cix in sorted({c for c, _ in self._fields}, key=str):
            delta: dict[str, Any] = {}
            self._release(cix, delta)
            if _has_text(delta):
                out.append({**template, "choices": [{"index": cix, "delta": delta,
                                                     "finish_reason": None}]})
        return out


def _spare_all_but_tool_calls_before(started: set[Any]) -> Callable[[Path], bool]:
    def keep(path: Path) -> bool:
        return path[:1] != ("tool_calls",) or (len(path) > 1 and path[1] in started)
    return keep


def _has_text(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value)
    if isinstance(value, dict):
        return any(_has_text(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_text(v) for v in value)
    return False


def _append_at(delta: dict[str, Any], path: Path, text: str) -> None:
    """Append ``text`` to the string at ``path`` in ``delta``, creating the way there
    (tool calls are found or inserted by their ``index``, in index order)."""
    node: Any = delta
    for step, nxt in zip(path, (*path[1:], None), strict=True):
        if nxt is None:
            cur = node.get(step) if isinstance(node, dict) else None
            node[step] = (cur if isinstance(cur, str) else "") + text
            return
        fresh: Any = [] if isinstance(nxt, tuple | int) else {}
        if isinstance(step, tuple):  # ("#", index) in a list of indexed items
            found = next((x for x in node if isinstance(x, dict) and x.get("index") == step[1]),
                         None)
            if found is None:
                found = {"index": step[1]}
                at = next((i for i, x in enumerate(node) if isinstance(x, dict)
                           and isinstance(x.get("index"), int) and x["index"] > step[1]),
                          len(node))
                node.insert(at, found)
            node = found
        elif isinstance(step, int):
            while len(node) <= step:
                node.append({})
            node = node[step]
        else:
            if not isinstance(node.get(step), dict | list):
                node[step] = fresh
            node = node[step]


__all__ = [
    "ChunkRedactor", "Path", "redact_request", "redact_response", "walk_strings",
]
