"""A caller's W3C ``traceparent`` and the trust boundary around it.

The gateway proxy and the service honour a caller's trace context for the caller's own
work: the answer's trace id is the caller's, and the caller's span is the parent of the
request's spans. A trace id is not a secret, though (it is in headers, logs and bug
reports), and feedback and the ledger are keyed by it. So a caller may only join a trace
that is new or already its own: the first principal to use a caller-chosen trace id claims
it (table ``trace_claims``), and a trace id the ledger already knows for another
principal (every model call writes a ledger row with its key id) is never joined. Such a
request gets a fresh trace whose root span *links* to the caller's context
(``workbench.caller_trace_id``) instead.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from workbench.store import Store, ledger

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
T = TypeVar("T")


@dataclass(frozen=True)
class CallerContext:
    """The parts of a valid ``traceparent`` header."""

    trace_id: str  # 32 lower-case hex
    span_id: str  # 16 lower-case hex
    sampled: bool


def parse_traceparent(value: str | bytes | None) -> CallerContext | None:
    """A W3C ``traceparent`` (version 00 layout), or None when absent or invalid (an
    invalid header is ignored, as the W3C spec asks, never an error)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    m = _TRACEPARENT.match(value.strip().lower())
    if not m or m.group(1) == "ff" or m.group(2) == "0" * 32 or m.group(3) == "0" * 16:
        return None
    return CallerContext(m.group(2), m.group(3), bool(int(m.group(4), 16) & 1))


def owner_of(key_id: str | None) -> str:
    """How a principal is named in ``trace_claims``."""
    return f"key:{key_id}" if key_id else "local"


def claim_trace(store: Store, trace_id: str, key_id: str | None) -> bool:
    """True if ``key_id`` may use ``trace_id`` (it is new, or already this principal's);
    the first caller claims it. One short write transaction."""
    from workbench.observability.schema import trace_claims

    me = owner_of(key_id)
    with store.read() as conn:  # the common case (a key's repeated calls): no write lock
        owner = conn.execute(select(trace_claims.c.owner).where(
            trace_claims.c.trace_id == trace_id)).scalar()
    if owner is not None:
        return bool(owner == me)
    for _ in range(2):
        try:
            with store.write() as conn:
                owner = conn.execute(select(trace_claims.c.owner).where(
                    trace_claims.c.trace_id == trace_id)).scalar()
                if owner is not None:
                    return bool(owner == me)
                # Ids the service or proxy minted are not claimed: the ledger says whose
                # they are (every model call writes a row with its key id).
                other = conn.execute(select(ledger.c.id).where(
                    ledger.c.trace_id == trace_id,
                    ledger.c.key_id.is_distinct_from(key_id)).limit(1)).first()
                if other is not None:
                    return False
                # Spans without ledger rows (code outside the gateway, e.g. the caller's
                # own process writing to this store) belong to no principal's answer:
                # they do not block the caller's own trace.
                conn.execute(trace_claims.insert().values(trace_id=trace_id, owner=me,
                                                          created_at=time.time()))
                return True
        except IntegrityError:
            continue  # another replica claimed it between our read and insert: re-read
    return False


@dataclass(frozen=True)
class RequestTrace:
    """The trace one HTTP request runs under."""

    trace_id: str
    caller: CallerContext | None = None
    adopted: bool = False  # the caller's trace id is the answer's (its span the parent)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Run the request's work (in its worker thread) under the caller's context: as
        the parent when adopted, else only as a link on the new root span."""
        if self.caller is None:
            yield
            return
        from workbench.observability.tracing import caller_context

        with caller_context(int(self.caller.trace_id, 16), int(self.caller.span_id, 16),
                            self.caller.sampled, as_parent=self.adopted):
            yield

    def bind(self, fn: Callable[..., T]) -> Callable[..., T]:
        """``fn`` wrapped to run inside :meth:`active` (for ``run_in_threadpool``)."""
        def run(*args: Any, **kwargs: Any) -> T:
            with self.active():
                return fn(*args, **kwargs)

        return run


def resolve(store: Store, key_id: str | None, caller: CallerContext | None,
            minted: str) -> RequestTrace:
    """The request's trace: the caller's when it may join it, else ``minted``."""
    if caller is None:
        return RequestTrace(minted)
    if claim_trace(store, caller.trace_id, key_id):
        return RequestTrace(caller.trace_id, caller, adopted=True)
    return RequestTrace(minted, caller, adopted=False)


def new_trace_id() -> str:
    """A fresh trace id: 32 hex chars, the W3C / OpenTelemetry trace-id format."""
    return uuid.uuid4().hex


__all__ = ["CallerContext", "RequestTrace", "claim_trace", "new_trace_id", "owner_of",
           "parse_traceparent",
           "resolve"]
