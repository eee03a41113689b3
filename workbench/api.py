"""``connect()``: the one-line entry point for notebooks and scripts."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from workbench.config import Settings, load_settings
from workbench.models.gateway import Gateway


def offline_env() -> None:
    """Make sure no library we load phones home (STACK.md: hub lookups, telemetry)."""
    for var, val in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
                     ("RAGAS_DO_NOT_TRACK", "true"), ("DO_NOT_TRACK", "1"),
                     ("ANONYMIZED_TELEMETRY", "False"), ("LANCEDB_LOG", "error")):
        os.environ.setdefault(var, val)


def connect(key: str | None = None, *, profile: str | None = None,
            config: str | Path | None = None, settings: Settings | None = None,
            **overrides: Any) -> Gateway:
    """A Gateway for the current settings (``workbench.toml`` + ``WORKBENCH_*``).

    ``key``: act as that workbench key (its allowlist, budget, limits) instead of the
    local owner. ``profile`` / ``overrides``: override settings for this session.
    """
    offline_env()
    if settings is None:
        settings = load_settings(config, profile=profile, **overrides)
    logging.getLogger("workbench").setLevel(settings.log_level.upper())
    gw = Gateway(settings)
    return gw.as_key(key) if key else gw


__all__ = [
    "connect", "offline_env",
]
