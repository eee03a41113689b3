"""Notebooks in CI: committed without outputs and with the python3 kernelspec, Jupyter
editions generated from the current marimo labs, and every notebook executed by nbmake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.labs.labs_support import PYTHON, REPO, lab_files, notebooks, ran_in_readme_install, run, tail


@pytest.mark.parametrize("nb_path", notebooks(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_notebook_is_clean(nb_path: Path) -> None:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert nb["metadata"]["kernelspec"]["language"] == "python"
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"cell {i} has outputs: strip them"
            assert cell.get("execution_count") is None, f"cell {i} has an execution count"


def test_notebook_hygiene_check_catches_outputs(tmp_path: Path) -> None:
    """The check above is real: a notebook with an output or another kernel fails it."""
    nb = json.loads(notebooks()[0].read_text(encoding="utf-8"))
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "hi\n"}]
    dirty = tmp_path / "dirty.ipynb"
    dirty.write_text(json.dumps(nb))
    with pytest.raises(AssertionError, match="has outputs"):
        test_notebook_is_clean(dirty)
    nb["metadata"]["kernelspec"]["name"] = "conda-env-x"
    dirty.write_text(json.dumps(nb))
    with pytest.raises(AssertionError):
        test_notebook_is_clean(dirty)


def test_every_lab_has_a_current_jupyter_edition() -> None:
    assert {p.stem for p in lab_files()} == {
        p.stem for p in (REPO / "labs" / "jupyter").glob("*.ipynb")}
    proc = run([PYTHON, str(REPO / "scripts" / "build_jupyter_labs.py"), "--check"],
               cwd=REPO, timeout=300)
    assert proc.returncode == 0, tail(proc)


def test_templates_are_parameterised_at_the_top() -> None:
    for nb_path in (REPO / "notebooks").glob("*.ipynb"):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        first_code = next(c for c in nb["cells"] if c["cell_type"] == "code")
        assert "parameters" in first_code["metadata"].get("tags", []), nb_path.name


@pytest.mark.slow
@pytest.mark.embedded
@ran_in_readme_install
def test_every_notebook_runs_under_nbmake(tmp_path: Path) -> None:
    """One pytest process for all notebooks (a kernel each), in CI mode on scratch data."""
    paths = [str(p) for p in notebooks()]
    proc = run([PYTHON, "-m", "pytest", "--nbmake", "--nbmake-timeout=600", "-q",
                "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-c", "/dev/null", *paths],
               cwd=tmp_path, timeout=1800,
               env={"WORKBENCH_LAB_CI": "1", "WORKBENCH_DATA_DIR": str(tmp_path / "data")})
    assert proc.returncode == 0, tail(proc)
    assert f"{len(paths)} passed" in proc.stdout, tail(proc)
