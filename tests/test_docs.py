"""Documentation tests: the reference pages are generated from the code and must be current,
and every CLI command, setting and public name is documented."""

from __future__ import annotations

import pytest

import workbench
from workbench import reference
from workbench.config import Settings


@pytest.mark.parametrize("page", sorted(reference.PAGES))
def test_reference_pages_are_current(page: str) -> None:
    committed = (reference.DOCS / page).read_text(encoding="utf-8")
    assert committed == reference.PAGES[page](), (
        f"docs/reference/{page} is stale: run `python -m workbench.reference`")


def test_every_command_setting_and_public_name_is_documented() -> None:
    cli = (reference.DOCS / "cli.md").read_text()
    for cmd in reference.cli_commands():
        assert f"## `workbench {cmd}`" in cli
    config = (reference.DOCS / "configuration.md").read_text()
    for name, field in Settings.model_fields.items():
        assert f"`{name}`" in config
        assert field.description, f"setting {name} has no description"
    api = (reference.DOCS / "api.md").read_text()
    for name in workbench.__all__:
        if name != "__version__":
            assert f"`workbench.{name}`" in api
    for name in workbench.__all__:  # and each has a docstring for its mkdocstrings section
        if name != "__version__":
            own = getattr(workbench, name).__doc__
            assert own and own.strip(), f"workbench.{name} has no docstring of its own"


def test_http_reference_documents_every_operation_as_it_answers() -> None:
    http = (reference.DOCS / "http.md").read_text()
    for name, spec in reference._openapi_specs().items():
        for path, ops in spec["paths"].items():
            for method, op in ops.items():
                assert f"| `{method.upper()}` | `{path}` |" in http, (name, method, path)
                codes = set(op["responses"])
                # Invalid input is answered 400 in the OpenAI error shape, never FastAPI's 422.
                assert "422" not in codes, (name, method, path)
                if "requestBody" in op:
                    assert "400" in codes, (name, method, path)
