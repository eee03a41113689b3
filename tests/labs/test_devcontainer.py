"""The devcontainer (Codespaces) and Binder reuse one portable llama-cpp-python wheel.
No Docker engine here: the files are checked, not built (JSON parses, referenced files
exist, shell scripts parse, the wheel's flags and version match the README install)."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

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


# Dockerfile instructions (https://docs.docker.com/reference/dockerfile/).
_INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
                 "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK",
                 "SHELL"}


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction: comments dropped, continuations joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        pending += (" " if pending else "") + line.removesuffix("\\").strip()
        if not line.endswith("\\"):
            word, _, args = pending.partition(" ")
            out.append((word.upper(), args.strip()))
            pending = ""
    assert not pending, f"the Dockerfile ends inside a continued line: {pending!r}"
    return out


def dockerfile_problems(text: str, context: Path) -> list[str]:
    """Unknown instructions, a first instruction other than FROM/ARG, ${VARS} used before
    their ARG/ENV, and COPY/ADD sources missing from the build context."""
    problems, declared = [], set()
    steps = dockerfile_instructions(text)
    if not steps or steps[0][0] not in ("FROM", "ARG"):
        problems.append("the first instruction must be FROM (or ARG)")
    for word, args in steps:
        if word not in _INSTRUCTIONS:
            problems.append(f"unknown instruction {word}")
        for var in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", args):
            if word == "RUN" and var not in declared:
                problems.append(f"{word} uses ${var} before an ARG or ENV declares it")
        if word in ("ARG", "ENV"):
            declared.add(args.split("=")[0].split()[0])
        if word in ("COPY", "ADD"):
            parts = [p for p in args.split() if not p.startswith("--")]
            for src in parts[:-1]:
                if not list(context.glob(src)):
                    problems.append(f"{word} {src}: not in the build context {context}")
    return problems


def test_the_dockerfile_parses_and_refers_to_what_exists() -> None:
    config = json.loads((DEV / "devcontainer.json").read_text(encoding="utf-8"))
    context = (DEV / config["build"]["context"]).resolve()
    text = (DEV / config["build"]["dockerfile"]).read_text(encoding="utf-8")
    assert dockerfile_problems(text, context) == []
    # What the container runs once created exists in the clone it mounts: the Makefile's
    # install target and the CLI command the script ends with.
    post = (DEV / "post-create.sh").read_text(encoding="utf-8")
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    for target in re.findall(r"^make (\w[\w-]*)", post, re.M):
        assert re.search(rf"^{target}:", makefile, re.M), f"make {target}: no such target"
    from workbench.cli import app

    commands = {c.name for c in app.registered_commands}
    for command in re.findall(r"\.venv/bin/workbench (\w+)", post):
        assert command in commands, f"workbench {command}: no such command"


def test_the_dockerfile_check_finds_what_would_break_a_build(tmp_path: Path) -> None:
    (tmp_path / "present.txt").write_text("x")
    bad = ("RUN echo ${LATER}\nCOPY present.txt missing.txt /opt/\nFORM python:3.11\n"
           "ARG LATER=1\nRUN pip install \\\n  x==${LATER}\n")
    assert dockerfile_problems(bad, tmp_path) == [
        "the first instruction must be FROM (or ARG)",
        "RUN uses $LATER before an ARG or ENV declares it",
        "COPY missing.txt: not in the build context " + str(tmp_path),
        "unknown instruction FORM",
    ]
    assert dockerfile_instructions("FROM a\nRUN b \\\n  c\n") == [("FROM", "a"), ("RUN", "b c")]
