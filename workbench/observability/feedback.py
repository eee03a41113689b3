"""Feedback as a service: explicit and implicit signals keyed by ``trace_id``.

The data model is the common denominator of Langfuse scores, Phoenix annotations and
MLflow assessments: a trace (and optional span), a name, a value with a data type, a
comment, who gave it (``user`` / ``code`` / ``llm-judge`` plus an id), a client-supplied
idempotency id and a timestamp.

Kinds are fixed so that metrics mean something:

=========  ===========  =====================================================
kind       data type    value
=========  ===========  =====================================================
thumbs     boolean      true / false (or "up" / "down")
rating     numeric      1-5
comment    text         the comment
copy       boolean      true (implicit: the user copied the answer)
retry      boolean      true (implicit: regenerate)
edit       text         the user's edited answer; a diff against the model's is stored
abandon    boolean      true (implicit: the user left without using the answer)
escalate   boolean      true (implicit: the user asked for a human; the session is not
                        contained, see ``observability.metrics``)
score      any          a named score from code or a judge (``name`` required)
=========  ===========  =====================================================

One row per message (trace + span) per kind (per score name) per source: repeating a
signal updates the row (the latest thumbs wins, ``occurrences`` counts repeats), so
implicit signals are never double counted and never summed with thumbs. Re-sending a
request with the same ``idempotency_id`` is a no-op that returns the stored row.
Feedback for a trace the span store has not seen yet is accepted and linked later.
Session-level feedback names a ``session_id`` (from ``POST /ask``) instead of a trace: it is
recorded on the session's newest answer, and every row of an answer given in a session
carries its ``session_id``.
PII and secrets in feedback text (comments, edited answers, metadata strings) are masked
with the default guardrails before anything is stored; identifiers (score name,
``source_id``, metadata keys) are pseudonymised and idempotency ids are stored as hashes.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from workbench.errors import BadRequest, NotFound, WorkbenchError
from workbench.observability.schema import feedback, feedback_requests, spans
from workbench.store import Store, ledger

Kind = Literal["thumbs", "rating", "comment", "copy", "retry", "edit", "abandon", "escalate",
               "score"]
DataType = Literal["boolean", "numeric", "categorical", "text"]
SourceKind = Literal["user", "code", "llm-judge"]

KINDS: dict[str, DataType | None] = {
    "thumbs": "boolean", "rating": "numeric", "comment": "text", "copy": "boolean",
    "retry": "boolean", "edit": "text", "abandon": "boolean", "escalate": "boolean",
    "score": None,
}
IMPLICIT = ("copy", "retry", "edit", "abandon", "escalate")
_ANY_TRACE = "0" * 31 + "1"
MAX_COMMENT = 2_000
MAX_TEXT = 20_000
MAX_METADATA_BYTES = 4_096


class FeedbackConflict(WorkbenchError):
    status = 409
    code = "idempotency_conflict"


class FeedbackIn(BaseModel):
    """One feedback signal as sent by a client (HTTP body, CLI, Python)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    trace_id: str | None = Field(None, min_length=1, max_length=64,
                                 description="The answer's trace_id (or send session_id).")
    session_id: str | None = Field(None, min_length=8, max_length=128,
                                   description="Session-level feedback: the session_id "
                                               "/ask returned; lands on its newest answer.")
    span_id: str | None = Field(None, max_length=16, description="A span (message) inside it.")
    kind: str = Field(description="thumbs, rating, comment, copy, retry, edit, abandon, "
                                  "escalate, score.")
    name: str | None = Field(None, max_length=64, description="Score name (kind=score).")
    value: Any = Field(None, description="See the table in the module docs.")
    data_type: DataType | None = Field(None, description="Only for kind=score.")
    comment: str | None = Field(None, description=f"Free text, at most {MAX_COMMENT} chars.")
    source_kind: SourceKind = "user"
    source_id: str | None = Field(None, max_length=128, description="User / code / judge id.")
    idempotency_id: str | None = Field(None, min_length=1, max_length=128)
    timestamp: float | None = Field(None, ge=0, description="Epoch seconds; default now.")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("comment")
    @classmethod
    def _comment_size(cls, v: str | None) -> str | None:
        if v is not None and len(v) > MAX_COMMENT:
            raise ValueError(f"comment is {len(v)} characters; the limit is {MAX_COMMENT}")
        return v or None

    @field_validator("metadata")
    @classmethod
    def _metadata_size(cls, v: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(v, default=str))
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"metadata is {size} bytes as JSON; the limit is "
                             f"{MAX_METADATA_BYTES}")
        return v


@dataclass(frozen=True)
class _Normalised:
    trace_id: str
    span_id: str | None
    kind: str
    name: str
    data_type: DataType
    value_num: float | None
    value_text: str | None


def _bad(msg: str) -> BadRequest:
    return BadRequest(f"invalid feedback: {msg}")


def _boolean(kind: str, value: Any) -> float:
    if kind in ("copy", "retry", "abandon", "escalate"):
        if value in (None, True, 1, "true"):
            return 1.0
        raise _bad(f"{kind} is an implicit signal: send value true or leave it out "
                   f"(got {value!r})")
    mapping = {True: 1.0, False: 0.0, "up": 1.0, "down": 0.0, "true": 1.0, "false": 0.0}
    if isinstance(value, bool | str) and value in mapping:
        return mapping[value]
    if type(value) is int and value in (0, 1):
        return float(value)
    raise _bad(f"{kind} needs a boolean value (true/false or \"up\"/\"down\"), got {value!r}")


def _normalise(fb: FeedbackIn) -> _Normalised:
    from workbench.observability.tracing import normalize_trace_id

    if fb.kind not in KINDS:
        raise _bad(f"unknown kind {fb.kind!r}; use one of {', '.join(KINDS)}")
    if not fb.trace_id:
        raise _bad("send the answer's trace_id, or the session_id of a session with an "
                   "answer")
    try:
        trace_id = normalize_trace_id(fb.trace_id)
    except BadRequest as exc:
        raise _bad(exc.message) from None
    span_id = fb.span_id.lower() if fb.span_id else None
    if span_id is not None and (len(span_id) != 16 or
                                any(c not in "0123456789abcdef" for c in span_id)):
        raise _bad(f"span_id {fb.span_id!r} must be 16 hex characters")
    if fb.kind != "score" and fb.data_type not in (None, KINDS[fb.kind]):
        raise _bad(f"kind {fb.kind} always has data_type {KINDS[fb.kind]}")
    if fb.kind != "score" and fb.name not in (None, fb.kind):
        raise _bad(f"name is only for kind=score (got name {fb.name!r} with kind {fb.kind})")
    name = fb.kind
    if fb.kind == "score":
        if not fb.name:
            raise _bad("kind=score needs a name, e.g. \"faithfulness\"")
        name = fb.name
    data_type = KINDS[fb.kind] or fb.data_type or _infer(fb.value)
    value = fb.value
    num: float | None = None
    txt: str | None = None
    if data_type == "boolean":
        num = _boolean(fb.kind, value)
    elif data_type == "numeric":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(f"{name} needs a number, got {value!r}")
        if fb.kind == "rating" and not (1 <= value <= 5 and float(value).is_integer()):
            raise _bad(f"rating must be a whole number from 1 to 5, got {value!r}")
        num = float(value)
    else:
        if not isinstance(value, str) or not value.strip():
            what = "the edited answer" if fb.kind == "edit" else "a non-empty string"
            raise _bad(f"{name} needs {what} as value, got {value!r}")
        limit = MAX_TEXT if data_type == "text" else 128
        if len(value) > limit:
            raise _bad(f"{name} value is {len(value)} characters; the limit is {limit}")
        txt = value
    return _Normalised(trace_id, span_id, fb.kind, name, data_type, num, txt)


def _infer(value: Any) -> DataType:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "numeric"
    return "categorical"


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    dt = row["data_type"]
    if dt == "boolean":
        value: Any = None if row["value_num"] is None else row["value_num"] >= 0.5
    elif dt == "numeric":
        v = row["value_num"]
        value = int(v) if v is not None and float(v).is_integer() else v
    else:
        value = row["value_text"]
    out = {k: v for k, v in row.items() if k not in ("value_num", "value_text", "dedupe_key")}
    out["value"] = value
    out["linked"] = bool(row["linked"])
    return out


def _trace_known(conn: Any, trace_id: str) -> bool:
    if conn.execute(select(spans.c.span_id).where(spans.c.trace_id == trace_id).limit(1)).first():
        return True
    return conn.execute(select(ledger.c.id).where(ledger.c.trace_id == trace_id)
                        .limit(1)).first() is not None


def _answer(store: Store, trace_id: str, span_id: str | None) -> str | None:
    from workbench.observability.traces import get_trace

    try:
        trace = get_trace(store, trace_id)
    except NotFound:
        return None
    if span_id:
        return next((s.output for s in trace.spans if s.span_id == span_id), None)
    return trace.answer()


def make_diff(original: str, edited: str) -> str:
    """A unified diff (model answer -> user's edit), one line per sentence-ish line."""
    return "\n".join(difflib.unified_diff(
        original.splitlines() or [""], edited.splitlines() or [""], "model", "user",
        lineterm="", n=2))


@dataclass
class Recorded:
    """What :func:`record` did: ``created``, ``updated`` (a repeat signal for the same
    message and kind) or ``duplicate`` (same idempotency id: nothing changed)."""

    status: Literal["created", "updated", "duplicate"]
    feedback: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.feedback["id"])


def parse(data: dict[str, Any] | FeedbackIn) -> FeedbackIn:
    if isinstance(data, FeedbackIn):
        return data
    if not isinstance(data, dict):
        raise _bad("send a JSON object")
    try:
        return FeedbackIn.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                             for e in exc.errors())
        raise _bad(problems) from None


def validate(data: dict[str, Any] | FeedbackIn) -> FeedbackIn:
    """Check one signal completely (kind, value type, sizes) without storing it."""
    fb = parse(data)
    if fb.session_id and not fb.trace_id:
        from workbench.sessions.history import check_session_id

        check_session_id(fb.session_id)
        # The trace is the session's newest answer, found when the signal is recorded:
        # check everything else now.
        _normalise(fb.model_copy(update={"trace_id": _ANY_TRACE}))
    else:
        _normalise(fb)
    return fb


def record(store: Store, data: dict[str, Any] | FeedbackIn | None = None, *,
           key_id: str | None = None, **fields: Any) -> Recorded:
    """Validate and store one feedback signal (see the module docs for kinds)::

        feedback.record(store, trace_id=res.trace_id, kind="thumbs", value=True)

    ``key_id``: the workbench key that sent it (HTTP): signals of different keys never
    update each other's rows, and idempotency ids are per key.
    """
    if isinstance(data, FeedbackIn):
        fb = parse({**data.model_dump(exclude_unset=True), **fields}) if fields else data
    else:
        fb = parse({**(data or {}), **fields})
    fb = _with_session(store, fb, key_id)
    _normalise(fb)  # reject bad input before anything else
    # The idempotency hash is of what the client sent (a retry repeats it byte for byte);
    # what is stored is masked.
    request_hash = hashlib.sha256(json.dumps(
        fb.model_dump(exclude={"idempotency_id", "timestamp"}), sort_keys=True,
        default=str).encode()).hexdigest()
    fb = _masked(fb)
    norm = _normalise(fb)
    parts = [norm.trace_id, norm.span_id or "", norm.kind, norm.name, fb.source_kind,
             fb.source_id or ""]
    if key_id is not None:
        # Per key: another key's thumbs on the same trace is another row, never an update.
        parts.append(f"key:{key_id}")
        if fb.idempotency_id:
            fb = fb.model_copy(update={"idempotency_id": "k" + hashlib.sha256(
                f"{key_id}\x1f{fb.idempotency_id}".encode()).hexdigest()})
    dedupe = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    for attempt in range(3):
        try:
            return _write(store, fb, norm, dedupe, request_hash)
        except IntegrityError:
            # Another writer (another replica, on Postgres) inserted the same message/kind
            # or idempotency id first: the retry sees its row and updates or replays it.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _with_session(store: Store, fb: FeedbackIn, key_id: str | None) -> FeedbackIn:
    """Session-level feedback goes to the session's newest answer (of this key's session
    only); feedback on an answer given in a session records the session."""
    from workbench.sessions import history

    if fb.session_id and not fb.trace_id:
        history.check_session_id(fb.session_id)
        trace_id = history.last_trace(store, fb.session_id, key_id)
        if trace_id is None:
            raise NotFound(f"no answered session {fb.session_id!r} for this key: send the "
                           "session_id that POST /ask returned")
        return fb.model_copy(update={"trace_id": trace_id})
    if fb.trace_id and not fb.session_id:
        try:
            session_id = history.session_of(store, fb.trace_id.strip().lower())
        except WorkbenchError:
            session_id = None
        if session_id:
            return fb.model_copy(update={"session_id": session_id})
    return fb


def _masked(fb: FeedbackIn) -> FeedbackIn:
    """Feedback text is user input: emails, card numbers, keys pasted into a comment or an
    edited answer are masked (``[EMAIL]``…) before they are stored, exported or turned into
    golden data, as the gateway masks prompts. Identifiers (score ``name``, ``source_id``,
    metadata keys) are pseudonymised instead: masked, plus a short hash when they held PII,
    so two different ones never merge into one row or key."""
    from workbench.guardrails import mask_text, pseudonymise

    def clean(v: Any) -> Any:
        if isinstance(v, str):
            return mask_text(v)
        if isinstance(v, dict):
            return {pseudonymise(str(k), 256): clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    def ident(v: str | None, max_len: int) -> str | None:
        return None if v is None else pseudonymise(v, max_len)

    return fb.model_copy(update={"value": clean(fb.value), "comment": clean(fb.comment),
                                 "metadata": clean(fb.metadata), "name": ident(fb.name, 64),
                                 "source_id": ident(fb.source_id, 128)})


def idempotency_key(idempotency_id: str) -> str:
    """What is stored for a client's idempotency id: its SHA-256, so a replay still
    matches while the id itself (which a client may build from a user's email) is never
    kept."""
    return "sha256:" + hashlib.sha256(idempotency_id.encode("utf-8", "surrogatepass")
                                      ).hexdigest()


def _write(store: Store, fb: FeedbackIn, norm: _Normalised, dedupe: str,
           request_hash: str) -> Recorded:
    now = time.time()
    ts = fb.timestamp or now
    idem = idempotency_key(fb.idempotency_id) if fb.idempotency_id else None
    with store.write() as conn:
        if idem:
            seen = conn.execute(select(feedback_requests).where(
                feedback_requests.c.idempotency_id == idem)).first()
            if seen is not None:
                if seen.request_hash != request_hash:
                    raise FeedbackConflict(
                        "this idempotency_id was already used for different feedback; use "
                        "a new id for a new signal")
                row = conn.execute(select(feedback).where(
                    feedback.c.id == seen.feedback_id)).first()
                assert row is not None
                return Recorded("duplicate", _decode(dict(row._mapping)))
        linked = _trace_known(conn, norm.trace_id)
        existing = conn.execute(select(feedback).where(feedback.c.dedupe_key == dedupe)).first()
        values = {"value_num": norm.value_num, "value_text": norm.value_text,
                  "data_type": norm.data_type, "comment": fb.comment, "linked": int(linked),
                  "metadata": fb.metadata, "updated_at": ts, "diff": None}
        if existing is not None:
            fid = existing.id
            conn.execute(update(feedback).where(feedback.c.id == fid).values(
                occurrences=feedback.c.occurrences + 1, **values))
            status: Literal["created", "updated"] = "updated"
        else:
            fid = "fb_" + uuid.uuid4().hex[:24]
            conn.execute(insert(feedback).values(
                id=fid, dedupe_key=dedupe, trace_id=norm.trace_id, span_id=norm.span_id,
                kind=norm.kind, name=norm.name, source_kind=fb.source_kind,
                source_id=fb.source_id, occurrences=1, created_at=ts,
                session_id=fb.session_id, **values))
            status = "created"
        if idem:
            conn.execute(insert(feedback_requests).values(
                idempotency_id=idem, feedback_id=fid,
                request_hash=request_hash, created_at=now))
    if linked and norm.kind == "edit":
        _fill_diff(store, fid, norm)
    with store.read() as conn:
        row = conn.execute(select(feedback).where(feedback.c.id == fid)).first()
    assert row is not None
    return Recorded(status, _decode(dict(row._mapping)))


def _fill_diff(store: Store, fid: str, norm: _Normalised) -> None:
    answer = _answer(store, norm.trace_id, norm.span_id)
    if answer is None or norm.value_text is None:
        return
    with store.write() as conn:
        conn.execute(update(feedback).where(feedback.c.id == fid).values(
            diff=make_diff(answer, norm.value_text)))


def link_pending(store: Store) -> int:
    """Link feedback that arrived before its trace; returns how many were linked."""
    with store.read() as conn:
        pending = [dict(r._mapping) for r in conn.execute(
            select(feedback.c.id, feedback.c.trace_id, feedback.c.span_id, feedback.c.kind,
                   feedback.c.name, feedback.c.data_type, feedback.c.value_text)
            .where(feedback.c.linked == 0).limit(5000))]
        known = {r["trace_id"] for r in pending if _trace_known(conn, r["trace_id"])}
    done = 0
    for r in pending:
        if r["trace_id"] not in known:
            continue
        with store.write() as conn:
            conn.execute(update(feedback).where(feedback.c.id == r["id"]).values(linked=1))
        if r["kind"] == "edit":
            _fill_diff(store, r["id"], _Normalised(r["trace_id"], r["span_id"], r["kind"],
                                                   r["name"], r["data_type"], None,
                                                   r["value_text"]))
        done += 1
    return done


class FeedbackList(list[dict[str, Any]]):
    """Rows with a table ``_repr_html_`` for notebooks."""

    COLUMNS = ("id", "trace_id", "kind", "name", "value", "comment", "source_kind",
               "occurrences", "linked")

    def _repr_html_(self) -> str:
        from workbench.observability.views import html_table

        return html_table(self, self.COLUMNS)


def list_feedback(store: Store, *, trace_id: str | None = None, kind: str | None = None,
                  since: float | None = None, limit: int = 100) -> FeedbackList:
    """Newest first; links feedback whose trace has arrived since it was recorded."""
    if kind is not None and kind not in KINDS:
        raise _bad(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    link_pending(store)
    stmt = select(feedback).order_by(feedback.c.updated_at.desc()).limit(limit)
    if trace_id:
        stmt = stmt.where(feedback.c.trace_id == trace_id.strip().lower())
    if kind:
        stmt = stmt.where(feedback.c.kind == kind)
    if since is not None:
        stmt = stmt.where(feedback.c.updated_at >= since)
    with store.read() as conn:
        return FeedbackList(_decode(dict(r._mapping)) for r in conn.execute(stmt))


def stats(store: Store, since: float | None = None) -> list[dict[str, Any]]:
    """Per kind (and score name): messages with the signal, repeats, and the value summary
    (thumbs-up rate for thumbs, mean for numeric kinds)."""
    stmt = (select(feedback.c.kind, feedback.c.name, feedback.c.data_type,
                   func.count().label("messages"),
                   func.sum(feedback.c.occurrences).label("occurrences"),
                   func.avg(feedback.c.value_num).label("mean"),
                   func.sum(feedback.c.linked).label("linked"))
            .group_by(feedback.c.kind, feedback.c.name, feedback.c.data_type)
            .order_by(feedback.c.kind, feedback.c.name))
    if since is not None:
        stmt = stmt.where(feedback.c.updated_at >= since)
    with store.read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
    for r in rows:
        mean = r.pop("mean")
        r["up_rate" if r["kind"] == "thumbs" else "mean"] = (
            round(float(mean), 4) if mean is not None and r["data_type"] in
            ("boolean", "numeric") else None)
        r["occurrences"] = int(r["occurrences"] or 0)
        r["linked"] = int(r["linked"] or 0)
    return rows


# -- golden data -------------------------------------------------------------------------
ExportSelect = Literal["edit", "thumbs-down", "thumbs-up", "rating-low"]
DEFAULT_EXPORT: tuple[ExportSelect, ...] = ("edit", "thumbs-down")


def _matches(row: dict[str, Any], wanted: Sequence[str]) -> str | None:
    kind, value = row["kind"], row["value"]
    if kind == "edit" and "edit" in wanted:
        return "edit"
    if kind == "thumbs" and value is False and "thumbs-down" in wanted:
        return "thumbs-down"
    if kind == "thumbs" and value is True and "thumbs-up" in wanted:
        return "thumbs-up"
    if kind == "rating" and isinstance(value, int | float) and value <= 2 and \
            "rating-low" in wanted:
        return "rating-low"
    return None


def golden_rows(store: Store, select_: Sequence[str] = DEFAULT_EXPORT,
                since: float | None = None) -> Iterator[dict[str, Any]]:
    """Selected feedback as golden-dataset rows (question, reference, contexts, tags).

    ``edit``: the user's edited answer becomes the reference. ``thumbs-up``: the model's
    answer is a reference. ``thumbs-down`` / ``rating-low``: no reference (a human should
    write one); the answer and comment say what was wrong.
    """
    from workbench.observability.traces import get_trace

    bad = [s for s in select_ if s not in ("edit", "thumbs-down", "thumbs-up", "rating-low")]
    if bad:
        raise _bad(f"cannot export {bad}; choose from edit, thumbs-down, thumbs-up, rating-low")
    for row in list_feedback(store, since=since, limit=100_000):
        why = _matches(row, select_)
        if why is None:
            continue
        try:
            trace = get_trace(store, row["trace_id"])
        except NotFound:
            trace = None
        answer = trace.answer() if trace else None
        contexts = [str(d["content"]) for s in (trace.spans if trace else [])
                    if s.kind == "RETRIEVER" for d in s.documents() if d.get("content")]
        reference = (row["value"] if why == "edit" else answer if why == "thumbs-up" else None)
        yield {
            "id": row["id"], "question": trace.question() if trace else None,
            "reference": reference, "reference_contexts": contexts, "answer": answer,
            "tags": ["from-feedback", why],
            "feedback": {"kind": row["kind"], "value": row["value"],
                         "comment": row["comment"], "diff": row.get("diff"),
                         "source_kind": row["source_kind"]},
            "trace_id": row["trace_id"],
        }


def export(store: Store, path: str | Path, select_: Sequence[str] = DEFAULT_EXPORT,
           since: float | None = None) -> int:
    """Write :func:`golden_rows` as JSONL (one object per line); returns the row count."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with out.open("w", encoding="utf-8") as fh:
        for row in golden_rows(store, select_, since):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


__all__ = ["DEFAULT_EXPORT", "IMPLICIT", "KINDS", "FeedbackConflict", "FeedbackIn",
           "FeedbackList", "Recorded", "export", "golden_rows", "link_pending", "list_feedback",
           "make_diff", "parse", "record", "stats", "validate"]
