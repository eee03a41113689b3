"""Embedded model: tokens/s through the Gateway vs raw llama-cpp-python, in the same run.

Two worker processes load the same GGUF (``smollm2_path()``) the same way (n_ctx 2048,
n_threads 2, n_threads_batch 2, logits_all off) and answer the same prompt at
temperature 0 with the same max_tokens:

  raw      ``Llama.create_chat_completion(...)``
  gateway  ``workbench`` Gateway bound to a key with a budget and rpm/tpm limits
           (``gateway.as_key(key).chat(...)``): policy, guardrails, ledger included

Repetitions are interleaved (raw, gateway, gateway, raw, ...) and only one worker runs
at a time, so both see the same machine; figures are medians. Time to first token uses
``gateway.stream`` vs ``create_chat_completion(stream=True)`` with a prompt that differs
per repetition at its start, so each one pays for prompt processing. Peak RSS is each
worker's ``ru_maxrss``. Goal: gateway tokens/s within 5% of raw.

    .venv/bin/python benchmarks/embedded_throughput.py          # full run (~2 min)
    .venv/bin/python benchmarks/embedded_throughput.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from _common import machine_note, median, print_table

MODEL = "smollm2-135m"
PROMPT = ("Write a short story about a lighthouse keeper who finds a message in a bottle. "
          "Describe the sea, the weather and what the message says.")
TTFT_PROMPT = ("Request {i}. Summarise in two sentences why lighthouses were important for "
               "ships before satellite navigation, and who kept them running.")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# -- workers -----------------------------------------------------------------------------
class RawWorker:
    def __init__(self, n_threads: int):
        from llama_cpp import Llama

        from workbench.models.embedded import smollm2_path

        self.llm = Llama(model_path=str(smollm2_path()), n_ctx=2048, n_threads=n_threads,
                         n_threads_batch=n_threads, verbose=False, logits_all=False)

    def run(self, max_tokens: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        resp: Any = self.llm.create_chat_completion(
            messages=[{"role": "user", "content": PROMPT}], max_tokens=max_tokens,
            temperature=0.0)
        dt = time.perf_counter() - t0
        return {"seconds": dt, "tokens": resp["usage"]["completion_tokens"],
                "text": resp["choices"][0]["message"]["content"]}

    def ttft(self, i: int, max_tokens: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        first = None
        it: Any = self.llm.create_chat_completion(
            messages=[{"role": "user", "content": TTFT_PROMPT.format(i=i)}],
            max_tokens=max_tokens, temperature=0.0, stream=True)
        for chunk in it:
            if first is None and chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                first = time.perf_counter() - t0
        return {"ttft": first, "seconds": time.perf_counter() - t0}


class GatewayWorker:
    def __init__(self, n_threads: int, data_dir: Path, lag64: bool = False):
        from workbench.config import Settings
        from workbench.models.gateway import Gateway

        # Settings built directly: no workbench.toml or WORKBENCH_* from the caller.
        self.base = Gateway(Settings(profile="embedded", data_dir=data_dir, n_threads=n_threads))
        self.base.policy.set_team("bench", budget_usd=100.0, rpm=100_000, tpm=100_000_000)
        _key_id, secret = self.base.policy.create_key(
            team="bench", models=[MODEL], budget_usd=10.0, rpm=100_000, tpm=100_000_000)
        self.gw = self.base.as_key(secret)
        if lag64:
            # The stream redactor as it was: a fixed 64-character lag (what custom
            # recognizers still get), for a same-run comparison of time to first token.
            self.base.guardrails.known_shapes = False

    def run(self, max_tokens: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        res = self.gw.chat(PROMPT, model=MODEL, max_tokens=max_tokens, temperature=0.0)
        dt = time.perf_counter() - t0
        return {"seconds": dt, "tokens": res.usage["completion_tokens"], "text": res.text}

    def ttft(self, i: int, max_tokens: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        first = None
        stream = self.gw.stream(TTFT_PROMPT.format(i=i), model=MODEL, max_tokens=max_tokens,
                                temperature=0.0)
        for _piece in stream.text():
            if first is None:
                first = time.perf_counter() - t0
        return {"ttft": first, "seconds": time.perf_counter() - t0}


def worker_main(kind: str, n_threads: int) -> int:
    # stdout carries the protocol only: anything a native library prints goes to stderr.
    proto: IO[str] = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    with tempfile.TemporaryDirectory(prefix="wb-embed-") as tmp:
        t0 = time.perf_counter()
        worker = (RawWorker(n_threads) if kind == "raw"
                  else GatewayWorker(n_threads, Path(tmp), lag64=kind == "gateway-lag64"))
        worker.run(8)  # load the weights and warm the caches
        proto.write(json.dumps({"ready": True, "load_s": time.perf_counter() - t0,
                                "rss_after_load_mb": _rss_mb()}) + "\n")
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd["op"] == "run":
                out = worker.run(cmd["max_tokens"])
            elif cmd["op"] == "ttft":
                out = worker.ttft(cmd["i"], cmd["max_tokens"])
            elif cmd["op"] == "rss":
                out = {"peak_rss_mb": _rss_mb()}
            else:
                break
            proto.write(json.dumps(out) + "\n")
    return 0


class Worker:
    def __init__(self, kind: str, n_threads: int):
        self.kind = kind
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", kind, "--threads", str(n_threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.ready = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.kind} worker died (exit {self.proc.wait()})")
        result: dict[str, Any] = json.loads(line)
        return result

    def ask(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


# -- driver ------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="Tiny run for smoke tests.")
    ap.add_argument("--reps", type=int, default=9, help="Interleaved repetitions per side.")
    ap.add_argument("--ttft-reps", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ttft-only", action="store_true",
                    help="Only time to first token: raw, gateway, and gateway with the old "
                         "64-character redactor lag (gateway-lag64).")
    ap.add_argument("--worker", choices=["raw", "gateway", "gateway-lag64"],
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(args.worker, args.threads)
    if args.quick:
        args.reps, args.ttft_reps, args.max_tokens = 2, 1, 8

    from workbench.models.embedded import smollm2_path

    print("embedded throughput benchmark")
    print(f"machine: {machine_note()}")
    print(f"model: {smollm2_path().name}, n_threads={args.threads}, temperature 0, "
          f"max_tokens={args.max_tokens}, {args.reps} interleaved reps")
    if args.ttft_only:
        return ttft_only(args)
    workers = {"raw": Worker("raw", args.threads), "gateway": Worker("gateway", args.threads)}
    try:
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in workers}
        for rep in range(args.reps):
            order = ["raw", "gateway"] if rep % 2 == 0 else ["gateway", "raw"]
            for kind in order:
                runs[kind].append(workers[kind].ask(op="run", max_tokens=args.max_tokens))
            print(f"  [progress] rep {rep + 1}/{args.reps}: "
                  + ", ".join(f"{k} {runs[k][-1]['tokens'] / runs[k][-1]['seconds']:.1f} tok/s"
                              for k in order), file=sys.stderr, flush=True)
        ttfts: dict[str, list[dict[str, Any]]] = {k: [] for k in workers}
        for rep in range(args.ttft_reps):
            order = ["raw", "gateway"] if rep % 2 == 0 else ["gateway", "raw"]
            for kind in order:
                ttfts[kind].append(workers[kind].ask(op="ttft", i=rep,
                                                     max_tokens=args.max_tokens))
        peaks = {k: w.ask(op="rss")["peak_rss_mb"] for k, w in workers.items()}
    finally:
        for w in workers.values():
            w.close()

    rows = []
    tps: dict[str, float] = {}
    for kind in workers:
        rs = runs[kind]
        tps[kind] = median([r["tokens"] / r["seconds"] for r in rs])
        rows.append([kind, median([r["tokens"] for r in rs]), median([r["seconds"] for r in rs]),
                     tps[kind], median([t["ttft"] * 1000 for t in ttfts[kind]]),
                     workers[kind].ready["load_s"], workers[kind].ready["rss_after_load_mb"],
                     peaks[kind]])
    print_table("per call (medians)",
                ["path", "tokens", "seconds", "tokens/s", "ttft ms", "load s",
                 "rss loaded MB", "peak rss MB"], rows)
    same = [r["text"] for r in runs["raw"]] == [r["text"] for r in runs["gateway"]]
    ratio = tps["gateway"] / tps["raw"]
    overhead_ms = (median([r["seconds"] for r in runs["gateway"]])
                   - median([r["seconds"] for r in runs["raw"]])) * 1000
    print("\nsummary")
    print(f"  same output text on both paths: {same}")
    # Rep i of each path ran back to back, so their ratio cancels slow swings in machine load.
    paired = median([(g["tokens"] / g["seconds"]) / (r["tokens"] / r["seconds"])
                     for r, g in zip(runs["raw"], runs["gateway"], strict=True)])
    print(f"  gateway/raw tokens/s: {ratio:.3f} ({(ratio - 1) * 100:+.1f}%; goal within 5%: "
          f"{'met' if ratio >= 0.95 else 'NOT met'}); median of paired per-rep ratios: "
          f"{paired:.3f}")
    print(f"  gateway time added per call (median difference): {overhead_ms:.1f} ms")
    for kind in workers:
        each = " ".join(f"{r['tokens'] / r['seconds']:.1f}" for r in runs[kind])
        print(f"  tokens/s per rep, {kind}: {each}")
    return 0


def ttft_only(args: argparse.Namespace) -> int:
    """Time to first visible token, raw vs gateway vs gateway with the old lag; each
    repetition runs the three back to back (rotating), so paired differences cancel load."""
    kinds = ["raw", "gateway", "gateway-lag64"]
    workers = {k: Worker(k, args.threads) for k in kinds}
    out: dict[str, list[float]] = {k: [] for k in kinds}
    try:
        for rep in range(args.ttft_reps):
            for kind in kinds[rep % 3:] + kinds[:rep % 3]:
                res = workers[kind].ask(op="ttft", i=rep, max_tokens=args.max_tokens)
                out[kind].append(res["ttft"] * 1000)
    finally:
        for w in workers.values():
            w.close()
    print_table("time to first visible token (ms)", ["path", "median", "each"],
                [[k, median(v), " ".join(f"{x:.0f}" for x in v)] for k, v in out.items()])
    for kind in kinds[1:]:
        diffs = [g - r for r, g in zip(out["raw"], out[kind], strict=True)]
        print(f"  {kind} - raw, paired median: {median(diffs):+.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
