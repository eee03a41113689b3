"""CLI for governed model access: chat, keys, teams, usage, audit, gateway."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from workbench.cli.common import KEY_HELP, console, fmt, gateway, print_json, table
from workbench.errors import BadRequest

if TYPE_CHECKING:
    from fastapi import FastAPI

    from workbench.models.gateway import Gateway
    from workbench.models.policy import SweepResult

TOOLS_HELP = ("Comma-separated tool allowlist (function names), 'none' for no tools, "
              "'all' to remove the list.")
keys_app = typer.Typer(help="Create, list, change and revoke workbench API keys.",
                       no_args_is_help=True)
teams_app = typer.Typer(help="Team-wide allowlists, budgets and rate limits.",
                        no_args_is_help=True)


def cli_actor() -> str:
    """Audit rows of CLI admin commands name the OS user (``cli:alice``)."""
    from workbench.models.audit import cli_actor as actor

    return actor()


def chat(
    prompt: Annotated[str, typer.Argument(help="The user message.")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model name.")] = None,
    system: Annotated[str | None, typer.Option(help="System message.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Cap on generated tokens.")] = None,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature.")] = None,
    stream: Annotated[bool, typer.Option(help="Print tokens as they arrive.")] = False,
    key: Annotated[str | None, typer.Option(help=KEY_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full result as JSON.")] = False,
) -> None:
    """One governed chat call through the Gateway."""
    gw = gateway(key)
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}]
    params = {"max_tokens": max_tokens, "temperature": temperature}
    if stream and not as_json:
        s = gw.stream(messages, model=model, **params)
        for piece in s.text():
            console.print(piece, end="", highlight=False, markup=False)
        console.print()
        if s.result:
            console.print(f"[dim]{s.result._facts()}[/]")
        return
    res = gw.chat(messages, model=model, **params)
    if as_json:
        print_json({"text": res.text, "model": res.model, "usage": res.usage,
                    "cost_usd": res.cost_usd, "latency_ms": res.latency_ms,
                    "cached": res.cached, "redactions": res.redactions,
                    "trace_id": res.trace_id})
        return
    console.print(res.text, highlight=False, markup=False)
    console.print(f"[dim]{res._facts()}[/]")


@keys_app.command("create")
def keys_create(
    team: Annotated[str, typer.Option(help="Team the key belongs to (created if new).")],
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
    models: Annotated[str | None, typer.Option(help="Comma-separated model allowlist.")] = None,
    budget_usd: Annotated[float | None, typer.Option(help="Spend limit in USD.")] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute.")] = None,
    expires_in_days: Annotated[float | None, typer.Option(help="Expire after N days.")] = None,
    guardrails: Annotated[str | None, typer.Option(
        help="PII/secret mode for this key: mask, block, log-only, off.")] = None,
    cache: Annotated[bool, typer.Option(help="Opt this key into the response cache.")] = False,
    tools: Annotated[str | None, typer.Option(help=TOOLS_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print id and key as JSON.")] = False,
) -> None:
    """Create a key. The secret is printed once and stored only as a hash."""
    from workbench.models.policy import Policy
    from workbench.models.tools import parse_tools, set_allowlist

    parse_tools(tools)  # a bad --tools fails before the key exists
    pol = Policy(gateway().store)
    key_id, secret = pol.create_key(team=team, name=name, models=models, budget_usd=budget_usd,
                                    rpm=rpm, tpm=tpm, expires_in_days=expires_in_days,
                                    guardrail_mode=guardrails, cache=cache, actor=cli_actor())
    if tools is not None:
        set_allowlist(pol.store, "key", key_id, tools, actor=cli_actor())
    if as_json:
        print_json({"id": key_id, "key": secret, "team": team})
        return
    console.print(f"created [bold]{key_id}[/] for team [bold]{team}[/]")
    console.print(secret, highlight=False, markup=False)
    console.print("[yellow]Store this key now: it is shown only once.[/]")


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List keys (ids, teams, limits, spend; never secrets)."""
    from workbench.models.policy import Policy

    rows = Policy(gateway().store).list_keys()
    for r in rows:
        r["status"] = ("revoked" if r["revoked_at"] else
                       "expired" if r["expires_at"] and r["expires_at"] < time.time() else "active")
    if as_json:
        print_json(rows)
        return
    console.print(table(rows, ["id", "hint", "name", "team", "models", "budget_usd", "spent_usd",
                               "rpm", "tpm", "status"], title="keys"))


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="Key id (key_…), not the secret.")]
                ) -> None:
    """Revoke a key; it stops working immediately."""
    from workbench.models.policy import Policy

    if key_id.startswith("wb-"):
        raise BadRequest("pass the key id (key_…) shown by `workbench keys list`, not the secret")
    Policy(gateway().store).revoke_key(key_id, actor=cli_actor())
    console.print(f"revoked {key_id}")


@keys_app.command("sweep")
def keys_sweep(
    stale_after: Annotated[float, typer.Option(
        min=0, help="Seconds without a heartbeat after which a holder on another host is "
                    "presumed dead (holders on this host are checked by pid).")] = 300.0,
    older_than: Annotated[float, typer.Option(
        min=0, help="Seconds after which a reservation with no recorded holder (written "
                    "before holders were recorded) is released.")] = 3600.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Release budget reservations left by dead processes (e.g. a gateway killed
    mid-request). Reservations of live processes, on any host, are kept. Audited.
    `workbench gateway` and `workbench serve` run this at startup."""
    from workbench.models.policy import Policy

    result = Policy(gateway().store).sweep(older_than_s=older_than, stale_after_s=stale_after,
                                           actor="cli")
    if as_json:
        print_json(result.as_dict())
        return
    console.print(sweep_summary(result), highlight=False)


def sweep_summary(result: SweepResult) -> str:
    """One line for people: what a sweep released and what it kept."""
    holders = sum(1 for d in result.dead_processes if d["reservations"])
    return (f"released {result.released} reservation{'s' * (result.released != 1)} "
            f"(${result.released_usd:.6f}) left by {holders} dead "
            f"process{'es' * (holders != 1)}; kept {result.kept} held by live processes")


@keys_app.command("set")
def keys_set(
    key_id: Annotated[str, typer.Argument(help="Key id (key_…), not the secret.")],
    models: Annotated[str | None, typer.Option(help="Comma-separated model allowlist.")] = None,
    budget_usd: Annotated[float | None, typer.Option(
        help="New lifetime spend limit in USD (not below what the key has spent).")] = None,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute.")] = None,
    tools: Annotated[str | None, typer.Option(help=TOOLS_HELP)] = None,
) -> None:
    """Change a live key's allowlists, budget or rate limits (audited)."""
    from workbench.models.policy import Policy
    from workbench.models.tools import parse_tools, set_allowlist

    if key_id.startswith("wb-"):
        raise BadRequest("pass the key id (key_…) shown by `workbench keys list`, not the secret")
    parse_tools(tools)
    store = gateway().store
    changed: dict[str, object] = {}
    if tools is None or any(v is not None for v in (models, budget_usd, rpm, tpm)):
        changed = Policy(store).update_key(key_id, models=models, budget_usd=budget_usd,
                                           rpm=rpm, tpm=tpm, actor=cli_actor())
    if tools is not None:
        changed["tools"] = set_allowlist(store, "key", key_id, tools, actor=cli_actor())
    console.print(f"updated {key_id}: " + ", ".join(f"{k}={v}" for k, v in changed.items()))


@teams_app.command("set")
def teams_set(
    name: Annotated[str, typer.Argument(help="Team name.")],
    models: Annotated[str | None, typer.Option(help="Comma-separated model allowlist.")] = None,
    budget_usd: Annotated[float | None, typer.Option(help="Team spend limit in USD.")] = None,
    rpm: Annotated[int | None, typer.Option(help="Team requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(help="Team tokens per minute.")] = None,
    tools: Annotated[str | None, typer.Option(help=TOOLS_HELP)] = None,
) -> None:
    """Create or update a team's shared limits and allowlists."""
    from workbench.models.policy import Policy
    from workbench.models.tools import parse_tools, set_allowlist

    parse_tools(tools)
    pol = Policy(gateway().store)
    pol.set_team(name, models=models, budget_usd=budget_usd, rpm=rpm, tpm=tpm,
                 actor=cli_actor())
    if tools is not None:
        set_allowlist(pol.store, "team", name, tools, actor=cli_actor())
    console.print(f"team {name} updated")


@teams_app.command("list")
def teams_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List teams with their limits and spend."""
    from workbench.models.policy import Policy

    rows = Policy(gateway().store).teams()
    if as_json:
        print_json(rows)
        return
    console.print(table(rows, ["name", "models", "budget_usd", "spent_usd", "reserved_usd",
                               "rpm", "tpm"], title="teams"))


def usage(
    by: Annotated[str, typer.Option(help="Group by: comma list of team,key,model,outcome.")]
    = "team,key,model",
    since_hours: Annotated[float | None, typer.Option(help="Only the last N hours.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Spend and traffic per team / key / model, from the ledger."""
    groups = tuple(g.strip() for g in by.split(",") if g.strip())
    since = time.time() - since_hours * 3600 if since_hours else None
    rows = gateway().usage(by=groups, since=since)
    if as_json:
        print_json(rows)
        return
    console.print(table(rows, [*groups, "calls", "ok", "cached", "denied", "errors", "anomalies",
                               "tokens_in", "tokens_out", "cost_usd", "avg_latency_ms"],
                        title="usage"))


def audit(
    verify: Annotated[bool, typer.Option(
        help="Check the keyed chain and its anchor; exit 1 if broken.")] = False,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The tamper-evident audit log of admin actions (HMAC-chained, anchored in the data dir).

    The key is $WORKBENCH_AUDIT_KEY if set, else DATA_DIR/audit.key (created on first use).
    """
    from workbench.models import audit as audit_log

    store = gateway().store
    if verify:
        check = audit_log.verify(store)
        if as_json:
            print_json(check.to_dict())
        elif check.ok:
            console.print(check.summary(), highlight=False, markup=False)
        else:
            console.print(check.summary(), style="red", highlight=False, markup=False)
        raise typer.Exit(0 if check.ok else 1)
    rows = audit_log.entries(store, limit)
    if as_json:
        print_json(rows)
        return
    for r in rows:
        r["time"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["ts"]))
        r["details"] = fmt(str(r["details"]))[:60]
    console.print(table(rows, ["id", "time", "actor", "action", "target", "details"],
                        title="audit"))


def served_app(gw: Gateway) -> FastAPI:
    """The app ``workbench gateway`` serves: the proxy plus the classroom's routes."""
    from workbench.classroom.routes import router as classroom_router
    from workbench.models.server import create_app

    return create_app(gw, routers=[classroom_router])


def serve_gateway(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8787,
) -> None:
    """Run the OpenAI-compatible proxy (keys required: Authorization: Bearer <key>).
    Logs at the `log_level` setting; the access log (INFO) drops query strings."""
    import uvicorn

    from workbench.observability.access_log import uvicorn_log_config

    gw = gateway()
    # Reservations of a gateway that was killed mid-request would hold budget forever.
    swept = gw.policy.sweep(actor="gateway-startup")
    if swept.released:
        console.print(sweep_summary(swept), highlight=False)
    uvicorn.run(served_app(gw), host=host, port=port,
                log_level=gw.settings.log_level.lower(), log_config=uvicorn_log_config())


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)
    app.add_typer(keys_app, name="keys")
    app.add_typer(teams_app, name="teams")
    app.command("usage")(usage)
    app.command("audit")(audit)
    app.command("gateway")(serve_gateway)


__all__ = [
    "register",
]
