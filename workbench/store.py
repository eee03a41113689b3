"""One SQL store (SQLAlchemy Core): SQLite (WAL) by default, Postgres by URL.

Why Core and not an ORM: every governance write is a single conditional UPDATE whose
row count *is* the decision (budget reserved or not), and that is clearer in Core.

The schema is built by the ordered migration list in :mod:`workbench.migrations`, applied
when a store opens and recorded in ``schema_version``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    select,
)
from sqlalchemy.exc import OperationalError

from workbench.errors import ConfigError

if TYPE_CHECKING:
    from workbench.migrations import Migration

metadata = MetaData()


def table(name: str, *items: Any) -> Table:
    """The table ``name`` on the shared metadata, or the one already defined: a capability
    module imported twice (``importlib.reload`` in a notebook, pytester's module snapshots)
    must not define it twice."""
    existing = metadata.tables.get(name)
    return existing if existing is not None else Table(name, metadata, *items)


schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", Float, nullable=False),
)

teams = Table(
    "teams", metadata,
    Column("name", String(128), primary_key=True),
    Column("models", JSON, nullable=True),  # None = every model
    Column("budget_usd", Float, nullable=True),  # None = unlimited
    Column("spent_usd", Float, nullable=False, default=0.0),
    Column("reserved_usd", Float, nullable=False, default=0.0),
    Column("rpm", Integer, nullable=True),
    Column("tpm", Integer, nullable=True),
    Column("created_at", Float, nullable=False),
)

keys = Table(
    "keys", metadata,
    Column("id", String(32), primary_key=True),  # public id, safe to print
    Column("key_hash", String(64), nullable=False, unique=True),  # sha256 of the secret
    Column("hint", String(16), nullable=False),  # "wb-xxxx…": enough to recognise, not to use
    Column("name", String(128), nullable=True),
    Column("team", String(128), nullable=False),
    Column("models", JSON, nullable=True),
    Column("budget_usd", Float, nullable=True),
    Column("spent_usd", Float, nullable=False, default=0.0),
    Column("reserved_usd", Float, nullable=False, default=0.0),
    Column("rpm", Integer, nullable=True),
    Column("tpm", Integer, nullable=True),
    Column("guardrail_mode", String(16), nullable=True),
    Column("cache", Integer, nullable=False, default=0),
    Column("expires_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
)

rate_windows = Table(
    "rate_windows", metadata,
    Column("subject", String(160), primary_key=True),  # "key:<id>" / "team:<name>"
    Column("window", BigInteger, primary_key=True),  # epoch minute
    Column("requests", Integer, nullable=False, default=0),
    Column("tokens", Integer, nullable=False, default=0),
)

ledger = Table(
    "ledger", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("key_id", String(32), nullable=True),
    Column("team", String(128), nullable=True),
    Column("model", String(128), nullable=True),
    Column("provider", String(64), nullable=True),
    Column("endpoint", String(32), nullable=False),  # chat | embeddings
    Column("tokens_in", Integer, nullable=False, default=0),
    Column("tokens_out", Integer, nullable=False, default=0),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("latency_ms", Float, nullable=False, default=0.0),
    Column("outcome", String(16), nullable=False),  # ok | cached | denied | error
    Column("error_code", String(64), nullable=True),
    Column("redactions", Integer, nullable=False, default=0),
    Column("trace_id", String(32), nullable=True),
    # Comma-separated codes when the upstream's usage was not taken at face value
    # (usage_missing, usage_invalid, usage_clamped, charge_above_reservation, ...).
    Column("anomaly", String(128), nullable=True),
    Index("ix_ledger_ts", "ts"),
    Index("ix_ledger_trace", "trace_id"),
)

audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(160), nullable=False),
    Column("details", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

response_cache = Table(
    "response_cache", metadata,
    Column("key", String(64), primary_key=True),
    Column("model", String(128), nullable=False),
    Column("response", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
)

reservations = Table(
    "reservations", metadata,
    Column("id", String(32), primary_key=True),
    Column("key_id", String(32), nullable=True),
    Column("team", String(128), nullable=True),
    Column("amount_usd", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("owner", String(32), nullable=True),  # processes.id of the holder; NULL: unknown
)

# Processes that hold (or held) budget reservations, so a sweep can tell a crashed
# holder from a live replica: same host -> check the pid; other host -> the heartbeat.
processes = Table(
    "processes", metadata,
    Column("id", String(32), primary_key=True),  # random per process start (boot id)
    Column("host", String(255), nullable=False),
    Column("host_key", String(64), nullable=False),  # hostname + machine boot + pid namespace
    Column("pid", Integer, nullable=False),
    Column("pid_start", BigInteger, nullable=True),  # /proc start time: detects pid reuse
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)

def normalize_url(url: str) -> str:
    """Accept the URLs people paste: postgres:// and postgresql:// use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Store:
    """The SQL store. ``write()`` gives a transaction that holds the write lock from its
    first statement (``BEGIN IMMEDIATE`` on SQLite) so read-then-write sequences cannot be
    interleaved or fail half-way with SQLITE_BUSY."""

    def __init__(self, url: str, *, migrate: bool = True):
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.engine = self._create_engine()
        self._current = False  # every known migration is applied (migrate() checked)
        self._lock = threading.Lock()
        self._write_lock: threading.RLock | None = threading.RLock() if self.is_sqlite else None
        if migrate:
            self.migrate()

    def _create_engine(self) -> Engine:
        if self.is_sqlite:
            path = self.url.split("sqlite:///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                self.url, connect_args={"timeout": 30, "check_same_thread": False},
                pool_size=8, max_overflow=16,
            )

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _rec: Any) -> None:
                # Let SQLAlchemy, not pysqlite, decide where transactions begin.
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                mode = "IMMEDIATE" if conn.get_execution_options().get("wb_write") else "DEFERRED"
                conn.exec_driver_sql(f"BEGIN {mode}")

            return engine
        try:
            return create_engine(self.url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        except ImportError as exc:
            raise ConfigError(f"store URL needs a driver that is not installed: {exc}") from None

    def migrate(self) -> list[int]:
        """Apply the pending migrations (:mod:`workbench.migrations`); returns the versions
        applied now (empty when the store was up to date). Safe to call concurrently from
        threads, processes and replicas; cheap once the store is current."""
        from workbench import migrations

        with self._lock:
            if self._current:
                return []
            applied: list[int] = []
            if self.migration_status()[1]:  # else nothing to do: no write lock taken
                with self._opening(), self.write() as conn:
                    applied = [m.version for m in migrations.upgrade(conn, self.safe_url)]
            self._current = True
            return applied

    def migration_status(self) -> tuple[list[int], list[Migration]]:
        """(versions applied, migrations pending) without applying anything;
        :class:`~workbench.migrations.StoreTooNew` if a newer workbench migrated it."""
        from workbench import migrations

        with self._opening(), self.read() as conn:
            done = migrations.applied_versions(conn)
        return sorted(done), migrations.pending(done, self.safe_url)

    @contextmanager
    def _opening(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise ConfigError(
                f"cannot open the store at {self.safe_url}: {exc.orig}; check "
                "WORKBENCH_STORE_URL / data_dir"
            ) from None

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden (for messages and doctor)."""
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        if self._write_lock is None:
            with self.engine.connect().execution_options(wb_write=True) as conn, conn.begin():
                yield conn
            return
        # SQLite takes one writer at a time; a second BEGIN IMMEDIATE in this process would
        # wait in SQLite's busy handler, which sleeps in growing steps (up to 100 ms) and
        # so turned 16 concurrent calls into p99s of most of a second. Queueing the
        # writers of this process on a lock wakes the next one as soon as the last commits.
        # Reentrant: a nested write in one thread behaves as before (SQLite decides). Never
        # a new deadlock: after the busy timeout's 30 s the writer goes ahead and SQLite
        # decides, as it did before this lock.
        locked = self._write_lock.acquire(timeout=30)
        try:
            with self.engine.connect().execution_options(wb_write=True) as conn, conn.begin():
                yield conn
        finally:
            if locked:
                self._write_lock.release()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def schema_versions(self) -> list[int]:
        with self.read() as conn:
            return [r[0] for r in conn.execute(select(schema_version.c.version))]

    def dispose(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Store({self.safe_url!r})"


class HotStatement:
    """A Core statement compiled once per dialect and run straight on the DBAPI cursor of
    the caller's transaction. For the few statements every governed call runs: SQLAlchemy's
    per-execute work (cache lookup, events, result objects) cost several times what
    SQLite takes to run them. Only for statements whose values need no type processing
    (numbers and plain strings) and whose result is a row count or a few plain rows."""

    executed = 0  # statements run this way, for benchmarks/gateway_overhead.py's count

    __slots__ = ("stmt", "_compiled")

    def __init__(self, stmt: Any):
        self.stmt = stmt
        self._compiled: dict[str, tuple[str, Any, tuple[str, ...] | None]] = {}

    def _for(self, dialect: Any) -> tuple[str, Any, tuple[str, ...] | None]:
        hit = self._compiled.get(dialect.name)
        if hit is None:
            compiled = self.stmt.compile(dialect=dialect)
            positional = dialect.paramstyle in ("qmark", "format", "numeric")
            hit = (compiled.string, compiled,
                   tuple(compiled.positiontup or ()) if positional else None)
            self._compiled[dialect.name] = hit
        return hit

    def run(self, conn: Connection, params: dict[str, Any] | None = None) -> Any:
        """Execute inside ``conn``'s transaction; returns the DBAPI cursor (``rowcount``,
        ``fetchone()``)."""
        sql, compiled, order = self._for(conn.dialect)
        full = compiled.construct_params(params or {})
        args: Any = [full[name] for name in order] if order is not None else full
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(sql, args)
        HotStatement.executed += 1
        return cursor


# The tables are the store's internals (the workbench's own modules read and write them);
# code outside the package goes through those modules' functions.
__all__ = ["HotStatement", "Store", "metadata", "normalize_url", "schema_version", "table"]
