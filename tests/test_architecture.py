"""The layers of ARCHITECTURE.md, enforced: a module imports only from its own layer or
the layers below it, and no two subpackages import each other.

Every import counts, also those inside functions (they run too, only later). Imports
under ``if TYPE_CHECKING:`` never run and may name a higher layer, for annotations only.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "workbench"

# Lowest first. A module belongs to the layer of the longest prefix that names it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("workbench", "workbench.lazy", "workbench.errors", "workbench.guardrails",
                    "workbench.http.headers")),
    # Table definitions are data: the migration list (called by the store) imports them, so
    # they sit with the store whichever package owns them.
    ("config and store", ("workbench.config", "workbench.store", "workbench.migrations",
                          "workbench.observability.schema", "workbench.evals.schema",
                          "workbench.prompts.schema", "workbench.sessions.schema",
                          "workbench.classroom.schema", "workbench.retrieval.cache",
                          "workbench.models.readiness", "workbench.models.tool_schema",
                          "workbench.models.principal_cache",
                          # a joined classroom is part of loading settings
                          "workbench.classroom.attendee", "workbench.classroom.client")),
    ("sessions", ("workbench.sessions",)),
    ("observability", ("workbench.observability",)),
    ("http", ("workbench.http",)),
    ("models", ("workbench.models", "workbench.api")),
    ("prompts", ("workbench.prompts",)),
    ("retrieval", ("workbench.retrieval",)),
    ("evals", ("workbench.evals",)),
    ("agents", ("workbench.agents",)),
    ("classroom", ("workbench.classroom",)),
    ("service", ("workbench.service",)),
    ("apps", ("workbench.cli", "workbench.__main__", "workbench.doctor", "workbench.tour",
              "workbench.reference")),
]


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    path: Path
    line: int
    target: str  # the imported workbench module
    type_checking: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path, known: set[str]) -> list[Import]:
    return parse_imports(path.read_text(encoding="utf-8"), module_name(path),
                         is_package=path.name == "__init__.py", known=known)


def parse_imports(code: str, source: str, *, is_package: bool, known: set[str]) -> list[Import]:
    """The workbench imports in ``code``, the text of module ``source``."""
    path = ROOT / (source.replace(".", "/") + ("/__init__.py" if is_package else ".py"))
    package = source if is_package else source.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, type_checking: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_checking)
            return
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # ``from workbench.evals import probes`` imports the submodule probes.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        for target in targets:
            if target == "workbench" or target.startswith("workbench."):
                found.append(Import(source, path, node.lineno, target, type_checking))
        for child in ast.iter_child_nodes(node):
            visit(child, type_checking)

    visit(ast.parse(code), False)
    return found


def layer_of(module: str) -> int:
    best, best_len = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (prefix != "workbench"
                                           and module.startswith(prefix + "."))
            if matches and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def all_imports() -> list[Import]:
    mods = modules()
    return [imp for path in mods.values() for imp in imports_of(path, set(mods))]


def test_every_module_has_a_layer() -> None:
    orphans = sorted(m for m in modules() if layer_of(m) < 0)
    assert not orphans, (f"modules in no layer: {', '.join(orphans)}; add them to LAYERS "
                         "here and to the layer table in ARCHITECTURE.md")


def test_imports_follow_the_layers() -> None:
    wrong = []
    for imp in all_imports():
        if imp.type_checking:
            continue
        src, dst = layer_of(imp.source), layer_of(imp.target)
        if dst > src:
            wrong.append(f"{imp.path.relative_to(ROOT)}:{imp.line}: {imp.source} "
                         f"({LAYERS[src][0]}) imports {imp.target} ({LAYERS[dst][0]}), a "
                         "higher layer")
    assert not wrong, ("imports against the layers of ARCHITECTURE.md (move the code to the "
                       "right layer, or pass the object in from above):\n" + "\n".join(wrong))


def _subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else None


def test_no_import_cycle_between_subpackages() -> None:
    edges: dict[str, dict[str, Import]] = {}
    for imp in all_imports():
        a, b = _subpackage(imp.source), _subpackage(imp.target)
        if a and b and a != b and not imp.type_checking:
            edges.setdefault(a, {}).setdefault(b, imp)
    cycles = []
    for a, targets in edges.items():
        for b, imp in targets.items():
            back = edges.get(b, {}).get(a)
            if back is not None and a < b:
                cycles.append(f"{a} <-> {b}: {imp.path.relative_to(ROOT)}:{imp.line} and "
                              f"{back.path.relative_to(ROOT)}:{back.line}")
    assert not cycles, "subpackages that import each other:\n" + "\n".join(cycles)


@pytest.mark.parametrize("code", [
    "def f():\n    if True:\n        from workbench.service import app\n",
    "from workbench.evals import probes\n",
    "import workbench.retrieval.rag\n",
])
def test_the_checker_sees_every_kind_of_import(code: str) -> None:
    """Imports inside functions and blocks, and submodules named by ``from``, count; the
    same code under ``if TYPE_CHECKING:`` does not."""
    source = "workbench.models.example"
    found = parse_imports(code, source, is_package=False, known=set(modules()))
    assert found and all(layer_of(i.target) > layer_of(i.source) for i in found)
    hidden = "if TYPE_CHECKING:\n" + "".join(f"    {line}\n" for line in code.splitlines())
    assert all(i.type_checking for i in parse_imports(hidden, source, is_package=False,
                                                      known=set(modules())))
