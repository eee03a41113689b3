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
