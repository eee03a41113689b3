"""The production service template: a FastAPI app and a small web chat page.

    workbench serve --port 8000 --workers 2          # or, in code:
    from workbench.service import create_service_app
    app = create_service_app(collection="handbook")

``POST /ask`` answers from a retrieval collection with numbered sources and a trace id,
``POST /ask/stream`` streams it, ``POST /feedback`` records explicit and implicit
feedback keyed by that trace id; ``/healthz``, ``/readyz`` and ``/metrics`` are for the
platform; ``/`` is the chat page. See docs/playbooks/deployment.md.

Submodules load on first use (FastAPI and the retrieval stack are not needed to import
the package). ``BackgroundServer`` runs an app from a thread, for notebooks and labs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.lazy import lazy_exports

_EXPORTS = {
    "BackgroundServer": "workbench.service.background",
    "Caller": "workbench.service.deps",
    "create_service_app": "workbench.service.app",
    "app_factory": "workbench.service.app",
    "ServiceSettings": "workbench.service.settings",
    "load_service_settings": "workbench.service.settings",
}

__all__ = ["BackgroundServer", "Caller", "ServiceSettings", "app_factory", "create_service_app",
           "load_service_settings"]

if TYPE_CHECKING:
    from workbench.service.app import app_factory, create_service_app
    from workbench.service.background import BackgroundServer
    from workbench.service.deps import Caller
    from workbench.service.settings import ServiceSettings, load_service_settings


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
