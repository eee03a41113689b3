"""Containment rate: the share of conversations that never asked for a human.

:func:`containment` is the notebook view (from traces and feedback, per day / model /
prompt version, next to the other product rates; see ``observability.metrics``).
:func:`containment_by_label` is the cheap version ``/metrics`` scrapes: from the
service's session tables, per model and prompt version of each session's last answer,
probe and eval sessions left out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from workbench.observability.schema import feedback
from workbench.sessions.schema import chat_sessions, chat_turns
from workbench.store import Store

COLUMNS = ("day", "model", "prompt_version", "sessions", "containment_rate",
           "escalate_rate", "thumbs_up_rate", "retry_rate", "edit_rate", "copy_rate")
MAX_SESSIONS = 20_000  # per scrape; older sessions beyond this drop out of the window


class ContainmentTable(list[dict[str, Any]]):
    def _repr_html_(self) -> str:
        from workbench.observability.views import html_table

        return html_table(self, COLUMNS)


def containment(store: Store, days: int = 30,
                by: Sequence[str] = ("day", "model", "prompt_version")) -> ContainmentTable:
    """Containment with the rates it is read beside, per ``by`` group."""
    from workbench.observability.metrics import product_metrics

    rows = product_metrics(store, days=days, by=by).rows
    return ContainmentTable({k: r.get(k) for k in COLUMNS if k in r or k not in
                             ("day", "model", "prompt_version")} for r in rows)


def containment_by_label(store: Store, days: float = 30) -> list[dict[str, Any]]:
    """[{model, prompt_version, sessions, contained}] over sessions active in the last
    ``days`` (service sessions with at least one answer, product traffic only)."""
    since = time.time() - days * 86400
    with store.read() as conn:
        ids = [r.id for r in conn.execute(
            select(chat_sessions.c.id).where(chat_sessions.c.updated_at >= since,
                                             chat_sessions.c.turns > 0,
                                             chat_sessions.c.traffic.is_(None))
            .order_by(chat_sessions.c.updated_at.desc()).limit(MAX_SESSIONS))]
        if not ids:
            return []
        last: dict[str, tuple[str, str]] = {}
        escalated: set[str] = set()
        for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
            for r in conn.execute(select(chat_turns.c.session_id, chat_turns.c.n,
                                         chat_turns.c.model, chat_turns.c.prompt_version)
                                  .where(chat_turns.c.session_id.in_(chunk))
                                  .order_by(chat_turns.c.n)):
                last[r.session_id] = (r.model or "-", r.prompt_version or "-")
            escalated.update(r.session_id for r in conn.execute(
                select(feedback.c.session_id).where(feedback.c.session_id.in_(chunk),
                                                    feedback.c.kind == "escalate")))
    groups: dict[tuple[str, str], list[int]] = {}
    for sid, label in last.items():
        g = groups.setdefault(label, [0, 0])
        g[0] += 1
        g[1] += sid not in escalated
    return [{"model": m, "prompt_version": p, "sessions": n, "contained": c}
            for (m, p), (n, c) in sorted(groups.items())]


__all__ = ["COLUMNS", "ContainmentTable", "containment", "containment_by_label"]
