"""The production service: a FastAPI app composed from the library (``workbench serve``).

Routes: ``POST /ask`` (answer, numbered sources, trace id), ``POST /ask/stream`` (the same
as server-sent events), ``POST /feedback`` (the observability feedback router, behind the
service's rules), ``GET /healthz`` (liveness), ``GET /readyz`` (store, collection,
provider), ``GET /metrics`` (Prometheus), ``GET /info``, ``GET /`` (the chat page),
``GET /docs`` (API docs, offline) and ``GET /openapi.json``.

Callers authenticate with workbench keys, the same principals as the Gateway: each
request gets a Gateway view bound to the caller's key, so allowlists, budgets, rate
limits, guardrails and the ledger apply as everywhere else. Errors have the workbench's
one shape ``{"error": {"message", "type", "code", "trace_id"}}`` and never carry a key,
prompt text or a stack trace; every response has an ``x-workbench-trace-id`` header.

The handlers live in :mod:`workbench.service.routes` (one module per endpoint group),
their dependencies in :mod:`workbench.service.deps`, the HTTP plumbing shared with the
gateway proxy in :mod:`workbench.http`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import Scope

from workbench import __version__
from workbench.http.errors import TRACED_ERRORS, install_error_handlers
from workbench.http.headers import TRACE_HEADER
from workbench.http.limits import BodyLimitMiddleware
from workbench.http.tracing import ResponseHeadersMiddleware, TraceIdMiddleware
from workbench.http.validation import document_400_not_422
from workbench.models.gateway import Gateway
from workbench.service.conversation import SESSION_HEADER
from workbench.service.deps import Caller, Inflight, ServiceState
from workbench.service.feedback_guard import feedback_stats
from workbench.service.metrics import MetricsMiddleware, ServiceMetrics
from workbench.service.pipeline import AskOptions
from workbench.service.routes import ask, feedback, health, metrics, pages
from workbench.service.routes.ask import AnswerStream, AskRequest, AskResponse
from workbench.service.session_metrics import register_session_metrics
from workbench.service.settings import ServiceSettings, load_service_settings

log = logging.getLogger("workbench.service")

# The chat page loads nothing from elsewhere and runs no inline code.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")

# The route groups, in the order the OpenAPI document lists them (feedback comes after
# these; its router is built from the settings). A new group is a module in
# workbench.service.routes with a module-level ``router``, added here.
ROUTERS = (pages.router, health.router, metrics.router, ask.router)


class SecurityHeaders(ResponseHeadersMiddleware):
    """Headers every response gets (the chat page relies on the CSP: no inline code)."""

    def set_headers(self, scope: Scope, headers: MutableHeaders) -> None:
        headers.setdefault("x-content-type-options", "nosniff")
        headers.setdefault("referrer-policy", "no-referrer")
        headers.setdefault("content-security-policy", CSP)


def _lifespan(state: ServiceState) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(state.startup)
        try:
            yield
        finally:
            await run_in_threadpool(state.shutdown)

    return lifespan


def create_service_app(gateway: Gateway | None = None, settings: ServiceSettings | None = None,
                       **overrides: Any) -> FastAPI:
    """The service for ``gateway`` (default: ``workbench.connect()`` from the current
    settings) with ``settings`` (default: :func:`load_service_settings`; ``overrides``
    replace single fields, e.g. ``collection="handbook"``)."""
    svc = settings or load_service_settings(**overrides)
    if settings is not None and overrides:
        svc = svc.model_copy(update=overrides)
    owns = gateway is None
    if gateway is None:
        from workbench.api import connect

        gateway = connect()
    service_metrics = ServiceMetrics(feedback_fn=lambda: feedback_stats(gateway))
    state = ServiceState(gateway=gateway, settings=svc, metrics=service_metrics,
                         options=AskOptions(collection=svc.collection, k=svc.k, mode=svc.mode,
                                            model=svc.model, max_tokens=svc.max_tokens),
                         inflight=Inflight(svc.max_inflight), owns_gateway=owns)
    app = FastAPI(
        title=svc.title, version=__version__, lifespan=_lifespan(state),
        docs_url=None, redoc_url=None,  # FastAPI's pages load from a CDN; /docs is ours
        description="Ask questions answered from the documents of a retrieval collection, "
                    "with numbered sources and a trace id; send feedback keyed by that trace "
                    "id. Authenticate with a workbench key: `Authorization: Bearer <key>`.",
    )
    app.state.service = state
    install_error_handlers(app, TRACED_ERRORS, log)
    document_400_not_422(app)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(feedback.router_for(state))
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    register_session_metrics(service_metrics, gateway)

    # Added innermost first: the trace id wraps everything, so even a 413 carries one.
    app.add_middleware(BodyLimitMiddleware, max_bytes=svc.max_request_bytes,
                       answers=TRACED_ERRORS, setting="service setting max_request_bytes")
    if svc.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=svc.cors_origins,
                           allow_methods=["GET", "POST"],
                           allow_headers=["authorization", "content-type", "traceparent",
                                          SESSION_HEADER],
                           expose_headers=[TRACE_HEADER, SESSION_HEADER])
    app.add_middleware(SecurityHeaders)
    app.add_middleware(MetricsMiddleware, metrics=service_metrics)
    app.add_middleware(TraceIdMiddleware)
    return app


def app_factory() -> FastAPI:
    """For ``uvicorn --factory workbench.service.app:app_factory`` (what ``workbench
    serve`` runs in each worker): settings come from workbench.toml and the environment."""
    return create_service_app()


__all__ = ["ROUTERS", "AnswerStream", "AskRequest", "AskResponse", "Caller", "ServiceState",
           "app_factory", "create_service_app"]
