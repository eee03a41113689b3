"""Tracing overhead: per-span cost on the request path, per Gateway call, and its share
of an embedded-model request. Baselines are measured in the same run.

Measured:
  span, no tracer          ``contextlib.nullcontext()``: the loop's own cost
  span, tracing off        a workbench Tracer with tracing disabled (ids still flow)
  span, raw OTel SDK       ``start_as_current_span`` on a bare SDK TracerProvider (no
                           processor): the floor any OTel-based tracer pays
  span, local store        a workbench span (+3 attributes) queued for the SQL span store;
                           the writer thread is held back during the loop, so this is the
                           caller's cost alone
  store write, background  the writer thread's cost per span (time to drain the queue)
  span, store + OTLP down  a span with the writer running and an OTLP exporter to a closed
                           port (failed batches counted): what a burst costs the caller
                           when it shares 2 cores with both export threads
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
import os
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


class _SdkSpan:
    """Adapts an SDK span context manager to the ``.set`` calls of the timing loop."""

    def __init__(self, cm: Any):
        self.cm = cm

    def __enter__(self) -> _SdkSpan:
        self.span = self.cm.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cm.__exit__(*exc)

    def set(self, key: str, value: Any) -> _SdkSpan:
        self.span.set_attribute(key, value)
        return self


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
    from opentelemetry.sdk.trace import TracerProvider

    sdk_tracer = TracerProvider().get_tracer("bench")
    sdk = per_span_us(lambda i: _SdkSpan(sdk_tracer.start_as_current_span(f"s{i}")), n, rounds)
    writer = on.processors["store"]
    # Hold the writer back (it wakes only for a full batch or on flush) to time the two
    # halves of a span's cost separately on this 2-core machine.
    writer.batch_size, writer.delay_s, writer.max_queue = 10**9, 3600.0, 10**9
    local = per_span_us(lambda i: on.span(f"s{i}"), n, rounds)
    queued = writer.stats()["queued"]
    writer.batch_size = 512
    t = time.perf_counter()
    on.flush(300)
    bg_us = (time.perf_counter() - t) / max(queued, 1) * 1e6
    with_otlp = per_span_us(lambda i: down.span(f"s{i}"), n, rounds)
    down.flush(60)
    stats = down.stats()

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
            ["span, raw OTel SDK (no processor)", sdk, sdk / base],
            ["span, local store (caller)", local, local / base],
            ["store write per span (background)", bg_us, float("nan")],
            ["span, burst with store + OTLP down", with_otlp, with_otlp / base],
            ["gateway.chat, fake provider, tracing off", call_off, 1.0],
            ["gateway.chat, fake provider, tracing on", call_on, call_on / call_off]]
    print_table(f"tracing overhead (median of {rounds} rounds; {n} spans, {calls} calls)",
                ["what", "us", "x baseline"], rows)
    print(f"\nper-span cost over the loop baseline (us)  {local - base:.1f}")
    print(f"per-span cost incl. background write (us)  {local - base + bg_us:.1f}")
    print(f"workbench span / raw OTel SDK span  {(local - base) / (sdk - base):.2f}")
    print(f"per-call tracing cost (us)  {call_on - call_off:.1f}")
    print(f"otlp unreachable: exported={stats['otlp']['exported']} "
          f"failed={stats['otlp']['failed']} dropped={stats['otlp']['dropped']} "
          f"(local store exported={stats['store']['exported']})")

    print(f"load average during the run  {os.getloadavg()[0]:.2f}")
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
    share_span = (local - base + bg_us) / 1000 / med_off * 100
    print_table(f"embedded request (smollm2-135m, max_tokens=16, {emb_runs} interleaved runs)",
                ["tracing", "p50 ms"], [["off", med_off], ["on", med_on]])
    print(f"\ntracing share of an embedded request (%)  {share:.4f}")
    print(f"one span's share of an embedded request (%)  {share_span:.4f}")
    print(f"direct A/B difference (ms, noise-dominated)  {med_on - med_off:.1f}")


if __name__ == "__main__":
    main()
