"""The docs site builds with `mkdocs build --strict` offline, every page is in the nav,
and the built pages load nothing from the internet."""

from __future__ import annotations

import re
from pathlib import Path

from tests.labs.labs_support import BIN, REPO, run, tail


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    proc = run([str(BIN / "mkdocs"), "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
                "-d", str(site)], cwd=REPO, timeout=300)
    assert proc.returncode == 0, tail(proc)
    for page in ("index.html", "labs/index.html", "facilitator/index.html",
                 "playbooks/route-to-live/index.html", "reference/cli/index.html"):
        assert (site / page).exists(), page
    # Offline: no script, stylesheet or font from another host (links to pages are fine).
    remote = re.compile(r"<(?:script|link)[^>]+(?:src|href)=\"https?://", re.I)
    for html in site.rglob("*.html"):
        assert not remote.search(html.read_text(encoding="utf-8")), html


def test_strict_build_fails_on_a_page_missing_from_the_nav(tmp_path: Path) -> None:
    """Guards the handbook's coherence: an orphan page breaks the build."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n")
    (docs / "orphan.md").write_text("# Orphan\n")
    config = (REPO / "mkdocs.yml").read_text(encoding="utf-8").split("\nnav:")[0]
    (tmp_path / "mkdocs.yml").write_text(config + "\nnav:\n  - Home: index.md\n")
    proc = run([str(BIN / "mkdocs"), "build", "--strict", "-d", str(tmp_path / "site")],
               cwd=tmp_path, timeout=300)
    assert proc.returncode != 0
    assert "orphan.md" in proc.stdout + proc.stderr
