"""CLI for classroom mode: the facilitator's ``workbench classroom create|status|revoke``
and the attendee's ``workbench join`` / ``workbench leave``.

Attendee keys appear only in the sheet files (0600), never on the terminal: a
facilitator's screen is usually on the projector.
"""

from __future__ import annotations

import re
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer

from workbench.cli.common import console, err_console, gateway, print_json
from workbench.cli.gateway_cmds import cli_actor
from workbench.errors import BadRequest, ConfigError

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["classroom_app", "register"]

classroom_app = typer.Typer(
    help="Run a workshop on your gateway: attendee keys, a live view, revoke them all.",
    no_args_is_help=True)

DEFAULT_PORT = 8787
# What Policy.create_key makes (wb- + token_urlsafe): a pasted key with a zero-width or
# look-alike character is refused here, not by an HTTP library deep in a later call.
_KEY_SHAPE = re.compile(r"wb-[A-Za-z0-9_-]{16,128}")


def guess_url(port: int = DEFAULT_PORT) -> str:
    """``http://<this machine's LAN address>:port``. Connecting a UDP socket sends no
    packet; it only asks the OS which interface would route there (works offline)."""
    addr = "127.0.0.1"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere real
            addr = s.getsockname()[0]
    except OSError:
        pass
    return f"http://{addr}:{port}"


def _names(path: Path | None) -> list[str] | None:
    if path is None:
        return None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BadRequest(f"cannot read --names file {path}: {type(exc).__name__}") from None
    return [line.strip() for line in lines if line.strip()]


@classroom_app.command("create")
def create(
    n: Annotated[int, typer.Argument(help="How many attendee keys to create.")],
    budget: Annotated[float | None, typer.Option(
        "--budget", help="Spend limit per attendee in USD (required).")] = None,
    rpm: Annotated[int | None, typer.Option(
        help="Requests per minute per attendee (required).")] = None,
    team: Annotated[str, typer.Option(help="Team the keys belong to.")] = "workshop",
    out: Annotated[Path | None, typer.Option(
        help="Sheet to write (.csv; the .html cards and -facilitator.txt go beside it). "
             "Default: classroom-TEAM.csv")] = None,
    url: Annotated[str | None, typer.Option(
        help="Gateway URL attendees join, printed on the sheet. Default: this machine's "
             f"LAN address, port {DEFAULT_PORT}.")] = None,
    models: Annotated[str | None, typer.Option(
        help="Comma-separated model allowlist (default: every model).")] = None,
    expires_in_days: Annotated[float, typer.Option(
        min=0, help="Keys expire after N days (0: never).")] = 2.0,
    names: Annotated[Path | None, typer.Option(
        help="File with one attendee name per line (default attendee-01, -02, ...).")] = None,
    force: Annotated[bool, typer.Option(help="Replace existing sheet files.")] = False,
) -> None:
    """Create N attendee keys (each with its own budget and rpm) in one team and write them
    to a sheet only you can read. No key is printed."""
    from workbench.classroom import roster
    from workbench.classroom.attendee import normalize_url
    from workbench.classroom.sheet import sheet_paths, write_sheets

    out = out or Path(f"classroom-{team}.csv")
    paths = sheet_paths(out, force=force)  # before any key exists: no orphans
    gw_url = normalize_url(url) if url else guess_url()
    label_list = _names(names)
    store = gateway().store
    seats, token = roster.create(store, n, team=team, budget_usd=budget, rpm=rpm,
                                 models=models, expires_in_days=expires_in_days or None,
                                 url=gw_url, names=label_list, actor=cli_actor())
    assert budget is not None and rpm is not None  # roster.create refused None
    try:
        write_sheets(paths, seats, url=gw_url, team=team, budget_usd=budget, rpm=rpm,
                     page_token=token)
    except OSError as exc:
        roster.revoke_keys(store, [s.key_id for s in seats], actor=cli_actor())
        raise ConfigError(f"could not write {out} ({type(exc).__name__}); the "
                          f"{len(seats)} new keys were revoked, nothing was left behind") from None
    console.print(f"created {len(seats)} attendee keys in team [bold]{team}[/] "
                  f"(${budget:g} and {rpm} rpm each)", highlight=False)
    console.print(f"sheets (readable by you only): {paths[0]} (CSV), {paths[1]} (cards to "
                  f"print), {paths[2]} (status page login)", highlight=False, markup=False)
    port = urlsplit(gw_url).port or DEFAULT_PORT
    console.print(f"next: workbench gateway --host 0.0.0.0 --port {port}; attendees "
                  f"run the join command on their card; watch with `workbench classroom status "
                  f"--watch` or {gw_url}/classroom", highlight=False, markup=False)


@classroom_app.command("revoke")
def revoke(
    team: Annotated[str, typer.Option(help="The classroom's team.")] = "workshop",
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Revoke every attendee key of the classroom (they stop working at once)."""
    from workbench.classroom import roster

    if not yes and not typer.confirm(f"Revoke every key of team {team}?"):
        raise typer.Exit(1)
    revoked = roster.revoke(gateway().store, team, actor=cli_actor())
    console.print(f"revoked {len(revoked)} key{'s' * (len(revoked) != 1)} of team {team}; "
                  "the classroom is closed", highlight=False, markup=False)


def status_table(rows: list[dict[str, Any]], team: str) -> Table:
    from rich.table import Table

    from workbench.classroom.routes import ago

    now = time.time()
    stuck = sum(1 for r in rows if r["state"].startswith("stuck"))
    seen = sum(1 for r in rows if r["calls"])
    t = Table(title=f"classroom {team}: {len(rows)} attendees, {seen} seen, {stuck} stuck "
                    f"({time.strftime('%H:%M:%S')})")
    for col, justify in (("attendee", "left"), ("state", "left"), ("calls", "right"),
                         ("errors", "right"), ("spent / budget", "right"),
                         ("last seen", "left"), ("key id", "left")):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        style = "red" if r["state"].startswith("stuck") else (
            "dim" if r["state"] in ("revoked", "expired") else None)
        t.add_row(str(r["attendee"]), r["state"], str(r["calls"]), str(r["errors"]),
                  f"${r['spent_usd']:.4f} / ${r['budget_usd'] or 0:g}",
                  ago(r["last_seen"], now), r["key_id"], style=style)
    return t


@classroom_app.command("status")
def status(
    team: Annotated[str, typer.Option(help="The classroom's team.")] = "workshop",
    watch: Annotated[bool, typer.Option(help="Refresh until Ctrl+C.")] = False,
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between refreshes.")] = 3.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Calls, errors, spend and last seen per attendee, from the gateway's ledger; a stuck
    attendee (last call failed) is red. The same view is at GATEWAY/classroom."""
    from workbench.classroom.roster import attendee_rows

    store = gateway().store
    rows = attendee_rows(store, team)
    if not rows:
        raise BadRequest(f"team {team!r} has no keys; create them with "
                         "`workbench classroom create N --budget USD --rpm R`")
    if as_json:
        print_json(rows)
        return
    if not watch:
        console.print(status_table(rows, team))
        return
    try:
        if not console.is_terminal:  # piped or logged: one table per refresh, appended
            while True:
                console.print(status_table(rows, team))
                console.file.flush()  # a pipe buffers: the reader would see nothing
                time.sleep(interval)
                rows = attendee_rows(store, team)
        from rich.live import Live

        with Live(status_table(rows, team), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                live.update(status_table(attendee_rows(store, team), team), refresh=True)
    except KeyboardInterrupt:
        return  # Ctrl+C is how a watch ends, not an error


def _read_key(key: str | None) -> str:
    """The key from the argument, ``-`` (stdin), or a hidden prompt: a key typed as an
    argument stays in the shell history."""
    if key == "-":
        key = sys.stdin.readline()
    elif key is None:
        if not sys.stdin.isatty():
            raise BadRequest("give your key: `workbench join URL KEY` (or `-` to read it "
                             "from stdin)")
        key = typer.prompt("Your key (from your card; not shown)", hide_input=True)
    key = key.strip()
    if not _KEY_SHAPE.fullmatch(key):
        raise BadRequest("that is not a workbench key (they start with wb-); copy it again "
                         "from your card")
    return key


def _print_checks(url: str, key: str, embed_model: str) -> bool:
    from workbench.classroom.client import check

    results = check(url, key, embed_model)
    for c in results:
        mark = "[green]ok[/]  " if c.ok else "[red]FAIL[/]"
        console.print(f"{mark} {c.step}: ", end="", highlight=False)
        console.print(c.detail, highlight=False, markup=False)
    return all(c.ok for c in results)


def join(
    url: Annotated[str | None, typer.Argument(
        help="The facilitator's gateway, e.g. http://10.0.0.5:8787.")] = None,
    key: Annotated[str | None, typer.Argument(
        help="Your key from the card (`-` reads it from stdin; omit it to be asked).")] = None,
    check_only: Annotated[bool, typer.Option(
        "--check", help="Check the classroom you joined: gateway reachable, key accepted, "
                        "an embeddings call answered.")] = False,
) -> None:
    """Join a workshop: chat, embeddings, RAG, evals, probes and the labs then use the
    facilitator's gateway; your traces and feedback stay in your own store."""
    from workbench.classroom import attendee
    from workbench.classroom.client import fetch_joined
    from workbench.models.providers import read_key_file

    if check_only and url is None:
        joined = attendee.load()
        if joined is None:
            raise BadRequest("you have not joined a classroom; run `workbench join URL KEY`")
        secret = read_key_file(attendee.classroom_dir() / attendee.KEY_FILE)
        console.print(f"classroom {joined.classroom} at {joined.url} as {joined.key_id}",
                      highlight=False, markup=False)
        if not _print_checks(joined.url, secret, joined.embed_model):
            raise typer.Exit(1)
        return
    if url is None:
        raise BadRequest("give the facilitator's gateway URL: `workbench join URL KEY`")
    base = attendee.normalize_url(url)
    secret = _read_key(key)
    joined = fetch_joined(base, secret)
    try:
        before = attendee.load()
    except ConfigError:
        before = None  # a damaged earlier join is simply replaced
    folder = attendee.save(joined, secret)
    if before is not None and (before.url, before.key_id) != (base, joined.key_id):
        console.print(f"(replaces classroom {before.classroom} at {before.url} as "
                      f"{before.key_id})", highlight=False, markup=False)
    console.print(f"joined classroom {joined.classroom} at {base} as {joined.key_id}: chat "
                  f"{joined.chat_model}, embeddings {joined.embed_model}", highlight=False,
                  markup=False)
    console.print(f"your key is in {folder / attendee.KEY_FILE} (readable by you only); "
                  "`workbench leave` removes it", highlight=False, markup=False)
    if check_only and not _print_checks(base, secret, joined.embed_model):
        raise typer.Exit(1)


def leave() -> None:
    """Leave the classroom: forget the gateway and delete your key from this machine."""
    from workbench.classroom import attendee

    try:
        joined = attendee.load()
    except ConfigError:
        joined = None  # a damaged file is exactly what leave must still remove
    if not attendee.remove():
        err_console.print("not in a classroom: nothing to do", highlight=False)
        return
    where = f" {joined.classroom} at {joined.url}" if joined else ""
    console.print(f"left the classroom{where}; your key was deleted from this machine; "
                  "calls use your own profile again", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(classroom_app, name="classroom")
    app.command("join")(join)
    app.command("leave")(leave)
