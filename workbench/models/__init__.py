"""Governed model access: providers, the embedded runtime, policy, guardrails, ledger,
audit, the Gateway, its call events and its OpenAI-compatible proxy.

    from workbench.models import Gateway, CallObserver

Names load on first use (PEP 562), so importing the package costs nothing; the most used
ones are also exported by ``workbench`` itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.lazy import lazy_exports

_EXPORTS = {
    "Gateway": "gateway", "StreamResult": "gateway", "TokenSink": "gateway",
    "CallEvents": "hooks", "CallObserver": "hooks", "CallStart": "hooks",
    "Subscriber": "hooks",
    "ChatRequest": "types", "ChatResult": "types", "EmbeddingRequest": "types",
    "EmbeddingResult": "types",
    "Policy": "policy", "Principal": "policy",
    "OpenAICompatibleProvider": "providers", "Provider": "providers",
}

__all__ = ["CallEvents", "CallObserver", "CallStart", "ChatRequest", "ChatResult",
           "EmbeddingRequest", "EmbeddingResult", "Gateway", "OpenAICompatibleProvider", "Policy",
           "Principal", "Provider", "StreamResult", "Subscriber", "TokenSink"]

if TYPE_CHECKING:
    from workbench.models.gateway import Gateway, StreamResult, TokenSink
    from workbench.models.hooks import CallEvents, CallObserver, CallStart, Subscriber
    from workbench.models.policy import Policy, Principal
    from workbench.models.providers import OpenAICompatibleProvider, Provider
    from workbench.models.types import ChatRequest, ChatResult, EmbeddingRequest, EmbeddingResult

__getattr__ = lazy_exports(__name__, _EXPORTS, globals(), prefix="workbench.models.")


def __dir__() -> list[str]:
    return __all__
