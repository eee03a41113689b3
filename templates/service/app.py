"""The team's service. Everything generic comes from ``workbench.service``: auth with
workbench keys, ``POST /ask`` (+ ``/ask/stream``), feedback, ``/healthz``, ``/readyz``,
``/metrics`` and the chat page. Add what is yours here.

Run it:   workbench serve --app app:create_app        (or: uvicorn --factory app:create_app)
Settings: workbench.toml ([workbench] + [service]) and WORKBENCH_* variables.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from workbench.service import create_service_app


def create_app() -> FastAPI:
    app = create_service_app()

    @app.get("/version", tags=["service"], summary="What is deployed (no auth).")
    async def version() -> dict[str, str]:
        # An example of a route of your own: CI sets RELEASE to the commit it deploys.
        return {"service": "handbook-assistant", "release": os.environ.get("RELEASE", "dev")}

    return app
