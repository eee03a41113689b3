"""Canaries (PII and secrets) and the Unicode disguises an attacker wraps them in, shared
by the redaction tests. ``survives`` is the attacker's check, written independently of the
guardrails: decode JSON escapes, NFKC, keep letters and digits, look for the canary's."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.fakes import FakeProvider
from workbench.config import ModelSpec


@dataclass(frozen=True)
class Canary:
    kind: str
    groups: tuple[str, ...]  # written joined by a separator (numbers) or as is (one group)

    @property
    def text(self) -> str:
        return " ".join(self.groups)


CANARIES = [
    Canary("EMAIL", ("canary.person@example.org",)),
    Canary("CARD", ("4111", "1111", "1111", "1111")),
    Canary("CARD", ("5555", "5555", "5555", "4444")),
    Canary("CARD", ("3782", "822463", "10005")),  # Amex 4-6-5
    Canary("IBAN", ("DE89", "3704", "0044", "0532", "0130", "00")),
    Canary("IBAN", ("GB82", "WEST", "1234", "5698", "7654", "32")),
    Canary("PHONE", ("+44", "20", "7946", "0958")),
    Canary("PHONE", ("020", "7946", "0958")),
    Canary("SECRET", ("sk-proj-CANARYcanaryCANARYcanary0001",)),
    Canary("SECRET", ("wb-CANARYcanaryCANARYcanaryCANARYcanary_0001",)),
    Canary("SECRET", ("AKIACANARY0123456789",)),
    Canary("SECRET", ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJlY2FuYXJ5",)),
    Canary("SECRET", ("eyJhbGciOiJub25lIn0.eyJzdWIiOiJjYW5hcnkifQ.",)),  # unsigned JWT
]

ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\u034f",
              "\ufe0f", "\u202e"]
SEPARATORS = [" ", "\u00a0", "\u202f", "\u2009", "\u3000", ".", "-", "\u2013", "\n",
              "\r\n", "\u2028", "\t"]


def full_width(ch: str) -> str:
    return chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch


@st.composite
def disguised(draw: st.DrawFn, canary: Canary) -> str:
    """The canary with its groups joined by a look-alike separator, some characters
    full-width, and zero-width/format characters inserted anywhere inside it."""
    text = draw(st.sampled_from(SEPARATORS)).join(canary.groups)
    wide = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    text = "".join(full_width(c) if w else c for c, w in zip(text, wide, strict=True))
    for _ in range(draw(st.integers(0, 5))):
        at = draw(st.integers(1, len(text) - 1))
        text = text[:at] + draw(st.sampled_from(ZERO_WIDTH)) + text[at:]
    return text


canaries = st.sampled_from(CANARIES)


def _decode_escapes(text: str) -> str:
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
    return text.replace("\\n", "\n").replace("\\r", "").replace("\\t", " ")


def core(text: str) -> str:
    """What a reader (or a model) gets from ``text``: ASCII letters and digits only
    (other scripts' digits as ASCII), after decoding JSON escapes and NFKC."""
    folded = unicodedata.normalize("NFKC", _decode_escapes(text))
    return "".join(str(unicodedata.decimal(c)) if unicodedata.category(c) == "Nd" else c
                   for c in folded if unicodedata.category(c) == "Nd"
                   or (c.isascii() and c.isalnum()))


def strings(value: Any) -> Iterator[str]:
    """Every string in a JSON-like tree, dict keys included, and inside strings that are
    JSON themselves (tool-call arguments)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
            try:
                inner = json.loads(item)
            except ValueError:
                continue
            if isinstance(inner, dict | list):
                stack.append(inner)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def survives(canary: Canary, value: Any) -> bool:
    """Whether any string in ``value`` still carries the canary."""
    needle = core(canary.text)
    return any(needle in core(s) for s in strings(value))


class EchoProvider(FakeProvider):
    """Records each body and answers with ``echo`` in every text field of the answer;
    streams it in fragments of ``size`` characters (tool-call arguments too)."""

    echo = ""
    size = 3

    def _answer_parts(self) -> tuple[str, str]:
        return f"you said {self.echo}!", json.dumps({"q": self.echo})

    def chat(self, body: dict[str, Any], spec: ModelSpec) -> dict[str, Any]:
        self._maybe_fail(body)
        content, args = self._answer_parts()
        return {"id": "x", "object": "chat.completion", "model": spec.name,
                "x_echo": {"note": self.echo, self.echo: 1},
                "choices": [{"index": 0, "finish_reason": "tool_calls",
                             "logprobs": {"content": [{"token": t, "logprob": -0.1}
                                                      for t in content]},
                             "message": {"role": "assistant", "content": content,
                                         "refusal": self.echo,
                                         "tool_calls": [{"id": "call_1", "type": "function",
                                                         "function": {"name": "lookup",
                                                                      "arguments": args}}]}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}

    def stream(self, body: dict[str, Any], spec: ModelSpec) -> Iterator[dict[str, Any]]:
        self._maybe_fail(body)
        content, args = self._answer_parts()
        k = self.size

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"id": "x", "object": "chat.completion.chunk", "model": spec.name,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                 "logprobs": {"content": [{"token": self.echo}]}}]}

        yield chunk({"role": "assistant", "content": ""})
        for i in range(0, len(content), k):
            yield chunk({"content": content[i:i + k]})
        for ix in (0, 1):  # two tool calls, each with arguments in fragments
            yield chunk({"tool_calls": [{"index": ix, "id": f"call_{ix}", "type": "function",
                                         "function": {"name": "lookup", "arguments": ""}}]})
            for i in range(0, len(args), k):
                yield chunk({"tool_calls": [{"index": ix,
                                             "function": {"arguments": args[i:i + k]}}]})
        yield chunk({}, "tool_calls")
        yield {"id": "x", "object": "chat.completion.chunk", "model": spec.name, "choices": [],
               "usage": {"prompt_tokens": 10, "completion_tokens": 5}}
