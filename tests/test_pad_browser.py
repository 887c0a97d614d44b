"""The pad page in a real headless Chromium, opened from a non-localhost origin over plain HTTP
(not a secure context): pairing by the QR URL, the clerk's card, signed ratings end to end,
accessibility (axe-core: 0 serious/critical) and screenshots of every screen."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from counter_app.pad.pairing import start_pairing

from api_client import HallClient
from counter_app.events import RatingStored
from counter_app.pad.signing import canonical_message, epoch_ms, verify
from tests.pad_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PAD_HOST,
    make_desk,
    serve_one_case,
    wait_for,
)
from tests.support.server_fixtures import DEMO_PASSWORD, RunningServer

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


@pytest.fixture
def desk(fresh_hall_server: RunningServer, tmp_path: Path) -> Iterator[Any]:
    core = make_desk(fresh_hall_server.url, tmp_path)
    core.pad.thanks_s = 1.0
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


def screen(page: Page) -> str:
    return str(page.evaluate("document.body.getAttribute('data-screen')"))


def wait_screen(page: Page, name: str) -> None:
    page.wait_for_function(f"document.body.getAttribute('data-screen') === '{name}'", timeout=20000)


def pair_page(desk: Any, browser: BrowserContext) -> tuple[Page, Any]:
    port = desk.pad.transport.port
    offer = start_pairing(desk.settings, "8001", DEMO_PASSWORD, host=PAD_HOST, port=port)
    page = browser.new_page()
    page.goto(offer.url)
    page.wait_for_function("window.hallPad && window.hallPad.state().paired", timeout=20000)
    return page, offer


def test_pair_by_qr_then_rate_twice_signed_end_to_end(desk: Any, browser: BrowserContext,
                                                      kiosk: HallClient, tmp_path: Path,
                                                      fresh_hall_server: RunningServer) -> None:
    stored: list[RatingStored] = []
    desk.bus.subscribe(RatingStored, stored.append)
    port = desk.pad.transport.port
    offer = start_pairing(desk.settings, "8001", DEMO_PASSWORD, host=PAD_HOST, port=port)
    assert offer.url == f"http://{PAD_HOST}:{port}/pad/#pair={offer.token}"
    assert len(offer.code) == 6 and offer.code.isdigit()
    # The QR the desk shows decodes to that URL.
    qr = tmp_path / "pair.png"
    qr.write_bytes(offer.qr_png)
    out = subprocess.run(["zbarimg", "--quiet", "--raw", str(qr)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == offer.url

    page = browser.new_page()
    page.goto(out.stdout.strip())
    page.wait_for_function("window.hallPad && window.hallPad.state().paired", timeout=20000)
    assert page.evaluate("window.isSecureContext") is False
    assert page.evaluate("typeof crypto.subtle") == "undefined"
    assert "#pair=" not in page.url  # the single-use token is dropped from the address bar
    # The clerk's card.
    wait_screen(page, "idle")
    me = desk.session.staff
    page.wait_for_function(f"document.getElementById('card-name').textContent === {me.name_zh!r}")
    assert page.inner_text("#card-staff") == me.staff_no
    assert page.evaluate("document.getElementById('card-photo').naturalWidth") > 0
    pad_id = page.evaluate("window.hallPad.state().pad_id")
    pads = kiosk.window_pads(1)
    assert [p.pad_id for p in pads] == [pad_id]

    # Case 1: very satisfied, one tap.
    case1 = serve_one_case(desk, kiosk)
    desk.pad.request_rating(case1)
    assert desk.pad.rating_open
    wait_screen(page, "rating")
    box = page.locator("button[data-level='very_satisfied']").bounding_box()
    assert box is not None and box["width"] >= 96 and box["height"] >= 96  # >= 15 mm at 96 dpi
    page.click("button[data-level='very_satisfied']")
    wait_screen(page, "thanks")
    wait_for(lambda: [s for s in stored if s.case_id == case1.id], what="rating 1 stored")
    assert not desk.pad.rating_open

    # Case 2: very dissatisfied needs a reason.
    case2 = serve_one_case(desk, kiosk)
    desk.pad.request_rating(case2)
    wait_screen(page, "rating")
    page.click("button[data-level='very_dissatisfied']")
    wait_screen(page, "reasons")
    page.click("#btn-submit")
    assert page.inner_text("#reasons-msg").strip() != ""
    assert screen(page) == "reasons" and not [s for s in stored if s.case_id == case2.id]
    page.click("#reasons button.reason >> nth=0")
    page.fill("#comment", "等了很久 \"慢\"")
    page.click("#btn-submit")
    wait_screen(page, "thanks")
    wait_for(lambda: [s for s in stored if s.case_id == case2.id], what="rating 2 stored")

    # Delivered by the outbox; the server holds exactly one signed rating per case.
    desk.outbox.kick()
    for case in (case1, case2):
        wait_for(lambda c=case: desk.outbox.get([s.rating_id for s in stored if s.case_id == c.id][0]).state == "done",
                 what=f"delivery of case {case.id}")
    from sqlalchemy import create_engine, text

    eng = create_engine(fresh_hall_server.db_url)
    with eng.connect() as c:
        rows = list(c.execute(text("SELECT * FROM ratings WHERE case_id IN (:a, :b) ORDER BY case_id"),
                              {"a": case1.id, "b": case2.id}).mappings())
    eng.dispose()
    assert [r["case_id"] for r in rows] == [case1.id, case2.id]
    assert [r["level"] for r in rows] == ["very_satisfied", "very_dissatisfied"]
    pub = kiosk.window_pads(1)[0].public_key
    import json

    from api_client.models import parse_datetime

    for r in rows:
        assert r["assurance"] == "signed" and r["source"] == "pad" and r["pad_id"] == pad_id
        item = desk.outbox.get(r["id"])
        sent = item.payload_obj
        msg = canonical_message(rating_id=r["id"], pad_id=r["pad_id"], window_no=r["window_no"],
                                case_id=r["case_id"], challenge=r["challenge"], level=r["level"],
                                reasons=json.loads(r["reasons"]), comment=r["comment"],
                                pad_counter=r["pad_counter"],
                                pad_time=epoch_ms(parse_datetime(sent["rated_at"])))
        assert verify(pub, msg, r["signature"])
    assert rows[1]["comment"] == "等了很久 \"慢\"" and json.loads(rows[1]["reasons"])
    assert [r["pad_counter"] for r in rows] == [1, 2]
    page.close()


def _axe(page: Page) -> list[dict[str, Any]]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    res = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [v for v in res["violations"] if v.get("impact") in ("serious", "critical")]


def test_every_screen_accessible_and_photographed(desk: Any, browser: BrowserContext,
                                                  kiosk: HallClient) -> None:
    from counter_app.pad.base import RatingRequest

    page, _offer = pair_page(desk, browser)
    tr = desk.pad.transport
    card = desk.pad.card()
    reasons = tuple((r.code, r.text_zh, r.text_en) for r in kiosk.rating_reasons().reasons)
    req = RatingRequest(case_id=999999, case_no="GXQ-20261125-0999", window_no=1,
                        matter_name_zh="居民身份证换领", matter_name_en="ID card renewal",
                        challenge="c" * 22, reasons_version="v", reasons=reasons[:8],
                        timeout_s=60, rate_later_url="http://hall.example/rate-later?case=GXQ-20261125-0999")
    problems: dict[str, list[str]] = {}
    shots = artifacts()
    for hc in (False, True):
        for lang in ("zh", "en"):
            if page.evaluate("document.documentElement.lang").startswith("zh") != (lang == "zh"):
                page.click("#btn-lang")
            mode = "hc" if hc else "normal"
            req = dataclasses.replace(req, case_id=req.case_id + 1)
            steps = [
                ("idle", lambda: tr.show_idle(card)),
                ("rating", lambda r=req: tr.ask_rating(r, card)),
                ("reasons", lambda: page.click("button[data-level='dissatisfied']")),
                ("thanks", lambda: tr.show_thanks()),
                ("paused", lambda: tr.show_paused("工作人员暂时离开，请稍候", "Staff will be back shortly")),
                ("not_rated", lambda r=req: tr.show_not_rated(r.rate_later_url)),
            ]
            for name, act in steps:
                act()
                wait_screen(page, name)
                if name == "rating" and lang == "en":
                    # a new case resets the language to Chinese for the next citizen
                    page.click("#btn-lang")
                    page.wait_for_function("document.documentElement.lang === 'en'")
                if name == "reasons":
                    page.click("#reasons button.reason >> nth=1")
                page.wait_for_timeout(150)
                page.screenshot(path=str(shots / f"pad_{name}_{lang}_{mode}.png"))
                bad = _axe(page)
                if bad:
                    problems[f"{name}/{lang}/{mode}"] = [f"{v['id']}: {v['help']}" for v in bad]
                if name == "reasons":
                    page.click("#btn-back")
        if not hc:
            page.click("#btn-contrast")
            page.wait_for_function("document.body.classList.contains('hc')")
    assert problems == {}
    assert len(list(shots.glob("pad_*_*_*.png"))) >= 24
