"""The production service: a FastAPI app composed from the library (``workbench serve``).

Routes: ``POST /ask`` (answer, numbered sources, trace id), ``POST /ask/stream`` (the same
as server-sent events), ``POST /feedback`` (the observability feedback router, behind the
service's rules), ``GET /healthz`` (liveness), ``GET /readyz`` (store, collection,
provider), ``GET /metrics`` (Prometheus), ``GET /info``, ``GET /`` (the chat page),
``GET /docs`` (API docs, offline) and ``GET /openapi.json``.

Callers authenticate with workbench keys, the same principals as the Gateway: each
request gets a Gateway view bound to the caller's key, so allowlists, budgets, rate
limits, guardrails and the ledger apply as everywhere else. Errors have the workbench's
one shape ``{"error": {"message", "type", "code", "trace_id"}}`` and never carry a key,
prompt text or a stack trace; every response has an ``x-workbench-trace-id`` header.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from workbench import __version__
from workbench.errors import AuthError, BadRequest, WorkbenchError
from workbench.models.gateway import Gateway, new_trace_id
from workbench.models.server import (
    BodyLimitMiddleware,
    NestedTooDeeply,
    Readiness,
    RequestTooLarge,
    TraceIdMiddleware,
    document_400_not_422,
    error_headers,
    error_json,
    nested_too_deeply,
    request_trace,
    validation_error_message,
)
from workbench.observability.feedback_http import feedback_router
from workbench.observability.trace_context import RequestTrace
from workbench.retrieval import Answer
from workbench.service.feedback_guard import feedback_stats, guard_feedback
from workbench.service.metrics import CONTENT_TYPE, MetricsMiddleware, ServiceMetrics
from workbench.service.pipeline import AskOptions, ClientGone, run_ask
from workbench.service.settings import ServiceSettings, load_service_settings

log = logging.getLogger("workbench.service")

STATIC = Path(__file__).resolve().parent / "static"
# The chat page loads nothing from elsewhere and runs no inline code.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


# -- HTTP shapes (they are the OpenAPI schema too) ---------------------------------------
class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, description="The user's question.")


class SourceOut(BaseModel):
    n: int = Field(description="The number the answer cites, as [n].")
    source: str = Field(description="The document, as it was ingested.")
    title: str
    heading: str
    score: float
    similarity: float | None
    snippet: str
    cited: bool = Field(description="The answer cites this source.")


class AskResponse(BaseModel):
    question: str
    answer: str
    sources: list[SourceOut]
    trace_id: str = Field(description="Send feedback with it; find the trace with it.")
    model: str | None
    grounded: bool = Field(description="False: nothing relevant was found; no model call.")
    usage: dict[str, int]
    latency_ms: float


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: str | None = None
    trace_id: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ServiceInfo(BaseModel):
    title: str
    collection: str
    auth: bool
    version: str
    max_question_chars: int


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": what} for status, what in (
        (400, "Bad request: invalid JSON or fields, an empty or too long question."),
        (401, "Missing, unknown, revoked or expired key."),
        (403, "The key may not use the service's model."),
        (404, "The collection does not exist."),
        (413, "Request body too large."),
        (429, "Rate limit reached or budget exhausted."),
        (502, "The model provider failed."),
        (503, "Too many requests in flight on this worker: retry after a second."),
        (504, "The model provider timed out."),
    )
}


# -- errors ----------------------------------------------------------------------------
class Overloaded(WorkbenchError):
    status = 503
    type = "server_error"
    code = "overloaded"


def _trace_id(request: Request) -> str:
    return str(getattr(request.state, "trace_id", "") or new_trace_id())


def error_body(err: WorkbenchError, trace_id: str) -> dict[str, Any]:
    body = err.to_openai()
    body["error"]["trace_id"] = trace_id
    return body


def error_response(err: WorkbenchError, trace_id: str) -> Response:
    """The proxy's error answer (same headers, same JSON encoding) plus the trace id, and
    ``Retry-After`` when this worker sheds load."""
    headers = error_headers(err)
    if isinstance(err, Overloaded):
        headers["retry-after"] = "1"
    return error_json(err.status, error_body(err, trace_id), headers)


def _plain_error(status: int, message: str, code: str, trace_id: str,
                 headers: dict[str, str] | None = None) -> Response:
    resp = error_response(WorkbenchError(message, code=code, status=status), trace_id)
    resp.headers.update(headers or {})
    return resp


class _BodyLimit(BodyLimitMiddleware):
    """The proxy's body limit, answering in the service's error shape (with trace id)."""

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        err = RequestTooLarge(f"request body is larger than the limit of {self.max_bytes} "
                              "bytes (service setting max_request_bytes)")
        trace_id = str(scope.get("state", {}).get("trace_id") or new_trace_id())
        await error_response(err, trace_id)(scope, receive, send)


# -- state -----------------------------------------------------------------------------
class _Inflight:
    """Load shedding: at most ``limit`` answers in progress per worker. Only touched on
    the event loop thread, so a plain counter is enough."""

    def __init__(self, limit: int):
        self.limit = limit
        self.current = 0

    def acquire(self) -> None:
        if self.current >= self.limit:
            raise Overloaded(f"this worker is answering {self.current} questions already "
                             "(service setting max_inflight); retry in a second")
        self.current += 1

    def release(self) -> None:
        self.current -= 1


@dataclass
class ServiceState:
    gateway: Gateway
    settings: ServiceSettings
    options: AskOptions
    metrics: ServiceMetrics
    inflight: _Inflight
    owns_gateway: bool

    def readiness(self) -> dict[str, str]:
        from workbench.models.readiness import readiness

        checks = readiness(self.gateway)  # the store check includes a write probe
        try:
            from workbench.retrieval import Collections

            Collections.for_settings(self.gateway.settings).open(self.options.collection)
            checks["collection"] = "ok"
        except WorkbenchError as exc:
            checks["collection"] = f"error: {exc.message}"
        except (OSError, ValueError, RuntimeError) as exc:  # LanceDB/object-store failures
            checks["collection"] = f"error: {type(exc).__name__}"
        return checks

    def startup(self) -> None:
        gw = self.gateway
        released = gw.policy.sweep_reservations(older_than_s=3600)
        if released:
            log.warning("released %d budget reservations left by a crashed process", released)
        if not self.settings.warmup:
            return
        # Load the model weights now, not in the first user's request. A misconfigured
        # model does not stop the service: /readyz and the first answer say what is wrong.
        try:
            spec = gw.spec(self.options.model)
            load_llm = getattr(gw.provider(spec.provider), "llm", None)
            if callable(load_llm):
                load_llm(spec.upstream_name)
            load_embedder = getattr(gw.provider(gw.spec(None, kind="embedding").provider),
                                    "embedder", None)
            if callable(load_embedder):
                load_embedder()
        except WorkbenchError as exc:
            log.warning("warm-up skipped: %s", exc.message)

    def shutdown(self) -> None:
        from workbench.observability.traces import flush

        flush(self.gateway.store, 3.0)
        if self.owns_gateway:
            self.gateway.close()


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


# -- auth ------------------------------------------------------------------------------
_bearer = HTTPBearer(auto_error=False, description="A workbench key (wb-…).")


def _caller(request: Request,
            creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Gateway:
    """The service's Gateway bound to the caller's key. Sync on purpose: FastAPI runs it
    in the threadpool, and it reads the store."""
    state = _state(request)
    if creds is not None:
        return state.gateway.as_key(creds.credentials)
    if state.settings.auth:
        raise AuthError("missing API key: send 'Authorization: Bearer <key>' (create one "
                        "with `workbench keys create --team T`)")
    return state.gateway


# Module level: FastAPI resolves these string annotations in the module's namespace.
Caller = Annotated[Gateway, Depends(_caller)]


async def _feedback_rules(request: Request, gw: Caller) -> None:
    request.state.key_id = gw.principal.key_id  # feedback rows are per key (_key_of)
    await guard_feedback(request, gw, strict=_state(request).settings.strict_feedback)


def _key_of(request: Request) -> str | None:
    return getattr(request.state, "key_id", None)


# -- streaming -------------------------------------------------------------------------
def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


Item = tuple[str, Any]  # ("token", str) | ("done", Answer) | ("error", WorkbenchError) ...


class AnswerStream(StreamingResponse):
    """Server-sent events for one answer: ``meta`` (trace id), ``token`` (text pieces),
    then ``done`` (the full answer with sources) or ``error``.

    However the response ends (finished, client gone, server shutting down), the
    pipeline thread is told to stop and awaited, so its budget reservation is settled
    and its spans are ended before the request is over."""

    def __init__(self, first: Item, queue: asyncio.Queue[Item], task: asyncio.Task[None],
                 cancelled: threading.Event, trace_id: str,
                 on_answer: Callable[[Answer], None], on_close: Callable[[str], None]):
        self.queue = queue
        self.task = task
        self.cancelled = cancelled
        self.trace_id = trace_id
        self.on_answer = on_answer
        self.on_close = on_close
        self.outcome = "disconnected"
        super().__init__(self._events(first), media_type="text/event-stream",
                         headers={"cache-control": "no-cache", "x-accel-buffering": "no"})

    async def _events(self, first: Item) -> AsyncIterator[str]:
        yield _sse("meta", {"trace_id": self.trace_id})
        kind, data = first
        while kind != "end":
            if kind == "token":
                yield _sse("token", {"text": data})
            elif kind == "done":
                self.outcome = "answered" if data.grounded else "no_context"
                self.on_answer(data)
                yield _sse("done", data.to_dict())
            elif kind == "error":
                self.outcome = "error"
                # Headers are sent: the error travels as an event, with the trace id.
                yield _sse("error", error_body(data, self.trace_id))
            elif kind == "crash":
                self.outcome = "error"
                yield _sse("error", _internal_error_body(self.trace_id))
            kind, data = await self.queue.get()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.cancelled.set()
            # Shielded: on disconnect this task is being cancelled, and the pipeline must
            # still wind down (it settles the reservation at its next token).
            with anyio.CancelScope(shield=True):
                await self.task
            self.on_close(self.outcome)


def _internal_error_body(trace_id: str) -> dict[str, Any]:
    return {"error": {"message": f"internal error; quote trace id {trace_id} when reporting "
                                 "it", "type": "server_error", "code": "internal_error",
                      "trace_id": trace_id}}


def _start_pipeline(gw: Gateway, question: str, opts: AskOptions, trace: RequestTrace
                    ) -> tuple[asyncio.Queue[Item], asyncio.Task[None], threading.Event]:
    """Run the pipeline in a worker thread; its tokens, answer or error arrive on the
    queue, then ("end", None)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Item] = asyncio.Queue()
    cancelled = threading.Event()

    def emit(kind: str, data: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (kind, data))

    def on_token(piece: str) -> None:
        if cancelled.is_set():
            raise ClientGone()
        emit("token", piece)

    trace_id = trace.trace_id

    def work() -> None:
        try:
            with trace.active():
                emit("done", run_ask(gw, question, opts, trace_id=trace_id, on_token=on_token))
        except ClientGone:
            pass  # nobody is listening; the stream was closed and its budget settled
        except WorkbenchError as err:
            emit("error", err)

    async def runner() -> None:
        try:
            await anyio.to_thread.run_sync(work)
        except Exception as exc:  # noqa: BLE001 - a bug: logged, reported as an error event
            log.error("unhandled error in /ask/stream (trace %s): %s", trace_id,
                      type(exc).__name__)
            queue.put_nowait(("crash", exc))
        finally:
            queue.put_nowait(("end", None))

    return queue, asyncio.create_task(runner()), cancelled


# -- the app ---------------------------------------------------------------------------
class SecurityHeaders:
    """Headers every response gets (the chat page relies on the CSP: no inline code)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: AsgiMessage) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("x-content-type-options", "nosniff")
                headers.setdefault("referrer-policy", "no-referrer")
                headers.setdefault("content-security-policy", CSP)
            await send(message)

        await self.app(scope, receive, with_headers)


def _lifespan(state: ServiceState) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(state.startup)
        try:
            yield
        finally:
            await run_in_threadpool(state.shutdown)

    return lifespan


def create_service_app(gateway: Gateway | None = None, settings: ServiceSettings | None = None,
                       **overrides: Any) -> FastAPI:
    """The service for ``gateway`` (default: ``workbench.connect()`` from the current
    settings) with ``settings`` (default: :func:`load_service_settings`; ``overrides``
    replace single fields, e.g. ``collection="handbook"``)."""

    svc = settings or load_service_settings(**overrides)
    if settings is not None and overrides:
        svc = svc.model_copy(update=overrides)
    owns = gateway is None
    if gateway is None:
        from workbench.api import connect

        gateway = connect()
    metrics = ServiceMetrics(feedback_fn=lambda: feedback_stats(gateway))
    state = ServiceState(gateway=gateway, settings=svc, metrics=metrics,
                         options=AskOptions(collection=svc.collection, k=svc.k, mode=svc.mode,
                                            model=svc.model, max_tokens=svc.max_tokens),
                         inflight=_Inflight(svc.max_inflight), owns_gateway=owns)
    app = FastAPI(
        title=svc.title, version=__version__, lifespan=_lifespan(state),
        docs_url=None, redoc_url=None,  # FastAPI's pages load from a CDN; /docs is ours
        description="Ask questions answered from the documents of a retrieval collection, "
                    "with numbered sources and a trace id; send feedback keyed by that trace "
                    "id. Authenticate with a workbench key: `Authorization: Bearer <key>`.",
    )
    app.state.service = state
    _add_error_handlers(app)
    document_400_not_422(app)
    _add_routes(app, state)
    router = feedback_router(lambda: state.gateway.store, dependencies=[Depends(_feedback_rules)],
                             max_body_bytes=svc.max_request_bytes, key_of=_key_of)
    if not svc.feedback_read:
        router.routes[:] = [r for r in router.routes if "POST" in getattr(r, "methods", ())]
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # Added innermost first: the trace id wraps everything, so even a 413 carries one.
    app.add_middleware(_BodyLimit, max_bytes=svc.max_request_bytes)
    if svc.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=svc.cors_origins,
                           allow_methods=["GET", "POST"],
                           allow_headers=["authorization", "content-type", "traceparent"],
                           expose_headers=["x-workbench-trace-id"])
    app.add_middleware(SecurityHeaders)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(TraceIdMiddleware)
    return app


def app_factory() -> FastAPI:
    """For ``uvicorn --factory workbench.service.app:app_factory`` (what ``workbench
    serve`` runs in each worker): settings come from workbench.toml and the environment."""
    return create_service_app()


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(WorkbenchError)
    async def _workbench_error(request: Request, exc: WorkbenchError) -> Response:
        return error_response(exc, _trace_id(request))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return error_response(BadRequest(validation_error_message(exc)), _trace_id(request))

    @app.exception_handler(RecursionError)
    async def _too_deep(request: Request, exc: RecursionError) -> Response:
        return error_response(NestedTooDeeply(), _trace_id(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if nested_too_deeply(exc):
            return error_response(NestedTooDeeply(), _trace_id(request))
        code = {400: "bad_request", 404: "not_found",
                405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _plain_error(exc.status_code, str(exc.detail), code, _trace_id(request),
                            headers=dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # A bug, not bad input: logged by type only (messages may quote user text).
        trace_id = _trace_id(request)
        log.error("unhandled error (trace %s): %s", trace_id, type(exc).__name__)
        return Response(json.dumps(_internal_error_body(trace_id)), status_code=500,
                        media_type="application/json")


def _question(body: AskRequest, limit: int) -> str:
    question = body.question.strip()
    if not question:
        raise BadRequest('the question is empty: send {"question": "..."}')
    if len(question) > limit:
        raise BadRequest(f"the question is {len(question)} characters; the limit is {limit}",
                         code="question_too_long")
    try:
        question.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("the question must be valid Unicode (found a lone surrogate)") from None
    return question


def _record_tokens(metrics: ServiceMetrics, answer: Answer) -> None:
    model = answer.model or "-"
    for kind in ("prompt", "completion"):
        n = answer.usage.get(f"{kind}_tokens") or 0
        if n:
            metrics.tokens.inc(model, kind, amount=float(n))


def _html(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html",
                        headers={"cache-control": "no-cache"})


def _add_routes(app: FastAPI, state: ServiceState) -> None:
    svc = state.settings
    metrics = state.metrics

    @app.get("/", include_in_schema=False)
    async def chat_page() -> Response:
        return _html("index.html")

    @app.get("/docs", include_in_schema=False)
    async def api_docs() -> Response:
        return _html("api.html")

    @app.get("/info", tags=["service"], response_model=ServiceInfo,
             summary="What the chat page needs to know (no auth).")
    async def info() -> ServiceInfo:
        return ServiceInfo(title=svc.title, collection=svc.collection, auth=svc.auth,
                           version=__version__, max_question_chars=svc.max_question_chars)

    @app.get("/healthz", tags=["probes"], summary="Liveness (no auth).")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"], response_model=Readiness,
             responses={503: {"model": Readiness}},
             summary="Readiness: store (with a write probe), collection and model provider "
                     "(no auth).")
    async def readyz() -> Response:
        checks = await run_in_threadpool(state.readiness)
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks},
                            status_code=200 if ok else 503)

    @app.get("/metrics", tags=["probes"], summary="Prometheus metrics (text format).",
             response_class=Response,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def prometheus() -> Response:
        body = await run_in_threadpool(metrics.render)
        return Response(body, media_type=CONTENT_TYPE)

    async def _guarded(fn: Callable[[], Awaitable[Response]]) -> Response:
        state.inflight.acquire()
        try:
            return await fn()
        finally:
            state.inflight.release()

    @app.post("/ask", tags=["ask"], response_model=AskResponse, responses=_ERRORS,
              summary="Answer a question from the collection, with numbered sources.")
    async def ask(body: AskRequest, request: Request, gw: Caller) -> Response:
        question = _question(body, svc.max_question_chars)
        trace = await request_trace(request, gw)

        async def go() -> Response:
            try:
                answer = await run_in_threadpool(trace.bind(run_ask), gw, question,
                                                 state.options, trace_id=trace.trace_id)
            except WorkbenchError:
                metrics.asks.inc("error", "false")
                raise
            metrics.asks.inc("answered" if answer.grounded else "no_context", "false")
            _record_tokens(metrics, answer)
            return JSONResponse(answer.to_dict())

        return await _guarded(go)

    @app.post("/ask/stream", tags=["ask"], responses={**_ERRORS, 200: {
        "description": "Server-sent events: `meta` {trace_id}, `token` {text} (repeated), "
                       "then `done` (the /ask response) or `error` (the error object).",
        "content": {"text/event-stream": {"schema": {"type": "string"}}}}},
        summary="The answer as server-sent events, token by token.")
    async def ask_stream(body: AskRequest, request: Request, gw: Caller) -> Response:
        question = _question(body, svc.max_question_chars)
        trace = await request_trace(request, gw)
        trace_id = trace.trace_id
        state.inflight.acquire()
        queue, task, cancelled = _start_pipeline(gw, question, state.options, trace)
        try:
            # Wait for the first token (or the answer, or an error) before answering 200:
            # a budget, rate-limit or provider failure becomes a proper 4xx/5xx.
            first = await queue.get()
        except BaseException:
            cancelled.set()
            with anyio.CancelScope(shield=True):
                await task
            state.inflight.release()
            raise
        if first[0] in ("error", "crash"):
            await task
            state.inflight.release()
            metrics.asks.inc("error", "true")
            if first[0] == "crash":
                return Response(json.dumps(_internal_error_body(trace_id)), status_code=500,
                                media_type="application/json")
            raise first[1]

        def on_close(outcome: str) -> None:
            state.inflight.release()
            metrics.asks.inc(outcome, "true")

        return AnswerStream(first, queue, task, cancelled, trace_id,
                            on_answer=lambda answer: _record_tokens(metrics, answer),
                            on_close=on_close)


__all__ = ["AnswerStream", "AskRequest", "AskResponse", "ServiceState", "app_factory",
           "create_service_app", "error_response"]
