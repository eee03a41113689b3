"""Shared fixtures. Every test runs in its own working directory and data dir, offline."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import postgres_url
from workbench.api import offline_env
from workbench.config import load_settings
from workbench.migrations import drop_everything
from workbench.models.gateway import Gateway
from workbench.store import Store

offline_env()


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("WORKBENCH_") and var not in (
                "WORKBENCH_TEST_POSTGRES_URL", "WORKBENCH_REQUIRE_POSTGRES",
                "WORKBENCH_PHOENIX_BIN", "WORKBENCH_REQUIRE_PHOENIX", "WORKBENCH_REQUIRE_S3"):
            monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / ".workbench"))
    # A developer's own `workbench join` must not send the tests to a classroom.
    monkeypatch.setenv("WORKBENCH_CLASSROOM_DIR", str(tmp_path / ".classroom-home"))


@pytest.fixture(scope="session")
def embedded_provider(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One embedded runtime for the whole run (loading models once keeps tests quick)."""
    from workbench.models.embedded import EmbeddedProvider

    return EmbeddedProvider(tmp_path_factory.mktemp("models"), n_threads=2)


@pytest.fixture
def make_gateway(embedded_provider: Any, tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """``make_gateway(providers={...}, store=..., **settings)`` -> Gateway (local principal)."""
    made: list[Gateway] = []

    def factory(providers: dict[str, Any] | None = None, store: Store | None = None,
                **overrides: Any) -> Gateway:
        settings = load_settings(**overrides)
        gw = Gateway(settings, store=store,
                     providers={"embedded": embedded_provider, **(providers or {})})
        made.append(gw)
        return gw

    yield factory
    for gw in made:
        gw.store.dispose()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real SeaweedFS S3 server for the whole run (tests/s3_server.py); skipped
    without the `weed` binary unless WORKBENCH_REQUIRE_S3=1."""
    from tests.s3_server import running_s3_server

    with running_s3_server(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh, migrated store on SQLite and (when available) on PostgreSQL."""
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        url = postgres_url()
        assert url
        fresh = Store(url, migrate=False)
        with fresh.engine.begin() as conn:
            drop_everything(conn)
        fresh.dispose()
        store = Store(url)
    yield store
    store.dispose()
