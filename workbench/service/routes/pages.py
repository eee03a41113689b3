"""The chat page (``/``), the offline API docs (``/docs``) and what the page needs to know
(``/info``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

from workbench import __version__
from workbench.service.deps import State

STATIC = Path(__file__).resolve().parents[1] / "static"

router = APIRouter()


class ServiceInfo(BaseModel):
    title: str
    collection: str
    auth: bool
    version: str
    max_question_chars: int


def _html(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html",
                        headers={"cache-control": "no-cache"})


@router.get("/", include_in_schema=False)
async def chat_page() -> Response:
    return _html("index.html")


@router.get("/docs", include_in_schema=False)
async def api_docs() -> Response:
    return _html("api.html")


@router.get("/info", tags=["service"], response_model=ServiceInfo,
            summary="What the chat page needs to know (no auth).")
async def info(state: State) -> ServiceInfo:
    svc = state.settings
    return ServiceInfo(title=svc.title, collection=svc.collection, auth=svc.auth,
                       version=__version__, max_question_chars=svc.max_question_chars)


__all__ = ["STATIC", "ServiceInfo", "router"]
