"""Loaders: a file in, Markdown-ish text out (so one heading-aware chunker serves all).

HTML headings become ``#`` headings, notebook cells become Markdown and fenced code, PDF
pages are joined with their start offsets kept (chunks learn their page number). A file
that cannot be used raises :class:`Skip` with the reason the ingest summary shows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

SUFFIXES: dict[str, str] = {
    ".md": "md", ".markdown": "md", ".txt": "txt", ".rst": "txt", ".text": "txt",
    ".html": "html", ".htm": "html", ".py": "py", ".ipynb": "ipynb", ".pdf": "pdf",
}
MAX_FILE_BYTES = 50_000_000  # larger files are almost always data dumps, not documents


class Skip(Exception):  # noqa: N818 - a control-flow signal, not an error the user sees raised
    """This file is left out of the ingest; ``reason`` goes into the summary."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class LoadedDoc:
    text: str
    title: str
    doc_type: str
    page_starts: list[int] = field(default_factory=list)  # PDF: char offset of each page


def doc_type(path: Path) -> str | None:
    return SUFFIXES.get(path.suffix.lower())


def decode_text(data: bytes) -> str:
    """UTF-8 text, tolerating a few bad bytes; binary content raises Skip."""
    if b"\x00" in data[:8192]:
        raise Skip("binary file (NUL bytes)")
    text = data.decode("utf-8-sig", errors="replace")
    bad = text.count("\ufffd")
    if bad and bad > max(8, len(text) // 100):
        raise Skip("not UTF-8 text (too many undecodable bytes)")
    return text


def _first_h1(text: str) -> str | None:
    # Outside fenced code: a "# comment" in a code cell is not the page's title.
    from workbench.retrieval.chunking import headings

    return next((title for _, level, title in headings(text) if level == 1), None)


def load_markdown(data: bytes, path: Path) -> LoadedDoc:
    text = decode_text(data)
    title = None
    if text.startswith("---\n"):  # YAML front matter: take its title, drop the block
        end = text.find("\n---", 4)
        if end > 0:
            m = re.search(r"^title:\s*['\"]?(.+?)['\"]?\s*$", text[4:end], re.MULTILINE)
            title = m.group(1) if m else None
            text = text[end + 4:].lstrip("\n")
    return LoadedDoc(text, title or _first_h1(text) or path.stem, "md")


def load_text(data: bytes, path: Path) -> LoadedDoc:
    return LoadedDoc(decode_text(data), path.stem, "txt")


def load_python(data: bytes, path: Path) -> LoadedDoc:
    import ast

    text = decode_text(data)
    title = path.stem
    try:
        doc = ast.get_docstring(ast.parse(text))
    except (SyntaxError, ValueError):
        doc = None  # still worth indexing as text; the title just falls back to the name
    if doc:
        title = f"{path.stem}: {doc.strip().splitlines()[0][:80]}"
    return LoadedDoc(text, title, "py")


class _HTMLToMarkdown(HTMLParser):
    _SKIP = {"script", "style", "noscript", "template", "svg", "head"}
    _BLOCK = {"p", "div", "section", "article", "br", "tr", "table", "ul", "ol", "dl",
              "blockquote", "header", "footer", "main", "dd", "dt", "hr", "figure"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.title: str | None = None
        self._skip = 0
        self._in_title = False
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        if tag == "title":
            self._in_title = True
        elif re.fullmatch(r"h[1-6]", tag):
            self.out.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag == "pre":
            self._pre += 1
            self.out.append("\n\n```\n")
        elif tag in self._BLOCK:
            self.out.append("\n\n" if tag != "br" else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        if tag == "title":
            self._in_title = False
        elif re.fullmatch(r"h[1-6]", tag):
            self.out.append("\n\n")
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
            self.out.append("\n```\n\n")
        elif tag in self._BLOCK:
            self.out.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title = (self.title or "") + data.strip()
        elif not self._skip:
            self.out.append(data if self._pre else re.sub(r"\s+", " ", data))


def load_html(data: bytes, path: Path) -> LoadedDoc:
    parser = _HTMLToMarkdown()
    parser.feed(decode_text(data))
    parser.close()
    text = re.sub(r"\n{3,}", "\n\n", "".join(parser.out))
    text = "\n".join(line.rstrip() for line in text.splitlines()).strip()
    return LoadedDoc(text, parser.title or _first_h1(text) or path.stem, "html")


def load_notebook(data: bytes, path: Path) -> LoadedDoc:
    try:
        nb = json.loads(decode_text(data))
        cells = nb["cells"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise Skip("not a valid Jupyter notebook (bad JSON)") from None
    lang = (((nb.get("metadata") or {}).get("kernelspec") or {}).get("language") or "python")
    parts = []
    for cell in cells:
        src = cell.get("source") or ""
        src = "".join(src) if isinstance(src, list) else str(src)
        if not src.strip():
            continue
        if cell.get("cell_type") == "markdown":
            parts.append(src.strip())
        elif cell.get("cell_type") == "code":
            parts.append(f"```{lang}\n{src.strip()}\n```")
    text = "\n\n".join(parts)
    return LoadedDoc(text, _first_h1(text) or path.stem, "ipynb")


def load_pdf(data: bytes, path: Path) -> LoadedDoc:
    import io
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    # pypdf logs every repairable defect as a warning; the ingest summary reports the
    # files that really fail, so these would only be noise on the terminal.
    logging.getLogger("pypdf").setLevel(logging.ERROR)

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise Skip("PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or None
    except Skip:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        from workbench.guardrails import mask_text

        # pypdf reports damaged files through several exception types; their text can
        # quote the document, and the reason is printed and kept in the report.
        raise Skip(f"PDF failed to parse ({type(exc).__name__}: "
                   f"{mask_text(str(exc)[:200])[:80]})") from None
    starts, chunks, pos = [], [], 0
    for text in pages:
        starts.append(pos)
        chunks.append(text)
        pos += len(text) + 2
    return LoadedDoc("\n\n".join(chunks), str(meta_title or path.stem), "pdf", starts)


_LOADERS = {"md": load_markdown, "txt": load_text, "py": load_python, "html": load_html,
            "ipynb": load_notebook, "pdf": load_pdf}


def load_bytes(data: bytes, path: Path) -> LoadedDoc:
    """Parse file content already read from ``path``; raises Skip when unusable."""
    kind = doc_type(path)
    if kind is None:
        raise Skip(f"unsupported file type {path.suffix or '(no suffix)'}")
    if not data.strip():
        raise Skip("empty file")
    doc = _LOADERS[kind](data, path)
    if not doc.text.strip():
        raise Skip("no text found" + (" (scanned PDF?)" if kind == "pdf" else ""))
    return doc


def mask_doc(doc: LoadedDoc) -> LoadedDoc:
    """The document with PII/secrets masked by the default guardrails (title too). Pages are
    masked one by one, so each page's start offset stays exact however long the masks."""
    from workbench.guardrails import mask_text

    bounds = [*doc.page_starts, len(doc.text)] if doc.page_starts else [0, len(doc.text)]
    pages = [mask_text(doc.text[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
    starts, pos = [], 0
    for page in pages:
        starts.append(pos)
        pos += len(page)
    return LoadedDoc("".join(pages), mask_text(doc.title), doc.doc_type,
                     starts if doc.page_starts else [])


def read_file(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise Skip(f"too large ({size // 1_000_000} MB > {MAX_FILE_BYTES // 1_000_000} MB)")
        return path.read_bytes()
    except OSError as exc:
        raise Skip(f"unreadable ({exc.strerror or type(exc).__name__})") from None


__all__ = ["SUFFIXES", "LoadedDoc", "Skip", "decode_text", "doc_type", "load_bytes",
           "mask_doc", "read_file"]
