"""``/v1/chat/completions``: governed chat, whole or as server-sent events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from workbench.errors import WorkbenchError
from workbench.http.tracing import request_trace
from workbench.models.gateway import StreamResult
from workbench.models.server.deps import AuthedCall
from workbench.models.server.schemas import ERRORS, ChatCompletion
from workbench.models.types import ChatRequest

router = APIRouter(tags=["openai"])
_END = object()  # sentinel for next(iterator, default) across the thread boundary


@router.post("/v1/chat/completions", summary="Governed chat completion.",
             responses={**ERRORS, 200: {"model": ChatCompletion, "content": {
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
    return GovernedStream(stream, first)


def _event(payload: Mapping[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


class GovernedStream(StreamingResponse):
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


__all__ = ["GovernedStream", "router"]
