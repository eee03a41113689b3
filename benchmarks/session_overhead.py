"""What prompts and sessions add to one answer: the registry lookup on the answer path
(cached and uncached), a session's store writes per turn (open + add), loading a
conversation's history, and the trimming rule. Figures per operation on this machine,
and each as a ratio of the same run's baseline: one empty write transaction.

    .venv/bin/python benchmarks/session_overhead.py
    .venv/bin/python benchmarks/session_overhead.py --quick
    .venv/bin/python benchmarks/session_overhead.py --postgres-url postgresql://...
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table  # noqa: E402
from sqlalchemy import text  # noqa: E402

from workbench import prompts  # noqa: E402
from workbench.sessions import history  # noqa: E402
from workbench.store import Store, metadata, schema_version  # noqa: E402


def per_call_us(fn: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


def fresh(url: str | None, tmp: str) -> Store:
    if not url:
        return Store(f"sqlite:///{tmp}/bench.db")
    s = Store(url, migrate=False)
    with s.engine.begin() as conn:
        metadata.drop_all(conn)
        schema_version.drop(conn, checkfirst=True)
    s.dispose()
    return Store(url)


def bench(store: Store, n: int) -> list[tuple[str, float]]:
    def empty_write() -> None:
        with store.write() as conn:
            conn.execute(text("SELECT 1"))

    base = per_call_us(empty_write, n)
    prompts.production(store, prompts.RAG_ANSWER)
    cached = per_call_us(lambda: prompts.production(store, prompts.RAG_ANSWER), n * 10)
    uncached = per_call_us(lambda: prompts.get(store, prompts.RAG_ANSWER), n)
    turns_per_session = 10
    sessions = max(n // turns_per_session, 1)

    def conversation() -> None:
        sid = history.open_session(store, None, key_id="key_bench").id
        for i in range(turns_per_session):
            history.open_session(store, sid, key_id="key_bench")
            history.add_turn(store, sid, trace_id=f"{i:032x}", question="q " * 20,
                             answer="a " * 60, model="m", prompt_version="rag.answer@x")

    per_turn = per_call_us(conversation, sessions) / turns_per_session
    turns = [("q " * 20, "a " * 60)] * history.MAX_TURNS_LOADED
    prompt = [{"role": "system", "content": "s " * 40}, {"role": "user", "content": "u " * 400}]
    fit = per_call_us(lambda: history.fit_history(turns, prompt, context_window=2048,
                                                  max_tokens=128), n)
    return [("empty write transaction (baseline)", base),
            ("prompt lookup, cached (answer path)", cached),
            ("prompt lookup, uncached (store read)", uncached),
            ("session turn: open + add (2 reads, 1 write)", per_turn),
            ("fit_history, 50 turns, 2k context", fit)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few iterations (smoke test)")
    ap.add_argument("--postgres-url", default=os.environ.get("WORKBENCH_TEST_POSTGRES_URL"))
    args = ap.parse_args()
    n = 20 if args.quick else 400
    print(f"load average {os.getloadavg()[0]:.2f} (1 min), {n} iterations per figure")
    with tempfile.TemporaryDirectory() as tmp:
        for label, url in (("sqlite", None), ("postgres", args.postgres_url)):
            if label == "postgres" and not url:
                continue
            store = fresh(url, tmp)
            rows = bench(store, n)
            base = rows[0][1]
            print_table(f"{label}: per operation", ["operation", "us", "x baseline"],
                        [(name, us, us / base) for name, us in rows])
            store.dispose()


if __name__ == "__main__":
    main()
