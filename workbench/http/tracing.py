"""Trace ids over HTTP: every request gets one, every response returns it in
:data:`~workbench.http.headers.TRACE_HEADER`, and a caller's W3C ``traceparent`` is joined
only when the trace is new or the caller's own."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from workbench.http.headers import TRACE_HEADER
from workbench.observability.trace_context import (
    CallerContext,
    RequestTrace,
    new_trace_id,
    parse_traceparent,
)
from workbench.observability.trace_context import resolve as resolve_trace

if TYPE_CHECKING:
    from workbench.models.gateway import Gateway


def scope_trace_id(scope: Scope) -> str:
    """The request's trace id (set by :class:`TraceIdMiddleware`), or a fresh one."""
    return str(scope.get("state", {}).get("trace_id") or new_trace_id())


def request_trace_id(request: Request) -> str:
    return str(getattr(request.state, "trace_id", "") or new_trace_id())


class ResponseHeadersMiddleware:
    """Base for ASGI middleware that edits the headers of every HTTP response:
    :meth:`prepare` sees the request's scope first, :meth:`set_headers` the response's."""

    def __init__(self, app: ASGIApp):
        self.app = app

    def prepare(self, scope: Scope) -> None:
        """Called once per HTTP request, before the app runs."""

    def set_headers(self, scope: Scope, headers: MutableHeaders) -> None:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.prepare(scope)

        async def send_with_headers(message: AsgiMessage) -> None:
            if message["type"] == "http.response.start":
                self.set_headers(scope, MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, send_with_headers)


class TraceIdMiddleware(ResponseHeadersMiddleware):
    """Gives each request a fresh trace id and returns it in a header. A caller's W3C
    ``traceparent`` is kept aside (``request.state.caller_trace``): the handler joins the
    caller's trace only once it knows the key and that the trace is that key's own
    (:func:`request_trace`), so the header is written from the state at response time."""

    def prepare(self, scope: Scope) -> None:
        state = scope.setdefault("state", {})
        state["trace_id"] = new_trace_id()
        state["caller_trace"] = None
        for name, value in scope.get("headers", ()):
            if name == b"traceparent":
                state["caller_trace"] = parse_traceparent(value)

    def set_headers(self, scope: Scope, headers: MutableHeaders) -> None:
        headers.append(TRACE_HEADER, str(scope["state"]["trace_id"]))


async def request_trace(request: Request, gw: Gateway) -> RequestTrace:
    """The trace this request's work runs under: the caller's (its span the parent) when
    the caller sent a ``traceparent`` for a trace that is new or its own key's, else the
    request's fresh id (the caller's context then only a link). Updates the response's
    trace-id header. Call after authentication: the decision depends on the key."""
    caller: CallerContext | None = getattr(request.state, "caller_trace", None)
    if caller is None:
        return RequestTrace(request_trace_id(request))
    trace = await run_in_threadpool(resolve_trace, gw.store, gw.principal.key_id, caller,
                                    request_trace_id(request))
    request.state.trace_id = trace.trace_id
    return trace


__all__ = ["ResponseHeadersMiddleware", "TraceIdMiddleware", "request_trace", "request_trace_id",
           "scope_trace_id"]
