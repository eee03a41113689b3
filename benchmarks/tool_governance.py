"""What tools cost, measured against same-run baselines.

1. Gateway (Python API, a key with a tool allowlist, SQLite store) against the mock
   OpenAI-compatible upstream: a plain chat call vs the same call offering two allowed
   tools (the allowlist read and the request check are the difference). Rounds are
   interleaved so machine noise hits both alike.
2. The embedded model (SmolLM2 135M): a short plain answer vs a schema-constrained tool
   call (``tool_choice="required"``: grammar built from the tools' schemas).

    .venv/bin/python benchmarks/tool_governance.py            # full run (~2-4 min idle)
    .venv/bin/python benchmarks/tool_governance.py --quick --no-embedded
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import machine_note, median, percentile, print_table  # noqa: E402
from mock_upstream import MockUpstream  # noqa: E402

TOOLS = [{"type": "function", "function": {
    "name": name, "description": f"The {name} tool.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}} for name in ("get_weather", "get_time")]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def gateway_part(rounds: int, per_round: int) -> None:
    import workbench
    from workbench.models.tools import set_allowlist

    with MockUpstream() as mock, tempfile.TemporaryDirectory() as tmp:
        gw = workbench.connect(data_dir=str(Path(tmp) / "data"), profile="mock", profiles={
            "mock": {"base_url": mock.base_url, "chat_model": "mock-model",
                     "models": [{"name": "mock-model", "provider": "mock"}]}})
        key_id, key = gw.policy.create_key(team="bench", budget_usd=100.0, rpm=100_000)
        set_allowlist(gw.store, "key", key_id, ["get_weather", "get_time"])
        as_key = gw.as_key(key)
        plain: list[float] = []
        tools: list[float] = []
        as_key.chat(ASK, max_tokens=16)  # warm the connection pool and statements
        as_key.chat(ASK, max_tokens=16, tools=TOOLS)
        for _ in range(rounds):
            for samples, extra in ((plain, {}), (tools, {"tools": TOOLS})):
                for _ in range(per_round):
                    t = time.perf_counter()
                    as_key.chat(ASK, max_tokens=16, **extra)
                    samples.append((time.perf_counter() - t) * 1000)
        gw.close()
    rows = [[name, len(s), percentile(s, 50), percentile(s, 95)]
            for name, s in (("plain chat", plain), ("chat + 2 allowed tools", tools))]
    print_table("gateway, Python API, mock upstream (ms)", ["call", "n", "p50", "p95"], rows)
    print(f"tools/plain p50 ratio: {percentile(tools, 50) / percentile(plain, 50):.2f}")
    print(f"tool governance adds p50 ms: {percentile(tools, 50) - percentile(plain, 50):.2f}")


def embedded_part(n: int) -> None:
    import workbench

    with tempfile.TemporaryDirectory() as tmp:
        gw = workbench.connect(data_dir=str(Path(tmp) / "data"))
        gw.chat("Hi", max_tokens=1)  # load the model outside the measurement
        plain: list[float] = []
        calls: list[float] = []
        valid = 0
        for _ in range(n):
            t = time.perf_counter()
            gw.chat(ASK, max_tokens=24, temperature=0)
            plain.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            res = gw.chat(ASK, max_tokens=48, temperature=0, tools=TOOLS,
                          tool_choice="required")
            calls.append((time.perf_counter() - t) * 1000)
            msg: dict[str, Any] = res.response["choices"][0]["message"]
            valid += bool(msg.get("tool_calls"))
        gw.close()
    rows = [["plain answer (24 tokens max)", n, median(plain)],
            ["tool call (grammar, required)", n, median(calls)]]
    print_table("embedded smollm2-135m (ms)", ["call", "n", "median"], rows)
    print(f"tool call/plain median ratio: {median(calls) / median(plain):.2f}")
    print(f"valid tool calls: {valid} of {n}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Few samples (smoke test).")
    parser.add_argument("--no-embedded", action="store_true", help="Skip the embedded part.")
    args = parser.parse_args(argv)
    print(machine_note())
    gateway_part(rounds=2 if args.quick else 5, per_round=5 if args.quick else 40)
    if not args.no_embedded:
        embedded_part(n=1 if args.quick else 5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
