"""Data at rest and data echoed back: caller input and ingested documents are masked,
hashed or pseudonymised wherever they are stored, logged or returned (issue 10).

Each test plants a canary email, card number and API key in one place a hostile caller
(or a careless document) can reach, then looks for them where they must not be: the
files under the data dir (SQLite, LanceDB), the rows of the store, logs, HTTP error
bodies, span attributes, reports and retrieval output."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.fakes import FakeProvider
from tests.service.service_helpers import (
    FAKE_MODELS,
    ServeProcess,
    bearer,
    project_env,
    write_project,
)
from workbench.errors import BadRequest, ModelNotFound, WorkbenchError
from workbench.guardrails import pseudonymise
from workbench.models.gateway import Gateway
from workbench.observability import feedback
from workbench.observability.access_log import RedactQueryFilter, redact_request_path
from workbench.retrieval import Collections, ask, ingest, search
from workbench.retrieval.ingest import OUTSIDE_ROOT, MaskingMismatch, discover
from workbench.store import Store, metadata

EMAIL = "canary.person@example.org"
CARD = "4111 1111 1111 1111"
KEY = "sk-proj-CANARYcanaryCANARYcanary0001"
CANARIES = (EMAIL, CARD, KEY)
# What a leak looks like in a URL or a log line, encoded or not.
MARKERS = ("canary.person", "CANARYcanaryCANARY", "4111 1111", "4111%201111", "4111+1111",
           "4111111111111111")


def assert_clean(where: str, blob: str | bytes, markers: tuple[str, ...] = CANARIES) -> None:
    for m in markers:
        needle: Any = m.encode() if isinstance(blob, bytes) else m
        assert needle not in blob, f"{m!r} leaked into {where}"


def data_dir_bytes(root: Path) -> bytes:
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files, f"nothing under {root}"
    return b"".join(p.read_bytes() for p in files)


def store_text(store: Store) -> str:
    """Every row of every table, as text (works on SQLite and Postgres alike)."""
    out = []
    with store.read() as conn:
        for table in metadata.sorted_tables:
            try:
                out += [repr(tuple(r)) for r in conn.execute(select(table))]
            except Exception:  # noqa: BLE001 - a table this store never created
                conn.rollback()
    return "\n".join(out)


def fake_gateway(make_gateway: Any, **settings: Any) -> Gateway:
    gw: Gateway = make_gateway(providers={"fake": FakeProvider(text="ok [1]")},
                               models=FAKE_MODELS, chat_model="fake-model", **settings)
    return gw


# -- errors that quote caller input ---------------------------------------------------
def test_error_messages_are_masked_when_made() -> None:
    for canary in CANARIES:
        err = ModelNotFound(f"unknown model {canary!r}")
        assert_clean("the message", err.message + str(err) + json.dumps(err.to_openai()))
    assert "[EMAIL]" in BadRequest(f"x {EMAIL}").message


def test_unknown_model_name_reaches_no_span_ledger_log_or_error(
        make_gateway: Any, caplog: pytest.LogCaptureFixture) -> None:
    from workbench.observability.traces import flush

    caplog.set_level(logging.DEBUG)
    gw = fake_gateway(make_gateway)
    _, secret = gw.policy.create_key(team="t")
    user = gw.as_key(secret)
    messages = []
    for canary in CANARIES:
        with pytest.raises(WorkbenchError) as exc:
            user.chat("hello", model=canary)
        messages.append(exc.value.message)
        with pytest.raises(WorkbenchError) as exc:
            user.embed("hello", model=canary)
        messages.append(exc.value.message)
    assert any("[EMAIL]" in m for m in messages)  # the message still says what was wrong
    flush(gw.store, 5.0)
    rows = store_text(gw.store)
    assert "ledger" in {t.name for t in metadata.sorted_tables} and rows
    for where, blob in {"errors": "\n".join(messages), "store rows": rows,
                        "logs": caplog.text}.items():
        assert_clean(where, blob)


def _proxy(make_gateway: Any) -> tuple[TestClient, dict[str, str]]:
    from workbench.models.server import create_app

    gw = fake_gateway(make_gateway)
    _, secret = gw.policy.create_key(team="t")
    return TestClient(create_app(gw), raise_server_exceptions=False), bearer(secret)


@pytest.mark.parametrize("canary", CANARIES)
def test_proxy_error_bodies_do_not_echo_caller_input(make_gateway: Any, canary: str) -> None:
    client, headers = _proxy(make_gateway)
    user_msg = [{"role": "user", "content": "hi"}]
    attempts = [
        client.get(f"/v1/models/{quote(canary, safe='')}", headers=headers),
        client.post("/v1/chat/completions", headers=headers,
                    json={"model": canary, "messages": user_msg}),
        client.post("/v1/embeddings", headers=headers, json={"model": canary, "input": "x"}),
        # A content part with an unknown type: pydantic's union-tag message quotes it.
        client.post("/v1/chat/completions", headers=headers, json={
            "model": "fake-model",
            "messages": [{"role": "user", "content": [{"type": canary, "text": "x"}]}]}),
        client.post("/v1/chat/completions", headers=headers, json={
            "model": "fake-model", "messages": user_msg, "temperature": canary}),
        client.post("/v1/chat/completions", headers=headers, json={
            "model": "fake-model", "messages": [{"role": canary, "content": "x"}]}),
        client.get(f"/{quote(canary)}?q={quote(canary)}", headers=headers),
    ]
    for i, resp in enumerate(attempts):
        # Model names, path and temperature are refused; the others may pass through.
        assert resp.status_code < 500 and (resp.status_code >= 400 or i in (3, 5)), resp.text
        assert_clean(f"{resp.request.method} {resp.request.url.path} body", resp.text, MARKERS)


def _service(gw: Gateway) -> tuple[TestClient, dict[str, str]]:
    from workbench.service import ServiceSettings, create_service_app

    app = create_service_app(gw, ServiceSettings(warmup=False))
    _, secret = gw.policy.create_key(team="svc")
    return TestClient(app, raise_server_exceptions=False), bearer(secret)


def test_service_error_bodies_do_not_echo_caller_input(make_gateway: Any) -> None:
    client, headers = _service(fake_gateway(make_gateway))
    for canary in CANARIES:
        for body in ({"question": "x", canary: 1}, {"question": 1, "extra": canary},
                     {"trace_id": "0" * 31 + "1", "kind": canary},
                     {"trace_id": "0" * 31 + "1", "kind": "score", "name": "n", "value": [canary]}):
            path = "/ask" if "question" in body else "/feedback"
            resp = client.post(path, json=body, headers=headers)
            assert 400 <= resp.status_code < 500, resp.text
            assert_clean(f"{path} error body", resp.text, MARKERS)


# -- feedback fields ------------------------------------------------------------------
def test_feedback_identifiers_are_pseudonymised_and_idempotency_ids_hashed(
        any_store: Store) -> None:
    trace = "ab" * 16
    sent = {"trace_id": trace, "kind": "score", "name": f"judge {EMAIL}", "value": 0.5,
            "source_id": KEY, "idempotency_id": f"{EMAIL}-{CARD}-{KEY}",
            "metadata": {EMAIL: CARD, "ok": {KEY: [EMAIL]}}, "comment": f"call {CARD}"}
    first = feedback.record(any_store, sent)
    assert first.status == "created"
    # A replay (same id, same body) still matches although the id is stored hashed.
    assert feedback.record(any_store, sent).status == "duplicate"
    with pytest.raises(feedback.FeedbackConflict) as exc:
        feedback.record(any_store, {**sent, "value": 0.9})
    assert_clean("the conflict message", exc.value.message)
    # Two different emails as source ids stay two rows (pseudonyms, not one "[EMAIL]").
    other = feedback.record(any_store, {**sent, "source_id": "other.person@example.org",
                                        "idempotency_id": "another"})
    assert other.status == "created" and other.id != first.id
    row = first.feedback
    assert row["name"].startswith("judge [EMAIL]~") and row["source_id"].startswith("[SECRET]~")
    assert "ok" in row["metadata"] and any(k.startswith("[EMAIL]~") for k in row["metadata"])
    listed = feedback.list_feedback(any_store)
    blob = store_text(any_store) + json.dumps(list(listed), default=str)
    assert_clean("feedback rows", blob)
    assert_clean("feedback stats", json.dumps(feedback.stats(any_store)))


@settings(max_examples=60, deadline=None)
@given(prefix=st.text(max_size=20), suffix=st.text(max_size=20),
       canary=st.sampled_from(CANARIES))
def test_pseudonyms_hide_the_canary_and_keep_identifiers_apart(prefix: str, suffix: str,
                                                                canary: str) -> None:
    ident = f"{prefix} {canary} {suffix}"
    out = pseudonymise(ident, 64)
    assert canary not in out and len(out) <= 64
    assert pseudonymise(ident, 64) == out  # stable: dedupe and replays still match
    assert pseudonymise(ident + "x", 64) != out


# -- eval reports ---------------------------------------------------------------------
def test_eval_reports_mask_every_field(tmp_path: Path) -> None:
    from workbench.evals.records import SampleRecord, Score
    from workbench.evals.report import run_html, run_markdown, write_report
    from workbench.evals.runs import Run

    pii = " ".join(CANARIES)
    run = Run(id="run_1", dataset=f"golden-{EMAIL}", dataset_version="v1",
              dataset_fingerprint="f", config={"target": {"kind": "rag", "note": KEY},
                                               "judge": {"warning": f"judge saw {CARD}"}},
              samples=[SampleRecord(sample_id=f"s-{EMAIL}", question=f"Q {pii}",
                                    answer="A " + "x " * 200 + pii, contexts=[f"C {pii}"],
                                    reference=f"R {pii}", tags=[f"tag-{KEY}"]),
                       SampleRecord(sample_id="s2", question="Q2", error=f"target {pii}")],
              scores=[Score(f"s-{EMAIL}", "faithfulness", "judge", "failed",
                            reason=f"judge said {pii}"),
                      Score(f"s-{EMAIL}", "checks", "check", "ok", 0.0, reason=pii,
                            passed=False)],
              name=f"run for {EMAIL}")
    html = run_html(run, gate={"faithfulness": 0.5})
    md = run_markdown(run, gate={"faithfulness": 0.5})
    assert "[EMAIL]" in html and "[EMAIL]" in md  # the reports still show the rows
    for where, text in {"html": html, "markdown": md,
                        "file": write_report(run, tmp_path / "r.html").read_text(),
                        "md file": write_report(run, tmp_path / "r.md").read_text()}.items():
        assert_clean(f"the {where} report", text)


# -- uvicorn's access log -------------------------------------------------------------
def test_access_log_filter_drops_query_and_masks_path() -> None:
    assert redact_request_path("/ask") == "/ask"
    assert redact_request_path(f"/x/{quote(EMAIL)}?k={quote(KEY)}") == "/x/[EMAIL]?[QUERY]"
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:1", "GET",
                                                           f"/f?u={quote(EMAIL)}", "1.1", 200),
                               None)
    assert RedactQueryFilter().filter(record)
    assert_clean("the access line", record.getMessage(), MARKERS)
    assert "/f?[QUERY]" in record.getMessage()


def _requests_with_canaries(base: str, headers: dict[str, str]) -> None:
    for canary in CANARIES:
        q = quote(canary, safe="")
        httpx.get(f"{base}/healthz?user={q}&card={q}")
        httpx.get(f"{base}/v1/models/{q}?x={q}", headers=headers)
        httpx.get(f"{base}/{q}", headers=headers)
        httpx.post(f"{base}/feedback?idempotency={q}", headers=headers,
                   json={"trace_id": "ab" * 16, "kind": "score", "name": canary, "value": 1,
                         "source_id": canary, "metadata": {canary: canary}})


def test_served_processes_keep_canaries_out_of_access_logs_and_the_data_dir(
        tmp_path: Path) -> None:
    """`workbench serve` and `workbench gateway` as real processes logging at INFO."""
    cfg = write_project(tmp_path, warmup=False)
    text = cfg.read_text().replace("[workbench]\n", '[workbench]\nlog_level = "INFO"\n', 1)
    cfg.write_text(text)
    ingested = subprocess.run([sys.executable, "-m", "workbench", "ingest", "corpus"],
                              cwd=tmp_path, env=project_env(tmp_path), capture_output=True,
                              text=True, timeout=600)
    assert ingested.returncode == 0, ingested.stderr
    keyed = subprocess.run([sys.executable, "-m", "workbench", "keys", "create", "--team", "t",
                            "--json"], cwd=tmp_path, env=project_env(tmp_path),
                           capture_output=True, text=True, timeout=120)
    assert keyed.returncode == 0, keyed.stderr
    secret = json.loads(keyed.stdout)["key"]

    server = ServeProcess(tmp_path)
    try:
        server.wait_ready()
        _requests_with_canaries(server.base, bearer(secret))
    finally:
        server.stop()
    serve_log = server.log.read_text(errors="replace")
    assert '"GET /healthz?[QUERY] HTTP/1.1" 200' in serve_log, serve_log[-2000:]

    from tests.servers import free_port

    port = free_port()
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "workbench", "gateway", "--port",
                                 str(port)], cwd=tmp_path, env=project_env(tmp_path),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    if httpx.get(base + "/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.2)
            _requests_with_canaries(base, bearer(secret))
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
    gateway_log = log.read_text(errors="replace")
    assert "/v1/models/[EMAIL]?[QUERY]" in gateway_log, gateway_log[-2000:]
    assert_clean("the service's log", serve_log, MARKERS)
    assert_clean("the gateway's log", gateway_log, MARKERS)
    assert_clean("the data dir", data_dir_bytes(tmp_path / ".workbench"))


# -- ingest: mask at rest, mask on the way out ----------------------------------------
PII_DOC = (f"# Support contacts\n\nThe lighthouse keeper answers at {EMAIL}. Refunds go to "
           f"card {CARD}. The deploy key is {KEY}; rotate it monthly.\n\n## Fog\n\nWhen fog "
           "rolls in the foghorn sounds every thirty seconds.\n")


def _pii_corpus(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "contacts.md").write_text(PII_DOC, encoding="utf-8")
    return root


@pytest.mark.embedded
def test_new_collections_mask_pii_before_storing_and_embedding(make_gateway: Any,
                                                               tmp_path: Path) -> None:
    gw = fake_gateway(make_gateway)
    report = ingest(gw, [_pii_corpus(tmp_path / "docs")], collection="masked", progress=False)
    assert report.ok and report.mask_pii
    cols = Collections.for_settings(gw.settings)
    assert cols.require_meta("masked").mask_pii and cols.stats("masked")["mask_pii"]
    texts = search(gw, "who answers for the lighthouse keeper", collection="masked", k=5)
    assert texts and any("[EMAIL]" in h.text for h in texts)
    # The trade-off, as documented: the email itself is not searchable any more.
    assert all(EMAIL not in h.text for h in search(gw, EMAIL, collection="masked", mode="fts"))
    assert "fog" in search(gw, "foghorn", collection="masked", k=1)[0].text.lower()
    gw.store.dispose()
    assert_clean("the data dir (LanceDB + SQLite)", data_dir_bytes(tmp_path / ".workbench"))


@pytest.mark.embedded
def test_existing_collections_keep_their_setting(make_gateway: Any, tmp_path: Path) -> None:
    gw = fake_gateway(make_gateway)
    docs = _pii_corpus(tmp_path / "docs")
    ingest(gw, [docs], collection="raw", mask_pii=False, progress=False)
    (docs / "more.md").write_text(f"# More\n\nAlso ask {EMAIL} about the lamp.\n")
    again = ingest(gw, [docs], collection="raw", progress=False)  # no flag: stays raw
    assert not again.mask_pii and again.added
    rows = Collections.for_settings(gw.settings).open("raw").to_arrow()
    assert sum(EMAIL in t for t in rows.column("text").to_pylist()) == 2
    with pytest.raises(MaskingMismatch) as exc:
        ingest(gw, [docs], collection="raw", mask_pii=True, progress=False)
    assert exc.value.status == 400 and "collections drop raw" in exc.value.message


@pytest.mark.embedded
def test_sources_are_masked_on_the_way_out_unless_turned_off(make_gateway: Any,
                                                              tmp_path: Path) -> None:
    gw = fake_gateway(make_gateway)
    ingest(gw, [_pii_corpus(tmp_path / "docs")], collection="raw", mask_pii=False,
           progress=False)
    question = "Who does the lighthouse keeper answer to about refunds and the deploy key?"
    answer = ask(gw, question, collection="raw", min_similarity=-1.0)
    assert answer.sources
    assert_clean("ask() sources", json.dumps(answer.to_dict()["sources"]))
    raw = ask(gw, question, collection="raw", min_similarity=-1.0, mask_sources=False)
    assert any(EMAIL in s.snippet for s in raw.sources)  # the opt-out shows stored text
    off = fake_gateway(make_gateway, mask_sources=False)
    assert any(EMAIL in s.snippet for s in ask(off, question, collection="raw",
                                               min_similarity=-1.0).sources)


@pytest.mark.embedded
def test_search_and_ask_commands_mask_what_they_print(make_gateway: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from workbench.cli import app

    ingest(fake_gateway(make_gateway), [_pii_corpus(tmp_path / "docs")], collection="docs",
           mask_pii=False, progress=False)
    runner = CliRunner()
    for args in (["search", "lighthouse keeper refunds", "--json"],
                 ["search", "lighthouse keeper refunds"]):
        out = runner.invoke(app, args)
        assert out.exit_code == 0, out.output
        assert "[EMAIL]" in out.output
        assert_clean(f"workbench {' '.join(args)}", out.output)
    monkeypatch.setenv("WORKBENCH_MASK_SOURCES", "false")
    out = runner.invoke(app, ["search", "lighthouse keeper refunds", "--json"])
    assert EMAIL in out.output


@pytest.mark.embedded
def test_service_ask_and_stream_sources_are_masked(make_gateway: Any, tmp_path: Path) -> None:
    gw = fake_gateway(make_gateway)
    ingest(gw, [_pii_corpus(tmp_path / "docs")], collection="docs", mask_pii=False,
           progress=False)
    client, headers = _service(gw)
    question = {"question": "Who does the lighthouse keeper answer to about refunds?"}
    resp = client.post("/ask", json=question, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["sources"], resp.text
    assert_clean("/ask", resp.text)
    stream = client.post("/ask/stream", json=question, headers=headers)
    assert stream.status_code == 200 and "event: done" in stream.text
    assert_clean("/ask/stream", stream.text)


# -- paths outside the ingested folder ------------------------------------------------
def _tree(tmp_path: Path) -> tuple[Path, Path]:
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.md").write_text(f"# Secret\n\n{KEY}\n")
    (outside / "nested").mkdir()
    (outside / "nested" / "deep.md").write_text("# Deep\n\nprivate notes\n")
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "guide.md").write_text("# Guide\n\nThe lamp is lit at dusk.\n")
    (docs / "sub" / "inner.md").write_text("# Inner\n\nTrim the wick at midnight.\n")
    (docs / "link-secret.md").symlink_to(outside / "secret.md")
    (docs / "link-dir").symlink_to(outside / "nested", target_is_directory=True)
    (docs / "alias.md").symlink_to(docs / "guide.md")  # inside: harmless, deduplicated
    (docs / "sub" / "loop").symlink_to(docs, target_is_directory=True)  # a cycle
    return docs, outside


def test_discover_refuses_symlinks_that_leave_the_folder(tmp_path: Path) -> None:
    docs, _ = _tree(tmp_path)
    found, skipped, missing, _ = discover([docs])
    names = sorted(p.name for _, p in found)
    assert names == ["alias.md", "inner.md"]  # guide.md is the same file as alias.md
    reasons = {Path(s.path.rstrip(os.sep)).name: s.reason for s in skipped}
    assert reasons == {"link-secret.md": OUTSIDE_ROOT, "link-dir": OUTSIDE_ROOT}
    assert not missing
    # A file argument is bounded by the folder it sits in.
    found, skipped, _, _ = discover([docs / "link-secret.md"])
    assert not found and skipped[0].reason == OUTSIDE_ROOT
    # Asked for: followed (the cycle is still walked once).
    found, skipped, _, _ = discover([docs], follow_symlinks=True)
    assert {"link-secret.md", "deep.md", "inner.md"} <= {p.name for _, p in found}
    assert not [s for s in skipped if s.reason == OUTSIDE_ROOT]


def test_discover_with_a_root_refuses_dotdot_and_absolute_escapes(tmp_path: Path) -> None:
    docs, outside = _tree(tmp_path)
    found, skipped, _, _ = discover(["guide.md", "../private/secret.md", str(outside),
                                     "sub/../../private"], root=docs)
    assert [p.name for _, p in found] == ["guide.md"]
    assert len(skipped) == 3 and all("outside the given root" in s.reason for s in skipped)
    found, skipped, _, _ = discover(["link-secret.md"], root=docs)
    assert not found and skipped[0].reason == OUTSIDE_ROOT
    found, _, _, _ = discover(["link-secret.md"], root=docs, follow_symlinks=True)
    assert [p.name for _, p in found] == ["link-secret.md"]


@pytest.mark.embedded
def test_ingest_skips_escaping_symlinks_and_says_why(make_gateway: Any, tmp_path: Path
                                                     ) -> None:
    from typer.testing import CliRunner

    from workbench.cli import app

    docs, _ = _tree(tmp_path)
    gw = fake_gateway(make_gateway)
    report = ingest(gw, [docs], collection="docs", progress=False)
    assert report.ok and len(report.added) == 2
    assert any(OUTSIDE_ROOT in line for line in report.summary_lines())
    for h in search(gw, "secret private notes key", collection="docs", k=10):
        assert "private" not in h.path and KEY not in h.text
    out = CliRunner().invoke(app, ["ingest", str(docs / "link-secret.md"), "-c", "other"])
    assert out.exit_code == 1 and "resolves outside the folder" in out.output
    followed = CliRunner().invoke(app, ["ingest", str(docs), "-c", "all", "--follow-symlinks",
                                        "--json"])
    assert followed.exit_code == 0, followed.output
    assert len(json.loads(followed.output)["added"]) == 4
