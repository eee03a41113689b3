"""Messages are printed as written: brackets in them ([[probe]], [otlp-grpc]) are text,
not terminal markup that Rich would swallow."""

from __future__ import annotations

from tests.cli.test_cli import wb


def test_error_messages_keep_their_brackets() -> None:
    out = wb("probe")  # no probes.toml in the (empty) working directory
    assert out.returncode == 1
    assert "[[probe]]" in out.stderr, out.stderr

