"""The Gateway's default call subscriber: one LLM / EMBEDDING span per call.

Built only on the public tracing API (:mod:`workbench.observability.tracing`) and the
call events of :mod:`workbench.models.hooks`. The span is opened when the call starts
(its trace id becomes the call's: the one passed, else the active span's, else a new
one), is current while the call works, and records the redacted request, the time to
first token, usage, cost and the masked answer. Traces never hold raw PII: text that the
principal's guardrail mode let through is masked again here.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry.trace import Status, StatusCode

from workbench.errors import WorkbenchError
from workbench.guardrails import mask_text
from workbench.models.hooks import CallObserver, CallStart
from workbench.models.types import ChatResult, EmbeddingResult
from workbench.observability import semconv as sc
from workbench.observability import tracing
from workbench.observability.genai_metrics import genai_metrics


class CallSpan(CallObserver):
    """The span around one Gateway call (chat, stream or embed)."""

    def __init__(self, start: CallStart):
        gateway = start.gateway
        self.gateway = gateway
        self.operation = start.operation
        self.tracer = tracing.tracer_for(gateway.store, gateway.settings)
        self.started = time.perf_counter()
        self.first_token_ms: float | None = None
        kind = "EMBEDDING" if start.operation == "embed" else "LLM"
        self.handle = handle = self.tracer.start(start.operation, kind, trace_id=start.trace_id)
        self.trace_id = handle.trace_id
        if handle.recording:
            self._record_start(start)

    def _record_start(self, start: CallStart) -> None:
        gateway, operation, handle = self.gateway, self.operation, self.handle
        principal = gateway.principal
        session_id = tracing.current_session()
        # caller input until the model is resolved (it may be unknown): masked
        requested = mask_text(start.model) if start.model else None
        handle.set_attributes({
            sc.LLM_REQUEST_MODEL: requested, sc.WB_OPERATION: operation,
            sc.WB_TEAM: principal.team, sc.WB_KEY_ID: principal.key_id,
            sc.USER_ID: principal.key_id or "local", sc.SESSION_ID: session_id,
            sc.TAGS: [f"team:{principal.team}", f"operation:{operation}"],
            sc.METADATA: sc.metadata({"team": principal.team, "key_id": principal.key_id,
                                      "profile": gateway.settings.profile}),
        })
        if gateway.settings.genai_semconv:
            handle.set_attributes({
                sc.GENAI_OPERATION: "embeddings" if operation == "embed" else "chat",
                sc.GENAI_REQUEST_MODEL: requested, sc.GENAI_CONVERSATION_ID: session_id})
        if operation == "embed":
            self._record_embedding_inputs(start.inputs)

    def _record_embedding_inputs(self, texts: Any) -> None:
        """The texts of an embedding call, masked (the vectors are never recorded). Runs
        before the Gateway validates the request, so anything but strings is skipped."""
        items = [texts] if isinstance(texts, str) else texts if isinstance(texts, list) else []
        mask = self.gateway.guardrails.mask
        for i, t in enumerate(items[:tracing.MAX_DOCUMENTS]):
            if isinstance(t, str):
                self.handle.set(f"embedding.embeddings.{i}.embedding.text", mask(t).text)

    # -- events --------------------------------------------------------------------------
    def scope(self) -> AbstractContextManager[Any]:
        return self.tracer.activate(self.handle)

    def on_request(self, body: Mapping[str, Any], provider: str | None) -> None:
        """The upstream body after input guardrails ran: the model, parameters and
        messages. Messages are masked again when the principal's mode let PII through
        (log-only / off): traces never hold raw PII."""
        h = self.handle
        if not h.recording:
            return
        gw = self.gateway
        remask = gw.guardrail_mode != "mask"
        params = {k: body[k] for k in ("max_tokens", "temperature", "top_p", "stop", "seed",
                                       "response_format") if body.get(k) is not None}
        h.set(sc.LLM_PARAMS, params)
        self._set_provider(provider)
        if gw.settings.genai_semconv:
            h.set_attributes({sc.GENAI_MAX_TOKENS: body.get("max_tokens"),
                              sc.GENAI_TEMPERATURE: body.get("temperature"),
                              sc.GENAI_TOP_P: body.get("top_p")})
        last_user = ""
        for i, msg in enumerate(body.get("messages") or []):
            content = msg.get("content")
            if isinstance(content, list):
                content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            text = str(content or "")
            if remask:
                text = gw.guardrails.mask(text).text
            h.set(f"llm.input_messages.{i}.message.role", msg.get("role"))
            h.set(f"llm.input_messages.{i}.message.content", text)
            if msg.get("role") == "user":
                last_user = text
        h.set_input(last_user)

    def on_first_token(self) -> None:
        if self.first_token_ms is None:
            self.first_token_ms = round((time.perf_counter() - self.started) * 1000, 3)
            self.handle.add_event(sc.FIRST_TOKEN_EVENT)

    def on_result(self, result: ChatResult | EmbeddingResult) -> None:
        if isinstance(result, EmbeddingResult):
            self._embedding_done(result)
        else:
            self._chat_done(result)
        self.on_end()

    def on_error(self, exc: BaseException) -> None:
        self.handle.error(exc)

    def on_end(self) -> None:
        if not getattr(self, "_ended", False):
            self._ended = True
            self.tracer.end(self.handle)

    # -- results -------------------------------------------------------------------------
    def _output_text(self, result: ChatResult) -> str:
        gw = self.gateway
        # Non-streamed answers were masked by the Gateway unless output guardrails are
        # off; streamed text is sent as generated. Traces always get the masked version.
        masked = (self.operation != "stream" and gw.settings.output_guardrails
                  and gw.guardrail_mode != "off")
        return result.text if masked else gw.guardrails.mask(result.text).text

    def _costs(self, model: str, t_in: int, t_out: int, charged: float) -> tuple[float, float]:
        """(prompt, completion) split of what was charged, at the model's prices. The
        Gateway never charges past a reservation, so when an upstream reported more than
        the worst case the split is scaled down to the charge (prompt + completion ==
        total, always)."""
        try:
            spec = self.gateway.spec(model)
        except WorkbenchError:
            return 0.0, 0.0
        cost_in, cost_out = spec.cost(t_in, 0), spec.cost(0, t_out)
        full = cost_in + cost_out
        if full <= 0 or charged >= full:
            return (cost_in, cost_out) if charged > 0 else (0.0, 0.0)
        return cost_in * charged / full, cost_out * charged / full

    def _chat_done(self, result: ChatResult) -> None:
        h = self.handle
        if not h.recording:
            return
        text = self._output_text(result)
        usage = result.usage
        t_in = int(usage.get("prompt_tokens") or 0)
        t_out = int(usage.get("completion_tokens") or 0)
        cost_in, cost_out = self._costs(result.model, t_in, t_out, result.cost_usd)
        choices = result.response.get("choices") or [{}]
        finish = choices[0].get("finish_reason") if isinstance(choices[0], dict) else None
        h.otel.update_name(f"{self.operation} {result.model}")
        h.set_attributes({
            sc.LLM_MODEL: result.model,
            sc.LLM_RESPONSE_MODEL: result.response.get("model"),
            sc.LLM_TOKENS_PROMPT: t_in, sc.LLM_TOKENS_COMPLETION: t_out,
            sc.LLM_TOKENS_TOTAL: t_in + t_out,
            sc.LLM_COST_PROMPT: cost_in, sc.LLM_COST_COMPLETION: cost_out,
            sc.LLM_COST_TOTAL: result.cost_usd,
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": text,
            "output.value": text, "output.mime_type": "text/plain",
            sc.LLM_FINISH_REASON: finish,
            "workbench.latency_ms": round(result.latency_ms, 3),
            "workbench.cached": result.cached,
            "workbench.fallback_from": result.fallback_from,
            sc.WB_TTFT_MS: self.first_token_ms,
        })
        if self.gateway.settings.genai_semconv:
            h.set_attributes({
                sc.GENAI_RESPONSE_MODEL: result.response.get("model") or result.model,
                sc.GENAI_RESPONSE_ID: result.response.get("id"),
                sc.GENAI_INPUT_TOKENS: t_in, sc.GENAI_OUTPUT_TOKENS: t_out,
                sc.GENAI_FINISH_REASONS: [str(finish)] if finish else None,
            })
        if result.redactions:
            h.set("workbench.redactions", json.dumps(result.redactions, sort_keys=True))
        h.otel.set_status(Status(StatusCode.OK))
        self._measure(t_in, t_out, result.model)

    def _embedding_done(self, result: EmbeddingResult) -> None:
        h = self.handle
        if not h.recording:
            return
        h.otel.update_name(f"embed {result.model}")
        usage = result.response.get("usage") or {}
        t_in = int(usage.get("prompt_tokens") or 0)
        h.set_attributes({sc.EMBEDDING_MODEL: result.model,
                          sc.LLM_TOKENS_PROMPT: t_in,
                          sc.LLM_TOKENS_TOTAL: int(usage.get("total_tokens") or 0),
                          sc.LLM_COST_PROMPT: result.cost_usd,
                          sc.LLM_COST_TOTAL: result.cost_usd,
                          "workbench.latency_ms": round(result.latency_ms, 3),
                          "workbench.vectors": len(result.response.get("data") or [])})
        with contextlib.suppress(WorkbenchError):  # unknown model: nothing to name
            self._set_provider(self.gateway.spec(result.model, kind="embedding").provider)
        if self.gateway.settings.genai_semconv:
            h.set_attributes({sc.GENAI_RESPONSE_MODEL: result.model,
                              sc.GENAI_INPUT_TOKENS: t_in})
        h.otel.set_status(Status(StatusCode.OK))
        self._measure(t_in, None, result.model)

    def _measure(self, t_in: int, t_out: int | None, model: str) -> None:
        """The GenAI client histograms (token usage, operation duration)."""
        if not self.gateway.settings.genai_semconv:
            return
        genai_metrics().record("embeddings" if self.operation == "embed" else "chat", model,
                               time.perf_counter() - self.started, t_in, t_out)

    def _set_provider(self, provider: str | None) -> None:
        """Standard provider names for the profile that serves the call (see semconv)."""
        if provider is None:
            return
        settings = self.gateway.settings
        prof = settings.all_profiles().get(provider)
        kind = "embedded" if provider == "embedded" else (prof.kind if prof else "openai")
        base_url = (settings.active_profile().base_url if provider == settings.profile
                    else prof.base_url if prof else None)
        oi_provider, oi_system, genai = sc.provider_names(
            kind, base_url, prof.telemetry_provider if prof else None)
        self.handle.set_attributes({sc.LLM_PROVIDER: oi_provider, sc.LLM_SYSTEM: oi_system,
                                    sc.WB_PROFILE: provider})
        if settings.genai_semconv:
            self.handle.set(sc.GENAI_PROVIDER, genai)


def call_spans(start: CallStart) -> CallSpan:
    """The subscriber: a :class:`CallSpan` for every call."""
    return CallSpan(start)


__all__ = ["CallSpan", "call_spans"]
