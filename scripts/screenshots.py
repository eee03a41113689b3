#!/usr/bin/env python3
"""Take the documentation's screenshots in a real headless Chromium, so they stay current.

    python scripts/screenshots.py                      # all shots into docs/assets/screenshots/
    python scripts/screenshots.py --only chat-page     # one shot
    python scripts/screenshots.py --out /tmp/shots     # elsewhere

Shots:
  chat-page        the service's chat page (``workbench serve``) after a question about the
                   playbooks, answered by the embedded model, with "Helpful" pressed
  lab-exercise     lab 1 in marimo (app view, CI mode), at its first exercise check
  exercise-states  the exercise widget's three states on lab 3's exercise 3.3 (the real
                   checker and solution): to do, not yet, right

Everything runs offline on a scratch data dir: Chromium is the system one
(``/usr/bin/chromium``, ``apt-get install chromium``; Playwright downloads nothing) and
every request the pages make must stay on loopback, or the script fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import chdir, contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "assets" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
VIEWPORT_W, VIEWPORT_H = 1200, 820
QUESTION = "How do I keep a team inside its budget?"


class OffLoopback(RuntimeError):
    pass


@contextmanager
def browser_page() -> Iterator[Any]:
    """A fresh page that records console errors and refuses to leave loopback."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise SystemExit(f"error: {CHROMIUM} not found: apt-get install chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": VIEWPORT_W, "height": VIEWPORT_H},
                                          device_scale_factor=1)
            page = context.new_page()
            outside: list[str] = []

            def guard(route: Any) -> None:
                url = route.request.url
                if url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "about:")):
                    route.continue_()
                else:
                    outside.append(url)
                    route.abort()

            page.route("**/*", guard)
            page.set_default_timeout(60_000)
            yield page
            if outside:
                raise OffLoopback(f"the page tried to reach {outside[:3]}")
        finally:
            browser.close()


def lab_exercise(lab: Path, number: str) -> tuple[Any, Callable[[Any], Any]]:
    """A real exercise of a lab: its ``labkit.Exercise`` (number, title, solution, hints,
    read from the lab's source) and its checker (imported from the lab, a marimo file whose
    ``@app.function`` checkers are importable), so a shot never shows a retired one."""
    import ast
    import importlib.util

    sys.path.insert(0, str(ROOT / "labs"))
    import labkit

    tree = ast.parse(lab.read_text(encoding="utf-8"))
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute) and n.func.attr == "Exercise"
                and n.args and isinstance(n.args[0], ast.Constant) and n.args[0].value == number)
    kw = {k.arg: k.value for k in call.keywords if k.arg}
    check = kw["check"]
    if not isinstance(check, ast.Name):
        raise SystemExit(f"exercise {number}: pick one whose check is a plain checker function")
    spec = importlib.util.spec_from_file_location(f"shot_{lab.stem}", lab)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    checker = getattr(module, check.id)
    title = ast.literal_eval(call.args[1])
    exercise = labkit.Exercise(number, title, answer=ast.literal_eval(kw["answer"]),
                               check=checker, solution=ast.literal_eval(kw["solution"]),
                               hints=ast.literal_eval(kw["hints"]))
    return exercise, checker


# The widget's three states on lab 3's exercise 3.3: the starter, a plausible wrong
# answer (no word boundaries: TEMP-123456 is masked too), the reference solution.
STATES_LAB, STATES_EXERCISE, STATES_WRONG = "03_governance.py", "3.3", r"EMP-\d{6}"


def shot_exercise_states(out: Path) -> None:
    ex, _ = lab_exercise(ROOT / "labs" / STATES_LAB, STATES_EXERCISE)
    import labkit  # importable once lab_exercise() has put labs/ on the path
    namespace: dict[str, Any] = {}
    exec(ex.solution, namespace)  # noqa: S102 - the lab's own reference solution
    states = [labkit.Feedback(ex, ex.judge(v))
              for v in (None, STATES_WRONG, namespace[ex.answer])]
    if [s.verdict.ok for s in states] != [False, False, True] or not states[0].verdict.todo:
        raise RuntimeError(f"exercise {ex.number}: the states are not to do, wrong, right")
    body = "".join(f"<section style='margin:12px 0'>{s._repr_html_()}</section>" for s in states)
    html_page = (f"<!doctype html><html><head><meta charset='utf-8'><style>body{{font-family:"
                 f"system-ui,sans-serif;max-width:760px;margin:16px}}</style></head><body>"
                 f"{body}</body></html>")
    with browser_page() as page:
        page.set_viewport_size({"width": 800, "height": 600})
        page.set_content(html_page)
        page.locator("details").first.evaluate("d => d.open = true")  # a hint, unfolded
        page.locator("body").screenshot(path=str(out / "exercise-states.png"))


def shot_chat_page(out: Path) -> None:
    import workbench
    from workbench.retrieval import ingest
    from workbench.service import BackgroundServer, create_service_app

    with tempfile.TemporaryDirectory() as tmp:
        gw = workbench.connect(data_dir=tmp, profile="embedded")
        try:
            with chdir(ROOT / "docs"):  # sources are shown as given: docs-relative paths
                ingest(gw, ["playbooks"], collection="playbooks", progress=False)
            _, secret = gw.policy.create_key(team="docs")
            app = create_service_app(gw, collection="playbooks", title="Ask the playbooks",
                                     max_tokens=48)
            with BackgroundServer(app, lifespan="off") as server, browser_page() as page:
                page.goto(server.url)
                page.wait_for_selector("body[data-state='idle']")
                page.fill("#key", secret)
                page.click("#save-key")
                page.fill("#question", QUESTION)
                page.click("#ask")
                page.wait_for_selector("body[data-state='done']", timeout=300_000)
                page.click("#thumbs-up")
                page.locator("#feedback-log", has_text="Recorded").wait_for()
                page.screenshot(path=str(out / "chat-page.png"), full_page=True)
        finally:
            gw.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Paths that belong to the machine taking the shots, never to a reader's screen.
SCRATCH = (tempfile.gettempdir() + "/", str(ROOT) + "/", str(Path(sys.prefix)) + "/")


def visible_text(page: Any) -> str:
    """The text of every text node at least partly inside the viewport."""
    return str(page.evaluate("""() => {
        const out = [], walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        const range = document.createRange();
        while (walk.nextNode()) {
            range.selectNodeContents(walk.currentNode);
            for (const r of range.getClientRects()) {
                if (r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth) {
                    out.push(walk.currentNode.textContent); break;
                }
            }
        }
        return out.join("\\n");
    }"""))


def shot_lab(out: Path) -> None:
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "marimo"), "run", str(ROOT / "labs" / "01_welcome.py"),
             "--headless", "--no-token", "--port", str(port), "--", "--ci", "1"],
            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "MARIMO_SKIP_UPDATE_CHECK": "1"})
        try:
            base = f"http://127.0.0.1:{port}/"
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"marimo run exited: {proc.stderr.read() if proc.stderr else ''}")
                try:
                    if httpx.get(base, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("marimo run did not start in 120 s")
                time.sleep(0.3)
            with browser_page() as page:
                page.goto(base)
                # The check cell's verdict (labkit's widget), once lab 1 has run that far.
                verdict = page.get_by_text("Exercise 1.1: Find the store").first
                verdict.wait_for(timeout=300_000)
                # The exercise's heading at the top: the table above it shows this run's
                # scratch data dir and this machine's site-packages, not what a reader has.
                page.get_by_text("Exercise 1.1 · Find the store").first.evaluate(
                    "e => e.scrollIntoView({block: 'start'})")
                time.sleep(2.0)  # let the cells below paint
                leaked = [p for p in SCRATCH if p in visible_text(page)]
                if leaked:
                    lines = [ln for ln in visible_text(page).splitlines() if any(p in ln for p in leaked)]
                    raise RuntimeError(f"the lab shot would show a scratch path: {lines[:3]}")
                page.screenshot(path=str(out / "lab-exercise.png"))
        finally:
            proc.terminate()
            proc.wait(timeout=30)


SHOTS: dict[str, Callable[[Path], None]] = {
    "chat-page": shot_chat_page,
    "lab-exercise": shot_lab,
    "exercise-states": shot_exercise_states,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="Folder for the PNG files.")
    parser.add_argument("--only", nargs="+", choices=sorted(SHOTS), help="Only these shots.")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or list(SHOTS):
        started = time.monotonic()
        SHOTS[name](args.out)
        print(f"wrote {args.out / (name + '.png')} ({time.monotonic() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
