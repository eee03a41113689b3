"""Conversations: sessions of turns on ``POST /ask`` (owned by the key that started
them) and the history rule that fits them into a model's context. Containment (sessions
that never asked for a human) is in ``workbench.observability.containment``; multi-turn
evals of golden conversations in ``workbench.evals.conversations``.

    from workbench import sessions

    sessions.fit_history(turns, prompt, context_window=2048, max_tokens=128)
"""

from __future__ import annotations

from workbench.sessions.history import (
    Session,
    add_turn,
    estimate_tokens,
    fit_history,
    last_trace,
    new_session_id,
    open_session,
    session_of,
    turns,
)

__all__ = ["Session", "add_turn", "estimate_tokens", "fit_history", "last_trace",
           "new_session_id", "open_session", "session_of", "turns"]
