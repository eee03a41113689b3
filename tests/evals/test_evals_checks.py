"""The check ladder: exact -> pattern -> schema -> bounds -> refusal/PII -> semantic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from workbench.errors import BadRequest
from workbench.evals import checks as c
from workbench.evals.checks import Output
from workbench.models.types import ChatResult


def test_exact_rung() -> None:
    assert c.equals("Paris")("  Paris ").passed
    res = c.equals("Paris")("paris")
    assert not res.passed and "expected 'Paris'" in res.reason
    assert c.equals("Paris", ignore_case=True)("paris").passed


def test_contains_and_not_contains_give_reasons_and_partial_scores() -> None:
    res = c.contains("keys create", "--team", "budget")("Run `workbench keys create --team T`.")
    assert not res.passed and res.score == pytest.approx(2 / 3)
    assert "missing 'budget'" in res.reason
    assert c.contains("KEYS CREATE")("workbench keys create").passed  # case-insensitive default
    assert c.contains("x", "keys", mode="any")("keys").passed
    bad = c.not_contains("sk-", "password")("my password is hunter2")
    assert not bad.passed and "password" in bad.reason and bad.score == 0.5


def test_pattern_rung() -> None:
    assert c.regex(r"\bkeys create\b")("run workbench keys create now").passed
    assert not c.regex(r"\d+", full=True)("42 apples").passed
    assert c.regex(r"\d+", full=True)(" 42 ").passed
    assert c.starts_with("Yes")("Yes, it does.").passed
    assert "starts with" in c.starts_with("Yes")("No.").reason
    with pytest.raises(BadRequest, match="does not compile"):
        c.regex("(")


SCHEMA = {"type": "object", "required": ["capital", "confidence"],
          "properties": {"capital": {"type": "string"},
                         "confidence": {"type": "number", "minimum": 0, "maximum": 1}}}


def test_schema_rung() -> None:
    check = c.json_schema(SCHEMA)
    assert check('{"capital": "Paris", "confidence": 0.9}').passed
    assert check('```json\n{"capital": "Paris", "confidence": 1}\n```').passed
    not_json = check("Paris, I think")
    assert not not_json.passed and not_json.reason.startswith("not JSON")
    wrong = check('{"capital": "Paris", "confidence": 7}')
    assert not wrong.passed and wrong.reason.startswith("confidence:")
    with pytest.raises(BadRequest, match="schema itself is invalid"):
        c.json_schema({"type": "no-such-type"})


def test_length_latency_and_cost_bounds_read_result_facts() -> None:
    assert not c.length(max_words=3)("one two three four").passed
    assert c.length(min_chars=2, max_chars=10)("hello").passed
    result = ChatResult(response={"choices": [{"message": {"content": "hi"}}]}, trace_id="t",
                        model="m", cost_usd=0.002, latency_ms=850.0)
    assert c.max_latency_ms(1000)(result).passed
    slow = c.max_latency_ms(500)(result)
    assert not slow.passed and "850 ms > 500 ms" in slow.reason
    assert not c.max_cost_usd(0.001)(result).passed
    missing = c.max_latency_ms(10)("plain text has no latency")
    assert not missing.passed and "no latency_ms" in missing.reason
    with pytest.raises(BadRequest):
        c.length()


def test_numeric_tolerance() -> None:
    assert c.numeric(384)("It has 384 dimensions.").passed
    assert c.numeric(3.14, abs_tol=0.01)("pi is about 3.141").passed
    assert c.numeric(1000, rel_tol=0.05)("roughly 1,020 tokens").passed
    off = c.numeric(10)("about 12 items")
    assert not off.passed and "closest number 12" in off.reason
    assert not c.numeric(1)("no digits here").passed
    assert c.numeric(7, which="last")("from 3 to 7").passed
    assert not c.numeric(7, which="first")("from 3 to 7").passed


def test_refusal_detection() -> None:
    for text in ("I don't know.", "I cannot help with that.", "Sorry, but I'm unable to do it",
                 "The sources do not contain the answer."):
        assert c.refusal()(text).passed, text
        assert not c.no_refusal()(text).passed
    assert c.no_refusal()("Run workbench keys create.").passed


def test_pii_free_names_kinds_never_values() -> None:
    res = c.pii_free()("Mail jane.doe@example.com or call +44 20 7946 0958, card 4111 1111 1111 1111")
    assert not res.passed
    assert "EMAIL" in res.reason and "CARD" in res.reason
    assert "jane" not in res.reason and "4111" not in res.reason
    assert c.pii_free()("Nothing personal here; version 1.2.3").passed


def test_composition_with_operators() -> None:
    good = c.contains("keys create") & c.not_contains("sk-") & ~c.refusal()
    res = good("Run workbench keys create.")
    assert res.passed and len(res.children) == 2  # (a & b) & ~c nests
    bad = good("I don't know, try sk-abc")
    assert not bad.passed
    leaves = [f.name for f in bad.failures()]
    assert any("contains" in n for n in leaves) and "not refusal" in leaves
    either = c.equals("yes") | c.equals("y")
    assert either("y").passed and not either("no").passed
    assert "none passed" in either("no").reason


def test_custom_check_decorator() -> None:
    @c.check("mentions_team")
    def mentions_team(out: Output) -> tuple[bool, str]:
        return "--team" in out.answer, "looked for --team"

    assert mentions_team("keys create --team x").passed
    assert (mentions_team & c.length(max_words=2))("keys create --team x").passed is False


def test_checks_accept_answer_like_objects() -> None:
    @dataclass
    class Src:
        snippet: str

    @dataclass
    class Answer:
        question: str
        answer: str
        sources: list[Any]
        latency_ms: float

    out = c.as_output(Answer("q?", "the answer", [Src("ctx one")], 12.0))
    assert out.answer == "the answer" and out.contexts == ("ctx one",) and out.latency_ms == 12.0
    with pytest.raises(BadRequest, match="cannot check"):
        c.as_output(42)


def test_checks_from_data_specs() -> None:
    spec = {"all": [{"contains": "keys"}, {"not": {"regex": "sk-\\w+"}}, {"length": {"max_words": 20}}]}
    check = c.from_spec(spec)
    assert check("workbench keys create").passed
    assert not check("keys sk-secret").passed
    assert c.from_spec({"type": "numeric", "value": 384})("384").passed
    assert c.from_spec({"numeric": {"expected": 5, "abs_tol": 1}})("6").passed
    for bad, msg in (({"nope": 1}, "unknown check type"), ({}, "must be an object"),
                     ({"contains": "a", "regex": "b"}, "one key"),
                     ({"length": {"max_lines": 2}}, "bad arguments"), ({"any": []}, "non-empty")):
        with pytest.raises(BadRequest, match=msg):
            c.from_spec(bad)


@pytest.mark.embedded
def test_semantic_rung_embeds_through_the_gateway(make_gateway: Any) -> None:
    gw = make_gateway()
    check = c.semantic_similarity("The default profile runs offline with no API key.",
                                  threshold=0.6, gateway=gw)
    close = check("The default profile works offline and needs no API key.")
    far = check("Bananas are rich in potassium.")
    assert close.passed and not far.passed
    assert close.score > far.score and "cosine" in far.reason
    # Reference from the Output, e.g. a golden row.
    from_row = c.semantic_similarity(threshold=0.6, gateway=gw)(
        Output("Paris is the capital of France.", reference="France's capital is Paris."))
    assert from_row.passed
    assert not c.semantic_similarity(gateway=gw)("no reference given").passed
    rows = gw.usage(by=("model",))
    assert [r["calls"] for r in rows if r["model"] == "minilm-l6-v2"] == [3]
