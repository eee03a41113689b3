"""Liveness and readiness answers, the same on both apps."""

from __future__ import annotations

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


def liveness() -> dict[str, str]:
    return {"status": "ok"}


def readiness_response(checks: dict[str, str]) -> Response:
    """200 ``ready`` when every check says ``ok``, else 503 ``not ready``."""
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks},
                        status_code=200 if ok else 503)


__all__ = ["Readiness", "liveness", "readiness_response"]
