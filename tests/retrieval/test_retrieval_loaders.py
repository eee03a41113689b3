"""Loaders turn each supported format into Markdown-ish text, and refuse unusable files
with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from retrieval_corpus import FILES, NOTEBOOK, make_pdf

from workbench.retrieval.loaders import Skip, load_bytes, read_file


def load(name: str, data: str | bytes) -> tuple[str, str, str]:
    raw = data.encode() if isinstance(data, str) else data
    doc = load_bytes(raw, Path(name))
    return doc.text, doc.title, doc.doc_type


def test_markdown_title_from_front_matter_or_first_heading() -> None:
    text, title, kind = load("a.md", "---\ntitle: From YAML\n---\n# Heading\n\nBody")
    assert (title, kind) == ("From YAML", "md") and text.startswith("# Heading")
    assert load("b.md", "intro\n\n# First H1\n\nbody")[1] == "First H1"
    assert load("plain-name.md", "no heading at all")[1] == "plain-name"


def test_html_keeps_headings_and_drops_scripts_and_styles() -> None:
    text, title, kind = load("bees.html", FILES["web/bees.html"])
    assert (title, kind) == ("Beekeeping basics", "html")
    assert "# Hives" in text and "## Swarms" in text and "Honey bees store nectar" in text
    assert "tracking" not in text and "p{}" not in text


def test_notebook_cells_become_markdown_and_fenced_code() -> None:
    text, title, kind = load("orbits.ipynb", json.dumps(NOTEBOOK))
    assert (title, kind) == ("Orbital mechanics", "ipynb")
    assert "ninety minutes" in text and "```python\nperiod_minutes = 90" in text


def test_python_title_from_module_docstring() -> None:
    text, title, kind = load("volcano.py", FILES["code/volcano.py"])
    assert kind == "py" and title.startswith("volcano: Volcano eruption simulator")
    assert "def erupt" in text


def test_pdf_pages_are_extracted_with_their_offsets() -> None:
    doc = load_bytes(make_pdf(["First page text.", "Second page text."]), Path("x.pdf"))
    assert doc.doc_type == "pdf" and len(doc.page_starts) == 2
    assert doc.text[doc.page_starts[1]:].startswith("Second page")


@pytest.mark.parametrize("name, data, reason", [
    ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "PDF failed to parse"),
    ("blank.pdf", make_pdf([""]), "no text found"),
    ("bin.md", b"\x00\x01\x02\x03 binary", "binary file"),
    ("latin.txt", bytes(range(128, 256)) * 4, "not UTF-8"),
    ("empty.txt", b"  \n\n", "empty file"),
    ("bad.ipynb", b"{not json", "not a valid Jupyter notebook"),
    ("data.csv", b"a,b\n1,2", "unsupported file type .csv"),
])
def test_unusable_files_are_skipped_with_a_reason(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(Skip) as info:
        load_bytes(data, Path(name))
    assert reason in info.value.reason


def test_unreadable_file_is_skipped(tmp_path: Path) -> None:
    link = tmp_path / "dangling.md"
    link.symlink_to(tmp_path / "nowhere.md")
    with pytest.raises(Skip, match="unreadable"):
        read_file(link)
