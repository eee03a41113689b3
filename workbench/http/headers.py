"""Header names the workbench's HTTP apps and clients share (a leaf: imports nothing)."""

from __future__ import annotations

# Every response of the gateway proxy and the service carries the request's trace id here;
# probes and clients read it back.
TRACE_HEADER = "x-workbench-trace-id"

__all__ = ["TRACE_HEADER"]
