"""Every telemetry name the workbench emits, in one place.

Two vocabularies describe the same spans: OpenInference (what Arize Phoenix and many
LLM tools read: ``llm.*``, ``user.id``, ``session.id``...) and the OpenTelemetry GenAI
semantic conventions (``gen_ai.*``, still "Development" upstream, read by Grafana,
Datadog, Langfuse and others). The workbench writes OpenInference always and GenAI
alongside it unless ``genai_semconv = false``. Provider names are the standard values
of each vocabulary, so tools that price spans from provider + model (Phoenix) can.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

# -- OpenInference ------------------------------------------------------------------------
SPAN_KIND = "openinference.span.kind"
LLM_SYSTEM = "llm.system"
LLM_PROVIDER = "llm.provider"
LLM_MODEL = "llm.model_name"
LLM_REQUEST_MODEL = "llm.request.model_name"
LLM_RESPONSE_MODEL = "llm.response.model_name"
LLM_PARAMS = "llm.invocation_parameters"
LLM_TOKENS_PROMPT = "llm.token_count.prompt"
LLM_TOKENS_COMPLETION = "llm.token_count.completion"
LLM_TOKENS_TOTAL = "llm.token_count.total"
LLM_COST_PROMPT = "llm.cost.prompt"
LLM_COST_COMPLETION = "llm.cost.completion"
LLM_COST_TOTAL = "llm.cost.total"
LLM_FINISH_REASON = "llm.finish_reason"
EMBEDDING_MODEL = "embedding.model_name"
USER_ID = "user.id"
SESSION_ID = "session.id"
METADATA = "metadata"
TAGS = "tag.tags"
FIRST_TOKEN_EVENT = "First Token Stream Event"  # what openinference-instrumentation-openai emits

# -- OpenTelemetry GenAI ------------------------------------------------------------------
GENAI_OPERATION = "gen_ai.operation.name"
GENAI_PROVIDER = "gen_ai.provider.name"
GENAI_REQUEST_MODEL = "gen_ai.request.model"
GENAI_RESPONSE_MODEL = "gen_ai.response.model"
GENAI_MAX_TOKENS = "gen_ai.request.max_tokens"
GENAI_TEMPERATURE = "gen_ai.request.temperature"
GENAI_TOP_P = "gen_ai.request.top_p"
GENAI_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GENAI_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GENAI_FINISH_REASONS = "gen_ai.response.finish_reasons"
GENAI_RESPONSE_ID = "gen_ai.response.id"
GENAI_CONVERSATION_ID = "gen_ai.conversation.id"
GENAI_INPUT_MESSAGES = "gen_ai.input.messages"
GENAI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GENAI_TOKEN_TYPE = "gen_ai.token.type"
ERROR_TYPE = "error.type"
METRIC_TOKEN_USAGE = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION = "gen_ai.client.operation.duration"
# Bucket boundaries the GenAI conventions recommend for these two histograms.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24,
                    20.48, 40.96, 81.92)

# -- the workbench's own ------------------------------------------------------------------
WB_OPERATION = "workbench.operation"
WB_TEAM = "workbench.team"
WB_KEY_ID = "workbench.key_id"
WB_PROFILE = "workbench.profile"
WB_TTFT_MS = "workbench.ttft_ms"

# Host suffix of a provider's base_url -> (OpenInference llm.provider, llm.system,
# gen_ai.provider.name). llm.system has fewer values than llm.provider upstream.
_HOSTS: tuple[tuple[str, tuple[str, str | None, str]], ...] = (
    ("openai.azure.com", ("azure", "openai", "azure.ai.openai")),
    ("api.openai.com", ("openai", "openai", "openai")),
    ("anthropic.com", ("anthropic", "anthropic", "anthropic")),
    ("mistral.ai", ("mistralai", "mistralai", "mistral_ai")),
    ("cohere.com", ("cohere", "cohere", "cohere")),
    ("cohere.ai", ("cohere", "cohere", "cohere")),
    ("googleapis.com", ("google", "vertexai", "gcp.vertex_ai")),
    ("groq.com", ("groq", None, "groq")),
    ("x.ai", ("xai", None, "x_ai")),
    ("deepseek.com", ("deepseek", None, "deepseek")),
    ("fireworks.ai", ("fireworks", None, "fireworks")),
    ("perplexity.ai", ("perplexity", None, "perplexity")),
    ("amazonaws.com", ("aws", None, "aws.bedrock")),
)


def provider_names(profile_kind: str, base_url: str | None,
                   override: str | None = None) -> tuple[str | None, str | None, str]:
    """(llm.provider, llm.system, gen_ai.provider.name) for a profile. Known hosted APIs
    get their standard names (Phoenix prices spans from them); the embedded runtime and
    self-hosted servers have no standard name, so OpenInference's are left unset and
    GenAI's ``gen_ai.provider.name`` says what runs it. ``override`` (a profile's
    ``telemetry_provider``) wins: an OpenAI-compatible proxy in front of OpenAI is
    ``openai``."""
    if override:
        for _, names in _HOSTS:
            if names[0] == override:
                return names
        return override, None, override
    if profile_kind == "embedded":
        return None, None, "llama_cpp"
    host = (urlparse(base_url or "").hostname or "").lower()
    for suffix, names in _HOSTS:
        if host == suffix or host.endswith("." + suffix):
            return names
    return None, None, "openai_compatible"


def metadata(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The ``metadata`` attribute (a JSON object in OpenInference), unset values dropped."""
    return {k: v for k, v in attrs.items() if v is not None}


__all__ = [name for name in dir() if name.isupper() and not name.startswith("_")] + [
    "metadata", "provider_names"]
