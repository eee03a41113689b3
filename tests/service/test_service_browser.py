"""The chat page in a real headless Chromium (Debian's, driven by Playwright): ask a
question, watch the streamed answer and its sources, click every feedback control, then
check the feedback rows in the store. The answer comes from the embedded model.

Chromium is launched from /usr/bin/chromium (no `playwright install`: nothing is
downloaded); the test is skipped where it is not installed (CI installs it).
"""

from __future__ import annotations

import re
import shutil
from typing import Any

import httpx
import pytest

from tests.servers import live_server
from tests.service.service_helpers import QUESTION
from workbench.models import ledger
from workbench.observability.containment import containment_by_label
from workbench.observability.feedback import list_feedback

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
ANSWER_TIMEOUT_MS = 300_000  # two small-model answers on a busy 2-core machine

pytestmark = [pytest.mark.embedded, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser() -> Any:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_ask_then_every_feedback_control(make_service: Any, browser: Any) -> None:
    from playwright.sync_api import expect

    served = make_service(model="smollm2-135m", max_tokens=24, title="Lighthouse desk")
    secret = served.headers["Authorization"].split()[1]
    with live_server(served.app) as base:
        context = browser.new_context()
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("request", lambda r: None if r.url.startswith(base)
                else problems.append(f"external request {r.url}"))
        page.set_default_timeout(30_000)

        page.goto(base + "/")
        expect(page.locator("h1")).to_have_text("Lighthouse desk")
        expect(page.locator("body")).to_have_attribute("data-state", "idle")
        page.fill("#key", secret)
        page.click("#save-key")
        page.fill("#question", QUESTION)
        page.click("#ask")
        expect(page.locator("body")).to_have_attribute("data-state", "done",
                                                      timeout=ANSWER_TIMEOUT_MS)
        answer = page.locator("#answer").inner_text()
        assert answer.strip()
        expect(page.locator("#sources li").first).to_contain_text("lighthouse.md")
        first_trace = re.search(r"trace ([0-9a-f]{32})", page.locator("#trace").inner_text())
        assert first_trace
        trace_id = first_trace.group(1)

        log = page.locator("#feedback-log")
        page.fill("#comment", "too vague")
        page.click("#thumbs-down")
        expect(log).to_contain_text("Recorded thumbs (created)")
        expect(page.locator("#thumbs-down")).to_have_attribute("aria-pressed", "true")
        page.click("#copy")
        expect(log).to_contain_text("Recorded copy")
        shown = page.evaluate("document.getElementById('answer').textContent")
        assert page.evaluate("navigator.clipboard.readText()") == shown
        page.click("#edit")
        page.fill("#edit-text", "The keeper lights the Fresnel lamp at dusk.")
        page.click("#save-edit")
        expect(log).to_contain_text("Recorded edit")
        expect(page.locator("#diff")).to_contain_text("+ The keeper lights the Fresnel lamp")

        page.click("#regenerate")  # records a retry on this answer, then asks again
        expect(page.locator("body")).to_have_attribute("data-state", "streaming")
        expect(page.locator("body")).to_have_attribute("data-state", "done",
                                                      timeout=ANSWER_TIMEOUT_MS)
        second = re.search(r"trace ([0-9a-f]{32})", page.locator("#trace").inner_text())
        assert second and second.group(1) != trace_id
        context.close()

    rows = {r["kind"]: r for r in list_feedback(served.gw.store, trace_id=trace_id)}
    assert set(rows) == {"thumbs", "copy", "edit", "retry"}
    assert rows["thumbs"]["value"] is False and rows["thumbs"]["comment"] == "too vague"
    assert rows["copy"]["value"] is True and rows["retry"]["value"] is True
    assert rows["edit"]["value"] == "The keeper lights the Fresnel lamp at dusk."
    assert "+The keeper lights the Fresnel lamp at dusk." in rows["edit"]["diff"]
    assert all(r["source_id"] == "web" and r["linked"] for r in rows.values())
    assert ledger.entries(served.gw.store, trace_id=second.group(1))  # the regenerated answer
    assert not problems, problems



def test_a_conversation_then_escalate_to_a_human(make_service: Any, browser: Any) -> None:
    """Two questions in one conversation (the page sends the session id back), the first
    answer moves up into the conversation, then "Talk to a human" records an escalate for
    the session: the containment rate on /metrics drops to 0."""
    from playwright.sync_api import expect

    served = make_service(model="smollm2-135m", max_tokens=24)
    secret = served.headers["Authorization"].split()[1]
    with live_server(served.app) as base:
        page = browser.new_context().new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.set_default_timeout(30_000)
        page.goto(base + "/")
        page.fill("#key", secret)
        page.click("#save-key")
        for question in (QUESTION, "When does the keeper trim the wick?"):
            page.fill("#question", question)
            page.click("#ask")
            expect(page.locator("body")).to_have_attribute("data-state", "done",
                                                          timeout=ANSWER_TIMEOUT_MS)
        expect(page.locator("#conversation li")).to_have_count(1)
        expect(page.locator("#conversation li .turn-question")).to_have_text(QUESTION)
        expect(page.locator("#session")).to_contain_text("2 answers")
        session_id = page.locator("body").get_attribute("data-session")
        assert session_id and session_id.startswith("sess_")

        def contained() -> list[str]:
            text = httpx.get(base + "/metrics", timeout=30).text
            return [line for line in text.splitlines()
                    if line.startswith("workbench_sessions_contained_ratio{")]

        before = containment_by_label(served.gw.store)
        assert [(r["sessions"], r["contained"]) for r in before] == [(1, 1)]
        page.click("#escalate")
        expect(page.locator("#feedback-log")).to_contain_text("Recorded escalate (created)")
        expect(page.locator("#escalated")).to_be_visible()
        expect(page.locator("#escalate")).to_be_disabled()
        assert [float(line.rsplit(" ", 1)[1]) for line in contained()] == [0.0]

        page.click("#new-conversation")
        expect(page.locator("#conversation-panel")).to_be_hidden()
        expect(page.locator("body")).to_have_attribute("data-session", "")
        assert not problems, problems

    rows = [r for r in list_feedback(served.gw.store, kind="escalate")]
    assert len(rows) == 1 and rows[0]["session_id"] == session_id
