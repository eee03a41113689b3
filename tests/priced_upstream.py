"""A priced OpenAI-compatible upstream on loopback, for adversarial gateway tests.

A real HTTP server (``http.server``, one thread per connection, ``TCP_NODELAY`` so
keep-alive requests do not stall on Nagle + delayed ACK) that answers
``POST /v1/chat/completions`` (also ``stream: true``), ``POST /v1/embeddings`` and
``GET /v1/models`` like a provider that bills:

- it counts tokens the way a real BPE tokenizer can at most: never more than the UTF-8
  bytes of the text it reads (here ``ceil(bytes / 3)`` of every string in the messages,
  tools, response_format and unknown fields, plus 3 per message and 85 per image part);
- it adds what each answered call costs at its own prices to :attr:`billed_usd`: the
  invoice a gateway must keep under a key's budget, whatever usage the answer reports.

:attr:`behaviour` (``"ok"`` by default, or per upstream model name in
:attr:`behaviours`) makes it misbehave: wrong shapes, lying usage, broken streams, or
``"hold"`` (keep the request in flight until :meth:`release`). Use it as a context
manager: ``with PricedUpstream() as up: up.base_url``.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

ANSWER_WORDS = 5  # an honest answer is this many tokens (fewer if max_tokens is lower)
EMBED_DIM = 4
IMAGE_TOKENS = 85

# Behaviours of a non-streamed chat answer (the body is replaced) ...
CHAT_BODIES: dict[str, Any] = {
    "choices_ints": {"choices": [1, 2]},
    "choices_empty": {"choices": []},
    "message_str": {"choices": [{"index": 0, "message": "hi", "finish_reason": "stop"}]},
    "content_list": {"choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": [1]}}]},
    "json_list": [1, 2],
}
# ... and those that keep a well-formed answer but change its usage block.
USAGE_OVERRIDES: dict[str, Any] = {
    "usage_string": "lots",
    "usage_list": [1, 2],
    "negative_usage": {"prompt_tokens": -1_000_000, "completion_tokens": 5},
    "negative_completion": {"prompt_tokens": 5, "completion_tokens": -1_000_000},
    "overreport": {"prompt_tokens": 10, "completion_tokens": 1_000_000},
    "huge_usage": {"prompt_tokens": 10**30, "completion_tokens": 10**30},
    "float_usage": {"prompt_tokens": 12.5, "completion_tokens": 1e300},
    "bool_usage": {"prompt_tokens": True, "completion_tokens": False},
    "string_counts": {"prompt_tokens": "12", "completion_tokens": "x"},
    "no_usage": None,
}
STREAM_FAULTS = ("stream_not_sse", "stream_breaks", "stream_bad_chunk", "stream_no_done",
                 "stream_choices_ints")
EMBED_BODIES: dict[str, Any] = {
    "embed_data_string": {"object": "list", "data": "x"},
    "embed_short": {"object": "list", "data": []},
    "embed_bad_vector": {"object": "list", "data": [{"embedding": "abc"}]},
}


def _strings(value: Any) -> list[str]:
    out: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return out


def prompt_tokens(body: dict[str, Any]) -> int:
    """What this upstream bills as prompt tokens for a chat body (see the module doc)."""
    tokens = 0
    for msg in body.get("messages") or []:
        tokens += 3
        for part in msg.get("content") if isinstance(msg.get("content"), list) else []:
            if isinstance(part, dict) and part.get("type") == "image_url":
                tokens += IMAGE_TOKENS
        texts = [s for k, v in msg.items() if k != "role" for s in _strings(
            [p for p in v if not (isinstance(p, dict) and p.get("type") == "image_url")]
            if k == "content" and isinstance(v, list) else v)]
        tokens += math.ceil(sum(len(t.encode()) for t in texts) / 3)
    skip = {"model", "messages", "stream", "stream_options", "max_tokens", "temperature",
            "user", "stop", "seed"}
    extra = [s for k, v in body.items() if k not in skip for s in _strings(v)]
    return tokens + math.ceil(sum(len(t.encode()) for t in extra) / 3)


class PricedUpstream:
    """The server; see the module doc. Prices are USD per million tokens."""

    def __init__(self, *, price_in_mtok: float = 1000.0, price_out_mtok: float = 2000.0,
                 behaviour: str = "ok"):
        self.price_in_mtok = price_in_mtok
        self.price_out_mtok = price_out_mtok
        self.behaviour = behaviour
        self.behaviours: dict[str, str] = {}  # upstream model name -> behaviour
        self.billed_usd = 0.0
        self.calls = 0  # requests answered or failed on purpose
        self.in_flight = 0
        self.bodies: list[dict[str, Any]] = []
        # Set to [(name, arguments), ...]: a request that offers tools is answered with
        # these tool calls (finish_reason tool_calls), streamed in OpenAI's fragments.
        self.tool_calls: list[tuple[str, dict[str, Any]]] | None = None
        # False: a request whose last message is a tool result gets a text answer (one
        # call, then an answer: an agent's natural loop); True: tool calls every time.
        self.tool_calls_always = True
        self._lock = threading.Lock()
        self._gate = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> PricedUpstream:
        upstream = self

        class Handler(_Handler):
            owner = upstream

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="priced-upstream")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def release(self) -> None:
        """Let requests held by the ``hold`` behaviour answer."""
        self._gate.set()

    def __enter__(self) -> PricedUpstream:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- accounting ------------------------------------------------------------------
    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.price_in_mtok + tokens_out * self.price_out_mtok) / 1e6

    def bill(self, tokens_in: int, tokens_out: int) -> None:
        with self._lock:
            self.billed_usd += self.cost(tokens_in, tokens_out)

    def behaviour_for(self, body: dict[str, Any]) -> str:
        return self.behaviours.get(str(body.get("model")), self.behaviour)

    def wait_in_flight(self, n: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.in_flight < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.in_flight} of {n} requests reached the "
                                     "upstream")
            time.sleep(0.05)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 refuses connections when 20 requests arrive at once.
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    owner: PricedUpstream
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass  # quiet: pytest shows failures, not access logs

    # -- plumbing --------------------------------------------------------------------
    def _send(self, status: int, payload: bytes, content_type: str = "application/json"
              ) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _json(self, obj: Any, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode())

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.rstrip("/") == "/v1/models":
            self._json({"object": "list", "data": [{"id": "mock", "object": "model"}]})
        else:
            self._json({"error": {"message": "no such route", "type": "not_found"}}, 404)

    def do_POST(self) -> None:  # noqa: N802
        up = self.owner
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
        with up._lock:
            up.in_flight += 1
            up.calls += 1
            up.bodies.append(body)
        try:
            behaviour = up.behaviour_for(body)
            if behaviour == "hold":
                up._gate.wait(timeout=120)
            if self.path == "/v1/embeddings":
                self._embeddings(body, behaviour)
            elif self.path == "/v1/chat/completions":
                self._chat(body, behaviour)
            else:
                self._json({"error": {"message": "no such route", "type": "not_found"}}, 404)
        finally:
            with up._lock:
                up.in_flight -= 1

    # -- endpoints -------------------------------------------------------------------
    def _embeddings(self, body: dict[str, Any], behaviour: str) -> None:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        t_in = sum(math.ceil(len(t.encode()) / 3) + 1 for t in texts)
        self.owner.bill(t_in, 0)
        if behaviour == "not_json":
            self._send(200, b"<html>this is not json</html>")
            return
        if behaviour in EMBED_BODIES:
            self._json(EMBED_BODIES[behaviour])
            return
        usage: Any = {"prompt_tokens": t_in, "total_tokens": t_in}
        if behaviour in USAGE_OVERRIDES:
            usage = USAGE_OVERRIDES[behaviour]
        self._json({"object": "list", "model": body.get("model"), "usage": usage,
                    "data": [{"object": "embedding", "index": i,
                              "embedding": [0.5] * EMBED_DIM} for i in range(len(texts))]})

    def _chat(self, body: dict[str, Any], behaviour: str) -> None:
        up = self.owner
        t_in = prompt_tokens(body)
        t_out = min(ANSWER_WORDS, int(body.get("max_tokens") or ANSWER_WORDS))
        if behaviour == "overreport":
            t_out = int(body.get("max_tokens") or ANSWER_WORDS) * 3  # ignores max_tokens
        words = ["tok"] * t_out
        up.bill(t_in, t_out)
        if behaviour == "not_json":
            self._send(200, b"<html>this is not json</html>")
            return
        last_role = ((body.get("messages") or [{}])[-1] or {}).get("role")
        if up.tool_calls is not None and body.get("tools") and (
                up.tool_calls_always or last_role != "tool"):
            self._tool_calls(body, up.tool_calls, {"prompt_tokens": t_in,
                                                   "completion_tokens": t_out})
            return
        if body.get("stream"):
            self._stream(body, behaviour, words, {"prompt_tokens": t_in,
                                                  "completion_tokens": t_out})
            return
        if behaviour in CHAT_BODIES:
            self._json(CHAT_BODIES[behaviour])
            return
        usage: Any = {"prompt_tokens": t_in, "completion_tokens": t_out,
                      "total_tokens": t_in + t_out}
        if behaviour in USAGE_OVERRIDES:
            usage = USAGE_OVERRIDES[behaviour]
        answer: dict[str, Any] = {
            "id": "chatcmpl-priced", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": " ".join(words)}}]}
        if usage is not None:
            answer["usage"] = usage
        self._json(answer)

    def _tool_calls(self, body: dict[str, Any], calls: list[tuple[str, dict[str, Any]]],
                    usage: dict[str, int]) -> None:
        made = [{"id": f"call_{i}", "type": "function",
                 "function": {"name": name, "arguments": json.dumps(args)}}
                for i, (name, args) in enumerate(calls)]
        base = {"id": "chatcmpl-priced", "model": body.get("model"), "created": 0}
        if not body.get("stream"):
            self._json({**base, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "finish_reason": "tool_calls",
                 "message": {"role": "assistant", "content": None, "tool_calls": made}}]})
            return
        base["object"] = "chat.completion.chunk"
        events: list[Any] = [{**base, "choices": [{"index": 0, "finish_reason": None,
                                                   "delta": {"role": "assistant"}}]}]
        for i, call in enumerate(made):
            args = call["function"]["arguments"]
            events.append({**base, "choices": [{"index": 0, "finish_reason": None, "delta": {
                "tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                "function": {"name": call["function"]["name"],
                                             "arguments": ""}}]}}]})
            for j in range(0, len(args), 5):  # arguments in fragments, as OpenAI sends
                events.append({**base, "choices": [{"index": 0, "finish_reason": None,
                                                    "delta": {"tool_calls": [{"index": i, "function": {
                                                        "arguments": args[j:j + 5]}}]}}]})
        events.append({**base, "choices": [{"index": 0, "delta": {},
                                            "finish_reason": "tool_calls"}]})
        events.append({**base, "choices": [], "usage": usage})
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for event in events:
            self._chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
        self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _stream(self, body: dict[str, Any], behaviour: str, words: list[str],
                usage: dict[str, int]) -> None:
        if behaviour == "stream_not_sse":
            self._json({"object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "not a stream"}}]})
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        base = {"id": "chatcmpl-priced", "object": "chat.completion.chunk",
                "model": body.get("model")}
        events: list[Any] = [{**base, "choices": [{"index": 0, "delta": {"content": w + " "},
                                                   "finish_reason": None}]} for w in words]
        if behaviour == "stream_bad_chunk":
            events.insert(1, [1, 2])
        if behaviour == "stream_choices_ints":
            events.insert(1, {**base, "choices": [1, 2]})
        for i, event in enumerate(events):
            self._chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
            if behaviour == "stream_breaks" and i == 1:
                self.wfile.flush()
                # Drop the connection mid-body: no terminating chunk, no [DONE].
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
        if behaviour != "stream_no_done":
            final = [{**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
            if (body.get("stream_options") or {}).get("include_usage"):
                override = USAGE_OVERRIDES.get(behaviour, usage)
                final.append({**base, "choices": [], "usage": override})
            for event in final:
                self._chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
            self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
