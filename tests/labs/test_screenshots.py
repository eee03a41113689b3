"""scripts/screenshots.py takes real screenshots in headless Chromium, offline: the
exercise widget and lab 1 running in marimo. (The chat page is driven end to end by
tests/service/test_service_browser.py.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.labs.labs_support import PYTHON, REPO, run, tail

pytestmark = [pytest.mark.slow, pytest.mark.embedded]


def _colours(png: Path) -> tuple[tuple[int, int], int]:
    from PIL import Image

    with Image.open(png) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20) or []
        return im.size, len(colours)


def test_screenshots_of_the_widget_and_a_running_lab(tmp_path: Path) -> None:
    if not shutil.which("/usr/bin/chromium"):
        pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium)")
    proc = run([PYTHON, "scripts/screenshots.py", "--out", str(tmp_path), "--only",
                "exercise-states", "lab-exercise"], cwd=REPO, timeout=600)
    assert proc.returncode == 0, tail(proc)
    (w, h), colours = _colours(tmp_path / "exercise-states.png")
    assert w >= 700 and h >= 200 and colours > 50  # three coloured verdict boxes, text
    (w, h), colours = _colours(tmp_path / "lab-exercise.png")
    assert (w, h) == (1200, 820) and colours > 50  # a painted page, not a blank one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exercise-states.png",
                                                          "lab-exercise.png"]
