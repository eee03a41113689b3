"""The history trimming rule: system + newest whole turns that fit, never a split turn,
never an older turn skipped into."""

from __future__ import annotations

from workbench.sessions.history import MARGIN_TOKENS, PER_MESSAGE_TOKENS, fit_history


def count(text: str) -> int:
    return len(text.split())


PROMPT = [{"role": "system", "content": "one two"}, {"role": "user", "content": "q"}]


def _fixed() -> int:
    return sum(count(m["content"]) + PER_MESSAGE_TOKENS for m in PROMPT)


def test_everything_fits() -> None:
    turns = [("a b", "c d"), ("e", "f")]
    out = fit_history(turns, PROMPT, context_window=1000, max_tokens=10, count=count)
    assert [m["content"] for m in out] == ["a b", "c d", "e", "f"]
    assert [m["role"] for m in out] == ["user", "assistant"] * 2


def test_keeps_the_newest_whole_turns_that_fit() -> None:
    turns = [("old " * 5, "x"), ("mid", "mid answer"), ("new", "newest answer")]
    newest = 1 + 2 + 2 * PER_MESSAGE_TOKENS
    middle = 1 + 2 + 2 * PER_MESSAGE_TOKENS
    window = 10 + MARGIN_TOKENS + _fixed() + newest + middle  # not the oldest
    out = fit_history(turns, PROMPT, context_window=window, max_tokens=10, count=count)
    assert [m["content"] for m in out] == ["mid", "mid answer", "new", "newest answer"]
    out = fit_history(turns, PROMPT, context_window=window - 1, max_tokens=10, count=count)
    assert [m["content"] for m in out] == ["new", "newest answer"]  # the pair, never half


def test_a_big_turn_stops_trimming_even_if_older_ones_would_fit() -> None:
    turns = [("tiny", "t"), ("huge " * 50, "h"), ("new", "n")]
    window = 10 + MARGIN_TOKENS + _fixed() + 40
    out = fit_history(turns, PROMPT, context_window=window, max_tokens=10, count=count)
    assert [m["content"] for m in out] == ["new", "n"]


def test_nothing_fits() -> None:
    out = fit_history([("a", "b")], PROMPT, context_window=5, max_tokens=10, count=count)
    assert out == []
