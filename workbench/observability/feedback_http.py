"""HTTP for feedback: a FastAPI router the service mounts (``POST /feedback`` ...).

The body is parsed here rather than by FastAPI so that every problem (invalid JSON, an
oversized body, an unknown kind, a wrong value type) comes back in the workbench's one
error shape ``{"error": {"message", "type", "code"}}`` with a message saying what to fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from workbench.errors import BadRequest, WorkbenchError
from workbench.observability import feedback
from workbench.store import Store

MAX_BODY_BYTES = 64 * 1024
MAX_BATCH = 100
MAX_DEPTH = 32  # feedback is flat; deeper JSON is refused before anything walks it


def _too_deep(data: Any, limit: int = MAX_DEPTH) -> bool:
    """Nesting deeper than ``limit`` (iterative: a hostile body cannot exhaust the stack)."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= limit:
                return True
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict)
                                                  else item))
    return False


def _error(exc: WorkbenchError) -> JSONResponse:
    return JSONResponse(exc.to_openai(), status_code=exc.status)


def _body_schema() -> dict[str, Any]:
    one = feedback.FeedbackIn.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "anyOf": [one, {"type": "array", "items": one, "maxItems": MAX_BATCH}]}}}}}


def feedback_router(store: Store | Callable[[], Store], *, prefix: str = "",
                    dependencies: Sequence[Any] | None = None,
                    max_body_bytes: int = MAX_BODY_BYTES,
                    key_of: Callable[[Request], str | None] | None = None) -> APIRouter:
    """``POST {prefix}/feedback`` (one object or a list of up to 100),
    ``GET {prefix}/feedback`` and ``GET {prefix}/feedback/stats``.

    ``store``: the store, or a callable returning it (resolved per request).
    ``dependencies``: e.g. the service's auth dependency.
    ``key_of``: the caller's key id for a request (after the dependencies ran): feedback
    rows and idempotency ids are then per key (see :func:`feedback.record`).
    Status codes: 201 created, 200 an update or an idempotent replay, 400 invalid, 409 an
    idempotency id reused for different feedback, 413 body too large.
    """
    router = APIRouter(prefix=prefix, tags=["feedback"], dependencies=list(dependencies or []))

    def get_store() -> Store:
        return store() if callable(store) else store

    @router.post("/feedback", openapi_extra=_body_schema(),
                 responses={201: {"description": "created"}, 200: {"description": "updated"},
                            400: {"description": "invalid feedback"},
                            409: {"description": "idempotency conflict"},
                            413: {"description": "body too large"}})
    async def post_feedback(request: Request) -> JSONResponse:
        raw = await request.body()
        if len(raw) > max_body_bytes:
            return _error(WorkbenchError(
                f"request body is {len(raw)} bytes; the limit is {max_body_bytes}",
                code="payload_too_large", status=413))
        try:
            data = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError):
            return _error(BadRequest("request body is not valid JSON"))
        except RecursionError:  # thousands of nested brackets: Python's parser gives up
            data = None
            deep = True
        else:
            deep = _too_deep(data)
        if deep:
            return _error(BadRequest(f"request body is nested more than {MAX_DEPTH} levels "
                                     "deep: send flat feedback objects",
                                     code="nested_too_deeply"))
        items = data if isinstance(data, list) else [data]
        if not items or len(items) > MAX_BATCH:
            return _error(BadRequest(f"send one feedback object or a list of 1-{MAX_BATCH}"))
        try:
            parsed = [feedback.validate(item) for item in items]  # all valid, or none stored
            key_id = key_of(request) if key_of else None
            done = [await run_in_threadpool(feedback.record, get_store(), fb, key_id=key_id)
                    for fb in parsed]
        except WorkbenchError as exc:
            return _error(exc)
        out = [{"id": r.id, "status": r.status, "trace_id": r.feedback["trace_id"],
                "linked": r.feedback["linked"]} for r in done]
        status = 201 if any(r.status == "created" for r in done) else 200
        return JSONResponse(out if isinstance(data, list) else out[0], status_code=status)

    @router.get("/feedback")
    async def get_feedback(trace_id: str | None = Query(None, max_length=64),
                           kind: str | None = Query(None, max_length=16),
                           limit: int = Query(50, ge=1, le=1000)) -> JSONResponse:
        try:
            rows = await run_in_threadpool(feedback.list_feedback, get_store(),
                                           trace_id=trace_id, kind=kind, limit=limit)
        except WorkbenchError as exc:
            return _error(exc)
        return JSONResponse(json.loads(json.dumps(list(rows), default=str)))

    @router.get("/feedback/stats")
    async def get_stats() -> JSONResponse:
        rows = await run_in_threadpool(feedback.stats, get_store())
        return JSONResponse(rows)

    return router


__all__ = ["MAX_BATCH", "MAX_BODY_BYTES", "feedback_router"]
