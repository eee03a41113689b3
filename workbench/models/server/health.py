"""``/healthz`` (liveness) and ``/readyz`` (store with a write probe, default provider)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from workbench.http.health import Readiness, liveness, readiness_response
from workbench.models.readiness import readiness
from workbench.models.server.deps import AppGateway

router = APIRouter(tags=["probes"])


@router.get("/healthz", summary="Liveness (no auth).")
async def healthz() -> dict[str, str]:
    return liveness()


@router.get("/readyz", summary="Readiness: store (read and a write probe) and default provider.",
            response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(gateway: AppGateway) -> Response:
    return readiness_response(await run_in_threadpool(readiness, gateway))


__all__ = ["router"]
