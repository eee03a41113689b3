"""Serve an ASGI app from a background thread: for labs, notebooks, screenshots and tests
that need a real HTTP server next to their own code (``workbench serve`` is for production).

    with BackgroundServer(create_service_app(gw)) as server:
        httpx.get(server.url + "healthz")
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any, Literal


class BackgroundServer:
    """uvicorn on a loopback port chosen by the OS (``port=0``), in a daemon thread.

    The socket is bound before the thread starts, so ``url`` is valid at once and two
    servers never race for a port. ``stop()`` asks uvicorn to finish in-flight requests
    and waits for the thread; calling it twice is harmless.
    """

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0,
                 lifespan: Literal["auto", "on", "off"] = "auto", log_level: str = "warning"):
        import uvicorn

        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://{host}:{self.port}/"
        from workbench.observability.access_log import uvicorn_log_config

        self._server = uvicorn.Server(uvicorn.Config(app, lifespan=lifespan,
                                                     log_level=log_level,
                                                     log_config=uvicorn_log_config()))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"uvicorn-{self.port}", daemon=True)

    def start(self, timeout_s: float = 30.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._sock.close()
                raise RuntimeError(f"the server on port {self.port} did not start "
                                   "(see the log above)")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)
        self._sock.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


__all__ = [
    "BackgroundServer",
]
