"""genai-workbench: governed model access, retrieval, evals, tracing and feedback.

    >>> import workbench
    >>> gw = workbench.connect()            # embedded profile: offline, no key
    >>> gw.chat("Say hello").text

Everything heavy is imported lazily (PEP 562 ``__getattr__``) so ``import workbench``
stays fast in notebooks and CLIs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "connect": "workbench.api",
    "Gateway": "workbench.models.gateway",
    "StreamResult": "workbench.models.gateway",
    "ChatResult": "workbench.models.types",
    "EmbeddingResult": "workbench.models.types",
    "Settings": "workbench.config",
    "Profile": "workbench.config",
    "ModelSpec": "workbench.config",
    "load_settings": "workbench.config",
    "Store": "workbench.store",
    "Policy": "workbench.models.policy",
    "Principal": "workbench.models.policy",
    "Guardrails": "workbench.guardrails",
    "Recognizer": "workbench.guardrails",
    "Finding": "workbench.guardrails",
    "Provider": "workbench.models.providers",
    "OpenAICompatibleProvider": "workbench.models.providers",
    "WorkbenchError": "workbench.errors",
    "AuthError": "workbench.errors",
    "PermissionDenied": "workbench.errors",
    "RateLimited": "workbench.errors",
    "BudgetExceeded": "workbench.errors",
    "ContentBlocked": "workbench.errors",
    "ModelNotFound": "workbench.errors",
    "BadRequest": "workbench.errors",
    "UpstreamError": "workbench.errors",
    "UpstreamTimeout": "workbench.errors",
    "ConfigError": "workbench.errors",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from workbench.api import connect
    from workbench.config import ModelSpec, Profile, Settings, load_settings
    from workbench.errors import (
        AuthError,
        BadRequest,
        BudgetExceeded,
        ConfigError,
        ContentBlocked,
        ModelNotFound,
        PermissionDenied,
        RateLimited,
        UpstreamError,
        UpstreamTimeout,
        WorkbenchError,
    )
    from workbench.guardrails import Finding, Guardrails, Recognizer
    from workbench.models.gateway import Gateway, StreamResult
    from workbench.models.policy import Policy, Principal
    from workbench.models.providers import OpenAICompatibleProvider, Provider
    from workbench.models.types import ChatResult, EmbeddingResult
    from workbench.store import Store


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
