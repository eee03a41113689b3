"""``/metrics``: Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from workbench.service.deps import State
from workbench.service.metrics import CONTENT_TYPE

router = APIRouter(tags=["probes"])


@router.get("/metrics", summary="Prometheus metrics (text format).", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
async def prometheus(state: State) -> Response:
    body = await run_in_threadpool(state.metrics.render)
    return Response(body, media_type=CONTENT_TYPE)


__all__ = ["router"]
