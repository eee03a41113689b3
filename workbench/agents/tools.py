"""Plain Python functions as tools: ``@tool`` reads the JSON schema of the arguments from
the type hints and the description from the docstring.

::

    from workbench.agents import tool

    @tool
    def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
        "Current weather in a city."
        ...

    @tool(dangerous=True)          # the agent asks a human before running it
    def delete_file(path: str) -> str: ...
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import BadRequest
from workbench.models.tools import TOOL_NAME

_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def schema_of(hint: Any) -> dict[str, Any]:
    """The JSON schema of one type hint (str, int, float, bool, Literal, list[...],
    dict, Optional[...]). Anything else is refused: a tool's schema must be exact."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is typing.Annotated:
        inner = schema_of(args[0])
        notes = [a for a in args[1:] if isinstance(a, str)]
        return {**inner, "description": notes[0]} if notes else inner
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple):
        return {"type": "array", "items": schema_of(args[0])} if args else {"type": "array"}
    if origin is dict or hint is dict:
        return {"type": "object"}
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return schema_of(rest[0])
        return {"anyOf": [schema_of(a) for a in rest]}
    raise BadRequest(f"tool argument type {hint!r} has no JSON schema here: use str, int, "
                     "float, bool, Literal[...], list[...] or dict")


@dataclass
class Tool:
    """A function the agent may call: name, description, JSON schema of its arguments."""

    fn: Callable[..., Any]
    name: str
    description: str
    parameters: dict[str, Any]
    dangerous: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def spec(self) -> dict[str, Any]:
        """The OpenAI ``tools[]`` entry."""
        return {"type": "function", "function": {"name": self.name,
                                                 "description": self.description,
                                                 "parameters": self.parameters}}

    def validate(self, arguments: dict[str, Any]) -> str | None:
        """Why ``arguments`` do not fit the schema, or None."""
        import jsonschema

        errors = sorted(jsonschema.Draft202012Validator(self.parameters).iter_errors(arguments),
                        key=lambda e: list(e.path))
        if not errors:
            return None
        where = ".".join(str(p) for p in errors[0].path) or "arguments"
        return f"{where}: {errors[0].message[:200]}"

    def __call__(self, **arguments: Any) -> Any:
        return self.fn(**arguments)

    def __repr__(self) -> str:
        flag = ", dangerous" if self.dangerous else ""
        return f"Tool({self.name!r}{flag}: {self.description[:60]!r})"


def from_function(fn: Callable[..., Any], *, name: str | None = None,
                  description: str | None = None, dangerous: bool = False) -> Tool:
    """A :class:`Tool` for ``fn`` (see :func:`tool`)."""
    tool_name = name or fn.__name__
    if not TOOL_NAME.match(tool_name):
        raise BadRequest(f"tool name {tool_name!r}: use 1-64 letters, digits, '_', '-'")
    hints = typing.get_type_hints(fn, include_extras=True)
    props: dict[str, Any] = {}
    required: list[str] = []
    for pname, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise BadRequest(f"tool {tool_name}: *args/**kwargs have no schema; name them")
        if pname not in hints:
            raise BadRequest(f"tool {tool_name}: argument {pname!r} needs a type hint")
        props[pname] = schema_of(hints[pname])
        if param.default is inspect.Parameter.empty:
            required.append(pname)
        elif param.default is None or isinstance(param.default, str | int | float | bool):
            props[pname]["default"] = param.default
    doc = inspect.getdoc(fn) or ""
    return Tool(fn=fn, name=tool_name,
                description=description or doc.split("\n\n")[0].replace("\n", " "),
                parameters={"type": "object", "properties": props, "required": required,
                            "additionalProperties": False},
                dangerous=dangerous)


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None,
         description: str | None = None, dangerous: bool = False) -> Any:
    """Decorator: ``@tool`` or ``@tool(dangerous=True, name=..., description=...)``."""
    def wrap(f: Callable[..., Any]) -> Tool:
        return from_function(f, name=name, description=description, dangerous=dangerous)

    return wrap(fn) if fn is not None else wrap


def result_text(value: Any) -> str:
    """A tool's return value as the text of a ``tool`` message."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


__all__ = ["Tool", "from_function", "result_text", "schema_of", "tool"]
