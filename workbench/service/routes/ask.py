"""``/ask`` (an answer with numbered sources) and ``/ask/stream`` (the same as server-sent
events), with load shedding and the answer metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from workbench.errors import BadRequest, WorkbenchError
from workbench.http.errors import TRACED_ERRORS, TracedErrorResponse, documented_errors
from workbench.http.tracing import request_trace
from workbench.models.gateway import Gateway
from workbench.observability.trace_context import RequestTrace
from workbench.retrieval import Answer
from workbench.service.conversation import SESSION_HEADER, Conversation, open_conversation
from workbench.service.deps import Caller, State
from workbench.service.metrics import ServiceMetrics
from workbench.service.pipeline import AskOptions, ClientGone, run_ask

log = logging.getLogger("workbench.service")


# -- HTTP shapes (they are the OpenAPI schema too) ---------------------------------------
class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, description="The user's question.")
    session_id: str | None = Field(None, description="Continue this conversation (the "
                                   "session_id an answer returned); default: a new one.")


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
    prompt: str | None = Field(None, description="The prompt version: name@version.")
    session_id: str | None = Field(None, description="Send it back to continue.")


ERRORS = documented_errors(TracedErrorResponse, (
    (400, "Bad request: invalid JSON or fields, an empty or too long question."),
    (401, "Missing, unknown, revoked or expired key."),
    (403, "The key may not use the service's model."),
    (404, "The collection does not exist."),
    (413, "Request body too large."),
    (429, "Rate limit reached or budget exhausted."),
    (502, "The model provider failed."),
    (503, "Too many requests in flight on this worker: retry after a second."),
    (504, "The model provider timed out."),
))

router = APIRouter(tags=["ask"])


@router.post("/ask", response_model=AskResponse, responses=ERRORS,
             summary="Answer a question from the collection, with numbered sources.")
async def ask(body: AskRequest, request: Request, gw: Caller, state: State) -> Response:
    question = _question(body, state.settings.max_question_chars)
    trace = await request_trace(request, gw)
    conv = await open_conversation(request, gw, body.session_id)
    metrics = state.metrics

    async def go() -> Response:
        try:
            answer = await run_in_threadpool(trace.bind(run_ask), gw, question,
                                             state.options, trace_id=trace.trace_id,
                                             conversation=conv)
        except WorkbenchError:
            metrics.asks.inc("error", "false")
            raise
        metrics.asks.inc("answered" if answer.grounded else "no_context", "false")
        record_tokens(metrics, answer)
        return JSONResponse(answer.to_dict(), headers={SESSION_HEADER: conv.id})

    return await state.inflight.guarded(go)


@router.post("/ask/stream", responses={**ERRORS, 200: {
    "description": "Server-sent events: `meta` {trace_id}, `token` {text} (repeated), "
                   "then `done` (the /ask response) or `error` (the error object).",
    "content": {"text/event-stream": {"schema": {"type": "string"}}}}},
    summary="The answer as server-sent events, token by token.")
async def ask_stream(body: AskRequest, request: Request, gw: Caller, state: State) -> Response:
    question = _question(body, state.settings.max_question_chars)
    trace = await request_trace(request, gw)
    trace_id = trace.trace_id
    conv = await open_conversation(request, gw, body.session_id)
    metrics = state.metrics
    state.inflight.acquire()
    queue, task, cancelled = _start_pipeline(gw, question, state.options, trace, conv)
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
            return TRACED_ERRORS.internal_error(trace_id)
        raise first[1]

    def on_close(outcome: str) -> None:
        state.inflight.release()
        metrics.asks.inc(outcome, "true")

    stream = AnswerStream(first, queue, task, cancelled, trace_id,
                          on_answer=lambda answer: record_tokens(metrics, answer),
                          on_close=on_close)
    stream.headers[SESSION_HEADER] = conv.id
    return stream


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


def record_tokens(metrics: ServiceMetrics, answer: Answer) -> None:
    model = answer.model or "-"
    for kind in ("prompt", "completion"):
        n = answer.usage.get(f"{kind}_tokens") or 0
        if n:
            metrics.tokens.inc(model, kind, amount=float(n))


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
                yield _sse("error", TRACED_ERRORS.body(data, self.trace_id))
            elif kind == "crash":
                self.outcome = "error"
                yield _sse("error", TRACED_ERRORS.internal_error_body(self.trace_id))
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


def _start_pipeline(gw: Gateway, question: str, opts: AskOptions, trace: RequestTrace,
                    conv: Conversation | None = None
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
                emit("done", run_ask(gw, question, opts, trace_id=trace_id, on_token=on_token,
                                     conversation=conv))
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


__all__ = ["ERRORS", "AnswerStream", "AskRequest", "AskResponse", "SourceOut", "record_tokens",
           "router"]
