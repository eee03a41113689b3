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
