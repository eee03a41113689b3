"""Shared helpers for the benchmark scripts: statistics, tables, child processes, and a
minimal keep-alive HTTP/1.1 load generator.

The load generator is raw asyncio on purpose: on a 2-core machine the client shares the
CPU with the servers it measures, so it must cost as little per request as possible
(an httpx/aiohttp client would spend more CPU per request than the mock upstream).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


# -- statistics and output ---------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:,.{digits}f}"
    return str(value)


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                    for i, (h, w) in enumerate(zip(headers, widths, strict=True))))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths, strict=True))))


def machine_note() -> str:
    load = os.getloadavg()
    return (f"cpus={os.cpu_count()} loadavg(1/5/15 min)={load[0]:.2f}/{load[1]:.2f}/"
            f"{load[2]:.2f} (shared machine: compare ratios from the same run)")


# -- child processes ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Child:
    """A server process in its own process group, stopped (with its children) on exit."""

    def __init__(self, name: str, argv: list[str], *, cwd: Path | None = None,
                 env: dict[str, str] | None = None, log: Path | None = None):
        self.name = name
        self.log = log
        self._out = open(log, "wb") if log else None  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env,
                                     stdout=self._out or subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_http(self, url: str, timeout_s: float = 120.0) -> None:
        """Poll ``url`` until it answers 200; fail with the log tail if the child dies."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   + self.log_tail())
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} did not answer {url} within {timeout_s:.0f} s:\n"
                           + self.log_tail())

    def log_tail(self, n: int = 30) -> str:
        if not self.log or not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        if self._out is not None:
            self._out.close()


# -- sequential latency ------------------------------------------------------------------
def http_latencies(client: httpx.Client, path: str, body: dict[str, Any], n: int,
                   headers: dict[str, str] | None = None,
                   on_response: Callable[[httpx.Response], None] | None = None) -> list[float]:
    """``n`` sequential POSTs on one keep-alive httpx client; latencies in ms."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        resp = client.post(path, json=body, headers=headers)
        out.append((time.perf_counter() - t0) * 1000)
        if resp.status_code != 200:
            raise RuntimeError(f"{client.base_url}{path} -> {resp.status_code}: {resp.text[:300]}")
        if on_response is not None:
            on_response(resp)
    return out


# -- concurrent load ---------------------------------------------------------------------
@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    first_error: str | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length: int | None = None
    chunked = close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and b"close" in value.lower():
            close = True
    if length is not None:
        return status, await reader.readexactly(length), close
    if chunked:
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return status, b"".join(parts), close
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    return status, await reader.read(), True


async def _load(host: str, port: int, raw_request: bytes, concurrency: int,
                duration_s: float) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    deadline = time.perf_counter() + duration_s

    async def worker() -> None:
        nonlocal errors, first_error
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                writer.write(raw_request)
                status, body, close = await _read_response(reader)
                latencies.append((time.perf_counter() - t0) * 1000)
                if status != 200:
                    errors += 1
                    first_error = first_error or f"{status}: {body[:200]!r}"
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
        finally:
            writer.close()

    t_start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t_start
    return LoadResult(len(latencies) - errors, errors, elapsed, latencies, first_error)


def load_test(base_url: str, path: str, body: dict[str, Any], *, concurrency: int,
              duration_s: float, headers: dict[str, str] | None = None) -> LoadResult:
    """``concurrency`` keep-alive connections each sending requests back to back for
    ``duration_s``; counts completed 200s (requests in flight at the deadline finish)."""
    url = httpx.URL(base_url)
    host, port = url.host, url.port or 80
    payload = json.dumps(body).encode()
    head = [f"POST {url.path.rstrip('/')}{path} HTTP/1.1", f"host: {host}:{port}",
            "content-type: application/json", f"content-length: {len(payload)}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    raw = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
    return asyncio.run(_load(host, port, raw, concurrency, duration_s))
