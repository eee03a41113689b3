"""Conversation history: stored turns, and the rule that fits them into a model's context.

**The trimming rule** (what the model sees of a conversation): the prompt's system message
and the new user turn (with its sources) always go in; then earlier turns, newest first,
each as its user question plus the assistant's answer, while they fit in
``context_window - max_tokens - the new prompt - margin``. A turn that does not fit is
left out *with every older one*: a turn is never split, and the history the model sees
is always the most recent stretch of the conversation, in order. Token counts come from
the provider's tokenizer when it has one loaded, else 1 token per 3 UTF-8 bytes (an
over-estimate for English text: trimming errs on the side of fitting) plus 4 per message.

History is stored masked (the guardrails' PII masking), so a later turn never resends a
raw email or card number, whatever the caller's guardrail mode.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from workbench.errors import BadRequest, PermissionDenied
from workbench.sessions.schema import chat_sessions, chat_turns
from workbench.store import Store

SESSION_RE = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
MARGIN_TOKENS = 32  # chat-template markers the estimate does not see
MAX_TURNS_LOADED = 50  # older turns would never fit a small model anyway
PER_MESSAGE_TOKENS = 4

Counter = Callable[[str], int]


def estimate_tokens(text: str) -> int:
    """A tokenizer-free upper estimate of ``text``'s tokens (one per 3 UTF-8 bytes), used
    when the provider cannot count exactly."""
    return -(-len(text.encode("utf-8", "surrogatepass")) // 3)


def _tokens(messages: Sequence[Mapping[str, str]], count: Counter) -> int:
    return sum(count(m["content"]) + PER_MESSAGE_TOKENS for m in messages)


def fit_history(turns: Sequence[tuple[str, str]], prompt: Sequence[Mapping[str, str]], *,
                context_window: int, max_tokens: int,
                count: Counter = estimate_tokens) -> list[dict[str, str]]:
    """The newest whole ``turns`` (question, answer; oldest first) that fit beside
    ``prompt`` (the new request's messages) and ``max_tokens`` of answer, as messages in
    conversation order. See the module docs for the rule."""
    budget = context_window - max_tokens - MARGIN_TOKENS - _tokens(prompt, count)
    kept: list[list[dict[str, str]]] = []
    for question, answer in reversed(turns):
        pair = [{"role": "user", "content": question},
                {"role": "assistant", "content": answer}]
        cost = _tokens(pair, count)
        if cost > budget:
            break  # never skip a turn to fit an older one: history stays contiguous
        budget -= cost
        kept.append(pair)
    return [m for pair in reversed(kept) for m in pair]


def new_session_id() -> str:
    """A fresh, unguessable session id (``sess_`` + 32 hex)."""
    return "sess_" + uuid.uuid4().hex


def check_session_id(session_id: str) -> str:
    if not SESSION_RE.match(session_id):
        raise BadRequest("session_id must be 8-128 characters of letters, digits and . _ : - "
                         "(or leave it out: the service starts a session and returns its id)",
                         code="invalid_session_id")
    return session_id


@dataclass
class Session:
    id: str
    new: bool
    turns: list[tuple[str, str]]  # (masked question, masked answer), oldest first


def open_session(store: Store, session_id: str | None, *, key_id: str | None,
                 user_id: str | None = None, traffic: str | None = None) -> Session:
    """The session ``session_id`` of key ``key_id`` with its stored turns, or a new one
    (new id when None). A session id another key started is refused: a conversation is
    never readable or writable with someone else's key."""
    sid = check_session_id(session_id) if session_id else new_session_id()
    now = time.time()
    for _ in range(2):
        with store.read() as conn:
            row = conn.execute(select(chat_sessions).where(chat_sessions.c.id == sid)).first()
            if row is not None:
                if row.key_id != key_id:
                    raise PermissionDenied("this session_id belongs to another key: leave it "
                                           "out to start a new conversation",
                                           code="session_forbidden")
                turns = [(t.question, t.answer) for t in conn.execute(
                    select(chat_turns.c.question, chat_turns.c.answer)
                    .where(chat_turns.c.session_id == sid)
                    .order_by(chat_turns.c.n.desc()).limit(MAX_TURNS_LOADED))]
                return Session(sid, False, list(reversed(turns)))
        try:
            with store.write() as conn:
                conn.execute(insert(chat_sessions).values(
                    id=sid, key_id=key_id, user_id=user_id, created_at=now, updated_at=now,
                    turns=0, traffic=traffic))
            return Session(sid, True, [])
        except IntegrityError:
            continue  # started by a concurrent request: read it
    raise BadRequest("could not open the session: retry")


def add_turn(store: Store, session_id: str, *, trace_id: str, question: str, answer: str,
             model: str | None, prompt_version: str | None) -> int:
    """Append a turn (question and answer already masked); returns its number."""
    for _ in range(3):
        try:
            with store.write() as conn:
                n = int(conn.execute(select(func.coalesce(func.max(chat_turns.c.n), 0))
                                     .where(chat_turns.c.session_id == session_id)
                                     ).scalar() or 0) + 1
                conn.execute(insert(chat_turns).values(
                    session_id=session_id, n=n, trace_id=trace_id, question=question,
                    answer=answer, model=model, prompt_version=prompt_version,
                    created_at=time.time()))
                conn.execute(update(chat_sessions).where(chat_sessions.c.id == session_id)
                             .values(turns=n, updated_at=time.time()))
            return n
        except IntegrityError:
            continue  # two turns of one session at once: take the next number
    raise BadRequest("could not record the turn: retry")


def session_of(store: Store, trace_id: str) -> str | None:
    """The session the answer with ``trace_id`` was given in (None: not in a session)."""
    with store.read() as conn:
        row = conn.execute(select(chat_turns.c.session_id)
                           .where(chat_turns.c.trace_id == trace_id).limit(1)).first()
    return row.session_id if row else None


def last_trace(store: Store, session_id: str, key_id: str | None) -> str | None:
    """The newest answer's trace id in ``session_id`` (session-level feedback lands on
    it), if the session belongs to ``key_id``."""
    with store.read() as conn:
        owner = conn.execute(select(chat_sessions.c.key_id)
                             .where(chat_sessions.c.id == session_id)).first()
        if owner is None or owner.key_id != key_id:
            return None
        row = conn.execute(select(chat_turns.c.trace_id)
                           .where(chat_turns.c.session_id == session_id)
                           .order_by(chat_turns.c.n.desc()).limit(1)).first()
    return row.trace_id if row else None


def turns(store: Store, session_id: str) -> list[dict[str, Any]]:
    """The stored turns of ``session_id``, oldest first (masked question and answer)."""
    with store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(chat_turns).where(chat_turns.c.session_id == session_id)
            .order_by(chat_turns.c.n))]


__all__ = ["MARGIN_TOKENS", "SESSION_RE", "Session", "add_turn", "check_session_id",
           "estimate_tokens", "fit_history", "last_trace", "new_session_id", "open_session",
           "session_of", "turns"]
