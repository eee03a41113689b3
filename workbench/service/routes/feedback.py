"""``/feedback``: the observability feedback router behind the service's rules (per-key
rows, the feedback guard, writes only unless ``feedback_read``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from workbench.observability.feedback_http import feedback_router
from workbench.service.deps import Caller, ServiceState
from workbench.service.feedback_guard import guard_feedback


async def _feedback_rules(request: Request, gw: Caller) -> None:
    request.state.key_id = gw.principal.key_id  # feedback rows are per key (_key_of)
    state: ServiceState = request.app.state.service
    await guard_feedback(request, gw, strict=state.settings.strict_feedback)


def _key_of(request: Request) -> str | None:
    return getattr(request.state, "key_id", None)


def router_for(state: ServiceState) -> APIRouter:
    svc = state.settings
    router = feedback_router(lambda: state.gateway.store, dependencies=[Depends(_feedback_rules)],
                             max_body_bytes=svc.max_request_bytes, key_of=_key_of)
    if not svc.feedback_read:
        router.routes[:] = [r for r in router.routes if "POST" in getattr(r, "methods", ())]
    return router


__all__ = ["router_for"]
