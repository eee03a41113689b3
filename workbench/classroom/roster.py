"""The facilitator's side of classroom mode: attendee keys for a workshop team, created
and revoked together, and the per-attendee view of the gateway's ledger.

Attendee keys are ordinary keys (``Policy.create_key``: hashed, audited, with the key's own
budget and rpm) of one team; the ``classrooms`` row adds the status page's token (hashed)
and the URL printed on the sheet.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, insert, select, update

from workbench.classroom.schema import classrooms
from workbench.errors import BadRequest, NotFound, WorkbenchError
from workbench.models import audit as audit_log
from workbench.models.policy import Policy
from workbench.store import Store, keys, ledger

__all__ = [
    "MAX_ATTENDEES",
    "Seat",
    "attendee_rows",
    "check_page_token",
    "create",
    "revoke",
    "revoke_keys",
]

MAX_ATTENDEES = 500
STUCK_AFTER_ERRORS = 1  # the last call failed: worth a look
NEAR_BUDGET = 0.9


@dataclass(frozen=True)
class Seat:
    """One attendee: label (``attendee-07``), key id, and the secret (only in memory
    until the sheet is written)."""

    label: str
    key_id: str
    secret: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _labels(store: Store, team: str, n: int, names: list[str] | None) -> list[str]:
    if names is not None:
        if len(names) != n:
            raise BadRequest(f"--names gives {len(names)} names for {n} attendees; give one "
                             "per attendee (or leave it out for attendee-01, -02, ...)")
        if len(set(names)) != len(names) or not all(names):
            raise BadRequest("--names must be distinct and non-empty")
        return names
    with store.read() as conn:
        have = conn.execute(select(func.count()).select_from(keys)
                            .where(keys.c.team == team)).scalar_one()
    width = max(2, len(str(have + n)))
    return [f"attendee-{i:0{width}d}" for i in range(have + 1, have + n + 1)]


def create(store: Store, n: int, *, team: str = "workshop", budget_usd: float | None,
           rpm: int | None, models: str | None = None, expires_in_days: float | None = 2.0,
           url: str | None = None, names: list[str] | None = None,
           actor: str = "admin") -> tuple[list[Seat], str]:
    """Create ``n`` attendee keys in ``team`` (added to the ones already there) and a new
    status-page token; returns the seats and the token. All or nothing: if one key cannot
    be created, the ones made before it are revoked."""
    if ":" in team:
        raise BadRequest("--team cannot contain ':' (it is the status page's user name)")
    if not 1 <= n <= MAX_ATTENDEES:
        raise BadRequest(f"give between 1 and {MAX_ATTENDEES} attendees (got {n})")
    if budget_usd is None or budget_usd <= 0:
        raise BadRequest("--budget is required: the spend limit per attendee in USD (> 0), so "
                         "one runaway loop cannot spend the workshop's money")
    if rpm is None or rpm <= 0:
        raise BadRequest("--rpm is required: requests per minute per attendee (> 0)")
    pol = Policy(store)
    seats: list[Seat] = []
    try:
        for label in _labels(store, team, n, names):
            key_id, secret = pol.create_key(team=team, name=label, models=models,
                                            budget_usd=budget_usd, rpm=rpm,
                                            expires_in_days=expires_in_days, actor=actor)
            seats.append(Seat(label, key_id, secret))
    except WorkbenchError:
        revoke_keys(store, [s.key_id for s in seats], actor=actor)
        raise
    token = "wbp-" + secrets.token_urlsafe(24)
    row = {"page_token_hash": _hash(token), "url": url, "budget_usd": budget_usd, "rpm": rpm,
           "closed_at": None}
    with store.write() as conn:
        done = conn.execute(update(classrooms).where(classrooms.c.team == team).values(**row))
        if done.rowcount == 0:
            conn.execute(insert(classrooms).values(team=team, created_at=time.time(), **row))
        audit_log.append(store, conn, actor=actor, action="classroom.create", target=team,
                         details={"attendees": n, "budget_usd": budget_usd, "rpm": rpm,
                                  "models": models, "key_ids": [s.key_id for s in seats]})
    return seats, token


def revoke(store: Store, team: str = "workshop", *, actor: str = "admin") -> list[str]:
    """Revoke every live key of ``team`` and close the classroom; returns the key ids."""
    with store.read() as conn:
        live = [r.id for r in conn.execute(select(keys.c.id).where(
            and_(keys.c.team == team, keys.c.revoked_at.is_(None))).order_by(keys.c.created_at))]
        known = conn.execute(select(classrooms.c.team)
                             .where(classrooms.c.team == team)).first()
    if not live and not known:
        raise NotFound(f"no classroom or keys for team {team!r}; see `workbench teams list`")
    revoke_keys(store, live, actor=actor)
    with store.write() as conn:
        conn.execute(update(classrooms).where(classrooms.c.team == team)
                     .values(closed_at=time.time()))
        audit_log.append(store, conn, actor=actor, action="classroom.revoke", target=team,
                         details={"revoked": len(live)})
    return live


def revoke_keys(store: Store, key_ids: list[str], *, actor: str = "admin") -> None:
    """Revoke these keys (each audited, as `workbench keys revoke` does)."""
    pol = Policy(store)
    for key_id in key_ids:
        pol.revoke_key(key_id, actor=actor)


def check_page_token(store: Store, team: str, token: str) -> bool:
    """Whether ``token`` opens ``team``'s status page (constant-time comparison)."""
    with store.read() as conn:
        row = conn.execute(select(classrooms.c.page_token_hash)
                           .where(classrooms.c.team == team)).first()
    return row is not None and hmac.compare_digest(row.page_token_hash, _hash(token))


def _state(row: dict[str, Any], now: float) -> str:
    """One word or phrase a facilitator can act on."""
    if row["revoked_at"]:
        return "revoked"
    if row["expires_at"] and row["expires_at"] < now:
        return "expired"
    if not row["calls"]:
        return "not seen yet"
    if row["last_outcome"] in ("error", "denied"):
        return f"stuck: {row['last_error'] or row['last_outcome']}"
    budget = row["budget_usd"]
    if budget and row["spent_usd"] >= NEAR_BUDGET * budget:
        return "budget nearly spent"
    return "ok"


def attendee_rows(store: Store, team: str = "workshop") -> list[dict[str, Any]]:
    """One row per key of ``team``: calls, errors, spend against budget, last seen and
    the last failure, from the gateway's ledger (no prompt text is ever there)."""
    lc = ledger.c
    stats = (select(lc.key_id, func.count().label("calls"),
                    func.sum(case((lc.outcome.in_(("error", "denied")), 1), else_=0))
                    .label("errors"),
                    func.coalesce(func.sum(lc.tokens_in + lc.tokens_out), 0).label("tokens"),
                    func.max(lc.ts).label("last_seen"), func.max(lc.id).label("last_id"))
             .where(lc.team == team).group_by(lc.key_id).subquery())
    last = ledger.alias("last_call")
    stmt = (select(keys.c.id, keys.c.name, keys.c.budget_usd, keys.c.spent_usd, keys.c.rpm,
                   keys.c.revoked_at, keys.c.expires_at,
                   func.coalesce(stats.c.calls, 0).label("calls"),
                   func.coalesce(stats.c.errors, 0).label("errors"),
                   func.coalesce(stats.c.tokens, 0).label("tokens"),
                   stats.c.last_seen, last.c.outcome.label("last_outcome"),
                   last.c.error_code.label("last_error"))
            .select_from(keys.outerjoin(stats, stats.c.key_id == keys.c.id)
                         .outerjoin(last, last.c.id == stats.c.last_id))
            .where(keys.c.team == team).order_by(keys.c.name, keys.c.created_at))
    now = time.time()
    with store.read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
    for row in rows:
        row["attendee"] = row.pop("name") or row["id"]
        row["key_id"] = row.pop("id")
        row["state"] = _state(row, now)
    return rows
