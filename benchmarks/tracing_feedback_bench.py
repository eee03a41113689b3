"""Feedback writes/s with 20 concurrent writers, on SQLite and (when a URL is given or
$WORKBENCH_TEST_POSTGRES_URL is set) on PostgreSQL; acknowledged vs persisted counts.

Each writer sends distinct signals (thumbs with an idempotency id), re-sends a share of
them (client retries: must not add rows) and records an implicit signal on one shared
message (one row whose ``occurrences`` must equal the number of acknowledgements).

    .venv/bin/python benchmarks/tracing_feedback_bench.py
    .venv/bin/python benchmarks/tracing_feedback_bench.py --quick
    .venv/bin/python benchmarks/tracing_feedback_bench.py --postgres-url postgresql://...
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from workbench.migrations import drop_everything  # noqa: E402
from workbench.observability import feedback  # noqa: E402
from workbench.observability.schema import feedback as feedback_table  # noqa: E402
from workbench.store import Store  # noqa: E402

SHARED = "f" * 32


def fresh_postgres(url: str) -> Store:
    s = Store(url, migrate=False)
    with s.engine.begin() as conn:
        drop_everything(conn)
    s.dispose()
    return Store(url)


def run(store: Store, writers: int, per_writer: int, resend_every: int) -> dict[str, Any]:
    acked = {"created": 0, "duplicate": 0, "shared": 0}
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(writers + 1)

    def writer(n: int) -> None:
        barrier.wait()
        for i in range(per_writer):
            try:
                tid = f"{n + 1:016x}{i:016x}"
                r = feedback.record(store, trace_id=tid, kind="thumbs", value=i % 3 != 0,
                                    idempotency_id=f"w{n}-{i}")
                dup = None
                if i % resend_every == 0:
                    dup = feedback.record(store, trace_id=tid, kind="thumbs",
                                          value=i % 3 != 0, idempotency_id=f"w{n}-{i}")
                feedback.record(store, trace_id=SHARED, kind="copy",
                                idempotency_id=f"s{n}-{i}")
            except Exception as exc:  # noqa: BLE001 - counted and printed, not hidden
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                acked["created"] += r.status == "created"
                acked["duplicate"] += dup is not None and dup.status == "duplicate"
                acked["shared"] += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    with store.read() as conn:
        rows = conn.execute(select(func.count()).select_from(feedback_table).where(
            feedback_table.c.trace_id != SHARED)).scalar_one()
        shared = conn.execute(select(feedback_table.c.occurrences).where(
            feedback_table.c.trace_id == SHARED)).scalar_one_or_none() or 0
    writes = acked["created"] + acked["duplicate"] + acked["shared"]
    return {"writes": writes, "elapsed": elapsed, "acked_rows": acked["created"],
            "persisted_rows": rows, "acked_shared": acked["shared"], "shared_occ": shared,
            "errors": errors}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="Tiny run (smoke test).")
    ap.add_argument("--writers", type=int, default=20)
    ap.add_argument("--postgres-url", default=os.environ.get("WORKBENCH_TEST_POSTGRES_URL"))
    args = ap.parse_args()
    per_writer = 5 if args.quick else 50
    targets = [("sqlite", Store(f"sqlite:///{Path(tempfile.mkdtemp()) / 'fb.db'}"))]
    if args.postgres_url:
        targets.append(("postgres", fresh_postgres(args.postgres_url)))
    table = []
    for name, store in targets:
        r = run(store, args.writers, per_writer, resend_every=5)
        table.append([name, r["writes"], r["elapsed"], r["writes"] / r["elapsed"],
                      r["acked_rows"], r["persisted_rows"], r["acked_shared"], r["shared_occ"],
                      len(r["errors"])])
        for e in r["errors"][:5]:
            print(f"{name} error: {e}")
        store.dispose()
    print_table(f"feedback writes, {args.writers} concurrent writers x {per_writer} signals",
                ["store", "writes", "seconds", "writes/s", "acked rows", "persisted rows",
                 "acked shared", "shared occurrences", "errors"], table)
    lost = sum(r[4] - r[5] + r[6] - r[7] for r in table)
    print(f"\nacknowledged but not persisted  {lost}")


if __name__ == "__main__":
    main()
