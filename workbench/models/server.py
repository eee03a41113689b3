"""The OpenAI-compatible HTTP proxy in front of the Gateway (``workbench gateway``).

Clients written for OpenAI (the ``openai`` SDK, LlamaIndex ``OpenAILike``, ragas
``llm_factory``) point their base URL here and send a workbench key as the bearer token;
each request gets a Gateway view bound to that key, so allowlists, budgets, rate limits,
guardrails and the ledger apply exactly as they do in a notebook.

Errors always have OpenAI's shape ``{"error": {"message", "type", "code"}}`` and never
contain the key or prompt text; bad input is a 4xx, never a 500. The Gateway is sync
(CPU-bound embedded runtime, short SQL transactions), so every call runs in a worker
thread and the event loop stays free for other clients and disconnect detection.
"""

from __future__ import annotations

import base64
import json
import logging
import struct
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from workbench import __version__
from workbench.errors import BudgetExceeded, ModelNotFound, WorkbenchError
from workbench.models.gateway import Gateway, StreamResult, new_trace_id
from workbench.models.overhead import OverheadMiddleware
from workbench.models.readiness import readiness
from workbench.models.types import ChatRequest, EmbeddingRequest
from workbench.observability.trace_context import (
    CallerContext,
    RequestTrace,
    parse_traceparent,
)
from workbench.observability.trace_context import resolve as resolve_trace

log = logging.getLogger("workbench.server")

TRACE_HEADER = "x-workbench-trace-id"
_END = object()  # sentinel for next(iterator, default) across the thread boundary
_MAX_LISTED_ERRORS = 5


# -- response shapes (documentation for the OpenAPI schema) ----------------------------
class ErrorDetail(BaseModel):
    message: str
    type: str
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ModelCard(BaseModel):
    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = Field(description="The provider that serves the model.")
    kind: str = Field(description="chat, completion or embedding.")


class ModelList(BaseModel):
    object: str = "list"
    data: list[ModelCard]


class ChatCompletion(BaseModel):
    """OpenAI's chat.completion object, passed through from the provider."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    object: str = "chat.completion"
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


class EmbeddingList(BaseModel):
    model_config = ConfigDict(extra="allow")

    object: str = "list"
    model: str
    data: list[dict[str, Any]] = Field(
        description="`embedding` is a list of floats, or base64 little-endian float32 "
                    "when the request asked for encoding_format=base64.")
    usage: dict[str, Any] | None = None


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": what} for status, what in (
        (400, "Bad request (malformed JSON, invalid fields, content blocked)."),
        (401, "Missing, unknown, revoked or expired key."),
        (403, "The key may not use this model."),
        (404, "Unknown model."),
        (413, "Request body too large."),
        (429, "Rate limit reached or budget exhausted."),
        (502, "The upstream provider failed."),
        (504, "The upstream provider timed out."),
    )
}


# -- errors ----------------------------------------------------------------------------
class RequestTooLarge(WorkbenchError):
    status = 413
    code = "request_too_large"


class BadContentLength(WorkbenchError):
    code = "invalid_content_length"

    def __init__(self) -> None:
        super().__init__("Content-Length header is not a number")


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
    return headers


def error_response(err: WorkbenchError) -> Response:
    return error_json(err.status, err.to_openai(), error_headers(err))


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


def validation_error_message(exc: RequestValidationError) -> str:
    """A readable summary of what was wrong, from field paths and pydantic's messages
    only (never the offending input, which may be prompt text). Still masked: a field
    path can be a caller's dict key and some pydantic messages quote the input (a union
    tag, say)."""
    from workbench.models.guardrails import mask_text

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


class NestedTooDeeply(WorkbenchError):
    code = "nested_too_deeply"

    def __init__(self) -> None:
        super().__init__("request body is nested too deeply (thousands of brackets): send a "
                         "flatter JSON body")


def nested_too_deeply(exc: BaseException) -> bool:
    """A RecursionError from walking the caller's input (JSON parsing wraps it in an
    HTTPException): hostile nesting, a 400, not a server bug."""
    return isinstance(exc, RecursionError) or isinstance(exc.__cause__, RecursionError)


def _trace_id(request: Request) -> str:
    return str(getattr(request.state, "trace_id", "") or new_trace_id())


# -- ASGI middleware -------------------------------------------------------------------
class TraceIdMiddleware:
    """Gives each request a fresh trace id and returns it in a header. A caller's W3C
    ``traceparent`` is kept aside (``request.state.caller_trace``): the handler joins the
    caller's trace only once it knows the key and that the trace is that key's own
    (:func:`request_trace`), so the header is written from the state at response time."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["trace_id"] = new_trace_id()
        state["caller_trace"] = None
        for name, value in scope.get("headers", ()):
            if name == b"traceparent":
                state["caller_trace"] = parse_traceparent(value)

        async def send_with_trace(message: AsgiMessage) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(TRACE_HEADER, str(state["trace_id"]))
            await send(message)

        await self.app(scope, receive, send_with_trace)


async def request_trace(request: Request, gw: Gateway) -> RequestTrace:
    """The trace this request's work runs under: the caller's (its span the parent) when
    the caller sent a ``traceparent`` for a trace that is new or its own key's, else the
    request's fresh id (the caller's context then only a link). Updates the response's
    trace-id header. Call after authentication: the decision depends on the key."""
    caller: CallerContext | None = getattr(request.state, "caller_trace", None)
    if caller is None:
        return RequestTrace(_trace_id(request))
    trace = await run_in_threadpool(resolve_trace, gw.store, gw.principal.key_id, caller,
                                    _trace_id(request))
    request.state.trace_id = trace.trace_id
    return trace


class BodyLimitMiddleware:
    """Rejects bodies over ``max_bytes`` with 413: early from Content-Length, and by
    counting the bytes actually received (chunked uploads or a lying header)."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        err = RequestTooLarge(f"request body is larger than the limit of {self.max_bytes} "
                              "bytes (setting max_request_bytes)")
        await error_response(err)(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await error_json(400, BadContentLength().to_openai())(scope, receive, send)
                    return
                if declared > self.max_bytes:
                    await self._reject(scope, receive, send)
                    return
        # Buffer the body (every endpoint parses it whole anyway), then replay it.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before sending its request
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._reject(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> AsgiMessage:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # later calls wait for http.disconnect (streaming)

        await self.app(scope, replay, send)


# -- streaming -------------------------------------------------------------------------
def _event(payload: Mapping[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


class _GovernedStream(StreamingResponse):
    """SSE response that always closes the StreamResult, so a client that disconnects
    mid-stream still gets its budget reservation settled and a ledger row."""

    def __init__(self, result: StreamResult, first: Any):
        self.result = result
        super().__init__(self._events(first), media_type="text/event-stream",
                         headers={"cache-control": "no-cache"})

    async def _events(self, first: Any) -> AsyncIterator[str]:
        chunks: Iterator[dict[str, Any]] = iter(self.result)
        chunk: Any = first
        try:
            while chunk is not _END:
                yield _event(chunk)
                chunk = await run_in_threadpool(next, chunks, _END)
        except WorkbenchError as err:
            # Headers are already sent: OpenAI's SDKs turn an `error` event into APIError.
            yield _event(err.to_openai())
            return
        yield "data: [DONE]\n\n"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Shielded: on disconnect this task is being cancelled, and the close must
            # still run (it settles the reservation). A no-op if the stream finished.
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(self.result.close)


# -- the app ---------------------------------------------------------------------------
_bearer = HTTPBearer(auto_error=False, description="A workbench key (wb-…).")


def _authed(request: Request,
            creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Gateway:
    """The app's Gateway bound to the caller's key (401 if missing, unknown or revoked).
    Sync on purpose: FastAPI runs it in the threadpool, and it reads the store."""
    gateway: Gateway = request.app.state.gateway
    return gateway.as_key(creds.credentials if creds else "")


async def _authed_for_call(
        request: Request,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Gateway:
    """For governed calls: a key this process has seen binds without a store read or a
    thread hop (the call re-checks it inside its first transaction, see
    ``Gateway.as_cached_key``); an unknown one is read in the threadpool."""
    gateway: Gateway = request.app.state.gateway
    secret = creds.credentials if creds else ""
    cached = gateway.as_cached_key(secret)
    if cached is not None:
        return cached
    return await run_in_threadpool(gateway.as_key, secret)


# Module level, not inside create_app: FastAPI resolves these string annotations
# (``from __future__ import annotations``) in the module's namespace.
Authed = Annotated[Gateway, Depends(_authed)]
AuthedCall = Annotated[Gateway, Depends(_authed_for_call)]


def create_app(gateway: Gateway) -> FastAPI:
    """The proxy for ``gateway`` (its settings give the body limit)."""
    app = FastAPI(
        title="workbench gateway",
        version=__version__,
        description="OpenAI-compatible, governed model access: send a workbench key as "
                    "`Authorization: Bearer <key>`.",
    )
    app.state.gateway = gateway
    document_400_not_422(app)

    @app.exception_handler(WorkbenchError)
    async def _workbench_error(request: Request, exc: WorkbenchError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return error_json(400, {"error": {"message": validation_error_message(exc),
                                           "type": "invalid_request_error",
                                           "code": "bad_request"}})

    @app.exception_handler(RecursionError)
    async def _too_deep(request: Request, exc: RecursionError) -> Response:
        return error_response(NestedTooDeeply())

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if nested_too_deeply(exc):
            return error_response(NestedTooDeeply())
        code = {400: "bad_request", 404: "not_found",
                405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_json(exc.status_code, {"error": {
            "message": WorkbenchError(str(exc.detail)).message,  # masked, as every error
            "type": "invalid_request_error", "code": code}}, exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # A bug, not bad input: log it server-side; the client gets no stack trace.
        trace_id = _trace_id(request)
        log.error("unhandled error (trace %s): %s", trace_id, type(exc).__name__)
        return error_json(500, {"error": {
            "message": f"internal error; quote trace id {trace_id} when reporting it",
            "type": "server_error", "code": "internal_error"}}, {TRACE_HEADER: trace_id})

    @app.get("/healthz", tags=["probes"], summary="Liveness (no auth).")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"],
             summary="Readiness: store (read and a write probe) and default provider.",
             response_model=Readiness, responses={503: {"model": Readiness}})
    async def readyz() -> Response:
        checks = await run_in_threadpool(readiness, gateway)
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks},
                            status_code=200 if ok else 503)

    @app.get("/v1/models", tags=["openai"], summary="Models this key may use.",
             response_model=ModelList, responses=_ERRORS)
    async def list_models(gw: Authed) -> ModelList:
        return ModelList(data=[ModelCard(id=s.name, owned_by=s.provider, kind=s.kind)
                               for s in gw.models()])

    @app.get("/v1/models/{model}", tags=["openai"], summary="One model, if this key may use it.",
             response_model=ModelCard, responses=_ERRORS)
    async def get_model(model: str, gw: Authed) -> ModelCard:
        spec = gateway.settings.model_specs().get(model)
        if spec is None:
            raise ModelNotFound(f"unknown model {model!r}; GET /v1/models lists yours")
        gw.policy.check_model(gw.principal, spec.name)
        return ModelCard(id=spec.name, owned_by=spec.provider, kind=spec.kind)

    @app.post("/v1/chat/completions", tags=["openai"], summary="Governed chat completion.",
              responses={**_ERRORS, 200: {"model": ChatCompletion, "content": {
                  "text/event-stream": {"schema": {"type": "string"}}},
                  "description": "A chat.completion, or SSE chunks when stream=true."}})
    async def chat_completions(body: ChatRequest, request: Request, gw: AuthedCall) -> Response:
        trace = await request_trace(request, gw)
        if not body.stream:
            result = await run_in_threadpool(trace.bind(gw.chat), body, trace_id=trace.trace_id)
            return JSONResponse(result.response)
        stream = await run_in_threadpool(trace.bind(gw.stream), body, trace_id=trace.trace_id)
        try:
            # Pull the first chunk before answering 200: an upstream that fails at once
            # becomes a proper 502/504, not an error event inside a 200 stream.
            first = await run_in_threadpool(next, iter(stream), _END)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(stream.close)
            raise
        return _GovernedStream(stream, first)

    @app.post("/v1/embeddings", tags=["openai"], summary="Governed embeddings.",
              response_model=EmbeddingList, responses=_ERRORS)
    async def embeddings(body: EmbeddingRequest, request: Request, gw: AuthedCall) -> Response:
        trace = await request_trace(request, gw)
        result = await run_in_threadpool(trace.bind(gw.embed), body.input, model=body.model,
                                         trace_id=trace.trace_id)
        response = result.response
        if body.encoding_format == "base64":
            response = {**response, "data": [
                {**d, "embedding": _b64_floats(d["embedding"])} for d in response["data"]]}
        return JSONResponse(response)

    app.add_middleware(BodyLimitMiddleware, max_bytes=gateway.settings.max_request_bytes)
    app.add_middleware(TraceIdMiddleware)  # outermost: 413s carry a trace id too
    app.add_middleware(OverheadMiddleware)  # outermost: its clock counts all queueing
    return app


def _b64_floats(vector: list[float]) -> str:
    """OpenAI's base64 encoding: little-endian float32 (the openai SDK's default)."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
