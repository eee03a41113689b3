"""What the proxy's handlers depend on: the app's Gateway bound to the caller's key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.concurrency import run_in_threadpool

from workbench.http.auth import bearer
from workbench.models.gateway import Gateway


def authed(request: Request,
           creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Gateway:
    """The app's Gateway bound to the caller's key (401 if missing, unknown or revoked).
    Sync on purpose: FastAPI runs it in the threadpool, and it reads the store."""
    gateway: Gateway = request.app.state.gateway
    return gateway.as_key(creds.credentials if creds else "")


async def authed_for_call(
        request: Request,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Gateway:
    """For governed calls: a key this process has seen binds without a store read or a
    thread hop (the call re-checks it inside its first transaction, see
    ``Gateway.as_cached_key``); an unknown one is read in the threadpool."""
    gateway: Gateway = request.app.state.gateway
    secret = creds.credentials if creds else ""
    cached = gateway.as_cached_key(secret)
    if cached is not None:
        return cached
    return await run_in_threadpool(gateway.as_key, secret)


async def app_gateway(request: Request) -> Gateway:
    """The app's own Gateway (no key: for unauthenticated probes)."""
    gateway: Gateway = request.app.state.gateway
    return gateway


# Handler modules import these at module level: FastAPI resolves their string annotations
# (``from __future__ import annotations``) in the handler module's namespace.
Authed = Annotated[Gateway, Depends(authed)]
AuthedCall = Annotated[Gateway, Depends(authed_for_call)]
AppGateway = Annotated[Gateway, Depends(app_gateway)]

__all__ = ["AppGateway", "Authed", "AuthedCall", "app_gateway", "authed", "authed_for_call"]
