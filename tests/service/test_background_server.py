"""BackgroundServer: a real uvicorn in a thread, for labs and notebooks."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from workbench.service import BackgroundServer


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    return app


def test_serves_until_stopped_and_frees_the_port() -> None:
    server = BackgroundServer(_app())
    assert server.url == f"http://127.0.0.1:{server.port}/" and not server.running
    with server:
        assert server.running
        assert httpx.get(server.url + "ping").json() == {"pong": "yes"}
    assert not server.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "ping", timeout=2)
    server.stop()  # a second stop is harmless
    # The port is free again: a new server can take it.
    with BackgroundServer(_app(), port=server.port) as again:
        assert httpx.get(again.url + "ping").status_code == 200


def test_two_servers_get_distinct_ports() -> None:
    with BackgroundServer(_app()) as a, BackgroundServer(_app()) as b:
        assert a.port != b.port
        assert httpx.get(a.url + "ping").status_code == httpx.get(b.url + "ping").status_code == 200
