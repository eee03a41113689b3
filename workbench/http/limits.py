"""The request-body size limit (both apps buffer bodies whole, so an unbounded body is
unbounded memory)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from workbench.http.errors import (
    OPENAI_ERRORS,
    BadContentLength,
    ErrorAnswers,
    RequestTooLarge,
)
from workbench.http.tracing import scope_trace_id


class BodyLimitMiddleware:
    """Rejects bodies over ``max_bytes`` with 413: early from Content-Length, and by
    counting the bytes actually received (chunked uploads or a lying header). Errors are
    written by ``answers``; ``setting`` names the setting that raises the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int, answers: ErrorAnswers = OPENAI_ERRORS,
                 setting: str = "setting max_request_bytes"):
        self.app = app
        self.max_bytes = max_bytes
        self.answers = answers
        self.setting = setting

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        err = RequestTooLarge(f"request body is larger than the limit of {self.max_bytes} "
                              f"bytes ({self.setting})")
        await self.answers.response(err, scope_trace_id(scope))(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await self.answers.response(BadContentLength(), scope_trace_id(scope))(
                        scope, receive, send)
                    return
                if declared > self.max_bytes:
                    await self._reject(scope, receive, send)
                    return
        # Buffer the body (every endpoint parses it whole anyway), then replay it.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before sending its request
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._reject(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> AsgiMessage:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # later calls wait for http.disconnect (streaming)

        await self.app(scope, replay, send)


__all__ = ["BodyLimitMiddleware"]
