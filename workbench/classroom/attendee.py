"""The attendee's side of classroom mode: ``workbench join URL KEY`` and ``workbench leave``.

Joining writes two files in the per-user classroom directory (``$WORKBENCH_CLASSROOM_DIR``,
else ``$XDG_CONFIG_HOME/workbench``, else ``~/.config/workbench``; the directory 0700):

- ``classroom.key``: the attendee's key and nothing else, mode 0600 (never echoed);
- ``classroom.json``: the facilitator's URL and the models their gateway serves (no secret).

While they exist, :func:`overlay` (called by ``load_settings``) makes a ``classroom``
profile the active one, so chat, embeddings, RAG, evals, probes and the labs call the
facilitator's gateway with no change, while traces, feedback and the ledger stay in the
attendee's own store. The per-user place (not ``.workbench/``) is on purpose: the labs'
CI mode and notebooks use scratch data dirs and other working directories, and a joined
laptop should reach the classroom from all of them. ``WORKBENCH_CLASSROOM=off`` ignores
the join for one command; ``WORKBENCH_PROFILE`` still overrides it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from workbench.errors import BadRequest, ConfigError

__all__ = [
    "INFO_FILE",
    "KEY_FILE",
    "PROFILE",
    "Joined",
    "classroom_dir",
    "load",
    "normalize_url",
    "overlay",
    "remove",
    "save",
]

PROFILE = "classroom"
INFO_FILE = "classroom.json"
KEY_FILE = "classroom.key"
# Settings a joined classroom replaces at the workbench.toml level: a project's own
# base_url or default models would otherwise send the classroom profile elsewhere.
_REPLACED = ("base_url", "api_key_env", "chat_model", "embed_model", "answer_strategy")


def classroom_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("WORKBENCH_CLASSROOM_DIR"):
        return Path(env["WORKBENCH_CLASSROOM_DIR"])
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "workbench"


@dataclass
class Joined:
    """What ``classroom.json`` holds: where the facilitator's gateway is and what it serves."""

    url: str
    classroom: str
    key_id: str
    chat_model: str
    embed_model: str
    answer_strategy: str = "auto"
    models: list[dict[str, Any]] = field(default_factory=list)
    joined_at: float = 0.0

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/") + "/v1"

    def profile(self, key_file: Path) -> dict[str, Any]:
        """The ``classroom`` profile as workbench.toml would spell it."""
        return {"kind": "openai", "base_url": self.base_url, "api_key_file": str(key_file),
                "chat_model": self.chat_model, "embed_model": self.embed_model,
                "answer_strategy": self.answer_strategy, "telemetry_provider": "workbench",
                "models": [{**m, "provider": PROFILE} for m in self.models]}


def normalize_url(url: str) -> str:
    """``http://host:8787`` from what people paste (``host:8787``, ``…/v1``, a trailing /)."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest(f"{url!r} is not a gateway URL; give it as http://HOST:PORT "
                         "(the facilitator's sheet has it)")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise BadRequest("give the gateway URL without credentials, query or fragment: "
                         "http://HOST:PORT (your key is the second argument)")
    path = parts.path.rstrip("/").removesuffix("/v1").rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path}"


def load(env: Mapping[str, str] | None = None) -> Joined | None:
    """The joined classroom, or None. A damaged file is a clear error, not a silent
    fallback to the local model (the attendee would not know their calls left the room)."""
    path = classroom_dir(env) / INFO_FILE
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path} ({type(exc).__name__}); run `workbench leave` "
                          "and join again") from None
    try:
        data = json.loads(raw)
        return Joined(**{k: data[k] for k in Joined.__dataclass_fields__ if k in data})
    except (ValueError, TypeError, KeyError):
        raise ConfigError(f"{path} is damaged; run `workbench leave` and "
                          "`workbench join URL KEY` again") from None


def overlay(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """``data`` (workbench.toml's settings) with the joined classroom as the active profile."""
    if env.get("WORKBENCH_CLASSROOM", "").lower() in ("0", "off", "false", "no"):
        return data
    joined = load(env)
    if joined is None:
        return data
    out = {k: v for k, v in data.items() if k not in _REPLACED}
    out["profile"] = PROFILE
    out["profiles"] = {**dict(data.get("profiles") or {}),
                       PROFILE: joined.profile(classroom_dir(env) / KEY_FILE)}
    served = {m.get("name") for m in joined.models}
    # A project's [[models]] entry for a served name (say, a price for smollm2-135m on the
    # embedded provider) would route that model back to the local runtime.
    if isinstance(data.get("models"), list):
        out["models"] = [m for m in data["models"]
                         if not (isinstance(m, dict) and m.get("name") in served)]
    return out


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only, atomically: a reader sees
    the old file or the new one, never half a key, and never a world-readable moment."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(joined: Joined, key: str, env: Mapping[str, str] | None = None) -> Path:
    """Write the key file then the info file (the info file is what makes the join
    active, so a failure in between leaves the attendee not joined). Returns the dir."""
    folder = classroom_dir(env)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    joined.joined_at = joined.joined_at or time.time()
    _write_private(folder / KEY_FILE, key + "\n")
    _write_private(folder / INFO_FILE, json.dumps(joined.__dict__, indent=2) + "\n")
    return folder


def remove(env: Mapping[str, str] | None = None) -> bool:
    """Forget the classroom (info file first: from then on nothing uses the key)."""
    folder = classroom_dir(env)
    found = False
    for name in (INFO_FILE, KEY_FILE):
        path = folder / name
        if path.exists():
            path.unlink()
            found = True
    return found
