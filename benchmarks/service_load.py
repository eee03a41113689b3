"""Load test and soak of the production service (`workbench serve`) on loopback.

Two model set-ups behind the same service, each in its own server process:

- **mock**: chat goes to the benchmarks' OpenAI-compatible mock (fixed answer, ~no
  latency), so the figures are the service's own cost: auth, retrieval (real ONNX query
  embedding + LanceDB hybrid search), governance (budget reservation, ledger), tracing.
- **embedded**: chat runs on the packaged SmolLM2 in the server process (CPU-bound: a
  handful of answers, to show where the time goes).

For each: ``POST /ask`` at a fixed concurrency (requests/s, p50/p95/p99 latency, error
rate), then ``POST /feedback`` alone (writes/s), then for mock a soak of mixed asks and
feedback (default 2 minutes) sampling the server's resident memory. Baseline measured in
the same run: ``retrieval.ask`` called in-process on the same store and collection (what
the service adds is HTTP, auth, its root span and JSON). At the end the server is stopped
(SIGTERM) and the store is checked: every acknowledged answer has its ledger row, every
acknowledged feedback signal its row, and no budget reservation is left open.

    .venv/bin/python benchmarks/service_load.py                 # ~5 min
    .venv/bin/python benchmarks/service_load.py --quick         # smoke test
    .venv/bin/python benchmarks/service_load.py --store-url postgresql://...  # shared store
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Child, free_port, machine_note, percentile, print_table  # noqa: E402
from mock_upstream import MockUpstream  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COLLECTION = "bench"
MOCK_MODEL = "mock-chat"
QUESTIONS = [
    "How do I create a key for a team?",
    "How do budgets hold when requests run concurrently?",
    "How do I switch the workbench to a real model provider?",
    "What does the gateway proxy do?",
    "How do rate limits work?",
    "How do teams scale beyond one machine?",
]
FEEDBACK_KINDS = ("thumbs", "copy", "retry", "edit")


# -- set-up --------------------------------------------------------------------------------
def write_config(work: Path, scenario: str, upstream: str | None, store_url: str | None,
                 max_tokens: int) -> Path:
    lines = ["[workbench]", f'data_dir = "{(work / ".workbench").as_posix()}"',
             'log_level = "WARNING"']
    if store_url:
        lines.append(f'store_url = "{store_url}"')
    if scenario == "mock":
        lines += ['profile = "mock"', "", "[workbench.profiles.mock]", 'kind = "openai"',
                  f'base_url = "{upstream}"', f'chat_model = "{MOCK_MODEL}"',
                  'embed_model = "minilm-l6-v2"',
                  f'models = [{{ name = "{MOCK_MODEL}", provider = "mock", '
                  "input_usd_per_mtok = 0.15, output_usd_per_mtok = 0.60 }]"]
    else:  # embedded, priced so that budgets are exercised
        lines += ["", "[[workbench.models]]", 'name = "smollm2-135m"', 'provider = "embedded"',
                  "input_usd_per_mtok = 0.15", "output_usd_per_mtok = 0.60",
                  "context_window = 2048", "max_output_tokens = 256"]
    lines += ["", "[service]", f'collection = "{COLLECTION}"', f"max_tokens = {max_tokens}",
              "max_inflight = 256"]
    cfg = work / "workbench.toml"
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cfg


def env_for(cfg: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env["WORKBENCH_CONFIG"] = str(cfg)
    return env


def prepare(cfg: Path, corpus: Sequence[Path]) -> tuple[str, str, Any]:
    """Ingest the corpus and create a key with a budget; (key id, secret, gateway)."""
    os.environ["WORKBENCH_CONFIG"] = str(cfg)
    from workbench.api import connect
    from workbench.retrieval import ingest

    gw = connect()
    report = ingest(gw, list(corpus), collection=COLLECTION, progress=False)
    for line in report.summary_lines():
        print("   " + line)
    key_id, secret = gw.policy.create_key(team="bench", budget_usd=1_000_000.0)
    return key_id, secret, gw


def start_server(work: Path, cfg: Path, workers: int) -> tuple[Child, str]:
    port = free_port()
    argv = [sys.executable, "-m", "workbench", "serve", "--port", str(port),
            "--workers", str(workers)]
    child = Child("workbench serve", argv, cwd=work, env=env_for(cfg), log=work / "serve.log")
    base = f"http://127.0.0.1:{port}"
    child.wait_http(base + "/readyz", timeout_s=300)
    return child, base


def group_rss_mb(pgid: int) -> float:
    """Resident memory of every process in the server's process group (workers too)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # field 5 of stat (pgrp), counted after the name
                continue
            with open(f"/proc/{entry}/status", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1024


# -- load ----------------------------------------------------------------------------------
@dataclass
class Tally:
    attempts: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    traces: list[str] = field(default_factory=list)  # acknowledged answers
    feedback_ids: set[str] = field(default_factory=set)  # acknowledged feedback
    feedback_latencies: list[float] = field(default_factory=list)
    feedback_errors: int = 0

    def error(self, what: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or what[:300]


async def _ask(client: httpx.AsyncClient, tally: Tally, question: str) -> str | None:
    tally.attempts += 1
    t0 = time.perf_counter()
    try:
        resp = await client.post("/ask", json={"question": question})
    except httpx.HTTPError as exc:
        tally.error(f"/ask {type(exc).__name__}")
        return None
    tally.latencies.append((time.perf_counter() - t0) * 1000)
    if resp.status_code != 200:
        tally.error(f"/ask {resp.status_code}: {resp.text}")
        return None
    trace_id = str(resp.json()["trace_id"])
    tally.traces.append(trace_id)
    return trace_id


async def _feedback(client: httpx.AsyncClient, tally: Tally, trace_id: str, kind: str) -> None:
    body: dict[str, Any] = {"trace_id": trace_id, "kind": kind, "source_id": "bench"}
    if kind == "thumbs":
        body["value"] = random.random() < 0.7
    elif kind == "edit":
        body["value"] = f"An edited answer {random.randrange(1_000_000)}."
    t0 = time.perf_counter()
    try:
        resp = await client.post("/feedback", json=body)
    except httpx.HTTPError as exc:
        tally.feedback_errors += 1
        tally.first_error = tally.first_error or f"/feedback {type(exc).__name__}"
        return
    tally.feedback_latencies.append((time.perf_counter() - t0) * 1000)
    if resp.status_code in (200, 201):
        tally.feedback_ids.add(str(resp.json()["id"]))
    else:
        tally.feedback_errors += 1
        tally.first_error = tally.first_error or f"/feedback {resp.status_code}: {resp.text[:200]}"


def _client(base: str, secret: str, concurrency: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, timeout=600,
                             headers={"Authorization": f"Bearer {secret}"},
                             limits=httpx.Limits(max_connections=concurrency,
                                                 max_keepalive_connections=concurrency))


async def ask_load(base: str, secret: str, concurrency: int, *, duration_s: float | None = None,
                   requests: int | None = None, feedback_share: float = 0.0) -> tuple[Tally, float]:
    """Workers ask back to back until the deadline (or ``requests`` in total); after an
    answer, with probability ``feedback_share``, they send a feedback signal on it."""
    tally = Tally()
    left = [requests if requests is not None else 1 << 62]
    deadline = time.perf_counter() + (duration_s if duration_s is not None else 1e9)

    async with _client(base, secret, concurrency) as client:
        async def worker(i: int) -> None:
            n = i
            while time.perf_counter() < deadline and left[0] > 0:
                left[0] -= 1
                trace_id = await _ask(client, tally, QUESTIONS[n % len(QUESTIONS)])
                n += concurrency
                if trace_id and random.random() < feedback_share:
                    await _feedback(client, tally, trace_id, random.choice(FEEDBACK_KINDS))

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        return tally, time.perf_counter() - started


async def feedback_load(base: str, secret: str, traces: list[str], concurrency: int,
                        duration_s: float) -> tuple[Tally, float]:
    tally = Tally()
    deadline = time.perf_counter() + duration_s
    async with _client(base, secret, concurrency) as client:
        async def worker() -> None:
            while time.perf_counter() < deadline:
                await _feedback(client, tally, random.choice(traces),
                                random.choice(FEEDBACK_KINDS))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return tally, time.perf_counter() - started


async def soak(base: str, secret: str, concurrency: int, duration_s: float, pgid: int,
               every_s: float) -> tuple[Tally, float, list[tuple[float, float]]]:
    samples: list[tuple[float, float]] = [(0.0, group_rss_mb(pgid))]
    started = time.perf_counter()

    async def sample() -> None:
        while time.perf_counter() - started < duration_s:
            await asyncio.sleep(every_s)
            samples.append((time.perf_counter() - started, group_rss_mb(pgid)))

    sampler = asyncio.create_task(sample())
    tally, elapsed = await ask_load(base, secret, concurrency, duration_s=duration_s,
                                    feedback_share=0.5)
    sampler.cancel()
    samples.append((elapsed, group_rss_mb(pgid)))
    return tally, elapsed, samples


def baseline(gw: Any, n: int, max_tokens: int) -> list[float]:
    """``retrieval.ask`` in-process, one at a time (what the service wraps)."""
    from workbench.retrieval import ask

    out = []
    for i in range(n):
        t0 = time.perf_counter()
        ask(gw, QUESTIONS[i % len(QUESTIONS)], collection=COLLECTION, max_tokens=max_tokens)
        out.append((time.perf_counter() - t0) * 1000)
    return out


# -- checks ----------------------------------------------------------------------------------
def persisted(gw: Any, key_id: str, tallies: Sequence[Tally]) -> dict[str, int]:
    """What the store holds for everything the service acknowledged."""
    from sqlalchemy import func, select

    from workbench.observability.schema import feedback
    from workbench.store import ledger, reservations

    traces = {t for tally in tallies for t in tally.traces}
    fb_ids = {f for tally in tallies for f in tally.feedback_ids}
    found_traces: set[str] = set()
    found_fb: set[str] = set()
    with gw.store.read() as conn:
        ids = sorted(traces)
        for i in range(0, len(ids), 500):
            found_traces |= set(conn.execute(select(ledger.c.trace_id).where(
                ledger.c.trace_id.in_(ids[i:i + 500]), ledger.c.key_id == key_id)).scalars())
        fids = sorted(fb_ids)
        for i in range(0, len(fids), 500):
            found_fb |= set(conn.execute(select(feedback.c.id).where(
                feedback.c.id.in_(fids[i:i + 500]))).scalars())
        open_res = conn.execute(select(func.count()).select_from(reservations)).scalar_one()
    return {"answers_acked": len(traces), "answers_in_ledger": len(found_traces),
            "feedback_acked": len(fb_ids), "feedback_stored": len(found_fb),
            "open_reservations": int(open_res)}


def row(name: str, tally: Tally, seconds: float) -> list[Any]:
    lat = tally.latencies
    return [name, len(tally.traces), len(tally.traces) / seconds if seconds else 0.0,
            percentile(lat, 50), percentile(lat, 95), percentile(lat, 99),
            f"{100 * tally.errors / tally.attempts:.2f}%" if tally.attempts else "n/a"]


def fb_row(name: str, tally: Tally, seconds: float) -> list[Any]:
    lat = tally.feedback_latencies
    total = len(lat) + tally.feedback_errors
    return [name, len(tally.feedback_ids), len(lat) / seconds if seconds else 0.0,
            percentile(lat, 50), percentile(lat, 95), percentile(lat, 99),
            f"{100 * tally.feedback_errors / total:.2f}%" if total else "n/a"]


# -- main --------------------------------------------------------------------------------------
def run_scenario(scenario: str, args: argparse.Namespace, work: Path, corpus: list[Path],
                 upstream: str | None) -> dict[str, Any]:
    print(f"\n== {scenario}: setting up (ingest {', '.join(p.name for p in corpus)}) ...")
    max_tokens = args.max_tokens if scenario == "embedded" else 64
    cfg = write_config(work, scenario, upstream, args.store_url, max_tokens)
    key_id, secret, gw = prepare(cfg, corpus)
    out: dict[str, Any] = {"scenario": scenario}
    n_base = (1 if args.quick else 4) if scenario == "embedded" else (3 if args.quick else 50)
    baseline(gw, 1, max_tokens)  # warm: model load, table open
    out["baseline"] = baseline(gw, n_base, max_tokens)
    server, base = start_server(work, cfg, args.workers)
    tallies: list[Tally] = []
    try:
        rss_start = group_rss_mb(server.proc.pid)
        if scenario == "embedded":
            asks, secs = asyncio.run(ask_load(base, secret, args.embedded_concurrency,
                                              requests=args.embedded_requests))
        else:
            asyncio.run(ask_load(base, secret, 2, requests=10))  # warm-up, not counted
            asks, secs = asyncio.run(ask_load(base, secret, args.concurrency,
                                              duration_s=args.duration))
        tallies.append(asks)
        out["ask"] = (asks, secs)
        fb, fb_secs = asyncio.run(feedback_load(base, secret, asks.traces or ["0" * 32],
                                                args.concurrency, args.feedback_duration))
        tallies.append(fb)
        out["feedback"] = (fb, fb_secs)
        if scenario == "mock" and args.soak > 0:
            print(f"   soak: {args.soak:.0f} s of mixed asks + feedback at concurrency "
                  f"{args.concurrency} ...")
            soaked, soak_secs, samples = asyncio.run(soak(
                base, secret, args.concurrency, args.soak, server.proc.pid,
                every_s=max(args.soak / 24, 1.0)))
            tallies.append(soaked)
            out["soak"] = (soaked, soak_secs, samples)
        out["rss_start"] = rss_start
        out["rss_end"] = group_rss_mb(server.proc.pid)
    finally:
        server.stop()  # SIGTERM: drains in-flight requests, flushes spans
    out["persisted"] = persisted(gw, key_id, tallies)
    gw.close()
    return out


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    heads = ["scenario", "acked", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"]
    rows = []
    for r in results:
        b = r["baseline"]
        rows.append([f"{r['scenario']} in-process ask (baseline)", len(b),
                     1000 / (sum(b) / len(b)) if b else 0.0, percentile(b, 50),
                     percentile(b, 95), percentile(b, 99), "-"])
        rows.append(row(f"{r['scenario']} POST /ask", *r["ask"]))
    print_table(f"POST /ask (concurrency {args.concurrency} mock, {args.embedded_concurrency} "
                f"embedded; {args.workers} worker{'s' if args.workers > 1 else ''})",
                heads, rows)
    for r in results:
        b = percentile(r["baseline"], 50)
        s = percentile(r["ask"][0].latencies, 50)
        print(f"{r['scenario']}: service p50 / in-process p50 = {s / b:.2f}x "
              "(the service's answers run concurrently; the baseline one at a time)")
    print_table("POST /feedback alone", ["scenario", "acked", "writes/s", "p50 ms", "p95 ms",
                                         "p99 ms", "errors"],
                [fb_row(f"{r['scenario']} feedback", *r["feedback"]) for r in results])
    for r in results:
        if "soak" not in r:
            continue
        soaked, secs, samples = r["soak"]
        rss = [mb for _, mb in samples]
        print_table(f"soak ({r['scenario']}, {secs:.0f} s, asks + feedback on half of them)",
                    ["figure", "value"], [
                        ["answers acknowledged", len(soaked.traces)],
                        ["answers/s", len(soaked.traces) / secs],
                        ["p50 / p95 / p99 ms", f"{percentile(soaked.latencies, 50):.1f} / "
                                               f"{percentile(soaked.latencies, 95):.1f} / "
                                               f"{percentile(soaked.latencies, 99):.1f}"],
                        ["errors", soaked.errors + soaked.feedback_errors],
                        ["feedback acknowledged", len(soaked.feedback_ids)],
                        ["server RSS first / last / max MB",
                         f"{rss[0]:.0f} / {rss[-1]:.0f} / {max(rss):.0f}"],
                        ["RSS over the soak (MB, every "
                         f"{samples[1][0] if len(samples) > 1 else 0:.0f} s)",
                         " ".join(f"{mb:.0f}" for mb in rss)],
                    ])
    for r in results:
        p = r["persisted"]
        lost_answers = p["answers_acked"] - p["answers_in_ledger"]
        lost_feedback = p["feedback_acked"] - p["feedback_stored"]
        print(f"{r['scenario']} persistence: {p['answers_in_ledger']}/{p['answers_acked']} "
              f"acknowledged answers in the ledger, {p['feedback_stored']}/"
              f"{p['feedback_acked']} acknowledged feedback rows stored, "
              f"{p['open_reservations']} open reservations -> "
              + ("nothing lost" if lost_answers == lost_feedback == p["open_reservations"] == 0
                 else "LOST DATA"))
        print(f"{r['scenario']} server RSS: {r['rss_start']:.0f} MB after start, "
              f"{r['rss_end']:.0f} MB at the end")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="Tiny run for smoke tests.")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--duration", type=float, default=30.0, help="Seconds of /ask load (mock).")
    ap.add_argument("--feedback-duration", type=float, default=15.0)
    ap.add_argument("--soak", type=float, default=120.0, help="Soak seconds (mock); 0 skips.")
    ap.add_argument("--embedded-requests", type=int, default=12)
    ap.add_argument("--embedded-concurrency", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=32, help="Answer length (embedded).")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn workers per server.")
    ap.add_argument("--store-url", default=None, help="postgresql://... (default: SQLite).")
    ap.add_argument("--skip-embedded", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.concurrency, args.duration, args.feedback_duration, args.soak = 4, 2.0, 2.0, 4.0
        args.embedded_requests, args.max_tokens = 2, 8
    print(machine_note())
    # Hermetic: the servers and this process read the same generated workbench.toml only.
    for var in [v for v in os.environ if v.startswith("WORKBENCH_")]:
        del os.environ[var]
    from workbench.api import offline_env

    offline_env()
    corpus = [ROOT / "docs" / "getting-started.md"]
    if not args.quick:
        corpus.append(ROOT / "docs" / "playbooks")
    results = []
    with MockUpstream() as upstream:
        for scenario in ("mock", *(() if args.skip_embedded else ("embedded",))):
            work = Path(tempfile.mkdtemp(prefix=f"wb-service-{scenario}-"))
            try:
                results.append(run_scenario(scenario, args, work, corpus,
                                            upstream.base_url))
            finally:
                shutil.rmtree(work, ignore_errors=True)
    report(results, args)
    lost = any(r["persisted"]["answers_acked"] != r["persisted"]["answers_in_ledger"]
               or r["persisted"]["feedback_acked"] != r["persisted"]["feedback_stored"]
               or r["persisted"]["open_reservations"] for r in results)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
