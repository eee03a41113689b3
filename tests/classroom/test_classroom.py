"""Classroom mode without a model: the join profile, the key file, attendee keys, the
sheets, the facilitator's page and its login. (Two real processes: test_classroom_e2e.py.)"""

from __future__ import annotations

import base64
import csv
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.classroom import attendee, roster
from workbench.classroom.sheet import sheet_paths, write_sheets
from workbench.config import load_settings
from workbench.errors import BadRequest, ConfigError, NotFound
from workbench.models import audit as audit_log
from workbench.models.policy import Policy
from workbench.models.providers import OpenAICompatibleProvider, read_key_file
from workbench.store import Store

SECRET = "wb-" + "k" * 43


def joined(url: str = "http://10.9.8.7:8787") -> attendee.Joined:
    return attendee.Joined(
        url=url, classroom="workshop", key_id="key_abc", chat_model="smollm2-135m",
        embed_model="minilm-l6-v2", answer_strategy="extractive",
        models=[{"name": "smollm2-135m", "kind": "chat", "context_window": 2048,
                 "max_output_tokens": 256},
                {"name": "minilm-l6-v2", "kind": "embedding", "context_window": 256,
                 "max_output_tokens": 1}])


def wb(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, env=dict(os.environ), cwd=cwd, timeout=300)


# -- the attendee's profile ----------------------------------------------------------------
def test_joining_makes_the_classroom_profile_active_and_leaving_undoes_it() -> None:
    assert load_settings().profile == "embedded"
    folder = attendee.save(joined(), SECRET)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in (attendee.KEY_FILE, attendee.INFO_FILE):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert SECRET not in (folder / attendee.INFO_FILE).read_text()
    s = load_settings()
    assert s.profile == "classroom" and s.default_chat_model == "smollm2-135m"
    specs = s.model_specs()
    # Served models go to the classroom (also the names the embedded runtime has), with
    # the facilitator's context window: ask() still treats the 135M model as tiny.
    assert specs["smollm2-135m"].provider == "classroom"
    assert specs["smollm2-135m"].context_window == 2048
    assert specs["minilm-l6-v2"].provider == "classroom"
    assert specs["gemma3-270m"].provider == "embedded"  # not served: stays local
    prof = s.active_profile()
    assert prof.base_url == "http://10.9.8.7:8787/v1" and prof.answer_strategy == "extractive"
    provider = OpenAICompatibleProvider("classroom", prof)
    assert provider._client.headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in repr(provider) and SECRET not in repr(s)
    assert attendee.remove() and attendee.load() is None
    assert load_settings().profile == "embedded"
    assert not attendee.remove()


def test_env_and_arguments_beat_the_classroom_and_it_beats_workbench_toml(tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "workbench.toml").write_text(
        'profile = "ollama"\nchat_model = "llama3.2"\nbase_url = "http://elsewhere:1/v1"\n'
        '[[models]]\nname = "smollm2-135m"\nprovider = "embedded"\ninput_usd_per_mtok = 5.0\n')
    attendee.save(joined(), SECRET)
    s = load_settings()
    assert s.profile == "classroom" and s.default_chat_model == "smollm2-135m"
    assert s.active_profile().base_url == "http://10.9.8.7:8787/v1"
    assert s.model_specs()["smollm2-135m"].provider == "classroom"
    assert load_settings(profile="embedded").profile == "embedded"
    monkeypatch.setenv("WORKBENCH_PROFILE", "embedded")
    assert load_settings().profile == "embedded"
    monkeypatch.delenv("WORKBENCH_PROFILE")
    monkeypatch.setenv("WORKBENCH_CLASSROOM", "off")
    assert load_settings().profile == "ollama"


def test_a_damaged_join_file_is_a_clear_error_and_leave_still_cleans_up() -> None:
    folder = attendee.save(joined(), SECRET)
    (folder / attendee.INFO_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match="workbench leave"):
        load_settings()
    out = wb("leave")
    assert out.returncode == 0 and "left the classroom" in out.stdout, out.stderr
    assert not any(folder.iterdir())
    again = wb("leave")
    assert again.returncode == 0 and "not in a classroom" in again.stderr


def test_a_key_file_others_can_read_is_refused_without_showing_the_key(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text(SECRET + "\n")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600") as err:
        read_key_file(path)
    assert SECRET not in err.value.message
    path.chmod(0o600)
    assert read_key_file(path) == SECRET
    path.write_text(SECRET + " extra\n")
    with pytest.raises(ConfigError, match="one key") as err:
        read_key_file(path)
    assert SECRET not in err.value.message
    with pytest.raises(ConfigError, match="missing"):
        read_key_file(tmp_path / "gone")


@pytest.mark.parametrize(("given", "expected"), [
    ("10.0.0.5:8787", "http://10.0.0.5:8787"),
    ("http://10.0.0.5:8787/v1/", "http://10.0.0.5:8787"),
    ("https://gw.example/team/v1", "https://gw.example/team"),
])
def test_gateway_urls_people_paste_are_normalized(given: str, expected: str) -> None:
    assert attendee.normalize_url(given) == expected


@pytest.mark.parametrize("bad", ["ftp://x:1", "http://", "http://u:p@h:1", "http://h:1/?k=v"])
def test_bad_gateway_urls_are_refused(bad: str) -> None:
    with pytest.raises(BadRequest, match="http://HOST:PORT"):
        attendee.normalize_url(bad)


def test_join_refuses_bad_keys_and_unreachable_gateways_clearly(tmp_path: Path) -> None:
    from tests.servers import free_port

    bad = wb("join", "http://127.0.0.1:1", "not-a-key")
    assert bad.returncode == 1 and "start with wb-" in bad.stderr
    port = free_port()  # nothing listens there
    down = wb("join", f"http://127.0.0.1:{port}", SECRET)
    assert down.returncode == 1 and "cannot reach the facilitator's gateway" in down.stderr
    assert SECRET not in down.stderr + down.stdout and "Traceback" not in down.stderr
    assert attendee.load() is None  # nothing written
    check = wb("join", "--check")
    assert check.returncode == 1 and "not joined a classroom" in check.stderr


# -- the facilitator's roster ----------------------------------------------------------------
def test_create_makes_n_limited_audited_keys_and_revoke_revokes_them_all(any_store: Store
                                                                        ) -> None:
    seats, token = roster.create(any_store, 3, budget_usd=1.5, rpm=7, url="http://h:1")
    assert [s.label for s in seats] == ["attendee-01", "attendee-02", "attendee-03"]
    listed = {k["id"]: k for k in Policy(any_store).list_keys()}
    for s in seats:
        k = listed[s.key_id]
        assert (k["team"], k["budget_usd"], k["rpm"], k["name"]) == ("workshop", 1.5, 7, s.label)
        assert k["expires_at"] is not None
        assert Policy(any_store).authenticate(s.secret).key_id == s.key_id
    more, _ = roster.create(any_store, 2, budget_usd=1.5, rpm=7)
    assert [s.label for s in more] == ["attendee-04", "attendee-05"]
    rows = roster.attendee_rows(any_store)
    assert [r["attendee"] for r in rows] == [f"attendee-0{i}" for i in range(1, 6)]
    assert {r["state"] for r in rows} == {"not seen yet"}
    # The page token of the first create was replaced by the second's.
    assert not roster.check_page_token(any_store, "workshop", token)
    actions = [e["action"] for e in audit_log.entries(any_store)]
    assert actions.count("classroom.create") == 2 and actions.count("key.create") == 5
    dump = json.dumps(audit_log.entries(any_store), default=str)
    assert not any(s.secret in dump for s in seats + more)
    revoked = roster.revoke(any_store)
    assert sorted(revoked) == sorted(s.key_id for s in seats + more)
    assert {r["state"] for r in roster.attendee_rows(any_store)} == {"revoked"}
    with pytest.raises(Exception, match="revoked"):
        Policy(any_store).authenticate(seats[0].secret)
    assert roster.revoke(any_store) == []  # closing twice is harmless
    with pytest.raises(NotFound, match="no classroom"):
        roster.revoke(any_store, "nobody")


@pytest.mark.parametrize(("n", "budget", "rpm", "match"), [
    (0, 1.0, 5, "between 1 and"), (3, None, 5, "--budget is required"),
    (3, 0.0, 5, "--budget is required"), (3, 1.0, None, "--rpm is required"),
])
def test_create_refuses_bad_input_and_writes_nothing(any_store: Store, n: int,
        budget: float | None, rpm: int | None, match: str) -> None:
    with pytest.raises(BadRequest, match=match):
        roster.create(any_store, n, budget_usd=budget, rpm=rpm)
    assert Policy(any_store).list_keys() == []


def test_a_failure_half_way_revokes_the_keys_already_made(any_store: Store) -> None:
    with pytest.raises(BadRequest, match="--models"):
        roster.create(any_store, 2, budget_usd=1.0, rpm=5, models=" , ")
    assert all(k["revoked_at"] for k in Policy(any_store).list_keys())


# -- sheets ------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(name=st.text(min_size=1, max_size=20).filter(lambda s: s.strip() and "\n" not in s
                                                     and "\r" not in s))
def test_sheets_keep_hostile_names_inert(tmp_path_factory: pytest.TempPathFactory,
                                         name: str) -> None:
    out = tmp_path_factory.mktemp("sheet") / "s.csv"
    paths = sheet_paths(out)
    seats = [roster.Seat(name, "key_1", SECRET)]
    write_sheets(paths, seats, url="http://h:1", team="workshop", budget_usd=1, rpm=5,
                 page_token="wbp-t")
    row = next(csv.DictReader(out.open(encoding="utf-8")))
    assert row["key"] == SECRET and row["join_command"] == f"workbench join http://h:1 {SECRET}"
    assert not row["attendee"].startswith(("=", "+", "-", "@"))  # never a formula
    page = paths[1].read_text(encoding="utf-8")
    assert "<script" not in page.lower().replace("&lt;script", "")
    for p in paths:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600


def test_create_writes_keys_only_to_0600_sheets_and_never_prints_them(tmp_path: Path) -> None:
    out = wb("classroom", "create", "3", "--budget", "2", "--rpm", "10", "--url",
             "http://127.0.0.1:9", "--out", str(tmp_path / "room.csv"))
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader((tmp_path / "room.csv").open(encoding="utf-8")))
    assert len(rows) == 3 and all(r["key"].startswith("wb-") for r in rows)
    for r in rows:
        assert r["key"] not in out.stdout + out.stderr
        assert r["key"] in (tmp_path / "room.html").read_text()
    facilitator = (tmp_path / "room-facilitator.txt").read_text()
    assert "http://127.0.0.1:9/classroom" in facilitator and "wbp-" in facilitator
    assert facilitator.split("Password:")[1].split()[0] not in out.stdout
    again = wb("classroom", "create", "2", "--budget", "2", "--rpm", "10", "--out",
               str(tmp_path / "room.csv"))
    assert again.returncode == 1 and "already exist" in again.stderr
    status = wb("classroom", "status", "--json")
    assert status.returncode == 0
    assert len(json.loads(status.stdout)) == 3  # the refused create made no key
    missing = wb("classroom", "create", "2", "--rpm", "10", "--out", str(tmp_path / "x.csv"))
    assert missing.returncode == 1 and "--budget is required" in missing.stderr
    assert not (tmp_path / "x.csv").exists()
    revoked = wb("classroom", "revoke", "--yes")
    assert revoked.returncode == 0 and "revoked 3 keys" in revoked.stdout
    db = (tmp_path / ".workbench" / "workbench.db").read_bytes()
    assert not any(r["key"].encode() in db for r in rows)


# -- the facilitator's page ----------------------------------------------------------------------
def test_the_status_page_needs_the_facilitator_login(make_gateway) -> None:  # type: ignore[no-untyped-def]
    from workbench.classroom.routes import router
    from workbench.models.server import create_app

    gw = make_gateway()
    seats, token = roster.create(gw.store, 2, budget_usd=1, rpm=5,
                                 names=["Ada <script>x</script>", "Grace"])
    client = TestClient(create_app(gw, routers=[router]))

    def basic(user: str, password: str) -> dict[str, str]:
        raw = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}

    anon = client.get("/classroom")
    assert anon.status_code == 401 and anon.headers["www-authenticate"].startswith("Basic")
    as_attendee = client.get("/classroom", headers={"Authorization": f"Bearer {seats[0].secret}"})
    assert as_attendee.status_code == 401
    wrong_team = client.get("/classroom", headers=basic("other", token))
    assert wrong_team.status_code == 401
    assert client.get("/classroom", headers={"Authorization": "Basic !!!"}).status_code == 401
    page = client.get("/classroom", headers=basic("workshop", token))
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "Ada &lt;script&gt;" in page.text and "<script>" not in page.text
    assert "Grace" in page.text and seats[0].secret not in page.text
    data = client.get("/classroom/status.json", headers=basic("workshop", token)).json()
    assert [a["attendee"] for a in data["attendees"]] == ["Ada <script>x</script>", "Grace"]
    assert seats[0].secret not in json.dumps(data)
    profile = client.get("/v1/classroom/profile",
                         headers={"Authorization": f"Bearer {seats[1].secret}"}).json()
    assert profile["classroom"] == "workshop" and profile["key_id"] == seats[1].key_id
    assert profile["answer_strategy"] == "extractive"
    assert {m["name"]: m["kind"] for m in profile["models"]}["minilm-l6-v2"] == "embedding"
    assert client.get("/v1/classroom/profile").status_code == 401


def test_status_watch_refreshes_when_piped(tmp_path: Path) -> None:
    created = wb("classroom", "create", "2", "--budget", "1", "--rpm", "5", "--url",
                 "http://127.0.0.1:9", "--out", str(tmp_path / "w.csv"))
    assert created.returncode == 0, created.stderr
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "classroom", "status",
                             "--watch", "--interval", "0.5"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert proc.stdout is not None
        titles = 0
        for line in proc.stdout:  # ends only if the watch dies
            titles += "classroom workshop: 2 attendees" in line
            if titles == 2:
                break
        assert titles == 2, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    nobody = wb("classroom", "status", "--team", "nobody")
    assert nobody.returncode == 1 and "has no keys" in nobody.stderr


def test_an_upstream_budget_429_is_not_retried_and_says_why(make_gateway) -> None:  # type: ignore[no-untyped-def]
    """Another workbench gateway answers an exhausted budget with 429 + x-should-retry:
    false; retrying three times would only hide the reason behind 'upstream error'."""
    import httpx

    from workbench.config import Profile
    from workbench.errors import BudgetExceeded

    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(429, headers={"x-should-retry": "false"}, json={"error": {
            "message": "budget of key key_1 is exhausted", "code": "insufficient_quota"}})

    prov = OpenAICompatibleProvider(
        "classroom", Profile(base_url="http://gw.test/v1", chat_model="m"), backoff_s=0.0,
        transport=httpx.MockTransport(handler))
    gw = make_gateway(providers={"classroom": prov}, chat_model="m",
                      models=[{"name": "m", "provider": "classroom"}])
    with pytest.raises(BudgetExceeded, match="budget of key key_1 is exhausted"):
        gw.chat("hi")
    assert len(seen) == 1


@settings(max_examples=30, deadline=None)
@given(junk=st.sampled_from(["\u200b", "\u00a0", "\ufeff", "\u0410", "\uff57", "\n", "x y"]),
       at=st.integers(min_value=0, max_value=len(SECRET)))
def test_disguised_keys_are_refused_cleanly(tmp_path_factory: pytest.TempPathFactory,
                                            junk: str, at: int) -> None:
    """A key pasted with a zero-width, look-alike or full-width character: a clear error
    (and no traceback from an HTTP header deep inside a later call)."""
    from workbench.cli.classroom_cmds import _read_key

    bad = SECRET[:at] + junk + SECRET[at:]
    with pytest.raises(BadRequest, match="not a workbench key"):
        _read_key(bad if bad.strip() != SECRET else bad + "\u200b")
    path = tmp_path_factory.mktemp("k") / "classroom.key"
    path.write_text(bad + "\n", encoding="utf-8")
    path.chmod(0o600)
    if bad.strip() != SECRET:
        with pytest.raises(ConfigError, match="one key"):
            read_key_file(path)


def test_workbench_lab_runs_on_the_joined_classroom(tmp_path: Path) -> None:
    from workbench.cli.lab_cmds import launch_env

    assert launch_env(tmp_path, None)["WORKBENCH_PROFILE"] == "embedded"
    attendee.save(joined(), SECRET)
    assert launch_env(tmp_path, None)["WORKBENCH_PROFILE"] == "classroom"
    assert launch_env(tmp_path, "embedded")["WORKBENCH_PROFILE"] == "embedded"
    assert SECRET not in json.dumps(launch_env(tmp_path, None))


def test_doctor_reports_a_classroom_it_cannot_use(tmp_path: Path) -> None:
    from tests.servers import free_port
    from workbench.doctor import run_checks

    folder = attendee.save(joined(f"http://127.0.0.1:{free_port()}"), SECRET)
    checks = {c.name: c for c in run_checks(smoke=False)}
    assert checks["profile"].detail.startswith("classroom")
    assert checks["provider endpoint"].status == "fail"
    assert "workbench join --check" in checks["provider endpoint"].fix
    (folder / attendee.KEY_FILE).chmod(0o644)
    checks = {c.name: c for c in run_checks(smoke=False)}
    assert checks["provider key"].status == "fail" and "chmod 600" in checks["provider key"].detail
    assert SECRET not in json.dumps([c.__dict__ for c in checks.values()])
