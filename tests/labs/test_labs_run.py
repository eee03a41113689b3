"""Every lab runs in CI: as a script in its fast CI mode (each exercise proves its check
rejects the starter and accepts the reference solution), under `marimo check --strict`,
and its marimo test cells under pytest."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.labs.labs_support import (
    BIN,
    LABS,
    PYTHON,
    REPO,
    lab_files,
    numbering_problems,
    ran_in_readme_install,
    run,
    tail,
)

pytestmark = [pytest.mark.slow, pytest.mark.embedded]


def test_labs_are_numbered_without_gaps() -> None:
    numbers = [p.stem.split("_", 1)[0] for p in lab_files()]
    assert numbers == ["01", "02", "03", "04", "05", "06", "06b", "07", "08", "09", "10"]
    assert not numbering_problems(numbers)


def test_the_numbering_check_finds_gaps_and_strays() -> None:
    assert not numbering_problems(["01", "02", "02b", "02c", "03"])
    assert numbering_problems(["01", "03"]) == ["03 where 02 was expected"]
    assert numbering_problems(["01", "02c", "02"])  # a letter before its base, skipping b
    assert numbering_problems(["01", "02", "03", "02b"])


@ran_in_readme_install
@pytest.mark.parametrize("lab", lab_files(), ids=lambda p: p.stem)
def test_lab_runs_as_a_script_in_ci_mode(lab: Path, tmp_path: Path) -> None:
    proc = run([PYTHON, str(lab), "--ci", "1"], cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, tail(proc)
    # CI mode works on a scratch data dir: nothing lands in the working directory.
    assert not (tmp_path / ".workbench").exists()
    assert not list(tmp_path.iterdir())


def test_marimo_check_passes_on_every_lab() -> None:
    proc = run([str(BIN / "marimo"), "check", "--strict", *map(str, lab_files())],
               cwd=REPO, timeout=300)
    assert proc.returncode == 0, tail(proc)


def test_marimo_test_cells_pass(tmp_path: Path) -> None:
    proc = run([PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(REPO),
                *map(str, lab_files())], cwd=REPO, timeout=600,
               env={"WORKBENCH_DATA_DIR": str(tmp_path / "data")})
    assert proc.returncode == 0, tail(proc)
    assert " passed" in proc.stdout and "failed" not in proc.stdout, tail(proc)


def test_a_wrong_reference_solution_fails_the_ci_run(tmp_path: Path) -> None:
    """The CI mode is not a rubber stamp: break one solution and the script exits 1."""
    source = (LABS / "01_welcome.py").read_text(encoding="utf-8")
    broken = source.replace('solution="store_url_of = lambda g: g.settings.resolved_store_url"',
                            'solution="store_url_of = lambda g: 42"')
    assert broken != source
    lab = tmp_path / "labs" / "01_broken.py"
    lab.parent.mkdir()
    lab.write_text(broken, encoding="utf-8")
    (lab.parent / "labkit.py").write_text((LABS / "labkit.py").read_text(encoding="utf-8"))
    proc = run([PYTHON, str(lab), "--ci", "1"], cwd=tmp_path, timeout=600)
    assert proc.returncode == 1, tail(proc)
    assert "exercise 1.1: the reference solution fails its check" in proc.stderr, tail(proc)
