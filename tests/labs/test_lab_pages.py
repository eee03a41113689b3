"""The labs rendered as documentation pages (scripts/render_lab_pages.py): current with
their sources, and converted faithfully (links, outputs, interactive controls, errors)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.labs.labs_support import PYTHON, REPO, lab_files, run, tail


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_lab_pages",
                                                  REPO / "scripts" / "render_lab_pages.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_lab_has_a_current_page() -> None:
    proc = run([PYTHON, "scripts/render_lab_pages.py", "--check"], cwd=REPO, timeout=60)
    assert proc.returncode == 0, tail(proc)
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    for lab in lab_files():
        assert f"labs/{lab.stem}.md" in nav, f"{lab.stem} is not in the docs nav"


def test_check_notices_an_edited_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rlp = _script()
    labs, out = tmp_path / "labs", tmp_path / "docs"
    labs.mkdir()
    out.mkdir()
    (labs / "labkit.py").write_text("# helpers\n")
    lab = labs / "01_demo.py"
    lab.write_text("# v1\n")
    monkeypatch.setattr(rlp, "LABS", labs)
    monkeypatch.setattr(rlp, "OUT", out)
    monkeypatch.setattr(rlp, "ROOT", tmp_path)
    assert rlp.stale([lab]) == ["missing: docs/01_demo.md"]
    (out / "01_demo.md").write_text(rlp.MARKER.format(name="01_demo", digest=rlp.digest(lab)))
    assert rlp.stale([lab]) == []
    (labs / "labkit.py").write_text("# helpers, changed\n")  # a page depends on labkit too
    assert rlp.stale([lab]) == ["stale: docs/01_demo.md"]


def _nb(*cells: dict[str, Any]) -> dict[str, Any]:
    return {"cells": list(cells)}


def test_render_orders_title_first_and_converts_outputs() -> None:
    rlp = _script()
    control = ("&lt;marimo-dropdown data-label=&#x27;x&#x27;&gt;&lt;/marimo-dropdown&gt;")
    nb = _nb(
        {"cell_type": "code", "source": ["import labkit"], "outputs": []},
        {"cell_type": "markdown", "source": ["# Lab 4 · RAG\n", "Goals."]},
        {"cell_type": "markdown", "source": ["See [the playbook](../docs/playbooks/x.md)."]},
        {"cell_type": "code", "source": ["t"], "outputs": [
            {"output_type": "display_data", "data": {"text/html": ["<table><tr><td>1</td></tr></table>"]}},
            {"output_type": "stream", "text": ["hello\n"]}]},
        {"cell_type": "code", "source": ["picker"], "outputs": [
            {"output_type": "display_data", "data": {"text/markdown": [control]}}]},
    )
    page = rlp.render(REPO / "labs" / "04_rag.py", nb)
    lines = page.splitlines()
    assert lines[0].startswith("<!-- rendered by scripts/render_lab_pages.py from 04_rag.py")
    assert page.index("# Lab 4 · RAG") < page.index('!!! note') < page.index("import labkit")
    assert "[the playbook](../playbooks/x.md)" in page  # docs-relative from docs/labs/
    assert "<div class='lab-output'>\n<table><tr><td>1</td></tr></table>\n</div>" in page
    assert "```text\nhello\n```" in page
    assert "marimo-dropdown" not in page and "workbench lab 4" in page


def test_render_hides_checkers_solutions_and_test_cells_but_keeps_outputs() -> None:
    rlp = _script()
    hidden = {"marimo": {"config": {"hide_code": True}}}
    fenced = 's = """\n```bash\nworkbench serve\n```\n"""'
    nb = _nb(
        {"cell_type": "markdown", "source": ["# Lab 9 · Ship it\n", "Read `docs/playbooks/x.md`."]},
        {"cell_type": "code", "metadata": hidden,
         "source": ["def check_x(v):\n    return v == 'SECRET-ANSWER'"], "outputs": []},
        {"cell_type": "code", "metadata": hidden,
         "source": ["ex = labkit.Exercise('9.1', solution='x = SECRET_SOLUTION')"],
         "outputs": [{"output_type": "display_data", "data": {"text/html": ["<b>to do</b>"]}}]},
        {"cell_type": "code", "metadata": {"marimo": {"name": "test_x_check"}},
         "source": ["assert check_x('SECRET-TEST')"], "outputs": []},
        {"cell_type": "code", "source": [fenced], "outputs": []},
    )
    page = rlp.render(REPO / "labs" / "09_ship_it.py", nb)
    assert "SECRET" not in page
    assert "<b>to do</b>" in page  # the exercise's feedback output stays
    assert "[`docs/playbooks/x.md`](../playbooks/x.md)" in page
    # The Python block's fence is longer than the ```bash inside it: one block, not two.
    assert f"````python\n{fenced}\n````" in page


def test_labs_name_docs_by_path_not_by_a_link_that_404s_in_marimo() -> None:
    for lab in lab_files():
        assert "](../" not in lab.read_text(encoding="utf-8"), lab.name


def test_a_cell_error_fails_the_render(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rlp = _script()
    broken = tmp_path / "01_broken.py"
    broken.write_text((REPO / "labs" / "01_welcome.py").read_text(encoding="utf-8")
                      .replace("with app.setup:", "with app.setup:\n    1 / 0", 1))
    (tmp_path / "labkit.py").write_text((REPO / "labs" / "labkit.py").read_text(encoding="utf-8"))
    with pytest.raises(RuntimeError, match="01_broken"):
        rlp.execute(broken)
