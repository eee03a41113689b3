"""Multi-turn evals: golden conversations run turn by turn through the Gateway in process
and through the service (one session), each turn checked, saved as an eval run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.servers import live_server
from tests.service.service_helpers import QUESTION
from workbench.errors import BadRequest
from workbench.evals.conversations import load_conversations, run_conversations

CONVERSATIONS = {"name": "lamp-chat", "conversations": [
    {"id": "lamp", "turns": [
        {"question": QUESTION, "checks": [{"contains": "dusk"}]},
        {"question": "When does the keeper trim the wick?",
         "checks": [{"contains": "midnight"}]}]}]}


def test_through_the_gateway(served: Any) -> None:
    out = run_conversations(served.gw, CONVERSATIONS, collection="docs")
    assert [r.history_turns for r in out.results] == [0, 1]
    # the fake model always says "dusk": the second turn fails its check, with the reason
    assert [r.passed for r in out.results] == [True, False]
    assert "midnight" in out.results[1].reasons[0]
    assert out.conversations == 1 and out.conversations_passed == 0
    assert out.run is not None and out.run.config["target"]["prompt"]["name"] == "rag.answer"
    assert {s.sample_id for s in out.run.samples} == {"lamp#1", "lamp#2"}
    second = served.provider.calls[-1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]


def test_through_the_service_in_one_session(served: Any) -> None:
    secret = served.headers["Authorization"].split()[1]
    with live_server(served.app) as base:
        out = run_conversations(served.gw, CONVERSATIONS, url=base, key=secret)
    sessions = {r.session_id for r in out.results}
    assert len(sessions) == 1 and None not in sessions
    assert [r.history_turns for r in out.results] == [0, 1]
    assert out.prompt and out.prompt.startswith("rag.answer@")


def test_bad_files_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match="needs a non-empty `turns:`"):
        load_conversations({"conversations": [{"id": "x", "turns": []}]})
    with pytest.raises(BadRequest, match="x turn 1: checks\\[0\\]"):
        load_conversations({"conversations": [{"id": "x", "turns": [
            {"question": "q", "checks": [{"nope": 1}]}]}]})
    bad = tmp_path / "c.yaml"
    bad.write_text("conversations: [\n", encoding="utf-8")
    with pytest.raises(BadRequest, match="not valid YAML"):
        load_conversations(bad)


def test_cli_runs_a_conversations_file(served: Any, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    import yaml

    path = tmp_path / "chats.yaml"
    path.write_text(yaml.safe_dump(CONVERSATIONS), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "workbench", "eval", "conversations",
                           str(path), "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stderr  # 1: a turn failed its check
    out = json.loads(proc.stdout)
    assert [(t["conversation"], t["turn"]) for t in out["turns"]] == [("lamp", 1), ("lamp", 2)]
    assert out["run_id"] and out["prompt"].startswith("rag.answer@")
    bad = subprocess.run([sys.executable, "-m", "workbench", "eval", "conversations",
                          str(tmp_path / "missing.yaml")], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 1 and "no conversations file" in bad.stderr
    assert "Traceback" not in bad.stderr
