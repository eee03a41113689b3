"""Call events: the Gateway's public seam for instrumentation (httpx's event hooks are the
model).

A *subscriber* is a callable that the Gateway calls with a :class:`CallStart` when a call
begins (chat, stream, embed; tool calls later). It returns a :class:`CallObserver` for
that call, or ``None`` to sit it out. The Gateway then tells every observer, in order:

- ``scope()``: entered around the work of the call (and around each step of a stream),
  so a subscriber can make its own context current (tracing makes the call's span
  current: spans opened meanwhile nest under it, upstream requests carry its
  ``traceparent``);
- ``on_request(body, provider)``: the upstream body after input guardrails ran (chat
  and stream);
- ``on_first_token()``: the first chunk with content (streams);
- ``on_result(result)`` or ``on_error(exc)``;
- ``on_end()``: always, exactly once.

An observer may name the call's trace id (``trace_id``); the first one that does wins,
else the caller's ``trace_id``, else a new one. Tracing is the default subscriber
(:mod:`workbench.models.call_spans`); add your own with ``Gateway(hooks=[...])`` or
``gw.hooks.append(...)``::

    class CountTokens(CallObserver):
        def on_result(self, result):
            totals[result.model] += result.usage.get("total_tokens", 0)

    gw.hooks.append(lambda start: CountTokens() if start.operation == "chat" else None)

Observers run inside the call: an exception they raise propagates to the caller, so
keep them small and total.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.models.gateway import Gateway
    from workbench.models.types import ChatResult, EmbeddingResult


@dataclass(frozen=True)
class CallStart:
    """What a subscriber learns when a call begins."""

    gateway: Gateway  # the (bound) Gateway making the call: principal, settings, store
    operation: str  # "chat", "stream" or "embed"
    trace_id: str | None  # as the caller passed it (not yet validated)
    model: str | None  # as requested: caller input, unmasked, maybe unknown
    inputs: str | list[str] | None = None  # embed: the texts as given (unmasked)


class CallObserver:
    """One subscriber's view of one call. Every method is a no-op: override what you need."""

    trace_id: str | None = None

    def scope(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()

    def on_request(self, body: Mapping[str, Any], provider: str | None) -> None:
        """The upstream request body after input guardrails (chat and stream)."""

    def on_first_token(self) -> None:
        """A stream's first chunk with content reached the caller."""

    def on_result(self, result: ChatResult | EmbeddingResult) -> None:
        """The call succeeded (a stream: when its last chunk was read)."""

    def on_error(self, exc: BaseException) -> None:
        """The call failed, or a stream was closed before its end."""

    def on_end(self) -> None:
        """The call is over (once, after the result or the error)."""


Subscriber = Callable[[CallStart], "CallObserver | None"]


class CallEvents:
    """The observers of one call; the Gateway reports through this."""

    def __init__(self, observers: Sequence[CallObserver], trace_id: str):
        self.observers = tuple(observers)
        self.trace_id = trace_id
        self.ended = False

    @classmethod
    def start(cls, subscribers: Sequence[Subscriber], start: CallStart,
              new_trace_id: Callable[[], str]) -> CallEvents:
        observers = [o for o in (s(start) for s in subscribers) if o is not None]
        named = next((o.trace_id for o in observers if o.trace_id), None)
        return cls(observers, named or start.trace_id or new_trace_id())

    @contextmanager
    def scope(self) -> Iterator[CallEvents]:
        """Every observer's scope for the block; an exception is reported as the call's
        error, ends the call and propagates."""
        try:
            with contextlib.ExitStack() as stack:
                for o in self.observers:
                    stack.enter_context(o.scope())
                yield self
        except BaseException as exc:
            self.error(exc)
            self.end()
            raise

    def request(self, body: Mapping[str, Any], provider: str | None) -> None:
        for o in self.observers:
            o.on_request(body, provider)

    def first_token(self) -> None:
        for o in self.observers:
            o.on_first_token()

    def result(self, result: Any) -> None:
        for o in self.observers:
            o.on_result(result)

    def error(self, exc: BaseException) -> None:
        if not self.ended:
            for o in self.observers:
                o.on_error(exc)

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            for o in self.observers:
                o.on_end()


__all__ = ["CallEvents", "CallObserver", "CallStart", "Subscriber"]
