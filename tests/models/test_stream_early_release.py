"""The stream redactor releases text as soon as no later chunk can make it part of a
finding, and never a fragment of PII that a later chunk completes.

Property-based: hypothesis places disguised canaries (tests/disguises.py) among prose,
digit runs and capitals, cuts the text into random chunks, and checks every release
point against the findings of the whole text."""

from __future__ import annotations

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.disguises import Canary, canaries, disguised, survives
from workbench.guardrails import Finding, Guardrails, RegexRecognizer, StreamRedactor

G = Guardrails()

_FILLER = st.sampled_from(["hello", "The", "ok,", "12", "2024", "DE", "AB12", "(0)", "+",
                           "-", ".", "x", "4111", " ", "  ", "\n", "\u200b", "\u3000",
                           "\uff14", "sk-", "@", "eyJ", "call me at", "IBAN", "CARD"])


@st.composite
def streamed(draw: st.DrawFn) -> tuple[list[Canary], str, list[int]]:
    found: list[Canary] = []
    parts: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        parts += draw(st.lists(_FILLER, max_size=6))
        parts.append(" ")
        canary = draw(canaries)
        found.append(canary)
        parts.append(draw(disguised(canary)))
        parts.append(draw(st.sampled_from([" ", ", ", ". ", "\n", ")", ""])))
    parts += draw(st.lists(_FILLER, max_size=4))
    text = "".join(parts)
    if draw(st.booleans()):
        # Tool-call arguments: JSON text, where chunks can cut an escape ("\\uff1" + "1").
        text = json.dumps({"q": text})
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(text) - 1)), max_size=40))))
    return found, text, cuts


def _splits(f: Finding, at: int) -> bool:
    return f.start < at < f.end


@settings(max_examples=400, deadline=None)
@given(streamed())
def test_no_fragment_of_pii_is_released_before_it_is_complete(case: tuple[
        list[Canary], str, list[int]]) -> None:
    found, text, cuts = case
    whole = G.scan(text)
    r = StreamRedactor(G)
    released: list[str] = []
    fed = 0
    for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True):
        released.append(r.feed(text[a:b]))
        fed = b
        at = fed - r.held  # original characters released so far
        assert not any(_splits(f, at) for f in whole), (text, at, whole)
    early = "".join(released)
    out = early + r.flush()
    masked = G.mask(text).text
    for canary in found:
        if survives(canary, masked):
            continue  # glued to a word, the whole text does not show it as PII either
        assert not survives(canary, early), (text, early)
        assert not survives(canary, out), (text, out)
    assert out == masked


def test_prose_flows_out_a_word_behind() -> None:
    r = StreamRedactor(G)
    out = [r.feed(piece) for piece in ("The", " answer", " is", " forty", "-two", ".", " ")]
    # Each word is released once the next one starts; nothing waits for 64 characters.
    assert out == ["", "The ", "answer ", "is ", "", "", "forty-two. "]
    assert r.flush() == ""


def test_a_number_waits_for_the_word_that_ends_it() -> None:
    r = StreamRedactor(G)
    pieces = ["card ", "4111 ", "1111 ", "1111 ", "1111", " thanks", " a"]
    out = [r.feed(p) for p in pieces]
    assert out[:5] == ["card ", "", "", "", ""]  # digit groups held: a card may be forming
    assert out[5:] == ["[CARD] ", "thanks "] and r.flush() == "a"


def test_custom_recognizers_keep_the_fixed_lag() -> None:
    g = Guardrails()
    g.add(RegexRecognizer("NAME", re.compile(r"Jane Q\. Public")))
    r = StreamRedactor(g)
    assert r.feed("Hello Jane ") == ""  # a name may span words: 64 characters held
    assert "Jane" not in r.feed("Q. Public, how are you? " * 4)
