"""The OpenAI-compatible HTTP proxy in front of the Gateway (``workbench gateway``).

Clients written for OpenAI (the ``openai`` SDK, LlamaIndex ``OpenAILike``, ragas
``llm_factory``) point their base URL here and send a workbench key as the bearer token;
each request gets a Gateway view bound to that key, so allowlists, budgets, rate limits,
guardrails and the ledger apply exactly as they do in a notebook.

Errors always have OpenAI's shape ``{"error": {"message", "type", "code"}}`` and never
contain the key or prompt text; bad input is a 4xx, never a 500. The Gateway is sync
(CPU-bound embedded runtime, short SQL transactions), so every call runs in a worker
thread and the event loop stays free for other clients and disconnect detection.

One module per endpoint group (``health``, ``models``, ``chat``, ``embeddings``), each with
a module-level ``router``; ``deps`` holds what handlers depend on (the caller's Gateway
view), ``schemas`` the response shapes. HTTP plumbing shared with the service (errors,
trace ids, body limit) is in :mod:`workbench.http`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from workbench import __version__
from workbench.http.errors import OPENAI_ERRORS, install_error_handlers
from workbench.http.headers import TRACE_HEADER
from workbench.http.limits import BodyLimitMiddleware
from workbench.http.tracing import TraceIdMiddleware
from workbench.http.validation import document_400_not_422
from workbench.models.gateway import Gateway
from workbench.models.overhead import OverheadMiddleware
from workbench.models.server import chat, embeddings, health, models

log = logging.getLogger("workbench.server")

# The route groups, in the order the OpenAPI document lists them. A new group is a module
# with a module-level ``router`` (state through ``deps``), added here.
ROUTERS = (health.router, models.router, chat.router, embeddings.router)


def create_app(gateway: Gateway, routers: Sequence[APIRouter] = ()) -> FastAPI:
    """The proxy for ``gateway`` (its settings give the body limit). ``routers``: route
    groups from layers above models, served beside the proxy's own (``workbench gateway``
    adds the classroom's)."""
    app = FastAPI(
        title="workbench gateway",
        version=__version__,
        description="OpenAI-compatible, governed model access: send a workbench key as "
                    "`Authorization: Bearer <key>`.",
    )
    app.state.gateway = gateway
    document_400_not_422(app)
    install_error_handlers(app, OPENAI_ERRORS, log)
    for router in (*ROUTERS, *routers):
        app.include_router(router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=gateway.settings.max_request_bytes)
    app.add_middleware(TraceIdMiddleware)  # 413s carry a trace id too
    app.add_middleware(OverheadMiddleware)  # outermost: its clock counts all queueing
    return app


__all__ = ["ROUTERS", "TRACE_HEADER", "BodyLimitMiddleware", "create_app"]
