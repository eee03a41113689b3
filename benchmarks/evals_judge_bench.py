"""What an LLM-judge eval costs on the embedded model, and what the judge cache saves.

Measures, on the shipped sample golden set (recorded answers, so only the judge runs):
1. model calls and prompt/completion tokens per sample per metric (from the proxy's
   responses, the same numbers the ledger has);
2. answer relevancy at ragas' default strictness 3 against the workbench's 1;
3. wall time and CPU time of an N-sample, 4-metric eval (cold judge cache);
4. the unchanged re-run: judge calls (goal 0) and wall time (goal < 5 s), and its ratio
   to the cold run measured in the same process.

    .venv/bin/python benchmarks/evals_judge_bench.py              # 5 samples
    .venv/bin/python benchmarks/evals_judge_bench.py --quick      # 1 sample, 2 metrics

The machine is shared: wall times move with the load; CPU seconds (this process: the
embedded model runs in-process) and the call/token counts do not.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt, print_table  # noqa: E402

METRICS = ["faithfulness", "answer_relevancy", "context_precision", "context_recall"]


def timed(fn: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def per_metric(run: Any) -> list[list[Any]]:
    rows = []
    by: dict[str, list[Any]] = defaultdict(list)
    for s in run.scores:
        if s.kind == "judge":
            by[s.metric].append(s)
    for metric, scores in by.items():
        fresh = [s for s in scores if not s.cached]
        n = len(fresh) or 1
        rows.append([metric, len(scores), sum(s.calls - s.embed_calls for s in fresh) / n,
                     sum(s.embed_calls for s in fresh) / n, sum(s.prompt_tokens for s in fresh) / n,
                     sum(s.completion_tokens for s in fresh) / n,
                     statistics.median([s.latency_ms / 1000 for s in fresh]) if fresh else 0.0,
                     sum(s.status == "failed" for s in scores),
                     sum(s.status == "ok" for s in scores)])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="1 sample, 2 metrics (smoke run)")
    ap.add_argument("--no-strictness", action="store_true", help="skip the strictness-3 run")
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = ap.parse_args()
    samples = 1 if args.quick else args.samples
    metrics = ["answer_relevancy", "context_recall"] if args.quick else METRICS

    tmp = tempfile.mkdtemp(prefix="wb-evals-bench-")
    os.environ["WORKBENCH_DATA_DIR"] = str(Path(tmp) / ".workbench")
    from workbench.api import connect
    from workbench.evals import Judge, evaluate, load

    gw = connect()
    ds = load("sample").head(samples)
    gw.embed("warm up")  # load MiniLM outside the timings
    gw.chat("hi", max_tokens=1)  # and SmolLM2

    def run_eval(**judge_kw: Any) -> Any:
        with Judge(gw, **judge_kw) as judge:
            return evaluate(ds, metrics=metrics, gateway=gw, judge=judge, save=False)

    cold, cold_wall, cold_cpu = timed(run_eval)
    warm, warm_wall, warm_cpu = timed(run_eval)
    headers = ["metric", "samples", "LLM calls/sample", "embed calls/sample", "prompt tok/sample",
               "completion tok/sample", "median s/sample", "failed", "ok"]
    print(f"judge {cold.config['judge']['model']} (embedded={cold.config['judge']['embedded']}), "
          f"max_tokens {cold.config['judge']['max_tokens']}, context chars "
          f"{cold.config['judge']['max_context_chars']}, {samples} sample(s)")
    print_table("Cost per sample per metric (cold cache)", headers, per_metric(cold))
    failures = [f"{s.sample_id}/{s.metric}: {s.reason}" for s in cold.failures()]
    if failures:
        print("\njudge failures (reported per row, never averaged):")
        for f in failures:
            print("  -", f[:200])

    strict_rows: list[list[Any]] = []
    if not args.no_strictness and "answer_relevancy" in metrics:
        def strict3() -> Any:
            with Judge(gw, options={"answer_relevancy": {"strictness": 3}}) as judge:
                return evaluate(ds, metrics=["answer_relevancy"], gateway=gw, judge=judge,
                                save=False)

        s3, s3_wall, _ = timed(strict3)
        one = next(r for r in per_metric(cold) if r[0] == "answer_relevancy")
        three = per_metric(s3)[0]
        strict_rows = [["strictness 1 (workbench)", *one[2:7]],
                       ["strictness 3 (ragas default)", *three[2:7]],
                       ["ratio 3/1", *[b / a if a else float("nan")
                                       for a, b in zip(one[2:7], three[2:7], strict=True)]]]
        print_table("answer_relevancy: strictness 3 vs 1 (per sample)",
                    ["setting", "LLM calls", "embed calls", "prompt tokens", "completion tokens",
                     "median s"], strict_rows)

    u_cold, u_warm = cold.usage, warm.usage
    print_table(f"{samples}-sample, {len(metrics)}-metric eval on the embedded model",
                ["run", "wall s", "cpu s", "model calls", "of which embed", "prompt tokens",
                 "cache hits", "failed"],
                [["cold cache", cold_wall, cold_cpu, u_cold["judge_calls"],
                  u_cold["judge_embed_calls"], u_cold["judge_prompt_tokens"], u_cold["cache_hits"],
                  u_cold["failed"]],
                 ["unchanged re-run", warm_wall, warm_cpu, u_warm["judge_calls"],
                  u_warm["judge_embed_calls"], u_warm["judge_prompt_tokens"], u_warm["cache_hits"],
                  u_warm["failed"]]])
    print(f"\nre-run / cold wall time: {fmt(warm_wall / cold_wall, 4)} "
          f"({fmt(cold_wall / max(warm_wall, 1e-9), 0)}x faster); re-run judge calls: "
          f"{u_warm['judge_calls']} (goal 0), re-run wall: {fmt(warm_wall)} s (goal < 5 s)")
    if args.json:
        print(json.dumps({"samples": samples, "metrics": metrics,
                          "per_metric": per_metric(cold), "strictness": strict_rows,
                          "cold": {"wall_s": cold_wall, "cpu_s": cold_cpu, **u_cold},
                          "rerun": {"wall_s": warm_wall, "cpu_s": warm_cpu, **u_warm}},
                         default=str))
    gw.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
