"""A small mixed-format corpus for retrieval tests (one file per supported format)."""

from __future__ import annotations

import json
from pathlib import Path


def make_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one line of Helvetica text per page."""
    n = len(pages)
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            (f"<< /Type /Pages /Kids [{' '.join(f'{4 + 2 * i} 0 R' for i in range(n))}] "
             f"/Count {n} >>").encode(),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    for i, text in enumerate(pages):
        content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objs.append((f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources "
                     f"<< /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>").encode())
        objs.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    out = b"%PDF-1.4\n"
    offsets = []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{off:010d} 00000 n \n".encode() for off in offsets)
    out += (f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n"
            "%%EOF\n").encode()
    return out


NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "source": ["# Orbital mechanics\n", "\n",
                                             "A satellite in low orbit circles Earth in about "
                                             "ninety minutes."]},
        {"cell_type": "code", "source": "period_minutes = 90\nprint(period_minutes)",
         "outputs": [], "metadata": {}, "execution_count": None},
    ],
    "metadata": {"kernelspec": {"language": "python", "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5,
}

FILES: dict[str, str | bytes] = {
    "guide.md": ("# Lighthouse keeping\n\n## Lamps\n\nThe keeper lights the Fresnel lamp at "
                 "dusk and trims the wick at midnight.\n\n## Fog signals\n\nWhen visibility "
                 "drops, the foghorn sounds every thirty seconds until the fog lifts.\n"),
    "notes/bread.txt": ("Sourdough bread needs a lively starter. Feed the starter with flour "
                        "and water every twelve hours, then bake at a high temperature."),
    "web/bees.html": ("<html><head><title>Beekeeping basics</title><style>p{}</style></head>"
                      "<body><h1>Hives</h1><p>Honey bees store nectar in wax combs and turn "
                      "it into honey.</p><script>var tracking = 1;</script>"
                      "<h2>Swarms</h2><p>A swarm leaves the hive with the old queen in "
                      "spring.</p></body></html>"),
    "code/volcano.py": ('"""Volcano eruption simulator: magma pressure and lava flow."""\n\n\n'
                        "def erupt(pressure: float) -> bool:\n"
                        '    """Return True when magma pressure exceeds the crust."""\n'
                        "    return pressure > 9.5\n"),
    "nb/orbits.ipynb": json.dumps(NOTEBOOK),
    "papers/glaciers.pdf": make_pdf(["Glaciers carve deep valleys over millennia.",
                                     "Icebergs calve from the glacier tongue into the sea."]),
}


def write_corpus(root: Path, files: dict[str, str | bytes] | None = None) -> Path:
    for rel, content in (files or FILES).items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
    return root
