"""The report, deadline and rating-entry pages of the console in a real headless Chromium on
the demo hall with its month of history (`hall-server serve --demo`): the figures shown are
the API's, a supervisor concludes an overdue case and enters a paper-form rating with its scan
through the forms, axe-core finds nothing serious, nothing leaves the server's origin, and the
report is captured zh and en in test-artifacts/screenshots/lifecycle_*.png."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.documents_helpers import small_png
from tests.pad_helpers import CHROMIUM, CHROMIUM_ARGS
from tests.support.server_fixtures import ServerProcess, signed_in, start_server_process
from tests.test_console_browser import axe_serious, sign_in, submit

pytest.importorskip("playwright")
if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs chromium
    pytest.skip("chromium is not installed", allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402


def shots() -> Path:
    d = Path(os.environ.get("COUNTER_ARTIFACTS", "test-artifacts")) / "screenshots"
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = start_server_process(tmp_path / "hall", demo=True)
    try:
        yield srv
    finally:
        srv.terminate()


def test_report_deadlines_and_rating_entry_in_chromium(server: ServerProcess) -> None:
    url = server.url
    api = signed_in(url, "8001")
    today = date.fromisoformat(api.get("/case-deadlines").json()["today"])
    start, end = (today - timedelta(days=30)).isoformat(), (today - timedelta(days=1)).isoformat()
    rep = api.get(f"/reports?from={start}&to={end}&by=window").json()
    h = rep["hall"]
    outside: list[str] = []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = b.new_page(viewport={"width": 1920, "height": 1080})

        def watch(r: Any) -> None:
            if not r.url.startswith(url) and not r.url.startswith(("data:", "about:")):
                outside.append(r.url)

        page.on("request", watch)
        sign_in(page, url, "8001", "demo1234")
        page.goto(f"{url}/console/reports?from={start}&to={end}&by=window")
        assert page.locator("#kpi-accepted").inner_text() == str(h["accepted"])
        assert page.locator("#kpi-on-time").inner_text() == f"{h['on_time_rate'] * 100:.1f}%"
        assert page.locator("#kpi-satisfaction").inner_text() == f"{h['satisfaction_rate'] * 100:.1f}%"
        assert page.locator("#report-table tbody tr").count() == 1 + len(rep["rows"])
        assert page.locator("svg[role='img']").count() == 4
        assert not axe_serious(page)
        page.screenshot(path=str(shots() / "lifecycle_report_zh_1920x1080.png"), full_page=True)
        with page.expect_download() as dl:
            page.click("#export-xlsx")
        assert dl.value.suggested_filename.endswith(".xlsx")
        page.goto(f"{url}/console/lang/en?next=/console/reports%3Ffrom%3D{start}%26to%3D{end}%26by%3Dstaff")
        assert page.locator("h1").inner_text().startswith("Cases and ratings report")
        assert page.locator("#kpi-on-spot").inner_text() == f"{h['on_the_spot_rate'] * 100:.1f}%"
        assert not axe_serious(page)
        page.screenshot(path=str(shots() / "lifecycle_report_en_1920x1080.png"), full_page=True)

        # an overdue case concluded through the form
        page.goto(f"{url}/console/cases")
        first = page.locator("#deadline-table tbody tr.overdue").first
        case_no = first.locator("th").inner_text()
        assert not axe_serious(page)
        page.screenshot(path=str(shots() / "lifecycle_cases_en_1920x1080.png"), full_page=True)
        with page.expect_navigation():
            first.locator("button[type='submit']").click()
        assert "ok=" in page.url and case_no in page.content()
        assert case_no not in page.locator("#deadline-table").inner_text()

        # a paper form with its scan, for today's (unrated) case of window 1
        clerk = signed_in(url, "1001", 1)
        assert clerk.post("/tickets", json={"category": "A"}).status_code == 201
        tk = clerk.post("/windows/1/call-next").json()["ticket"]
        unrated = clerk.post(f"/tickets/{tk['id']}/complete", json={"outcome": "completed"}).json()["case"]
        page.goto(f"{url}/console/rating-entry")
        assert not axe_serious(page)
        submit(page, "#enter-form", {"case_no": unrated["case_no"], "channel": "paper", "level": "satisfied",
                                     "rated_on": today.isoformat()},
               files={"form_scan": ("form.png", small_png(), "image/png")})
        assert "ok=" in page.url, page.locator("main").inner_text()[:500]
        page.screenshot(path=str(shots() / "lifecycle_rating_entry_en_1920x1080.png"), full_page=True)
        b.close()
    assert not outside, outside
    after = api.get(f"/reports?period={today.isoformat()}&by=hall").json()["hall"]
    assert after["ratings_by_channel"]["paper"] == 1 and after["concluded"] >= 1
