"""What a call may cost before it runs, and what it did cost after it ran.

Before: the budget reservation needs an *upper bound* on the prompt tokens of a request
whatever its shape. A BPE token covers at least one byte of the text it encodes, so the
UTF-8 byte length of every string that reaches the model bounds its tokens; structured
fields that a provider renders into the prompt (``tools``, ``response_format``, tool
calls, unknown extras) are counted by the bytes of their JSON, punctuation included.
Images are tokenised from pixels, not from their URL, so each image part counts a fixed
:data:`IMAGE_WORST_CASE_TOKENS` instead of its (possibly huge, base64) URL.

After: an upstream's answer is checked for OpenAI's shape (a malformed one is an
``UpstreamError``, HTTP 502) and its ``usage`` is validated: counts must be non-negative
integers. A missing or invalid count is replaced by our own estimate (never by 0, so a
lying upstream cannot make a call free or credit a key), and every such correction is
named in ``Usage.anomalies`` for the ledger and the audit log.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import UpstreamError

# gpt-4o-mini bills a high-detail image at up to 2,833 + 8 x 5,667 = 48,169 tokens, the
# most of any OpenAI-compatible price list we know; other models bill far less.
IMAGE_WORST_CASE_TOKENS = 50_000
# What tpm counts for an image before the call (a typical 1024 x 1024 high-detail image
# on gpt-4o is 765 tokens); corrected to the upstream's count afterwards.
IMAGE_EXPECTED_TOKENS = 1_000
# Chat templates wrap each message in a few special tokens (role markers, separators).
MESSAGE_OVERHEAD_TOKENS = 8
REQUEST_OVERHEAD_TOKENS = 8
# Ledger token columns are 32-bit integers; larger reported counts are clamped.
MAX_USAGE_TOKENS = 2**31 - 1

# Request fields that steer sampling or transport: never rendered into the prompt.
CONTROL_FIELDS = frozenset({
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
    "temperature", "top_p", "n", "seed", "stop", "presence_penalty", "frequency_penalty",
    "logit_bias", "logprobs", "top_logprobs", "user", "parallel_tool_calls", "service_tier",
    "store", "metadata", "reasoning_effort", "modalities",
})
IMAGE_PART_TYPES = frozenset({"image_url", "input_image", "image"})


def _utf8(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def json_bytes(value: Any) -> int:
    """UTF-8 length of ``value`` as compact JSON (what a provider receives)."""
    return _utf8(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str))


@dataclass
class PromptSize:
    """An upper bound on a request's prompt: bytes of prompt-carrying text, image parts,
    and messages. ``worst_tokens`` is what a budget reservation prices."""

    text_bytes: int = 0
    images: int = 0
    messages: int = 0

    @property
    def worst_tokens(self) -> int:
        return (self.text_bytes + self.images * IMAGE_WORST_CASE_TOKENS
                + self.messages * MESSAGE_OVERHEAD_TOKENS + REQUEST_OVERHEAD_TOKENS)

    @property
    def expected_tokens(self) -> int:
        """A rough expectation (about 4 bytes per token) for rate limits before the call."""
        return (math.ceil(self.text_bytes / 4) + self.images * IMAGE_EXPECTED_TOKENS
                + self.messages * 4)


def _content_size(content: Any, size: PromptSize) -> None:
    if content is None:
        return
    if isinstance(content, str):
        size.text_bytes += _utf8(content)
        return
    if not isinstance(content, list):
        size.text_bytes += json_bytes(content)
        return
    for part in content:
        if isinstance(part, dict) and part.get("type") in IMAGE_PART_TYPES:
            size.images += 1
        elif isinstance(part, dict) and set(part) <= {"type", "text"} \
                and isinstance(part.get("text"), str):
            size.text_bytes += _utf8(part["text"])
        else:  # audio, files, unknown parts: their JSON bytes bound what they carry
            size.text_bytes += json_bytes(part)


def prompt_size(body: dict[str, Any]) -> PromptSize:
    """Measure everything in a chat request body that can reach the model as prompt:
    every message field (content strings and parts, ``name``, ``tool_call_id``, tool
    calls and their arguments, any extra), and every top-level field that is not a
    sampling/transport control (``tools``, ``tool_choice``, ``functions``,
    ``response_format``, unknown extras)."""
    size = PromptSize()
    messages = body.get("messages")
    for msg in messages if isinstance(messages, list) else ():
        size.messages += 1
        if not isinstance(msg, dict):
            size.text_bytes += json_bytes(msg)
            continue
        for key, value in msg.items():
            if key == "role":
                continue  # rendered as a template marker: part of the per-message overhead
            if key == "content":
                _content_size(value, size)
            elif isinstance(value, str):
                size.text_bytes += _utf8(value)
            elif value is not None:
                size.text_bytes += json_bytes(value)
    for key, value in body.items():
        if key not in CONTROL_FIELDS and value is not None:
            size.text_bytes += json_bytes({key: value})
    return size


def texts_worst_tokens(texts: Iterable[str]) -> int:
    """Embedding inputs: bytes of each text, plus a begin/end token each."""
    return sum(_utf8(t) + 2 for t in texts)


# -- after the call ----------------------------------------------------------------------
@dataclass
class Usage:
    """Token counts to charge, after validation, and what was corrected."""

    prompt_tokens: int
    completion_tokens: int = 0
    anomalies: list[str] = field(default_factory=list)


def _count(raw: dict[str, Any], name: str, fallback: int, anomalies: list[str]) -> int:
    value = raw.get(name)
    if value is None:
        anomalies.append("usage_missing")
        return fallback
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not (math.isfinite(value) and value.is_integer())):
        anomalies.append("usage_invalid")
        return fallback
    count = int(value)
    if count < 0:
        # A negative count would credit the key: charge our estimate instead.
        anomalies.append("usage_invalid")
        return fallback
    if count > MAX_USAGE_TOKENS:
        anomalies.append("usage_clamped")
        return MAX_USAGE_TOKENS
    return count


def read_usage(raw: Any, *, prompt_fallback: int, completion_fallback: int = 0,
               completion: bool = True) -> Usage:
    """Validate an upstream ``usage`` object; counts that are missing, not integers or
    negative become the fallbacks (our estimates), too-large ones are clamped."""
    anomalies: list[str] = []
    if not isinstance(raw, dict):
        anomalies.append("usage_missing" if raw is None else "usage_invalid")
        raw = {}
    prompt = _count(raw, "prompt_tokens", prompt_fallback, anomalies)
    out = _count(raw, "completion_tokens", completion_fallback, anomalies) if completion else 0
    return Usage(prompt, out, sorted(set(anomalies)))


def answer_tokens_estimate(resp: dict[str, Any]) -> int:
    """Completion tokens of an answer whose usage is missing: ~4 bytes per token of its
    text and tool calls."""
    total = 0
    for choice in resp.get("choices") or []:
        msg = choice.get("message") or {}
        if isinstance(msg.get("content"), str):
            total += _utf8(msg["content"])
        if msg.get("tool_calls"):
            total += json_bytes(msg["tool_calls"])
    return math.ceil(total / 4)


# -- shape checks ------------------------------------------------------------------------
def _malformed(provider: str, what: str) -> UpstreamError:
    return UpstreamError(f"upstream {provider} sent a malformed response: {what}",
                         code="upstream_malformed")


def _check_usage_shape(obj: dict[str, Any], provider: str) -> None:
    usage = obj.get("usage")
    if usage is not None and not isinstance(usage, dict):
        raise _malformed(provider, "usage is not an object")


def _check_tool_calls(calls: Any, provider: str, where: str) -> None:
    if calls is None:
        return
    if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
        raise _malformed(provider, f"{where}.tool_calls is not a list of objects")
    for call in calls:
        fn = call.get("function")
        if fn is not None and not isinstance(fn, dict):
            raise _malformed(provider, f"{where}.tool_calls[].function is not an object")


def check_chat_response(resp: Any, provider: str) -> None:
    """Raise ``UpstreamError`` (502, code ``upstream_malformed``) unless ``resp`` has the
    shape of an OpenAI chat.completion the gateway can mask, meter and pass on."""
    if not isinstance(resp, dict):
        raise _malformed(provider, "the body is not a JSON object")
    choices = resp.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _malformed(provider, "choices is not a non-empty list")
    for i, choice in enumerate(choices):
        if not isinstance(choice, dict):
            raise _malformed(provider, f"choices[{i}] is not an object")
        msg = choice.get("message")
        if not isinstance(msg, dict):
            raise _malformed(provider, f"choices[{i}].message is not an object")
        if msg.get("content") is not None and not isinstance(msg["content"], str):
            raise _malformed(provider, f"choices[{i}].message.content is not a string")
        _check_tool_calls(msg.get("tool_calls"), provider, f"choices[{i}].message")
    _check_usage_shape(resp, provider)


def check_chunk(chunk: Any, provider: str) -> None:
    """The same for one ``chat.completion.chunk`` of a stream."""
    if not isinstance(chunk, dict):
        raise _malformed(provider, "a stream chunk is not a JSON object")
    choices = chunk.get("choices")
    if choices is not None and not isinstance(choices, list):
        raise _malformed(provider, "a stream chunk's choices is not a list")
    for choice in choices or []:
        if not isinstance(choice, dict):
            raise _malformed(provider, "a stream chunk's choice is not an object")
        delta = choice.get("delta")
        if delta is None:
            continue
        if not isinstance(delta, dict):
            raise _malformed(provider, "a stream chunk's delta is not an object")
        if delta.get("content") is not None and not isinstance(delta["content"], str):
            raise _malformed(provider, "a stream chunk's delta.content is not a string")
        _check_tool_calls(delta.get("tool_calls"), provider, "delta")
    _check_usage_shape(chunk, provider)


def check_embeddings(resp: Any, n_inputs: int, provider: str) -> None:
    """The same for an embeddings list: one vector of numbers per input."""
    if not isinstance(resp, dict):
        raise _malformed(provider, "the body is not a JSON object")
    data = resp.get("data")
    if not isinstance(data, list) or len(data) != n_inputs:
        raise _malformed(provider, f"data is not a list of {n_inputs} embeddings")
    for item in data:
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(vector, list) or not vector or not all(
                isinstance(x, int | float) and not isinstance(x, bool) for x in vector):
            raise _malformed(provider, "an embedding is not a list of numbers")
    _check_usage_shape(resp, provider)


__all__ = [
    "CONTROL_FIELDS", "IMAGE_EXPECTED_TOKENS", "IMAGE_PART_TYPES",
    "IMAGE_WORST_CASE_TOKENS", "MAX_USAGE_TOKENS", "MESSAGE_OVERHEAD_TOKENS",
    "REQUEST_OVERHEAD_TOKENS", "PromptSize", "Usage", "answer_tokens_estimate",
    "check_chat_response", "check_chunk", "check_embeddings", "json_bytes",
    "prompt_size", "read_usage", "texts_worst_tokens",
]
