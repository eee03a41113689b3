"""``import workbench`` time: a fresh interpreter importing workbench vs a bare one.

Wall time of ``python -c "import workbench"`` minus ``python -c "pass"`` (medians over
interleaved runs), plus the biggest entries of ``python -X importtime`` so a regression
points at its module. For context it also times the first use of the lazy public API
(``workbench.Gateway``, which pulls in SQLAlchemy, pydantic and httpx). Goal: < 0.3 s.

    .venv/bin/python benchmarks/import_time.py             # full run (~30 s)
    .venv/bin/python benchmarks/import_time.py --quick
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from _common import machine_note, median, percentile, print_table

GOAL_S = 0.3
SNIPPETS = {
    "bare interpreter": "pass",
    "import workbench": "import workbench",
    "workbench.Gateway (lazy)": "import workbench; workbench.Gateway",
}


def _env() -> dict[str, str]:
    # Users run with bytecode caching; a PYTHONDONTWRITEBYTECODE=1 shell (some CI images)
    # would recompile the workbench sources in every fresh interpreter.
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=_env())
    return time.perf_counter() - t0


def importtime(code: str) -> list[tuple[int, int, str]]:
    """(self us, cumulative us, module) lines of ``-X importtime``."""
    res = subprocess.run([sys.executable, "-X", "importtime", "-c", code], check=True,
                         capture_output=True, text=True, env=_env())
    out = []
    for line in res.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, name = line[len("import time:"):].split("|", 2)
        out.append((int(self_us), int(cum_us), name.rstrip()))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="Tiny run for smoke tests.")
    ap.add_argument("-n", type=int, default=21, help="Runs per snippet (interleaved).")
    ap.add_argument("--top", type=int, default=12, help="Slowest imports to list.")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.top = 3, 5

    print("import time benchmark")
    print(f"machine: {machine_note()}")
    print(f"python: {sys.executable} ({sys.version.split()[0]})")
    for code in SNIPPETS.values():  # warm the page cache and __pycache__
        wall(code)
    times: dict[str, list[float]] = {name: [] for name in SNIPPETS}
    for _ in range(args.n):
        for name, code in SNIPPETS.items():
            times[name].append(wall(code))

    bare = median(times["bare interpreter"])
    rows = []
    for name, vals in times.items():
        med = median(vals)
        rows.append([name, len(vals), med * 1000, percentile(vals, 90) * 1000,
                     (med - bare) * 1000 if name != "bare interpreter" else 0.0])
    print_table("fresh interpreter wall time (ms)",
                ["snippet", "n", "median", "p90", "minus bare"], rows)

    lines = importtime("import workbench")
    top_level = [cum for _s, cum, name in lines if name.strip() == "workbench"]
    ours = sorted(lines, key=lambda x: x[0], reverse=True)
    print(f"\n-X importtime for `import workbench`: cumulative {top_level[0] / 1000:.1f} ms "
          f"for the workbench package" if top_level else "\n(workbench not in -X importtime)")
    print_table(f"largest self times (top {args.top})", ["module", "self ms", "cumulative ms"],
                [[n.strip(), s / 1000, c / 1000] for s, c, n in ours[:args.top]])
    heavy = sorted({n.strip().split(".")[0] for _s, _c, n in lines}
                   & {"llama_cpp", "lancedb", "ragas", "pandas", "onnxruntime", "llama_index",
                      "pyarrow", "torch", "sqlalchemy", "numpy", "httpx", "fastapi"})
    added = median(times["import workbench"]) - bare
    print("\nsummary")
    print(f"  import workbench adds {added * 1000:.0f} ms to a bare interpreter "
          f"(goal < {GOAL_S * 1000:.0f} ms: {'met' if added < GOAL_S else 'NOT met'})")
    print(f"  heavy packages imported by `import workbench`: {', '.join(heavy) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
