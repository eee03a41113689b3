"""Canaries: after a run with a known key and known PII, none of them appears in any file
under the data dir, in any log output, or in any error message."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeProvider
from workbench.errors import WorkbenchError

PII = ["canary.person@example.org", "4111 1111 1111 1111", "+44 20 7946 0958",
       "DE89 3704 0044 0532 0130 00", "10.20.30.40", "sk-proj-CANARYcanaryCANARYcanary0001"]


def _all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


@pytest.mark.embedded
def test_no_key_or_pii_leaks_into_store_logs_or_errors(make_gateway: Any, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    down = FakeProvider(fail=-1)
    gw = make_gateway(providers={"down": down},
                      models=[{"name": "down-model", "provider": "down"}],
                      fallbacks={"down-model": ["smollm2-135m"]}, cache=True)
    key_id, secret = gw.policy.create_key(team="canary", cache=True)
    user = gw.as_key(secret)
    prompt = "Summarise for " + ", ".join(PII)
    res = user.chat(prompt, max_tokens=16)  # real model
    user.chat(prompt, max_tokens=16)  # cached
    res2 = user.chat(prompt, model="down-model", max_tokens=8)  # fails over
    assert res2.fallback_from == "down-model"
    s = user.stream(prompt, max_tokens=8)
    list(s)
    messages: list[str] = []
    for attempt in (lambda: gw.as_key(secret + "x"),
                    lambda: user.chat(prompt, model="nope"),
                    lambda: user.chat(prompt, temperature=5),
                    lambda: make_gateway(guardrail_mode="block").chat(prompt)):
        with pytest.raises(WorkbenchError) as exc:
            attempt()
        messages.append(exc.value.message + str(exc.value.to_openai()))
    gw.policy.revoke_key(key_id)
    with pytest.raises(WorkbenchError) as exc:
        gw.as_key(secret)
    messages.append(exc.value.message)
    gw.store.dispose()

    blobs = {"data dir": _all_bytes(tmp_path / ".workbench"),
             "logs": caplog.text.encode(), "errors": "\n".join(messages).encode(),
             "result": repr(res).encode()}
    assert len(blobs["data dir"]) > 10_000  # the store really was written
    for where, blob in blobs.items():
        for canary in [secret, *PII]:
            assert canary.encode() not in blob, f"{canary!r} leaked into {where}"


def _everywhere(text: str) -> dict[str, Any]:
    """A chat request carrying ``text`` in tool calls, tool results, tools, names, stop,
    response_format, user and an unknown field, and nowhere in message content."""
    call = {"id": "call_1", "type": "function",
            "function": {"name": "lookup", "arguments": json.dumps({"q": text})}}
    return {
        "messages": [{"role": "user", "name": text, "content": "hello"},
                     {"role": "assistant", "content": None, "tool_calls": [call]},
                     {"role": "tool", "tool_call_id": "call_1", "content": text}],
        "tools": [{"type": "function", "function": {
            "name": "lookup", "description": text,
            "parameters": {"type": "object", "properties": {
                "q": {"type": "string", "description": text}}}}}],
        "stop": [text], "user": text, "metadata": {text: text},
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "answer", "schema": {"type": "object", "description": text}}},
        "max_tokens": 8,
    }


def test_no_pii_leaks_from_tool_calls_tools_names_stop_or_user(
        make_gateway: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Every field but content, through the Gateway (fresh, cached, streamed) and the HTTP
    proxy: the provider, the answer (echoed PII in content and tool-call arguments), the
    data dir (ledger, spans, response cache) and the logs never hold a canary."""
    from fastapi.testclient import TestClient

    from tests.disguises import EchoProvider
    from workbench.models.server import create_app

    caplog.set_level(logging.DEBUG)
    echo = EchoProvider()
    gw = make_gateway(providers={"fake": echo}, models=[{"name": "fake-model", "provider": "fake"}],
                      chat_model="fake-model", cache=True)
    _, secret = gw.policy.create_key(team="canary", cache=True)
    user = gw.as_key(secret)
    pii = ", ".join([*PII, secret])
    echo.echo = pii
    answers: list[Any] = []
    for _ in range(2):  # the second is a cache hit
        answers.append(user.chat(_everywhere(pii)).response)
    answers.append(list(user.stream(_everywhere(pii))))
    client = TestClient(create_app(gw), raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {secret}"}
    resp = client.post("/v1/chat/completions", json=_everywhere(pii), headers=headers)
    assert resp.status_code == 200, resp.text
    answers.append(resp.text)
    resp = client.post("/v1/chat/completions", json={**_everywhere(pii), "stream": True},
                       headers=headers)
    answers.append(resp.text)
    assert len(echo.calls) >= 3
    gw.store.dispose()

    blobs = {"provider": json.dumps(echo.calls, ensure_ascii=False).encode(),
             "answers": json.dumps(answers, ensure_ascii=False).encode(),
             "data dir": _all_bytes(tmp_path / ".workbench"), "logs": caplog.text.encode()}
    assert b"[CARD]" in blobs["provider"] and b"[SECRET]" in blobs["answers"]
    for where, blob in blobs.items():
        for canary in [secret, *PII]:
            assert canary.encode() not in blob, f"{canary!r} leaked into {where}"


@pytest.mark.embedded
def test_no_pii_in_feedback_fields_reports_snippets_or_logs(make_gateway: Any, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture
                                                            ) -> None:
    """The stored and shown side: documents with PII ingested (masked at ingest by
    default; a raw collection kept outside the data dir for the way-out check), feedback
    with PII in every identifier, an eval report over PII."""
    import json

    from workbench.evals.records import SampleRecord, Score
    from workbench.evals.report import write_report
    from workbench.evals.runs import Run
    from workbench.observability import feedback
    from workbench.retrieval import ask, ingest

    caplog.set_level(logging.DEBUG)
    fake = {"providers": {"fake": FakeProvider(text="see [1]")}, "chat_model": "fake-model",
            "models": [{"name": "fake-model", "provider": "fake"}]}
    gw = make_gateway(**fake)
    outside = make_gateway(**fake, lancedb_uri=str(tmp_path / "raw-lancedb"))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "contacts.md").write_text("# Contacts\n\nReach the keeper: " + ", ".join(PII)
                                      + ".\n", encoding="utf-8")
    ingest(gw, [docs], collection="docs", progress=False)
    ingest(outside, [docs], collection="docs", mask_pii=False, progress=False)
    shown = []
    for g in (gw, outside):
        ans = ask(g, "How do I reach the keeper?", collection="docs", min_similarity=-1.0)
        assert ans.sources
        shown.append(json.dumps(ans.to_dict()))
    for pii in PII:
        feedback.record(gw.store, trace_id=ans.trace_id, kind="score", name=f"n {pii}",
                        value=1, source_id=pii, idempotency_id=pii, metadata={pii: pii},
                        comment=pii)
    run = Run(id="run_x", dataset=PII[0], dataset_version="1", dataset_fingerprint="f",
              config={}, samples=[SampleRecord(s, s, answer=s, contexts=[s], reference=s,
                                               tags=[s]) for s in PII],
              scores=[Score(s, "m", "judge", "failed", reason=s) for s in PII], name=PII[1])
    reports = [write_report(run, tmp_path / "reports" / f"r.{ext}").read_bytes()
               for ext in ("html", "md")]
    gw.store.dispose()

    blobs = {"data dir": _all_bytes(tmp_path / ".workbench"), "logs": caplog.text.encode(),
             "answers and sources": "\n".join(shown).encode(), "reports": b"\n".join(reports)}
    assert len(blobs["data dir"]) > 10_000
    for where, blob in blobs.items():
        for canary in PII:
            assert canary.encode() not in blob, f"{canary!r} leaked into {where}"
