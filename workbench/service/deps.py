"""What the service's handlers depend on: its state (settings, gateway, metrics, load
shedding) and the caller's Gateway view."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials

from workbench.errors import AuthError, WorkbenchError
from workbench.http.auth import bearer
from workbench.http.errors import RetryLater
from workbench.models.gateway import Gateway
from workbench.service.metrics import ServiceMetrics
from workbench.service.pipeline import AskOptions
from workbench.service.settings import ServiceSettings

log = logging.getLogger("workbench.service")


class Overloaded(RetryLater):
    status = 503
    type = "server_error"
    code = "overloaded"


class Inflight:
    """Load shedding: at most ``limit`` answers in progress per worker. Only touched on
    the event loop thread, so a plain counter is enough."""

    def __init__(self, limit: int):
        self.limit = limit
        self.current = 0

    def acquire(self) -> None:
        if self.current >= self.limit:
            raise Overloaded(f"this worker is answering {self.current} questions already "
                             "(service setting max_inflight); retry in a second")
        self.current += 1

    def release(self) -> None:
        self.current -= 1

    async def guarded(self, fn: Callable[[], Awaitable[Response]]) -> Response:
        self.acquire()
        try:
            return await fn()
        finally:
            self.release()


@dataclass
class ServiceState:
    gateway: Gateway
    settings: ServiceSettings
    options: AskOptions
    metrics: ServiceMetrics
    inflight: Inflight
    owns_gateway: bool

    def readiness(self) -> dict[str, str]:
        from workbench.models.readiness import readiness

        checks = readiness(self.gateway)  # the store check includes a write probe
        try:
            from workbench.retrieval import Collections

            Collections.for_settings(self.gateway.settings).open(self.options.collection)
            checks["collection"] = "ok"
        except WorkbenchError as exc:
            checks["collection"] = f"error: {exc.message}"
        except (OSError, ValueError, RuntimeError) as exc:  # LanceDB/object-store failures
            checks["collection"] = f"error: {type(exc).__name__}"
        return checks

    def startup(self) -> None:
        gw = self.gateway
        released = gw.policy.sweep_reservations(older_than_s=3600)
        if released:
            log.warning("released %d budget reservations left by a crashed process", released)
        if not self.settings.warmup:
            return
        # Load the model weights now, not in the first user's request. A misconfigured
        # model does not stop the service: /readyz and the first answer say what is wrong.
        try:
            spec = gw.spec(self.options.model)
            load_llm = getattr(gw.provider(spec.provider), "llm", None)
            if callable(load_llm):
                load_llm(spec.upstream_name)
            load_embedder = getattr(gw.provider(gw.spec(None, kind="embedding").provider),
                                    "embedder", None)
            if callable(load_embedder):
                load_embedder()
        except WorkbenchError as exc:
            log.warning("warm-up skipped: %s", exc.message)

    def shutdown(self) -> None:
        from workbench.observability.traces import flush

        flush(self.gateway.store, 3.0)
        if self.owns_gateway:
            self.gateway.close()


async def service_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def caller(request: Request,
           creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Gateway:
    """The service's Gateway bound to the caller's key. Sync on purpose: FastAPI runs it
    in the threadpool, and it reads the store."""
    state: ServiceState = request.app.state.service
    if creds is not None:
        return state.gateway.as_key(creds.credentials)
    if state.settings.auth:
        raise AuthError("missing API key: send 'Authorization: Bearer <key>' (create one "
                        "with `workbench keys create --team T`)")
    return state.gateway


# Handler modules import these at module level: FastAPI resolves their string annotations
# (``from __future__ import annotations``) in the handler module's namespace.
State = Annotated[ServiceState, Depends(service_state)]
Caller = Annotated[Gateway, Depends(caller)]

__all__ = ["Caller", "Inflight", "Overloaded", "ServiceState", "State", "caller",
           "service_state"]
