"""Helpers the tests import (fixtures stay in conftest.py): a free loopback port, an ASGI
app served on it, the PostgreSQL URL under test."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

__all__ = ["free_port", "live_server", "postgres_url", "stop_process"]


def postgres_url() -> str | None:
    """The PostgreSQL URL under test; skips the test without one (fails it when CI
    requires PostgreSQL)."""
    url = os.environ.get("WORKBENCH_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("WORKBENCH_REQUIRE_POSTGRES") == "1":
            pytest.fail("WORKBENCH_REQUIRE_POSTGRES=1 but WORKBENCH_TEST_POSTGRES_URL is unset")
        pytest.skip("no PostgreSQL: set WORKBENCH_TEST_POSTGRES_URL (CI does)")
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port (background thread);
    yields the base URL without its trailing slash. ``from tests.servers import
    live_server``. Lifespan off: the tests own the app's gateway."""
    from workbench.service.background import BackgroundServer

    with BackgroundServer(app, lifespan="off") as server:
        yield server.url.rstrip("/")


def stop_process(proc: subprocess.Popen[Any], timeout_s: float = 30) -> None:
    """SIGTERM a child the test started, then SIGKILL it if it is still there after
    ``timeout_s``; returns once it has exited."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
