"""Feedback on the service goes through the observability feedback router; this module
adds the service's rules in front of it.

- ``strict_feedback`` (default on): feedback is accepted only for trace ids this service
  answered *for the same key* (the ledger row of the answer carries the key id). Any other
  trace id gets 404, so a key can neither rate other users' answers nor learn which trace
  ids exist.
- ``feedback_read`` (default off): the router's GET endpoints list everyone's comments and
  edits, so the service mounts them only when told to (see ``create_service_app``).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from workbench.errors import BadRequest, NotFound
from workbench.models.gateway import Gateway
from workbench.observability.tracing import normalize_trace_id
from workbench.store import ledger


class UnknownTrace(NotFound):
    code = "unknown_trace"


def _trace_ids(raw: bytes) -> tuple[set[str], bool]:
    """The normalised trace ids in a feedback body, and whether there is an edit.
    Anything malformed is left for the router, which explains it (400)."""
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return set(), False
    items = data if isinstance(data, list) else [data]
    ids: set[str] = set()
    edit = False
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("trace_id"), str):
            continue
        try:
            ids.add(normalize_trace_id(item["trace_id"]))
        except BadRequest:
            continue
        edit = edit or item.get("kind") == "edit"
    return ids, edit


def answered_for(gw: Gateway, trace_ids: set[str]) -> set[str]:
    """Those of ``trace_ids`` with a ledger row written for ``gw``'s principal."""
    key_id = gw.principal.key_id
    cond = ledger.c.key_id.is_(None) if key_id is None else ledger.c.key_id == key_id
    with gw.store.read() as conn:
        rows = conn.execute(select(ledger.c.trace_id).where(
            ledger.c.trace_id.in_(sorted(trace_ids)), cond).distinct())
        return {r[0] for r in rows}


async def guard_feedback(request: Request, gw: Gateway, *, strict: bool) -> None:
    """Runs before every feedback route (after auth). The GET routes are only mounted
    when ``feedback_read`` is on."""
    if request.method != "POST":
        return
    ids, edit = _trace_ids(await request.body())  # cached: the router reads it again
    if strict and ids:
        known = await run_in_threadpool(answered_for, gw, ids)
        missing = sorted(ids - known)
        if missing:
            raise UnknownTrace(f"unknown trace_id {missing[0]}: send feedback for a trace_id "
                               "that POST /ask returned to your key")
    if edit:
        # The stored diff is computed against the answer in the span store: make sure this
        # process has written its spans (another replica's arrive within a fraction of a
        # second, long before a person finishes editing).
        from workbench.observability.traces import flush

        await run_in_threadpool(flush, gw.store, 2.0)


def feedback_stats(gw: Gateway) -> list[dict[str, Any]]:
    from workbench.observability import feedback

    return feedback.stats(gw.store)


__all__ = ["UnknownTrace", "answered_for", "feedback_stats", "guard_feedback"]
