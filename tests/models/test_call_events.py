"""The Gateway's call events (workbench.models.hooks), Gateway.bind(), and the one redaction
policy from settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tests.fakes import FakeProvider
from workbench.errors import NotFound, UpstreamError, WorkbenchError
from workbench.models.hooks import CallObserver, CallStart
from workbench.observability import traces

FAKE = [{"name": "fake-model", "provider": "fake"}]
EMP = {"EMPLOYEE_ID": r"EMP-\d{6}"}


class Recorder(CallObserver):
    def __init__(self, log: list[tuple[str, Any]], start: CallStart):
        self.log = log
        log.append(("start", start.operation))

    def on_request(self, body: Mapping[str, Any], provider: str | None) -> None:
        self.log.append(("request", body["messages"][-1]["content"]))

    def on_first_token(self) -> None:
        self.log.append(("first_token", None))

    def on_result(self, result: Any) -> None:
        self.log.append(("result", result.trace_id))

    def on_error(self, exc: BaseException) -> None:
        self.log.append(("error", getattr(exc, "code", type(exc).__name__)))

    def on_end(self) -> None:
        self.log.append(("end", None))


def _recording(gw: Any) -> list[tuple[str, Any]]:
    log: list[tuple[str, Any]] = []
    gw.hooks.append(lambda start: Recorder(log, start))
    return log


def test_chat_emits_start_request_result_end_in_order(make_gateway: Any) -> None:
    gw = make_gateway(providers={"fake": FakeProvider()}, models=FAKE, chat_model="fake-model")
    log = _recording(gw)
    res = gw.chat("mail me at ann@example.com")
    assert log == [("start", "chat"), ("request", "mail me at [EMAIL]"),
                   ("result", res.trace_id), ("end", None)]


def test_stream_reports_the_first_token_once_and_the_result_at_the_end(make_gateway: Any
                                                                         ) -> None:
    gw = make_gateway(providers={"fake": FakeProvider(text="one two three")}, models=FAKE,
                      chat_model="fake-model")
    log = _recording(gw)
    stream = gw.stream("hi")
    assert [e for e, _ in log] == ["start", "request"]
    assert "".join(stream.text()).split() == ["one", "two", "three"]
    assert [e for e, _ in log] == ["start", "request", "first_token", "result", "end"]


def test_a_stream_closed_early_reports_an_error_and_ends(make_gateway: Any) -> None:
    gw = make_gateway(providers={"fake": FakeProvider(text="one two three")}, models=FAKE,
                      chat_model="fake-model")
    log = _recording(gw)
    stream = gw.stream("hi")
    next(iter(stream))
    stream.close()
    assert log[-2:] == [("error", "client_disconnected"), ("end", None)]


def test_a_failed_call_reports_its_error_then_ends(make_gateway: Any) -> None:
    gw = make_gateway(providers={"fake": FakeProvider(fail=-1)}, models=FAKE,
                      chat_model="fake-model")
    log = _recording(gw)
    with pytest.raises(UpstreamError):
        gw.chat("hi")
    assert log[-2:] == [("error", "upstream_error"), ("end", None)]


def test_embed_events_and_a_subscriber_that_sits_out(make_gateway: Any) -> None:
    gw = make_gateway(providers={"fake": FakeProvider()},
                      models=[*FAKE, {"name": "fake-embed", "provider": "fake",
                                      "kind": "embedding"}])
    log = _recording(gw)
    gw.hooks.append(lambda start: None)  # not interested in this call
    res = gw.embed(["a", "b"], model="fake-embed")
    assert log == [("start", "embed"), ("result", res.trace_id), ("end", None)]


def test_without_subscribers_calls_work_and_are_not_traced(make_gateway: Any) -> None:
    gw = make_gateway(providers={"fake": FakeProvider()}, models=FAKE, chat_model="fake-model")
    gw.hooks.clear()
    res = gw.chat("hi")
    assert len(res.trace_id) == 32
    traces.flush(gw.store, 5.0)
    with pytest.raises(NotFound, match="no trace"):
        traces.get_trace(gw.store, res.trace_id)


def test_bind_trace_id_joins_every_call_and_on_token_streams(make_gateway: Any) -> None:
    gw = make_gateway(providers={"fake": FakeProvider(text="a b c")}, models=FAKE,
                      chat_model="fake-model")
    pieces: list[str] = []
    trace_id = "ab" * 16
    view = gw.bind(trace_id=trace_id, on_token=pieces.append)
    res = view.chat("hi", trace_id="cd" * 16)  # the bound trace wins
    assert res.trace_id == trace_id and res.text.split() == ["a", "b", "c"]
    assert "".join(pieces).split() == ["a", "b", "c"]
    assert gw.chat("hi").trace_id != trace_id  # the original is unchanged
    assert view.store is gw.store and view.hooks is gw.hooks


def test_bind_on_token_that_raises_closes_the_stream(make_gateway: Any) -> None:
    gw = make_gateway(providers={"fake": FakeProvider(text="a b c")}, models=FAKE,
                      chat_model="fake-model")
    log = _recording(gw)

    def gone(piece: str) -> None:
        raise WorkbenchError("client left", code="client_disconnected")

    with pytest.raises(WorkbenchError):
        gw.bind(on_token=gone).chat("hi")
    assert log[-1] == ("end", None)
    rows = gw.usage(by=("outcome",))
    assert {r["outcome"] for r in rows} == {"error"}  # settled, ledgered once


# -- one redaction policy from settings ------------------------------------------------
def test_a_configured_recognizer_reaches_every_place_that_masks(make_gateway: Any) -> None:
    from workbench.evals import checks
    from workbench.evals.checks import Output
    from workbench.evals.records import SampleRecord, Score, clean_reason
    from workbench.evals.runs import Run, RunStore
    from workbench.observability import feedback

    fake = FakeProvider(text="ask EMP-654321")
    gw = make_gateway(providers={"fake": fake}, models=FAKE, chat_model="fake-model",
                      redaction_patterns=EMP)
    # the gateway: prompt and answer
    res = gw.chat("who is EMP-123456?")
    assert fake.calls[0]["messages"][0]["content"] == "who is [EMPLOYEE_ID]?"
    assert res.text == "ask [EMPLOYEE_ID]"
    # errors
    assert WorkbenchError("no access for EMP-123456").message == "no access for [EMPLOYEE_ID]"
    # eval records
    assert clean_reason("EMP-123456 failed") == "[EMPLOYEE_ID] failed"
    # pii_free
    verdict = checks.pii_free()(Output(answer="call EMP-123456"))
    assert not verdict.passed and "EMPLOYEE_ID" in verdict.reason
    # eval runs
    run = Run(id="run_x", dataset="d", dataset_version="1", dataset_fingerprint="f",
              config={}, samples=[SampleRecord("s1", "q EMP-123456", answer="EMP-123456")],
              scores=[Score("s1", "exact", "check", "ok", 1.0, passed=True)])
    RunStore(gw.store).save(run)
    stored = RunStore(gw.store).load("run_x")
    assert stored.samples[0].question == "q [EMPLOYEE_ID]"
    assert stored.samples[0].answer == "[EMPLOYEE_ID]"
    # feedback
    rec = feedback.record(gw.store, trace_id=res.trace_id, kind="comment",
                          value="EMP-123456 was rude")
    assert rec.feedback["value"] == "[EMPLOYEE_ID] was rude"


def test_a_bad_pattern_is_a_config_error_naming_it(make_gateway: Any) -> None:
    from workbench.config import load_settings
    from workbench.errors import ConfigError

    with pytest.raises(ConfigError, match="EMPLOYEE_ID: not a regular expression"):
        load_settings(redaction_patterns={"EMPLOYEE_ID": "EMP-("})
    with pytest.raises(ConfigError, match="upper-case"):
        load_settings(redaction_patterns={"emp id": "EMP"})
    with pytest.raises(ConfigError, match="empty string"):
        load_settings(redaction_patterns={"EMPTY": "x*"})
