"""Invalid requests answer 400 in the workbench's error shape, never FastAPI's 422: the
message (masked, no offending input) and the OpenAPI document that says so."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

_MAX_LISTED_ERRORS = 5


def validation_error_message(exc: RequestValidationError) -> str:
    """A readable summary of what was wrong, from field paths and pydantic's messages
    only (never the offending input, which may be prompt text). Still masked: a field
    path can be a caller's dict key and some pydantic messages quote the input (a union
    tag, say)."""
    from workbench.guardrails import mask_text

    errors = list(exc.errors())
    for err in errors:
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error")
            return f"request body is not valid JSON{f' ({reason})' if reason else ''}"
    parts = []
    for err in errors[:_MAX_LISTED_ERRORS]:
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        parts.append(f"{'.'.join(loc) or 'body'}: {err.get('msg', 'invalid')}")
    more = len(errors) - _MAX_LISTED_ERRORS
    return mask_text("invalid request: " + "; ".join(parts)
                     + (f" (and {more} more)" if more > 0 else ""))


def document_400_not_422(app: FastAPI) -> None:
    """Drop FastAPI's automatic 422 from the OpenAPI document: our handler answers invalid
    requests with 400 in the OpenAI error shape, which every operation documents already."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)
            for ops in spec.get("paths", {}).values():
                for op in ops.values():
                    op.get("responses", {}).pop("422", None)
            schemas = spec.get("components", {}).get("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["document_400_not_422", "validation_error_message"]
