"""PEP 562 lazy exports, shared by the packages that keep heavy imports off ``import``.

    __getattr__ = lazy_exports(__name__, {"Gateway": "workbench.models.gateway"}, globals())

A name is imported from its module on first access and cached in the package's namespace,
so later accesses cost nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str], namespace: dict[str, Any],
                 prefix: str = "") -> Callable[[str], Any]:
    """A module ``__getattr__``: ``name`` comes from module ``prefix + exports[name]``."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(prefix + module), name)
        namespace[name] = value
        return value

    return __getattr__


__all__ = [
    "lazy_exports",
]
