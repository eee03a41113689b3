"""PII and secret redaction, on the way in (before a prompt leaves) and on the way out.

Recognizers are a seam: anything with ``name`` and ``find(text) -> list[Finding]`` can be
added (e.g. a Presidio analyzer where a spaCy model is installed). The built-ins are
regexes with validators (Luhn for cards, ISO 13616 mod-97 for IBANs, octet ranges for
IPv4) so that ordinary numbers are not masked.

Recognizers never see the raw text: :func:`normalise` first folds Unicode disguises
(NFKC, so full-width ``＠`` or digits become ASCII; zero-width and other invisible
characters removed; every space-like character a plain space; line breaks ``\\n``; dot
and dash look-alikes ``.`` and ``-``). Findings are mapped back to the original text, so
masking replaces exactly the original characters, disguises included.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from workbench.errors import ContentBlocked


@dataclass(frozen=True)
class Finding:
    """One PII/secret match: its kind and character span in the text."""

    kind: str  # EMAIL, PHONE, CARD, IBAN, IP, SECRET
    start: int
    end: int


class Recognizer(Protocol):
    """A detector of one kind of PII or secret: ``find`` returns its matches in ``text``.
    Pass your own set through ``Guardrails(recognizers=[...])``."""

    name: str

    def find(self, text: str) -> list[Finding]: ...


# -- normalisation -------------------------------------------------------------------------
# Characters that NFKC leaves alone but that read as a separator to a human or a model.
_FOLD_TABLE: dict[str, str] = {
    **dict.fromkeys("\u00b7\u2022\u2024\u2027\u2219\u22c5\u30fb\u3002\uff61\u0701\u0702", "."),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\ufe58\ufe63\uff0d", "-"),
    **dict.fromkeys("\n\x0b\x0c\x85\u2028\u2029", "\n"),
    "\t": " ",
    # Invisible letters (Hangul fillers, braille blank) used to pad text; not Cf, so listed.
    **dict.fromkeys("\u115f\u1160\u3164\uffa0\u2800", ""),
}
# What may fold to something else, in ASCII text: control characters, and the backslash of
# JSON escapes as they appear inside tool-call arguments (a string of JSON), where
# "\u200b" or "\n" between digits reads as the character it stands for.
_ASCII_SPECIAL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f\\]")
_JSON_ESCAPE = r"\\(?:u[0-9a-fA-F]{4}|[nrt])"
_ESCAPES = {"\\n": "\n", "\\t": " ", "\\r": ""}


@lru_cache(maxsize=8192)
def _fold(ch: str) -> str:
    """What one character reads as, for matching only (never sent anywhere)."""
    if ch in _FOLD_TABLE:
        return _FOLD_TABLE[ch]
    cat = unicodedata.category(ch)
    if cat in ("Cf", "Mn", "Me", "Cc", "Cs", "Co", "Cn"):
        # Zero-width spaces/joiners, bidi marks, soft hyphens, combining marks, variation
        # selectors, control characters: invisible, so a disguise when inside a value.
        return ""
    if cat == "Zs":
        return " "
    if cat in ("Zl", "Zp"):
        return "\n"
    if cat == "Nd":
        return str(unicodedata.decimal(ch))  # Arabic-Indic, Devanagari, ... digits
    out = unicodedata.normalize("NFKC", ch)
    if out == ch:
        return ch
    # NFKC can yield characters that fold further (full-width hyphen-minus, ideographic
    # space); it never yields the input character, so this terminates.
    return "".join(_fold(c) if c != ch else c for c in out)


@lru_cache(maxsize=1)
def _special() -> re.Pattern[str]:
    """Runs of characters that fold to something else, and JSON escapes. The character
    class is computed once (~30 ms, on the first non-ASCII text) for the BMP, so runs of
    ordinary letters in any script are skipped by the regex engine; every astral character
    (emoji, mathematical digits such as U+1D7D2) is looked at one by one."""
    fold = _fold.__wrapped__  # not the cached one: 65k entries would flush that cache
    ranges: list[list[int]] = []
    for cp in range(0x10000):
        if fold(chr(cp)) != chr(cp):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
    cls = "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)
    return re.compile(f"[{cls}\\U00010000-\\U0010ffff]+|{_JSON_ESCAPE}")


@dataclass(frozen=True)
class Normalised:
    """``text`` as recognizers see it, with a map back to the original positions.

    Segment ``i`` starts at normalised ``starts[i]`` and original ``origins[i]``; a
    ``copied`` segment maps one to one, any other is the folding of the ``widths[i]``
    original characters at ``origins[i]`` (one character, or one JSON escape). All empty
    when nothing changed.
    """

    text: str
    starts: tuple[int, ...] = ()
    origins: tuple[int, ...] = ()
    widths: tuple[int, ...] = ()
    copied: tuple[bool, ...] = ()

    def _origin(self, pos: int) -> tuple[int, int]:
        i = bisect_right(self.starts, pos) - 1
        if self.copied[i]:
            at = self.origins[i] + (pos - self.starts[i])
            return at, at + 1
        return self.origins[i], self.origins[i] + self.widths[i]

    def original_start(self, pos: int) -> int:
        """Original index of the normalised character at ``pos``."""
        return self._origin(pos)[0] if self.starts else pos

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The original span covering normalised ``[start, end)`` (end > start)."""
        if not self.starts:
            return start, end
        return self._origin(start)[0], self._origin(end - 1)[1]


def normalise(text: str) -> Normalised:
    """Fold the disguises that would hide PII from the recognizers: NFKC (full-width
    forms), invisible characters removed (zero-width, joiners, bidi marks, combining
    marks), space, line-break, dot and dash look-alikes unified, JSON escapes decoded.
    Plain printable ASCII (the common case) is returned as is, without copying."""
    if text.isascii() and _ASCII_SPECIAL.search(text) is None:
        return Normalised(text)
    out: list[str] = []
    segments: list[tuple[int, int, int, bool]] = []
    n = 0  # normalised length so far
    pos = 0
    for m in _special().finditer(text):
        if m.start() > pos:
            segments.append((n, pos, 0, True))
            out.append(text[pos:m.start()])
            n += m.start() - pos
        run = m.group(0)
        if run[0] == "\\":  # a JSON escape (the pattern only matches those with "\\")
            rep = _ESCAPES.get(run)
            if rep is None:
                rep = _fold(chr(int(run[2:], 16)))
            pieces = [(m.start(), len(run), rep)]
        else:
            # "\r" folds to nothing, so "\r\n" is one line break (even with invisible
            # characters between the two); a lone "\r" joins what it separates.
            pieces = [(m.start() + k, 1, "" if ch == "\r" else _fold(ch))
                      for k, ch in enumerate(run)]
        for origin, width, rep in pieces:
            if rep:
                segments.append((n, origin, width, False))
                out.append(rep)
                n += len(rep)
        pos = m.end()
    if pos < len(text):
        segments.append((n, pos, 0, True))
        out.append(text[pos:])
    if not segments:
        return Normalised("")  # nothing visible: no spans to map
    starts, origins, widths, copied = zip(*segments, strict=True)
    return Normalised("".join(out), starts, origins, widths, copied)


# -- recognizers ---------------------------------------------------------------------------
@dataclass
class RegexRecognizer:
    """A recognizer from a compiled pattern, with an optional validator of each match
    and optional ``hints``."""

    name: str
    pattern: re.Pattern[str]
    validate: Callable[[str], bool] | None = None
    # Substrings every match contains: when none is in the text, the regex is skipped
    # (a substring search is far cheaper than the regex engine trying every position).
    hints: tuple[str, ...] = ()

    def find(self, text: str) -> list[Finding]:
        if self.hints and not any(h in text for h in self.hints):
            return []
        out = []
        for m in self.pattern.finditer(text):
            if self.validate is None or self.validate(m.group(0)):
                out.append(Finding(self.name, m.start(), m.end()))
        return out


# Digits in groups separated by one separator each (normalised text: NBSP and friends are
# spaces, \r\n is \n, dot/dash look-alikes are . and -).
# (The pattern starts with a plain \d and checks what precedes after it: much faster in
# Python's engine than a leading lookbehind. The lookahead skips runs too short to matter.)
_DIGIT_RUN = r"\d(?<!\d\d)(?=[\d .\-\n]{%d})\d*(?:[ .\-\n]\d+)*(?!\d)"
_RUN_SEP = re.compile(r"([ .\-\n])")

# accept(groups, separators between them, separator before, separator after, whole run)
WindowTest = Callable[[list[str], list[str], str | None, str | None, bool], bool]


@dataclass
class DigitGroupRecognizer:
    """Finds numbers written as digit groups (cards, national phone numbers) inside runs
    of digits and separators. Every window of whole groups is tried, longest first, so a
    valid number is found even with more digits written before or after it (a trailing
    ``5`` must not hide a card)."""

    name: str
    min_digits: int
    max_digits: int
    accept: WindowTest
    _runs: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._runs = re.compile(_DIGIT_RUN % (self.min_digits - 1))

    def find(self, text: str) -> list[Finding]:
        out = []
        for m in self._runs.finditer(text):
            parts = _RUN_SEP.split(m.group(0))
            groups, seps = parts[0::2], parts[1::2]
            if sum(map(len, groups)) < self.min_digits:
                continue
            starts = [m.start()]
            for g, s in zip(groups, seps, strict=False):
                starts.append(starts[-1] + len(g) + len(s))
            i = 0
            while i < len(groups):
                best, total = -1, 0
                for j in range(i, len(groups)):
                    total += len(groups[j])
                    if total > self.max_digits:
                        break
                    if total >= self.min_digits and self.accept(
                            groups[i:j + 1], seps[i:j], seps[i - 1] if i else None,
                            seps[j] if j < len(seps) else None,
                            i == 0 and j == len(groups) - 1):
                        best = j
                if best < 0:
                    i += 1
                    continue
                out.append(Finding(self.name, starts[i], starts[best] + len(groups[best])))
                i = best + 1
        return out


def luhn_ok(candidate: str) -> bool:
    """Whether the digits in ``candidate`` (13-19 of them) pass the Luhn check."""
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def _card_window(groups: list[str], seps: list[str], before: str | None,
                 after: str | None, whole: bool) -> bool:
    if seps == ["."] or (before == "." and "." not in seps):
        return False  # a decimal number (3.14159265358979) or its fractional part
    if not whole and len(groups) > 1 and (any(len(g) < 4 for g in groups[:-1])
                                          or len(groups[-1]) < 3):
        return False  # inside a longer run, only card-like grouping (4-4-4-4, 4-6-5)
    return luhn_ok("".join(groups))


def _phone_window(groups: list[str], seps: list[str], before: str | None,
                  after: str | None, whole: bool) -> bool:
    # National numbers only (international ones start with + and have their own
    # pattern): one kind of separator, a trunk 0 or the 3-3-4 North American shape.
    # Lists of numbers (100 200 300), dates (2024-11-22 10:30) and versions don't qualify.
    if len(groups) < 2 or len(set(seps)) != 1 or before in (".", "-") or after in (".", "-"):
        return False
    if any(not 2 <= len(g) <= 5 for g in groups):
        return False
    return groups[0][0] == "0" or [len(g) for g in groups] == [3, 3, 4]


def iban_ok(candidate: str) -> bool:
    """Whether ``candidate`` (separators ignored) passes the ISO 13616 mod-97 check."""
    s = re.sub(r"[^A-Za-z0-9]", "", candidate).upper()
    if not 15 <= len(s) <= 34:
        return False
    rearranged = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in rearranged)
    return int(num) % 97 == 1


def ip_ok(candidate: str) -> bool:
    """Whether ``candidate`` is an IPv4/IPv6 address that can point at someone: loopback
    (127.0.0.1, ::1) and unspecified (0.0.0.0, ::) addresses identify nobody, and masking
    them would garble every "bind 127.0.0.1" in messages and docs."""
    try:
        addr = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return not (addr.is_loopback or addr.is_unspecified)


def _paren_phone_ok(candidate: str) -> bool:
    return 9 <= sum(c.isdigit() for c in candidate) <= 12


SECRET_PATTERNS = [
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
    # JWT, signed or not (alg "none" leaves the signature empty, and it may be cut off).
    r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*)?",
    r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}",  # OpenAI / Anthropic
    r"\bwb-[A-Za-z0-9_-]{32,}",  # workbench keys
    r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",  # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",  # GitHub
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
    r"\bAIza[0-9A-Za-z_-]{35}\b",  # Google API key
    r"\bglpat-[A-Za-z0-9_-]{20,}",  # GitLab
]
SECRET_HINTS = ("-----BEGIN", "eyJ", "sk-", "wb-", "AKIA", "ASIA", "ghp_", "gho_", "ghu_",
                "ghs_", "ghr_", "xox", "AIza", "glpat-")
_SEP = r"[ .\-\n]"
# Every built-in finding holds a digit (cards, phones, IBANs, IPv4), "@" (emails), ":"
# (IPv6) or a secret's prefix, in normalised text (other scripts' digits are folded).
_ANY_PII_CHAR = re.compile("[0-9@:]|" + "|".join(re.escape(h) for h in SECRET_HINTS))


def default_recognizers() -> list[Recognizer]:
    """The built-in recognizers: secrets, emails, IBANs, cards, IP addresses, phones."""
    return [
        RegexRecognizer("SECRET", re.compile("|".join(SECRET_PATTERNS)), hints=SECRET_HINTS),
        RegexRecognizer("EMAIL", re.compile(
            r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
            hints=("@",)),
        RegexRecognizer("IBAN", re.compile(
            rf"\b[A-Z]{{2}}\d{{2}}(?:{_SEP}?[A-Z0-9]{{4}}){{2,7}}(?:{_SEP}?[A-Z0-9]{{1,4}})?\b"),
            iban_ok),
        DigitGroupRecognizer("CARD", 13, 19, _card_window),
        RegexRecognizer("IP", re.compile(
            r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\b(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}\b"
            r"|\b(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4})?\b"), ip_ok),
        # International: + then 8-15 digits (E.164), any separators and (area) brackets.
        RegexRecognizer("PHONE", re.compile(r"\+(?<![\d+]\+)\d(?:[ .\-\n()]{0,2}\d){7,14}(?!\d)"),
                        hints=("+",)),
        RegexRecognizer("PHONE", re.compile(r"\((?<!\d\()\d{2,5}\) ?\d{3,4}[ .\-]?\d{3,5}(?!\d)"),
                        _paren_phone_ok, hints=("(",)),
        DigitGroupRecognizer("PHONE", 9, 12, _phone_window),
    ]


@dataclass
class Redaction:
    """The text to pass on and the findings in the original."""

    text: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def kinds(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.kind] = out.get(f.kind, 0) + 1
        return out


class Guardrails:
    """Finds PII/secrets and applies a mode: mask, block, log-only or off."""

    def __init__(self, recognizers: Iterable[Recognizer] | None = None):
        self.recognizers: list[Recognizer] = list(recognizers or default_recognizers())
        self._custom = recognizers is not None
        self._n_builtin = len(self.recognizers)

    @property
    def known_shapes(self) -> bool:
        """Whether every recognizer is a built-in, whose shapes this module knows: then
        text without a digit, ``@``, ``:`` or a secret's prefix is skipped at once, and
        streams release text early (:func:`open_tail`). Others (names, addresses) may
        match any words."""
        return not self._custom and len(self.recognizers) == self._n_builtin

    @known_shapes.setter
    def known_shapes(self, value: bool) -> None:
        self._custom = not value

    def add(self, recognizer: Recognizer) -> None:
        """Add a recognizer (after the built-ins)."""
        self.recognizers.append(recognizer)

    def scan_normalised(self, norm: Normalised) -> list[Finding]:
        """Findings in already-normalised text, as spans of the original text."""
        if self.known_shapes and _ANY_PII_CHAR.search(norm.text) is None:
            return []  # most strings of a body: roles, ids, words, finish reasons
        found: list[Finding] = []
        for rec in self.recognizers:
            found.extend(rec.find(norm.text))
        if norm.starts:
            found = [Finding(f.kind, *norm.original_span(f.start, f.end)) for f in found
                     if f.end > f.start]
        # Overlaps: the match that starts first wins, the longer one on a tie.
        found.sort(key=lambda f: (f.start, -(f.end - f.start)))
        kept: list[Finding] = []
        for f in found:
            if kept and f.start < kept[-1].end:
                continue
            kept.append(f)
        return kept

    def scan(self, text: str) -> list[Finding]:
        """Findings in ``text`` (matched on its normalised form, spans in ``text``)."""
        return self.scan_normalised(normalise(text))

    def mask(self, text: str) -> Redaction:
        """``text`` with each finding replaced by ``[KIND]``."""
        findings = self.scan(text)
        if not findings:
            return Redaction(text)
        parts, pos = [], 0
        for f in findings:
            parts.append(text[pos:f.start])
            parts.append(f"[{f.kind}]")
            pos = f.end
        parts.append(text[pos:])
        return Redaction("".join(parts), findings)

    def apply(self, text: str, mode: str) -> Redaction:
        """Return the text to send on and what was found. ``block`` raises."""
        if mode == "off":
            return Redaction(text)
        red = self.mask(text)
        if not red.findings:
            return red
        if mode == "block":
            kinds = ", ".join(sorted(red.kinds))
            raise ContentBlocked(
                f"request blocked: it contains {kinds}; remove it or ask for mask mode"
            )
        if mode == "log-only":
            # The provider sees the original; only counts are recorded, never the text.
            return Redaction(text, red.findings)
        return red


# Streaming: which tail of the text a later chunk could still turn into (part of) a
# finding. Every built-in pattern that can span white space (cards, phone numbers,
# IBANs) is made of these characters between single (phones: up to two) white-space
# characters, and is at most ~45 normalised characters long; every other pattern (emails,
# secrets, IPs, JWTs) holds no white space at all. PEM blocks are kept whole separately.
_SPANNING_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789().+-")
_SPANNING_MAX = 64  # > the longest finding that can span white space (an IBAN, 44)
_SPACE = frozenset(" \n")
_OPEN_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{0,3})?\Z")
_NO_START = frozenset(".-)")  # such matches start with a digit, a capital, "+" or "("


def open_tail(text: str) -> int:
    """Where the part of normalised ``text`` that more text could still make part of a
    finding begins: its last white-space-free token, and before it any chain of tokens
    a card, phone number or IBAN could be spread over (digits, capitals, ``().+-``,
    separated by one or two spaces), up to :data:`_SPANNING_MAX` characters back. The
    result is a token start (after a space) unless capped."""
    n = len(text)
    i = n
    while i > 0 and text[i - 1] not in _SPACE:
        i -= 1
    if any(c not in _SPANNING_CHARS for c in text[i:]):
        return i  # the last token may grow into an email, a secret, ...; nothing spans it
    floor = max(0, n - _SPANNING_MAX)
    pos = i
    while pos > floor:
        gap = pos
        while gap > 0 and text[gap - 1] in _SPACE:
            gap -= 1
        if pos - gap > 2:
            break  # three spaces: no pattern spans them
        k = gap
        while k > floor and text[k - 1] in _SPANNING_CHARS:
            k -= 1
        first = k
        while first < gap and text[first] in _NO_START:
            first += 1
        if first == gap:
            break  # nothing before the space that a spanning match could start with
        if k > 0 and text[k - 1] not in _SPACE:
            # The token holds other characters: a match can start inside it only; keep
            # the whole token with the tail, so the text released before it ends at a
            # space and is masked with the same context the whole text would give it.
            while k > 0 and text[k - 1] not in _SPACE:
                k -= 1
            pos = k
            break
        pos = k
    return pos


def _mask_spans(text: str, findings: list[Finding]) -> str:
    spans = sorted((f.start, f.end, f.kind) for f in findings)
    parts, pos = [], 0
    for start, end, kind in spans:
        if end <= pos:
            continue
        if start < pos:  # overlapping spans: extend the mask already written
            pos = end
            continue
        parts.append(text[pos:start])
        parts.append(f"[{kind}]")
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


class StreamRedactor:
    """Masks PII in streamed text without seeing it whole.

    Text is released as soon as no later chunk can make it part of a finding: everything
    before :func:`open_tail` of what is held (normalised, so invisible padding does not
    count), and never up to a point a finding spans, so a card number or email split
    across chunks is still seen (and masked) in one piece. Prose flows out a word behind
    the model; a run of digits or capitals waits for the word that ends it (at most
    ~64 characters of it), a token waits for the space after it, a PEM block for its END
    line. ``holdback`` (optional) holds at least that many characters back as well.
    """

    max_buffer = 16_384

    def __init__(self, guardrails: Guardrails, holdback: int = 0):
        self.guardrails = guardrails
        # Custom recognizers: no knowledge of what they match, so the old fixed lag.
        self.holdback = holdback if guardrails.known_shapes else max(holdback, 64)
        self._pending = ""
        self.findings: list[Finding] = []

    @property
    def held(self) -> int:
        """How many characters (of the original text) are held back right now."""
        return len(self._pending)

    def _release(self, upto: int, known: Iterable[Finding] = ()) -> str:
        head, self._pending = self._pending[:upto], self._pending[upto:]
        # The head is masked with its own findings and with those seen in the longer
        # text it was cut from (context after the cut can only confirm a finding).
        own = self.guardrails.scan(head)
        extra = [f for f in known if f.end <= upto and not any(
            o.start <= f.start and f.end <= o.end for o in own)]
        self.findings.extend(own + extra)
        return _mask_spans(head, own + extra) if own or extra else head

    def feed(self, text: str) -> str:
        """Add a piece of the stream; return what can be released (masked), maybe ""."""
        self._pending += text
        if len(self._pending) > self.max_buffer:
            # A flood of invisible characters: drop them (they carry nothing a reader
            # sees) rather than release a value they pad.
            self._pending = "".join(c for c in self._pending if c in "\r\n" or _fold(c))
        norm = normalise(self._pending)
        end = len(norm.text) - self.holdback
        if self.guardrails.known_shapes:
            # A JSON escape cut in two ("\\u00" + "34") reads as a digit, a space or
            # anything once complete: judge the text as if it stopped before it.
            seen = norm.text
            partial = _OPEN_ESCAPE.search(seen)
            end = min(end, open_tail(seen[:partial.start()] if partial else seen))
        if end <= 0:
            return ""
        cut = norm.original_start(end)
        found = self.guardrails.scan_normalised(norm)
        for f in found:
            if f.start < cut < f.end:
                cut = f.start  # never split a finding
        # A PEM block is longer than any holdback: keep it whole until its END line (capped,
        # so a stray BEGIN cannot stall the stream forever).
        begin = self._pending.find("-----BEGIN")
        if 0 <= begin < cut and "-----END" not in self._pending[begin:] \
                and len(self._pending) < self.max_buffer:
            cut = begin
        return self._release(cut, found) if cut > 0 else ""

    def flush(self) -> str:
        """Release (masked) everything still held back."""
        return self._release(len(self._pending))


_KIND_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,31}$")


def pattern_recognizer(kind: str, pattern: str) -> RegexRecognizer:
    """A recognizer for a team's own identifiers (``EMPLOYEE_ID``, ``r"EMP-\\d{6}"``);
    matches are masked as ``[KIND]``. Raises ``ValueError`` naming what is wrong."""
    if not _KIND_RE.match(kind):
        raise ValueError(f"redaction pattern name {kind[:40]!r}: use 1-32 upper-case letters, "
                         "digits or _ starting with a letter (it is shown as [NAME])")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"redaction pattern {kind}: not a regular expression ({exc})") from None
    if compiled.match(""):
        raise ValueError(f"redaction pattern {kind} matches the empty string: it would mask "
                         "nothing useful and everything in between")
    return RegexRecognizer(kind, compiled)


@functools.lru_cache(maxsize=32)
def _policy(patterns: tuple[tuple[str, str], ...]) -> Guardrails:
    # Built-ins first, then added: a policy with no extra pattern keeps the built-ins'
    # known shapes (the fast skip of text that cannot hold PII, a stream's early release).
    policy = Guardrails()
    for kind, pattern in patterns:
        policy.add(pattern_recognizer(kind, pattern))
    return policy


_PROCESS_POLICY: list[Guardrails] = []  # the policy of the settings loaded last, if any


def redaction_policy(patterns: Mapping[str, str] | None = None) -> Guardrails:
    """The redaction policy: the default recognizers plus one per ``patterns`` entry
    (settings' ``redaction_patterns``: KIND -> regular expression). One shared instance
    per set of patterns. It also becomes this process's policy, the one
    :func:`default_guardrails` returns: errors, feedback, eval records and reports are
    masked with it even where no settings are at hand. ``Settings.redaction_policy()``
    is the usual way to get it."""
    policy = _policy(tuple(sorted((patterns or {}).items())))
    _PROCESS_POLICY[:] = [policy]
    return policy


def default_guardrails() -> Guardrails:
    """This process's redaction policy, for masking text that is stored, logged or echoed
    outside the Gateway (errors, feedback, eval records, reports, snippets): the one the
    settings loaded last describe (:func:`redaction_policy`), else the default
    recognizers."""
    return _PROCESS_POLICY[0] if _PROCESS_POLICY else _policy(())


def mask_text(text: str, guardrails: Guardrails | None = None) -> str:
    """``text`` with PII and secrets masked (``[EMAIL]``...) by ``guardrails``, else by
    this process's policy (:func:`default_guardrails`)."""
    return (guardrails or default_guardrails()).mask(text).text


def pseudonymise(text: str, max_len: int = 64, guardrails: Guardrails | None = None) -> str:
    """An identifier (a score name, a user id, a metadata key) safe to store: returned as
    is when it holds no PII; otherwise masked, with a short hash of the original appended
    so that two different identifiers stay two (``[EMAIL]~3f2a9c1b07de``). The hash is a
    pseudonym, not encryption: whoever can guess the original can confirm the guess."""
    red = (guardrails or default_guardrails()).mask(text)
    if not red.findings:
        return text
    tag = "~" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return red.text[:max(0, max_len - len(tag))] + tag


__all__ = [
    "DigitGroupRecognizer", "Finding", "Guardrails", "Normalised", "Recognizer",
    "RegexRecognizer", "Redaction", "SECRET_HINTS", "SECRET_PATTERNS", "StreamRedactor",
    "WindowTest", "default_guardrails", "default_recognizers", "iban_ok", "ip_ok",
    "luhn_ok", "mask_text", "normalise", "pattern_recognizer", "pseudonymise",
    "redaction_policy",
]
