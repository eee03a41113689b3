"""A fast OpenAI-compatible mock upstream for the gateway benchmarks.

A raw asyncio HTTP/1.1 server (keep-alive, no framework) so that the mock costs far less
per request than anything measured against it. It answers:

- ``GET /v1/models``
- ``POST /v1/chat/completions`` (a fixed completion with a usage block; ``stream: true``
  sends SSE chunks, plus a usage chunk when ``stream_options.include_usage`` is set)
- ``POST /v1/embeddings`` (fixed 8-d vectors)
- ``GET /healthz``

Run it alone: ``python benchmarks/mock_upstream.py --port 9100``. The benchmarks start it
in its own process with :class:`MockUpstream` (it prints the bound port on stdout, so
``--port 0`` never races for a free port).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from types import TracebackType
from typing import Any

COMPLETION_TEXT = "This is a fixed mock completion for benchmarks."
PROMPT_TOKENS = 12
COMPLETION_TOKENS = 9
EMBED_DIM = 8


def _usage() -> dict[str, int]:
    return {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}


def _chat_body(model: str) -> bytes:
    return json.dumps({
        "id": "chatcmpl-mock", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": COMPLETION_TEXT}}],
        "usage": _usage(),
    }).encode()


def _sse_events(model: str, include_usage: bool) -> list[bytes]:
    base = {"id": "chatcmpl-mock", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}
    chunks: list[dict[str, Any]] = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                              "finish_reason": None}]}]
    for word in COMPLETION_TEXT.split(" "):
        chunks.append({**base, "choices": [{"index": 0, "delta": {"content": word + " "},
                                            "finish_reason": None}]})
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if include_usage:
        chunks.append({**base, "choices": [], "usage": _usage()})
    events = [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks]
    events.append(b"data: [DONE]\n\n")
    return events


def _embeddings_body(model: str, n: int) -> bytes:
    return json.dumps({
        "object": "list", "model": model,
        "data": [{"object": "embedding", "index": i,
                  "embedding": [round(0.1 * (j + 1), 3) for j in range(EMBED_DIM)]}
                 for i in range(n)],
        "usage": {"prompt_tokens": 4 * n, "total_tokens": 4 * n},
    }).encode()


def _models_body() -> bytes:
    return json.dumps({"object": "list", "data": [
        {"id": "mock-model", "object": "model", "created": 0, "owned_by": "mock"},
        {"id": "mock-embed", "object": "model", "created": 0, "owned_by": "mock"},
    ]}).encode()


def _head(status: str, content_type: str, extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n{extra}").encode()


class _Handler:
    """Per-process response cache: the bodies depend only on the model name."""

    def __init__(self, delay_s: float):
        self.delay_s = delay_s
        self._chat: dict[str, bytes] = {}
        self._sse: dict[tuple[str, bool], list[bytes]] = {}
        self.requests = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await self._read_body(reader, headers)
                self.requests += 1
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                await self._respond(writer, method, path.split("?", 1)[0], body)
                if headers.get("connection", "").lower() == "close":
                    return
        except asyncio.LimitOverrunError:
            return
        finally:
            writer.close()

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if "content-length" in headers:
            return await reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    return b"".join(parts)
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
        return b""

    async def _respond(self, writer: asyncio.StreamWriter, method: str, path: str,
                       body: bytes) -> None:
        path = path.removeprefix("/v1")
        if method == "GET" and path in ("/models", "/healthz"):
            self._send(writer, "200 OK", _models_body() if path == "/models" else b'{"ok":1}')
            return
        if method != "POST" or path not in ("/chat/completions", "/embeddings"):
            self._send(writer, "404 Not Found",
                       b'{"error":{"message":"no such route","type":"not_found","code":null}}')
            return
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            self._send(writer, "400 Bad Request",
                       b'{"error":{"message":"bad json","type":"invalid_request_error"}}')
            return
        model = str(req.get("model") or "mock-model")
        if path == "/embeddings":
            inp = req.get("input")
            n = len(inp) if isinstance(inp, list) else 1
            self._send(writer, "200 OK", _embeddings_body(model, n))
            return
        if req.get("stream"):
            include = bool((req.get("stream_options") or {}).get("include_usage"))
            events = self._sse.get((model, include))
            if events is None:
                events = self._sse[(model, include)] = _sse_events(model, include)
            writer.write(_head("200 OK", "text/event-stream",
                               "cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"))
            for ev in events:
                writer.write(b"%x\r\n%s\r\n" % (len(ev), ev))
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return
        resp = self._chat.get(model)
        if resp is None:
            resp = self._chat[model] = _chat_body(model)
        self._send(writer, "200 OK", resp)

    @staticmethod
    def _send(writer: asyncio.StreamWriter, status: str, payload: bytes) -> None:
        writer.write(_head(status, "application/json",
                           f"content-length: {len(payload)}\r\n\r\n") + payload)


async def _main(host: str, port: int, delay_s: float) -> None:
    handler = _Handler(delay_s)
    server = await asyncio.start_server(handler.serve, host, port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(bound, flush=True)  # the parent reads the port from here
    async with server:
        await server.serve_forever()


class MockUpstream:
    """Start the mock in its own process: ``with MockUpstream() as m: m.base_url``."""

    def __init__(self, host: str = "127.0.0.1", delay_ms: float = 0.0):
        self.host = host
        self.delay_ms = delay_ms
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> MockUpstream:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--host", self.host, "--port", "0",
             "--delay-ms", str(self.delay_ms)],
            stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"mock upstream failed to start (got {line!r})")
        self.port = int(line)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def __enter__(self) -> MockUpstream:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9100, help="0 picks a free port (printed).")
    ap.add_argument("--delay-ms", type=float, default=0.0,
                    help="Simulated upstream latency per request.")
    args = ap.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.host, args.port, args.delay_ms / 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
