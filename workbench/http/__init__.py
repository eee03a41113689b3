"""HTTP plumbing shared by the gateway proxy (``workbench.models.server``) and the
service (``workbench.service``): written once, so both apps answer alike.

- :mod:`~workbench.http.headers`: header names (``TRACE_HEADER``), a leaf anyone may import.
- :mod:`~workbench.http.errors`: error models, error classes, how an app writes errors
  (:class:`~workbench.http.errors.ErrorAnswers`) and the exception handlers.
- :mod:`~workbench.http.tracing`: the trace-id middleware and a request's trace.
- :mod:`~workbench.http.limits`: the request-body size limit.
- :mod:`~workbench.http.validation`: invalid requests answer 400 (not FastAPI's 422).
- :mod:`~workbench.http.auth`: the bearer-key scheme.
- :mod:`~workbench.http.health`: ``/healthz`` and ``/readyz`` answers.

Nothing is imported here: importing :mod:`workbench.http.headers` stays free.
"""

from __future__ import annotations

__all__: list[str] = []
