"""The devcontainer (Codespaces) and Binder reuse one portable llama-cpp-python wheel.
No Docker engine here: the files are checked, not built (JSON parses, referenced files
exist, shell scripts parse, the wheel's flags and version match the README install)."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib

from tests.labs.labs_support import REPO

DEV = REPO / ".devcontainer"


def _llama_pin() -> str:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    return next(d.split("==")[1] for d in deps if d.startswith("llama-cpp-python=="))


def test_devcontainer_json_parses_and_its_files_exist() -> None:
    config = json.loads((DEV / "devcontainer.json").read_text(encoding="utf-8"))
    dockerfile = DEV / config["build"]["dockerfile"]
    assert dockerfile.is_file()
    assert (DEV / config["build"]["context"]).resolve() == REPO
    script = re.fullmatch(r"bash (\S+)", config["postCreateCommand"])
    assert script and (REPO / script.group(1)).is_file()
    assert {2718, 8888} <= set(config["forwardPorts"])  # workbench lab's default ports


def test_the_image_builds_the_same_portable_wheel_as_the_install() -> None:
    docker = (DEV / "Dockerfile").read_text(encoding="utf-8")
    lines = [ln for ln in docker.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0].startswith("FROM ") and "3.11" in lines[0]
    assert f"ARG LLAMA_VERSION={_llama_pin()}" in docker
    assert '"-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"' in docker
    assert "-w /opt/wheels" in docker
    for other in (REPO / "scripts" / "install.sh", REPO / "binder" / "postBuild"):
        text = other.read_text(encoding="utf-8")
        assert "-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" in text, other
    post = (DEV / "post-create.sh").read_text(encoding="utf-8")
    assert "/opt/wheels/llama_cpp_python-" in post and ".wheels/" in post
    assert "make install" in post  # the README's install, not the dev extra


def test_scripts_parse() -> None:
    for script in (DEV / "post-create.sh", REPO / "binder" / "postBuild"):
        proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True,
                              timeout=30)
        assert proc.returncode == 0, proc.stderr


def test_binder_uses_a_cached_wheel_when_there_is_one() -> None:
    post = (REPO / "binder" / "postBuild").read_text(encoding="utf-8")
    assert f".wheels/llama_cpp_python-{_llama_pin()}-*.whl" in post
    assert f'"llama-cpp-python=={_llama_pin()}"' in post  # the fallback: compile
