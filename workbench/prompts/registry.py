"""The prompt registry: named prompts with immutable versions and movable labels.

    from workbench import prompts

    v = prompts.push(store, "rag.answer", [{"role": "system", "content": "..."},
                                           {"role": "user", "content": "{{sources}} {{question}}"}],
                     labels=["candidate"])
    prompts.get(store, "rag.answer", label="candidate").render(sources=..., question=...)
    prompts.set_label(store, "rag.answer", "production", v.version, gate=...)

A label points at one version; moving it is an audited admin action (``prompt.label`` in
the audit chain). Moving ``production`` is a **deployment**: it is recorded with the time
the version was pushed (lead time) and whether it rolled back to an earlier version (the
deployment it replaced counts as a change failure), and :func:`deployments` lists them in
the shape lab 9's route-to-live metrics read. Names the workbench uses itself (see
:mod:`workbench.prompts.builtin`) fall back to their built-in default while no version is
labelled ``production``.
"""

from __future__ import annotations

import difflib
import json
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from workbench.errors import BadRequest, NotFound, WorkbenchError
from workbench.prompts.builtin import builtins
from workbench.prompts.schema import prompt_deployments, prompt_labels, prompts
from workbench.prompts.template import LABEL, PromptVersion, check_label, check_name
from workbench.store import Store

PRODUCTION = "production"
CACHE_TTL_S = 5.0  # a label moved by another process is seen within this time


class GateBlocked(WorkbenchError):
    """A label move refused by its eval gate (the run tested another version or failed
    its thresholds): nothing moved."""

    status = 409
    code = "gate_blocked"


def _actor(actor: str) -> str:
    return actor[:160]


def _row(r: Any, labels: Sequence[str] = ()) -> PromptVersion:
    return PromptVersion(r.name, r.version, tuple(r.messages), dict(r.model_settings or {}),
                         r.description or "", int(r.n), "store", float(r.created_at),
                         r.created_by, tuple(labels))


def _labels(conn: Any, name: str) -> dict[str, str]:
    return {r.label: r.version for r in conn.execute(
        select(prompt_labels.c.label, prompt_labels.c.version)
        .where(prompt_labels.c.name == name))}


def push(store: Store, name: str, messages: str | Sequence[Mapping[str, Any]], *,
         model_settings: Mapping[str, Any] | None = None, description: str = "",
         labels: Sequence[str] = (), actor: str = "library") -> PromptVersion:
    """Store a version of ``name`` (a text prompt or chat messages with ``{{variables}}``)
    and point ``labels`` at it. Pushing content that is already stored returns that version
    (versions are content hashes); ``production`` cannot be set here: use
    :func:`set_label` (or :func:`promote`), which records the deployment."""
    built = PromptVersion.build(name, messages, model_settings, description=description[:2000])
    for label in labels:
        check_label(label)
        if label == PRODUCTION:
            raise BadRequest("push cannot label a version production: push it as a candidate, "
                             "then `workbench prompts label NAME production VERSION` (behind "
                             "your eval gate)")
    for attempt in range(3):
        try:
            with store.write() as conn:
                existing = conn.execute(select(prompts).where(
                    prompts.c.name == built.name, prompts.c.version == built.version)).first()
                if existing is None:
                    n = conn.execute(select(func.coalesce(func.max(prompts.c.n), 0))
                                     .where(prompts.c.name == built.name)).scalar() or 0
                    conn.execute(insert(prompts).values(
                        name=built.name, version=built.version, n=int(n) + 1,
                        messages=list(built.messages), model_settings=built.model_settings,
                        description=built.description, created_at=time.time(),
                        created_by=_actor(actor)))
            break
        except IntegrityError:  # another writer pushed the same name at the same moment
            if attempt == 2:
                raise
    for label in labels:
        set_label(store, built.name, label, built.version, actor=actor)
    return get(store, built.name, version=built.version)


def _stored(conn: Any, name: str, version: str) -> Any:
    if len(version) < 4:
        raise BadRequest(f"version {version!r} is too short: give at least 4 characters of "
                         "the hash (see `workbench prompts show NAME`)")
    rows = conn.execute(select(prompts).where(prompts.c.name == name,
                                              prompts.c.version.startswith(version.lower()))
                        ).fetchall()
    if len(rows) > 1:
        raise BadRequest(f"version {version!r} of {name} is ambiguous: give more characters")
    return rows[0] if rows else None


def get(store: Store, name: str, *, label: str | None = None,
        version: str | None = None) -> PromptVersion:
    """A version of ``name``: by ``version`` (the hash, or a unique prefix of 4+ chars),
    else by ``label`` (default ``production``; ``latest`` is the newest version)."""
    check_name(name)
    default = builtins().get(name)
    with store.read() as conn:
        labels = _labels(conn, name)
        if version is None:
            label = label or PRODUCTION
            if label == "latest":
                row = conn.execute(select(prompts).where(prompts.c.name == name)
                                   .order_by(prompts.c.n.desc()).limit(1)).first()
                if row is None and default is None:
                    raise NotFound(f"no prompt named {name!r}: push one with `workbench "
                                   "prompts push`")
                version = row.version if row is not None else None
            else:
                check_label(label)
                version = labels.get(label)
                if version is None and (default is None or label != PRODUCTION):
                    known = ", ".join(sorted(labels)) or "none"
                    raise NotFound(f"prompt {name!r} has no version labelled {label!r} "
                                   f"(labels: {known})")
            if version is None:
                assert default is not None
                return replace(default, labels=(PRODUCTION,))
        row = _stored(conn, name, version)
    if row is None:
        if default is not None and default.version.startswith(version.lower()):
            return replace(default, labels=tuple(sorted(
                lbl for lbl, v in labels.items() if v == default.version)))
        raise NotFound(f"prompt {name!r} has no version {version!r}")
    return _row(row, sorted(lbl for lbl, v in labels.items() if v == row.version))


def resolve(store: Store, ref: str | PromptVersion | None, default_name: str) -> PromptVersion:
    """``None`` (the production version of ``default_name``), a PromptVersion, or a
    reference: ``name``, ``name@label``, ``name@version``, ``@label`` / ``@version``."""
    if isinstance(ref, PromptVersion):
        return ref
    if ref is None:
        return production(store, default_name)
    name, _, which = str(ref).strip().partition("@")
    name = name or default_name
    if not which:
        return get(store, name)
    if which == "latest":
        return get(store, name, label="latest")
    hexish = all(c in "0123456789abcdef" for c in which.lower())
    if LABEL.match(which):
        try:
            return get(store, name, label=which)
        except NotFound:
            if not hexish:
                raise
    return get(store, name, version=which)


# Per store object (weak: a closed store's entries go with it), per name.
_cache: weakref.WeakKeyDictionary[Store, dict[str, tuple[float, PromptVersion]]] = \
    weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def production(store: Store, name: str) -> PromptVersion:
    """The production version of ``name``, cached for :data:`CACHE_TTL_S` (the answer
    path asks on every request); a label moved in this process is seen at once."""
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(store, {}).get(name)
    if hit is not None and now - hit[0] < CACHE_TTL_S:
        return hit[1]
    found = get(store, name)
    with _cache_lock:
        _cache.setdefault(store, {})[name] = (now, found)
    return found


def _forget(name: str) -> None:
    with _cache_lock:
        for entries in _cache.values():
            entries.pop(name, None)


def set_label(store: Store, name: str, label: str, version: str, *, actor: str = "library",
              gate: Mapping[str, Any] | None = None) -> PromptVersion:
    """Point ``label`` of ``name`` at ``version`` (audited). For ``production`` this is a
    deployment: recorded with its lead time, ``gate`` (the eval gate it passed) and
    whether it is a rollback. A built-in default is stored first when it is labelled."""
    from workbench.models import audit

    check_label(label)
    target = get(store, name, version=version)
    if target.source == "builtin":
        target = push(store, name, list(target.messages), model_settings=target.model_settings,
                      description=target.description, actor=actor)
    now = time.time()
    with store.write() as conn:
        current = _labels(conn, name).get(label)
        if current == target.version:
            return get(store, name, version=target.version)
        if current is None:
            conn.execute(insert(prompt_labels).values(
                name=name, label=label, version=target.version, updated_at=now,
                updated_by=_actor(actor)))
        else:
            conn.execute(update(prompt_labels).where(
                prompt_labels.c.name == name, prompt_labels.c.label == label).values(
                version=target.version, updated_at=now, updated_by=_actor(actor)))
        details: dict[str, Any] = {"label": label, "version": target.version,
                                   "previous": current}
        if label == PRODUCTION:
            previous = current
            if previous is None and name in builtins():
                previous = builtins()[name].version
            was_live = conn.execute(select(prompt_deployments.c.id).where(
                prompt_deployments.c.name == name,
                prompt_deployments.c.version == target.version).limit(1)).first() is not None
            default = builtins().get(name)
            rollback = was_live or (default is not None and target.version == default.version)
            conn.execute(insert(prompt_deployments).values(
                name=name, version=target.version, previous=previous, ts=now,
                pushed_at=target.created_at or now, actor=_actor(actor),
                gate=dict(gate) if gate else None, rollback=int(rollback)))
            details.update(deployment=True, rollback=bool(rollback),
                           gate=_gate_summary(gate))
        audit.append(store, conn, actor=actor, action="prompt.label", target=f"prompt:{name}",
                     details=details)
    _forget(name)
    return get(store, name, version=target.version)


def _gate_summary(gate: Mapping[str, Any] | None) -> str | None:
    if not gate:
        return None
    return f"{gate.get('run_id', '?')}: {'passed' if gate.get('passed') else 'not passed'}"


def promote(store: Store, name: str, run: Any, thresholds: Mapping[str, float], *,
            from_label: str = "candidate", to_label: str = PRODUCTION,
            actor: str = "library") -> PromptVersion:
    """Move ``to_label`` to the version labelled ``from_label`` if the eval ``run`` (of
    that very version: its target config names it) passes ``thresholds``; else raise
    :class:`GateBlocked` with the gate's lines. Nothing moves when the gate fails."""
    candidate = get(store, name, label=from_label)
    used = ((run.config or {}).get("target") or {}).get("prompt") or {}
    if used.get("name") != name or used.get("version") != candidate.version:
        ran = f"{used.get('name')}@{used.get('version')}" if used else "no registry prompt"
        raise GateBlocked(f"eval run {run.id} evaluated {ran}, not {candidate.ref} "
                          f"({from_label}): run the gate on the candidate (e.g. rag_target(gw, "
                          f"prompt='{name}@{from_label}'))")
    result = run.gate(dict(thresholds))
    if not result.passed:
        raise GateBlocked(f"{candidate.ref} stays {from_label}: the eval gate failed (run "
                          f"{run.id}): " + "; ".join(result.lines))
    gate = {"run_id": run.id, "passed": True, "thresholds": dict(thresholds),
            "lines": list(result.lines)}
    return set_label(store, name, to_label, candidate.version, actor=actor, gate=gate)


def rollback(store: Store, name: str, *, actor: str = "library") -> PromptVersion:
    """Move ``production`` back to the version it pointed at before the last deployment
    (the built-in default if there was none); the rolled-back deployment is a failure."""
    with store.read() as conn:
        last = conn.execute(select(prompt_deployments).where(prompt_deployments.c.name == name)
                            .order_by(prompt_deployments.c.id.desc()).limit(1)).first()
    if last is None or last.previous is None:
        raise BadRequest(f"prompt {name!r} has no earlier production version to roll back to")
    return set_label(store, name, PRODUCTION, last.previous, actor=actor)


def versions(store: Store, name: str) -> list[PromptVersion]:
    """Every stored version of ``name``, newest first (plus the built-in default)."""
    check_name(name)
    with store.read() as conn:
        labels = _labels(conn, name)
        rows = conn.execute(select(prompts).where(prompts.c.name == name)
                            .order_by(prompts.c.n.desc())).fetchall()
    out = [_row(r, sorted(lbl for lbl, v in labels.items() if v == r.version)) for r in rows]
    default = builtins().get(name)
    if default is not None and all(v.version != default.version for v in out):
        live = [] if PRODUCTION in labels else [PRODUCTION]
        out.append(replace(default, labels=tuple(live)))
    if not out:
        raise NotFound(f"no prompt named {name!r}: push one with `workbench prompts push`")
    return out


@dataclass
class PromptTable:
    rows: list[dict[str, Any]]
    COLUMNS = ("name", "versions", "production", "labels", "latest", "source")

    def __iter__(self) -> Any:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return "\n".join("  ".join(str(r[c]) for c in self.COLUMNS) for r in self.rows)

    def _repr_html_(self) -> str:
        from workbench.observability.views import html_table

        return html_table(self.rows, self.COLUMNS)


def list_prompts(store: Store) -> PromptTable:
    """One row per prompt name: versions, where production points, the other labels."""
    with store.read() as conn:
        counts = {r.name: (int(r.n), r.latest) for r in conn.execute(
            select(prompts.c.name, func.count().label("n"),
                   func.max(prompts.c.n).label("latest")).group_by(prompts.c.name))}
        labels: dict[str, dict[str, str]] = {}
        for r in conn.execute(select(prompt_labels)):
            labels.setdefault(r.name, {})[r.label] = r.version
    rows = []
    for name in sorted(set(counts) | set(builtins())):
        n, latest = counts.get(name, (0, None))
        mine = labels.get(name, {})
        prod = mine.get(PRODUCTION) or (f"{builtins()[name].version} (built-in)"
                                        if name in builtins() else "-")
        rows.append({"name": name, "versions": n, "production": prod,
                     "labels": ", ".join(f"{k}={v}" for k, v in sorted(mine.items())
                                         if k != PRODUCTION) or "-",
                     "latest": f"v{latest}" if latest else "-",
                     "source": "store" if n else "built-in"})
    return PromptTable(rows)


def diff(store: Store, name: str, a: str, b: str) -> str:
    """A unified diff of two versions or labels of ``name`` (messages and settings)."""
    va, vb = resolve(store, f"{name}@{a}", name), resolve(store, f"{name}@{b}", name)

    def lines(v: PromptVersion) -> list[str]:
        out = []
        for m in v.messages:
            out.append(f"[{m['role']}]")
            out.extend(m["content"].splitlines() or [""])
        out.append(f"[model_settings] {json.dumps(v.model_settings, sort_keys=True)}")
        return out

    text = "\n".join(difflib.unified_diff(lines(va), lines(vb), va.ref, vb.ref, lineterm=""))
    return text or f"{va.ref} and {vb.ref} are the same version"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%dT%H:%M")


def deployments(store: Store, name: str | None = None) -> list[dict[str, Any]]:
    """Every move of ``production``, oldest first, as route-to-live change records:
    ``change``, ``kind`` ("prompt"), ``summary``, ``first_commit`` (pushed), ``deployed``,
    ``failure`` (set when a later deployment rolled it back), ``detected``/``restored``
    (the rollback) and ``gate``. The same shape as lab 9's ``CHANGE_LOG``."""
    stmt = select(prompt_deployments).order_by(prompt_deployments.c.id)
    if name:
        stmt = stmt.where(prompt_deployments.c.name == name)
    with store.read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
    out = []
    for i, r in enumerate(rows):
        later = [x for x in rows[i + 1:] if x["name"] == r["name"]]
        nxt = later[0] if later else None
        failed = nxt is not None and bool(nxt["rollback"])
        gate = r["gate"] or {}
        out.append({
            "change": f"prompt {r['name']}@{r['version']}", "kind": "prompt",
            "summary": ("rollback to " if r["rollback"] else "") + f"{r['name']} "
                       f"{r['previous'] or '-'} -> {r['version']}",
            "first_commit": _iso(r["pushed_at"]), "deployed": _iso(r["ts"]),
            "failure": f"rolled back by {nxt['actor']}" if failed and nxt else None,
            "detected": _iso(nxt["ts"]) if failed and nxt else None,
            "restored": _iso(nxt["ts"]) if failed and nxt else None,
            "gate": _gate_summary(gate) if gate else None,
            "gate_run": gate.get("run_id"), "thresholds": gate.get("thresholds"),
            "actor": r["actor"], "id": r["id"],
        })
    return out


__all__ = ["CACHE_TTL_S", "PRODUCTION", "GateBlocked", "PromptTable", "deployments", "diff",
           "get", "list_prompts", "production", "promote", "push", "resolve", "rollback",
           "set_label", "versions"]
