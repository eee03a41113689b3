"""Two replicas of the service, for real: two `workbench serve` processes, each in its own
project folder with its own data dir, sharing nothing but a PostgreSQL store and one
LanceDB collection on S3 (SeaweedFS, tests/s3_server.py). The topology of the deployment
playbook, minus the load balancer: the test alternates requests between the replicas.

Checked: budgets stay exact and feedback is de-duplicated when a burst is split across
the replicas; both answer the same question with the same sources; a re-index run from one
replica's project is what the other replica answers from next; the replicas' logs never
hold the object-store credentials. Chat goes to the benchmarks' OpenAI-compatible mock on
loopback (priced so that budgets run out); embeddings (ingest and every query) come from
the real embedded ONNX model. Skipped without PostgreSQL or SeaweedFS unless CI requires
them (WORKBENCH_REQUIRE_POSTGRES / WORKBENCH_REQUIRE_S3).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.s3_server import SECRET_ENV, S3Server
from tests.service.service_helpers import (
    QUESTION,
    ServeProcess,
    bearer,
    mock_upstream,
    project_env,
    write_project,
)
from tests.service.test_service_multiworker import _key_state, burst, root_pids
from workbench.api import connect
from workbench.config import load_settings
from workbench.models.gateway import Gateway
from workbench.observability.feedback import list_feedback
from workbench.retrieval import ingest
from workbench.store import ledger

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.embedded, pytest.mark.slow]
NEW_DOC = "# The keeper's cat\n\nThe keeper's cat is called Biscuit. It sleeps on the logbook.\n"


def _project(root: Path, upstream: str, store_url: str, s3: S3Server, uri: str) -> Path:
    cfg = write_project(root, upstream=upstream, store_url=store_url, collection="docs",
                        max_tokens=64)
    text = cfg.read_text(encoding="utf-8")
    cfg.write_text(text.replace("[workbench]\n", "[workbench]\n" + s3.toml(uri), 1),
                   encoding="utf-8")
    return cfg


@pytest.fixture
def replicas(tmp_path: Path, private_postgres: str, s3_server: S3Server
             ) -> Iterator[tuple[ServeProcess, ServeProcess, Gateway, Path]]:
    """Replicas a and b (one process each) and an admin gateway on replica a's project."""
    uri = s3_server.uri()
    with mock_upstream() as upstream:
        roots = [tmp_path / "replica-a", tmp_path / "replica-b"]
        cfgs = [_project(r, upstream.base_url, private_postgres, s3_server, uri) for r in roots]
        gw = connect(settings=load_settings(cfgs[0]))
        ingest(gw, [roots[0] / "corpus"], collection="docs", progress=False)
        a = ServeProcess(roots[0], log_name="serve-a.log")
        b = ServeProcess(roots[1], log_name="serve-b.log")
        try:
            a.wait_ready()
            b.wait_ready()
            yield a, b, gw, roots[0]
        finally:
            a.stop()
            b.stop()
            gw.close()
        for replica in (a, b):  # the credentials never reach a log line
            log = replica.log.read_text(errors="replace")
            assert s3_server.secret_key not in log and s3_server.access_key not in log
        assert not (roots[1] / ".workbench" / "lancedb").exists()  # b read S3 only


def _sources(resp: httpx.Response) -> list[tuple[str, str, str]]:
    assert resp.status_code == 200, resp.text
    return [(s["source"], s["heading"], s["snippet"]) for s in resp.json()["sources"]]


def test_two_replicas_share_postgres_and_one_s3_collection(
        replicas: tuple[ServeProcess, ServeProcess, Gateway, Path]) -> None:
    a, b, gw, root_a = replicas
    both = [a, b]
    _, secret = gw.policy.create_key(team="replicas")
    headers = bearer(secret)

    # -- the same question, the same sources from either replica ---------------------------
    answers = [httpx.post(r.base + "/ask", json={"question": QUESTION}, headers=headers,
                          timeout=120) for r in both]
    cited = [_sources(resp) for resp in answers]
    assert cited[0] == cited[1] and cited[0], cited
    assert cited[0][0][0] == str(root_a / "corpus" / "lighthouse.md")
    assert len(root_pids(gw, [r.json()["trace_id"] for r in answers], wait_for=2)) == 2

    # -- a budget shared by a burst split across the replicas: never overspent --------------
    # Each answer reserves ~$1.29 and costs $0.18 (see service_helpers.write_project).
    key_id, budget_secret = gw.policy.create_key(team="replicas-budget", budget_usd=2.0)
    burst_answers = burst(both, "/ask", [{"question": QUESTION}] * 12, bearer(budget_secret))
    statuses = [r.status_code for r in burst_answers]
    assert set(statuses) <= {200, 429} and 1 <= statuses.count(200) <= 4, statuses
    budget, ledgered, open_reservations = _key_state(gw, key_id)
    assert open_reservations == 0 and budget.reserved_usd == pytest.approx(0.0, abs=1e-9)
    assert budget.spent_usd <= budget.budget_usd
    assert budget.spent_usd == pytest.approx(ledgered)
    ok = [r.json()["trace_id"] for r in burst_answers if r.status_code == 200]
    with gw.store.read() as conn:
        charged = conn.execute(select(func.count()).select_from(ledger).where(
            ledger.c.key_id == key_id, ledger.c.endpoint == "chat",
            ledger.c.outcome == "ok")).scalar_one()
    assert charged == len(ok)
    assert all(_sources(r) == cited[0] for r in burst_answers if r.status_code == 200)

    # -- the same feedback arriving at both replicas: one row, every occurrence counted ------
    trace = answers[0].json()["trace_id"]
    thumbs = burst(both, "/feedback", [{"trace_id": trace, "kind": "thumbs", "value": True}]
                   * 10, headers)
    assert all(r.status_code in (200, 201) for r in thumbs), [r.text for r in thumbs]
    assert sum(r.json()["status"] == "created" for r in thumbs) == 1
    rows = [r for r in list_feedback(gw.store, limit=100) if r["trace_id"] == trace]
    assert len(rows) == 1 and rows[0]["occurrences"] == 10

    # -- a re-index from replica a's project is what replica b answers from next -------------
    question = "What is the keeper's cat called?"
    cat = root_a / "corpus" / "cat.md"
    before = _sources(httpx.post(b.base + "/ask", json={"question": question},
                                 headers=headers, timeout=120))
    assert str(cat) not in {src for src, *_ in before}
    cat.write_text(NEW_DOC, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "workbench", "ingest", str(cat.parent), "--json"],
                          cwd=root_a, env=project_env(root_a), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 60
    while True:  # each answer opens the latest table version: no restart, no cache to flush
        after = [_sources(httpx.post(r.base + "/ask", json={"question": question},
                                     headers=headers, timeout=120)) for r in both]
        if after[1] and after[1][0][0] == str(cat) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert after[1][0][0] == str(cat), after
    assert after[0] == after[1]


def test_readiness_names_refused_object_store_credentials(
        s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A replica whose credentials are wrong goes unready with the reason, not a trace."""
    from workbench.service import ServiceSettings, create_service_app

    gw = connect(settings=load_settings(**s3_server.settings()))
    monkeypatch.setenv(SECRET_ENV, "wrong-" + s3_server.secret_key[:4])
    app = create_service_app(gw, ServiceSettings(warmup=False))
    try:
        with TestClient(app) as client:
            resp = client.get("/readyz")
    finally:
        gw.close()
    body: dict[str, Any] = resp.json()
    assert resp.status_code == 503, body
    assert "refused the credentials" in str(body) and "SignatureDoesNotMatch" in str(body)
    assert "wrong-" not in resp.text and s3_server.secret_key not in resp.text
