"""Tracing overhead: per-span cost on the request path, per Gateway call, and its share
of an embedded-model request. Baselines are measured in the same run.

Measured:
  span, no tracer          ``contextlib.nullcontext()``: the loop's own cost
  span, tracing off        a workbench Tracer with tracing disabled (ids still flow)
  span, local store        a workbench span (+3 attributes) queued for the SQL span store
  span, store + OTLP down  the same with an OTLP exporter to a closed port (drops, counted)
  store write, background  the exporter thread's cost per span (flush time / spans)
  gateway call on/off      ``Gateway.chat`` with a fake provider, tracing on vs off: the
                           whole per-call cost (LLM span, redacted messages, attributes)
  embedded request         ``Gateway.chat`` on smollm2-135m (max_tokens=16), on vs off
                           interleaved; share = per-call tracing cost / request latency

    .venv/bin/python benchmarks/tracing_bench.py            # ~1-2 min
    .venv/bin/python benchmarks/tracing_bench.py --quick
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import median, print_table  # noqa: E402

from tests.fakes import FakeProvider  # noqa: E402
from workbench.config import load_settings  # noqa: E402
from workbench.models.gateway import Gateway  # noqa: E402
from workbench.observability import tracing  # noqa: E402
from workbench.store import Store  # noqa: E402


def per_span_us(make_span: Any, n: int, rounds: int) -> float:
    results = []
    for _ in range(rounds):
        t = time.perf_counter()
        for i in range(n):
            with make_span(i) as s:
                if s is not None:
                    s.set("input.value", "what is x?").set("llm.model_name", "m").set("k", i)
        results.append((time.perf_counter() - t) / n * 1e6)
    return median(results)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gateway(data: Path, tracing_on: bool, embedded: bool = False) -> Gateway:
    if embedded:
        settings = load_settings(data_dir=data, tracing=tracing_on)
        return Gateway(settings)
    settings = load_settings(data_dir=data, tracing=tracing_on, chat_model="fake-chat",
                             models=[{"name": "fake-chat", "provider": "fake"}])
    return Gateway(settings, providers={"fake": FakeProvider(text="a short answer")})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="Tiny run (smoke test).")
    ap.add_argument("--no-embedded", action="store_true", help="Skip the embedded model.")
    args = ap.parse_args()
    n, rounds = (500, 3) if args.quick else (5000, 5)
    calls = 50 if args.quick else 400
    emb_runs = 2 if args.quick else 8

    tmp = Path(tempfile.mkdtemp(prefix="wb-tracing-bench-"))
    store = Store(f"sqlite:///{tmp / 'spans.db'}")
    off = tracing.Tracer(store, enabled=False)
    on = tracing.Tracer(store)
    down = tracing.Tracer(store, otlp_endpoint=f"http://127.0.0.1:{closed_port()}",
                          otlp_timeout_s=0.2)

    base = per_span_us(lambda i: contextlib.nullcontext(), n, rounds)
    disabled = per_span_us(lambda i: off.span(f"s{i}"), n, rounds)
    local = per_span_us(lambda i: on.span(f"s{i}"), n, rounds)
    t = time.perf_counter()
    on.flush(120)
    flush_s = time.perf_counter() - t
    with_otlp = per_span_us(lambda i: down.span(f"s{i}"), n, rounds)
    down.flush(60)
    stats = down.stats()
    written = on.stats()["store"]["exported"]
    bg_us = flush_s / max(written, 1) * 1e6  # lower bound: most rows were written earlier

    # Gateway calls with a fake provider: the whole tracing cost per call.
    gw_on, gw_off = gateway(tmp / "on", True), gateway(tmp / "off", False)
    per_call: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(rounds):
        for label, gw in (("off", gw_off), ("on", gw_on)):
            t = time.perf_counter()
            for _ in range(calls):
                gw.chat("Email jane@example.com: what is x?", max_tokens=8)
            per_call[label].append((time.perf_counter() - t) / calls * 1e6)
    call_on, call_off = median(per_call["on"]), median(per_call["off"])
    tracing.tracer_for(gw_on.store).flush(60)

    rows = [["span, no tracer (loop baseline)", base, 1.0],
            ["span, tracing off", disabled, disabled / base],
            ["span, local store (request path)", local, local / base],
            ["span, store + OTLP unreachable", with_otlp, with_otlp / base],
            ["store write per span (background)", bg_us, float("nan")],
            ["gateway.chat, fake provider, tracing off", call_off, 1.0],
            ["gateway.chat, fake provider, tracing on", call_on, call_on / call_off]]
    print_table(f"tracing overhead (median of {rounds} rounds; {n} spans, {calls} calls)",
                ["what", "us", "x baseline"], rows)
    print(f"\nper-span cost over the loop baseline (us)  {local - base:.1f}")
    print(f"per-call tracing cost (us)  {call_on - call_off:.1f}")
    print(f"otlp unreachable: exported={stats['otlp']['exported']} "
          f"failed={stats['otlp']['failed']} dropped={stats['otlp']['dropped']} "
          f"(local store exported={stats['store']['exported']})")

    if args.no_embedded:
        return
    emb_on, emb_off = gateway(tmp / "emb-on", True, True), gateway(tmp / "emb-off", False, True)
    prompt = "What is a vector database used for? Answer in one sentence."
    for gw in (emb_on, emb_off):  # load the model, warm the prompt cache
        gw.chat(prompt, max_tokens=16, temperature=0)
    lat: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(emb_runs):
        for label, gw in (("off", emb_off), ("on", emb_on)):
            t = time.perf_counter()
            gw.chat(prompt, max_tokens=16, temperature=0)
            lat[label].append((time.perf_counter() - t) * 1000)
    med_on, med_off = median(lat["on"]), median(lat["off"])
    share = (call_on - call_off) / 1000 / med_off * 100
    print_table(f"embedded request (smollm2-135m, max_tokens=16, {emb_runs} interleaved runs)",
                ["tracing", "p50 ms"], [["off", med_off], ["on", med_on]])
    print(f"\ntracing share of an embedded request (%)  {share:.4f}")
    print(f"direct A/B difference (ms, noise-dominated)  {med_on - med_off:.1f}")


if __name__ == "__main__":
    main()
