"""Settings: ``workbench.toml`` in the working directory, then ``WORKBENCH_*`` env vars.

Precedence (last wins): built-in defaults < ``workbench.toml`` < environment. Every
top-level scalar setting ``x`` is read from ``WORKBENCH_X``. Provider keys are never read
from files: a profile names the *environment variable* that holds its key.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workbench.errors import ConfigError

if TYPE_CHECKING:
    from workbench.guardrails import Guardrails

GuardrailMode = Literal["mask", "block", "log-only", "off"]
ModelKind = Literal["chat", "completion", "embedding"]
# How ask() answers (workbench.retrieval.answer_strategies): "auto" picks by model size.
AnswerStrategy = Literal["auto", "extractive", "constrained", "free"]
# Object-store options that carry credentials (AWS keys and session tokens, Azure account
# keys and SAS tokens, GCS service-account keys): only ever read from the environment.
_CREDENTIAL_OPTION = re.compile(
    r"secret|token|password|access_key|account_key|sas|credential|service_account",
    re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ModelSpec(BaseModel):
    """One model the Gateway can route to."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Name clients use (`model` in requests).")
    provider: str = Field(description="`embedded` or the name of an HTTP profile.")
    upstream: str | None = Field(None, description="Name the provider uses, if different.")
    kind: ModelKind = "chat"
    input_usd_per_mtok: float = Field(0.0, ge=0, description="Price per million input tokens.")
    output_usd_per_mtok: float = Field(0.0, ge=0, description="Price per million output tokens.")
    context_window: int = Field(8192, gt=0)
    max_output_tokens: int = Field(1024, gt=0, description="Default and cap for max_tokens.")

    @property
    def upstream_name(self) -> str:
        return self.upstream or self.name

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (
            tokens_in * self.input_usd_per_mtok + tokens_out * self.output_usd_per_mtok
        ) / 1_000_000


class Profile(BaseModel):
    """Where model calls go: the embedded runtime or an OpenAI-compatible endpoint."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["embedded", "openai"] = "openai"
    base_url: str | None = Field(None, description="OpenAI-compatible base URL (…/v1).")
    api_key_env: str | None = Field(
        None, description="Name of the env var holding the provider key (never the key)."
    )
    api_key_file: Path | None = Field(
        None, description="A file holding only the key, readable by its owner alone (0600); "
        "used when api_key_env is unset (`workbench join` writes one).")
    chat_model: str
    embed_model: str = "minilm-l6-v2"
    models: list[ModelSpec] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")
    telemetry_provider: str | None = Field(
        None, description="Provider name on spans (e.g. openai, azure): default from base_url's host.")
    answer_strategy: AnswerStrategy = Field(
        "auto", description="How ask() answers: extractive (quote cited sentences), "
        "constrained (JSON-schema generation), free, or auto (by model size).")


def _embedded_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            name="smollm2-135m", provider="embedded", kind="chat",
            context_window=2048, max_output_tokens=256,
        ),
        ModelSpec(
            name="gemma3-270m", provider="embedded", kind="completion",
            context_window=4096, max_output_tokens=256,
        ),
        ModelSpec(name="minilm-l6-v2", provider="embedded", kind="embedding",
                  context_window=256, max_output_tokens=1),
    ]


def builtin_profiles() -> dict[str, Profile]:
    return {
        "embedded": Profile(kind="embedded", chat_model="smollm2-135m"),
        "ollama": Profile(
            base_url="http://localhost:11434/v1",
            chat_model="llama3.2",
            embed_model="nomic-embed-text",
            models=[
                ModelSpec(name="llama3.2", provider="ollama"),
                ModelSpec(name="nomic-embed-text", provider="ollama", kind="embedding"),
            ],
        ),
        "openai": Profile(
            base_url="https://api.openai.com/v1",
            api_key_env="OPENAI_API_KEY",
            chat_model="gpt-4o-mini",
            embed_model="text-embedding-3-small",
            models=[
                ModelSpec(name="gpt-4o-mini", provider="openai", input_usd_per_mtok=0.15,
                          output_usd_per_mtok=0.60, context_window=128000),
                ModelSpec(name="gpt-4o", provider="openai", input_usd_per_mtok=2.50,
                          output_usd_per_mtok=10.0, context_window=128000),
                ModelSpec(name="text-embedding-3-small", provider="openai", kind="embedding",
                          input_usd_per_mtok=0.02),
            ],
        ),
    }


class Settings(BaseModel):
    """All settings. Scalars can be set in ``workbench.toml`` or as ``WORKBENCH_<NAME>``."""

    model_config = ConfigDict(extra="forbid")

    profile: str = Field(
        "embedded",
        description="Active profile: embedded, ollama, openai, or one from [profiles.*].",
    )
    data_dir: Path = Field(Path(".workbench"), description="Holds the SQL store and LanceDB.")
    store_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default SQLite in data_dir. postgresql://… for Postgres.",
    )
    lancedb_uri: str | None = Field(
        None,
        description="Where retrieval collections live: a local dir, s3://…, or db://… "
        "(LanceDB Cloud); default data_dir/lancedb.",
    )
    lancedb_storage_options: dict[str, str] = Field(
        default_factory=dict,
        description="Object-store options for lancedb_uri that are not secrets (aws_endpoint, "
        "aws_region, allow_http, timeout...). Credentials are refused here: name their "
        "environment variables in lancedb_storage_env.",
    )
    lancedb_storage_env: dict[str, str] = Field(
        default_factory=dict,
        description="Object-store option -> NAME of the environment variable holding its "
        "value (aws_secret_access_key = \"TEAM_S3_SECRET\"), read when a collection is opened.",
    )
    base_url: str | None = Field(None, description="Override the active profile's base URL.")
    api_key_env: str | None = Field(
        None,
        description="Override the env var the active profile reads its key from.",
    )
    chat_model: str | None = Field(None, description="Default chat model (else the profile's).")
    answer_strategy: AnswerStrategy | None = Field(
        None, description="Override the active profile's answer_strategy for ask().")
    embed_model: str | None = Field(None, description="Default embedding model (else the profile's).")
    guardrail_mode: GuardrailMode = Field(
        "mask",
        description="Default PII/secret handling for principals without their own mode.",
    )
    output_guardrails: bool = Field(True, description="Also redact PII/secrets in model output.")
    redaction_patterns: dict[str, str] = Field(
        default_factory=dict,
        description="Your own identifiers to mask everywhere the workbench masks PII (prompts, "
        "answers, traces, feedback, eval runs, errors): KIND -> regular expression, e.g. "
        "EMPLOYEE_ID = 'EMP-\\d{6}' masks as [EMPLOYEE_ID].")
    mask_sources: bool = Field(
        True, description="Mask PII/secrets in retrieved text shown to callers (/ask sources, "
        "`workbench search`/`ask`); false shows the stored text as is.")
    cache: bool = Field(False, description="Exact-match response cache for the local principal.")
    n_threads: int = Field(2, gt=0, description="CPU threads for the embedded runtimes.")
    request_timeout_s: float = Field(60.0, gt=0, description="Upstream HTTP timeout.")
    max_retries: int = Field(2, ge=0, description="Upstream retries on 429/5xx/timeouts.")
    retry_backoff_s: float = Field(0.25, ge=0, description="First retry delay; doubles each time.")
    max_request_bytes: int = Field(1_000_000, gt=0, description="Largest accepted HTTP request body.")
    default_max_tokens: int = Field(256, gt=0, description="max_tokens when a request gives none.")
    log_level: str = Field("WARNING", description="Python logging level.")
    tracing: bool = Field(True, description="Record spans (OpenInference) in the local span store.")
    otlp_endpoint: str | None = Field(
        None, description="Also export spans over OTLP to this collector, e.g. "
        "http://localhost:4318 (default: $OTEL_EXPORTER_OTLP_ENDPOINT).")
    otlp_protocol: Literal["http/protobuf", "grpc"] | None = Field(
        None, description="OTLP protocol: http/protobuf (default) or grpc (extra [otlp-grpc]).")
    genai_semconv: bool = Field(
        True, description="Also write OpenTelemetry GenAI attributes (gen_ai.*) on model spans.")
    fallbacks: dict[str, list[str]] = Field(
        default_factory=dict,
        description="model -> models tried in order when it fails.",
    )
    models: list[ModelSpec] = Field(default_factory=list, description="Extra models / price overrides.")
    profiles: dict[str, Profile] = Field(default_factory=dict, description="Extra profiles.")

    @field_validator("lancedb_storage_options")
    @classmethod
    def _no_credentials_in_files(cls, options: dict[str, str]) -> dict[str, str]:
        if leaked := sorted(k for k in options if _CREDENTIAL_OPTION.search(k)):
            raise ValueError(f"{', '.join(leaked)} carries a credential and cannot be a value "
                             "here; put the NAME of the environment variable that holds it in "
                             "lancedb_storage_env instead")
        return {k.lower(): v for k, v in options.items()}

    @field_validator("lancedb_storage_env")
    @classmethod
    def _env_names_only(cls, names: dict[str, str]) -> dict[str, str]:
        # A value that is not a variable name is most likely the secret itself: refuse it
        # without echoing it.
        if bad := sorted(k for k, v in names.items() if not _ENV_NAME.match(v)):
            raise ValueError(f"{', '.join(bad)} must name an environment variable "
                             "(letters, digits, '_'), not hold a value")
        return {k.lower(): v for k, v in names.items()}

    @field_validator("redaction_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: dict[str, str]) -> dict[str, str]:
        from workbench.guardrails import pattern_recognizer

        for kind, pattern in patterns.items():
            pattern_recognizer(kind, pattern)  # raises ValueError naming what is wrong
        return patterns

    def redaction_policy(self) -> Guardrails:
        """The redaction policy these settings describe (default recognizers plus
        ``redaction_patterns``); it becomes the process's policy too (see
        :func:`workbench.guardrails.redaction_policy`)."""
        from workbench.guardrails import redaction_policy

        return redaction_policy(self.redaction_patterns)

    @property
    def resolved_store_url(self) -> str:
        if self.store_url:
            return self.store_url
        return f"sqlite:///{(self.data_dir / 'workbench.db').as_posix()}"

    def all_profiles(self) -> dict[str, Profile]:
        merged = builtin_profiles()
        merged.update(self.profiles)
        return merged

    def active_profile(self) -> Profile:
        profiles = self.all_profiles()
        if self.profile not in profiles:
            raise ConfigError(
                f"unknown profile {self.profile!r}; choose one of {sorted(profiles)} "
                "or add [profiles.<name>] to workbench.toml"
            )
        prof = profiles[self.profile]
        updates: dict[str, Any] = {}
        if self.base_url:
            updates["base_url"] = self.base_url
        if self.api_key_env:
            updates["api_key_env"] = self.api_key_env
        return prof.model_copy(update=updates) if updates else prof

    def model_specs(self) -> dict[str, ModelSpec]:
        """Every routable model: embedded ones (always, offline) + the profile's + overrides."""
        specs = {m.name: m for m in _embedded_models()}
        prof = self.active_profile()
        for m in prof.models:
            specs[m.name] = m.model_copy(update={"provider": self.profile})
        if prof.kind == "openai" and prof.chat_model not in specs:
            specs[prof.chat_model] = ModelSpec(name=prof.chat_model, provider=self.profile)
        for m in self.models:
            specs[m.name] = m
        return specs

    @property
    def default_chat_model(self) -> str:
        return self.chat_model or self.active_profile().chat_model

    @property
    def default_embed_model(self) -> str:
        return self.embed_model or self.active_profile().embed_model


_SCALAR_TYPES = (str, int, float, bool, Path)


def _env_overrides(environ: dict[str, str] | os._Environ[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        raw = environ.get(f"WORKBENCH_{name.upper()}")
        if raw is None:
            continue
        if field.annotation in (dict[str, list[str]], dict[str, str], list[ModelSpec],
                                dict[str, Profile]):
            continue  # structured settings live in workbench.toml only
        out[name] = raw
    return out


def load_settings(
    path: str | Path | None = None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Read ``workbench.toml`` (or ``path`` / ``$WORKBENCH_CONFIG``) and the environment."""
    env = os.environ if environ is None else environ
    cfg_path = Path(path or env.get("WORKBENCH_CONFIG") or "workbench.toml")
    data: dict[str, Any] = {}
    if cfg_path.exists():
        try:
            data = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{cfg_path}: not valid TOML ({exc}); fix the file") from None
        data = dict(data.get("workbench", data))
    elif path is not None:
        raise ConfigError(f"config file {cfg_path} does not exist")
    # A joined classroom (`workbench join`) beats workbench.toml; the environment and
    # arguments still beat it (WORKBENCH_PROFILE=embedded works offline in a workshop).
    from workbench.classroom.attendee import overlay

    data = overlay(data, env)
    data.update(_env_overrides(env))
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(
            f"invalid settings ({problems}); check workbench.toml and WORKBENCH_* variables"
        ) from None
    settings.active_profile()  # fail early on an unknown profile
    settings.redaction_policy()  # the process's policy from now on (errors, feedback, ...)
    return settings


__all__ = [
    "AnswerStrategy", "GuardrailMode", "ModelKind", "ModelSpec", "Profile", "Settings",
    "builtin_profiles", "load_settings",
]
