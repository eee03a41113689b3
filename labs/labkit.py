"""What the labs share: CI mode, a gateway on a scratch data dir in CI, exercises with
automatic checks, hints and revealable solutions, and inputs that work in marimo and Jupyter.

Labs keep their teaching code in their own cells and call the ``workbench`` library for
everything else; this module only handles the classroom mechanics. ``labs/jupyter/labkit.py``
is a copy made by ``scripts/build_jupyter_labs.py`` (the Jupyter editions import it from
their own folder): edit this file, then rerun the script.

Displays are plain HTML (``_repr_html_``) so they render the same in marimo, JupyterLab and
the docs site; marimo's own UI elements are used only where marimo runs the lab.
"""

from __future__ import annotations

import atexit
import html
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CI_ENV = "WORKBENCH_LAB_CI"
PLAYBOOK = "docs/playbooks/route-to-live.md"


# -- where are we running? -------------------------------------------------------------
def in_jupyter() -> bool:
    """True under a Jupyter kernel (marimo and plain scripts have no IPython kernel)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()  # type: ignore[attr-defined]
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def _cli_args() -> dict[str, Any]:
    if in_jupyter():
        return {}  # mo.cli_args() raises under a Jupyter kernel
    import marimo as mo

    try:
        return dict(mo.cli_args())
    except Exception as exc:  # noqa: BLE001 - only marimo's "no context" error is expected
        if type(exc).__name__ == "ContextNotInitializedError":
            return {}  # imported outside a marimo run (e.g. by a unit test)
        raise


def ci_mode() -> bool:
    """``python labs/NN.py --ci 1`` or ``WORKBENCH_LAB_CI=1``: fast, scratch data, and every
    exercise verifies its own reference solution."""
    if os.environ.get(CI_ENV, "").lower() in ("1", "true", "yes"):
        return True
    return str(_cli_args().get("ci", "")).lower() in ("1", "true", "yes")


_scratch: list[str] = []


def scratch_dir() -> str:
    """A temporary directory for this process, removed when it exits."""
    if not _scratch:
        path = tempfile.mkdtemp(prefix="workbench-lab-")
        _scratch.append(path)
        atexit.register(shutil.rmtree, path, True)
    return _scratch[0]


def connect(**overrides: Any) -> Any:
    """``workbench.connect()`` for a lab: in CI mode on a scratch data dir, so a CI run
    leaves nothing behind; otherwise your normal settings (``workbench.toml``, env)."""
    import workbench

    if ci_mode() and "data_dir" not in overrides and "store_url" not in overrides:
        overrides["data_dir"] = os.path.join(scratch_dir(), "data")
    return workbench.connect(**overrides)


# -- exercises -------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """A check's answer: ``ok``, what to tell the attendee, and whether the answer is still
    the starter value (shown as a to-do, not as a mistake)."""

    ok: bool
    message: str
    todo: bool = False


def right(message: str = "Correct!") -> Verdict:
    return Verdict(True, message)


def wrong(message: str) -> Verdict:
    return Verdict(False, message)


def todo(message: str = "Not attempted yet: edit the cell above.") -> Verdict:
    return Verdict(False, message, todo=True)


def ledger_lookup(gw: Any) -> Callable[[str], list[dict[str, Any]]]:
    """``trace_id -> that trace's usage-ledger rows`` in ``gw``'s store, for checks that
    must see a real call (see :func:`made_by_gateway`)."""
    from workbench.models import ledger

    return lambda trace_id: ledger.entries(gw.store, 20, trace_id=trace_id)


def made_by_gateway(result: Any, ledger_rows: Callable[[str], list[dict[str, Any]]]) -> bool:
    """True when the usage ledger holds the call that produced ``result`` (a ChatResult or
    a RAG Answer): a successful row with its trace id and, for a ChatResult, its model and
    output tokens. A result built by hand, or a dict typed from one, has no such row."""
    rows = [r for r in ledger_rows(getattr(result, "trace_id", "") or "")
            if r["outcome"] in ("ok", "cached")]
    if hasattr(result, "response"):  # a ChatResult: that exact call
        usage = result.usage
        return any(r["model"] == result.model
                   and r["tokens_out"] == usage.get("completion_tokens") for r in rows)
    # A RAG Answer: any call of its trace (an extractive answer makes embedding calls only).
    return bool(rows)


_COLOURS = {"ok": ("#e7f6ec", "#1f7a3a", "✅"), "todo": ("#eef3fb", "#2d5aa0", "✏️"),
            "wrong": ("#fdecea", "#a12b2b", "❌")}


@dataclass
class Exercise:
    """One exercise: a check for the value the attendee's cell defines, hints, and a
    solution. ``solution`` is the code for the answer cell; it defines ``answer``."""

    number: str
    title: str
    check: Callable[[Any], Verdict]
    answer: str
    solution: str
    hints: Sequence[str] = field(default_factory=tuple)

    def judge(self, value: Any) -> Verdict:
        try:
            return self.check(value)
        except Exception as exc:  # noqa: BLE001 - an answer may fail in any way; the verdict says how
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            return wrong(f"checking your answer raised {type(exc).__name__}: {message}")

    def feedback(self, value: Any, env: Mapping[str, Any] | None = None) -> Feedback:
        """The check cell's output. In CI mode it also proves the check responds: the starter
        value must not pass, and the reference solution (run with ``env``) must."""
        verdict = self.judge(value)
        if ci_mode():
            self.self_test(verdict, env or {})
        return Feedback(self, verdict)

    def self_test(self, starter: Verdict, env: Mapping[str, Any]) -> None:
        if starter.ok:
            raise AssertionError(f"exercise {self.number}: the starter answer passes its check")
        namespace: dict[str, Any] = dict(env)
        exec(compile(self.solution, f"<solution {self.number}>", "exec"), namespace)  # noqa: S102
        solved = self.judge(namespace[self.answer])
        if not solved.ok:
            raise AssertionError(f"exercise {self.number}: the reference solution fails its "
                                 f"check: {solved.message}")


@dataclass
class Feedback:
    exercise: Exercise
    verdict: Verdict

    @property
    def ok(self) -> bool:
        return self.verdict.ok

    def __repr__(self) -> str:
        state = "right" if self.ok else "to do" if self.verdict.todo else "not yet"
        return f"Exercise {self.exercise.number} ({state}): {self.verdict.message}"

    def _repr_html_(self) -> str:
        kind = "ok" if self.ok else "todo" if self.verdict.todo else "wrong"
        bg, fg, mark = _COLOURS[kind]
        ex = self.exercise
        parts = [f"<div style='border-left:4px solid {fg};background:{bg};padding:8px 12px;"
                 f"margin:4px 0'><b style='color:{fg}'>{mark} Exercise {html.escape(ex.number)}"
                 f": {html.escape(ex.title)}</b><br>{html.escape(self.verdict.message)}</div>"]
        if not self.ok:
            for i, hint in enumerate(ex.hints, 1):
                parts.append(details(f"Hint {i}", f"<p>{html.escape(hint)}</p>"))
        parts.append(details("Show the solution", code_block(ex.solution)))
        return "".join(parts)


def details(summary: str, body_html: str) -> str:
    return (f"<details style='margin:2px 0'><summary>{html.escape(summary)}</summary>"
            f"{body_html}</details>")


def code_block(code: str) -> str:
    return f"<pre><code>{html.escape(code.strip())}</code></pre>"


# -- small displays ----------------------------------------------------------------------
@dataclass
class Html:
    """Raw HTML that renders in marimo, Jupyter and on the docs site."""

    body: str
    text: str = ""

    def _repr_html_(self) -> str:
        return self.body

    def __repr__(self) -> str:
        return self.text or self.body


def callout(message: str, kind: str = "info") -> Html:
    colours = {"info": ("#eef3fb", "#2d5aa0"), "warn": ("#fff6e5", "#9a6700"),
               "ok": ("#e7f6ec", "#1f7a3a"), "danger": ("#fdecea", "#a12b2b")}
    bg, fg = colours.get(kind, colours["info"])
    return Html(f"<div style='border-left:4px solid {fg};background:{bg};padding:8px 12px'>"
                f"{html.escape(message)}</div>", message)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> Html:
    """An HTML table of dict rows (floats shortened), with a plain-text fallback."""
    cols = list(columns or (rows[0].keys() if rows else []))

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.6f}" if abs(v) < 1 else f"{v:.2f}"
        return "-" if v is None else str(v)

    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell(r.get(c)))}</td>" for c in cols)
                   + "</tr>" for r in rows)
    text = "\n".join([" | ".join(cols)] + [" | ".join(cell(r.get(c)) for c in cols) for r in rows])
    return Html(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>", text)


def live_text(pieces: Iterable[str], every_s: float = 0.1) -> str:
    """Show text as it streams in (marimo output, a Jupyter display handle, or stdout);
    returns the whole text."""
    text = ""
    if in_jupyter():
        from IPython.display import Markdown, display

        handle = display(Markdown(""), display_id=True)
        for piece in pieces:
            text += piece
            if handle is not None:
                handle.update(Markdown(text))
        return text
    import marimo as mo

    shown = 0.0
    for piece in pieces:
        text += piece
        if mo.running_in_notebook() and time.monotonic() - shown > every_s:
            mo.output.replace(mo.md(text))
            shown = time.monotonic()
        elif not mo.running_in_notebook():
            sys.stdout.write(piece)
    if mo.running_in_notebook():
        mo.output.replace(mo.md(text))
    else:
        sys.stdout.write("\n")
    return text


# -- inputs: marimo UI elements, or ipywidgets under Jupyter -----------------------------
def slider(start: float, stop: float, value: float, step: float = 1, label: str = "") -> Any:
    """A slider with ``.value``. In Jupyter: move it, then re-run the cells below."""
    if in_jupyter():
        import ipywidgets as w

        cls = w.IntSlider if all(float(x).is_integer() for x in (start, stop, value, step)) \
            else w.FloatSlider
        return cls(min=start, max=stop, value=value, step=step, description=label,
                   style={"description_width": "initial"})
    import marimo as mo

    return mo.ui.slider(start, stop, value=value, step=step, label=label, show_value=True)


def dropdown(options: Sequence[str], value: str, label: str = "") -> Any:
    if in_jupyter():
        import ipywidgets as w

        return w.Dropdown(options=list(options), value=value, description=label,
                          style={"description_width": "initial"})
    import marimo as mo

    return mo.ui.dropdown(list(options), value=value, label=label)


def text_area(value: str, label: str = "") -> Any:
    if in_jupyter():
        import ipywidgets as w

        return w.Textarea(value=value, description=label, layout={"width": "90%"},
                          style={"description_width": "initial"})
    import marimo as mo

    return mo.ui.text_area(value=value, label=label, full_width=True)


# -- lab data ----------------------------------------------------------------------------
# The small company handbook labs 4 and 6 retrieve from: tiny on purpose (every result fits
# on the screen), with exact codes (ERR-4711) that separate BM25 from vectors.
HANDBOOK: dict[str, str] = {
    "expenses.md": "# Expenses\n\n## Deadlines\n\nExpense reports are due on the 5th of "
                   "each month. Late reports are paid the month after.\n\n## Receipts\n\n"
                   "Keep receipts for seven years. Photos of receipts are accepted.\n",
    "vpn.md": "# VPN\n\n## Access\n\nConnect to the office network from home with the VPN "
              "client. The VPN password rotates every 90 days.\n\n## Travel\n\nSome "
              "countries block VPNs: ask IT before you travel.\n",
    "badges.md": "# Badges\n\n## Badge readers\n\nIf a door does not open, check the "
                 "reader's display. ERR-4711 means the badge reader lost its network "
                 "connection: power-cycle it.\n",
    "printers.md": "# Printers\n\n## Printer errors\n\nIf nothing prints, check the "
                   "printer's display. ERR-4712 means the printer queue is full: cancel "
                   "old jobs.\n",
    "holidays.md": "# Holidays\n\n## Allowance\n\nEveryone gets 28 days of paid leave per "
                   "year, including public holidays.\n\n## Booking\n\nBook leave at least "
                   "two weeks ahead in the HR portal.\n",
}


def write_corpus(folder: Any, files: Mapping[str, str]) -> Any:
    """Write ``files`` (name -> text) into ``folder`` (created); returns it as a Path."""
    from pathlib import Path

    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text, encoding="utf-8")
    return path


def vstack(items: Sequence[Any]) -> Any:
    """Widgets (or displays) one above the other, in marimo or Jupyter."""
    if in_jupyter():
        import ipywidgets as w

        return w.VBox(list(items))
    import marimo as mo

    return mo.vstack(list(items))


__all__ = [
    "CI_ENV", "HANDBOOK", "Exercise", "Feedback", "Html", "Verdict", "callout", "ci_mode",
    "code_block", "connect", "details", "dropdown", "in_jupyter", "ledger_lookup", "live_text",
    "made_by_gateway", "right",
    "scratch_dir", "slider", "table", "text_area", "todo", "vstack", "write_corpus", "wrong",
]
