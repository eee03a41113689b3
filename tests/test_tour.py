"""`workbench tour`, the main job: every step succeeds offline on the embedded model."""

from __future__ import annotations

from typing import Any

import pytest

from workbench.tour import Step, run

pytestmark = pytest.mark.embedded


def test_tour_shows_every_capability(make_gateway: Any) -> None:
    seen: list[Step] = []
    steps = run(make_gateway(), seen.append)
    assert seen == steps
    titles = [s.title for s in steps]
    for needle in ("Allowed call", "denied by policy", "PII redacted", "Rate limit",
                   "Retrieval", "Trace and feedback", "Evals", "Usage"):
        assert any(needle in t for t in titles), (needle, titles)
    assert all(s.ok for s in steps), [(s.title, s.lines) for s in steps if not s.ok]
    denied = next(s for s in steps if "denied" in s.title)
    assert denied.data["status"] == 403
    usage = next(s for s in steps if "Usage" in s.title).data["usage"]
    assert sum(r["denied"] for r in usage) >= 2 and sum(r["ok"] for r in usage) >= 4
