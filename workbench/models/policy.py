"""Principals and the rules that govern them: keys, teams, allowlists, budgets, rate limits.

Keys are random 256-bit tokens; only their SHA-256 is stored (a slow KDF buys nothing for
high-entropy secrets and would cost every request). The secret is returned once by
``create_key`` and never again.

Budgets hold under concurrency because a request *reserves* its worst-case cost with one
conditional UPDATE (``spent + reserved + amount <= budget``) before it runs; the row count
is the decision, so two replicas cannot both take the last dollar. After the call the
reservation is settled to the actual cost, or released on failure. Each reservation
names the process holding it (``workbench.models.liveness``), so one left by a crashed
process is released by :meth:`Policy.sweep` and never one of a live replica.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BindParameter,
    Connection,
    Select,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from workbench.errors import (
    AuthError,
    BadRequest,
    BudgetExceeded,
    NotFound,
    PermissionDenied,
    RateLimited,
)
from workbench.models import audit as audit_log
from workbench.models import liveness
from workbench.models.principal_cache import PrincipalCache, StalePrincipal, current_epoch
from workbench.store import (
    HotStatement,
    Store,
    keys,
    processes,
    rate_windows,
    reservations,
    teams,
)

KEY_PREFIX = "wb-"
MAX_LIMIT = 2**31 - 1  # rpm/tpm columns are 32-bit integers
LOCAL_TEAM = "local"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling. ``key_id`` is None for the local (notebook/CLI owner) principal."""

    key_id: str | None
    team: str
    models: tuple[str, ...] | None = None
    team_models: tuple[str, ...] | None = None
    guardrail_mode: str | None = None
    cache: bool = False
    has_budget: bool = False
    rpm: int | None = None
    tpm: int | None = None
    team_rpm: int | None = None
    team_tpm: int | None = None
    team_has_budget: bool = False
    # The store's principal epoch when this was read (see principal_cache); None for the
    # local principal, which no key change can affect.
    epoch: int | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        return self.key_id or "local"

    def may_use(self, model: str) -> bool:
        return all(allowed is None or model in allowed
                   for allowed in (self.models, self.team_models))


@dataclass
class Reservation:
    """Money held for one call until it is settled (``amount_usd`` is the worst case)."""

    id: str
    key_id: str | None
    team: str | None
    amount_usd: float
    settled: bool = field(default=False)
    store: Store | None = field(default=None, repr=False, compare=False)


@dataclass
class SweepResult:
    """What :meth:`Policy.sweep` did."""

    released: int = 0
    released_usd: float = 0.0
    dead_processes: list[dict[str, Any]] = field(default_factory=list)
    kept: int = 0  # reservations of live processes, left alone

    def as_dict(self) -> dict[str, Any]:
        return {"released": self.released, "released_usd": self.released_usd,
                "dead_processes": self.dead_processes, "kept": self.kept}


# -- per-request statements, built once ----------------------------------------------------
# Building a SQLAlchemy Core expression costs more than executing it on SQLite, and these
# run several times per governed call (benchmarks/gateway_overhead.py measured ~2/3 of
# reserve()'s time in expression building), so each is built once with bound parameters.
def _budget_table(name: str) -> tuple[Table, Any]:
    return (keys, keys.c.id) if name == "keys" else (teams, teams.c.name)


@functools.cache
def _take_window_stmt(rpm_limited: bool, tpm_limited: bool) -> HotStatement:
    rw = rate_windows.c
    conds = [rw.subject == bindparam("b_subject"), rw.window == bindparam("b_window")]
    if rpm_limited:
        conds.append(rw.requests + 1 <= bindparam("b_rpm"))
    if tpm_limited:
        # A request may always start while the window has tokens left; its own size is
        # only known approximately before the call.
        conds.append(rw.tokens < bindparam("b_tpm"))
    return HotStatement(update(rate_windows).where(and_(*conds)).values(
        requests=rw.requests + 1, tokens=rw.tokens + bindparam("b_tokens")))


@functools.cache
def _window_exists_stmt() -> Select[Any]:
    rw = rate_windows.c
    return select(rw.requests).where(and_(rw.subject == bindparam("b_subject"),
                                          rw.window == bindparam("b_window")))


@functools.cache
def _add_tokens_stmt() -> HotStatement:
    rw = rate_windows.c
    # A correction may be negative (the estimate counted at the start was too high);
    # a window never goes below zero.
    added = rw.tokens + bindparam("b_tokens")
    return HotStatement(update(rate_windows).where(and_(
        rw.window == bindparam("b_window"), rw.subject == bindparam("b_subject"),
    )).values(tokens=case((added < 0, 0), else_=added)))


@functools.cache
def _reserve_stmt(table_name: str) -> HotStatement:
    table, ident = _budget_table(table_name)
    amount: BindParameter[float] = bindparam("b_amount")
    return HotStatement(update(table).where(and_(
        ident == bindparam("b_ident"),
        or_(table.c.budget_usd.is_(None),
            table.c.spent_usd + table.c.reserved_usd + amount <= table.c.budget_usd),
    )).values(reserved_usd=table.c.reserved_usd + amount))


@functools.cache
def _settle_stmt(table_name: str) -> HotStatement:
    table, ident = _budget_table(table_name)
    return HotStatement(update(table).where(ident == bindparam("b_ident")).values(
        reserved_usd=table.c.reserved_usd - bindparam("b_amount"),
        spent_usd=table.c.spent_usd + bindparam("b_actual")))


@functools.cache
def _insert_reservation_stmt() -> HotStatement:
    return HotStatement(insert(reservations).values(
        {c: bindparam(c) for c in ("id", "key_id", "team", "amount_usd", "created_at",
                                   "owner")}))


@functools.cache
def _delete_reservation_stmt() -> HotStatement:
    return HotStatement(delete(reservations).where(reservations.c.id == bindparam("b_id")))


@functools.cache
def _key_by_hash_stmt() -> Select[Any]:
    return select(keys).where(keys.c.key_hash == bindparam("b_hash"))


@functools.cache
def _team_stmt() -> Select[Any]:
    return select(teams).where(teams.c.name == bindparam("b_team"))


@functools.cache
def _key_by_id_stmt() -> Select[Any]:
    return select(keys).where(keys.c.id == bindparam("b_id"))


@dataclass(frozen=True)
class _ProcRow:
    id: str
    host_key: str
    pid: int
    pid_start: int | None
    heartbeat_at: float


def _as_tuple(models: Any) -> tuple[str, ...] | None:
    return None if models is None else tuple(models)


def _parse_models(models: list[str] | str | None) -> list[str] | None:
    if models is None:
        return None
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",")]
    cleaned = [m for m in models if m]
    if not cleaned:
        raise BadRequest("--models needs at least one model name (or omit it to allow all)")
    return cleaned


def _check_limits(budget_usd: float | None, rpm: int | None, tpm: int | None) -> None:
    if budget_usd is not None and budget_usd < 0:
        raise BadRequest("budget must be >= 0 USD")
    for name, val in (("rpm", rpm), ("tpm", tpm)):
        if val is not None and val <= 0:
            raise BadRequest(f"{name} must be a positive integer")
        if val is not None and val > MAX_LIMIT:
            # The columns are 32-bit integers (Postgres refuses larger values).
            raise BadRequest(f"{name} must be at most {MAX_LIMIT}")


class Policy:
    """Reads and changes principals; enforces allowlists, budgets and rate limits."""

    def __init__(self, store: Store):
        self.store = store
        store.migrate()  # the principal epoch (migration 90) if the store predates it
        self._principals = PrincipalCache()

    # -- teams ---------------------------------------------------------------------------
    def ensure_team(self, conn: Connection, name: str) -> None:
        exists = conn.execute(select(teams.c.name).where(teams.c.name == name)).first()
        if not exists:
            conn.execute(insert(teams).values(name=name, spent_usd=0.0, reserved_usd=0.0,
                                              created_at=time.time()))

    def set_team(self, name: str, *, models: list[str] | str | None = None,
                 budget_usd: float | None = None, rpm: int | None = None,
                 tpm: int | None = None, actor: str = "admin") -> None:
        """Create or update a team's shared limits (None leaves a limit unchanged)."""
        if not name or len(name) > 128:
            raise BadRequest("team name must be 1-128 characters")
        _check_limits(budget_usd, rpm, tpm)
        parsed = _parse_models(models)
        values: dict[str, Any] = {}
        if parsed is not None:
            values["models"] = parsed
        for col, val in (("budget_usd", budget_usd), ("rpm", rpm), ("tpm", tpm)):
            if val is not None:
                values[col] = val
        with self.store.write() as conn:
            self.ensure_team(conn, name)
            if values:
                conn.execute(update(teams).where(teams.c.name == name).values(**values))
            audit_log.append(self.store, conn, actor=actor, action="team.set", target=name,
                             details=values)

    def teams(self) -> list[dict[str, Any]]:
        with self.store.read() as conn:
            return [dict(r._mapping) for r in conn.execute(select(teams).order_by(teams.c.name))]

    # -- keys ----------------------------------------------------------------------------
    def create_key(self, *, team: str, name: str | None = None,
                   models: list[str] | str | None = None, budget_usd: float | None = None,
                   rpm: int | None = None, tpm: int | None = None,
                   expires_in_days: float | None = None, guardrail_mode: str | None = None,
                   cache: bool = False, actor: str = "admin") -> tuple[str, str]:
        """Create a key; returns ``(key_id, secret)``. The secret is not stored anywhere."""
        if not team or len(team) > 128:
            raise BadRequest("--team is required (1-128 characters)")
        _check_limits(budget_usd, rpm, tpm)
        if guardrail_mode not in (None, "mask", "block", "log-only", "off"):
            raise BadRequest("guardrail mode must be one of mask, block, log-only, off")
        if expires_in_days is not None and expires_in_days <= 0:
            raise BadRequest("--expires-in-days must be > 0")
        parsed = _parse_models(models)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(6)
        now = time.time()
        row = dict(
            id=key_id, key_hash=hash_key(secret), hint=secret[:7] + "…", name=name, team=team,
            models=parsed, budget_usd=budget_usd, spent_usd=0.0, reserved_usd=0.0, rpm=rpm,
            tpm=tpm, guardrail_mode=guardrail_mode, cache=int(cache),
            expires_at=now + expires_in_days * 86400 if expires_in_days else None,
            revoked_at=None, created_at=now,
        )
        with self.store.write() as conn:
            self.ensure_team(conn, team)
            conn.execute(insert(keys).values(**row))
            audit_log.append(self.store, conn, actor=actor, action="key.create", target=key_id,
                             details={"team": team, "name": name, "models": parsed,
                                      "budget_usd": budget_usd, "rpm": rpm, "tpm": tpm,
                                      "expires_at": row["expires_at"],
                                      "guardrail_mode": guardrail_mode, "cache": cache})
        return key_id, secret

    def update_key(self, key_id: str, *, models: list[str] | str | None = None,
                   budget_usd: float | None = None, rpm: int | None = None,
                   tpm: int | None = None, actor: str = "admin") -> dict[str, Any]:
        """Change a live key's allowlist or limits (None leaves a limit unchanged); returns
        what changed. A budget below what the key has already spent is refused: raise it,
        or revoke the key."""
        _check_limits(budget_usd, rpm, tpm)
        parsed = _parse_models(models)
        values: dict[str, Any] = {"models": parsed} if parsed is not None else {}
        for col, val in (("budget_usd", budget_usd), ("rpm", rpm), ("tpm", tpm)):
            if val is not None:
                values[col] = val
        if not values:
            raise BadRequest("nothing to change: give --budget-usd, --rpm, --tpm or --models")
        with self.store.write() as conn:
            row = conn.execute(select(keys.c.revoked_at, keys.c.spent_usd, keys.c.reserved_usd)
                               .where(keys.c.id == key_id)).first()
            if row is None:
                raise NotFound(f"no key with id {key_id}; see `workbench keys list`")
            if row.revoked_at is not None:
                raise BadRequest(f"key {key_id} is revoked; create a new key instead")
            committed = row.spent_usd + row.reserved_usd
            if budget_usd is not None and budget_usd < committed:
                raise BadRequest(f"budget {budget_usd} USD is below what key {key_id} has already "
                                 f"spent or reserved ({committed:.6f} USD)")
            conn.execute(update(keys).where(keys.c.id == key_id).values(**values))
            audit_log.append(self.store, conn, actor=actor, action="key.update", target=key_id,
                             details=values)
        return values

    def revoke_key(self, key_id: str, *, actor: str = "admin") -> None:
        with self.store.write() as conn:
            res = conn.execute(update(keys).where(and_(keys.c.id == key_id,
                                                       keys.c.revoked_at.is_(None)))
                               .values(revoked_at=time.time()))
            if res.rowcount != 1:
                known = conn.execute(select(keys.c.id).where(keys.c.id == key_id)).first()
                if known:
                    raise BadRequest(f"key {key_id} is already revoked")
                raise NotFound(f"no key with id {key_id}; see `workbench keys list`")
            audit_log.append(self.store, conn, actor=actor, action="key.revoke", target=key_id)

    def list_keys(self) -> list[dict[str, Any]]:
        cols = [c for c in keys.c if c.name != "key_hash"]
        with self.store.read() as conn:
            rows = conn.execute(select(*cols).order_by(keys.c.created_at))
            return [dict(r._mapping) for r in rows]

    def authenticate(self, secret: str | None) -> Principal:
        """The principal owning ``secret``, current as of now (a cached one only if no
        key or team changed since it was read: one SELECT of the epoch)."""
        key_hash = self._hash_of(secret)
        with self.store.read() as conn:
            epoch = current_epoch(conn)
            cached = self._principals.get(key_hash)
            if isinstance(cached, Principal) and cached.epoch == epoch:
                return cached
            return self._load(conn, _key_by_hash_stmt(), {"b_hash": key_hash}, epoch)

    def authenticate_cached(self, secret: str | None) -> Principal | None:
        """The cached principal owning ``secret`` without reading the store, or None.
        Only for a governed call, which verifies the principal's epoch inside its own
        first transaction (:meth:`govern`) and starts again if it is stale."""
        if not secret:
            return None
        cached = self._principals.get(hash_key(secret))
        return cached if isinstance(cached, Principal) else None

    def refresh(self, principal: Principal) -> Principal:
        """``principal`` re-read from the store (AuthError if revoked, expired or gone)."""
        if principal.key_id is None:
            return principal
        with self.store.read() as conn:
            return self._load(conn, _key_by_id_stmt(), {"b_id": principal.key_id},
                              current_epoch(conn))

    @staticmethod
    def _hash_of(secret: str | None) -> str:
        if not secret:
            raise AuthError("missing API key: send 'Authorization: Bearer <key>' "
                            "(create one with `workbench keys create --team T`)")
        return hash_key(secret)

    def _load(self, conn: Connection, stmt: Select[Any], params: dict[str, Any],
              epoch: int) -> Principal:
        row = conn.execute(stmt, params).first()
        if row is None:
            raise AuthError("unknown API key; check the key or create one with "
                            "`workbench keys create`")
        if row.revoked_at is not None:
            raise AuthError(f"key {row.id} was revoked", code="key_revoked")
        if row.expires_at is not None and row.expires_at < time.time():
            raise AuthError(f"key {row.id} has expired", code="key_expired")
        team = conn.execute(_team_stmt(), {"b_team": row.team}).first()
        principal = Principal(
            key_id=row.id, team=row.team, models=_as_tuple(row.models),
            team_models=_as_tuple(team.models) if team else None,
            guardrail_mode=row.guardrail_mode, cache=bool(row.cache),
            has_budget=row.budget_usd is not None, rpm=row.rpm, tpm=row.tpm,
            team_rpm=team.rpm if team else None, team_tpm=team.tpm if team else None,
            team_has_budget=bool(team and team.budget_usd is not None), epoch=epoch,
        )
        self._principals.put(row.key_hash, principal, row.expires_at)
        return principal

    def local_principal(self, *, cache: bool = False, guardrail_mode: str | None = None
                        ) -> Principal:
        return Principal(key_id=None, team=LOCAL_TEAM, cache=cache, guardrail_mode=guardrail_mode)

    # -- allowlists ----------------------------------------------------------------------
    def check_model(self, principal: Principal, model: str) -> None:
        if not principal.may_use(model):
            raise PermissionDenied(
                f"key {principal.label} (team {principal.team}) may not use model {model!r}; "
                "ask an admin to add it to the key's or team's --models"
            )

    # -- rate limits ---------------------------------------------------------------------
    @staticmethod
    def _rate_checks(principal: Principal) -> list[tuple[str, int | None, int | None]]:
        if principal.key_id is None:
            return []
        checks = [(f"key:{principal.key_id}", principal.rpm, principal.tpm),
                  (f"team:{principal.team}", principal.team_rpm, principal.team_tpm)]
        return [c for c in checks if c[1] is not None or c[2] is not None]

    def take_rate(self, principal: Principal, tokens: int, now: float | None = None) -> None:
        """Count one request and ``tokens`` against rpm/tpm of the key and its team,
        atomically; raise RateLimited (and count nothing) if either would exceed."""
        checks = self._rate_checks(principal)
        if not checks:
            return
        with self.store.write() as conn:
            self._take_rate(conn, checks, tokens, now)

    def _take_rate(self, conn: Connection, checks: list[tuple[str, int | None, int | None]],
                   tokens: int, now: float | None) -> None:
        window = int((now or time.time()) // 60)
        for subject, rpm, tpm in checks:
            self._take_window(conn, subject, window, rpm, tpm, tokens)

    def _take_window(self, conn: Connection, subject: str, window: int, rpm: int | None,
                     tpm: int | None, tokens: int) -> None:
        stmt = _take_window_stmt(rpm is not None, tpm is not None)
        params = {"b_subject": subject, "b_window": window, "b_rpm": rpm, "b_tpm": tpm,
                  "b_tokens": tokens}
        for _attempt in range(2):
            res = stmt.run(conn, params)
            if res.rowcount == 1:
                return
            exists = conn.execute(_window_exists_stmt(),
                                  {"b_subject": subject, "b_window": window}).first()
            if exists and stmt.run(conn, params).rowcount == 1:
                # Postgres: another call created the window and committed between our
                # UPDATE (which saw no row) and the SELECT; the UPDATE decides, again.
                return
            if exists:
                kind = subject.split(":", 1)[0]
                raise RateLimited(f"{kind} rate limit reached (rpm={rpm}, tpm={tpm}); retry "
                                  "in the next minute")
            try:
                with conn.begin_nested():
                    conn.execute(insert(rate_windows).values(subject=subject, window=window,
                                                             requests=0, tokens=0))
            except IntegrityError:
                pass  # another replica created the window first; retry the UPDATE
            else:
                # Keep the table small: windows older than an hour are history. Pruned
                # when a window opens (once a minute per subject), not on every request.
                conn.execute(delete(rate_windows).where(rate_windows.c.window < window - 60))
        raise RateLimited(f"rate limit bookkeeping contended for {subject}; retry")

    def add_tokens(self, principal: Principal, tokens: int,
                   conn: Connection | None = None) -> None:
        """Correct the tokens counted for tpm after a call: ``tokens`` is the actual
        prompt + completion tokens minus the estimate counted when the call started (may
        be negative). Lands in the current minute's windows of the key and its team;
        inside ``conn``'s transaction when given (the call's settle transaction)."""
        if principal.key_id is None or tokens == 0:
            return
        subjects = [s for s, limited in ((f"key:{principal.key_id}", principal.tpm),
                                         (f"team:{principal.team}", principal.team_tpm))
                    if limited is not None]
        if not subjects:
            return
        if conn is None:
            with self.store.write() as c:
                self._add_tokens(c, subjects, tokens)
        else:
            self._add_tokens(conn, subjects, tokens)

    @staticmethod
    def _add_tokens(conn: Connection, subjects: list[str], tokens: int) -> None:
        window = int(time.time() // 60)
        for subject in subjects:
            params = {"b_window": window, "b_subject": subject, "b_tokens": tokens}
            if _add_tokens_stmt().run(conn, params).rowcount == 0 and tokens > 0:
                # The call ended in a new minute: open that window with its tokens.
                try:
                    with conn.begin_nested():
                        conn.execute(insert(rate_windows).values(
                            subject=subject, window=window, requests=0, tokens=tokens))
                except IntegrityError:
                    _add_tokens_stmt().run(conn, params)  # another call opened it

    # -- budgets -------------------------------------------------------------------------
    def reserve(self, principal: Principal, amount_usd: float) -> Reservation:
        """Reserve ``amount_usd`` against the key's and the team's budgets, or raise."""
        return self.govern(principal, 0, amount_usd, rate=False, verify=False)

    def govern(self, principal: Principal, tokens: int, amount_usd: float, *,
               now: float | None = None, rate: bool = True, verify: bool = True
               ) -> Reservation:
        """Everything a governed call writes before it runs, in one write transaction:
        check that ``principal`` is still current (else :class:`StalePrincipal`), count
        the request and ``tokens`` against rpm/tpm (RateLimited), then reserve
        ``amount_usd`` against the key's and the team's budgets (BudgetExceeded). A
        request refused for its budget still counts against the rate limits, as it
        did when these were two transactions."""
        res = Reservation(id=uuid.uuid4().hex, key_id=principal.key_id, team=principal.team,
                          amount_usd=amount_usd)
        if principal.key_id is None:
            res.settled = True
            return res
        checks = self._rate_checks(principal) if rate else []
        holds = amount_usd > 0
        if not holds:
            res.settled = True  # nothing to hold
            if not checks:
                if verify:
                    with self.store.read() as conn:
                        self._verify(conn, principal)
                return res
        owner = liveness.ensure_registered(self.store) if holds else None
        denied: BudgetExceeded | None = None
        with self.store.write() as conn:
            if verify:
                self._verify(conn, principal)
            if checks:
                self._take_rate(conn, checks, tokens, now)
            if holds:
                denied = self._reserve(conn, res, owner)
        if denied is not None:
            raise denied
        if holds:
            res.store = self.store
            liveness.holding(self.store, +1)
        return res

    def verify(self, principal: Principal) -> None:
        """Raise :class:`StalePrincipal` if keys or teams changed since ``principal`` was
        read (its own read transaction; a governed call does this inside :meth:`govern`)."""
        if principal.key_id is None:
            return
        with self.store.read() as conn:
            self._verify(conn, principal)

    @staticmethod
    def _verify(conn: Connection, principal: Principal) -> None:
        if principal.epoch is None or current_epoch(conn) != principal.epoch:
            raise StalePrincipal(principal.key_id)

    def _reserve(self, conn: Connection, res: Reservation, owner: str | None
                 ) -> BudgetExceeded | None:
        """Reserve inside ``conn``; on refusal undo what was held here and return the
        error (the transaction still commits the rate-limit counts)."""
        done: list[tuple[str, str | None]] = []
        for table_name, ident, label in (("keys", res.key_id, f"key {res.key_id}"),
                                         ("teams", res.team, f"team {res.team}")):
            upd = _reserve_stmt(table_name).run(conn, {"b_ident": ident,
                                                       "b_amount": res.amount_usd})
            if upd.rowcount != 1:
                for undo_table, undo_ident in done:
                    _settle_stmt(undo_table).run(conn, {
                        "b_ident": undo_ident, "b_amount": res.amount_usd, "b_actual": 0.0})
                return BudgetExceeded(
                    f"budget of {label} is exhausted (this request may cost up to "
                    f"${res.amount_usd:.6f}); ask an admin to raise --budget-usd")
            done.append((table_name, ident))
        _insert_reservation_stmt().run(conn, {
            "id": res.id, "key_id": res.key_id, "team": res.team,
            "amount_usd": res.amount_usd, "created_at": time.time(), "owner": owner})
        return None

    def settle(self, res: Reservation, actual_usd: float, conn: Connection | None = None
               ) -> bool:
        """Turn a reservation into spend (``actual_usd``; 0 releases it). Idempotent.
        Returns False if a sweep had released it meanwhile (the spend is still charged)."""
        if res.settled:
            return True
        if conn is None:
            with self.store.write() as c:
                held = self._settle(c, res, actual_usd)
        else:
            held = self._settle(conn, res, actual_usd)
        res.settled = True
        if res.store is not None:
            liveness.holding(res.store, -1)
        return held

    def _settle(self, conn: Connection, res: Reservation, actual_usd: float) -> bool:
        gone = _delete_reservation_stmt().run(conn, {"b_id": res.id})
        held = gone.rowcount == 1
        # Swept meanwhile (a replica presumed dead): the hold is gone, the spend is real.
        amount = res.amount_usd if held else 0.0
        if not held and actual_usd <= 0:
            return False  # already settled or swept: never double-count
        for table_name, ident in (("keys", res.key_id), ("teams", res.team)):
            _settle_stmt(table_name).run(conn, {
                "b_ident": ident, "b_amount": amount, "b_actual": actual_usd})
        return held

    def sweep(self, *, older_than_s: float = 3600, stale_after_s: float = liveness.STALE_AFTER_S,
              actor: str = "sweep") -> SweepResult:
        """Release reservations whose holder has died (killed mid-request): on this host
        a holder is dead when its pid is gone or reused; on another host when its
        heartbeat is older than ``stale_after_s``. Reservations without a known holder
        (written before owners were recorded) are released when older than
        ``older_than_s``. A live process's reservation is never released, so every
        replica may sweep at startup. Audited when it releases anything."""
        now = time.time()
        me = liveness.current()
        out = SweepResult()
        with self.store.write() as conn:
            if not self.store.is_sqlite:
                # Sweeps settle many rows in arbitrary order: one sweeper at a time keeps
                # two replicas starting together from deadlocking on keys/teams rows.
                conn.execute(text("SELECT pg_advisory_xact_lock(7770003)"))
            p = processes.c
            rows = conn.execute(
                select(reservations, p.id.label("p_id"), p.host, p.host_key, p.pid,
                       p.pid_start, p.heartbeat_at)
                .select_from(reservations.outerjoin(processes, reservations.c.owner == p.id))
            ).fetchall()
            dead: dict[str, dict[str, Any]] = {}
            for row in rows:
                if row.p_id is None:
                    if row.created_at >= now - older_than_s:
                        out.kept += 1
                        continue
                elif row.p_id in dead or liveness.is_dead(
                        _ProcRow(row.p_id, row.host_key, row.pid, row.pid_start,
                                 row.heartbeat_at), now=now, stale_after_s=stale_after_s,
                        me=me):
                    dead.setdefault(row.p_id, {"id": row.p_id, "host": row.host,
                                               "pid": row.pid, "reservations": 0})
                    dead[row.p_id]["reservations"] += 1
                else:
                    out.kept += 1
                    continue
                res = Reservation(row.id, row.key_id, row.team, row.amount_usd)
                if self._settle(conn, res, 0.0):
                    out.released += 1
                    out.released_usd += row.amount_usd
            # Forget registry rows of dead processes that hold nothing any more.
            for proc in conn.execute(select(processes)).fetchall():
                if proc.id not in dead and liveness.is_dead(
                        proc, now=now, stale_after_s=stale_after_s, me=me):
                    dead[proc.id] = {"id": proc.id, "host": proc.host, "pid": proc.pid,
                                     "reservations": 0}
            if dead:
                conn.execute(delete(processes).where(p.id.in_(list(dead))))
            out.dead_processes = list(dead.values())
            if out.released:
                audit_log.append(self.store, conn, actor=actor, action="reservations.sweep",
                                 target="reservations", details={
                                     "released": out.released,
                                     "released_usd": round(out.released_usd, 9),
                                     "dead_processes": [d["id"] for d in out.dead_processes
                                                        if d["reservations"]]})
        return out

    def sweep_reservations(self, older_than_s: float = 3600) -> int:
        """Release reservations left by crashed processes; returns how many (see
        :meth:`sweep`)."""
        return self.sweep(older_than_s=older_than_s).released

    def open_reservations(self) -> int:
        """How many reservations are held right now (by any process)."""
        with self.store.read() as conn:
            return int(conn.execute(select(func.count()).select_from(reservations)).scalar_one())

    def budget_state(self, key_id: str) -> dict[str, Any]:
        with self.store.read() as conn:
            row = conn.execute(select(keys.c.budget_usd, keys.c.spent_usd, keys.c.reserved_usd,
                                      keys.c.team).where(keys.c.id == key_id)).first()
            if row is None:
                raise NotFound(f"no key with id {key_id}")
            return dict(row._mapping)


__all__ = [
    "KEY_PREFIX", "LOCAL_TEAM", "Policy", "Principal", "Reservation", "SweepResult",
    "hash_key",
]
