"""Zensical canary: build the docs with MkDocs and with Zensical, report what differs.

Why: mkdocs-material reaches end of life on 2027-05-05 and MkDocs 1.x has no maintainer;
Zensical (same authors as Material) reads ``mkdocs.yml``. This script tells us, on every
CI run, how far a switch is: pages one build has and the other lacks, pages whose text
differs noticeably, and whether Zensical builds at all. CI runs it as a non-blocking step
(the exit code is 0 unless ``--strict``); the figures go to the log.

Zensical lives in its own virtualenv (``.venv-zensical``, created once) so its
dependencies never touch the project's.

    python scripts/zensical_canary.py [--strict] [--keep DIR]
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv-zensical"
# The mkdocstrings version matches the project's dev extra; zensical is unpinned on purpose:
# the canary's job is to tell us how the newest release treats our docs.
PACKAGES = ["zensical", "mkdocstrings[python]==1.0.8"]
TAG = re.compile(r"<[^>]+>")
ARTICLE = re.compile(r"<article[^>]*>(.*?)</article>", re.S)


def ensure_venv() -> Path:
    exe = VENV / "bin" / "zensical"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q",
                        "--disable-pip-version-check", *PACKAGES], check=True)
    return exe


def page_words(site: Path) -> dict[str, int]:
    """Each built page (path relative to the site) -> words in its article body."""
    out: dict[str, int] = {}
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8", errors="replace")
        body = ARTICLE.search(text)
        words = html.unescape(TAG.sub(" ", body.group(1) if body else "")).split()
        out[str(page.relative_to(site))] = len(words)
    return out


def build_mkdocs(work: Path) -> tuple[int, str]:
    mkdocs = Path(sys.executable).parent / "mkdocs"
    proc = subprocess.run([str(mkdocs), "build", "-q", "-f", str(work / "mkdocs.yml"),
                           "-d", str(work / "site-mkdocs")], cwd=work, capture_output=True,
                          text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def build_zensical(exe: Path, work: Path) -> tuple[int, str]:
    # Zensical writes to mkdocs.yml's site_dir (default site/); it has no -d option.
    proc = subprocess.run([str(exe), "build", "-f", str(work / "mkdocs.yml")], cwd=work,
                          capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def compare(a: dict[str, int], b: dict[str, int], tolerance: float = 0.2) -> dict[str, list[str]]:
    """Pages only in one build, and common pages whose word counts differ by > tolerance."""
    differ = [p for p in sorted(set(a) & set(b))
              if max(a[p], b[p]) and abs(a[p] - b[p]) / max(a[p], b[p]) > tolerance]
    return {"only_mkdocs": sorted(set(a) - set(b)), "only_zensical": sorted(set(b) - set(a)),
            "text_differs": [f"{p} ({a[p]} vs {b[p]} words)" for p in differ]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--strict", action="store_true", help="exit 1 when the builds differ")
    ap.add_argument("--keep", type=Path, help="build in this folder and keep it")
    args = ap.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="zensical-canary-"))
    try:
        for name in ("docs", "workbench", "mkdocs.yml"):  # workbench: mkdocstrings reads it
            src = REPO / name
            if src.is_dir():
                shutil.copytree(src, work / name, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, work / name)
        code_m, log_m = build_mkdocs(work)
        code_z, log_z = build_zensical(ensure_venv(), work)
        version = subprocess.run([str(VENV / "bin" / "zensical"), "--version"],
                                 capture_output=True, text=True).stdout.strip()
        print(f"zensical canary: {version or 'zensical (version unknown)'}")
        print(f"  mkdocs build:   exit {code_m}")
        print(f"  zensical build: exit {code_z}")
        if code_z != 0:
            print("  zensical failed:\n    " + "\n    ".join(log_z.strip().splitlines()[-15:]))
            return 1 if args.strict else 0
        if code_m != 0:
            print("  mkdocs failed:\n    " + "\n    ".join(log_m.strip().splitlines()[-15:]))
            return 1 if args.strict else 0
        a, b = page_words(work / "site-mkdocs"), page_words(work / "site")
        diff = compare(a, b)
        print(f"  pages: mkdocs {len(a)}, zensical {len(b)}; words: mkdocs {sum(a.values())}, "
              f"zensical {sum(b.values())}")
        for label, pages in diff.items():
            print(f"  {label}: {len(pages)}")
            for p in pages[:20]:
                print(f"    {p}")
        same = not any(diff.values())
        print("  verdict: " + ("same pages and text" if same else "differences above"))
        return 0 if same or not args.strict else 1
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
