"""Notebook views (waterfall, tables, metrics plot), the CLI for traces and feedback, and
the tour step."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.fakes import FakeProvider
from workbench.models.gateway import Gateway
from workbench.observability import feedback, tracing
from workbench.observability.metrics import product_metrics
from workbench.observability.traces import get_trace, list_traces


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture
def gw(make_gateway: Callable[..., Gateway]) -> Gateway:
    return make_gateway(providers={"fake": FakeProvider(text="<b>bold</b> answer")},
                        models=[{"name": "fake-chat", "provider": "fake"}],
                        chat_model="fake-chat")


def traced_ask(gw: Gateway, question: str = "What is <script>alert(1)</script>?") -> str:
    with tracing.span("ask", input=question, gateway=gw) as root:
        with tracing.span("retrieve", kind="RETRIEVER") as ret:
            ret.set_documents([{"id": "doc-1", "score": 0.9, "content": "c1"}])
        res = gw.chat(question)
        root.set_output(res.text)
    return root.trace_id


def test_waterfall_is_plain_escaped_html_with_one_row_per_span(gw: Gateway) -> None:
    tid = traced_ask(gw)
    html = get_trace(gw.store, tid)._repr_html_()
    parser = Tags()
    parser.feed(html)
    assert "script" not in parser.tags and "b" in parser.tags  # <b>trace</b> is ours
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # user text is escaped
    assert "&lt;b&gt;bold&lt;/b&gt; answer" in html
    assert html.count("class='wb-span'") == 3
    assert parser.tags.count("details") == 3  # inputs/outputs fold open, no JavaScript
    text = "".join(parser.text)
    assert "chat fake-chat" in text and "retrieve" in text and "doc-1" in text


def test_waterfall_renders_through_ipython_and_marimo_formatters(gw: Gateway) -> None:
    trace = get_trace(gw.store, traced_ask(gw))
    ipython = pytest.importorskip("IPython.core.formatters")
    data, _ = ipython.DisplayFormatter().format(trace)
    assert data["text/html"] == trace._repr_html_()
    assert data["text/plain"].startswith(f"trace {trace.trace_id}")


def test_waterfall_renders_in_marimo(gw: Gateway) -> None:
    mo = pytest.importorskip("marimo")
    trace = get_trace(gw.store, traced_ask(gw))
    assert "wb-waterfall" in mo.as_html(trace).text


def test_tree_lines_and_trace_list(gw: Gateway) -> None:
    tid = traced_ask(gw)
    lines = get_trace(gw.store, tid[:8]).lines()  # a unique prefix is enough
    assert lines[0].startswith(f"trace {tid}")
    assert lines[1].startswith("ask  [") and "└─ retrieve" in lines[2]
    assert lines[3].strip().startswith("doc doc-1") and "└─ chat fake-chat" in lines[4]
    rows = list_traces(gw.store)
    assert rows[0]["trace_id"] == tid and rows[0]["root"] == "ask" and rows[0]["spans"] == 3
    assert "<table" in rows._repr_html_()


def test_product_metrics_table_and_plot(gw: Gateway) -> None:
    a, b, c = traced_ask(gw), traced_ask(gw), traced_ask(gw)
    with tracing.span("ask-v2", gateway=gw) as root:
        root.set("llm.prompt_template.version", "v2")
        gw.chat("hi")
    feedback.record(gw.store, trace_id=a, kind="thumbs", value=True)
    feedback.record(gw.store, trace_id=b, kind="thumbs", value=False)
    feedback.record(gw.store, trace_id=b, kind="retry")
    feedback.record(gw.store, trace_id=c, kind="copy")
    feedback.record(gw.store, trace_id=c, kind="copy")  # same message: counted once
    table = product_metrics(gw.store)
    rows = {r["prompt_version"]: r for r in table.rows}
    v1 = rows["-"]
    assert v1["answers"] == 3 and v1["thumbs"] == 2 and v1["thumbs_up_rate"] == 0.5
    assert v1["retry_rate"] == round(1 / 3, 4) and v1["copy_rate"] == round(1 / 3, 4)
    assert v1["edit_rate"] == 0.0 and v1["latency_p50_ms"] is not None
    assert rows["v2"]["answers"] == 1 and rows["v2"]["thumbs_up_rate"] is None
    svg = table.plot().svg()
    ET.fromstring(svg)  # well-formed SVG
    assert svg.count("<polyline") >= 4
    assert "<table" in table._repr_html_() and "<svg" in table._repr_html_()
    by_model = product_metrics(gw.store, by=("model",))
    assert by_model.rows[0]["model"] == "fake-chat" and by_model.rows[0]["answers"] == 4


def test_cli_traces_and_feedback(gw: Gateway, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.cli import app
    from workbench.cli import observability_cmds as cmds

    monkeypatch.setattr(cmds, "_store", lambda: gw.store)
    tid = traced_ask(gw)
    runner = CliRunner()
    res = runner.invoke(app, ["traces", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)[0]["trace_id"] == tid
    res = runner.invoke(app, ["traces", "show", tid, "--html", str(tmp_path / "t.html")])
    assert res.exit_code == 0 and "chat fake-chat" in res.output
    assert "wb-waterfall" in (tmp_path / "t.html").read_text()
    res = runner.invoke(app, ["feedback", "add", tid, "--kind", "thumbs", "--value", "down",
                              "--comment", "vague"])
    assert res.exit_code == 0 and "created" in res.output
    res = runner.invoke(app, ["feedback", "add", tid, "--kind", "edit", "--value", "Better."])
    assert res.exit_code == 0
    res = runner.invoke(app, ["feedback", "list", "--json"])
    assert {r["kind"] for r in json.loads(res.output)} == {"thumbs", "edit"}
    res = runner.invoke(app, ["feedback", "stats", "--json"])
    stats = json.loads(res.output)
    assert stats["metrics"][0]["thumbs_up_rate"] == 0.0 and stats["metrics"][0]["edit_rate"] == 1
    out = tmp_path / "golden.jsonl"
    res = runner.invoke(app, ["feedback", "export", str(out)])
    assert res.exit_code == 0 and len(out.read_text().splitlines()) == 2
    res = runner.invoke(app, ["traces", "show", "f" * 32])
    assert res.exit_code == 1 or "no trace" in str(res.exception)


def test_tour_step_shows_a_trace_and_its_feedback(gw: Gateway) -> None:
    from workbench.observability.tour import tour_step

    step = tour_step(gw)
    assert step["ok"] is True
    tid = step["data"]["trace_id"]
    assert step["lines"][0].startswith(f"trace {tid}")
    assert any(line.strip().startswith("thumbs") for line in step["lines"])
    assert any("edit diff" in line for line in step["lines"])
    assert len(feedback.list_feedback(gw.store, trace_id=tid)) == 3
    again = tour_step(gw, trace_id=tid)  # re-running is idempotent
    assert "duplicate" in " ".join(again["lines"])
    assert len(feedback.list_feedback(gw.store, trace_id=tid)) == 3
