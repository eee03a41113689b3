"""The prompt registry on a real store (SQLite and PostgreSQL): versions are content
hashes, labels move with an audit row, production moves are deployments with lead time
and rollback failures, variables are checked on render, and the CLI says what was wrong."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench import prompts
from workbench.errors import BadRequest, NotFound
from workbench.models import audit
from workbench.store import Store

MESSAGES = [{"role": "system", "content": "Answer from the sources. Cite [n]."},
            {"role": "user", "content": "Sources:\n\n{{sources}}\n\nQuestion: {{question}}"}]


def test_versions_are_content_hashes_and_push_is_idempotent(any_store: Store) -> None:
    a = prompts.push(any_store, "support.answer", MESSAGES, model_settings={"temperature": 0.2})
    again = prompts.push(any_store, "support.answer", MESSAGES,
                         model_settings={"temperature": 0.2})
    other = prompts.push(any_store, "support.answer", MESSAGES[1:])
    assert a.version == again.version and a.n == again.n == 1
    assert other.version != a.version and other.n == 2
    assert a.variables == ("question", "sources")
    assert a.model_settings == {"temperature": 0.2}
    assert prompts.get(any_store, "support.answer", version=a.version[:6]) == a
    assert prompts.get(any_store, "support.answer", label="latest").version == other.version


def test_render_checks_variables(any_store: Store) -> None:
    v = prompts.push(any_store, "support.answer", MESSAGES)
    out = v.render(sources="[1] doc", question="why?")
    assert out[1]["content"] == "Sources:\n\n[1] doc\n\nQuestion: why?"
    # a value that looks like a placeholder is not expanded again
    assert "{{question}}" in v.render(sources="{{question}}", question="q")[1]["content"]
    with pytest.raises(BadRequest, match=r"missing variable\(s\) \['question'\]"):
        v.render(sources="x")
    with pytest.raises(BadRequest, match=r"unknown variable\(s\) \['questoin'\]"):
        v.render(sources="x", question="q", questoin="typo")


def test_bad_names_labels_and_settings_are_refused(any_store: Store) -> None:
    with pytest.raises(BadRequest, match="prompt name"):
        prompts.push(any_store, "Bad Name!", "hi")
    with pytest.raises(BadRequest, match="unknown model setting"):
        prompts.push(any_store, "x.y", "hi", model_settings={"temprature": 0})
    with pytest.raises(BadRequest, match="push cannot label a version production"):
        prompts.push(any_store, "x.y", "hi", labels=["production"])
    with pytest.raises(BadRequest, match="role"):
        prompts.push(any_store, "x.y", [{"role": "tool", "content": "x"}])
    v = prompts.push(any_store, "x.y", "hi")
    with pytest.raises(BadRequest, match="reserved"):
        prompts.set_label(any_store, "x.y", "latest", v.version)
    with pytest.raises(NotFound, match="no version labelled 'candidate'"):
        prompts.get(any_store, "x.y", label="candidate")
    assert prompts.list_prompts(any_store).rows  # nothing half-written broke the listing


def test_builtin_default_until_a_version_is_labelled_production(any_store: Store) -> None:
    default = prompts.get(any_store, prompts.RAG_ANSWER)
    assert default.source == "builtin" and default.labels == ("production",)
    assert set(default.variables) == {"sources", "question"}
    mine = prompts.push(any_store, prompts.RAG_ANSWER, MESSAGES, labels=["candidate"])
    assert prompts.get(any_store, prompts.RAG_ANSWER).version == default.version
    prompts.set_label(any_store, prompts.RAG_ANSWER, "production", mine.version, actor="ops")
    assert prompts.production(any_store, prompts.RAG_ANSWER).version == mine.version
    listed = {r["name"]: r for r in prompts.list_prompts(any_store).rows}
    assert listed[prompts.RAG_ANSWER]["production"] == mine.version
    assert listed[prompts.JUDGE_FAITHFULNESS]["source"] == "built-in"


def test_production_moves_are_audited_deployments_and_rollbacks_fail_them(
        any_store: Store) -> None:
    v1 = prompts.push(any_store, "bot.answer", "Be brief: {{question}}")
    v2 = prompts.push(any_store, "bot.answer", "Be very brief: {{question}}")
    prompts.set_label(any_store, "bot.answer", "production", v1.version, actor="ops")
    prompts.set_label(any_store, "bot.answer", "production", v2.version, actor="ops",
                      gate={"run_id": "run_x", "passed": True})
    # moving a label to where it already points is no deployment
    prompts.set_label(any_store, "bot.answer", "production", v2.version, actor="ops")
    back = prompts.rollback(any_store, "bot.answer", actor="ops")
    assert back.version == v1.version
    deps = prompts.deployments(any_store, "bot.answer")
    assert [d["change"] for d in deps] == [f"prompt bot.answer@{v}" for v in
                                           (v1.version, v2.version, v1.version)]
    assert deps[0]["failure"] is None
    assert deps[1]["failure"] and deps[1]["gate"] == "run_x: passed"
    assert deps[2]["summary"].startswith("rollback to")
    assert all(d["first_commit"] <= d["deployed"] for d in deps)
    moves = [e for e in audit.entries(any_store) if e["action"] == "prompt.label"]
    assert len(moves) == 3 and all(e["target"] == "prompt:bot.answer" for e in moves)
    assert audit.verify(any_store).ok


def test_promote_needs_an_eval_run_of_the_candidate_that_passes(any_store: Store) -> None:
    cand = prompts.push(any_store, "bot.answer", "Q: {{question}}", labels=["candidate"])

    class _Gate:
        def __init__(self, passed: bool):
            self.passed, self.lines = passed, [f"checks {'ok' if passed else '0.5 < 1.0'}"]

    class _Run:
        def __init__(self, version: str, passed: bool):
            self.id = "run_1"
            self.config = {"target": {"prompt": {"name": "bot.answer", "version": version}}}
            self._passed = passed

        def gate(self, thresholds: dict[str, float]) -> _Gate:
            return _Gate(self._passed)

    with pytest.raises(prompts.GateBlocked, match="evaluated bot.answer@other"):
        prompts.promote(any_store, "bot.answer", _Run("other", True), {"checks": 1.0})
    with pytest.raises(prompts.GateBlocked, match="the eval gate failed"):
        prompts.promote(any_store, "bot.answer", _Run(cand.version, False), {"checks": 1.0})
    assert prompts.deployments(any_store, "bot.answer") == []
    moved = prompts.promote(any_store, "bot.answer", _Run(cand.version, True), {"checks": 1.0})
    assert "production" in moved.labels
    assert prompts.deployments(any_store, "bot.answer")[0]["gate"] == "run_1: passed"


def test_diff(any_store: Store) -> None:
    a = prompts.push(any_store, "bot.answer", "Be brief: {{question}}", labels=["candidate"])
    b = prompts.push(any_store, "bot.answer", "Be very brief: {{question}}")
    text = prompts.diff(any_store, "bot.answer", "candidate", b.version)
    assert "-Be brief: {{question}}" in text and "+Be very brief: {{question}}" in text
    assert "same version" in prompts.diff(any_store, "bot.answer", a.version, "candidate")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def test_cli_push_label_diff_and_errors(tmp_path: Path) -> None:
    spec = tmp_path / "p.yaml"
    spec.write_text("messages:\n  - {role: system, content: Be brief.}\n"
                    "  - {role: user, content: '{{question}}'}\nmodel_settings:\n"
                    "  temperature: 0.1\n", encoding="utf-8")
    pushed = _cli("prompts", "push", "bot.answer", "--file", str(spec), "--label", "candidate",
                  "--json", cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    version = json.loads(pushed.stdout)["version"]
    moved = _cli("prompts", "label", "bot.answer", "production", "candidate", cwd=tmp_path)
    assert moved.returncode == 0 and version in moved.stdout
    listed = _cli("prompts", "list", "--json", cwd=tmp_path)
    assert {"name": "bot.answer", "production": version} .items() <= next(
        r for r in json.loads(listed.stdout) if r["name"] == "bot.answer").items()
    deps = _cli("prompts", "deployments", "--json", cwd=tmp_path)
    assert json.loads(deps.stdout)[0]["change"] == f"prompt bot.answer@{version}"
    shown = _cli("prompts", "show", "bot.answer", cwd=tmp_path)
    assert "variables: question" in shown.stdout
    bad = _cli("prompts", "push", "bot.answer", "--user", "x", "--setting", "tempo=1",
               cwd=tmp_path)
    assert bad.returncode == 1 and "unknown model setting" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = _cli("prompts", "show", "bot.answer", "nosuchlabel", cwd=tmp_path)
    assert missing.returncode == 1 and "no version labelled" in missing.stderr
