"""Unicode disguises do not hide PII from the guardrails, and folding them does not make
ordinary numbers, dates or versions look like PII.

Property-based: hypothesis joins each canary's groups with a look-alike separator (NBSP,
thin/ideographic space, dot, dash, line break, CRLF, U+2028, tab), turns characters
full-width and inserts zero-width/format characters anywhere inside it."""

from __future__ import annotations

import json
import re
from datetime import date, time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.disguises import CANARIES, ZERO_WIDTH, Canary, canaries, core, disguised, survives
from workbench.guardrails import Guardrails, StreamRedactor, luhn_ok, normalise

G = Guardrails()


@st.composite
def disguised_canary(draw: st.DrawFn) -> tuple[Canary, str]:
    canary = draw(canaries)
    return canary, draw(disguised(canary))


@settings(max_examples=400, deadline=None)
@given(disguised_canary(), st.sampled_from(["note: ", "", "x ", "(", "\u200b"]),
       st.sampled_from([" end", "", ", then", ")", "\n"]))
def test_a_disguised_canary_is_masked_and_only_it(found: tuple[Canary, str], before: str,
                                                  after: str) -> None:
    canary, text = found
    red = G.mask(before + text + after)
    assert not survives(canary, red.text), (text, red.text)
    assert red.text == f"{before}[{canary.kind}]{after}", (text, red.text)
    assert red.kinds == {canary.kind: 1}


@settings(max_examples=200, deadline=None)
@given(disguised_canary())
def test_a_disguised_canary_inside_json_escapes_is_masked(found: tuple[Canary, str]) -> None:
    """Tool-call arguments are JSON text: json.dumps writes \\u200b, \\n, \\uff20."""
    canary, text = found
    args = json.dumps({"query": f"look up {text} please"})
    masked = G.mask(args).text
    assert not survives(canary, masked), (args, masked)
    assert json.loads(masked)["query"] == f"look up [{canary.kind}] please"


@pytest.mark.parametrize("text", [
    "card 4111\u00a01111\u00a01111\u00a01111", "card 4111.1111.1111.1111",
    "card 4111\u200b1111\u200b1111\u200b1111", "card 4111\n1111\n1111\n1111",
    "mail ali\u200dce@exa\u200dmple.com", "mail alice\uff20example.com",
    "key sk-\u200dproj-CANARYcanaryCANARYcanary0001",
    "jwt eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMjM0NTY3ODkwIn0.",
    "jwt eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMjM0NTY3ODkwIn0",
    "card " + " ".join(["\uff14\uff11\uff11\uff11"] + ["\uff11" * 4] * 3),  # full-width
    "card " + " ".join(["\u0664\u0661\u0661\u0661"] + ["\u0661" * 4] * 3),  # Arabic-Indic
    "card 4111 1111 1111 1111 5",  # a digit appended must not hide it
    "card x4111111111111111x",  # letters glued on must not either
    "tel +44\u00a020\u00a07946\u00a00958", "tel 020\u20287946\u20280958",
])
def test_issue_disguises(text: str) -> None:
    red = G.mask(text)
    assert red.findings, text
    assert not re.search(r"\d\d", core(red.text)), red.text


ORDINARY = [
    "the year 2024 had 365 days", "on 2024-11-22 10:30:00 UTC", "on 22.11.2024 at 12.30",
    "11/22/2024", "version 10.0.19041.1234", "build 1.2.3-rc.4", "python 3.11.9",
    "pi is 3.14159265358979", "0.30000000000000004", "score 0.8234567891234567",
    "latency 123.45678901234567 ms", "ts 1700000000.123456", "ids 123456789 and 987654321",
    "order 12345678901234", "scores 120 340 560 780", "100 200 300", "0 1 0 0 1 0 1 1 0 0 0 1 0",
    "page 12 of 300", "Room 101, floor 3", "sha 3f786850e387550fdab836ed7e6dc881de23001b",
    "uuid 123e4567-e89b-12d3-a456-426614174000", "1,234,567.89 EUR",
    "lines\n2024\n2025\n2026", "costs 1 200 000 and 3 400 000",
    "2024\u00a011\u00a022", "v2.10.0\u200b-beta", "ISO 8601: 2024-11-22T10:30:00+01:00",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_numbers_dates_and_versions_are_left_alone(text: str) -> None:
    assert G.mask(text).text == text


@settings(max_examples=300, deadline=None)
@given(st.dates(), st.times(), st.sampled_from(["-", ".", "/"]))
def test_dates_and_times_are_never_masked(d: date, t: time, sep: str) -> None:
    day = f"{d:%Y}{sep}{d:%m}{sep}{d:%d}"
    for text in (day, f"{day} {t:%H:%M:%S}", f"{d:%d}{sep}{d:%m}{sep}{d:%Y}", f"{d:%Y%m%d}"):
        assert G.mask(text).text == text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 999), min_size=3, max_size=4), st.integers(0, 99_999))
def test_version_strings_are_never_masked(parts: list[int], build: int) -> None:
    text = "v" + ".".join(map(str, parts)) + f"-build.{build}"
    assert G.mask(text).text == text


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_are_never_masked(x: float) -> None:
    text = f"value {x!r} units"
    if "e" not in text:
        assert G.mask(text).text == text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_normalised_spans_map_back_inside_the_text(text: str) -> None:
    norm = normalise(text)
    for i in range(len(norm.text)):
        start, end = norm.original_span(i, i + 1)
        assert 0 <= start < end <= len(text)
    for f in G.scan(text):
        assert 0 <= f.start < f.end <= len(text)


@settings(max_examples=200, deadline=None)
@given(disguised_canary(), st.integers(1, 9), st.integers(0, 300))
def test_stream_redactor_masks_a_disguised_canary_split_across_chunks(
        found: tuple[Canary, str], size: int, pad: int) -> None:
    canary, disguise = found
    # Padding with invisible characters must not push the head of a value out early.
    text = "Here: " + disguise + "\u200b" * pad + " ok. " + "More text follows. " * 5
    r = StreamRedactor(G)
    out = "".join(r.feed(text[i:i + size]) for i in range(0, len(text), size)) + r.flush()
    assert not survives(canary, out), (disguise, out)
    assert out == G.mask(text).text
    assert canary.kind in {f.kind for f in r.findings}


def test_stream_redactor_survives_a_flood_of_invisible_characters() -> None:
    text = "4111" + "\u200b" * 40_000 + "1111 1111 1111 done " + "x" * 100
    r = StreamRedactor(G)
    out = "".join(r.feed(text[i:i + 1000]) for i in range(0, len(text), 1000)) + r.flush()
    assert "[CARD]" in out and "4111" not in out


def test_canary_helpers_are_honest() -> None:
    """The attacker's check really sees a disguised canary (else the tests prove nothing)."""
    card = next(c for c in CANARIES if c.kind == "CARD")
    assert luhn_ok(card.text)
    assert survives(card, "x 4111\u200b1111 " + ZERO_WIDTH[2] + "1111\uff11111 y")
    assert survives(card, json.dumps({"a": "4111\u00a01111\u00a01111\u00a01111"}))
    assert not survives(card, "[CARD]")
    assert core("a\uff20b") == "ab"
