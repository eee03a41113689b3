"""Request and result types, in OpenAI's wire shape so every provider and the HTTP proxy
pass them through unchanged (unknown fields such as ``tools`` are kept)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def _reject_lone_surrogates(data: Any) -> Any:
    """JSON may escape a lone surrogate (``"\\ud800"``); Python accepts it but it cannot be
    encoded as UTF-8, so it would crash tokenizers, guardrails and JSON responses later."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("text must be valid Unicode (found a lone surrogate)") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return data


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if isinstance(p, dict))
        return ""


class ChatRequest(BaseModel):
    """An OpenAI chat-completions request. Extra fields (tools, seed, …) pass through."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(None, gt=0, le=1_000_000)
    max_completion_tokens: int | None = Field(None, gt=0, le=1_000_000)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    stream: bool = False
    response_format: dict[str, Any] | None = None
    n: int | None = Field(None, ge=1, le=1)
    user: str | None = None

    _valid_unicode = model_validator(mode="before")(_reject_lone_surrogates)

    @field_validator("stop")
    @classmethod
    def _stop_limit(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and len(v) > 8:
            raise ValueError("at most 8 stop sequences")
        return v

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def prompt_text(self) -> str:
        return "\n".join(m.text() for m in self.messages)

    def upstream_body(self, model: str) -> dict[str, Any]:
        body = self.model_dump(exclude_none=True)
        body["model"] = model
        return body


class EmbeddingRequest(BaseModel):
    """An OpenAI embeddings request: ``model`` and ``input`` (strings only)."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    input: str | list[str] = Field(description="Text or list of texts to embed.")
    encoding_format: Literal["float", "base64"] | None = Field(
        None, description="base64: little-endian float32 (the openai SDK asks for it).")

    _valid_unicode = model_validator(mode="before")(_reject_lone_surrogates)

    @field_validator("input")
    @classmethod
    def _non_empty(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and not v:
            raise ValueError("input must not be empty")
        if isinstance(v, list) and len(v) > 2048:
            raise ValueError("at most 2048 inputs per request")
        return v

    @property
    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


@dataclass
class ChatResult:
    """What ``Gateway.chat`` returns: the OpenAI response plus governance facts."""

    response: dict[str, Any]
    trace_id: str
    model: str
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    cached: bool = False
    redactions: dict[str, int] = field(default_factory=dict)
    fallback_from: str | None = None

    @property
    def text(self) -> str:
        choices = self.response.get("choices") or [{}]
        return str((choices[0].get("message") or {}).get("content") or "")

    @property
    def usage(self) -> dict[str, int]:
        return dict(self.response.get("usage") or {})

    def json(self) -> Any:
        """The answer parsed as JSON (use with a ``response_format`` schema)."""
        return json.loads(self.text)

    def __str__(self) -> str:
        return self.text

    def _facts(self) -> str:
        u = self.usage
        bits = [f"model={self.model}", f"tokens={u.get('prompt_tokens', 0)}+"
                f"{u.get('completion_tokens', 0)}", f"cost=${self.cost_usd:.6f}",
                f"{self.latency_ms:.0f} ms", f"trace={self.trace_id}"]
        if self.cached:
            bits.append("cached")
        if self.redactions:
            bits.append("redacted=" + ",".join(f"{k}x{v}" for k, v in self.redactions.items()))
        if self.fallback_from:
            bits.append(f"fallback_from={self.fallback_from}")
        return " · ".join(bits)

    def __repr__(self) -> str:
        return f"ChatResult({self.text[:60]!r} · {self._facts()})"

    def _repr_html_(self) -> str:
        return (f"<div><p style='white-space:pre-wrap'>{html.escape(self.text)}</p>"
                f"<small style='color:#666'>{html.escape(self._facts())}</small></div>")


@dataclass
class EmbeddingResult:
    """What ``Gateway.embed`` returns: the OpenAI embeddings response plus governance facts."""

    response: dict[str, Any]
    trace_id: str
    model: str
    cost_usd: float = 0.0
    latency_ms: float = 0.0

    @property
    def vectors(self) -> list[list[float]]:
        return [d["embedding"] for d in self.response["data"]]

    def __repr__(self) -> str:
        n = len(self.response.get("data", []))
        dim = len(self.vectors[0]) if n else 0
        return f"EmbeddingResult({n} x {dim} · model={self.model} · trace={self.trace_id})"


__all__ = [
    "ChatRequest", "ChatResult", "EmbeddingRequest", "EmbeddingResult", "Message",
]
