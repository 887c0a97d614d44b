"""The rate-later page on a phone: real headless Chromium (390x844, touch, JavaScript OFF: the
page has none) opens the link read back by zbarimg from the QR the hall server hands the paired
pad (never the desk) when the citizen did not rate, rates 非常不满意, is made to pick a reason, gets the thanks; the server holds
one `later` rating; a second visit says "already rated"; the ended window (clock seam) and a
garbled link (404). axe-core (0 serious/critical) runs in a separate context that may inject it.
Screenshots: $COUNTER_ARTIFACTS/screenshots/rate_later_*.png (zh and en)."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from api_client import HallClient
from counter_app.events import RatingNotGiven
from hall_server import rate_later
from hall_server import schema as t
from tests.pad_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SoftPad,
    make_desk,
    pad_post,
    pair,
    serve_one_case,
    wait_for,
)
from tests.support.server_fixtures import (
    DEMO_PASSWORD,
    RunningServer,
    signed_in,
    start_server_thread,
)

pytest.importorskip("playwright")
if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs chromium
    pytest.skip("chromium is not installed", allow_module_level=True)

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
                         "is_mobile": True, "has_touch": True, "locale": "zh-CN"}


def shots() -> Path:
    d = Path(os.environ.get("COUNTER_ARTIFACTS", "test-artifacts")) / "screenshots"
    d.mkdir(parents=True, exist_ok=True)
    return d


def snap(page: Page, name: str) -> None:
    page.screenshot(path=str(shots() / f"rate_later_{name}.png"), full_page=True)


@pytest.fixture
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def fresh_hall_server(tmp_path: Path) -> Iterator[RunningServer]:
    # The pad's on-the-spot rating runs out after 1 s here (90 s in a hall).
    srv = start_server_thread(data_dir=tmp_path / "hall", demo=True, pad_rating_seconds=1,
                              pad_not_rated_seconds=20)
    yield srv
    srv.stop()


@pytest.fixture
def pad(fresh_hall_server: RunningServer) -> SoftPad:
    p = SoftPad()
    pair(signed_in(fresh_hall_server.url, "8001"), None, 1, p)
    return p


@pytest.fixture
def desk(fresh_hall_server: RunningServer, tmp_path: Path, pad: SoftPad) -> Iterator[Any]:
    core = make_desk(fresh_hall_server.url, tmp_path)
    core.pad.start()
    try:
        yield core
    finally:
        core.close()


@pytest.fixture
def kiosk(fresh_hall_server: RunningServer) -> Iterator[HallClient]:
    c = HallClient(fresh_hall_server.url)
    c.login("8001", DEMO_PASSWORD)
    yield c
    c.close()


def serve_with_matter(desk: Any, kiosk: HallClient) -> tuple[Any, Any]:
    cat = desk.desk.window.categories[0]
    matter = next(m for m in kiosk.matters_page(limit=500).items if m.category == cat)
    kiosk.issue_ticket(cat, matter_code=matter.code)
    assert desk.desk.call_next() is not None
    desk.desk.start()
    return desk.desk.complete("completed").case, matter


def not_rated_link(desk: Any, kiosk: HallClient, tmp: Path, the_pad: SoftPad,
                   case: Any = None) -> tuple[Any, str]:
    """Serve a case, let the pad's rating run out, read the rate-later QR the server hands the
    pad (with its proof) with zbarimg."""
    missed: list[RatingNotGiven] = []
    desk.bus.subscribe(RatingNotGiven, missed.append)
    case = case or serve_one_case(desk, kiosk)
    desk.pad.request_rating(case)
    wait_for(lambda: any(m.case_id == case.id for m in missed), what="RatingNotGiven")
    r = pad_post(desk.settings.server_url, "/pad/api/rate-later", {"case_id": case.id, **the_pad.proof()})
    assert r.status_code == 200, r.text
    png = tmp / f"later-{case.id}.png"
    png.write_bytes(base64.b64decode(r.json()["qr"].split(",", 1)[1]))
    out = subprocess.run(["zbarimg", "--quiet", "--raw", str(png)], capture_output=True, text=True,
                         check=True)
    return case, out.stdout.strip()


def ratings_of(srv: RunningServer, case_id: int) -> list[dict[str, Any]]:
    eng = create_engine(srv.db_url)
    try:
        with eng.connect() as c:
            return [dict(r) for r in c.execute(select(t.ratings).where(t.ratings.c.case_id == case_id)).mappings()]
    finally:
        eng.dispose()


def screen(page: Page) -> str:
    return str(page.get_attribute("body", "data-screen"))


def tap(page: Page, selector: str, expect: str) -> None:
    with page.expect_navigation():
        page.tap(selector)
    assert screen(page) == expect, page.content()[:2000]


def test_phone_rates_later_once_with_a_reason(desk: Any, kiosk: HallClient, chromium: Browser, pad: SoftPad,
                                              fresh_hall_server: RunningServer, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    case, matter = serve_with_matter(desk, kiosk)
    case, url = not_rated_link(desk, kiosk, tmp_path, pad, case)
    assert url.startswith(fresh_hall_server.url + "/rate-later?c=")
    assert "?c=" in url and case.case_no not in url and len(url) < 80
    ctx = chromium.new_context(java_script_enabled=False, **PHONE)
    page = ctx.new_page()
    page.goto(url)
    assert screen(page) == "rate"
    snap(page, "rate_zh")
    me = desk.session.staff
    assert page.inner_text("#case-clerk").startswith(me.name_zh) and me.staff_no in page.inner_text("#case-clerk")
    assert page.inner_text("#case-window").startswith("1号窗口")
    assert page.inner_text("#case-matter") == matter.name_zh
    # All five levels on the first screen of the phone, without scrolling.
    last = page.locator('button[value="very_dissatisfied"]').bounding_box()
    assert last is not None and last["y"] + last["height"] <= 844
    # The stylesheet is applied under the page's own strict CSP (its hash is right).
    bad_btn = page.locator('button[value="very_dissatisfied"]')
    assert bad_btn.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(163, 21, 21)"
    box = bad_btn.bounding_box()
    assert box is not None and box["height"] >= 76 and box["width"] >= 340  # a thumb-sized target
    assert float(page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")) >= 22
    tap(page, 'button[value="very_dissatisfied"]', "reasons")
    assert page.inner_text("#chosen-level") == "非常不满意"
    snap(page, "reasons_zh")
    tap(page, "#btn-submit", "reasons")  # nothing chosen: made to pick a reason
    assert "请至少选择一项原因" in page.inner_text("#msg")
    snap(page, "need_reason_zh")
    assert ratings_of(fresh_hall_server, case.id) == []
    first_reason = page.locator("label.reason").first
    code = first_reason.locator("input").get_attribute("value")
    first_reason.tap()
    assert first_reason.locator("input").is_checked()
    tap(page, "#btn-submit", "thanks")
    assert "感谢您的评价" in page.inner_text("h1")
    snap(page, "thanks_zh")
    (row,) = ratings_of(fresh_hall_server, case.id)
    assert (row["source"], row["assurance"], row["level"]) == ("later", "later", "very_dissatisfied")
    assert code in row["reasons"]
    # Reloading the thank-you page does not post again; a second visit is "already rated".
    page.reload()
    assert screen(page) == "thanks"
    page.goto(url)
    assert screen(page) == "already" and "已经评价过" in page.inner_text("h1")
    snap(page, "already_zh")
    assert len(ratings_of(fresh_hall_server, case.id)) == 1

    # English, for a second citizen; then the window ends.
    case2, url2 = not_rated_link(desk, kiosk, tmp_path, pad)
    page.goto(url2)
    with page.expect_navigation():
        page.tap("a.lang")
    assert page.get_attribute("html", "lang") == "en" and screen(page) == "rate"
    assert page.inner_text("#case-window").startswith("Window 1")
    assert page.locator("#case-matter").count() == 0  # no matter recorded: no empty row
    snap(page, "rate_en")
    tap(page, 'button[value="dissatisfied"]', "reasons")
    snap(page, "reasons_en")
    real = rate_later.clock
    monkeypatch.setattr(rate_later, "clock", lambda: real() + 8 * 86_400_000)
    tap(page, "#btn-submit", "ended")  # even mid-way, nothing is stored once the window is over
    snap(page, "ended_en")
    page.goto(url2)
    assert screen(page) == "ended" and "评价期限已结束" in page.inner_text("h1")
    snap(page, "ended_zh")
    assert ratings_of(fresh_hall_server, case2.id) == []

    # A garbled or guessed link: a friendly 404, in both languages.
    resp = page.goto(url2[:-4] + "AAAA")
    assert resp is not None and resp.status == 404 and screen(page) == "not_found"
    snap(page, "not_found_zh")
    resp = page.goto(f"{fresh_hall_server.url}/rate-later?case={case2.case_no}&lang=en")
    assert resp is not None and resp.status == 404 and "not valid" in page.inner_text("h1")
    snap(page, "not_found_en")
    ctx.close()


def _axe(page: Page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    res = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']}: {v['help']}" for v in res["violations"] if v.get("impact") in ("serious", "critical")]


def test_every_screen_accessible(desk: Any, kiosk: HallClient, chromium: Browser, pad: SoftPad,
                                 fresh_hall_server: RunningServer, tmp_path: Path) -> None:
    _, url = not_rated_link(desk, kiosk, tmp_path, pad)
    ctx = chromium.new_context(bypass_csp=True, **PHONE)  # only so axe-core can be injected
    page = ctx.new_page()
    problems: dict[str, list[str]] = {}
    for lang in ("zh", "en"):
        page.goto(url + ("&lang=en" if lang == "en" else ""))
        problems[f"rate/{lang}"] = _axe(page)
        with page.expect_navigation():
            page.click('button[value="very_dissatisfied"]')
        problems[f"reasons/{lang}"] = _axe(page)
        with page.expect_navigation():
            page.click("#btn-submit")
        problems[f"need_reason/{lang}"] = _axe(page)
        page.goto(f"{fresh_hall_server.url}/rate-later?c=x&lang={lang}")
        problems[f"not_found/{lang}"] = _axe(page)
    ctx.close()
    assert {k: v for k, v in problems.items() if v} == {}
