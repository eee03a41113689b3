"""CLI for the production service: ``workbench serve``."""

from __future__ import annotations

import ipaddress
import os
import sys
from typing import Annotated

import typer

from workbench.cli.common import console
from workbench.errors import ConfigError

DEFAULT_APP = "workbench.service.app:app_factory"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind (0.0.0.0 in a container).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(
        min=1, help="Worker processes (share the store: use Postgres for more than one "
                    "machine).")] = 1,
    collection: Annotated[str | None, typer.Option(
        help="Collection to answer from (default: service setting `collection`).")] = None,
    no_auth: Annotated[bool, typer.Option(
        "--no-auth", help="Answer without keys, as the local owner (only on a loopback "
                          "host; for labs).")] = False,
    app_factory: Annotated[str, typer.Option(
        "--app", help="module:function returning the FastAPI app, imported from the "
                      "current directory (a copy of templates/service: app:create_app).")]
    = DEFAULT_APP,
) -> None:
    """Run the production service: POST /ask (+ /ask/stream), /feedback, /healthz,
    /readyz, /metrics and the chat page at /."""
    import uvicorn
    from uvicorn.importer import ImportFromStringError, import_from_string

    from workbench.api import connect
    from workbench.observability.access_log import uvicorn_log_config
    from workbench.retrieval import Collections
    from workbench.service.settings import env_for, load_service_settings

    svc = load_service_settings(collection=collection, auth=False if no_auth else None)
    if not svc.auth and not _loopback(host):
        raise ConfigError(f"refusing to serve without keys on {host}: with auth off every "
                          "caller acts as the local owner, without limits. Bind 127.0.0.1, "
                          "or turn auth on")
    gw = connect()  # fails early, with a clear message, on bad settings or an unreachable store
    try:
        missing = svc.collection not in Collections.for_settings(gw.settings).names()
        log_level = gw.settings.log_level.lower()
    finally:
        gw.close()
    if missing:
        console.print(f"[yellow]collection {svc.collection!r} does not exist yet: /readyz "
                      f"stays red until `workbench ingest PATH --collection {svc.collection}`[/]")
    # Worker processes build the app from the environment (uvicorn's factory mode), so the
    # options travel as WORKBENCH_SERVICE_* variables.
    os.environ.update(env_for(svc))
    if app_factory != DEFAULT_APP:
        # A team's app.py lives in the working directory; spawned workers find it through
        # PYTHONPATH (they do not inherit this process's sys.path).
        here = os.getcwd()
        sys.path.insert(0, here)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (here, os.environ.get("PYTHONPATH")) if p)
    try:
        import_from_string(app_factory)
    except ImportFromStringError as exc:
        raise ConfigError(f"--app {app_factory!r}: {exc}") from None
    where = f"http://{host}:{port}"
    console.print(f"serving collection {svc.collection!r} on {where} ({workers} worker"
                  f"{'s' if workers > 1 else ''}, auth {'on' if svc.auth else 'OFF'}): "
                  f"chat page {where}/ · API docs {where}/docs", highlight=False)
    # The access log (INFO) drops query strings and masks paths: they are caller input.
    uvicorn.run(app_factory, factory=True, host=host, port=port, workers=workers,
                timeout_graceful_shutdown=svc.shutdown_grace_s, log_level=log_level,
                log_config=uvicorn_log_config())


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


__all__ = [
    "DEFAULT_APP", "register",
]
