"""The docs site builds with `mkdocs build --strict` offline, every page is in the nav,
and the built pages load nothing from the internet."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.labs.labs_support import BIN, REPO, lab_files, run, tail


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    proc = run([str(BIN / "mkdocs"), "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
                "-d", str(out)], cwd=REPO, timeout=300)
    assert proc.returncode == 0, tail(proc)
    return out


def test_mkdocs_build_strict(site: Path) -> None:
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


# In the built page: the right-hand table of contents, and every table wider than the
# article that no ancestor scrolls sideways (so its right-hand columns are cut off).
_PAGE_FACTS = """() => {
  const art = document.querySelector('article');
  const toc = [...document.querySelectorAll('.md-sidebar--secondary .md-nav__link')]
    .map(a => a.textContent.trim());
  const cut = [];
  for (const table of art.querySelectorAll('table')) {
    const right = table.getBoundingClientRect().right, edge = art.getBoundingClientRect().right;
    if (right <= edge + 1) continue;
    let el = table.parentElement, scrolls = false;
    while (el && el !== art && !scrolls) {
      const s = getComputedStyle(el);
      scrolls = ['auto', 'scroll'].includes(s.overflowX) && el.scrollWidth > el.clientWidth;
      el = el.parentElement;
    }
    if (!scrolls) cut.push(table.innerText.slice(0, 80));
  }
  return {toc, cut};
}"""


@pytest.mark.slow
def test_lab_pages_have_clean_contents_and_no_cut_off_table(site: Path) -> None:
    """Each lab page's contents list only the lab's own sections and exercises (no heading
    from a run's output, no exercise twice from a broken fence), and a wide table scrolls
    inside the page instead of losing its right-hand columns."""
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                     args=["--headless", "--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", lambda route: route.continue_()
                       if route.request.url.startswith(("file:", "data:")) else route.abort())
            # The detector itself, on a page made for it: a wide table alone is cut off,
            # the same table in a box that scrolls sideways is not.
            row = "<tr>" + "<td>wide&nbsp;column</td>" * 40 + "</tr>"
            page.set_content(f"<article style='width:600px'><table>{row}</table>"
                             f"<div style='overflow-x:auto'><table>{row}</table></div></article>")
            assert len(page.evaluate(_PAGE_FACTS)["cut"]) == 1
            for lab in lab_files():
                page.goto((site / "labs" / lab.stem / "index.html").as_uri())
                facts = page.evaluate(_PAGE_FACTS)
                # The lab's own Markdown headings (## and ###), as written in its source.
                own = {h.strip() for h in re.findall(r"^\s*#{2,3} (.+)$",
                                                     lab.read_text(encoding="utf-8"), re.M)}
                stray = [t for t in facts["toc"] if t not in own]
                assert facts["toc"] and not stray, f"{lab.stem}: stray contents entries {stray}"
                assert len(set(facts["toc"])) == len(facts["toc"]), f"{lab.stem}: {facts['toc']}"
                assert not facts["cut"], f"{lab.stem}: tables cut off: {facts['cut']}"
        finally:
            browser.close()
