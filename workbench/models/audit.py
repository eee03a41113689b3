"""Append-only, keyed (HMAC-SHA256) hash chain of admin actions, anchored outside the store.

Each row's hash is an HMAC over its content and the previous row's hash, keyed with a
secret that never enters the database, so somebody who can write the database but does
not hold the key can neither edit a row and re-chain the rest nor forge new rows. The
newest row's id and hash are also recorded in an *anchor* file in the data dir, so deleting
the newest rows (which leaves a shorter but internally consistent chain) is detected too.

Where the key comes from (the first one found wins):

1. ``WORKBENCH_AUDIT_KEY`` (at least 16 characters): use this with several gateway /
   service replicas on one Postgres store, all with the same value;
2. ``<data_dir>/audit.key``: 32 random bytes, created (mode 0600) on the first audited
   action when no keyed chain exists yet.

Chains written before keying (plain SHA-256) are sealed on the first keyed append: an
``audit.keyed`` row whose HMAC covers the last legacy hash, so legacy rows cannot be edited
afterwards either; :func:`verify` reports them as legacy. What the chain does not prove
(someone holding both the database and the key can rewrite history; the anchor is only as
safe as the data dir) is spelled out in docs/playbooks/governance.md.

Details never hold secrets: callers pass ids, names and limits.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, insert, select, text

from workbench.errors import ConfigError
from workbench.store import Store, audit

log = logging.getLogger("workbench.audit")

GENESIS = "0" * 64
KEY_ENV = "WORKBENCH_AUDIT_KEY"
KEY_FILE = "audit.key"
ANCHOR_FILE = "audit-anchor.json"
MARKER = "audit.keyed"  # the row that seals a legacy chain and starts the keyed one
MIN_KEY_CHARS = 16
_AFTER_COMMIT = "wb_audit_after_commit"
_COMMITTING = "wb_audit_committing"


# -- actors ------------------------------------------------------------------------------
def os_user() -> str:
    """The operating-system user running this process (``uid:<n>`` when it has no name,
    e.g. in a container without a passwd entry)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def cli_actor() -> str:
    """The actor recorded for CLI admin commands: ``cli:<os user>``."""
    return f"cli:{os_user()}"


def http_actor(key_id: str | None) -> str:
    """The actor recorded for admin actions over HTTP: the caller's key id."""
    return f"key:{key_id}" if key_id else "key:local"


# -- the key and the anchor --------------------------------------------------------------
def _data_dir(store: Store | None = None) -> Path:
    """Where the key file and the anchor live: beside a SQLite store's file (its data
    dir, also when a notebook or a lab builds ``Settings(data_dir=...)`` in code), else the
    settings' data dir (PostgreSQL: set ``WORKBENCH_AUDIT_KEY`` on every replica)."""
    if store is not None and store.is_sqlite:
        from sqlalchemy.engine import make_url

        db = make_url(store.url).database
        if db and db != ":memory:":
            return Path(db).resolve().parent
    from workbench.config import load_settings

    return Path(load_settings().data_dir)


@dataclass(frozen=True)
class AuditKey:
    """The secret the chain is keyed with, and where it came from (never printed)."""

    secret: bytes = field(repr=False)
    source: str  # "env WORKBENCH_AUDIT_KEY" or the key file's path

    @property
    def fingerprint(self) -> str:
        """A public id of the key (an HMAC of a constant): tells keys apart, reveals nothing."""
        return hmac.new(self.secret, b"workbench-audit-key-id", hashlib.sha256).hexdigest()[:16]


def load_key(data_dir: Path | None = None, *, create: bool = False) -> AuditKey | None:
    """``WORKBENCH_AUDIT_KEY`` if set (it wins), else ``<data_dir>/audit.key``; with
    ``create`` a missing key file is made (0600). None when there is no key."""
    env = os.environ.get(KEY_ENV)
    if env is not None:
        if len(env.strip()) < MIN_KEY_CHARS:
            raise ConfigError(f"{KEY_ENV} is shorter than {MIN_KEY_CHARS} characters: use a "
                              "long random value, e.g. `python -c 'import secrets; "
                              "print(secrets.token_hex(32))'`")
        return AuditKey(env.strip().encode(), f"env {KEY_ENV}")
    path = (data_dir or _data_dir()) / KEY_FILE
    if not path.exists() and create:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: read theirs
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
    try:
        raw = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the audit key {path}: {exc.strerror}") from None
    if len(raw) < MIN_KEY_CHARS:
        raise ConfigError(f"the audit key file {path} is empty or too short: restore it")
    return AuditKey(raw.encode(), str(path))


def _store_id(store: Store) -> str:
    return store.safe_url


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` + ".lock" across processes (POSIX; elsewhere none)."""
    try:
        import fcntl
    except ImportError:  # Windows: a single-user laptop, best effort
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _anchor_mac(key: AuditKey, entry: dict[str, Any]) -> str:
    body = json.dumps({k: entry[k] for k in ("store", "id", "hash", "rows")}, sort_keys=True)
    return hmac.new(key.secret, body.encode(), hashlib.sha256).hexdigest()


def read_anchor(store: Store, data_dir: Path | None = None) -> dict[str, Any] | None:
    """The anchored head of ``store``'s chain in this data dir, if any."""
    path = (data_dir or _data_dir(store)) / ANCHOR_FILE
    try:
        anchors = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"corrupt": True}
    entry = anchors.get(_store_id(store)) if isinstance(anchors, dict) else None
    return entry if isinstance(entry, dict) else None


def _write_anchor(store_id: str, data_dir: Path, key: AuditKey, row_id: int, row_hash: str,
                  rows: int) -> None:
    """Record the newest committed row (only ever forward: an older head never replaces a
    newer one, whichever process writes last)."""
    path = data_dir / ANCHOR_FILE
    with _locked(path):
        try:
            anchors = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(anchors, dict):
                anchors = {}
        except (FileNotFoundError, ValueError):
            anchors = {}
        old = anchors.get(store_id)
        if isinstance(old, dict) and int(old.get("id", 0)) >= row_id:
            return
        entry = {"store": store_id, "id": row_id, "hash": row_hash, "rows": rows,
                 "ts": time.time(), "key": key.fingerprint}
        entry["mac"] = _anchor_mac(key, entry)
        anchors[store_id] = entry
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(anchors, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)


# -- hashing -----------------------------------------------------------------------------
def _payload(prev_hash: str, ts: float, actor: str, action: str, target: str,
             details: dict[str, Any]) -> bytes:
    return json.dumps([prev_hash, repr(ts), actor, action, target, details], sort_keys=True,
                      default=str).encode()


def _legacy_hash(prev_hash: str, ts: float, actor: str, action: str, target: str,
                 details: dict[str, Any]) -> str:
    """Rows written before keying: plain SHA-256 (anyone can recompute it)."""
    return hashlib.sha256(_payload(prev_hash, ts, actor, action, target, details)).hexdigest()


def _keyed_hash(key: AuditKey, prev_hash: str, ts: float, actor: str, action: str,
                target: str, details: dict[str, Any]) -> str:
    return hmac.new(key.secret, _payload(prev_hash, ts, actor, action, target, details),
                    hashlib.sha256).hexdigest()


# -- writing -----------------------------------------------------------------------------
def _insert(conn: Connection, key: AuditKey, prev: str, actor: str, action: str,
            target: str, details: dict[str, Any]) -> tuple[int, str]:
    ts = time.time()
    h = _keyed_hash(key, prev, ts, actor, action, target, details)
    res = conn.execute(insert(audit).values(ts=ts, actor=actor, action=action, target=target,
                                            details=details, prev_hash=prev, hash=h))
    pk = res.inserted_primary_key
    return int(pk[0]) if pk else 0, h


def append(store: Store, conn: Connection, *, actor: str, action: str, target: str,
           details: dict[str, Any] | None = None) -> str:
    """Append inside the caller's write transaction (so the action and its record commit
    together). Returns the new row's hash.

    ``actor`` is who acted (:func:`cli_actor`, :func:`http_actor`); a bare label such as
    ``"admin"`` from library code gets the OS user added (``admin:alice``). A chain without
    keyed rows is sealed first (see the module docs). The anchor file is updated once the
    caller's transaction has committed."""
    if not store.is_sqlite:
        # Serialise appenders across processes; SQLite's BEGIN IMMEDIATE already does.
        conn.execute(text("SELECT pg_advisory_xact_lock(7770002)"))
    if ":" not in actor:
        actor = f"{actor}:{os_user()}"
    data_dir = _data_dir(store)
    last = conn.execute(select(audit).order_by(audit.c.id.desc()).limit(1)).first()
    key = load_key(data_dir)
    keyed_head = key is not None and last is not None and last.hash == _keyed_hash(
        key, last.prev_hash, last.ts, last.actor, last.action, last.target, last.details)
    if not keyed_head:
        sealed = conn.execute(select(audit.c.id).where(audit.c.action == MARKER)
                              .limit(1)).first() is not None
        if key is None:
            if sealed:
                raise ConfigError(
                    f"the audit chain is keyed but no audit key was found: set {KEY_ENV} or "
                    f"restore {data_dir / KEY_FILE} (a new key would orphan every keyed row)")
            key = load_key(data_dir, create=True)
            assert key is not None
        prev = last.hash if last is not None else GENESIS
        if not sealed:
            _insert(conn, key, prev, actor, MARKER, "audit",
                    {"scheme": "hmac-sha256", "key": key.fingerprint,
                     "legacy_rows": _count(conn)})
            last = conn.execute(select(audit).order_by(audit.c.id.desc()).limit(1)).first()
        elif last is not None:
            # Wrong key or an altered head: the action still goes on record, and verify()
            # reports the break (refusing admin actions would help nobody).
            log.warning("the newest audit row does not verify with the audit key (%s); "
                        "run `workbench audit --verify`", key.source)
    assert key is not None
    prev = last.hash if last is not None else GENESIS
    row_id, h = _insert(conn, key, prev, actor, action, target, details or {})
    rows = _count(conn)
    _after_commit(conn, lambda: _anchor_quietly(store, data_dir, key, row_id, h, rows))
    return h


def _count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(audit)).scalar() or 0)


def _anchor_quietly(store: Store, data_dir: Path, key: AuditKey, row_id: int, h: str,
                    rows: int) -> None:
    try:
        _write_anchor(_store_id(store), data_dir, key, row_id, h, rows)
    except OSError as exc:
        # The action is committed; a missing anchor only weakens verify() (it says so).
        log.warning("could not update the audit anchor in %s: %s", data_dir, exc.strerror)


def _after_commit(conn: Connection, hook: Any) -> None:
    """Run ``hook`` after the connection's transaction commits (never after a rollback).

    SQLAlchemy's ``commit`` event fires before the DBAPI commit, so the hook is moved to
    "committing" there and runs when the connection goes back to the pool; a rollback
    drops it. The anchor therefore never points at a row that was rolled back. The
    commit/rollback listeners go on this connection (an engine-level listener added now
    would not reach a connection opened before it), the checkin one on the pool, once."""
    from sqlalchemy import event

    def on_commit(c: Connection) -> None:
        pending = c.info.pop(_AFTER_COMMIT, None)
        if pending:
            c.info.setdefault(_COMMITTING, []).extend(pending)

    def on_rollback(c: Connection) -> None:
        c.info.pop(_AFTER_COMMIT, None)
        c.info.pop(_COMMITTING, None)

    pool = conn.engine.pool
    if not getattr(pool, "_wb_audit_checkin", False):
        def on_checkin(dbapi_conn: Any, record: Any) -> None:
            record.info.pop(_AFTER_COMMIT, None)
            for fn in record.info.pop(_COMMITTING, None) or ():
                fn()

        event.listen(pool, "checkin", on_checkin)
        pool._wb_audit_checkin = True  # type: ignore[attr-defined]
    if not conn.info.get(_AFTER_COMMIT):
        event.listen(conn, "commit", on_commit)
        event.listen(conn, "rollback", on_rollback)
    conn.info.setdefault(_AFTER_COMMIT, []).append(hook)


# -- verifying ---------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditCheck:
    """What :func:`verify` found. ``ok`` is False at the first row that does not verify,
    when the anchored head is gone, or when keyed rows exist but no key is available."""

    ok: bool
    rows: int
    first_bad_id: int | None = None
    reason: str = ""
    legacy_rows: int = 0  # before keying: plain SHA-256, prove nothing against a DB writer
    keyed_rows: int = 0
    key_source: str | None = None
    anchor: str = "none"  # ok | none | behind | stale | corrupt
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One paragraph for people: what verified, what was found, what it means."""
        if not self.ok:
            where = f" at row {self.first_bad_id}" if self.first_bad_id else ""
            return f"audit chain BROKEN{where}: {self.reason}"
        parts = [f"audit chain intact: {self.rows} rows ({self.keyed_rows} keyed with "
                 f"HMAC-SHA256, {self.legacy_rows} legacy plain SHA-256)"]
        if self.anchor in ("ok", "behind"):
            parts.append("the anchored head is present (no newest row was deleted)")
        parts += self.notes
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify(store: Store, *, data_dir: Path | None = None) -> AuditCheck:
    """Recompute the chain with the audit key and compare its head with the anchor."""
    data_dir = data_dir or _data_dir(store)
    try:
        key = load_key(data_dir)
    except ConfigError as exc:
        return AuditCheck(False, 0, reason=exc.message)
    src = key.source if key else None
    prev, n, legacy, keyed, last_id = GENESIS, 0, 0, 0, 0
    seen_marker = False
    with store.read() as conn:
        for row in conn.execute(select(audit).order_by(audit.c.id)):
            n += 1
            if row.prev_hash != prev:
                return AuditCheck(False, n, row.id, "previous-hash link broken: a row was "
                                  "deleted or inserted before this one", legacy, keyed, src)
            args = (row.prev_hash, row.ts, row.actor, row.action, row.target, row.details)
            if seen_marker or row.action == MARKER:
                if key is None:
                    return AuditCheck(False, n, row.id, f"the chain is keyed from row {row.id} "
                                      f"but there is no audit key: set {KEY_ENV} or restore "
                                      f"{data_dir / KEY_FILE}", legacy, keyed, src)
                if _keyed_hash(key, *args) != row.hash:
                    why = "changed after it was written, or written with a different audit key"
                    fp = (row.details or {}).get("key") if row.action == MARKER else None
                    if fp and fp != key.fingerprint:
                        why = (f"the chain was keyed with key {fp}, but the key in use "
                               f"({key.source}) is {key.fingerprint}: wrong key")
                    return AuditCheck(False, n, row.id, f"HMAC does not match: {why}",
                                      legacy, keyed, src)
                seen_marker = True
                keyed += 1
            else:
                if _legacy_hash(*args) != row.hash:
                    return AuditCheck(False, n, row.id, "row content changed after it was "
                                      "written", legacy, keyed, src)
                legacy += 1
            prev, last_id = row.hash, row.id
    return _check_anchor(store, data_dir, key, n, legacy, keyed, last_id, prev)


def _check_anchor(store: Store, data_dir: Path, key: AuditKey | None, n: int, legacy: int,
                  keyed: int, last_id: int, head: str) -> AuditCheck:
    src = key.source if key else None
    entry = read_anchor(store, data_dir)
    notes: list[str] = []
    if legacy and not keyed:
        notes.append("not keyed yet: legacy rows can be rewritten by anyone who can write the "
                     "database; the next admin action seals them")
    elif legacy:
        notes.append(f"the first {legacy} rows predate keying and are sealed by the "
                     "audit.keyed row")
    if entry is None:
        if keyed:
            notes.append(f"no anchor for this store in {data_dir}: deleting the newest rows "
                         "cannot be detected from this machine")
        return AuditCheck(True, n, None, "", legacy, keyed, src, "none", notes)
    if entry.get("corrupt") or key is None or entry.get("mac") != _anchor_mac(key, entry):
        return AuditCheck(False, n, None, f"the anchor file {data_dir / ANCHOR_FILE} was "
                          "altered or is unreadable (or the audit key changed)", legacy,
                          keyed, src, "corrupt")
    anchored_id, anchored_hash = int(entry["id"]), str(entry["hash"])
    with store.read() as conn:
        row = conn.execute(select(audit.c.hash).where(audit.c.id == anchored_id)).first()
    if row is None or row.hash != anchored_hash or n < int(entry.get("rows", 0)):
        return AuditCheck(False, n, anchored_id, f"the anchor records row {anchored_id} as "
                          f"the newest ({entry.get('rows')} rows) but the store "
                          f"{'ends at row ' + str(last_id) if last_id else 'is empty'}"
                          f"{'' if row is None else ' with a different hash'}: the newest "
                          "rows were deleted or replaced", legacy, keyed, src, "stale")
    state = "ok" if anchored_id == last_id else "behind"
    if state == "behind":
        notes.append(f"rows after {anchored_id} were written elsewhere (another replica or "
                     "data dir); they verify with the key")
    return AuditCheck(True, n, None, "", legacy, keyed, src, state, notes)


def entries(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` rows, newest first."""
    with store.read() as conn:
        rows = conn.execute(select(audit).order_by(audit.c.id.desc()).limit(limit))
        return [dict(r._mapping) for r in rows]


__all__ = ["ANCHOR_FILE", "GENESIS", "KEY_ENV", "KEY_FILE", "MARKER", "AuditCheck", "AuditKey",
           "append", "cli_actor", "entries", "http_actor", "load_key", "os_user",
           "read_anchor", "verify"]
