"""Sessions on ``POST /ask``: which conversation a question belongs to, its history, and
the traffic kind a caller declares.

A client continues a conversation by sending the ``session_id`` an answer returned (body
field, or the ``x-workbench-session-id`` header); without one the service starts a
session and returns its id (body and header). Sessions belong to the key that started
them. ``x-workbench-traffic: probe`` (or ``eval``) marks platform traffic, which product
metrics leave out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from workbench.errors import BadRequest
from workbench.models.gateway import Gateway
from workbench.sessions.history import Session, add_turn, open_session

SESSION_HEADER = "x-workbench-session-id"
TRAFFIC_HEADER = "x-workbench-traffic"
TRAFFIC_KINDS = ("probe", "eval", "judge")


@dataclass
class Conversation:
    session: Session
    traffic: str | None = None
    history: list[tuple[str, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.session.id


def traffic_of(request: Request) -> str | None:
    value = request.headers.get(TRAFFIC_HEADER)
    if value is None:
        return None
    value = value.strip().lower()
    if value not in TRAFFIC_KINDS:
        raise BadRequest(f"{TRAFFIC_HEADER} must be one of {', '.join(TRAFFIC_KINDS)} (leave "
                         "it out for product traffic)")
    return value


async def open_conversation(request: Request, gw: Gateway,
                            session_id: str | None) -> Conversation:
    """The caller's session (``session_id``, else the header, else a new one)."""
    sid = session_id or request.headers.get(SESSION_HEADER) or None
    traffic = traffic_of(request)
    session = await run_in_threadpool(open_session, gw.store, sid,
                                      key_id=gw.principal.key_id, traffic=traffic)
    return Conversation(session, traffic, list(session.turns))


def record_turn(gw: Gateway, conv: Conversation, *, trace_id: str, question: str,
                answer: str, model: str | None, prompt: str | None) -> None:
    """Store the turn, masked (history never resends raw PII)."""
    mask = gw.guardrails.mask
    add_turn(gw.store, conv.id, trace_id=trace_id, question=mask(question).text,
             answer=mask(answer).text, model=model, prompt_version=prompt)


__all__ = ["SESSION_HEADER", "TRAFFIC_HEADER", "TRAFFIC_KINDS", "Conversation",
           "open_conversation", "record_turn", "traffic_of"]
