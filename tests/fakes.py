"""Test doubles for the Provider seam (unit tests only; integration tests use the real
embedded model and a real HTTP server)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from workbench.config import ModelSpec
from workbench.errors import UpstreamError


class FakeProvider:
    """Answers with a fixed text; can fail the first N calls or every call."""

    def __init__(self, name: str = "fake", text: str = "fake answer", tokens_in: int = 10,
                 tokens_out: int = 5, fail: int = 0, delay_s: float = 0.0,
                 error: type[UpstreamError] = UpstreamError):
        self.name = name
        self.text = text
        self.tokens_in = tokens_in
        self.tokens_out = tokens_out
        self.fail = fail
        self.delay_s = delay_s
        self.error = error
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def _maybe_fail(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append(body)
            failing = self.fail != 0
            if self.fail > 0:
                self.fail -= 1
        if self.delay_s:
            time.sleep(self.delay_s)
        if failing:
            raise self.error(f"{self.name} is down")

    def chat(self, body: dict[str, Any], spec: ModelSpec) -> dict[str, Any]:
        self._maybe_fail(body)
        return {"id": "x", "object": "chat.completion", "model": spec.name,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": self.text}}],
                "usage": {"prompt_tokens": self.tokens_in, "completion_tokens": self.tokens_out,
                          "total_tokens": self.tokens_in + self.tokens_out}}

    def stream(self, body: dict[str, Any], spec: ModelSpec) -> Iterator[dict[str, Any]]:
        self._maybe_fail(body)
        for word in self.text.split(" "):
            yield {"object": "chat.completion.chunk", "model": spec.name,
                   "choices": [{"index": 0, "delta": {"content": word + " "},
                                "finish_reason": None}]}
        yield {"object": "chat.completion.chunk", "model": spec.name, "choices": [],
               "usage": {"prompt_tokens": self.tokens_in, "completion_tokens": self.tokens_out}}

    def embed(self, texts: list[str], spec: ModelSpec) -> dict[str, Any]:
        self._maybe_fail({"input": texts})
        return {"object": "list", "model": spec.name,
                "data": [{"object": "embedding", "index": i, "embedding": [0.0, 1.0]}
                         for i in range(len(texts))],
                "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)}}

    def ping(self) -> None:
        if self.fail:
            raise UpstreamError(f"{self.name} is down")


def priced(name: str, provider: str = "fake", in_mtok: float = 1000.0,
           out_mtok: float = 2000.0, max_out: int = 100) -> dict[str, Any]:
    """A ModelSpec dict with a price (USD per million tokens) for budget tests."""
    return {"name": name, "provider": provider, "input_usd_per_mtok": in_mtok,
            "output_usd_per_mtok": out_mtok, "max_output_tokens": max_out}
