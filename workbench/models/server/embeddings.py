"""``/v1/embeddings``: governed embeddings, floats or OpenAI's base64."""

from __future__ import annotations

import base64
import struct

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from workbench.http.tracing import request_trace
from workbench.models.server.deps import AuthedCall
from workbench.models.server.schemas import ERRORS, EmbeddingList
from workbench.models.types import EmbeddingRequest

router = APIRouter(tags=["openai"])


@router.post("/v1/embeddings", summary="Governed embeddings.", response_model=EmbeddingList,
             responses=ERRORS)
async def embeddings(body: EmbeddingRequest, request: Request, gw: AuthedCall) -> Response:
    trace = await request_trace(request, gw)
    result = await run_in_threadpool(trace.bind(gw.embed), body.input, model=body.model,
                                     trace_id=trace.trace_id)
    response = result.response
    if body.encoding_format == "base64":
        response = {**response, "data": [
            {**d, "embedding": b64_floats(d["embedding"])} for d in response["data"]]}
    return JSONResponse(response)


def b64_floats(vector: list[float]) -> str:
    """OpenAI's base64 encoding: little-endian float32 (the openai SDK's default)."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


__all__ = ["b64_floats", "router"]
