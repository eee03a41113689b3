"""Guardrails cost per KB of text: the current recognizers (Unicode normalisation, digit-
group windows, JSON-escape decoding) against a baseline version of
``workbench/guardrails.py`` loaded from git, both measured in this run.

Texts (each ~``--kb`` KB): ASCII prose without PII (the common case, fast path), prose
with PII, prose with accents and CJK (the per-character path), JSON tool-call arguments
with escapes, and a number-heavy table. Reported: microseconds per KB for ``mask`` (the
median of interleaved rounds, CPU time) for both versions and their ratio, plus the cost of
walking a whole chat request (content, tools, stop, user, ...) with the current code.

    .venv/bin/python benchmarks/guardrails_cost.py                # ~30 s
    .venv/bin/python benchmarks/guardrails_cost.py --quick
    .venv/bin/python benchmarks/guardrails_cost.py --baseline-ref aebe039
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import machine_note, median, print_table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The commit before whole-request redaction and Unicode normalisation.
DEFAULT_BASELINE = "aebe039"

PROSE = ("The quarterly review covered retrieval quality, latency budgets and the new "
         "evaluation suite. Version 2.4.1 shipped on 2024-11-22 with 37 fixes; p95 latency "
         "fell from 840 ms to 610 ms across 12 regions. ")
PII = ("Contact jane.doe@example.com or +44 20 7946 0958; card 4111 1111 1111 1111, "
       "IBAN DE89 3704 0044 0532 0130 00, key sk-proj-abcdefghijklmnopqrstuvwx1234. ")
ACCENTS = ("Économie, café et crème brûlée à Zürich; 東京の会議は午後三時に始まります。"
           "Привет, как дела? Das Treffen ist um 15:30 Uhr. ")
TABLE = "".join(f"{i:04d} {i * 37 % 1000:03d} {i * 7919 % 100000:05d} 0.{i * 97:06d}\n"
                for i in range(200))


def texts(kb: int) -> dict[str, str]:
    def fill(unit: str) -> str:
        return (unit * (kb * 1024 // len(unit.encode()) + 1))[: kb * 1024]

    args = json.dumps({"notes": fill(PROSE + ACCENTS)[: kb * 512], "who": "jane\u200bdoe"})
    return {"ascii prose, no PII": fill(PROSE), "prose with PII": fill(PROSE * 3 + PII),
            "accents + CJK": fill(ACCENTS), "JSON with escapes": args[: kb * 1024],
            "number table": fill(TABLE)}


# Where the module lived at a ref: it moved out of models/ when it became a leaf.
PATHS = ("workbench/guardrails.py", "workbench/models/guardrails.py")


def load_baseline(ref: str) -> Any | None:
    src = None
    for path in PATHS:
        try:
            src = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:{path}"],
                                 check=True, capture_output=True, text=True).stdout
            break
        except (OSError, subprocess.CalledProcessError) as exc:
            failure = type(exc).__name__
    if src is None:
        print(f"baseline {ref}: not measured ({failure}: not a git checkout or unknown ref)")
        return None
    mod = types.ModuleType("guardrails_baseline")
    sys.modules[mod.__name__] = mod  # dataclasses look their module up there
    exec(compile(src, f"{ref}:guardrails.py", "exec"), mod.__dict__)  # noqa: S102 - our own file
    return mod


def per_kb(fn: Callable[[str], Any], text: str, n: int) -> float:
    # CPU time of this process, not wall time: on a shared 2-core machine the wall clock
    # mostly measures other processes' load.
    t0 = time.process_time()
    for _ in range(n):
        fn(text)
    return (time.process_time() - t0) / n * 1e6 / (len(text.encode()) / 1024)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="Tiny run for smoke tests.")
    ap.add_argument("--kb", type=int, default=16, help="Size of each text in KB.")
    ap.add_argument("--rounds", type=int, default=9, help="Interleaved rounds.")
    ap.add_argument("--baseline-ref", default=DEFAULT_BASELINE,
                    help="git ref of the guardrails.py to compare against.")
    args = ap.parse_args(argv)
    if args.quick:
        args.kb, args.rounds = 2, 3

    from workbench.guardrails import Guardrails
    from workbench.models.redaction import redact_request

    current = Guardrails()
    base_mod = load_baseline(args.baseline_ref)
    baseline = base_mod.Guardrails() if base_mod else None
    samples = texts(args.kb)
    n = 5 if args.quick else 20
    timings: dict[tuple[str, str], list[float]] = {}
    for text in samples.values():  # warm up: regex compilation, the fold table, caches
        current.mask(text)
        if baseline is not None:
            baseline.mask(text)
    for _ in range(args.rounds):  # interleaved, so machine noise hits both alike
        for name, text in samples.items():
            timings.setdefault((name, "now"), []).append(per_kb(current.mask, text, n))
            if baseline is not None:
                timings.setdefault((name, "base"), []).append(per_kb(baseline.mask, text, n))
    rows = []
    for name in samples:
        now = median(timings[(name, "now")])
        base = median(timings[(name, "base")]) if baseline is not None else float("nan")
        rows.append([name, base, now, now / base if baseline is not None else float("nan")])
    print(machine_note())
    print_table(f"Guardrails.mask, us per KB (median of {args.rounds} rounds, "
                f"{args.kb} KB texts; baseline = {args.baseline_ref})",
                ["text", "baseline us/KB", "now us/KB", "ratio now/base"], rows)

    body = {"model": "m", "user": "u-123", "stop": ["END"], "max_tokens": 64,
            "messages": [{"role": "system", "content": PROSE * 2},
                         {"role": "user", "content": PROSE + PII}],
            "tools": [{"type": "function", "function": {
                "name": f"tool_{i}", "description": PROSE[:120],
                "parameters": {"type": "object", "properties": {
                    "q": {"type": "string", "description": "what to look up"}}}}}
                for i in range(5)]}
    size_kb = len(json.dumps(body).encode()) / 1024

    def content_only(guard: Any) -> Callable[[str], Any]:
        # What the Gateway masked before: message content strings only.
        return lambda _: [guard.apply(m["content"], "mask") for m in body["messages"]]

    # per_kb of a 1 KB dummy argument is microseconds per call.
    walk: dict[str, list[float]] = {"now": [], "base": []}
    for _ in range(args.rounds):
        walk["now"].append(per_kb(lambda _: redact_request(current, body, "mask"), "x" * 1024,
                                  n * 5))
        if baseline is not None:
            walk["base"].append(per_kb(content_only(baseline), "x" * 1024, n * 5))
    now_us = median(walk["now"])
    base_us = median(walk["base"]) if baseline is not None else float("nan")
    print_table(f"One {size_kb:.1f} KB chat request (2 messages, 5 tools, stop, user), us per "
                "request", ["what is masked", "us/request", "us/KB"],
                [["baseline: message content only", base_us, base_us / size_kb],
                 ["now: every string of the body", now_us, now_us / size_kb]])
    print(f"ratio now/base per request: {now_us / base_us:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
