"""The service on a throw-away data dir, with the corpus ingested and a key of its own.

Offline on the embedded model by default. The same tests run against a real model when
the profile says so, e.g. in CI: WORKBENCH_PROFILE=openai with OPENAI_API_KEY a secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A TestClient of app.create_app() that sends a valid key with every request."""
    env = pytest.MonkeyPatch()
    env.setenv("WORKBENCH_CONFIG", str(ROOT / "workbench.toml"))
    env.setenv("WORKBENCH_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    for shared in ("WORKBENCH_STORE_URL", "WORKBENCH_LANCEDB_URI"):
        env.delenv(shared, raising=False)  # tests never write to a shared store
    from workbench.api import connect
    from workbench.retrieval import ingest
    from workbench.service import load_service_settings

    gw = connect()
    ingest(gw, [ROOT / "corpus"], collection=load_service_settings().collection,
           progress=False)
    _, key = gw.policy.create_key(team="tests")
    gw.close()
    from app import create_app  # after the environment is set: it reads the settings

    try:
        with TestClient(create_app(), headers={"Authorization": f"Bearer {key}"}) as client:
            yield client
    finally:
        env.undo()
