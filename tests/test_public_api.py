"""The public surface is deliberate: a change to it must show up here."""

from __future__ import annotations

import subprocess
import sys

import workbench

EXPECTED = {
    "__version__", "connect", "Gateway", "StreamResult", "ChatResult", "EmbeddingResult",
    "Settings", "Profile", "ModelSpec", "load_settings", "Store", "Policy", "Principal",
    "Guardrails", "Recognizer", "Finding", "Provider", "OpenAICompatibleProvider",
    "WorkbenchError", "AuthError", "PermissionDenied", "RateLimited", "BudgetExceeded",
    "ContentBlocked", "ModelNotFound", "BadRequest", "UpstreamError", "UpstreamTimeout",
    "ConfigError",
}


def test_all_is_exactly_the_public_surface() -> None:
    assert set(workbench.__all__) == EXPECTED
    for name in workbench.__all__:
        assert getattr(workbench, name) is not None


def test_import_is_light() -> None:
    heavy = ["llama_cpp", "lancedb", "ragas", "pandas", "onnxruntime", "numpy", "sqlalchemy",
             "fastapi", "openai", "llama_index", "pyarrow", "opentelemetry"]
    code = f"import sys, workbench; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_unknown_attribute_errors() -> None:
    try:
        workbench.nope  # noqa: B018
    except AttributeError as exc:
        assert "nope" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


# -- every module and subpackage --------------------------------------------------------
import ast  # noqa: E402
import importlib  # noqa: E402
import inspect  # noqa: E402
import pkgutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

PACKAGE_DIR = Path(workbench.__file__).parent
MODULES = sorted(
    info.name for info in pkgutil.walk_packages(workbench.__path__, "workbench."))
SUBPACKAGES = ["workbench"] + sorted(
    info.name for info in pkgutil.walk_packages(workbench.__path__, "workbench.")
    if info.ispkg)


def _source(module: str) -> Path:
    rel = Path(*module.split(".")[1:])
    pkg = PACKAGE_DIR / rel / "__init__.py"
    return pkg if pkg.exists() else (PACKAGE_DIR / rel).with_suffix(".py")


@pytest.mark.parametrize("module", ["workbench", *MODULES])
def test_every_module_declares_its_public_names(module: str) -> None:
    """``__all__`` is declared at the top level and lists names the module defines or re-exports, without
    private names (read from the source: ``__main__`` runs the CLI when imported)."""
    tree = ast.parse(_source(module).read_text(encoding="utf-8"))
    assert ast.get_docstring(tree) or module == "workbench.__main__", \
        f"{module}: add a module docstring (what it holds)"
    declared = [n for n in tree.body
                if isinstance(n, ast.Assign | ast.AnnAssign)
                and any(isinstance(t, ast.Name) and t.id == "__all__"
                        for t in (n.targets if isinstance(n, ast.Assign) else [n.target]))]
    assert declared, f"{module}: declare __all__ (the names it offers to other modules)"
    if module == "workbench.__main__":
        return
    names = importlib.import_module(module).__all__
    assert len(names) == len(set(names)), f"{module}: __all__ has duplicates"
    private = [n for n in names if n.startswith("_") and n != "__version__"]
    assert not private, f"{module}: private names in __all__: {private}"
    mod = importlib.import_module(module)
    missing = [n for n in names if not hasattr(mod, n)]
    assert not missing, f"{module}: __all__ names that do not exist: {missing}"


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_every_subpackage_export_is_documented(package: str) -> None:
    """What a subpackage exports is its public face: each class, function and submodule
    it names says what it is (``help()`` shows it)."""
    pkg = importlib.import_module(package)
    undocumented = []
    for name in pkg.__all__:
        obj = getattr(pkg, name)
        if inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isfunction(obj):
            doc = obj.__doc__ or ""
            inherited = inspect.isclass(obj) and doc == getattr(obj.__mro__[1], "__doc__", None)
            if not doc.strip() or inherited:
                undocumented.append(name)
    assert not undocumented, f"{package}: add docstrings to {undocumented}"


def test_labs_and_notebooks_use_public_names_only() -> None:
    """Labs, notebooks and docs teach the public surface: every ``from workbench.x import
    y`` they contain names something in ``workbench.x.__all__``."""
    root = PACKAGE_DIR.parent
    pattern = __import__("re").compile(
        r"^\s*(?:\"\s*)?from (workbench(?:\.\w+)*) import ([\w, ()]+?)(?:\\n)?\"?,?\s*$")
    wrong = []
    files = [*root.glob("labs/*.py"), *root.glob("labs/jupyter/*.ipynb"),
             *root.glob("notebooks/*.ipynb"), *root.glob("templates/**/*.py")]
    for path in files:
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = pattern.match(line)
            if not m:
                continue
            module = importlib.import_module(m.group(1))
            for name in (n.strip(" ()") for n in m.group(2).split(",")):
                name = name.split(" as ")[0].strip()
                if not name:
                    continue
                if name not in getattr(module, "__all__", ()) and not (
                        inspect.ismodule(getattr(module, name, None))):
                    wrong.append(f"{path.relative_to(root)}:{line_no}: {m.group(1)}.{name}")
    assert not wrong, "internal names used by labs/notebooks (export them or add a public " \
                      "function):\n" + "\n".join(wrong)
