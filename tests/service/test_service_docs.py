"""Documentation tests: the deployment playbook documents every service setting, route and
metric, and every setting has a description (datasette-style: undocumented = failing)."""

from __future__ import annotations

from pathlib import Path

from workbench.service.metrics import ServiceMetrics
from workbench.service.settings import ServiceSettings

PLAYBOOK = Path(__file__).resolve().parents[2] / "docs" / "playbooks" / "deployment.md"


def test_every_setting_route_and_metric_is_documented(served: object) -> None:
    text = PLAYBOOK.read_text(encoding="utf-8")
    for name, field in ServiceSettings.model_fields.items():
        assert f"| `{name}` |" in text, f"service setting {name} is not in {PLAYBOOK.name}"
        assert field.description, f"service setting {name} has no description"
    app = served.app  # type: ignore[attr-defined]
    for path in app.openapi()["paths"]:
        assert f"`{path}`" in text or f"`GET {path}`" in text or f"`POST {path}`" in text, path
    for family in ServiceMetrics().families():
        assert f"`{family.name}`" in text, f"metric {family.name} is not documented"
    assert "not built here" in text  # the Dockerfile caveat
