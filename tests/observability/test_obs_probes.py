"""Probes: file loading and its errors, the expectation ladder, stored results, drift when
the embedded model is switched (smollm2 -> gemma3), a real HTTP target, and the CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.fakes import FakeProvider
from tests.servers import free_port, live_server
from workbench.errors import ConfigError
from workbench.evals import probes as pr
from workbench.evals.probe_checks import Expectation, check
from workbench.models.gateway import Gateway
from workbench.observability.traces import get_trace

PROBES_TOML = """
[defaults]
max_tokens = 16
every = "30s"

[[probe]]
name = "capital"
input = "What is the capital of France? Answer with one word."
expect = { pattern = "(?i)paris" }

[[probe]]
name = "arithmetic"
input = "Q: What is 2+2?\\nA:"
expect = { pattern = "=\\\\s*4\\\\s*$" }
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_probe_files_load_from_toml_and_yaml(tmp_path: Path) -> None:
    probes = pr.load_probes(write(tmp_path, "probes.toml", PROBES_TOML))
    assert [p.name for p in probes] == ["capital", "arithmetic"]
    assert probes[0].max_tokens == 16 and probes[0].interval_s == 30
    assert probes[1].expect.kind == "pattern"
    yaml_probes = pr.load_probes(write(tmp_path, "p.yaml", """
probes:
  - name: json
    input: Give a city as JSON.
    every: 1h
    expect:
      json_schema: {type: object, required: [city]}
"""))
    assert yaml_probes[0].expect.kind == "json_schema"
    assert yaml_probes[0].request()["response_format"]["schema"]["required"] == ["city"]
    # The default file is found in the working directory.
    write(Path.cwd(), "probes.toml", PROBES_TOML)
    assert len(pr.load_probes()) == 2


@pytest.mark.parametrize(("body", "message"), [
    ('[[probe]]\nname = "a"\ninput = "x"\nexpect = { regex = "x" }', "name exactly one"),
    ('[[probe]]\nname = "a"\ninput = "x"\nexpect = { pattern = "(" }', "not a valid regular"),
    ('[[probe]]\nname = "a"\ninput = "x"\nexpect = { exact = "x" }\nevery = "soon"',
     "use a number and s/m/h/d"),
    ('[[probe]]\nname = "a"\ninput = "x"\nexpect = { json_schema = { type = 12 } }',
     "schema itself is invalid"),
    ('[[probe]]\nname = "a"\ninput = "x"\nexpect = { exact = "x" }\n'
     '[[probe]]\nname = "a"\ninput = "y"\nexpect = { exact = "y" }', "repeated: a"),
    ('[[probe]]\nname = "a"\nexpect = { exact = "x" }', "probe a: input: Field required"),
    ("probe = [", "not valid TOML"),
    ("[defaults]\nmax_tokens = 3", "no probes found"),
])
def test_bad_probe_files_say_what_is_wrong(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match="probes.toml") as info:
        pr.load_probes(write(tmp_path, "probes.toml", body))
    assert message in info.value.message


def test_cheap_expectations() -> None:
    def ok(expect: dict[str, Any], output: str) -> bool:
        return check(Expectation.model_validate(expect), output, "q", None).ok

    assert ok({"exact": "Paris"}, " paris ") and not ok({"exact": "Paris",
                                                        "case_sensitive": True}, "paris")
    assert ok({"pattern": r"\bParis\b"}, "It is PARIS.") and not ok({"pattern": "Rome"}, "Paris")
    schema = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}
    assert ok({"json_schema": schema}, '{"city": "Paris"}')
    assert not ok({"json_schema": schema}, '{"town": "Paris"}')
    assert not ok({"json_schema": schema}, "Paris")
    verdict = check(Expectation.model_validate({"semantic": "x"}), "x", "q", None)
    assert not verdict.ok and "need a Gateway" in verdict.detail


@pytest.mark.embedded
def test_semantic_and_judge_expectations_run_through_the_gateway(
        make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway()
    near = check(Expectation.model_validate(
        {"semantic": "Paris is the capital of France.", "threshold": 0.6}),
        "The capital of France is Paris.", "capital?", gw)
    far = check(Expectation.model_validate(
        {"semantic": "Paris is the capital of France.", "threshold": 0.6}),
        "Bananas are rich in potassium.", "capital?", gw)
    assert near.ok and not far.ok and near.score is not None and far.score is not None
    assert near.score > far.score
    # The tiny judge: only the mechanics are asserted (a schema-constrained verdict).
    judged = check(Expectation.model_validate({"judge": "The answer names Paris."}),
                   "The capital of France is Paris.", "capital?", gw)
    assert judged.detail.startswith("judge:") and judged.score in (0.0, 1.0)


@pytest.mark.embedded
@pytest.mark.slow
def test_probes_detect_a_switched_embedded_model(make_gateway: Callable[..., Gateway],
                                                 tmp_path: Path) -> None:
    probes = pr.load_probes(write(tmp_path, "probes.toml", PROBES_TOML))
    smol = make_gateway()
    first = pr.run_probes(probes, pr.GatewayTarget(smol), smol.store, smol)
    assert first.ok, first.lines()
    assert first.drift == []  # nothing to compare with yet
    assert {r.model for r in first.results} == {"smollm2-135m"}
    assert all("Smollm2" in (r.model_version or "") for r in first.results)
    # Each probe call is traced (an EVALUATOR span around the LLM span).
    trace = get_trace(smol.store, first.results[0].trace_id or "")
    assert [s.kind for s in trace.spans] == ["EVALUATOR", "LLM"]

    again = pr.run_probes(probes, pr.GatewayTarget(smol), smol.store, smol)
    assert again.ok and again.drift == []  # same model, same outcomes: no drift

    # Switch the profile's model (what a team does when the provider changes).
    gemma = make_gateway(store=smol.store, chat_model="gemma3-270m")
    switched = pr.run_probes(probes, pr.GatewayTarget(gemma), gemma.store, gemma)
    assert {r.model for r in switched.results} == {"gemma3-270m"}
    assert not switched.ok
    drift = {d.probe: d for d in switched.drift}
    assert drift["arithmetic"].kind == "model"
    assert "pass -> fail after the model changed from smollm2-135m" in \
        drift["arithmetic"].message
    assert "gemma3-270m" in drift["arithmetic"].message
    # Whether gemma still gets the capital right is the model's business (it varies with
    # llama.cpp's cache state across a long session); any drift must blame the model.
    assert "capital" not in drift or (drift["capital"].kind in ("model", "model-output")
                                      and "gemma3-270m" in drift["capital"].message)
    history = pr.history(smol.store, "arithmetic")
    assert [h["model"] for h in history] == ["gemma3-270m", "smollm2-135m", "smollm2-135m"]
    assert len({h["prompt_hash"] for h in history}) == 1


def test_changed_prompt_and_silent_changes_are_told_apart() -> None:
    base = pr.ProbeResult("p", True, "exact", "", None, "a", "m", "v1", "h1", 1.0, None)
    prev = {"ok": 1, "model": "m", "model_version": "v1", "prompt_hash": "h1",
            "output_hash": base.output_hash}
    assert pr.detect_drift(prev, base) is None
    failing = pr.ProbeResult("p", False, "exact", "", None, "b", "m", "v1", "h2", 1.0, None)
    assert pr.detect_drift(prev, failing).kind == "prompt"  # type: ignore[union-attr]
    silent = pr.ProbeResult("p", False, "exact", "", None, "b", "m", "v1", "h1", 1.0, None)
    found = pr.detect_drift(prev, silent)
    assert found is not None and found.kind == "silent" and "silent upstream" in found.message
    upgraded = pr.ProbeResult("p", True, "exact", "", None, "c", "m", "v2", "h1", 1.0, None)
    assert pr.detect_drift(prev, upgraded).kind == "model-output"  # type: ignore[union-attr]


def test_watch_runs_each_probe_on_its_schedule(make_gateway: Callable[..., Gateway],
                                               tmp_path: Path) -> None:
    gw = make_gateway(providers={"fake": FakeProvider(text="Paris")},
                      models=[{"name": "fake-chat", "provider": "fake"}], chat_model="fake-chat")
    probes = pr.load_probes(write(tmp_path, "probes.toml", """
[[probe]]
name = "fast"
input = "capital?"
every = "10s"
expect = { exact = "Paris" }

[[probe]]
name = "slow"
input = "capital?"
every = "25s"
expect = { exact = "Paris" }
"""))
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    reports = list(pr.watch(probes, pr.GatewayTarget(gw), gw.store, gw, max_cycles=4,
                            sleep=sleep, clock=lambda: now[0]))
    ran = [sorted(r.probe for r in rep.results) for rep in reports]
    assert ran == [["fast", "slow"], ["fast"], ["fast"], ["slow"]]
    assert now[0] == 25.0


# -- a running service --------------------------------------------------------------------
@pytest.fixture
def service(make_gateway: Callable[..., Gateway]) -> Iterator[str]:
    """A real HTTP server on loopback speaking OpenAI chat completions and POST /ask."""
    from fastapi import FastAPI

    gw = make_gateway(providers={"fake": FakeProvider(text="Paris")},
                      models=[{"name": "fake-chat", "provider": "fake"}], chat_model="fake-chat")
    app = FastAPI()

    @app.post("/v1/chat/completions")
    def completions(body: dict[str, Any]) -> Any:
        res = gw.chat(body)
        return {**res.response, "system_fingerprint": "fp_test_1"}

    @app.post("/ask")
    def ask(body: dict[str, Any]) -> Any:
        res = gw.chat(body["question"])
        return {"answer": res.text, "sources": [], "trace_id": res.trace_id,
                "model": res.model}

    with live_server(app) as base:
        yield base


def test_http_targets_probe_a_running_service(service: str, make_gateway: Callable[..., Gateway],
                                              tmp_path: Path) -> None:
    store = make_gateway().store
    probes = pr.load_probes(write(tmp_path, "probes.toml",
                                  '[[probe]]\nname = "cap"\ninput = "capital?"\n'
                                  'expect = { exact = "Paris" }\n'))
    openai = pr.run_probes(probes, pr.HttpTarget(service), store)
    assert openai.ok and openai.target.endswith("/v1/chat/completions")
    assert openai.results[0].model_version == "fp_test_1"
    ask = pr.run_probes(probes, pr.HttpTarget(service + "/ask"), store)
    assert ask.ok and ask.results[0].model == "fake-chat" and ask.results[0].trace_id
    down = pr.run_probes(probes, pr.HttpTarget(f"http://127.0.0.1:{free_port()}"), store)
    assert not down.ok and "unreachable" in (down.results[0].error or "")
    missing = pr.run_probes(probes, pr.HttpTarget(service + "/nope", api="openai"), store)
    assert "HTTP 404" in (missing.results[0].error or "")


@pytest.mark.embedded
def test_cli_probe_exit_codes(tmp_path: Path, make_gateway: Callable[..., Gateway],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.cli import app
    from workbench.cli import observability_cmds as cmds

    gw = make_gateway()  # the session's loaded embedded model, not a second copy
    monkeypatch.setattr(cmds, "gateway", lambda key=None: gw)
    runner = CliRunner()
    good = write(tmp_path, "good.toml", '[[probe]]\nname = "cap"\nmax_tokens = 12\n'
                 'input = "What is the capital of France? Answer with one word."\n'
                 'expect = { pattern = "(?i)paris" }\n')
    res = runner.invoke(app, ["probe", str(good), "--json"])
    assert res.exit_code == 0, res.output
    assert '"ok": true' in res.output
    bad = write(tmp_path, "bad.toml", '[[probe]]\nname = "cap"\nmax_tokens = 4\n'
                'input = "Say hello."\nexpect = { exact = "zebra-42" }\n')
    res = runner.invoke(app, ["probe", str(bad)])
    assert res.exit_code == 1
    assert "FAIL" in res.output and "0/1 passed" in res.output


def test_http_probe_of_the_real_gateway_proxy_keeps_its_trace_id(
        make_gateway: Callable[..., Gateway], tmp_path: Path) -> None:
    from workbench.models import ledger
    from workbench.models.server import TRACE_HEADER, create_app

    assert pr.TRACE_HEADER == TRACE_HEADER
    gw = make_gateway(providers={"fake": FakeProvider(text="Paris")},
                      models=[{"name": "fake-chat", "provider": "fake"}], chat_model="fake-chat")
    _, secret = gw.policy.create_key(team="probes")
    probes = pr.load_probes(write(tmp_path, "probes.toml",
                                  '[[probe]]\nname = "cap"\ninput = "capital?"\n'
                                  'expect = { exact = "Paris" }\n'))
    with live_server(create_app(gw)) as base:
        run = pr.run_probes(probes, pr.HttpTarget(base, api="openai", key=secret), gw.store)
    assert run.ok, run.results[0].error
    trace_id = run.results[0].trace_id
    assert trace_id and ledger.entries(gw.store, trace_id=trace_id)  # the call it made
