"""The classroom's HTTP routes on the facilitator's gateway (``workbench gateway``).

- ``GET /v1/classroom/profile`` (an attendee key): what this gateway serves to that key,
  read by ``workbench join`` to write the attendee's profile;
- ``GET /classroom`` (HTML, refreshes itself) and ``GET /classroom/status.json``: the
  facilitator's live view. HTTP Basic auth: the user name is the classroom's team, the
  password its status-page token (in ``NAME-facilitator.txt`` beside the sheet), so a
  browser asks for it and attendee keys cannot open it.
"""

from __future__ import annotations

import base64
import binascii
import html
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from workbench.classroom.roster import attendee_rows, check_page_token
from workbench.errors import AuthError
from workbench.http.errors import ErrorResponse
from workbench.models.gateway import Gateway
from workbench.models.server.deps import AppGateway, Authed

__all__ = ["REFRESH_S", "ago", "router"]

REFRESH_S = 5
_NO_STORE = {"cache-control": "no-store", "x-robots-tag": "noindex"}
_KEY_401: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "Missing, unknown, revoked or expired key."}}
_LOGIN_401: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "No or wrong facilitator login (HTTP Basic)."}}


def _facilitator(request: Request, gateway: Gateway) -> str:
    """The team whose page this Basic-auth login opens, or AuthError (401 + challenge)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    team = token = ""
    if scheme.lower() == "basic":
        try:
            team, _, token = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            team = token = ""
    if not (team and token and check_page_token(gateway.store, team, token)):
        raise AuthError("the classroom page needs the facilitator's login: user name = the "
                        "team, password = the token in the sheet's -facilitator.txt file",
                        code="classroom_login")
    return team


def ago(ts: float | None, now: float) -> str:
    if not ts:
        return "never"
    s = max(0, int(now - ts))
    return f"{s}s ago" if s < 120 else f"{s // 60}m ago" if s < 7200 else f"{s // 3600}h ago"


def _page(team: str, rows: list[dict[str, Any]], now: float) -> str:
    e = html.escape
    stuck = [r for r in rows if r["state"].startswith("stuck")]
    body = "".join(
        f'<tr class="{"stuck" if r["state"].startswith("stuck") else ""}">'
        f'<td>{e(str(r["attendee"]))}</td><td>{e(r["state"])}</td>'
        f'<td class="n">{r["calls"]}</td><td class="n">{r["errors"]}</td>'
        f'<td class="n">${r["spent_usd"]:.4f} / ${r["budget_usd"] or 0:g}</td>'
        f'<td class="n">{r["tokens"]}</td><td>{e(ago(r["last_seen"], now))}</td>'
        f'<td>{e(r["key_id"])}</td></tr>' for r in rows)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_S}"><title>classroom {e(team)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:1em}}table{{border-collapse:collapse}}
td,th{{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left}}.n{{text-align:right}}
tr.stuck{{background:#fde2e2}}</style></head><body>
<h1>classroom {e(team)}</h1>
<p>{len(rows)} attendees, {sum(1 for r in rows if r["calls"])} seen, {len(stuck)} stuck.
Refreshes every {REFRESH_S} s; updated {e(time.strftime("%H:%M:%S", time.localtime(now)))}.</p>
<table><thead><tr><th>attendee</th><th>state</th><th>calls</th><th>errors</th>
<th>spent / budget</th><th>tokens</th><th>last seen</th><th>key id</th></tr></thead>
<tbody>{body}</tbody></table></body></html>"""


def _auth_failed(err: AuthError) -> Response:
    return JSONResponse(err.to_openai(), status_code=401,
                        headers={"www-authenticate": 'Basic realm="workbench classroom"',
                                 **_NO_STORE})


# Served by ``workbench gateway`` (``create_app(gw, routers=[router])``): the proxy itself
# (layer models) does not know the classroom, which sits above it.
router = APIRouter(tags=["classroom"])


@router.get("/v1/classroom/profile",
            summary="What this gateway serves to the calling key (read by `workbench join`).",
            responses=_KEY_401)
def classroom_profile(gw: Authed) -> dict[str, Any]:
    from workbench.retrieval.answer_strategies import resolve

    allowed = gw.models()
    chat = [s for s in allowed if s.kind in ("chat", "completion")]
    embed = [s for s in allowed if s.kind == "embedding"]
    default_chat = next((s for s in chat if s.name == gw.settings.default_chat_model),
                        chat[0] if chat else None)
    default_embed = next((s for s in embed if s.name == gw.settings.default_embed_model),
                         embed[0] if embed else None)
    return {
        "classroom": gw.principal.team, "key_id": gw.principal.key_id,
        "chat_model": default_chat.name if default_chat else gw.settings.default_chat_model,
        "embed_model": (default_embed.name if default_embed
                        else gw.settings.default_embed_model),
        "answer_strategy": resolve(gw, default_chat) if default_chat else "auto",
        "models": [{"name": s.name, "kind": s.kind, "context_window": s.context_window,
                    "max_output_tokens": s.max_output_tokens,
                    "input_usd_per_mtok": s.input_usd_per_mtok,
                    "output_usd_per_mtok": s.output_usd_per_mtok} for s in allowed],
    }


def _facilitator_view(request: Request, gateway: Gateway,
                      render: Callable[[str, list[dict[str, Any]]], Response]) -> Response:
    try:
        team = _facilitator(request, gateway)
    except AuthError as err:
        return _auth_failed(err)
    return render(team, attendee_rows(gateway.store, team))


@router.get("/classroom", response_class=HTMLResponse,
            summary="The facilitator's live view (HTTP Basic: team / page token).",
            responses=_LOGIN_401)
def classroom_page(request: Request, gateway: AppGateway) -> Response:
    return _facilitator_view(request, gateway, lambda team, rows: HTMLResponse(
        _page(team, rows, time.time()), headers=_NO_STORE))


@router.get("/classroom/status.json",
            summary="The facilitator's view as JSON (HTTP Basic: team / page token).",
            responses=_LOGIN_401)
def classroom_status(request: Request, gateway: AppGateway) -> Response:
    return _facilitator_view(request, gateway, lambda team, rows: JSONResponse(
        {"team": team, "attendees": rows}, headers=_NO_STORE))
