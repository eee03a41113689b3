"""A prompt version: chat messages with ``{{variable}}`` placeholders, the model settings
it was written for, and a content hash that is its version.

The version is the first 12 hex characters of the SHA-256 of the canonical JSON of the
messages and model settings: the same content always has the same version, on every
machine, so a version named in a trace, an eval run or a probe result says exactly which
text the model saw. Rendering checks the variables: a missing or an unknown one is an
error that names them (a typo must not silently reach the model as ``{{questoin}}``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import BadRequest

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
LABEL = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
ROLES = ("system", "user", "assistant")
# What a prompt may say about the model it expects; the caller's explicit values win.
SETTINGS = ("model", "temperature", "max_tokens", "top_p", "stop", "seed")
MAX_CONTENT = 100_000


class PromptError(BadRequest):
    """A prompt that cannot be stored or rendered (bad name or label, a missing or unknown
    variable): the message says which and what to send."""

    code = "invalid_prompt"


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise PromptError(f"prompt name {str(name)[:60]!r} is not valid: use lower-case "
                          "letters, digits, '.', '_' and '-' (e.g. rag.answer)")
    return name


def check_label(label: str) -> str:
    if not isinstance(label, str) or not LABEL.match(label) or label == "latest":
        raise PromptError(f"label {str(label)[:40]!r} is not valid: use a lower-case word "
                          "such as production or candidate ('latest' is reserved: it always "
                          "means the newest version)")
    return label


def normalise_messages(messages: str | Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """A text prompt becomes one user message; chat prompts are checked role by role."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise PromptError(f"message {i} must be an object with role and content")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise PromptError(f"message {i}: role {role!r} is not one of {', '.join(ROLES)}")
        if not isinstance(content, str) or not content.strip():
            raise PromptError(f"message {i}: content must be non-empty text")
        if len(content) > MAX_CONTENT:
            raise PromptError(f"message {i} is {len(content)} characters; the limit is "
                              f"{MAX_CONTENT}")
        out.append({"role": str(role), "content": content})
    if not out:
        raise PromptError("a prompt needs at least one message")
    return out


def normalise_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise PromptError(f"unknown model setting(s) {unknown}; a prompt may set "
                          f"{', '.join(SETTINGS)}")
    return {k: settings[k] for k in SETTINGS if settings.get(k) is not None}


def content_hash(messages: Sequence[Mapping[str, str]], settings: Mapping[str, Any]) -> str:
    blob = json.dumps({"messages": list(messages), "model_settings": dict(settings)},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def variables_of(messages: Sequence[Mapping[str, str]]) -> tuple[str, ...]:
    return tuple(sorted({v for m in messages for v in VARIABLE.findall(m["content"])}))


@dataclass(frozen=True)
class PromptVersion:
    """One immutable version of a named prompt."""

    name: str
    version: str
    messages: tuple[dict[str, str], ...]
    model_settings: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    n: int = 0  # 1, 2, ... in push order; 0 for a built-in default never pushed
    source: str = "store"  # store | builtin
    created_at: float | None = None
    created_by: str | None = None
    labels: tuple[str, ...] = ()

    @classmethod
    def build(cls, name: str, messages: str | Sequence[Mapping[str, Any]],
              model_settings: Mapping[str, Any] | None = None, **extra: Any) -> PromptVersion:
        msgs = normalise_messages(messages)
        settings = normalise_settings(model_settings)
        return cls(check_name(name), content_hash(msgs, settings), tuple(msgs), settings,
                   **extra)

    @property
    def variables(self) -> tuple[str, ...]:
        return variables_of(self.messages)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def render(self, variables: Mapping[str, Any] | None = None, /,
               **kwargs: Any) -> list[dict[str, str]]:
        """The messages with every ``{{variable}}`` filled in."""
        values = {**(variables or {}), **kwargs}
        wanted = set(self.variables)
        missing = sorted(wanted - set(values))
        unknown = sorted(set(values) - wanted)
        if missing or unknown:
            parts = []
            if missing:
                parts.append(f"missing variable(s) {missing}")
            if unknown:
                parts.append(f"unknown variable(s) {unknown}")
            expects = ", ".join(self.variables) or "no variables"
            raise PromptError(f"cannot render prompt {self.ref}: {'; '.join(parts)} (it "
                              f"expects {expects})")

        def fill(text: str) -> str:
            return VARIABLE.sub(lambda m: str(values[m.group(1)]), text)

        return [{"role": m["role"], "content": fill(m["content"])} for m in self.messages]

    def text(self, variables: Mapping[str, Any] | None = None, /, **kwargs: Any) -> str:
        """A one-message prompt rendered to its text (judge instructions, probe prompts)."""
        rendered = self.render(variables, **kwargs)
        return "\n\n".join(m["content"] for m in rendered)

    def system(self) -> str | None:
        return next((m["content"] for m in self.messages if m["role"] == "system"), None)

    def span_attributes(self, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``workbench.prompt.*`` plus OpenInference's ``llm.prompt_template.*``."""
        attrs: dict[str, Any] = {
            "workbench.prompt.name": self.name, "workbench.prompt.version": self.version,
            "llm.prompt_template.template": "\n\n".join(
                f"[{m['role']}] {m['content']}" for m in self.messages),
            "llm.prompt_template.version": f"{self.name}@{self.version}",
        }
        if variables is not None:
            attrs["llm.prompt_template.variables"] = json.dumps(
                dict(variables), ensure_ascii=False, default=str)
        return attrs

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "n": self.n,
                "messages": list(self.messages), "model_settings": self.model_settings,
                "variables": list(self.variables), "description": self.description,
                "source": self.source, "created_at": self.created_at,
                "created_by": self.created_by, "labels": list(self.labels)}

    def __str__(self) -> str:
        return self.ref


__all__ = ["LABEL", "NAME", "ROLES", "SETTINGS", "VARIABLE", "PromptError", "PromptVersion",
           "check_label", "check_name", "content_hash", "normalise_messages",
           "normalise_settings", "variables_of"]
