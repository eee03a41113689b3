"""The CLI contract: help, exit codes, JSON output, errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def wb(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=300)


def test_help_lists_the_contract_commands() -> None:
    out = wb("--help")
    assert out.returncode == 0
    for cmd in ("doctor", "tour", "chat", "keys", "usage", "gateway", "audit", "teams"):
        assert cmd in out.stdout


def test_keys_lifecycle_prints_secret_once(tmp_path: Path) -> None:
    created = wb("keys", "create", "--team", "data", "--models", "smollm2-135m",
                 "--budget-usd", "2", "--rpm", "5", "--json")
    assert created.returncode == 0, created.stderr
    info = json.loads(created.stdout)
    secret, key_id = info["key"], info["id"]
    listed = wb("keys", "list", "--json")
    assert key_id in listed.stdout and secret not in listed.stdout
    row = next(r for r in json.loads(listed.stdout) if r["id"] == key_id)
    assert row["budget_usd"] == 2 and row["status"] == "active"
    raised = wb("keys", "set", key_id, "--budget-usd", "7.5", "--rpm", "9")
    assert raised.returncode == 0 and "budget_usd=7.5" in raised.stdout, raised.stderr
    row = next(r for r in json.loads(wb("keys", "list", "--json").stdout) if r["id"] == key_id)
    assert row["budget_usd"] == 7.5 and row["rpm"] == 9 and row["models"] == ["smollm2-135m"]
    empty = wb("keys", "set", key_id)
    assert empty.returncode == 1 and "nothing to change" in empty.stderr
    revoked = wb("keys", "revoke", key_id)
    assert revoked.returncode == 0
    again = wb("keys", "revoke", key_id)
    assert again.returncode == 1 and "already revoked" in again.stderr
    late = wb("keys", "set", key_id, "--rpm", "1")
    assert late.returncode == 1 and "revoked" in late.stderr
    assert "Traceback" not in again.stderr
    oops = wb("keys", "revoke", secret)
    assert oops.returncode == 1 and secret not in oops.stderr + oops.stdout
    db = (tmp_path / ".workbench" / "workbench.db").read_bytes()
    assert secret.encode() not in db


@pytest.mark.embedded
def test_chat_json_and_usage() -> None:
    out = wb("chat", "Say hi.", "--max-tokens", "5", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["model"] == "smollm2-135m" and len(data["trace_id"]) == 32
    usage = json.loads(wb("usage", "--by", "model", "--json").stdout)
    assert usage[0]["calls"] == 1 and usage[0]["tokens_out"] == data["usage"]["completion_tokens"]


@pytest.mark.parametrize("args, needle", [
    (("chat", "hi", "--model", "nope"), "unknown model 'nope'"),
    (("chat", "hi", "--key", "wb-bogus-key"), "unknown API key"),
    (("chat", "hi", "--temperature", "9"), "temperature"),
    (("usage", "--by", "colour"), "cannot group usage"),
    (("keys", "create", "--team", "t", "--rpm", "0"), "rpm must be"),
])
def test_user_errors_exit_1_with_a_message_not_a_traceback(args: tuple[str, ...],
                                                           needle: str) -> None:
    out = wb(*args)
    assert out.returncode == 1
    assert needle in out.stderr and "Traceback" not in out.stderr


def test_bad_config_is_reported_clearly(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text('profile = "nope"\n')
    out = wb("usage")
    assert out.returncode == 1 and "unknown profile 'nope'" in out.stderr
    assert "Traceback" not in out.stderr


def test_usage_error_exits_2() -> None:
    out = wb("keys", "create")  # --team missing
    assert out.returncode == 2


def test_audit_verify() -> None:
    wb("keys", "create", "--team", "t")
    out = wb("audit", "--verify")
    # The key.create row and the audit.keyed row that sealed the new chain.
    assert out.returncode == 0 and "intact: 2 rows (2 keyed" in out.stdout


def test_doctor_json_reports_each_check() -> None:
    out = wb("doctor", "--json", "--no-smoke")
    checks = {c["name"]: c for c in json.loads(out.stdout)}
    assert checks["store"]["status"] == "ok" and checks["python"]["status"] == "ok"
    assert checks["model smollm2-135m"]["status"] == "ok"
    assert out.returncode == (1 if any(c["status"] == "fail" for c in checks.values()) else 0)


def test_doctor_says_what_to_fix_for_a_missing_provider_key() -> None:
    out = wb("doctor", "--json", "--no-smoke",
             env={"WORKBENCH_PROFILE": "openai", "OPENAI_API_KEY": "",
                  "WORKBENCH_BASE_URL": "http://127.0.0.1:9/v1"})
    checks = {c["name"]: c for c in json.loads(out.stdout)}
    assert out.returncode == 1
    assert checks["provider key"]["status"] == "fail"
    assert "export OPENAI_API_KEY" in checks["provider key"]["fix"]


def test_doctor_fails_when_lancedb_is_not_the_pinned_version(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata as md

    from workbench import doctor

    real = md.version
    assert doctor._lancedb_pin() is not None and doctor._lancedb_pin().status == "ok"  # type: ignore[union-attr]
    monkeypatch.setattr(md, "version", lambda name: "9.9.9" if name == "lancedb" else real(name))
    check = doctor._lancedb_pin()
    assert check is not None and check.status == "fail"
    assert "9.9.9" in check.detail and f"lancedb=={doctor.pinned_version('lancedb')}" in check.fix
