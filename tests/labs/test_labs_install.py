"""The README's install (`make tour`: scripts/install.sh, extras rag,evals,labs, not dev)
brings everything the labs and the notebook templates import or run: lab 5 runs pytest, the
templates and the facilitator guide run notebooks with `pytest --nbmake`. Checked offline
against the installed distributions' own requirement metadata: every module a lab or a
template needs must belong to a distribution reachable from those extras."""

from __future__ import annotations

import ast
import json
import re
import sys
import tomllib
from functools import cache
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.labs.labs_support import LABS, REPO, lab_files

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
LOCAL = {"labkit", "workbench", "app", "tests"}  # this repository's own modules
# Run, not imported: lab 5 (`python -m pytest`), templates and the facilitator guide
# (`pytest --nbmake`), and the kernels and servers `workbench lab` starts.
RUN = {"pytest", "nbmake", "ipykernel", "marimo", "jupyterlab"}


def readme_extras() -> list[str]:
    """The extras scripts/install.sh installs without `dev` (what `make tour` runs)."""
    script = (REPO / "scripts" / "install.sh").read_text(encoding="utf-8")
    found = re.search(r'^EXTRAS="([^"]+)"', script, re.M)
    assert found, "scripts/install.sh no longer sets EXTRAS"
    return found.group(1).split(",")


def _project_requirements(extras: list[str]) -> list[Requirement]:
    """The project's base requirements and those of ``extras``, with self-references
    (``genai-workbench[labs]``) expanded from pyproject.toml, not the installed copy."""
    own = canonicalize_name(PROJECT["name"])
    reqs, todo, done = [], list(extras), set()
    for dep in PROJECT["dependencies"]:
        reqs.append(Requirement(dep))
    while todo:
        extra = todo.pop()
        if extra in done:
            continue
        done.add(extra)
        for dep in PROJECT["optional-dependencies"][extra]:
            req = Requirement(dep)
            if canonicalize_name(req.name) == own:
                todo.extend(req.extras)
            else:
                reqs.append(req)
    return reqs


def closure(extras: list[str]) -> set[str]:
    """Canonical names of every installed distribution the project with ``extras`` pulls in."""
    seen: set[str] = set()
    todo = [(r, frozenset(r.extras)) for r in _project_requirements(extras)]
    while todo:
        req, wanted = todo.pop()
        name = canonicalize_name(req.name)
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in ("", *wanted)):
            continue
        key = f"{name}[{','.join(sorted(wanted))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # not installed here: nothing below it can be checked
        for dep in dist.requires or []:
            sub = Requirement(dep)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e})
                                         for e in ("", *wanted)):
                todo.append((Requirement(str(sub).split(";")[0]), frozenset(sub.extras)))
    return {k.split("[")[0] for k in seen}


@cache
def _module_owners() -> dict[str, set[str]]:
    return {mod: {canonicalize_name(d) for d in dists}
            for mod, dists in metadata.packages_distributions().items()}


def _imports(source: str) -> set[str]:
    tree = ast.parse(source)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def needed_modules() -> dict[str, set[str]]:
    """module -> where it is needed (labs, their embedded test sources, templates)."""
    need: dict[str, set[str]] = {m: {"run by labs/templates"} for m in RUN}
    sources = {p.name: p.read_text(encoding="utf-8") for p in [*lab_files(), LABS / "labkit.py"]}
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        sources[nb.name] = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    for where, source in sources.items():
        for module in _imports(source):
            need.setdefault(module, set()).add(where)
    return need


def missing_from(extras: list[str]) -> dict[str, set[str]]:
    have = closure(extras)
    owners = _module_owners()
    return {m: where for m, where in needed_modules().items()
            if m not in sys.stdlib_module_names and m not in LOCAL
            and not owners.get(m, set()) & have}


def test_the_readme_install_brings_what_labs_and_templates_need() -> None:
    assert "dev" not in readme_extras() and "labs" in readme_extras()
    missing = missing_from(readme_extras())
    assert not missing, f"not installed by `make tour` (extras {readme_extras()}): {missing}"


def test_the_check_notices_a_missing_extra() -> None:
    """Without the labs extra, pytest, nbmake and marimo are reported, with where needed."""
    missing = missing_from(["rag", "evals"])
    assert {"pytest", "nbmake", "marimo"} <= set(missing), missing
    assert missing["pytest"] == {"run by labs/templates"}
    assert "01_welcome.py" in missing["marimo"]


def test_binder_installs_the_same_extras_as_the_readme() -> None:
    post = (REPO / "binder" / "postBuild").read_text(encoding="utf-8")
    found = re.search(r'-e "\.\[([^]]+)\]"', post)
    assert found, "postBuild does not install the package with extras"
    assert sorted(found.group(1).split(",")) == sorted(readme_extras())
