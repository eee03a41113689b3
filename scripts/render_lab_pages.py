#!/usr/bin/env python3
"""Render the labs as documentation pages, with their outputs, into ``docs/labs/``.

    python scripts/render_lab_pages.py            # run every lab (CI mode) and write its page
    python scripts/render_lab_pages.py 04 07      # only these labs (file-name prefixes)
    python scripts/render_lab_pages.py --check    # exit 1 if a page is missing or stale

Each lab runs for real through ``marimo export ipynb --include-outputs`` in its CI mode
(scratch data dir, starter answers in the exercise cells), so a page shows what an attendee
sees on first run: explanations, code, tables, answers from the embedded model, and the
exercise checks saying "to do". marimo's interactive controls cannot work on a static page
and are replaced by a note. A page records the hash of the lab and ``labkit.py`` it was
rendered from; ``--check`` (run by the tests) compares hashes only, because outputs hold
timings and model text that change from run to run.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LABS = ROOT / "labs"
OUT = ROOT / "docs" / "labs"
MARKER = "<!-- rendered by scripts/render_lab_pages.py from {name}.py (sources {digest}); do not edit -->"
MARKER_RE = re.compile(r"<!-- rendered by scripts/render_lab_pages.py from (\S+)\.py \(sources (\w+)\)")
CONTROL_NOTE = ("<p class='lab-control'><em>An interactive control: open the lab "
                "(<code>workbench lab {number}</code>) to use it.</em></p>")


def lab_files() -> list[Path]:
    return sorted(LABS.glob("[0-9][0-9]*_*.py"))


def page_for(lab: Path) -> Path:
    return OUT / f"{lab.stem}.md"


def digest(lab: Path) -> str:
    """What a page depends on: the lab and the classroom helpers it imports."""
    h = hashlib.sha256()
    for src in (lab, LABS / "labkit.py"):
        h.update(src.read_bytes())
    return h.hexdigest()[:16]


def execute(lab: Path) -> dict[str, Any]:
    """Run the lab in CI mode and return it as a notebook with outputs."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"{lab.stem}.ipynb"
        # A subprocess per lab, in a scratch cwd: a lab's state (servers, env) dies with it.
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "marimo"), "export", "ipynb", "--include-outputs",
             "--sort", "top-down", str(lab), "-o", str(target), "-f", "--", "--ci", "1"],
            cwd=tmp, capture_output=True, text=True, timeout=2400)  # busy CI machines
        if proc.returncode != 0 or not target.exists():
            raise RuntimeError(f"running {lab.name} failed ({proc.returncode}):\n"
                               f"{(proc.stdout + proc.stderr)[-3000:]}")
        nb: dict[str, Any] = json.loads(target.read_text(encoding="utf-8"))
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        raise RuntimeError(f"{lab.name}: a cell raised {errors[0].get('ename')}: "
                           f"{errors[0].get('evalue')}")
    return nb


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


_DOC_PATH = re.compile(r"`docs/([\w./-]+\.md)`")


def _links(markdown: str) -> str:
    # Labs name docs pages by their path in the repository (`docs/playbooks/x.md`): a
    # relative link 404s inside marimo, which serves the lab from the server's root. On the
    # site the page lives in docs/labs/, so the path becomes a link to ../playbooks/x.md.
    linked = _DOC_PATH.sub(lambda m: f"[`docs/{m.group(1)}`](../{m.group(1)})", markdown)
    return linked.replace("](../docs/", "](../")  # an old-style relative link, if any


def _output(out: dict[str, Any], number: str) -> str:
    kind = out.get("output_type")
    if kind == "stream":
        return f"```text\n{_text(out.get('text', '')).rstrip()}\n```"
    data = out.get("data", {})
    for mime in ("text/html", "text/markdown"):
        if mime in data:
            body = _text(data[mime]).strip()
            if "marimo-" in html.unescape(body)[:200]:
                return CONTROL_NOTE.format(number=number)
            if mime == "text/markdown":
                return _links(body)
            return f"<div class='lab-output'>\n{body}\n</div>"
    if "image/png" in data:
        png = _text(data["image/png"]).strip()
        return f"<img class='lab-output' alt='cell output' src='data:image/png;base64,{png}'>"
    if "text/plain" in data:
        return f"```text\n{_text(data['text/plain']).rstrip()}\n```"
    return ""


def _hidden(cell: dict[str, Any]) -> bool:
    """Code the lab hides (checkers, exercise cells with their solutions) and marimo test
    cells (they contain passing answers) stay off the page; their outputs stay on it."""
    meta = cell.get("metadata", {}).get("marimo", {})
    return bool(meta.get("config", {}).get("hide_code")) or \
        str(meta.get("name", "")).startswith("test_")


def _fence(source: str) -> str:
    """A code block whose fence is longer than any backtick run inside it, so a lab that
    shows a ```bash block inside its Python does not end the block early."""
    longest = max((len(m) for m in re.findall(r"`{3,}", source)), default=2)
    fence = "`" * max(3, longest + 1)
    return f"{fence}python\n{source}\n{fence}"


def render(lab: Path, nb: dict[str, Any]) -> str:
    number = lab.stem.split("_", 1)[0].lstrip("0")  # 6, 6b
    cells = nb["cells"]
    # The title and goals first, then the note, then every other cell in file order (the
    # setup cell with the imports comes before the title in a marimo file).
    first = next(i for i, c in enumerate(cells) if c["cell_type"] == "markdown")
    parts = [MARKER.format(name=lab.stem, digest=digest(lab)),
             _links(_text(cells[first]["source"]).strip()),
             f'!!! note "This page is lab {number} as it runs"\n'
             f"    Rendered by running `labs/{lab.name}` in its CI mode: the exercise checks "
             "show the starter answers (\"to do\"), model answers are whatever the tiny "
             "embedded model said that run. To work through it yourself: "
             f"`workbench lab {number}` (or the Jupyter edition, "
             f"`workbench lab {number} --jupyter`)."]
    for i, cell in enumerate(cells):
        source = _text(cell.get("source", "")).strip()
        if i == first:
            continue
        if cell["cell_type"] == "markdown":
            parts.append(_links(source))
            continue
        if source and not _hidden(cell):
            parts.append(_fence(source))
        parts.extend(r for r in (_output(o, number) for o in cell.get("outputs", [])) if r)
    return "\n\n".join(parts) + "\n"


def stale(pages: list[Path]) -> list[str]:
    problems = []
    for lab in pages:
        page = page_for(lab)
        if not page.exists():
            problems.append(f"missing: {page.relative_to(ROOT)}")
            continue
        m = MARKER_RE.match(page.read_text(encoding="utf-8"))
        if not m or m.group(2) != digest(lab):
            problems.append(f"stale: {page.relative_to(ROOT)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="Do not run anything; exit 1 if a page is missing or stale.")
    parser.add_argument("labs", nargs="*", metavar="LAB",
                        help="Only these labs (a prefix of the file name: 04, 04_rag).")
    args = parser.parse_args(argv)
    chosen = [lab for lab in lab_files() if not args.labs or lab.stem.startswith(tuple(args.labs))]
    if not chosen:
        print(f"no lab matches {args.labs}", file=sys.stderr)
        return 1
    if args.check:
        problems = stale(chosen)
        for p in problems:
            print(p)
        if problems:
            print("run: python scripts/render_lab_pages.py (it runs each lab, ~1-2 min apiece)")
            return 1
        print(f"{len(chosen)} lab pages are current")
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    for lab in chosen:
        page_for(lab).write_text(render(lab, execute(lab)), encoding="utf-8")
        print(f"wrote {page_for(lab).relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
