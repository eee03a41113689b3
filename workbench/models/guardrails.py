"""PII and secret redaction, on the way in (before a prompt leaves) and on the way out.

Recognizers are a seam: anything with ``name`` and ``find(text) -> list[Finding]`` can be
added (e.g. a Presidio analyzer where a spaCy model is installed). The built-ins are
regexes with validators (Luhn for cards, ISO 13616 mod-97 for IBANs, octet ranges for
IPv4) so that ordinary numbers are not masked.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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


@dataclass
class RegexRecognizer:
    name: str
    pattern: re.Pattern[str]
    validate: Callable[[str], bool] | None = None

    def find(self, text: str) -> list[Finding]:
        out = []
        for m in self.pattern.finditer(text):
            if self.validate is None or self.validate(m.group(0)):
                out.append(Finding(self.name, m.start(), m.end()))
        return out


def luhn_ok(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    s = candidate.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    rearranged = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in rearranged)
    return int(num) % 97 == 1


def ip_ok(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _phone_ok(candidate: str) -> bool:
    digits = sum(c.isdigit() for c in candidate)
    return 9 <= digits <= 15


SECRET_PATTERNS = [
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
    r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWT
    r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}",  # OpenAI / Anthropic
    r"\bwb-[A-Za-z0-9_-]{32,}",  # workbench keys
    r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",  # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",  # GitHub
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
    r"\bAIza[0-9A-Za-z_-]{35}\b",  # Google API key
    r"\bglpat-[A-Za-z0-9_-]{20,}",  # GitLab
]


def default_recognizers() -> list[Recognizer]:
    return [
        RegexRecognizer("SECRET", re.compile("|".join(SECRET_PATTERNS))),
        RegexRecognizer("EMAIL", re.compile(
            r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")),
        RegexRecognizer("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
                        iban_ok),
        RegexRecognizer("CARD", re.compile(r"\b(?:\d[ -]?){12,18}\d\b"), luhn_ok),
        RegexRecognizer("IP", re.compile(
            r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\b(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}\b"
            r"|\b(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4})?\b"), ip_ok),
        RegexRecognizer("PHONE", re.compile(
            r"(?<![\w.])\+?\d{1,3}?[ .-]?\(?\d{2,4}\)?(?:[ .-]?\d{2,4}){2,4}(?!\w|\.\d)"), _phone_ok),
    ]


@dataclass
class Redaction:
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

    def add(self, recognizer: Recognizer) -> None:
        self.recognizers.append(recognizer)

    def scan(self, text: str) -> list[Finding]:
        found: list[Finding] = []
        for rec in self.recognizers:
            found.extend(rec.find(text))
        # Overlaps: the match that starts first wins, the longer one on a tie.
        found.sort(key=lambda f: (f.start, -(f.end - f.start)))
        kept: list[Finding] = []
        for f in found:
            if kept and f.start < kept[-1].end:
                continue
            kept.append(f)
        return kept

    def mask(self, text: str) -> Redaction:
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


class StreamRedactor:
    """Masks PII in streamed text without seeing it whole.

    Text is held back until it is at least ``holdback`` characters from the end of what has
    arrived, and is released only up to a point that no finding spans, so a card number or
    email split across chunks is still seen (and masked) in one piece. The cost: output lags
    by ``holdback`` characters, flushed when the stream ends.
    """

    max_buffer = 16_384

    def __init__(self, guardrails: Guardrails, holdback: int = 64):
        self.guardrails = guardrails
        self.holdback = holdback
        self._pending = ""
        self.findings: list[Finding] = []

    def _release(self, upto: int) -> str:
        head, self._pending = self._pending[:upto], self._pending[upto:]
        red = self.guardrails.mask(head)
        self.findings.extend(red.findings)
        return red.text

    def feed(self, text: str) -> str:
        self._pending += text
        cut = len(self._pending) - self.holdback
        if cut <= 0:
            return ""
        for f in self.guardrails.scan(self._pending):
            if f.start < cut < f.end:
                cut = f.start  # never split a finding
        # A PEM block is longer than any holdback: keep it whole until its END line (capped,
        # so a stray BEGIN cannot stall the stream forever).
        begin = self._pending.find("-----BEGIN")
        if 0 <= begin < cut and "-----END" not in self._pending[begin:] \
                and len(self._pending) < self.max_buffer:
            cut = begin
        return self._release(cut) if cut > 0 else ""

    def flush(self) -> str:
        return self._release(len(self._pending))


@functools.cache
def default_guardrails() -> Guardrails:
    """One shared :class:`Guardrails` with the default recognizers, for masking text that is
    stored, logged or echoed outside the Gateway (errors, feedback, reports, snippets)."""
    return Guardrails()


def mask_text(text: str) -> str:
    """``text`` with PII and secrets masked by the default guardrails (``[EMAIL]``...)."""
    return default_guardrails().mask(text).text


def pseudonymise(text: str, max_len: int = 64) -> str:
    """An identifier (a score name, a user id, a metadata key) safe to store: returned as
    is when it holds no PII; otherwise masked, with a short hash of the original appended
    so that two different identifiers stay two (``[EMAIL]~3f2a9c1b07de``). The hash is a
    pseudonym, not encryption: whoever can guess the original can confirm the guess."""
    red = default_guardrails().mask(text)
    if not red.findings:
        return text
    tag = "~" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return red.text[:max(0, max_len - len(tag))] + tag
