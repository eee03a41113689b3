"""The floor for gateway_overhead.py: a minimal pass-through proxy with no governance.

Same ASGI server as ``workbench gateway`` (uvicorn, one process, asyncio loop, h11) and
the same HTTP client (a keep-alive ``httpx.Client`` called in a worker thread, as the
Gateway's provider is; ``--client async`` uses ``httpx.AsyncClient`` on the loop instead,
which measured slower here); a raw ASGI app that reads the body, POSTs it to the
upstream and returns the upstream's status and bytes. No auth, no parsing, no JSON, no
store: whatever a Python proxy on this stack cannot avoid paying. The workbench's added
latency minus the floor's is the cost of governance (and of our framework layers).

    python benchmarks/floor_proxy.py --port 9200 --upstream http://127.0.0.1:9100/v1
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["make_app", "main"]


def make_app(upstream: str, mode: str = "thread") -> Any:
    import anyio.to_thread
    import httpx

    client: httpx.AsyncClient | None = None
    sync_client = httpx.Client(base_url=upstream, timeout=30)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal client
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    client = httpx.AsyncClient(base_url=upstream, timeout=30)
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    if client is not None:
                        await client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"] == "/healthz":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        assert client is not None
        path = scope["path"].removeprefix("/v1")
        headers = {"content-type": "application/json"}
        if mode == "async":
            resp = await client.post(path, content=body, headers=headers)
        else:
            resp = await anyio.to_thread.run_sync(
                lambda: sync_client.post(path, content=body, headers=headers))
        await send({"type": "http.response.start", "status": resp.status_code,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": resp.content})

    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True, help="Base URL of the upstream (…/v1).")
    ap.add_argument("--client", choices=["thread", "async"], default="thread")
    args = ap.parse_args()
    import uvicorn

    uvicorn.run(make_app(args.upstream, args.client), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False, loop="asyncio", http="h11", lifespan="on")


if __name__ == "__main__":
    main()
