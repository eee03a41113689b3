"""Service settings: the ``[service]`` table of ``workbench.toml``, then
``WORKBENCH_SERVICE_<NAME>`` environment variables, then explicit overrides.

The service shares everything else (profile, store, LanceDB, tracing) with the rest of
the workbench through :func:`workbench.config.load_settings`. A file that has a
``[service]`` table keeps the workbench settings under ``[workbench]``::

    [workbench]
    profile = "embedded"
    store_url = "postgresql://..."

    [service]
    collection = "handbook"
    cors_origins = ["https://intranet.example.com"]
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workbench.errors import ConfigError

ENV_PREFIX = "WORKBENCH_SERVICE_"


class ServiceSettings(BaseModel):
    """What ``workbench serve`` and :func:`create_service_app` need beyond the workbench
    settings. Every field can be set as ``WORKBENCH_SERVICE_<NAME>`` (lists: commas)."""

    model_config = ConfigDict(extra="forbid")

    collection: str = Field("docs", description="The retrieval collection /ask answers from.")
    title: str = Field("Ask the docs", max_length=120, description="Heading of the chat page.")
    k: int = Field(3, ge=1, le=20, description="Sources retrieved per answer.")
    mode: Literal["hybrid", "vector", "fts"] = Field("hybrid", description="Search mode.")
    model: str | None = Field(None, description="Chat model (default: the profile's).")
    max_tokens: int = Field(128, gt=0, le=4096, description="Longest answer, in tokens.")
    auth: bool = Field(
        True, description="Require a workbench key (Authorization: Bearer). Off only for a "
        "lab on 127.0.0.1: requests then act as the local owner, without limits.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser "
        "(none by default: the chat page is same-origin).")
    max_request_bytes: int = Field(65_536, gt=0, description="Largest accepted request body.")
    max_question_chars: int = Field(4_000, gt=0, description="Longest accepted question.")
    max_inflight: int = Field(
        32, gt=0, description="Concurrent /ask requests per worker; more get 503 + Retry-After.")
    feedback_read: bool = Field(
        False, description="Serve GET /feedback and /feedback/stats (other users' comments "
        "and edits: off unless the service is internal).")
    strict_feedback: bool = Field(
        True, description="Accept feedback only for trace ids this service answered for the "
        "same key (else 404).")
    shutdown_grace_s: int = Field(
        20, ge=0, description="On SIGTERM, how long in-flight requests may finish.")
    warmup: bool = Field(
        True, description="Load the models at startup so the first request is not slow.")


def _read_table(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file") from None
    table = data.get("service")
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: `service` must be a table ([service])")
    if "workbench" not in data:
        # load_settings reads the whole file as workbench settings unless it has a
        # [workbench] table, and would then reject `service` as an unknown setting.
        raise ConfigError(f"{path} has a [service] table: put the other settings under a "
                          "[workbench] table too (see docs/playbooks/deployment.md)")
    return dict(table)


def _env(environ: dict[str, str] | os._Environ[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in ServiceSettings.model_fields.items():
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is None:
            continue
        if field.annotation == list[str]:
            out[name] = [v.strip() for v in raw.split(",") if v.strip()]
        else:
            out[name] = raw
    return out


def load_service_settings(path: str | Path | None = None, environ: dict[str, str] | None = None,
                          **overrides: Any) -> ServiceSettings:
    """Read the ``[service]`` table (``path``, ``$WORKBENCH_CONFIG`` or ./workbench.toml),
    then ``WORKBENCH_SERVICE_*``, then ``overrides`` (None values are ignored)."""
    env = os.environ if environ is None else environ
    cfg = Path(path or env.get("WORKBENCH_CONFIG") or "workbench.toml")
    data: dict[str, Any] = _read_table(cfg) if cfg.exists() else {}
    if path is not None and not cfg.exists():
        raise ConfigError(f"config file {cfg} does not exist")
    data.update(_env(env))
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ServiceSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        raise ConfigError(f"invalid service settings ({problems}); check the [service] "
                          f"table and {ENV_PREFIX}* variables") from None


def env_for(settings: ServiceSettings) -> dict[str, str]:
    """``settings`` as ``WORKBENCH_SERVICE_*`` variables: how ``workbench serve`` hands
    its options to uvicorn worker processes."""
    out = {}
    for name in ServiceSettings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, list):
            value = ",".join(value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        out[ENV_PREFIX + name.upper()] = str(value)
    return out


__all__ = ["ENV_PREFIX", "ServiceSettings", "env_for", "load_service_settings"]
