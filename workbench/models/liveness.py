"""Which process holds a budget reservation, and whether that process still lives.

Every reservation names its owner: a row in ``processes`` with a random id drawn when
the process starts (its boot id), the host, the pid and the pid's start time. A sweep
decides an owner is dead only on evidence that cannot be true of a live process:

- same host (same hostname, machine boot and pid namespace): the pid is gone, a zombie,
  or now belongs to a process that started at another time (pid reuse);
- another host: its heartbeat is older than ``stale_after_s``. A process beats every
  :data:`HEARTBEAT_S` while it holds reservations, so only a crashed (or frozen for
  longer than ``stale_after_s``) replica looks dead.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from workbench.store import Store, processes

log = logging.getLogger("workbench.liveness")

HEARTBEAT_S = 15.0
STALE_AFTER_S = 300.0  # 20 missed heartbeats: a replica on another host is presumed dead


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) from /proc, or None if there is no such pid."""
    raw = _read(f"/proc/{pid}/stat")
    if not raw:
        return None
    fields = raw.rsplit(")", 1)[-1].split()  # the command name may hold spaces
    return fields[0], int(fields[19])


def _host_key() -> str:
    """Two processes may compare pids only inside one pid namespace of one machine boot;
    a container that shares the hostname but not the pid namespace gets another key."""
    ns = ""
    with contextlib.suppress(OSError):
        ns = os.readlink("/proc/self/ns/pid")
    parts = [socket.gethostname(), _read("/proc/sys/kernel/random/boot_id"), ns]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ProcessIdentity:
    """This process as the owner of reservations."""

    id: str
    host: str
    host_key: str
    pid: int
    pid_start: int | None
    started_at: float


_identity: ProcessIdentity | None = None
_lock = threading.Lock()
# Per store: when this process last wrote its heartbeat, and how many reservations it holds.
_beats: weakref.WeakKeyDictionary[Store, float] = weakref.WeakKeyDictionary()
_holding: weakref.WeakKeyDictionary[Store, int] = weakref.WeakKeyDictionary()
_thread: threading.Thread | None = None


def current() -> ProcessIdentity:
    """This process's identity (a new one after ``fork``)."""
    global _identity
    with _lock:
        if _identity is None or _identity.pid != os.getpid():
            pid = os.getpid()
            stat = _proc_stat(pid)
            _identity = ProcessIdentity(
                id=uuid.uuid4().hex, host=socket.gethostname()[:255], host_key=_host_key(),
                pid=pid, pid_start=stat[1] if stat else None, started_at=time.time())
        return _identity


def _after_fork() -> None:
    global _identity, _thread
    _identity = None
    _thread = None  # threads do not survive fork
    _beats.clear()
    _holding.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def pid_alive(pid: int, pid_start: int | None) -> bool:
    """Whether ``pid`` (started at ``pid_start`` clock ticks) runs on this host."""
    if Path("/proc/self/stat").exists():
        stat = _proc_stat(pid)
        if stat is None:
            return False
        state, start = stat
        if state in ("Z", "X"):
            return False  # killed, waiting to be reaped
        return pid_start is None or start == pid_start
    try:  # no /proc (macOS, Windows): existence only, pid reuse goes unnoticed
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_dead(row: Any, *, now: float, stale_after_s: float,
            me: ProcessIdentity | None = None) -> bool:
    """Whether the ``processes`` row describes a process that has certainly stopped."""
    me = me or current()
    if row.id == me.id:
        return False
    if row.host_key == me.host_key:
        return not pid_alive(row.pid, row.pid_start)
    return bool(row.heartbeat_at < now - stale_after_s)


def beat(store: Store) -> None:
    """Write this process's registry row (insert or refresh its heartbeat)."""
    me = current()
    now = time.time()
    with store.write() as conn:
        res = conn.execute(update(processes).where(processes.c.id == me.id)
                           .values(heartbeat_at=now))
        if res.rowcount == 0:
            try:
                with conn.begin_nested():
                    conn.execute(insert(processes).values(
                        id=me.id, host=me.host, host_key=me.host_key, pid=me.pid,
                        pid_start=me.pid_start, started_at=me.started_at, heartbeat_at=now))
            except IntegrityError:
                pass  # written by another thread of this process meanwhile
    with _lock:
        _beats[store] = now


def ensure_registered(store: Store) -> str:
    """Before a reservation: make sure the registry holds a fresh row for this process;
    returns the owner id to put on the reservation."""
    me = current()
    with _lock:
        last = _beats.get(store)
    if last is None or time.time() - last > HEARTBEAT_S:
        beat(store)
    return me.id


def holding(store: Store, delta: int) -> None:
    """Count reservations this process holds in ``store``; while any are held, a
    background thread keeps the heartbeat fresh (long calls on another host)."""
    global _thread
    with _lock:
        _holding[store] = max(0, _holding.get(store, 0) + delta)
        if delta > 0 and (_thread is None or not _thread.is_alive()):
            _thread = threading.Thread(target=_heartbeat_loop, name="workbench-heartbeat",
                                       daemon=True)
            _thread.start()


def _heartbeat_loop() -> None:
    while True:
        time.sleep(HEARTBEAT_S)
        with _lock:
            busy = [s for s, n in _holding.items() if n > 0]
        for store in busy:
            try:
                beat(store)
            except SQLAlchemyError as exc:  # the store is down: the next beat retries
                log.warning("heartbeat to %s failed: %s", store.safe_url, type(exc).__name__)


__all__ = [
    "HEARTBEAT_S", "STALE_AFTER_S", "ProcessIdentity", "beat", "current",
    "ensure_registered", "holding", "is_dead", "pid_alive",
]
