"""The service's endpoint groups, one module each with a module-level ``router``
(``feedback`` builds its router from the settings). Handlers reach the service's state
and the caller's Gateway through :mod:`workbench.service.deps`.

A new group: add a module here and include its router in
:func:`workbench.service.app.create_service_app` (``ROUTERS``).
"""

from __future__ import annotations

__all__: list[str] = []
