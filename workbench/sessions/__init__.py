"""Conversations: sessions of turns on ``POST /ask``, the history rule that fits them into
a model's context, containment (sessions that never asked for a human) and multi-turn
evals of golden conversations.

    from workbench import sessions

    sessions.fit_history(turns, prompt, context_window=2048, max_tokens=128)
    sessions.containment(store)                 # per day / model / prompt version
    sessions.run_conversations(gw, "golden.yaml", collection="docs")
"""

from __future__ import annotations

from workbench.sessions.containment import ContainmentTable, containment, containment_by_label
from workbench.sessions.conversations import (
    Conversation,
    ConversationRun,
    Turn,
    load_conversations,
    run_conversations,
)
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

__all__ = ["ContainmentTable", "Conversation", "ConversationRun", "Session", "Turn",
           "add_turn", "containment", "containment_by_label", "estimate_tokens", "fit_history",
           "last_trace", "load_conversations", "new_session_id", "open_session",
           "run_conversations", "session_of", "turns"]
