"""The Provider seam and its OpenAI-compatible HTTP implementation.

A provider speaks OpenAI's wire shape (dict in, dict out). The Gateway owns policy,
guardrails, budgets and fallbacks; a provider owns transport: timeouts, retries with
backoff on 429/5xx/connection faults, and turning upstream failures into
``UpstreamError`` (502) / ``UpstreamTimeout`` (504) whose messages never include keys.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from workbench.errors import (
    BadRequest,
    BudgetExceeded,
    ConfigError,
    UpstreamError,
    UpstreamTimeout,
)

if TYPE_CHECKING:
    import httpx

    from workbench.config import ModelSpec, Profile


class Provider(Protocol):
    """The seam to a model runtime (the embedded one, or an OpenAI-compatible endpoint): the
    Gateway calls it with an OpenAI request body and the model's spec, after governance."""

    name: str

    def chat(self, body: dict[str, Any], spec: ModelSpec) -> dict[str, Any]: ...

    def stream(self, body: dict[str, Any], spec: ModelSpec) -> Iterator[dict[str, Any]]: ...

    def embed(self, texts: list[str], spec: ModelSpec) -> dict[str, Any]: ...

    def ping(self) -> None:
        """Raise if the provider cannot serve (used by readyz and doctor)."""
        ...


def _propagate_trace(request: httpx.Request) -> None:
    """W3C ``traceparent`` of the active span (the Gateway's LLM/EMBEDDING span) on every
    upstream request, so a provider or proxy that traces (vLLM, LiteLLM, another
    workbench) continues our trace instead of starting its own."""
    from opentelemetry.propagate import inject

    inject(request.headers)


class RetryableError(UpstreamError):
    """An upstream failure worth retrying (429, 5xx, reset, timeout, bad JSON)."""

    retry_after: str | None = None


RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504}


def read_key_file(path: Path) -> str:
    """The key in ``path`` (a file holding only the key). Like ssh, refuses a file that
    others can read: a key another user could copy is a leaked key."""
    try:
        mode = path.stat().st_mode
        if os.name == "posix" and mode & 0o077:
            raise ConfigError(f"{path} holds a key but others can read it "
                              f"(mode {oct(mode & 0o777)}); run `chmod 600 {path}`")
        key = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(f"key file {path} is missing; run `workbench join URL KEY` again "
                          "or remove api_key_file from the profile") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read key file {path}: {type(exc).__name__}") from None
    # One printable ASCII token: anything else cannot go into an HTTP header.
    if not key or not key.isascii() or not key.isprintable() or " " in key:
        raise ConfigError(f"key file {path} must hold one key and nothing else")
    return key


class OpenAICompatibleProvider:
    """Any OpenAI-compatible endpoint: OpenAI, Azure OpenAI (v1 API), Ollama, vLLM,
    LM Studio, llama.cpp server, a LiteLLM proxy, or another workbench gateway."""

    def __init__(self, name: str, profile: Profile, *, timeout_s: float = 60.0,
                 max_retries: int = 2, backoff_s: float = 0.25,
                 transport: httpx.BaseTransport | None = None):
        import httpx

        if not profile.base_url:
            raise ConfigError(f"profile {name!r} needs base_url (set WORKBENCH_BASE_URL)")
        self.name = name
        self.base_url = profile.base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        headers = dict(profile.headers)
        self.key_env = profile.api_key_env
        key = os.environ.get(self.key_env) if self.key_env else None
        if not key and profile.api_key_file:
            key = read_key_file(Path(profile.api_key_file))
            self.key_env = self.key_env or f"in {profile.api_key_file}"
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(
            base_url=self.base_url, headers=headers, transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            event_hooks={"request": [_propagate_trace]},
        )

    # -- transport -----------------------------------------------------------------------
    def _sleep_before_retry(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff_s * (2 ** attempt) * (0.5 + random.random() / 2)
        if retry_after:
            with contextlib.suppress(ValueError):  # HTTP-date form: keep our own delay
                delay = max(delay, min(float(retry_after), 10.0))
        time.sleep(delay)

    def _raise_for(self, resp: httpx.Response) -> None:
        if resp.status_code < 400:
            return
        try:
            detail = resp.json().get("error", {})
            msg = detail.get("message") if isinstance(detail, dict) else str(detail)
        except (ValueError, AttributeError):
            msg = None
        msg = (msg or resp.reason_phrase or "error")[:300]
        if resp.status_code == 429 and resp.headers.get("x-should-retry") == "false":
            # An exhausted budget (another workbench gateway, OpenAI's quota errors):
            # retrying cannot help, and the caller should see why.
            raise BudgetExceeded(f"upstream {self.name}: {msg}")
        if resp.status_code in RETRY_STATUSES:
            err = RetryableError(f"upstream {self.name} returned {resp.status_code}: {msg}")
            err.retry_after = resp.headers.get("retry-after")
            raise err
        if resp.status_code in (401, 403):
            raise UpstreamError(
                f"upstream {self.name} rejected our credentials ({resp.status_code}: {msg}); check "
                f"the key {self.key_env or '(none configured)'}", code="upstream_auth")
        if resp.status_code == 404:
            raise UpstreamError(f"upstream {self.name} does not know this model or path: {msg}",
                                code="upstream_not_found")
        raise BadRequest(f"upstream {self.name} rejected the request ({resp.status_code}): {msg}")

    def _with_retries(self, fn: Any) -> Any:
        import httpx

        last: UpstreamError | None = None
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                return fn()
            except httpx.TimeoutException:
                last = UpstreamTimeout(f"upstream {self.name} timed out")
            except (httpx.TransportError, httpx.RemoteProtocolError) as exc:
                last = UpstreamError(f"upstream {self.name} connection failed: "
                                     f"{type(exc).__name__}")
            except RetryableError as exc:
                last = exc
                retry_after = exc.retry_after
            if attempt < self.max_retries:
                self._sleep_before_retry(attempt, retry_after)
        assert last is not None
        if isinstance(last, RetryableError):
            raise UpstreamError(last.message + f" (after {self.max_retries + 1} attempts)")
        raise last

    def _post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            resp = self._client.post(path, json=body)
            self._raise_for(resp)
            try:
                data = resp.json()
            except ValueError:
                raise RetryableError(f"upstream {self.name} sent invalid JSON") from None
            if not isinstance(data, dict):
                raise RetryableError(f"upstream {self.name} sent an unexpected JSON shape")
            return data

        result: dict[str, Any] = self._with_retries(call)
        return result

    # -- Provider ------------------------------------------------------------------------
    def chat(self, body: dict[str, Any], spec: ModelSpec) -> dict[str, Any]:
        body = {**body, "model": spec.upstream_name, "stream": False}
        data = self._post_json("/chat/completions", body)
        if "choices" not in data:
            raise UpstreamError(f"upstream {self.name} response has no choices")
        return data

    def stream(self, body: dict[str, Any], spec: ModelSpec) -> Iterator[dict[str, Any]]:
        import httpx

        body = {**body, "model": spec.upstream_name, "stream": True,
                "stream_options": {"include_usage": True}}
        ctx: Any = None

        def open_stream() -> Any:
            nonlocal ctx
            ctx = self._client.stream("POST", "/chat/completions", json=body)
            resp = ctx.__enter__()
            if resp.status_code >= 400:
                resp.read()
                ctx.__exit__(None, None, None)
                self._raise_for(resp)
            return resp

        resp = self._with_retries(open_stream)  # retries only before the first byte
        try:
            kind = resp.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "text/event-stream":
                raise UpstreamError(f"upstream {self.name} answered a stream request with "
                                    f"{kind or 'no content type'}, not server-sent events",
                                    code="upstream_malformed")
            finished = False  # [DONE] or a finish_reason: a stream that ends without
            for line in resp.iter_lines():  # either was cut off
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    finished = True
                    break
                try:
                    chunk = json.loads(payload)
                except ValueError:
                    raise UpstreamError(f"upstream {self.name} sent an invalid stream chunk",
                                        code="upstream_malformed") from None
                choices = chunk.get("choices") if isinstance(chunk, dict) else None
                if isinstance(choices, list) and any(
                        isinstance(c, dict) and c.get("finish_reason") for c in choices):
                    finished = True
                yield chunk
            if not finished:
                raise UpstreamError(f"upstream {self.name} stream ended before it finished")
        except httpx.TimeoutException:
            raise UpstreamTimeout(f"upstream {self.name} stream timed out") from None
        except httpx.TransportError as exc:
            raise UpstreamError(f"upstream {self.name} stream broke: {type(exc).__name__}") from None
        finally:
            ctx.__exit__(None, None, None)

    def embed(self, texts: list[str], spec: ModelSpec) -> dict[str, Any]:
        data = self._post_json("/embeddings", {"model": spec.upstream_name, "input": texts})
        if not isinstance(data.get("data"), list):
            raise UpstreamError(f"upstream {self.name} embeddings response has no data")
        return data

    def ping(self) -> None:
        def call() -> None:
            resp = self._client.get("/models")
            self._raise_for(resp)

        self._with_retries(call)

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"OpenAICompatibleProvider({self.name!r}, {self.base_url!r})"


__all__ = [
    "RETRY_STATUSES", "OpenAICompatibleProvider", "Provider", "RetryableError",
]
