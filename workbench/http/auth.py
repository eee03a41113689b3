"""The bearer-key scheme both apps document and read (keys are checked by the Gateway)."""

from __future__ import annotations

from fastapi.security import HTTPBearer

# auto_error=False: a missing key is the Gateway's decision (401 in the workbench's
# error shape, or the local owner when the service runs without auth).
bearer = HTTPBearer(auto_error=False, description="A workbench key (wb-…).")

__all__ = ["bearer"]
