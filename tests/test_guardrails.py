from __future__ import annotations

import re

import pytest

from workbench.errors import ContentBlocked
from workbench.guardrails import Finding, Guardrails, RegexRecognizer, iban_ok, luhn_ok

G = Guardrails()


@pytest.mark.parametrize("text, kind", [
    ("mail me at jane.doe@example.co.uk please", "EMAIL"),
    ("card 4111 1111 1111 1111 ok", "CARD"),
    ("card 5555-5555-5555-4444", "CARD"),
    ("iban DE89 3704 0044 0532 0130 00 thanks", "IBAN"),
    ("iban GB82WEST12345698765432", "IBAN"),
    ("server 192.168.10.42 is down", "IP"),
    ("v6 2001:db8::8a2e:370:7334 here", "IP"),
    ("call +44 20 7946 0958 today", "PHONE"),
    ("call +44 20 7946 0958.", "PHONE"),
    ("call (555) 123-4567", "PHONE"),
    ("key sk-proj-abcdefghijklmnopqrstuvwx1234", "SECRET"),
    ("aws AKIAIOSFODNN7EXAMPLE", "SECRET"),
    ("gh ghp_" + "a" * 36, "SECRET"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "SECRET"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "SECRET"),
])
def test_recognizes_and_masks(text: str, kind: str) -> None:
    red = G.mask(text)
    assert kind in red.kinds, red
    assert f"[{kind}]" in red.text


@pytest.mark.parametrize("text, kind", [
    ("order 4111 1111 1111 1112 is not a valid card", "CARD"),  # Luhn fails
    ("iban DE89 3704 0044 0532 0130 01 wrong checksum", "IBAN"),  # mod-97 fails
    ("version 1.2.3.4000 and 999.1.1.1", "IP"),
    ("the year 2024 had 365 days", "PHONE"),
    ("a plain sentence about vectors", "EMAIL"),
])
def test_does_not_mask_lookalikes(text: str, kind: str) -> None:
    assert kind not in G.mask(text).kinds


def test_validators() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("DE89370400440532013000") and not iban_ok("DE89370400440532013001")


def test_modes() -> None:
    text = "write to bob@example.com"
    assert G.apply(text, "mask").text == "write to [EMAIL]"
    logged = G.apply(text, "log-only")
    assert logged.text == text and logged.kinds == {"EMAIL": 1}
    assert G.apply(text, "off").findings == []
    with pytest.raises(ContentBlocked) as exc:
        G.apply(text, "block")
    assert "EMAIL" in exc.value.message and "bob@" not in exc.value.message


def test_pluggable_recognizer() -> None:
    g = Guardrails()
    g.add(RegexRecognizer("EMPLOYEE_ID", re.compile(r"\bEMP-\d{6}\b")))
    assert g.mask("badge EMP-123456").text == "badge [EMPLOYEE_ID]"

    class Upper:
        name = "SHOUT"

        def find(self, text: str) -> list[Finding]:
            return [Finding("SHOUT", m.start(), m.end()) for m in re.finditer(r"\bSECRETWORD\b", text)]

    g.add(Upper())
    assert "[SHOUT]" in g.mask("the SECRETWORD is").text


def test_overlaps_do_not_double_mask() -> None:
    red = G.mask("x jane@example.com 4111111111111111 y")
    assert red.text == "x [EMAIL] [CARD] y"


@pytest.mark.parametrize("chunk", [1, 3, 7, 50])
def test_stream_redactor_masks_pii_split_across_chunks(chunk: int) -> None:
    from workbench.guardrails import StreamRedactor

    text = ("Reach jane.doe@example.com or card 4111 1111 1111 1111, then call "
            "+44 20 7946 0958. Thanks! " * 3)
    r = StreamRedactor(G)
    out = "".join(r.feed(text[i:i + chunk]) for i in range(0, len(text), chunk)) + r.flush()
    assert out == G.mask(text).text
    assert "jane.doe" not in out and "4111" not in out
    assert {f.kind for f in r.findings} >= {"EMAIL", "CARD", "PHONE"}


def test_loopback_and_unspecified_addresses_are_not_pii() -> None:
    from workbench.guardrails import Guardrails

    g = Guardrails()
    text = "Bind 127.0.0.1 or ::1, never 0.0.0.0; the client was 203.0.113.9 and 10.1.2.3."
    assert g.mask(text).text == ("Bind 127.0.0.1 or ::1, never 0.0.0.0; the client was [IP] "
                                 "and [IP].")


def test_the_settings_policy_keeps_the_built_in_shapes_unless_a_pattern_is_added() -> None:
    """The default policy must keep the fast paths (the skip of text that cannot hold PII,
    a stream's early release); one added pattern turns them off, as it must."""
    from workbench.guardrails import redaction_policy

    assert redaction_policy().known_shapes
    custom = redaction_policy({"TICKET": r"TCK-\d{4}"})
    assert not custom.known_shapes
    assert custom.mask("see TCK-1234").text == "see [TICKET]"
    redaction_policy()  # leave the process policy as it was
