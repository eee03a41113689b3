"""Keys, teams, allowlists, rate limits and the audit chain, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select, update

from workbench.errors import AuthError, BadRequest, NotFound, PermissionDenied, RateLimited
from workbench.models import audit
from workbench.models.policy import Policy, hash_key
from workbench.store import Store, keys
from workbench.store import audit as audit_table


def test_key_is_stored_hashed_and_authenticates(any_store: Store) -> None:
    pol = Policy(any_store)
    key_id, secret = pol.create_key(team="t1", models="a,b", budget_usd=5, rpm=10)
    assert secret.startswith("wb-") and len(secret) > 40
    with any_store.read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(keys))]
    assert rows[0]["key_hash"] == hash_key(secret)
    assert secret not in repr(rows)  # only the hash and a short hint are stored
    listed = pol.list_keys()
    assert "key_hash" not in listed[0] and secret not in repr(listed)
    p = pol.authenticate(secret)
    assert p.key_id == key_id and p.team == "t1" and p.models == ("a", "b") and p.rpm == 10


def test_unknown_revoked_expired_keys(any_store: Store) -> None:
    pol = Policy(any_store)
    with pytest.raises(AuthError):
        pol.authenticate("wb-not-a-key")
    with pytest.raises(AuthError, match="missing"):
        pol.authenticate(None)
    key_id, secret = pol.create_key(team="t")
    pol.revoke_key(key_id)
    with pytest.raises(AuthError) as exc:
        pol.authenticate(secret)
    assert exc.value.code == "key_revoked" and secret not in exc.value.message
    with pytest.raises(BadRequest, match="already revoked"):
        pol.revoke_key(key_id)
    with pytest.raises(NotFound):
        pol.revoke_key("key_nope")
    key2, secret2 = pol.create_key(team="t", expires_in_days=1)
    with any_store.write() as conn:
        conn.execute(update(keys).where(keys.c.id == key2).values(expires_at=time.time() - 1))
    with pytest.raises(AuthError) as exc:
        pol.authenticate(secret2)
    assert exc.value.code == "key_expired"


@pytest.mark.parametrize("kwargs, needle", [
    ({"team": ""}, "--team"),
    ({"team": "t", "budget_usd": -1}, "budget"),
    ({"team": "t", "rpm": 0}, "rpm"),
    ({"team": "t", "tpm": 10_000_000_000}, "tpm"),  # over the 32-bit column (Postgres)
    ({"team": "t", "models": " , "}, "--models"),
    ({"team": "t", "guardrail_mode": "shred"}, "guardrail"),
])
def test_create_key_validates(any_store: Store, kwargs: dict, needle: str) -> None:
    with pytest.raises(BadRequest, match=needle):
        Policy(any_store).create_key(**kwargs)


def test_key_and_team_allowlists_both_apply(any_store: Store) -> None:
    pol = Policy(any_store)
    pol.set_team("analytics", models=["m1", "m2"])
    _, secret = pol.create_key(team="analytics", models=["m2", "m3"])
    p = pol.authenticate(secret)
    pol.check_model(p, "m2")
    for model in ("m1", "m3", "m4"):
        with pytest.raises(PermissionDenied):
            pol.check_model(p, model)


def test_rpm_limit_is_per_minute_window(any_store: Store) -> None:
    pol = Policy(any_store)
    _, secret = pol.create_key(team="t", rpm=2)
    p = pol.authenticate(secret)
    now = 1_000_000 * 60.0
    pol.take_rate(p, 1, now=now)
    pol.take_rate(p, 1, now=now + 1)
    with pytest.raises(RateLimited):
        pol.take_rate(p, 1, now=now + 2)
    pol.take_rate(p, 1, now=now + 60)  # next window


def test_tpm_and_team_limits(any_store: Store) -> None:
    pol = Policy(any_store)
    _, secret = pol.create_key(team="tt", tpm=100)
    p = pol.authenticate(secret)
    now = 2_000_000 * 60.0
    pol.take_rate(p, 120, now=now)  # a request may start while tokens remain
    with pytest.raises(RateLimited):
        pol.take_rate(p, 1, now=now)
    pol.set_team("shared", rpm=1)
    _, a = pol.create_key(team="shared")
    _, b = pol.create_key(team="shared")
    pol.take_rate(pol.authenticate(a), 1, now=now)
    with pytest.raises(RateLimited, match="team"):
        pol.take_rate(pol.authenticate(b), 1, now=now)


def test_audit_chain_records_admin_actions_and_detects_tampering(any_store: Store) -> None:
    pol = Policy(any_store)
    key_id, secret = pol.create_key(team="t", budget_usd=1, actor="alice")
    pol.set_team("t", budget_usd=10, actor="alice")
    pol.revoke_key(key_id, actor="bob")
    rows = audit.entries(any_store)
    # The first append seals the chain with the key (audit.keyed) before its own row.
    assert [r["action"] for r in rows] == ["key.revoke", "team.set", "key.create",
                                           "audit.keyed"]
    assert rows[0]["actor"].startswith("bob:")  # a bare label gets the OS user
    assert secret not in repr(rows) and hash_key(secret) not in repr(rows)
    assert audit.verify(any_store).ok
    with any_store.write() as conn:
        first = conn.execute(select(audit_table.c.id).order_by(audit_table.c.id)).scalar()
        conn.execute(update(audit_table).where(audit_table.c.id == first)
                     .values(details={"team": "t", "budget_usd": 1000}))
    check = audit.verify(any_store)
    assert not check.ok and check.first_bad_id == first


def test_update_key_changes_limits_audited_and_never_below_spend(any_store: Store) -> None:
    pol = Policy(any_store)
    key_id, secret = pol.create_key(team="t", budget_usd=1.0, models="smollm2-135m")
    res = pol.reserve(pol.authenticate(secret), 0.4)
    pol.settle(res, 0.4)
    with pytest.raises(BadRequest, match="below what key"):
        pol.update_key(key_id, budget_usd=0.3)
    assert pol.update_key(key_id, budget_usd=2.0, models="smollm2-135m,gemma3-270m") == {
        "budget_usd": 2.0, "models": ["smollm2-135m", "gemma3-270m"]}
    principal = pol.authenticate(secret)
    pol.check_model(principal, "gemma3-270m")  # the new allowlist applies at once
    assert pol.budget_state(key_id)["budget_usd"] == 2.0
    with pytest.raises(NotFound):
        pol.update_key("key_nope", rpm=5)
    with pytest.raises(BadRequest, match="nothing to change"):
        pol.update_key(key_id)
    with any_store.read() as conn:
        actions = [r.action for r in conn.execute(select(audit_table.c.action))]
    assert actions.count("key.update") == 1
    assert audit.verify(any_store).ok
