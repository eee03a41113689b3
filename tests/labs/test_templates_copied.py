"""Each template works the way a team uses it: copied alone into an empty folder,
installed as its README says, then its tests or its notebook run.

Offline and fast: the "install" goes into a throw-away virtualenv that sees this
environment's packages through a ``.pth`` file (``site.addsitedir`` on our site-packages;
``venv --system-site-packages`` would expose the base interpreter's packages, not this
venv's), and pip runs with ``--no-index --no-build-isolation``: it must resolve every
requirement from what is installed, build the copy with the installed setuptools, and
fail exactly where a team's `pip install -e ".[dev]"` would fail on the project's layout.
"""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.labs.labs_support import PYTHON, REPO, run, tail

TEMPLATE = REPO / "templates" / "service"
TEMPLATES = sorted((REPO / "notebooks").glob("*.ipynb"))


def team_venv(where: Path) -> Path:
    """A virtualenv whose packages are this environment's (no network, no copies)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True,
                   capture_output=True, timeout=120)
    py = where / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], check=True, capture_output=True, text=True,
                             timeout=60).stdout.strip()
    ours = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (Path(purelib) / "zz_workbench_env.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in ours), encoding="utf-8")
    return py


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".workbench", "__pycache__",
                                                             "*.egg-info"))
    return dest


@pytest.mark.slow
def test_service_template_installs_as_its_readme_says(tmp_path: Path) -> None:
    """`pip install -e ".[dev]"` in a copy: it used to fail with setuptools' flat-layout
    error ("Multiple top-level packages discovered")."""
    copy = _copy(TEMPLATE, tmp_path / "handbook-assistant")
    py = team_venv(tmp_path / "venv")
    readme = (copy / "README.md").read_text(encoding="utf-8")
    assert 'pip install -e ".[dev]"' in readme
    proc = run([str(py), "-m", "pip", "install", "--no-index", "--no-build-isolation",
                "--disable-pip-version-check", "-e", ".[dev]"], cwd=copy, timeout=600)
    assert proc.returncode == 0, tail(proc)
    assert "Multiple top-level packages" not in proc.stdout + proc.stderr
    # The copy is importable as the installed project, from any directory.
    proc = run([str(py), "-c", "import app, importlib.metadata as m; "
                "print(app.create_app.__name__, m.version('handbook-assistant'))"],
               cwd=tmp_path, timeout=120)
    assert proc.returncode == 0 and proc.stdout.split() == ["create_app", "0.1.0"], tail(proc)


@pytest.mark.slow
@pytest.mark.embedded
def test_installed_service_template_passes_its_tests_and_notebook(tmp_path: Path) -> None:
    """The README's `pytest` and `pytest --nbmake notebooks/`, in the installed copy."""
    copy = _copy(TEMPLATE, tmp_path / "handbook-assistant")
    py = team_venv(tmp_path / "venv")
    proc = run([str(py), "-m", "pip", "install", "--no-index", "--no-build-isolation", "-q",
                "--disable-pip-version-check", "-e", ".[dev]"], cwd=copy, timeout=600)
    assert proc.returncode == 0, tail(proc)
    env = {"WORKBENCH_SERVICE_MAX_TOKENS": "16", "WORKBENCH_DATA_DIR": str(tmp_path / "data")}
    proc = run([str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=copy,
               timeout=1200, env=env)
    assert proc.returncode == 0, tail(proc)
    assert " passed" in proc.stdout and "failed" not in proc.stdout, tail(proc)
    proc = run([str(py), "-m", "pytest", "--nbmake", "-q", "-p", "no:cacheprovider",
                "notebooks/"], cwd=copy, timeout=900, env=env)
    assert proc.returncode == 0, tail(proc)


@pytest.mark.slow
@pytest.mark.embedded
def test_each_notebook_template_runs_alone_in_an_empty_folder(tmp_path: Path) -> None:
    """Each notebooks/*.ipynb copied alone into its own empty folder (no docs/, no repo
    around it) runs top to bottom under nbmake, as `docs/labs/index.md` says a team does."""
    paths = []
    for nb in TEMPLATES:
        folder = tmp_path / nb.stem
        folder.mkdir()
        paths.append(str(shutil.copy(nb, folder / nb.name)))
    proc = run([PYTHON, "-m", "pytest", "--nbmake", "--nbmake-timeout=600", "-q",
                "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-c", "/dev/null", *paths],
               cwd=tmp_path, timeout=1800, env={"WORKBENCH_DATA_DIR": str(tmp_path / "data")})
    assert proc.returncode == 0, tail(proc)
    assert f"{len(paths)} passed" in proc.stdout, tail(proc)


def test_rag_prototype_explains_missing_documents(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """DOCS naming nothing that exists fails with what to set, not a bare StopIteration
    (the notebook's setup cells, run as the kernel would, in an empty folder)."""
    cells = json.loads((REPO / "notebooks" / "rag_prototype.ipynb").read_text(
        encoding="utf-8"))["cells"]
    params, setup = ("".join(c["source"]) for c in [c for c in cells
                                                     if c["cell_type"] == "code"][:2])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "data"))
    namespace: dict[str, object] = {}
    exec(params, namespace)  # noqa: S102 - the notebook's own parameter cell
    namespace["DOCS"] = ["my-docs/"]
    with pytest.raises(FileNotFoundError, match=r"my-docs.*Set DOCS"):
        exec(setup, namespace)  # noqa: S102


def test_templates_say_to_ignore_the_data_folder() -> None:
    for nb in TEMPLATES:
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        intro = "".join(cells[0]["source"])
        assert ".gitignore" in intro and ".workbench/" in intro, nb.name
    assert ".workbench/" in (TEMPLATE / ".gitignore").read_text(encoding="utf-8").split()
