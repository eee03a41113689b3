"""One HTTP call to a service or gateway under test (probes, golden conversations):
transport failures and HTTP errors become a :class:`WorkbenchError` that names the
endpoint and the server's own message, never a stack trace."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workbench.errors import WorkbenchError

__all__ = ["call_json"]


def call_json(send: Callable[[], Any], what: str, *, code: str) -> tuple[dict[str, Any], Any]:
    """Run ``send`` (an httpx request) and return its JSON object and the response. ``what`` names the
    endpoint in messages; ``code`` prefixes the error codes (``<code>_unreachable``,
    ``<code>_http_error``)."""
    import httpx

    try:
        resp = send()
    except httpx.HTTPError as exc:
        raise WorkbenchError(f"{what} unreachable: {type(exc).__name__}",
                             code=f"{code}_unreachable", status=502) from None
    try:
        data = resp.json()
    except ValueError:
        data = {}
    if resp.status_code >= 400:
        err = (data.get("error") or {}) if isinstance(data, dict) else {}
        msg = err.get("message") if isinstance(err, dict) else None
        raise WorkbenchError(f"{what} answered HTTP {resp.status_code}"
                             + (f": {msg}" if msg else ""), code=f"{code}_http_error",
                             status=502)
    return (data if isinstance(data, dict) else {}), resp
