"""uvicorn's access log without caller data: ``workbench gateway`` and ``workbench serve``
log each request line with its query string removed and the path masked.

A query string is caller input (``/feedback?trace_id=...&user=alice@example.com``) and the
access log is written at INFO to stdout, where log shippers collect it; the path can be
caller input too (``/v1/models/alice@example.com``). The filter rewrites the record itself,
so every handler attached to ``uvicorn.access`` (uvicorn's own, or one an operator adds
in a custom logging config) sees the redacted line.
"""

from __future__ import annotations

import copy
import logging
from typing import Any
from urllib.parse import unquote

QUERY_PLACEHOLDER = "?[QUERY]"


def redact_request_path(full_path: str) -> str:
    """``/ask?q=x`` -> ``/ask?[QUERY]``; PII/secrets in the (percent-decoded) path masked."""
    from workbench.guardrails import mask_text

    path, sep, _ = full_path.partition("?")
    # Decoded first: "alice%40example.com" would slip past the email pattern.
    return mask_text(unquote(path)) + (QUERY_PLACEHOLDER if sep else "")


class RedactQueryFilter(logging.Filter):
    """A logging filter for ``uvicorn.access``: rewrites the request path argument of each
    record (uvicorn passes ``(client, method, full_path, http_version, status)``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_request_path(args[2]), *args[3:])
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default logging config with :class:`RedactQueryFilter` on the access
    logger (pass it as ``uvicorn.run(..., log_config=...)``)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["workbench_redact_query"] = {
        "()": f"{__name__}.RedactQueryFilter"}
    config["loggers"].setdefault("uvicorn.access", {})["filters"] = ["workbench_redact_query"]
    return config


__all__ = ["QUERY_PLACEHOLDER", "RedactQueryFilter", "redact_request_path",
           "uvicorn_log_config"]
