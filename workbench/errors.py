"""Errors users see. Each carries an HTTP status and an OpenAI-style type/code.

One hierarchy for the library, the CLI and both HTTP apps: the CLI prints ``message``
(no stack trace) and exits non-zero; the HTTP apps turn it into
``{"error": {"message", "type", "code"}}`` with ``status``. Messages never contain a
secret: they are built from ids and names, never from keys or prompt text, and because a
name can be caller input (an unknown model called ``alice@example.com``), every message is
masked with the default guardrails when the error is made, before any span, log line, ledger
row or HTTP body can quote it.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class: a problem the user can fix, described in ``message``."""

    status: int = 400
    type: str = "invalid_request_error"
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        # Imported here: guardrails imports this module (ContentBlocked).
        from workbench.guardrails import mask_text

        message = mask_text(message)
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def to_openai(self) -> dict[str, dict[str, str | None]]:
        return {"error": {"message": self.message, "type": self.type, "code": self.code}}


class ConfigError(WorkbenchError):
    """Settings or a profile are wrong or incomplete: fix workbench.toml or the environment."""

    code = "config_error"


class BadRequest(WorkbenchError):
    """The request itself is invalid (HTTP 400)."""

    status = 400
    code = "bad_request"


class AuthError(WorkbenchError):
    """Missing, unknown, revoked or expired key (HTTP 401)."""

    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(WorkbenchError):
    """The key or its team may not use this model (HTTP 403)."""

    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class ModelNotFound(WorkbenchError):
    """No model of that name is configured (HTTP 404)."""

    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class RateLimited(WorkbenchError):
    """A requests- or tokens-per-minute limit is reached; retry later (HTTP 429)."""

    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class BudgetExceeded(RateLimited):
    """The key's or team's budget cannot cover the call; retrying will not help (HTTP 429)."""

    code = "insufficient_quota"


class ContentBlocked(WorkbenchError):
    """Guardrails in block mode found PII or a secret in the input (HTTP 400)."""

    status = 400
    code = "content_blocked"


class UpstreamError(WorkbenchError):
    """The provider failed after retries (and fallbacks)."""

    status = 502
    type = "upstream_error"
    code = "upstream_error"


class UpstreamTimeout(UpstreamError):
    """The provider did not answer in time, after retries and fallbacks (HTTP 504)."""

    status = 504
    code = "upstream_timeout"


class NotFound(WorkbenchError):
    """The thing asked for does not exist (HTTP 404)."""

    status = 404
    code = "not_found"


__all__ = [
    "AuthError", "BadRequest", "BudgetExceeded", "ConfigError", "ContentBlocked",
    "ModelNotFound", "NotFound", "PermissionDenied", "RateLimited", "UpstreamError",
    "UpstreamTimeout", "WorkbenchError",
]
