"""The pad page in a real headless Chromium, served by the HALL SERVER and opened from a
non-localhost origin over plain HTTP (not a secure context): pairing confirmed by the
fingerprint the page shows, the clerk's card, signed ratings posted by the pad itself, the desk
learning the outcome (RatingStored) without seeing the pad's traffic, and accessibility
(axe-core: 0 serious/critical) with screenshots."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from api_client import HallClient
from counter_app.events import RatingStored
from tests.pad_helpers import CHROMIUM, CHROMIUM_ARGS, PAD_HOST, make_desk, serve_one_case, wait_for
from tests.support.server_fixtures import (
    DEMO_PASSWORD,
    RunningServer,
    signed_in,
    start_server_thread,
)

pytest.importorskip("playwright")
if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs chromium
    pytest.skip("chromium is not installed", allow_module_level=True)

from playwright.sync_api import BrowserContext, Page, sync_playwright  # noqa: E402

AXE = Path(__file__).parent / "vendor" / "axe.min.js"


def artifacts() -> Path:
    d = Path(os.environ.get("COUNTER_ARTIFACTS", "test-artifacts")) / "screenshots"
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[RunningServer]:
    s = start_server_thread(data_dir=tmp_path / "hall", demo=True, pad_hosts=(PAD_HOST,))
    yield s
    s.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 800}, locale="zh-CN",
            bypass_csp=True,  # only so the test can inject axe-core; the page itself needs none
        )
        try:
            yield ctx
        finally:
            ctx.close()


def wait_screen(page: Page, name: str) -> None:
    page.wait_for_function(f"document.body.getAttribute('data-screen') === '{name}'", timeout=30000)


def _axe(page: Page) -> list[str]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    res = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']}: {v['help']}" for v in res["violations"] if v.get("impact") in ("serious", "critical")]


def test_pair_by_fingerprint_then_rate_signed_end_to_end(srv: RunningServer, browser: BrowserContext,
                                                         tmp_path: Path) -> None:
    port = srv.url.rsplit(":", 1)[1]
    sup = signed_in(srv.url, "8001")
    offer = sup.post("/windows/1/pads/pairings").json()
    page = browser.new_page()
    page.goto(f"http://{PAD_HOST}:{port}/pad/#pair={offer['token']}")
    wait_screen(page, "pairing")
    assert page.evaluate("window.isSecureContext") is False
    assert "#pair=" not in page.url  # the single-use token is dropped from the address bar
    shown = page.inner_text("#fp").strip()
    assert shown == sup.get(f"/pads/pairings/{offer['pairing_id']}").json()["fingerprint"]
    problems: dict[str, list[str]] = {}
    shots = artifacts()

    def check(name: str) -> None:
        page.wait_for_timeout(150)
        page.screenshot(path=str(shots / f"pad_{name}_zh_normal.png"))
        bad = _axe(page)
        if bad:
            problems[name] = bad

    check("pairing")
    r = sup.post(f"/pads/pairings/{offer['pairing_id']}/confirm", json={"fingerprint": shown})
    assert r.status_code == 200, r.text
    page.wait_for_function("window.hallPad.state().paired", timeout=20000)

    desk = make_desk(srv.url, tmp_path)
    kiosk = HallClient(srv.url)
    try:
        kiosk.login("8001", DEMO_PASSWORD)
        desk.pad.start()
        stored: list[RatingStored] = []
        desk.bus.subscribe(RatingStored, stored.append)
        wait_screen(page, "idle")
        me = desk.session.staff
        page.wait_for_function(f"document.getElementById('card-name').textContent === {me.name_zh!r}")
        check("idle")
        pad_id = page.evaluate("window.hallPad.state().pad_id")
        assert [p.pad_id for p in kiosk.window_pads(1)] == [pad_id]

        case1 = serve_one_case(desk, kiosk)
        desk.pad.request_rating(case1)
        wait_screen(page, "rating")
        check("rating")
        page.click("button[data-level='very_satisfied']")
        wait_for(lambda: [s for s in stored if s.case_id == case1.id], what="rating 1 stored")

        case2 = serve_one_case(desk, kiosk)
        desk.pad.request_rating(case2)
        wait_screen(page, "rating")
        page.click("button[data-level='very_dissatisfied']")
        wait_screen(page, "reasons")
        page.click("#btn-submit")
        assert page.inner_text("#reasons-msg").strip() != ""
        page.click("#reasons button.reason >> nth=0")
        check("reasons")
        page.fill("#comment", "等了很久 \"慢\"")
        page.click("#btn-submit")
        wait_screen(page, "thanks")
        check("thanks")
        wait_for(lambda: [s for s in stored if s.case_id == case2.id], what="rating 2 stored")
        eng = create_engine(srv.db_url)
        with eng.connect() as c:
            rows = list(c.execute(text("SELECT * FROM ratings WHERE case_id IN (:a, :b) ORDER BY case_id"),
                                  {"a": case1.id, "b": case2.id}).mappings())
        eng.dispose()
        assert [(r["level"], r["assurance"], r["source"], r["pad_id"]) for r in rows] == [
            ("very_satisfied", "signed", "pad", pad_id), ("very_dissatisfied", "signed", "pad", pad_id)]
        assert rows[1]["comment"] == "等了很久 \"慢\"" and [r["pad_counter"] for r in rows] == [1, 2]
        # The desk relayed nothing: its outbox holds no rating.
        assert desk.outbox.counts().get("rating", 0) == 0 if hasattr(desk.outbox, "counts") else True
    finally:
        kiosk.close()
        desk.close()
    assert problems == {}
    page.close()


def test_a_lost_answer_is_resent_and_stored_once(srv: RunningServer, browser: BrowserContext) -> None:
    """The pad page keeps its signed rating until it holds the server's receipt: the first
    answer is lost on the way back (the request reached the server), the page re-sends the
    same message, and the server answers with the same receipt; one rating, one counter."""
    from tests.pad_helpers import open_cases

    port = srv.url.rsplit(":", 1)[1]
    sup = signed_in(srv.url, "8001")
    desk = signed_in(srv.url, "1001", 1)
    offer = sup.post("/windows/1/pads/pairings").json()
    page = browser.new_page()
    page.goto(f"http://{PAD_HOST}:{port}/pad/#pair={offer['token']}")
    wait_screen(page, "pairing")
    sup.post(f"/pads/pairings/{offer['pairing_id']}/confirm", json={"fingerprint": page.inner_text("#fp")})
    page.wait_for_function("window.hallPad.state().paired", timeout=20000)
    sent: list[int] = []

    def lose_first_answer(route: Any) -> None:
        import requests

        # The request really reaches the hall server (forwarded as the pad sent it) ...
        with requests.Session() as s:
            s.trust_env = False
            resp = s.post(srv.url + "/pad/api/rating", data=route.request.post_data_buffer,
                          headers={"Content-Type": "application/json", "Host": f"{PAD_HOST}:{port}",
                                   "Origin": f"http://{PAD_HOST}:{port}"}, timeout=30)
        sent.append(resp.status_code)
        if len(sent) == 1:
            route.abort("connectionreset")  # ... and its answer never comes back
        else:
            route.fulfill(status=resp.status_code, body=resp.content,
                          headers={"Content-Type": "application/json"})

    page.route("**/pad/api/rating", lose_first_answer)
    (case_id,) = open_cases(desk, 1, 1)
    assert desk.post(f"/cases/{case_id}/rating-challenge").status_code == 200
    wait_screen(page, "rating")
    page.click("button[data-level='satisfied']")
    wait_screen(page, "thanks")
    assert sent[:2] == [200, 200] and len(sent) == 2
    assert page.evaluate("window.hallPad.state().counter") == 1
    eng = create_engine(srv.db_url)
    with eng.connect() as c:
        rows = list(c.execute(text("SELECT * FROM ratings WHERE case_id = :c"), {"c": case_id}).mappings())
    eng.dispose()
    assert [(r["level"], r["assurance"], r["pad_counter"]) for r in rows] == [("satisfied", "signed", 1)]
    page.close()


def test_every_screen_accessible_in_both_languages_and_contrasts(tmp_path: Path,
                                                                  browser: BrowserContext) -> None:
    """Each pad screen, driven by the hall server's real state, in zh/en and normal/high
    contrast: axe-core finds nothing serious or critical; screenshots of all of them."""
    from tests.pad_helpers import open_cases

    srv = start_server_thread(data_dir=tmp_path / "hall", demo=True, pad_hosts=(PAD_HOST,),
                              pad_rating_seconds=20, pad_not_rated_seconds=60, pad_thanks_seconds=60)
    try:
        port = srv.url.rsplit(":", 1)[1]
        sup = signed_in(srv.url, "8001")
        desk = signed_in(srv.url, "1001", 1)
        reasons = [r["code"] for r in desk.get("/rating-reasons").json()["reasons"]]
        assert reasons
        page = browser.new_page()
        page.goto(f"http://{PAD_HOST}:{port}/pad/")
        problems: dict[str, list[str]] = {}
        shots = artifacts()

        def check(name: str) -> None:
            for hc in (False, True):
                if page.evaluate("document.body.classList.contains('hc')") != hc:
                    page.click("#btn-contrast")
                for lang in ("zh", "en"):
                    if page.evaluate("document.documentElement.lang").startswith("zh") != (lang == "zh"):
                        page.click("#btn-lang")
                    page.wait_for_timeout(120)
                    mode = "hc" if hc else "normal"
                    page.screenshot(path=str(shots / f"pad_{name}_{lang}_{mode}.png"))
                    bad = _axe(page)
                    if bad:
                        problems[f"{name}/{lang}/{mode}"] = bad

        wait_screen(page, "unpaired")
        check("unpaired")
        offer = sup.post("/windows/1/pads/pairings").json()
        page.goto(f"http://{PAD_HOST}:{port}/pad/#pair={offer['token']}")
        wait_screen(page, "pairing")
        check("pairing")
        sup.post(f"/pads/pairings/{offer['pairing_id']}/confirm", json={"fingerprint": page.inner_text("#fp")})
        wait_screen(page, "idle")
        check("idle")
        codes = [r["code"] for r in desk.get("/hall").json()["pause_reasons"]]
        r = desk.post("/windows/1/pause", json={"reason_code": codes[0]})
        assert r.status_code == 200, r.text
        wait_screen(page, "paused")
        assert page.inner_text("#paused-text").strip()
        check("paused")
        assert desk.post("/windows/1/resume").status_code == 200
        wait_screen(page, "idle")
        c1, c2 = open_cases(desk, 1, 2)
        desk.post(f"/cases/{c1}/rating-challenge")
        wait_screen(page, "rating")
        check("rating")
        page.click("button[data-level='dissatisfied']")
        wait_screen(page, "reasons")
        page.click("#reasons button.reason >> nth=1")
        check("reasons")
        page.click("#btn-submit")
        wait_screen(page, "thanks")
        check("thanks")
        desk.post(f"/cases/{c2}/rating-challenge")
        wait_screen(page, "rating")
        wait_screen(page, "not_rated")  # nobody rated within the (short) period
        page.wait_for_function("document.getElementById('later-qr').naturalWidth > 0", timeout=20000)
        check("not_rated")
        page.close()
        assert problems == {}
        assert len(list(shots.glob("pad_*_*_*.png"))) >= 24
    finally:
        srv.stop()
