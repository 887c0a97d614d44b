"""The pad page as a citizen uses it (issue 16 items 8-12), in a real headless Chromium served by
the real hall server on loopback, with real PostgreSQL when the run provides it:

* a started rating never times out lost: every touch restarts the server's period, a large
  countdown with "还需要时间吗？" / 需要 comes before the end, a complaint that can be sent is
  sent at the end, and "现在评价" on the QR screen brings the citizen back to it;
* all reasons reachable on one screen (no scrolling) at 1280×800 and 800×1280, zh/en, normal
  and high contrast, the chosen level at the top, the validation message right above 提交;
* read-aloud on by default (speechSynthesis spied on), each reason and the level spoken, the
  two switches ≥ 90 px with icons and an on state, reset for the next citizen;
* high contrast: 非常不满意 on one line, the faces in one row, the clerk's photo on the rating
  screen, icons on the thank-you and paused screens;
* no technical text (no URL, no monospace, no "已连接").

Screenshots of every changed screen go to $COUNTER_ARTIFACTS/screenshots/padux_*.png.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.pad_helpers import CHROMIUM, CHROMIUM_ARGS, PAD_HOST, open_cases
from tests.support.server_fixtures import RunningServer, signed_in, start_server_thread

pytest.importorskip("playwright")
if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs chromium
    pytest.skip("chromium is not installed", allow_module_level=True)

from playwright.sync_api import BrowserContext, Page, sync_playwright  # noqa: E402

from tests.test_pad_browser import _axe, artifacts, wait_screen  # noqa: E402

# Every utterance the page asks for lands in window.__said (the real engine is not needed).
SPY = """
window.__said = [];
if (window.speechSynthesis) {
  window.speechSynthesis.speak = function (u) { window.__said.push(u.text); };
  window.speechSynthesis.cancel = function () {};
}
"""
SIZES = [(1280, 800), (800, 1280)]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 800}, locale="zh-CN",
            bypass_csp=True)  # only so the test can evaluate its checks; the page needs none
        ctx.add_init_script(SPY)
        try:
            yield ctx
        finally:
            ctx.close()


def paired_page(srv: RunningServer, browser: BrowserContext) -> Page:
    port = srv.url.rsplit(":", 1)[1]
    sup = signed_in(srv.url, "8001")
    offer = sup.post("/windows/1/pads/pairings").json()
    page = browser.new_page()
    page.goto(f"http://{PAD_HOST}:{port}/pad/#pair={offer['token']}")
    wait_screen(page, "pairing")
    r = sup.post(f"/pads/pairings/{offer['pairing_id']}/confirm", json={"fingerprint": page.inner_text("#fp")})
    assert r.status_code == 200, r.text
    wait_screen(page, "idle")
    return page


def rating_status(desk: Any, case_id: int) -> str:
    return str(desk.get(f"/cases/{case_id}/rating-status").json()["state"])


def ratings_of(srv: RunningServer, case_id: int) -> list[dict[str, Any]]:
    eng = create_engine(srv.db_url)
    with eng.connect() as c:
        rows = [dict(r) for r in c.execute(text("SELECT * FROM ratings WHERE case_id = :c"),
                                           {"c": case_id}).mappings()]
    eng.dispose()
    return rows


def in_view(page: Page, selector: str) -> list[str]:
    """The selector's visible elements whose rect is not wholly inside the viewport."""
    return list(page.evaluate("""(sel) => {
      const out = [], w = window.innerWidth, h = window.innerHeight;
      for (const el of document.querySelectorAll(sel)) {
        const r = el.getBoundingClientRect();
        if (r.width === 0 && r.height === 0) continue;
        if (r.left < 0 || r.top < 0 || r.right > w + 0.5 || r.bottom > h + 0.5)
          out.push((el.textContent || el.id).trim() + ' ' + JSON.stringify([r.left, r.top, r.right, r.bottom]));
      }
      return out;
    }""", selector))


def no_scroll(page: Page) -> list[Any]:
    """[] if the page needs no scrolling, else its size and what sticks out (for the message)."""
    return list(page.evaluate("""() => {
      const d = document.documentElement, w = window.innerWidth, h = window.innerHeight;
      if (d.scrollHeight <= h + 1 && d.scrollWidth <= w + 1) return [];
      const out = [[d.scrollWidth, d.scrollHeight]];
      for (const el of document.querySelectorAll('body *')) {
        const r = el.getBoundingClientRect();
        if (r.width && (r.right > w + 1 || r.bottom > h + 1)) out.push([el.tagName, el.id, el.className, r.right, r.bottom]);
      }
      return out.slice(0, 8);
    }"""))


# ---- 8: the timeout -------------------------------------------------------------------------------
@pytest.fixture
def short_srv(tmp_path: Path) -> Iterator[RunningServer]:
    # A short period is a hall setting, not a test hack: 8 s open, the countdown from 4 s left.
    s = start_server_thread(data_dir=tmp_path / "hall", demo=True, pad_hosts=(PAD_HOST,),
                            pad_rating_seconds=8, pad_warn_seconds=4, pad_not_rated_seconds=120,
                            pad_thanks_seconds=2)
    yield s
    s.stop()


def test_touches_keep_a_started_rating_open_and_the_countdown_asks(short_srv: RunningServer,
                                                                    browser: BrowserContext) -> None:
    """A citizen who keeps tapping is never cut off: the server's period restarts at each touch
    (the rating stays "open" well past 8 s), the countdown with 需要 comes before the end, and
    a complaint with a reason and a comment is sent, not lost, when the citizen stops."""
    desk = signed_in(short_srv.url, "1001", 1)
    page = paired_page(short_srv, browser)
    (case_id,) = open_cases(desk, 1, 1)
    assert desk.post(f"/cases/{case_id}/rating-challenge").status_code == 200
    wait_screen(page, "rating")
    page.click("button[data-level='very_dissatisfied']")
    wait_screen(page, "reasons")
    began = time.monotonic()
    rounds = 0
    shots = [("zh", 1280, 800), ("en", 1280, 800), ("en", 800, 1280), ("zh", 800, 1280)]
    while time.monotonic() - began < 20:  # more than twice the 8 s period
        page.wait_for_selector("#countdown:not([hidden])", timeout=20000)
        lang = "zh" if page.evaluate("document.documentElement.lang").startswith("zh") else "en"
        assert page.inner_text("#cd-q").strip() == ("还需要时间吗？" if lang == "zh" else "Do you need more time?")
        assert int(page.inner_text("#cd-num")) <= 4
        assert in_view(page, "#btn-more-time, #cd-num") == []
        if rounds == 0:
            assert _axe(page) == []  # the countdown dialog: nothing serious or critical
        if rounds < len(shots):
            _l, w, h = shots[rounds]
            page.screenshot(path=str(artifacts() / f"padux_countdown_{lang}_{w}x{h}.png"))
        page.click("#btn-more-time")
        if rounds + 1 < len(shots):  # the next round in the next language and size
            nl, nw, nh = shots[rounds + 1]
            page.set_viewport_size({"width": nw, "height": nh})
            if nl != lang:
                page.click("#btn-lang")
        page.wait_for_selector("#countdown", state="hidden", timeout=5000)
        assert page.evaluate("document.body.getAttribute('data-screen')") == "reasons"
        assert rating_status(desk, case_id) == "open"
        rounds += 1
    assert rounds >= 3
    said = page.evaluate("window.__said")
    assert "还需要时间吗？" in said and "Do you need more time?" in said
    if page.evaluate("document.documentElement.lang") != "zh-CN":
        page.click("#btn-lang")
    # The citizen picks a reason, types, and walks away: the complaint is sent, not lost.
    page.click("#reasons button.reason >> nth=0")
    page.fill("#comment", "等太久")
    code = page.get_attribute("#reasons button.reason >> nth=0", "data-code")
    wait_screen(page, "thanks")
    rows = ratings_of(short_srv, case_id)
    assert [(r["level"], r["comment"], r["assurance"]) for r in rows] == [
        ("very_dissatisfied", "等太久", "signed")]
    assert code in rows[0]["reasons"]
    page.close()


def test_rate_now_on_the_qr_screen_returns_to_the_kept_complaint(short_srv: RunningServer,
                                                                  browser: BrowserContext) -> None:
    """The period ran out with only the level chosen: the QR screen shows no link text, and
    "现在评价" brings back the reasons screen with that level; the rating is then stored."""
    desk = signed_in(short_srv.url, "1001", 1)
    page = paired_page(short_srv, browser)
    (case_id,) = open_cases(desk, 1, 1)
    assert desk.post(f"/cases/{case_id}/rating-challenge").status_code == 200
    wait_screen(page, "rating")
    page.click("button[data-level='very_dissatisfied']")
    wait_screen(page, "reasons")
    wait_screen(page, "not_rated")
    page.wait_for_function("document.getElementById('later-qr').naturalWidth > 0", timeout=20000)
    body = page.inner_text("body")
    assert "http" not in body and "已连接" not in body
    for w, h in SIZES:
        page.set_viewport_size({"width": w, "height": h})
        for lang in ("zh", "en"):
            set_mode(page, lang, False)
            assert in_view(page, "#btn-rate-now, #later-qr") == []
            assert "http" not in page.inner_text("body")
            page.screenshot(path=str(artifacts() / f"padux_not_rated_{lang}_{w}x{h}.png"))
    set_mode(page, "zh", False)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.click("#btn-rate-now")
    wait_screen(page, "reasons")
    assert "非常不满意" in page.inner_text("#chosen")
    assert rating_status(desk, case_id) == "open"
    page.click("#reasons button.reason >> nth=1")
    page.click("#btn-submit")
    wait_screen(page, "thanks")
    rows = ratings_of(short_srv, case_id)
    assert [(r["level"], r["assurance"]) for r in rows] == [("very_dissatisfied", "signed")]
    page.close()


# ---- 9, 10, 11, 12: one screen, voice, contrast, no technical text -------------------------------------
@pytest.fixture
def srv(tmp_path: Path) -> Iterator[RunningServer]:
    s = start_server_thread(data_dir=tmp_path / "hall", demo=True, pad_hosts=(PAD_HOST,),
                            pad_rating_seconds=600, pad_thanks_seconds=600)
    yield s
    s.stop()


def set_mode(page: Page, lang: str, hc: bool) -> None:
    if page.evaluate("document.body.classList.contains('hc')") != hc:
        page.click("#btn-contrast")
    if page.evaluate("document.documentElement.lang").startswith("zh") != (lang == "zh"):
        page.click("#btn-lang")
    page.wait_for_timeout(120)


def test_reasons_fit_one_screen_voice_contrast_both_sizes(srv: RunningServer, browser: BrowserContext) -> None:
    desk = signed_in(srv.url, "1001", 1)
    all_codes = [r["code"] for r in desk.get("/rating-reasons").json()["reasons"]]
    assert len(all_codes) >= 12
    page = paired_page(srv, browser)
    shots = artifacts()
    cases = iter(open_cases(desk, 1, 12))

    def new_citizen() -> int:
        case_id = next(cases)
        assert desk.post(f"/cases/{case_id}/rating-challenge").status_code == 200
        wait_screen(page, "rating")
        return case_id

    # 10: voice on by default, switches big with icons and an on state, reset per citizen.
    new_citizen()
    page.wait_for_function("window.__said.length > 0")
    for sel in ("#btn-speak", "#btn-contrast"):
        box = page.locator(sel).bounding_box()
        assert box is not None and box["width"] >= 90 and box["height"] >= 90, (sel, box)
        assert page.locator(f"{sel} svg").count() == 1
    assert page.get_attribute("#btn-speak", "aria-pressed") == "true"
    assert page.inner_text("#btn-speak .tool-state") == "开"
    on_bg = page.evaluate("getComputedStyle(document.getElementById('btn-speak')).backgroundColor")
    off_bg = page.evaluate("getComputedStyle(document.getElementById('btn-contrast')).backgroundColor")
    assert on_bg != off_bg  # the on state is a fill, not a thin border
    page.click("#btn-speak")
    page.click("#btn-contrast")
    assert page.get_attribute("#btn-speak", "aria-pressed") == "false"
    assert page.evaluate("document.body.classList.contains('hc')")
    page.screenshot(path=str(shots / "padux_rating_zh_hc_toggled_1280x800.png"))
    # 12: nothing technical in the corner.
    assert page.inner_text("#link").strip() == ""
    page.click("button[data-level='satisfied']")
    wait_screen(page, "thanks")
    assert page.locator("#scr-thanks svg.big-icon").is_visible()
    page.screenshot(path=str(shots / "padux_thanks_zh_1280x800.png"))
    new_citizen()
    assert page.get_attribute("#btn-speak", "aria-pressed") == "true"  # the next citizen: reset
    assert not page.evaluate("document.body.classList.contains('hc')")

    # 9 + 11 at both sizes, zh/en, normal/high contrast.
    for w, h in SIZES:
        page.set_viewport_size({"width": w, "height": h})
        for lang in ("zh", "en"):
            for hc in (False, True):
                mode = f"{lang}_{'hc' if hc else 'normal'}_{w}x{h}"
                if page.evaluate("document.body.getAttribute('data-screen')") != "rating":
                    new_citizen()
                set_mode(page, lang, hc)
                assert in_view(page, "#levels .level, #btn-speak, #btn-contrast, #btn-lang") == [], mode
                assert not (ns := no_scroll(page)), (mode, repr(ns))
                # 非常不满意 on one line; every face the same size, in one row when side by side.
                label = page.locator("button[data-level='very_dissatisfied'] span")
                lh = float(page.evaluate("parseFloat(getComputedStyle(document.querySelector("
                                         "\"button[data-level='very_dissatisfied'] span\")).lineHeight)"))
                lb = label.bounding_box()
                assert lb is not None and lb["height"] < 1.5 * lh, (mode, lb, lh)
                faces = page.evaluate("[...document.querySelectorAll('#levels .level svg')]"
                                      ".map(s => {const r = s.getBoundingClientRect(); return [r.top, r.width];})")
                assert len({round(f[1]) for f in faces}) == 1, (mode, faces)
                if w > h:
                    assert len({round(f[0]) for f in faces}) == 1, (mode, faces)
                if hc:
                    assert faces[0][1] >= 90, (mode, faces)
                    # a thick bar of the level's colour stays in high contrast
                    bar = page.evaluate("parseFloat(getComputedStyle(document.querySelector("
                                        "\"button[data-level='very_dissatisfied']\")).borderTopWidth)"
                                        " + parseFloat(getComputedStyle(document.querySelector("
                                        "\"button[data-level='very_dissatisfied']\")).borderLeftWidth)")
                    assert bar >= 20, (mode, bar)
                page.screenshot(path=str(shots / f"padux_rating_{mode}.png"))
                page.evaluate("window.__said = []")
                page.click("button[data-level='very_dissatisfied']")
                wait_screen(page, "reasons")
                level_name = "非常不满意" if lang == "zh" else "Very dissatisfied"
                assert level_name in page.inner_text("#chosen"), mode
                assert any(level_name in s for s in page.evaluate("window.__said")), mode
                # every reason reachable, every reason button inside the screen, no scrolling
                seen: list[str] = []
                for _ in range(len(all_codes)):
                    assert in_view(page, "#reasons .reason, #pager button, #btn-submit, #btn-back, #comment") == [], mode
                    assert not (ns := no_scroll(page)), (mode, repr(ns))
                    seen += page.evaluate("[...document.querySelectorAll('#reasons .reason')]"
                                          ".map(b => b.getAttribute('data-code'))")
                    if page.locator("#pager").is_hidden() or page.locator("#btn-next").is_disabled():
                        break
                    page.click("#btn-next")
                assert sorted(seen) == sorted(all_codes), mode
                # the validation message: right above 提交, in view, and spoken
                page.evaluate("window.__said = []")
                page.click("#btn-submit")
                msg = page.locator("#reasons-msg").bounding_box()
                sub = page.locator("#btn-submit").bounding_box()
                assert msg is not None and sub is not None and msg["height"] > 0, mode
                assert in_view(page, "#reasons-msg") == [], mode
                assert 0 <= sub["y"] - (msg["y"] + msg["height"]) <= 40, (mode, msg, sub)
                need = page.inner_text("#reasons-msg").strip()
                assert need and need in page.evaluate("window.__said"), mode
                page.screenshot(path=str(shots / f"padux_reasons_{mode}.png"))
                # a reason tapped is read aloud
                page.evaluate("window.__said = []")
                first = page.locator("#reasons .reason >> nth=0")
                first.click()
                assert any(first.inner_text() in s for s in page.evaluate("window.__said")), mode
                page.click("#btn-submit")
                wait_screen(page, "thanks")
                if not hc:
                    page.screenshot(path=str(shots / f"padux_thanks_{lang}_{w}x{h}.png"))
    page.close()


def test_paused_and_rating_screens_show_icons_and_the_clerks_photo(tmp_path: Path,
                                                                    browser: BrowserContext) -> None:
    import base64

    srv = start_server_thread(data_dir=tmp_path / "hall", demo=True, pad_hosts=(PAD_HOST,),
                              pad_rating_seconds=600, pad_thanks_seconds=1)
    try:
        desk = signed_in(srv.url, "1001", 1)
        dot = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ"
                               "/pLvAAAAAElFTkSuQmCC")
        eng = create_engine(srv.db_url)
        with eng.begin() as c:
            c.execute(text("UPDATE staff SET photo = :p WHERE staff_no = '1001'"), {"p": dot})
        eng.dispose()
        page = paired_page(srv, browser)
        (case_id,) = open_cases(desk, 1, 1)
        assert desk.post(f"/cases/{case_id}/rating-challenge").status_code == 200
        wait_screen(page, "rating")
        page.wait_for_function("document.getElementById('mini-photo').naturalWidth > 0", timeout=20000)
        assert page.locator("#mini-photo").is_visible()
        page.click("button[data-level='satisfied']")
        wait_screen(page, "thanks")
        wait_screen(page, "idle")
        codes = [r["code"] for r in desk.get("/hall").json()["pause_reasons"]]
        r = desk.post("/windows/1/pause", json={"reason_code": codes[0]})
        assert r.status_code == 200, r.text
        wait_screen(page, "paused")
        assert page.locator("#scr-paused svg.big-icon").is_visible()
        for w, h in SIZES:
            page.set_viewport_size({"width": w, "height": h})
            for lang in ("zh", "en"):
                set_mode(page, lang, False)
                assert in_view(page, "#scr-paused svg.big-icon, #h-paused, #paused-text") == []
                page.screenshot(path=str(artifacts() / f"padux_paused_{lang}_{w}x{h}.png"))
        page.close()
    finally:
        srv.stop()
