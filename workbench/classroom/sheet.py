"""The facilitator's sheets: where attendee keys are shown, and nowhere else.

``create`` writes three files, each readable by the facilitator only (0600) and each
written whole or not at all (temp file + rename):

- ``NAME.csv``: one row per attendee (label, key id, key, join command) for a mail merge;
- ``NAME.html``: printable cards, one per attendee, cut along the dashed lines; the join
  command is one line, so it can be pasted into a QR-code generator as is;
- ``NAME-facilitator.txt``: the status page's address and its login (never on the cards).
"""

from __future__ import annotations

import csv
import html
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from workbench.classroom.roster import Seat
from workbench.errors import BadRequest

__all__ = ["join_command", "sheet_paths", "write_sheets"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def join_command(url: str, secret: str) -> str:
    return f"workbench join {url} {secret}"


def sheet_paths(out: Path, *, force: bool = False) -> list[Path]:
    """The CSV, HTML and facilitator files for ``out``; refuses to overwrite an earlier
    sheet (its keys may still be live) unless ``force``. Checked before any key exists."""
    if out.suffix.lower() != ".csv":
        raise BadRequest(f"--out must name a .csv file (got {out.name!r}); the HTML cards "
                         "and the facilitator file are written beside it")
    paths = [out, out.with_suffix(".html"), out.with_name(out.stem + "-facilitator.txt")]
    if not out.parent.is_dir():
        raise BadRequest(f"folder {out.parent} does not exist; create it or choose another "
                         "--out")
    if not os.access(out.parent, os.W_OK):
        raise BadRequest(f"cannot write in {out.parent}; choose another --out")
    existing = [p.name for p in paths if p.exists()]
    if existing and not force:
        raise BadRequest(f"{', '.join(existing)} already exist (an earlier classroom's keys?); "
                         "choose another --out, or pass --force to replace them")
    return paths


def _cell(value: str) -> str:
    """Spreadsheets run a cell starting with = + - @ as a formula: a hostile --names
    entry must stay text."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv(seats: Sequence[Seat], url: str, budget_usd: float, rpm: int) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["attendee", "key_id", "key", "gateway_url", "join_command",
                     "budget_usd", "rpm"])
    for s in seats:
        writer.writerow([_cell(s.label), s.key_id, s.secret, url, join_command(url, s.secret),
                         budget_usd, rpm])
    return buf.getvalue()


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1cm; }}
.card {{ border: 1px dashed #888; padding: 0.6cm; margin-bottom: 0.4cm;
         page-break-inside: avoid; }}
.card h2 {{ margin: 0 0 0.2cm 0; font-size: 14pt; }}
code {{ font-size: 11pt; word-break: break-all; }}
.small {{ color: #555; font-size: 9pt; }}
</style></head><body>
<p class="small">{title}: cut along the dashed lines, one card per attendee.</p>
{cards}
</body></html>
"""

_CARD = """<div class="card"><h2>{label}</h2>
<p>1. In your clone of genai-workbench, run:</p>
<p><code>{command}</code></p>
<p>2. Check it: <code>workbench join --check</code> &nbsp; 3. Open the labs: <code>workbench lab</code></p>
<p class="small">Your key: budget ${budget} , {rpm} requests/minute. Keep it to yourself;
<code>workbench leave</code> removes it from your machine. Key id {key_id}.</p></div>
"""


def _html(seats: Sequence[Seat], url: str, team: str, budget_usd: float, rpm: int) -> str:
    e = html.escape
    cards = "".join(_CARD.format(label=e(s.label), command=e(join_command(url, s.secret)),
                                 budget=e(f"{budget_usd:g}"), rpm=rpm, key_id=e(s.key_id))
                    for s in seats)
    return _PAGE.format(title=e(f"workbench classroom {team}"), cards=cards)


def _facilitator(url: str, team: str, token: str) -> str:
    return (f"Status page: {url}/classroom\n"
            f"User name:   {team}\n"
            f"Password:    {token}\n"
            "(Also: `workbench classroom status --watch` on the gateway's machine.)\n")


def write_sheets(paths: Sequence[Path], seats: Sequence[Seat], *, url: str, team: str,
                 budget_usd: float, rpm: int, page_token: str) -> None:
    """Write every sheet or none: all go to temp files first, then are renamed."""
    texts = [_csv(seats, url, budget_usd, rpm), _html(seats, url, team, budget_usd, rpm),
             _facilitator(url, team, page_token)]
    temps: list[str] = []
    try:
        for path, text in zip(paths, texts, strict=True):
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
            temps.append(tmp)
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        for path, tmp in zip(paths, temps, strict=True):
            os.replace(tmp, path)
    finally:
        for tmp in temps:
            Path(tmp).unlink(missing_ok=True)
