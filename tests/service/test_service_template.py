"""templates/service is what teams copy: a copy of it passes its own tests (service
contract + eval gate, on the embedded model), and its probe file, golden set and CI
workflow are valid and wired to each other."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).resolve().parents[2] / "templates" / "service"


def test_template_files_are_valid_and_consistent() -> None:
    import yaml

    from workbench.evals import load
    from workbench.evals.probes import load_probes
    from workbench.service.settings import load_service_settings

    settings = load_service_settings(TEMPLATE / "workbench.toml", environ={})
    assert settings.collection == "handbook"
    golden = load(TEMPLATE / "evals" / "golden.jsonl")
    assert len(golden) >= 4 and all(s.checks for s in golden.samples)
    probes = load_probes(TEMPLATE / "probes.toml")
    assert {p.name for p in probes} == {"answers-from-the-handbook", "refuses-off-topic"}
    ci = yaml.safe_load((TEMPLATE / ".github" / "workflows" / "ci.yml").read_text())
    steps = " ".join(str(s.get("run", "")) for s in ci["jobs"]["test"]["steps"])
    for needed in ("--nbmake notebooks/", "workbench eval run evals/golden.jsonl",
                   f"--collection {settings.collection}", "workbench serve --app app:create_app",
                   "workbench probe probes.toml --url"):
        assert needed in steps, needed
    dockerfile = (TEMPLATE / "Dockerfile").read_text()
    assert "NOT built in the workbench repository" in dockerfile
    assert 'CMD ["workbench", "serve", "--app", "app:create_app"' in dockerfile
    for path in ("app.py", "README.md", "notebooks/prototype.ipynb", "tests/test_eval_gate.py"):
        assert (TEMPLATE / path).is_file(), path


@pytest.mark.embedded
@pytest.mark.slow
def test_a_copy_of_the_template_passes_its_own_tests(tmp_path: Path) -> None:
    copy = tmp_path / "handbook-assistant"
    shutil.copytree(TEMPLATE, copy, ignore=shutil.ignore_patterns(".workbench", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env["WORKBENCH_SERVICE_MAX_TOKENS"] = "16"  # the checks do not depend on answer length
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=copy, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "5 passed" in proc.stdout, proc.stdout[-2000:]
