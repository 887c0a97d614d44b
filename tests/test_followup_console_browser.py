"""The follow-up console pages in real headless Chromium on the demo hall with its seeded
follow-ups: the list (overdue marked, filters), the case view with its timeline, a follow-up
driven to review through the page's forms, an appeal decided; zh and en screenshots in
test-artifacts/screenshots/console_followups_*.png; axe-core 0 serious/critical; a clerk and
an IT admin are refused the pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hall_server.db import Store
from hall_server.followup_demo import seed_followups_demo
from tests.pad_helpers import CHROMIUM, CHROMIUM_ARGS
from tests.support.server_fixtures import DEMO_PASSWORD, RunningServer

pytest.importorskip("playwright")
if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs chromium
    pytest.skip("chromium is not installed", allow_module_level=True)

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402

from tests.test_console_browser import artifacts, axe_serious, sign_in, submit  # noqa: E402


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(artifacts() / f"console_followups_{name}.png"), full_page=True)


def test_followup_pages_zh_en_and_the_steps_through_forms(fresh_hall_server: RunningServer, browser: Browser) -> None:
    url = fresh_hall_server.url
    store = Store(fresh_hall_server.db_url)
    try:
        seed_followups_demo(store)
    finally:
        store.close()
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = ctx.new_page()
    sign_in(page, url, "8001", DEMO_PASSWORD)
    page.goto(url + "/console/followups")
    rows = page.locator("#followups tbody tr")
    assert rows.count() >= 8  # the unfinished ones by default
    assert page.locator("#followups tr[data-overdue='1']").count() == 2
    assert page.locator("#k-overdue").inner_text() == "2"
    assert not axe_serious(page)
    _shot(page, "list_zh")
    page.goto(url + "/console/followups?overdue=1&state=unfinished")
    assert page.locator("#followups tbody tr").count() == 2
    assert "已超期" in page.locator("#followups").inner_text()
    # the case view of the closed follow-up: its whole timeline
    page.goto(url + "/console/followups?state=closed")
    page.locator("#followups tbody tr a").first.click()
    page.wait_for_load_state()
    steps = [s.get_attribute("data-step") for s in page.locator("#timeline li").all()]
    assert steps[0] == "open" and steps[-1] == "review" and "callback" in steps
    assert not axe_serious(page)
    _shot(page, "case_zh")
    # drive an open one through the forms
    page.goto(url + "/console/followups?state=open")
    page.locator("#followups tbody tr[data-overdue='0'] a").first.click()
    page.wait_for_load_state()
    fu_url = page.url
    submit(page, "#form-assign", {"assignee": "1003"})
    submit(page, "#form-callback", {"reached": "1", "said": "希望增加窗口"})
    submit(page, "#form-verify", {"valid": "1", "text": "核实属实"})
    submit(page, "#form-rectify", {"text": "增开窗口"})
    submit(page, "#form-answer", {"text": "已电话反馈"})
    submit(page, "#form-review", {"decision": "accept", "text": "同意"})
    assert page.url.startswith(fu_url)
    assert page.locator("#state").inner_text().startswith("已复核办结")
    assert [s.get_attribute("data-step") for s in page.locator("#timeline li").all()] == [
        "open", "assign", "callback", "verify", "rectify", "answer", "review"]
    assert page.locator("#closed-late").count() == 0  # closed within its deadline
    # the overdue one, closed today: closed after the deadline, and said so
    page.goto(url + "/console/followups?overdue=1&state=unfinished")
    page.locator("#followups tbody tr a").first.click()
    page.wait_for_load_state()
    late_url = page.url
    for form, fields in (("#form-assign", {"assignee": "1004"}), ("#form-callback", {"reached": "0", "said": ""}),
                         ("#form-verify", {"valid": "0", "text": "不属实"}), ("#form-answer", {"text": "已解释"}),
                         ("#form-review", {"decision": "accept", "text": ""})):
        if page.locator(form).count():
            submit(page, form, fields)
    assert page.url.startswith(late_url) and page.locator("#closed-late").count() == 1
    # an appeal decided from the appeals page
    page.goto(url + "/console/appeals?state=pending")
    assert page.locator("#appeals tbody tr[data-state='pending']").count() == 1
    submit(page, "#appeals tbody tr[data-state='pending'] form", {"decision": "rejected", "note": "证据不足"})
    assert page.locator("#appeals tbody tr[data-state='pending']").count() == 0
    assert not axe_serious(page)
    _shot(page, "appeals_zh")
    # English
    page.goto(url + "/console/lang/en?next=%2Fconsole%2Ffollowups")
    assert "Bad-rating follow-ups" in page.locator("h1").inner_text()
    assert "OVERDUE" in page.locator("#followups").inner_text()
    _shot(page, "list_en")
    page.goto(url + "/console/followups?state=closed")
    page.locator("#followups tbody tr a").first.click()
    page.wait_for_load_state()
    assert "Timeline" in page.content()
    _shot(page, "case_en")
    ctx.close()
    # a clerk cannot sign in to the console at all; an IT admin gets a 403 page
    it = browser.new_context()
    p2 = it.new_page()
    sign_in(p2, url, "9001", DEMO_PASSWORD)
    resp = p2.goto(url + "/console/followups")
    assert resp is not None and resp.status == 403
    resp = p2.goto(url + "/console/appeals")
    assert resp is not None and resp.status == 403
    it.close()
