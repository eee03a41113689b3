"""Feedback: validation, idempotency, dedupe per message per kind, late linking, golden
export, 20 concurrent writers (SQLite and Postgres), and the HTTP router."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.fakes import FakeProvider
from workbench.errors import BadRequest
from workbench.models.gateway import Gateway
from workbench.observability import feedback
from workbench.observability.feedback_http import feedback_router
from workbench.observability.schema import feedback as feedback_table
from workbench.store import Store

T1 = "a" * 32
T2 = "b" * 32


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'fb.db'}")


def test_each_kind_round_trips(store: Store) -> None:
    cases: list[tuple[dict[str, Any], Any, str]] = [
        ({"kind": "thumbs", "value": "up"}, True, "boolean"),
        ({"kind": "rating", "value": 4}, 4, "numeric"),
        ({"kind": "comment", "value": "too long"}, "too long", "text"),
        ({"kind": "copy"}, True, "boolean"),
        ({"kind": "retry", "value": True}, True, "boolean"),
        ({"kind": "abandon"}, True, "boolean"),
        ({"kind": "score", "name": "faithfulness", "value": 0.75, "source_kind": "llm-judge",
          "source_id": "ragas"}, 0.75, "numeric"),
        ({"kind": "score", "name": "topic", "value": "billing", "source_kind": "code"},
         "billing", "categorical"),
    ]
    for fields, value, data_type in cases:
        r = feedback.record(store, trace_id=T1, **fields)
        assert r.status == "created"
        assert r.feedback["value"] == value and r.feedback["data_type"] == data_type
        assert r.feedback["linked"] is False  # no such trace yet: accepted anyway
    assert len(feedback.list_feedback(store, trace_id=T1)) == len(cases)


@pytest.mark.parametrize(("fields", "message"), [
    ({"kind": "like", "value": True}, "unknown kind 'like'"),
    ({"kind": "thumbs", "value": "maybe"}, "thumbs needs a boolean"),
    ({"kind": "thumbs", "value": 2}, "thumbs needs a boolean"),
    ({"kind": "rating", "value": 7}, "rating must be a whole number from 1 to 5"),
    ({"kind": "rating", "value": "5"}, "rating needs a number"),
    ({"kind": "rating", "value": True}, "rating needs a number"),
    ({"kind": "edit", "value": ""}, "edit needs the edited answer"),
    ({"kind": "copy", "value": False}, "copy is an implicit signal"),
    ({"kind": "comment", "value": "x" * 20_001}, "limit is 20000"),
    ({"kind": "thumbs", "value": True, "comment": "y" * 2001},
     "comment is 2001 characters; the limit is 2000"),
    ({"kind": "score", "value": 1}, "kind=score needs a name"),
    ({"kind": "thumbs", "value": True, "data_type": "numeric"}, "always has data_type boolean"),
    ({"kind": "thumbs", "value": True, "name": "x"}, "name is only for kind=score"),
    ({"kind": "thumbs", "value": True, "stars": 5}, "stars: Extra inputs are not permitted"),
    ({"kind": "thumbs", "value": True, "source_kind": "robot"}, "source_kind"),
    ({"kind": "thumbs", "value": True, "trace_id": "nope"}, "not a W3C trace id"),
    ({"kind": "thumbs", "value": True, "span_id": "xyz"}, "span_id 'xyz' must be 16 hex"),
    ({"kind": "thumbs", "value": True, "metadata": {"blob": "z" * 5000}}, "limit is 4096"),
])
def test_bad_feedback_is_refused_with_a_clear_message(store: Store, fields: dict[str, Any],
                                                      message: str) -> None:
    with pytest.raises(BadRequest, match="invalid feedback") as info:
        feedback.record(store, {"trace_id": T1, **fields})
    assert message in info.value.message
    assert feedback.list_feedback(store) == []


def test_idempotency_id_makes_a_resend_a_no_op(store: Store) -> None:
    first = feedback.record(store, trace_id=T1, kind="copy", idempotency_id="req-1")
    again = feedback.record(store, trace_id=T1, kind="copy", idempotency_id="req-1")
    assert (first.status, again.status) == ("created", "duplicate")
    assert again.id == first.id and again.feedback["occurrences"] == 1
    with pytest.raises(feedback.FeedbackConflict, match="already used for different") as info:
        feedback.record(store, trace_id=T1, kind="retry", idempotency_id="req-1")
    assert info.value.status == 409


def test_signals_dedupe_per_message_per_kind_and_never_mix(store: Store) -> None:
    for i in range(3):
        feedback.record(store, trace_id=T1, kind="copy", idempotency_id=f"copy-{i}")
    feedback.record(store, trace_id=T1, kind="thumbs", value=True)
    flipped = feedback.record(store, trace_id=T1, kind="thumbs", value=False)
    assert flipped.status == "updated" and flipped.feedback["value"] is False
    feedback.record(store, trace_id=T2, kind="thumbs", value=True)
    rows = {(r["trace_id"], r["kind"]): r for r in feedback.list_feedback(store)}
    assert rows[(T1, "copy")]["occurrences"] == 3
    assert len(rows) == 3
    stats = {r["kind"]: r for r in feedback.stats(store)}
    assert stats["copy"]["messages"] == 1 and stats["copy"]["occurrences"] == 3
    assert stats["thumbs"]["messages"] == 2 and stats["thumbs"]["up_rate"] == 0.5
    assert "up_rate" not in stats["copy"]  # implicit signals are never folded into thumbs


def test_feedback_before_its_trace_is_linked_later_with_the_edit_diff(
        make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(providers={"fake": FakeProvider(text="Paris is the capital.\nOf France.")},
                      models=[{"name": "fake-chat", "provider": "fake"}], chat_model="fake-chat")
    tid = "c" * 32
    early = feedback.record(gw.store, trace_id=tid, kind="edit",
                            value="Paris is the capital.\nOf France, since 987.")
    assert early.feedback["linked"] is False and early.feedback["diff"] is None
    gw.chat("capital of France?", trace_id=tid)
    row = feedback.list_feedback(gw.store, trace_id=tid)[0]
    assert row["linked"] is True
    assert row["diff"].splitlines()[2:] == ["@@ -1,2 +1,2 @@", " Paris is the capital.",
                                            "-Of France.", "+Of France, since 987."]
    # Known trace: linked at once.
    assert feedback.record(gw.store, trace_id=tid, kind="copy").feedback["linked"] is True


def test_export_turns_edits_and_thumbs_down_into_golden_rows(
        make_gateway: Callable[..., Gateway], tmp_path: Path) -> None:
    from workbench.observability import tracing

    gw = make_gateway(providers={"fake": FakeProvider(text="model answer")},
                      models=[{"name": "fake-chat", "provider": "fake"}], chat_model="fake-chat")
    with tracing.span("ask", input="What is X?", gateway=gw) as root:
        with tracing.span("retrieve", kind="RETRIEVER") as ret:
            ret.set_documents([{"id": "d1", "score": 0.9, "content": "X is a letter."}])
        res = gw.chat("What is X?")
        root.set_output(res.text)
    other = gw.chat("Other question")
    feedback.record(gw.store, trace_id=root.trace_id, kind="edit", value="X is a letter.")
    feedback.record(gw.store, trace_id=other.trace_id, kind="thumbs", value=False,
                    comment="wrong")
    feedback.record(gw.store, trace_id=other.trace_id, kind="copy")
    n = feedback.export(gw.store, tmp_path / "golden.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "golden.jsonl").read_text().splitlines()]
    assert n == 2 and len(rows) == 2
    edit = next(r for r in rows if "edit" in r["tags"])
    assert edit["question"] == "What is X?" and edit["reference"] == "X is a letter."
    assert edit["answer"] == "model answer" and edit["reference_contexts"] == ["X is a letter."]
    down = next(r for r in rows if "thumbs-down" in r["tags"])
    assert down["reference"] is None and down["feedback"]["comment"] == "wrong"
    with pytest.raises(BadRequest, match="cannot export"):
        feedback.export(gw.store, tmp_path / "x.jsonl", ["copies"])


def test_20_concurrent_writers_lose_nothing(any_store: Store) -> None:
    """Every acknowledged write is persisted exactly once; resends stay idempotent."""
    acked: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def writer(n: int) -> None:
        barrier.wait()
        try:
            for i in range(15):
                tid = f"{n + 1:016x}{i:016x}"
                r = feedback.record(any_store, trace_id=tid, kind="thumbs", value=i % 2 == 0,
                                    idempotency_id=f"w{n}-{i}")
                # A client retry of the same request, and an implicit signal on a message
                # every writer shares (one row, counted once per writer).
                feedback.record(any_store, trace_id=tid, kind="thumbs", value=i % 2 == 0,
                                idempotency_id=f"w{n}-{i}")
                feedback.record(any_store, trace_id="f" * 32, kind="copy",
                                idempotency_id=f"shared-{n}-{i}")
                with lock:
                    acked.append(r.id)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with any_store.read() as conn:
        rows = conn.execute(select(func.count()).select_from(feedback_table)).scalar_one()
        shared = conn.execute(select(feedback_table.c.occurrences).where(
            feedback_table.c.trace_id == "f" * 32)).scalar_one()
    assert len(acked) == 300 and len(set(acked)) == 300
    assert rows == 301 and shared == 300


# -- HTTP ----------------------------------------------------------------------------------
@pytest.fixture
def client(store: Store) -> TestClient:
    app = FastAPI()
    app.include_router(feedback_router(store))
    return TestClient(app)


def test_http_feedback_round_trip(client: TestClient) -> None:
    body = {"trace_id": T1, "kind": "thumbs", "value": "down", "comment": "vague",
            "idempotency_id": "h-1"}
    r = client.post("/feedback", json=body)
    assert r.status_code == 201 and r.json()["status"] == "created"
    assert client.post("/feedback", json=body).json()["status"] == "duplicate"
    assert client.post("/feedback", json={**body, "value": "up"}).status_code == 409
    batch = [{"trace_id": T1, "kind": "copy"}, {"trace_id": T1, "kind": "rating", "value": 2}]
    r = client.post("/feedback", json=batch)
    assert r.status_code == 201 and [x["status"] for x in r.json()] == ["created", "created"]
    listed = client.get("/feedback", params={"trace_id": T1}).json()
    assert {x["kind"] for x in listed} == {"thumbs", "copy", "rating"}
    stats = {x["kind"]: x for x in client.get("/feedback/stats").json()}
    assert stats["thumbs"]["up_rate"] == 0.0


@pytest.mark.parametrize(("send", "status", "code", "message"), [
    (b"{not json", 400, "bad_request", "not valid JSON"),
    (json.dumps({"trace_id": T1, "kind": "like"}).encode(), 400, "bad_request", "unknown kind"),
    (json.dumps({"trace_id": T1, "kind": "rating", "value": "five"}).encode(), 400,
     "bad_request", "rating needs a number"),
    (json.dumps([]).encode(), 400, "bad_request", "a list of 1-100"),
    (json.dumps({"trace_id": T1, "kind": "comment", "value": "x" * 70_000}).encode(), 413,
     "payload_too_large", "limit is 65536"),
])
def test_http_errors_are_clear_and_in_one_shape(client: TestClient, send: bytes, status: int,
                                                code: str, message: str) -> None:
    r = client.post("/feedback", content=send, headers={"Content-Type": "application/json"})
    assert r.status_code == status
    err = r.json()["error"]
    assert err["code"] == code and message in err["message"]


def test_http_batch_is_all_or_nothing(client: TestClient, store: Store) -> None:
    r = client.post("/feedback", json=[{"trace_id": T1, "kind": "copy"},
                                       {"trace_id": T1, "kind": "thumbs", "value": 3}])
    assert r.status_code == 400 and "thumbs needs a boolean" in r.json()["error"]["message"]
    assert feedback.list_feedback(store) == []


def test_pii_in_feedback_text_is_masked_before_it_is_stored(client: TestClient, store: Store,
                                                            tmp_path: Path) -> None:
    email, card = "canary.person@example.com", "4111 1111 1111 1111"
    sent = [{"trace_id": T1, "kind": "thumbs", "value": False,
             "comment": f"mail me at {email}", "metadata": {"note": f"card {card}"}},
            {"trace_id": T1, "kind": "edit", "value": f"Write to {email} for help."}]
    assert client.post("/feedback", json=sent).status_code == 201
    # A resend with the same idempotency id is still recognised (hash of what was sent).
    again = {**sent[0], "idempotency_id": "pii-1"}
    assert client.post("/feedback", json=again).json()["status"] in ("created", "updated")
    assert client.post("/feedback", json=again).json()["status"] == "duplicate"
    with store.read() as conn:
        stored = json.dumps([dict(r._mapping) for r in conn.execute(select(feedback_table))],
                            default=str)
    assert email not in stored and card not in stored and "1111" not in stored
    assert "[EMAIL]" in stored and "for help." in stored  # masked, not dropped
    listed = json.dumps(client.get("/feedback", params={"trace_id": T1}).json())
    assert email not in listed and "[EMAIL]" in listed
