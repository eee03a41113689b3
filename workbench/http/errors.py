"""How the HTTP apps answer errors: one table from :class:`~workbench.errors.WorkbenchError`
(and FastAPI's own exceptions) to a status, headers and the OpenAI error shape
``{"error": {"message", "type", "code"}}`` - with ``trace_id`` added on apps that say so.

Bodies never carry a key, prompt text or a stack trace (messages are masked when an
error is made); bad input is a 4xx, never a 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException

from workbench.errors import BadRequest, BudgetExceeded, WorkbenchError
from workbench.http.headers import TRACE_HEADER
from workbench.http.tracing import request_trace_id
from workbench.http.validation import validation_error_message


# -- models (documentation for the OpenAPI schema) -----------------------------------------
class ErrorDetail(BaseModel):
    message: str
    type: str
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


# The service's shape: the same plus the trace id. Same class names on purpose: the
# OpenAPI document names its schemas after the classes.
TracedErrorDetail: type[BaseModel] = create_model(
    "ErrorDetail", __base__=ErrorDetail, trace_id=(str | None, None))
TracedErrorResponse: type[BaseModel] = create_model(
    "ErrorResponse", error=(TracedErrorDetail, ...))


def documented_errors(model: type[BaseModel], rows: Iterable[tuple[int, str]]
                      ) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` for the error statuses an operation may answer."""
    return {status: {"model": model, "description": what} for status, what in rows}


# -- errors the HTTP layer raises ----------------------------------------------------------
class RequestTooLarge(WorkbenchError):
    status = 413
    code = "request_too_large"


class BadContentLength(WorkbenchError):
    code = "invalid_content_length"

    def __init__(self) -> None:
        super().__init__("Content-Length header is not a number")


class NestedTooDeeply(WorkbenchError):
    code = "nested_too_deeply"

    def __init__(self) -> None:
        super().__init__("request body is nested too deeply (thousands of brackets): send a "
                         "flatter JSON body")


class RetryLater(WorkbenchError):
    """An error whose answer tells the client when to retry (``Retry-After``)."""

    retry_after_s = 1


def nested_too_deeply(exc: BaseException) -> bool:
    """A RecursionError from walking the caller's input (JSON parsing wraps it in an
    HTTPException): hostile nesting, a 400, not a server bug."""
    return isinstance(exc, RecursionError) or isinstance(exc.__cause__, RecursionError)


# -- writing answers -----------------------------------------------------------------------
def error_json(status: int, payload: Mapping[str, Any],
               headers: Mapping[str, str] | None = None) -> Response:
    # ensure_ascii: a message may quote a client-supplied name holding a lone surrogate,
    # which UTF-8 cannot encode; escaped it is still valid JSON.
    return Response(json.dumps(payload, ensure_ascii=True), status_code=status,
                    media_type="application/json", headers=dict(headers or {}))


def error_headers(err: WorkbenchError) -> dict[str, str]:
    """The headers an error answer carries, on the proxy and the service alike."""
    headers: dict[str, str] = {}
    if isinstance(err, BudgetExceeded):
        headers["x-should-retry"] = "false"  # openai SDKs retry 429s unless told not to
    if err.status == 401:
        headers["www-authenticate"] = "Bearer"
    if isinstance(err, RetryLater):
        headers["retry-after"] = str(err.retry_after_s)
    return headers


_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}


@dataclass(frozen=True)
class ErrorAnswers:
    """How one app writes errors: the OpenAI shape, plus ``trace_id`` in the body when
    ``traced`` (the service; the proxy's clients are OpenAI SDKs and read the header)."""

    traced: bool = False

    def body(self, err: WorkbenchError, trace_id: str) -> dict[str, Any]:
        body: dict[str, Any] = err.to_openai()
        if self.traced:
            body["error"]["trace_id"] = trace_id
        return body

    def response(self, err: WorkbenchError, trace_id: str,
                 headers: Mapping[str, str] | None = None) -> Response:
        return error_json(err.status, self.body(err, trace_id),
                          {**error_headers(err), **(headers or {})})

    def internal_error_body(self, trace_id: str) -> dict[str, Any]:
        # Built here, not as a WorkbenchError: nothing to mask, and the trace id must
        # reach the client verbatim.
        error: dict[str, Any] = {
            "message": f"internal error; quote trace id {trace_id} when reporting it",
            "type": "server_error", "code": "internal_error"}
        if self.traced:
            error["trace_id"] = trace_id
        return {"error": error}

    def internal_error(self, trace_id: str) -> Response:
        return error_json(500, self.internal_error_body(trace_id))


OPENAI_ERRORS = ErrorAnswers(traced=False)
TRACED_ERRORS = ErrorAnswers(traced=True)


def install_error_handlers(app: FastAPI, answers: ErrorAnswers, log: logging.Logger) -> None:
    """The error table: workbench errors, invalid requests (400, not 422), hostile
    nesting, Starlette's HTTP errors (404, 405, ...) and bugs (500, logged by type)."""

    @app.exception_handler(WorkbenchError)
    async def workbench_error(request: Request, exc: WorkbenchError) -> Response:
        return answers.response(exc, request_trace_id(request))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        return answers.response(BadRequest(validation_error_message(exc)),
                                request_trace_id(request))

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, exc: RecursionError) -> Response:
        return answers.response(NestedTooDeeply(), request_trace_id(request))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if nested_too_deeply(exc):
            return answers.response(NestedTooDeeply(), request_trace_id(request))
        err = WorkbenchError(str(exc.detail),  # masked, as every error message
                             code=_HTTP_CODES.get(exc.status_code, "http_error"),
                             status=exc.status_code)
        return answers.response(err, request_trace_id(request), exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # A bug, not bad input: logged by type only (messages may quote user text); the
        # client gets no stack trace. This handler runs outside the app's middleware, so
        # it sets the trace-id header itself.
        trace_id = request_trace_id(request)
        log.error("unhandled error (trace %s): %s", trace_id, type(exc).__name__)
        response = answers.internal_error(trace_id)
        response.headers[TRACE_HEADER] = trace_id
        return response


__all__ = ["OPENAI_ERRORS", "TRACED_ERRORS", "BadContentLength", "ErrorAnswers", "ErrorDetail",
           "ErrorResponse", "NestedTooDeeply", "RequestTooLarge", "RetryLater",
           "TracedErrorDetail", "TracedErrorResponse", "documented_errors", "error_headers",
           "error_json", "install_error_handlers", "nested_too_deeply"]
