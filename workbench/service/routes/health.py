"""``/healthz`` (liveness) and ``/readyz`` (store with a write probe, collection, model
provider)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from workbench.http.health import Readiness, liveness, readiness_response
from workbench.service.deps import State

router = APIRouter(tags=["probes"])


@router.get("/healthz", summary="Liveness (no auth).")
async def healthz() -> dict[str, str]:
    return liveness()


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}},
            summary="Readiness: store (with a write probe), collection and model provider "
                    "(no auth).")
async def readyz(state: State) -> Response:
    return readiness_response(await run_in_threadpool(state.readiness))


__all__ = ["router"]
