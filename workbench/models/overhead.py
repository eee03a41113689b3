"""The ``x-workbench-overhead-ms`` response header: time a request spent inside the
gateway, excluding the upstream.

The clock starts when the request enters the ASGI app (the outermost middleware), so the
time a request waits for a worker thread, for the event loop or behind other requests'
store transactions is counted: in-handler timers miss exactly that queueing. It stops
when the response's headers are sent (for a stream: with its first chunk). Time spent
waiting for the upstream provider (every attempt of the fallback chain, and a stream's
chunks up to the first one sent) is subtracted; the Gateway adds it up through
:func:`upstream_timer`, which reaches the request's box through a context variable
(Starlette copies the context into its worker threads).

Not counted: time before the ASGI server hands the request over (socket accept, HTTP
parsing, a busy event loop before the request is read); compare with the client's own
latency for that.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["OVERHEAD_HEADER", "OverheadMiddleware", "timed_iter", "upstream_timer"]

OVERHEAD_HEADER = "x-workbench-overhead-ms"
T = TypeVar("T")


class _Clock:
    __slots__ = ("upstream_s",)

    def __init__(self) -> None:
        self.upstream_s = 0.0


_clock: contextvars.ContextVar[_Clock | None] = contextvars.ContextVar(
    "workbench_upstream_clock", default=None)


@contextmanager
def upstream_timer() -> Iterator[None]:
    """Count the time inside this block as upstream time of the current request (a
    no-op outside an HTTP request)."""
    clock = _clock.get()
    if clock is None:
        yield
        return
    t0 = time.perf_counter()
    try:
        yield
    finally:
        clock.upstream_s += time.perf_counter() - t0


def timed_iter(chunks: Iterator[T]) -> Iterator[T]:
    """``chunks`` with the wait for each one counted as upstream time."""
    it = iter(chunks)
    try:
        while True:
            with upstream_timer():
                try:
                    item = next(it)
                except StopIteration:
                    return
            yield item
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()  # the provider's stream ends with ours (a client that went away)


class OverheadMiddleware:
    """Adds :data:`OVERHEAD_HEADER` (milliseconds, two decimals) to every HTTP response."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived = time.perf_counter()
        clock = _Clock()
        token = _clock.set(clock)

        async def send_with_overhead(message: Message) -> None:
            if message["type"] == "http.response.start":
                spent = time.perf_counter() - arrived - clock.upstream_s
                MutableHeaders(scope=message).append(OVERHEAD_HEADER,
                                                     f"{max(spent, 0.0) * 1000:.2f}")
            await send(message)

        try:
            await self.app(scope, receive, send_with_overhead)
        finally:
            _clock.reset(token)
