"""The README's install, for real: a copy of the repository as a newcomer clones it,
`make install` (what `make tour` runs first: scripts/install.sh with the rag, evals and labs
extras, not dev) into its own fresh `.venv`, then every lab in its CI mode and every Jupyter
edition and notebook template under nbmake, with that venv's Python only.

It costs an install (packages from the package index; llama-cpp-python from the wheel the
project's own install cached in `.wheels/`, or a 3-10 minute build without one), so it runs
only when WORKBENCH_TEST_README_INSTALL=1: `.ci/run` sets it. In that run the labs and
notebooks run here instead of in the dev venv (tests/labs/test_labs_run.py and
test_labs_notebooks.py skip their copies), so CI pays for the install, not for the labs twice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.labs.labs_support import README_INSTALL_ENV, REPO, lab_files, readme_install_enabled, tail

pytestmark = [
    pytest.mark.slow, pytest.mark.embedded,
    pytest.mark.skipif(not readme_install_enabled(),
                       reason=f"costs a full install: set {README_INSTALL_ENV}=1 (CI does)"),
]

# Nothing of this environment may leak into the newcomer's: not our venv, not our code on
# the path, not the outer `make`'s variables.
_DROP = ("PYTHONPATH", "VIRTUAL_ENV", "WORKBENCH_VENV", "VENV", "MAKEFLAGS", "MAKELEVEL",
         "MFLAGS", "PYTEST_CURRENT_TEST", "PYTEST_VERSION", "PYTEST_ADDOPTS")


def newcomer_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP and not k.startswith("WORKBENCH_")}
    env.update({"NO_MKDOCS_2_WARNING": "1", **extra})
    return env


def _run(cmd: list[str], *, cwd: Path, timeout: float,
         env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        raise AssertionError(f"{' '.join(cmd)} timed out after {timeout:.0f} s\n{out[-3000:]}") from None


def clone_like(dest: Path) -> Path:
    """The files a clone of this checkout has (tracked, plus new files not ignored), so
    the test also covers uncommitted work; no .venv, no .workbench, no caches."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True, timeout=120).stdout
    for rel in filter(None, listed.decode().split("\0")):
        src = REPO / rel
        if src.is_file():  # a file deleted in the work tree is still listed until committed
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    # The llama-cpp-python wheel the project's own install built (CI: `make test` ran
    # first), as a devcontainer or a second clone on the same machine would reuse it.
    for wheel in (REPO / ".wheels").glob("llama_cpp_python-*.whl"):
        (dest / ".wheels").mkdir(exist_ok=True)
        shutil.copy2(wheel, dest / ".wheels" / wheel.name)
    return dest


@pytest.fixture(scope="module")
def readme_clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    clone = clone_like(tmp_path_factory.mktemp("readme") / "genai-workbench")
    readme = (clone / "README.md").read_text(encoding="utf-8")
    assert "make tour" in readme  # the README's first command: `install`, then the tour
    proc = _run(["make", "install"], cwd=clone, timeout=2400, env=newcomer_env())
    assert proc.returncode == 0, tail(proc)
    yield clone


def test_the_readme_install_is_not_the_dev_install(readme_clone: Path) -> None:
    bin_dir = readme_clone / ".venv" / "bin"
    assert (bin_dir / "workbench").exists() and (bin_dir / "marimo").exists()
    assert not (bin_dir / "ruff").exists() and not (bin_dir / "mypy").exists()
    proc = _run([str(bin_dir / "python"), "-c", "import workbench, sys; print(workbench.__file__,"
                 " sys.prefix)"], cwd=readme_clone, timeout=120, env=newcomer_env())
    assert proc.returncode == 0, tail(proc)
    where, prefix = proc.stdout.split()
    assert where.startswith(str(readme_clone)) and prefix == str(readme_clone / ".venv")


@pytest.mark.parametrize("lab", [p.name for p in lab_files()])
def test_lab_runs_after_the_readme_install(readme_clone: Path, lab: str,
                                           tmp_path: Path) -> None:
    proc = _run([str(readme_clone / ".venv" / "bin" / "python"), str(readme_clone / "labs" / lab),
                 "--ci", "1"], cwd=tmp_path, timeout=900, env=newcomer_env())
    assert proc.returncode == 0, tail(proc)
    assert not list(tmp_path.iterdir())  # CI mode keeps its data out of the working dir


def test_notebooks_run_after_the_readme_install(readme_clone: Path, tmp_path: Path) -> None:
    """Every Jupyter edition and template, as the facilitator guide and the templates run
    them: `pytest --nbmake`, from the README install (nbmake is in the labs extra)."""
    paths = sorted(str(p) for p in [*(readme_clone / "labs" / "jupyter").glob("*.ipynb"),
                                    *(readme_clone / "notebooks").glob("*.ipynb")])
    assert len(paths) >= len(lab_files()) + 4
    proc = _run([str(readme_clone / ".venv" / "bin" / "python"), "-m", "pytest", "--nbmake",
                 "--nbmake-timeout=900", "-q", "-p", "no:cacheprovider", "--rootdir",
                 str(tmp_path), "-c", "/dev/null", *paths], cwd=tmp_path, timeout=3600,
                env=newcomer_env(WORKBENCH_LAB_CI="1", WORKBENCH_DATA_DIR=str(tmp_path / "data")))
    assert proc.returncode == 0, tail(proc)
    assert f"{len(paths)} passed" in proc.stdout, tail(proc)
