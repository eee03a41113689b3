"""Gateway overhead against a mock OpenAI-compatible upstream, with LiteLLM's proxy as the
reference, all measured in the same run on the same machine.

Targets (each against the same mock upstream, in its own process):
  mock direct      httpx straight to the mock: the baseline
  floor proxy      a minimal pass-through proxy (floor_proxy.py: uvicorn + httpx, no
                   governance): what any Python proxy on this stack pays
  python api       ``gateway.as_key(key).chat(...)`` in this process
  workbench proxy  ``workbench gateway`` (uvicorn + create_app) in a child process
  workbench proxy (postgres)  the same on a PostgreSQL store (throughput only; with
                   --postgres-url or WORKBENCH_BENCH_POSTGRES_URL)
  litellm proxy    ``litellm --config ...`` (litellm[proxy]==1.109.1) from its own venv

The workbench key has a USD budget and rpm/tpm limits (and so does its team), so every
call does the full governance work: auth, allowlist, guardrails, rate-limit windows,
budget reservation, settle, ledger row, all in an SQLite store in a temp data dir.

Reported: sequential latency p50/p99 and the latency each layer adds over the baseline
(difference of percentiles), requests/s at a fixed concurrency (keep-alive connections
sending back to back), and ours/LiteLLM ratios. Rounds are interleaved so machine noise
hits every target alike; throughput figures are medians over rounds.

    .venv/bin/python benchmarks/gateway_overhead.py            # full run (~3-4 min)
    .venv/bin/python benchmarks/gateway_overhead.py --quick --no-litellm
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from _common import (
    Child,
    LoadResult,
    free_port,
    http_latencies,
    load_test,
    machine_note,
    median,
    percentile,
    print_table,
)
from mock_upstream import MockUpstream

LITELLM_VERSION = "1.109.1"
DEFAULT_LITELLM_VENV = Path(__file__).resolve().parent / ".venv-litellm"
MODEL = "mock-model"
BODY: dict[str, Any] = {
    "model": MODEL, "max_tokens": 32,
    "messages": [{"role": "user", "content": "In one sentence: why do we benchmark gateways?"}],
}
LITELLM_MASTER_KEY = "sk-bench-master"  # a throwaway key for a loopback-only child process


# -- LiteLLM in its own venv -------------------------------------------------------------
class LitellmUnavailable(Exception):
    """Why the LiteLLM comparison cannot run (printed; the script still exits 0)."""


_REQS_SCRIPT = """
import importlib.metadata as md, json
from pip._vendor.packaging.requirements import Requirement
out = []
for raw in md.requires("litellm") or []:
    req = Requirement(raw)
    if req.marker and not any(req.marker.evaluate({"extra": e}) for e in ("", "proxy")):
        continue
    req.marker = None
    out.append(str(req))
print(json.dumps(out))
"""


def _pip(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install",
                           "--disable-pip-version-check", *args],
                          capture_output=True, text=True)


def _installed_litellm(venv: Path) -> str | None:
    py = venv / "bin" / "python"
    if not py.exists():
        return None
    res = subprocess.run([str(py), "-c", "import importlib.metadata as m, litellm.proxy;"
                          "print(m.version('litellm'))"], capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else None


def ensure_litellm(venv: Path) -> Path:
    """Create ``venv`` with litellm[proxy] on first use; return its ``litellm`` command.

    LiteLLM's pins conflict with ours, so it never goes into the project venv. If the
    registry lags behind one of LiteLLM's lower bounds (seen: ``certifi>=2026.10.19``,
    ``litellm-proxy-extras==0.4.113``), install litellm without deps and then its
    declared deps, relaxing only the requirements the registry cannot satisfy.
    """
    exe = venv / "bin" / "litellm"
    if _installed_litellm(venv) == LITELLM_VERSION and exe.exists():
        return exe
    print(f"[setup] creating {venv} with litellm[proxy]=={LITELLM_VERSION} "
          "(first use; takes a few minutes)", flush=True)
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    res = _pip(venv, f"litellm[proxy]=={LITELLM_VERSION}")
    if res.returncode != 0:
        res = _pip(venv, "--no-deps", f"litellm=={LITELLM_VERSION}")
        if res.returncode != 0:
            raise LitellmUnavailable(f"pip could not install litellm=={LITELLM_VERSION}: "
                                     + res.stderr.strip().splitlines()[-1])
        listed = subprocess.run([str(venv / "bin" / "python"), "-c", _REQS_SCRIPT],
                                capture_output=True, text=True, check=True)
        reqs: list[str] = json.loads(listed.stdout)
        relaxed: list[str] = []
        for _attempt in range(8):
            res = _pip(venv, *reqs)
            if res.returncode == 0:
                break
            m = re.search(r"No matching distribution found for ([A-Za-z0-9_.\-]+)", res.stderr)
            name = m.group(1).lower() if m else None
            idx = next((i for i, r in enumerate(reqs)
                        if name and re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower() == name),
                       None)
            if name is None or idx is None or reqs[idx] == name:
                raise LitellmUnavailable("pip could not install LiteLLM's dependencies: "
                                         + res.stderr.strip().splitlines()[-1])
            relaxed.append(reqs[idx])
            reqs[idx] = name
        else:
            raise LitellmUnavailable("gave up relaxing LiteLLM's requirements")
        if relaxed:
            print(f"[setup] the registry lacks versions LiteLLM asks for; relaxed: "
                  f"{', '.join(relaxed)}", flush=True)
    if _installed_litellm(venv) != LITELLM_VERSION or not exe.exists():
        raise LitellmUnavailable(f"litellm {LITELLM_VERSION} did not install into {venv}")
    return exe


def start_litellm(exe: Path, work: Path, upstream: str, port: int) -> Child:
    """LiteLLM's proxy with the mock as an ``openai/`` model, authenticated by a master key.

    Virtual keys, budgets and spend tracking need its Postgres database through Prisma,
    whose query-engine binaries are downloaded at run time (no internet here), so it
    runs without them: it does less governance work per request than the workbench.
    """
    config = {
        "model_list": [{"model_name": MODEL, "litellm_params": {
            "model": f"openai/{MODEL}", "api_base": upstream, "api_key": "sk-mock",
            "input_cost_per_token": 0.15e-6, "output_cost_per_token": 0.6e-6}}],
        "general_settings": {"master_key": LITELLM_MASTER_KEY},
        "litellm_settings": {"telemetry": False, "drop_params": True},
    }
    cfg = work / "litellm.yaml"
    cfg.write_text(json.dumps(config, indent=2))  # JSON is valid YAML
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKBENCH_", "OPENAI_"))}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True",  # else it fetches prices from GitHub
               LITELLM_LOG="ERROR",  # no per-request access log, like ours
               LITELLM_TELEMETRY="False")
    env.pop("DATABASE_URL", None)  # no database: see the docstring
    child = Child("litellm proxy", [str(exe), "--config", str(cfg), "--host", "127.0.0.1",
                                    "--port", str(port), "--num_workers", "1"],
                  cwd=work, env=env, log=work / "litellm.log")
    child.wait_http(f"http://127.0.0.1:{port}/health/liveliness", timeout_s=180)
    return child


# -- the workbench side ------------------------------------------------------------------
def write_workbench_config(work: Path, upstream: str) -> Path:
    cfg = work / "workbench.toml"
    cfg.write_text(f"""\
profile = "mock"
data_dir = "{(work / '.workbench').as_posix()}"
log_level = "WARNING"

[profiles.mock]
base_url = "{upstream}"
chat_model = "{MODEL}"

[[profiles.mock.models]]
name = "{MODEL}"
provider = "mock"
input_usd_per_mtok = 0.15
output_usd_per_mtok = 0.60
""")
    return cfg


def start_workbench(work: Path, cfg: Path, port: int, store_url: str | None = None) -> Child:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env["WORKBENCH_CONFIG"] = str(cfg)
    if store_url:
        env["WORKBENCH_STORE_URL"] = store_url
    argv = [sys.executable, "-c", "from workbench.cli import main; main()",
            "gateway", "--host", "127.0.0.1", "--port", str(port)]
    log = work / f"workbench{'-pg' if store_url else ''}.log"
    child = Child("workbench proxy", argv, cwd=work, env=env, log=log)
    child.wait_http(f"http://127.0.0.1:{port}/healthz", timeout_s=120)
    return child


def count_store_work(gateway: Any, calls: int = 20) -> tuple[float, float]:
    """(transactions, SQL statements) per governed chat call, averaged over ``calls``
    after a warm-up call (the first call of a minute also opens rate-limit windows)."""
    from sqlalchemy import event

    counts = {"tx": 0, "sql": 0}

    def on_begin(_conn: Any) -> None:
        counts["tx"] += 1

    def on_sql(*_a: Any) -> None:
        counts["sql"] += 1

    from workbench.store import HotStatement

    gateway.chat(BODY["messages"], model=MODEL, max_tokens=BODY["max_tokens"])
    engine = gateway.store.engine
    event.listen(engine, "begin", on_begin)
    event.listen(engine, "before_cursor_execute", on_sql)
    hot = HotStatement.executed  # run on the DBAPI cursor: no SQLAlchemy event fires
    try:
        for _ in range(calls):
            gateway.chat(BODY["messages"], model=MODEL, max_tokens=BODY["max_tokens"])
    finally:
        event.remove(engine, "begin", on_begin)
        event.remove(engine, "before_cursor_execute", on_sql)
    counts["sql"] += HotStatement.executed - hot
    return counts["tx"] / calls, counts["sql"] / calls


# -- measurement -------------------------------------------------------------------------
Target = Callable[[int], list[float]]  # n -> latencies in ms


def python_api_target(gw: Any) -> Target:
    def run(n: int) -> list[float]:
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            gw.chat(BODY["messages"], model=MODEL, max_tokens=BODY["max_tokens"])
            out.append((time.perf_counter() - t0) * 1000)
        return out
    return run


def start_floor(work: Path, upstream: str, port: int) -> Child:
    argv = [sys.executable, str(Path(__file__).resolve().parent / "floor_proxy.py"),
            "--port", str(port), "--upstream", upstream]
    child = Child("floor proxy", argv, cwd=work, log=work / "floor.log")
    child.wait_http(f"http://127.0.0.1:{port}/healthz", timeout_s=60)
    return child


def http_target(client: httpx.Client, headers: dict[str, str] | None = None,
                overheads: list[float] | None = None) -> Target:
    def keep(resp: httpx.Response) -> None:
        if overheads is not None and "x-workbench-overhead-ms" in resp.headers:
            overheads.append(float(resp.headers["x-workbench-overhead-ms"]))
    return lambda n: http_latencies(client, "/chat/completions", BODY, n, headers, keep)


def _schema_name(tag: str) -> str:
    return "wb_bench_" + re.sub(r"[^a-z0-9_]", "_", tag.lower())


def scratch_schema(url: str, tag: str) -> str:
    """A fresh schema in the Postgres database for this run (dropped at the end), so the
    run neither reads nor disturbs the tables already there; returns the URL using it."""
    from sqlalchemy import create_engine, text

    from workbench.store import normalize_url

    name = _schema_name(tag)
    engine = create_engine(normalize_url(url))
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {name}"))
    engine.dispose()
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{name}"


def drop_scratch_schema(url: str, tag: str) -> None:
    from sqlalchemy import create_engine, text

    from workbench.store import normalize_url

    engine = create_engine(normalize_url(url))
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {_schema_name(tag)} CASCADE"))
    engine.dispose()


def bench_key(gateway: Any) -> tuple[str, str]:
    """A key with a USD budget and rpm/tpm limits in a team that has them too."""
    gateway.policy.set_team("bench", budget_usd=1_000_000.0, rpm=10_000_000,
                           tpm=2_000_000_000)
    return gateway.policy.create_key(team="bench", models=[MODEL], budget_usd=1_000.0,
                                     rpm=10_000_000, tpm=2_000_000_000)


def measure_latency(targets: dict[str, Target], rounds: int, per_round: int,
                    warmup: int) -> dict[str, list[float]]:
    for fn in targets.values():
        fn(warmup)
    samples: dict[str, list[float]] = {name: [] for name in targets}
    names = list(targets)
    for r in range(rounds):
        # Rotate the order so no target always runs right after the same neighbour.
        for name in names[r % len(names):] + names[:r % len(names)]:
            samples[name] += targets[name](per_round)
    return samples


def measure_throughput(targets: dict[str, tuple[str, dict[str, str]]], *, rounds: int,
                       concurrency: int, duration_s: float) -> dict[str, list[LoadResult]]:
    results: dict[str, list[LoadResult]] = {name: [] for name in targets}
    for url, headers in targets.values():  # warm-up: connections, pools, caches
        load_test(url, "/chat/completions", BODY, concurrency=concurrency,
                  duration_s=min(2.0, duration_s), headers=headers)
    names = list(targets)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            url, headers = targets[name]
            res = load_test(url, "/chat/completions", BODY, concurrency=concurrency,
                            duration_s=duration_s, headers=headers)
            if res.errors:
                print(f"  ! {name}: {res.errors} errors, first: {res.first_error}")
            results[name].append(res)
    return results


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


# -- main --------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="Tiny run for smoke tests.")
    ap.add_argument("--no-litellm", action="store_true", help="Skip the LiteLLM comparison.")
    ap.add_argument("--litellm-venv", type=Path, default=DEFAULT_LITELLM_VENV)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--duration", type=float, default=10.0, help="Seconds per load run.")
    ap.add_argument("--load-rounds", type=int, default=3)
    ap.add_argument("--latency-rounds", type=int, default=5)
    ap.add_argument("--latency-n", type=int, default=200, help="Sequential calls per round.")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--postgres-url", default=os.environ.get("WORKBENCH_BENCH_POSTGRES_URL"),
                    help="Also run the workbench proxy on this PostgreSQL database (in a "
                         "scratch schema created for the run and dropped after it).")
    args = ap.parse_args(argv)
    if args.quick:
        # Complete but short: every target, every table (about a minute without LiteLLM).
        args.duration, args.load_rounds, args.latency_rounds = 3.0, 1, 2
        args.latency_n, args.warmup = 100, 20

    from workbench.config import load_settings
    from workbench.models.gateway import Gateway
    from workbench.store import ledger, reservations

    print("gateway overhead benchmark")
    print(f"machine: {machine_note()}")
    children: list[Child] = []
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp, MockUpstream() as mock:
        work = Path(tmp)
        cfg = write_workbench_config(work, mock.base_url)
        gateway = Gateway(load_settings(cfg, environ={}))
        key_id, secret = bench_key(gateway)
        gw_key = gateway.as_key(secret)
        pg_gateway: Any = None
        try:
            wb_port = free_port()
            children.append(start_workbench(work, cfg, wb_port))
            wb_url = f"http://127.0.0.1:{wb_port}/v1"
            floor_port = free_port()
            children.append(start_floor(work, mock.base_url, floor_port))
            floor_url = f"http://127.0.0.1:{floor_port}/v1"
            pg_url: str | None = None
            pg_secret = ""
            if args.postgres_url:
                from workbench.store import Store

                pg_store_url = scratch_schema(args.postgres_url, work.name)
                pg_gateway = Gateway(load_settings(cfg, environ={}), store=Store(pg_store_url))
                _, pg_secret = bench_key(pg_gateway)
                pg_port = free_port()
                children.append(start_workbench(work, cfg, pg_port, pg_store_url))
                pg_url = f"http://127.0.0.1:{pg_port}/v1"
            litellm_url: str | None = None
            litellm_note = "skipped (--no-litellm)"
            if not args.no_litellm and args.quick and _installed_litellm(args.litellm_venv) is None:
                litellm_note = (f"skipped: {args.litellm_venv} is absent and --quick does not "
                                "build it (a full run does, once)")
            elif not args.no_litellm:
                try:
                    exe = ensure_litellm(args.litellm_venv)
                    ll_port = free_port()
                    children.append(start_litellm(exe, work, mock.base_url, ll_port))
                    litellm_url = f"http://127.0.0.1:{ll_port}/v1"
                    litellm_note = (f"litellm[proxy]=={LITELLM_VERSION}, master key only: "
                                    "virtual keys/budgets/spend logs need Postgres via Prisma "
                                    "(engine binaries download at run time; offline here)")
                except (LitellmUnavailable, RuntimeError, subprocess.CalledProcessError) as exc:
                    litellm_note = f"unavailable: {exc}"
            print(f"upstream: mock at {mock.base_url} (raw asyncio, own process)")
            print("workbench: budgets + rpm/tpm on key and team, guardrails mask, "
                  "SQLite store (WAL), uvicorn 1 process, asyncio loop, h11")
            print("floor: raw ASGI pass-through (floor_proxy.py), uvicorn 1 process, asyncio "
                  "loop, h11, httpx.Client in a worker thread (as ours); no auth, parsing or "
                  "store")
            pg_note = (f"workbench proxy on {args.postgres_url.split('@')[-1]}" if pg_url
                       else "skipped (no --postgres-url)")
            print(f"postgres: {pg_note}")
            print(f"litellm: {litellm_note}")
            tx, sql = count_store_work(gw_key)
            print(f"store work per governed chat call (python api): {tx:.1f} transactions, "
                  f"{sql:.1f} SQL statements (BEGIN counted as a statement on SQLite)")

            auth = {"authorization": f"Bearer {secret}"}
            ll_auth = {"authorization": f"Bearer {LITELLM_MASTER_KEY}"}
            overheads: list[float] = []
            with httpx.Client(base_url=mock.base_url) as c_mock, \
                    httpx.Client(base_url=wb_url) as c_wb, \
                    httpx.Client(base_url=floor_url) as c_floor, \
                    httpx.Client(base_url=litellm_url or mock.base_url, timeout=30) as c_ll:
                lat_targets: dict[str, Target] = {
                    "mock direct": http_target(c_mock),
                    "floor proxy": http_target(c_floor),
                    "python api": python_api_target(gw_key),
                    "workbench proxy": http_target(c_wb, auth, overheads),
                }
                if litellm_url:
                    lat_targets["litellm proxy"] = http_target(c_ll, ll_auth)
                print(f"\nsequential latency: {args.latency_rounds} interleaved rounds x "
                      f"{args.latency_n} calls per target (after {args.warmup} warm-up)",
                      flush=True)
                lat = measure_latency(lat_targets, args.latency_rounds, args.latency_n,
                                      args.warmup)

            base50, base99 = percentile(lat["mock direct"], 50), percentile(lat["mock direct"], 99)
            rows = []
            for name, vals in lat.items():
                p50, p90, p99 = (percentile(vals, q) for q in (50, 90, 99))
                added = (p50 - base50, p99 - base99) if name != "mock direct" else (0.0, 0.0)
                rows.append([name, len(vals), p50, p90, p99, added[0], added[1]])
            print_table("latency, one request at a time (ms; added = target - mock direct, "
                        "per percentile)",
                        ["target", "n", "p50", "p90", "p99", "added p50", "added p99"], rows)

            load_targets = {"mock direct": (mock.base_url, {}), "floor proxy": (floor_url, {}),
                            "workbench proxy": (wb_url, auth)}
            if pg_url:
                load_targets["workbench proxy (postgres)"] = (
                    pg_url, {"authorization": f"Bearer {pg_secret}"})
            if litellm_url:
                load_targets["litellm proxy"] = (litellm_url, ll_auth)
            print(f"\nthroughput: {args.concurrency} concurrent keep-alive clients, "
                  f"{args.load_rounds} interleaved rounds x {args.duration:.0f} s per target",
                  flush=True)
            load = measure_throughput(load_targets, rounds=args.load_rounds,
                                      concurrency=args.concurrency, duration_s=args.duration)
            rows = []
            rps: dict[str, float] = {}
            for name, runs in load.items():
                rps[name] = median([r.rps for r in runs])
                all_lat = [x for r in runs for x in r.latencies_ms]
                rows.append([name, rps[name], " / ".join(f"{r.rps:.0f}" for r in runs),
                             percentile(all_lat, 50), percentile(all_lat, 99),
                             sum(r.errors for r in runs)])
            print_table(f"sustained load at concurrency {args.concurrency} (req/s = median of "
                        "rounds; latency under load in ms)",
                        ["target", "req/s", "each round", "p50", "p99", "errors"], rows)

            print("\nsummary")
            add_py = percentile(lat["python api"], 50) - base50
            add_wb = percentile(lat["workbench proxy"], 50) - base50
            add_wb99 = percentile(lat["workbench proxy"], 99) - base99
            add_fl = percentile(lat["floor proxy"], 50) - base50
            add_fl99 = percentile(lat["floor proxy"], 99) - base99
            print(f"  floor proxy adds     p50 {add_fl:6.2f} ms   p99 {add_fl99:6.2f} ms   "
                  f"sustains {rps['floor proxy']:.0f} req/s @ {args.concurrency}")
            print(f"  python api adds      p50 {add_py:6.2f} ms   "
                  f"p99 {percentile(lat['python api'], 99) - base99:6.2f} ms")
            print(f"  workbench proxy adds p50 {add_wb:6.2f} ms   p99 {add_wb99:6.2f} ms   "
                  f"sustains {rps['workbench proxy']:.0f} req/s @ {args.concurrency} (SQLite)")
            if pg_url:
                print(f"  workbench proxy on PostgreSQL sustains "
                      f"{rps['workbench proxy (postgres)']:.0f} req/s @ {args.concurrency}")
            if overheads:
                print(f"  x-workbench-overhead-ms (server-side, upstream excluded, one at a "
                      f"time): p50 {percentile(overheads, 50):.2f}  p99 "
                      f"{percentile(overheads, 99):.2f}")
            print(f"  governance over the floor: p50 +{add_wb - add_fl:.2f} ms, p99 "
                  f"+{add_wb99 - add_fl99:.2f} ms; added latency ours/floor p50 "
                  f"x{ratio(add_wb, add_fl):.2f}; req/s ours/floor "
                  f"x{ratio(rps['workbench proxy'], rps['floor proxy']):.2f}")
            if litellm_url:
                add_ll = percentile(lat["litellm proxy"], 50) - base50
                add_ll99 = percentile(lat["litellm proxy"], 99) - base99
                print(f"  litellm proxy adds   p50 {add_ll:6.2f} ms   p99 {add_ll99:6.2f} ms   "
                      f"sustains {rps['litellm proxy']:.0f} req/s @ {args.concurrency}")
                print(f"  ours/litellm: added latency p50 x{ratio(add_wb, add_ll):.2f}, "
                      f"p99 x{ratio(add_wb99, add_ll99):.2f} (lower is better); "
                      f"req/s x{ratio(rps['workbench proxy'], rps['litellm proxy']):.2f} "
                      "(higher is better)")
                print(f"  added p50, floor / ours / litellm: {add_fl:.2f} / {add_wb:.2f} / "
                      f"{add_ll:.2f} ms (x1 / x{ratio(add_wb, add_fl):.2f} / "
                      f"x{ratio(add_ll, add_fl):.2f}); req/s {rps['floor proxy']:.0f} / "
                      f"{rps['workbench proxy']:.0f} / {rps['litellm proxy']:.0f}")
            else:
                print(f"  litellm proxy: not measured ({litellm_note})")

            from sqlalchemy import func, select

            with gateway.store.read() as conn:
                n_ledger, spent = conn.execute(select(func.count(), func.sum(ledger.c.cost_usd))
                                               .where(ledger.c.key_id == key_id)).one()
                open_res = conn.execute(select(func.count()).select_from(reservations)).scalar()
            served = (sum(len(v) for k, v in lat.items() if k in ("python api", "workbench proxy"))
                      + sum(r.requests for r in load["workbench proxy"]))
            print(f"  governance check: {n_ledger} ledger rows for the key (>= {served} measured "
                  f"calls + warm-ups), ${spent or 0:.6f} spent, {open_res} open reservations")
        finally:
            for child in reversed(children):
                child.stop()
            gateway.close()
            if pg_gateway is not None:
                pg_gateway.close()
                drop_scratch_schema(args.postgres_url, work.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
