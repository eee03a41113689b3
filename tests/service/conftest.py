"""Fixtures for the service tests: a small corpus ingested with the real embedder (ONNX,
through the Gateway) into a real LanceDB collection, and the service app around it.

Unit-level tests answer with the FakeProvider seam so they exercise HTTP, governance and
feedback quickly; the integration tests (browser, disconnect, serve) use the embedded
model or a real OpenAI-compatible server on loopback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fakes import FakeProvider
from tests.service.service_helpers import FAKE_ANSWER, FAKE_MODELS, Served, write_corpus
from workbench.models.gateway import Gateway
from workbench.retrieval import ingest


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus")


@pytest.fixture
def make_service(make_gateway: Callable[..., Gateway], corpus: Path
                 ) -> Iterator[Callable[..., Served]]:
    """``make_service(provider=..., gateway_settings={...}, **service_settings)``: the
    corpus ingested into collection "docs", the app, a TestClient and a key."""
    from workbench.service import ServiceSettings, create_service_app

    clients: list[TestClient] = []

    def factory(provider: FakeProvider | None = None,
                gateway_settings: dict[str, Any] | None = None, ingest_corpus: bool = True,
                **service: Any) -> Served:
        fake = provider or FakeProvider(text=FAKE_ANSWER)
        gw = make_gateway(providers={"fake": fake}, **{
            "models": FAKE_MODELS, "chat_model": "fake-model", **(gateway_settings or {})})
        if ingest_corpus:
            ingest(gw, [corpus], collection="docs", progress=False)
        settings = ServiceSettings(**{"warmup": False, **service})
        app = create_service_app(gw, settings)
        client = TestClient(app, raise_server_exceptions=False)
        clients.append(client)
        served = Served(gw, app, client, fake)
        served.key_id, served.headers = served.new_key()
        return served

    yield factory
    for c in clients:
        c.close()


@pytest.fixture
def served(make_service: Callable[..., Served]) -> Served:
    return make_service()


@pytest.fixture
def private_postgres() -> Iterator[str]:
    """A fresh PostgreSQL database of its own (on WORKBENCH_TEST_POSTGRES_URL's server),
    so that servers started by a test never meet another test's tables."""
    import uuid

    import psycopg

    from tests.servers import postgres_url

    base = postgres_url()
    assert base
    name = "wb_service_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
