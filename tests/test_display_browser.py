"""The call display (叫号屏) in real headless Chromium, driven by the real server's display
stream: a call shows on the hall TV within 1 s of call-next and is spoken (speechSynthesis spied
on where the browser has a Chinese voice; else the server's espeak-ng clip is played, and its
length read from the WAV header matches what Chromium decoded); a recall speaks again; English
where the hall set it; the TV comes back by itself after the server is killed and restarted;
the small per-window display; the page's own strict CSP holds (no violation, script and style
run). axe-core (0 serious/critical) runs in a separate context that may inject it.
Screenshots: $COUNTER_ARTIFACTS/screenshots/display_*.png (hall TV 1920x1080 steady and while
calling, 1366x768, offline, window 640x360, refused)."""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hall_server import cli, display
from tests.pad_helpers import CHROMIUM, CHROMIUM_ARGS, wait_for
from tests.support.server_fixtures import (
    Api,
    RunningServer,
    free_port,
    signed_in,
    start_server_process,
    start_server_thread,
)

pytest.importorskip("playwright")
if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs chromium
    pytest.skip("chromium is not installed", allow_module_level=True)

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright  # noqa: E402

pytestmark = pytest.mark.browser
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
TV: dict[str, Any] = {"viewport": {"width": 1920, "height": 1080}, "locale": "zh-CN"}
SMALL: dict[str, Any] = {"viewport": {"width": 640, "height": 360}, "locale": "zh-CN"}

# The spy: speechSynthesis answers with the voices a test gives and records what it is asked
# to say; every audio element played is kept (and really played) so the test can read what
# Chromium decoded.
SPY = """
(() => {
  const voices = %s;
  window.__spoken = []; window.__audio = [];
  speechSynthesis.getVoices = () => voices;
  speechSynthesis.speak = (u) => {
    window.__spoken.push({text: u.text, lang: u.lang});
    setTimeout(() => u.onend && u.onend(new Event("end")), 30);
  };
  const play = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function () { window.__audio.push(this); return play.call(this); };
})();
"""
ZH_VOICE = {"lang": "zh-CN", "name": "Test Mandarin", "voiceURI": "zh", "default": True, "localService": True}
EN_VOICE = {"lang": "en-US", "name": "Test English", "voiceURI": "en", "default": False, "localService": True}


# Every piece of the board that is not wholly inside its panel or tile.
OUTSIDE = """
(() => {
  const out = [];
  const inside = (el, box) => {
    const r = el.getBoundingClientRect(), b = box.getBoundingClientRect();
    return r.left >= b.left - 1 && r.right <= b.right + 1 && r.top >= b.top - 1 && r.bottom <= b.bottom + 1;
  };
  const now = document.getElementById("now");
  document.querySelectorAll("#now-body > *, #now-body .now-line > *").forEach(
    e => inside(e, now) || out.push("now: " + e.textContent));
  const recent = document.querySelector(".recent");
  document.querySelectorAll("#recent li").forEach(e => inside(e, recent) || out.push("recent: " + e.textContent));
  document.querySelectorAll(".tile > *").forEach(e => inside(e, e.parentElement) || out.push("tile: " + e.textContent));
  const board = document.querySelector(".board");
  document.querySelectorAll(".tile").forEach(e => inside(e, board) || out.push("tile off the TV: " + e.textContent));
  return out;
})()
"""


def shots() -> Path:
    d = Path(os.environ.get("COUNTER_ARTIFACTS", "test-artifacts")) / "screenshots"
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def hall(tmp_path: Path) -> Iterator[RunningServer]:
    srv = start_server_thread(data_dir=tmp_path / "hall", demo=True)
    yield srv
    srv.stop()


def cli_json(data_dir: Path, db: str | None, *args: str) -> dict[str, Any]:
    import contextlib

    buf = io.StringIO()
    common = ["--data-dir", str(data_dir), *(["--db", db] if db else [])]
    with contextlib.redirect_stdout(buf):
        assert cli.main(["display", args[0], *common, *args[1:]]) == 0
    return dict(json.loads(buf.getvalue()))


def key_url(srv_url: str, data_dir: Path, db: str | None, window: int | None = None) -> str:
    extra = ("--window", str(window)) if window is not None else ()
    return str(cli_json(data_dir, db, "token", "--url", srv_url, *extra)["url"])


def open_display(browser: Browser, url: str, voices: list[dict[str, Any]], size: dict[str, Any] = TV,
                 **kw: Any) -> tuple[BrowserContext, Page, list[str]]:
    ctx = browser.new_context(**size, **kw)
    ctx.add_init_script(SPY % json.dumps(voices))
    page = ctx.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url)
    page.wait_for_selector('body[data-live="1"]', timeout=10_000)
    return ctx, page, problems


def call_at(desk: Api, window_no: int) -> dict[str, Any]:
    cat = desk.get(f"/windows/{window_no}").json()["categories"][0]
    issued = Api(desk.url).post("/tickets", json={"category": cat})
    assert issued.status_code == 201, issued.text
    called = desk.post(f"/windows/{window_no}/call-next").json()["ticket"]
    assert called is not None and called["id"] == issued.json()["id"]
    return dict(called)


def shows(page: Page, number: str, timeout: float = 5000) -> None:
    page.wait_for_function("n => document.getElementById('now-num').textContent === n", arg=number,
                           timeout=timeout, polling="raf")


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / w.getframerate()


def test_call_shows_within_a_second_is_spoken_and_recall_repeats(chromium: Browser, hall: RunningServer) -> None:
    ctx, page, problems = open_display(chromium, key_url(hall.url, hall.data_dir, hall.db_url), [ZH_VOICE])
    assert page.url == hall.url + "/display"  # the key left the address
    w1 = signed_in(hall.url, "1001", 1)
    cat = w1.get("/windows/1").json()["categories"][0]
    Api(hall.url).post("/tickets", json={"category": cat})
    t0 = time.monotonic()
    tk = w1.post("/windows/1/call-next").json()["ticket"]
    shows(page, tk["number"])
    elapsed = time.monotonic() - t0
    assert elapsed < 1.0, f"the call took {elapsed:.3f} s to show"
    page.wait_for_timeout(550)  # the flash at its brightest: what the waiting room sees first
    page.screenshot(path=str(shots() / "display_hall_calling.png"))
    assert page.inner_text("#now-win").startswith("1")
    assert page.inner_text("#now-say") == f"请 {tk['number']} 号到 1 号窗口办理"
    assert page.inner_text('#windows li[data-no="1"] .wnum') == tk["number"]
    spoken = wait_for(lambda: page.evaluate("window.__spoken"), timeout=10, what="speechSynthesis.speak")
    assert spoken == [{"text": display.say_zh(tk["number"], 1), "lang": "zh-CN"}]
    # The chime before the words was really played by Chromium.
    chime = page.evaluate("window.__audio.map(a => [a.src, a.error && a.error.code])")
    assert chime[0] == [hall.url + "/display/chime.wav", None]
    # A recall speaks again; the number stays once in the list.
    assert w1.post(f"/tickets/{tk['id']}/recall").status_code == 200
    wait_for(lambda: len(page.evaluate("window.__spoken")) == 2, timeout=10, what="the recall spoken")
    assert page.evaluate("window.__spoken[1].text") == display.say_zh(tk["number"], 1)
    # More windows call: the newest is "now", the earlier ones move to the list.
    numbers = {1: tk["number"]}
    for no in (2, 3, 4, 5, 6):
        numbers[no] = call_at(signed_in(hall.url, str(1000 + no), no), no)["number"]
        shows(page, numbers[no])
    recent = page.locator("#recent li .num").all_inner_texts()
    assert recent == [numbers[n] for n in (5, 4, 3, 2, 1)]
    for no, number in numbers.items():
        assert page.inner_text(f'#windows li[data-no="{no}"] .wnum') == number
    # Serving done at window 1: its tile goes back to waiting.
    assert w1.post(f"/tickets/{tk['id']}/complete", json={"outcome": "completed"}).status_code == 200
    page.wait_for_selector('#windows li[data-no="1"] .wstate', timeout=5000)
    page.wait_for_timeout(6500)  # the flash of the last call is over: the steady board
    page.screenshot(path=str(shots() / "display_hall_1920x1080.png"))
    # A smaller TV (1366x768) gets the same board, scaled, nothing cut.
    page.set_viewport_size({"width": 1366, "height": 768})
    page.wait_for_timeout(300)
    assert page.evaluate(OUTSIDE) == []
    page.screenshot(path=str(shots() / "display_hall_1366x768.png"))
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.wait_for_timeout(300)
    # Big type for 5 m: the number now called is a fifth of the screen's height and more.
    size = float(page.evaluate("parseFloat(getComputedStyle(document.getElementById('now-num')).fontSize)"))
    tile = float(page.evaluate("parseFloat(getComputedStyle(document.querySelector('.wnum')).fontSize)"))
    assert size >= 216 and tile >= 80, (size, tile)
    # Nothing spills off the TV, or out of its panel (the panels clip: a cut number would
    # not show as a scroll bar).
    assert page.evaluate("document.documentElement.scrollHeight <= innerHeight && "
                         "document.documentElement.scrollWidth <= innerWidth")
    assert page.evaluate(OUTSIDE) == []
    # The page's own CSP is in force, and its hashed style and script ran under it.
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(10, 26, 51)"
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
    ctx.close()


def test_without_a_chinese_voice_the_server_clip_is_played(chromium: Browser, hall: RunningServer) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    cli_json(hall.data_dir, hall.db_url, "english", "on")
    ctx, page, _ = open_display(chromium, key_url(hall.url, hall.data_dir, hall.db_url), [])
    w1 = signed_in(hall.url, "1001", 1)
    tk = call_at(w1, 1)
    shows(page, tk["number"])
    assert page.inner_text("#now-say-en") == f"Number {tk['number']}, please go to window 1"
    src = wait_for(lambda: page.evaluate("window.__audio.length && window.__audio[0].src"), timeout=10,
                   what="the clip played")
    assert "/display/audio/" in src and src.endswith(".wav?en=1")
    assert page.evaluate("window.__spoken") == []
    # Chromium loaded and decoded the clip; its length is the one in the WAV header.
    decoded = wait_for(lambda: page.evaluate("window.__audio[0].duration || 0"), timeout=20,
                       what="the clip decoded")
    r = ctx.request.get(src)
    assert r.status == 200 and r.headers["content-type"] == "audio/wav"
    seconds = wav_seconds(r.body())
    assert abs(decoded - seconds) < 0.1 and seconds > 5, (decoded, seconds)  # chime, zh and en
    assert page.evaluate("window.__audio[0].error") is None
    # The recall plays its own clip (the same words, served from the cache).
    w1.post(f"/tickets/{tk['id']}/recall")
    wait_for(lambda: page.evaluate("window.__audio.length") >= 2, timeout=40, what="the recall played")
    src2 = page.evaluate("window.__audio[1].src")
    assert src2 != src and ctx.request.get(src2).body() == r.body()
    ctx.close()


def test_the_tv_comes_back_after_the_server_restarts(chromium: Browser, tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "hall"
    srv = start_server_process(data, port=port)
    try:
        url = key_url(srv.url, data, None)
        ctx, page, _ = open_display(chromium, url, [ZH_VOICE])
        first = call_at(signed_in(srv.url, "1001", 1), 1)
        shows(page, first["number"])
        srv.kill()
        page.wait_for_selector('body[data-live="0"]', timeout=15_000)
        assert page.is_visible("#offline") and "正在重新连接" in page.inner_text("#offline")
        assert page.inner_text("#now-num") == first["number"]  # the last board stays up
        page.screenshot(path=str(shots() / "display_hall_offline.png"))
        srv = start_server_process(data, port=port)
        page.wait_for_selector('body[data-live="1"]', timeout=30_000)
        assert not page.is_visible("#offline")
        t0 = time.monotonic()
        second = call_at(signed_in(srv.url, "1002", 2), 2)
        shows(page, second["number"])
        assert time.monotonic() - t0 < 1.5
        assert page.locator("#recent li .num").all_inner_texts()[0] == first["number"]
        wait_for(lambda: any(s["text"] == display.say_zh(second["number"], 2)
                             for s in page.evaluate("window.__spoken")), timeout=10, what="spoken after restart")
        ctx.close()
    finally:
        srv.kill()


def test_the_small_display_above_a_window(chromium: Browser, hall: RunningServer) -> None:
    url = key_url(hall.url, hall.data_dir, hall.db_url, window=3)
    ctx, page, _ = open_display(chromium, url, [ZH_VOICE], size=SMALL)
    assert page.url == hall.url + "/display/window/3"
    assert "未开放" in page.inner_text("#w-state")
    w3 = signed_in(hall.url, "1003", 3)
    page.wait_for_function("document.getElementById('w-state').textContent.includes('等待叫号')", timeout=5000)
    call_at(signed_in(hall.url, "1004", 4), 4)  # another window's call: not shown here
    tk = call_at(w3, 3)
    page.wait_for_function("n => document.getElementById('w-num').textContent === n", arg=tk["number"],
                           timeout=5000)
    assert "请到本窗口办理" in page.inner_text("#w-state")
    size = float(page.evaluate("parseFloat(getComputedStyle(document.getElementById('w-num')).fontSize)"))
    assert size >= 140, size
    assert page.evaluate("document.documentElement.scrollHeight <= innerHeight")
    page.screenshot(path=str(shots() / "display_window_640x360.png"))
    page.wait_for_timeout(500)
    assert page.evaluate("window.__spoken.length + window.__audio.length") == 0  # silent unless ?voice=1
    ctx.close()


def _axe(page: Page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    res = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']}: {v['help']}" for v in res["violations"] if v.get("impact") in ("serious", "critical")]


def test_every_display_page_accessible(chromium: Browser, hall: RunningServer) -> None:
    for no in (1, 2):
        call_at(signed_in(hall.url, str(1000 + no), no), no)
    problems: dict[str, list[str]] = {}
    ctx = chromium.new_context(bypass_csp=True, **TV)  # only so axe-core can be injected
    page = ctx.new_page()
    page.goto(key_url(hall.url, hall.data_dir, hall.db_url))
    page.wait_for_selector('body[data-live="1"]')
    problems["hall"] = _axe(page)
    page.goto(key_url(hall.url, hall.data_dir, hall.db_url, window=1))
    page.wait_for_selector('body[data-live="1"]')
    problems["window"] = _axe(page)
    ctx.close()
    ctx = chromium.new_context(bypass_csp=True, **TV)
    page = ctx.new_page()
    page.goto(hall.url + "/display")
    problems["refused"] = _axe(page)
    page.screenshot(path=str(shots() / "display_refused.png"))
    ctx.close()
    assert {k: v for k, v in problems.items() if v} == {}


def test_a_revoked_display_says_why(chromium: Browser, tmp_path: Path) -> None:
    srv = start_server_thread(data_dir=tmp_path / "hall", demo=True, ping_seconds=0.5)
    try:
        ctx, page, _ = open_display(chromium, key_url(srv.url, srv.data_dir, srv.db_url), [ZH_VOICE])
        cli_json(srv.data_dir, srv.db_url, "revoke")
        page.wait_for_selector('body[data-page="refused"]', timeout=10_000)
        assert "信息管理员" in page.inner_text("main") and "ask IT" in page.inner_text("main")
        assert page.locator("#windows").count() == 0
        ctx.close()
    finally:
        srv.stop()


def test_a_call_made_while_the_tv_was_cut_off_is_shown_and_spoken(chromium: Browser,
                                                                   hall: RunningServer) -> None:
    """The TV's network drops (a loopback TCP proxy between it and the server is stopped, its
    open stream reset); a window calls meanwhile; the link comes back: the page resumes from
    the last event it saw and shows and speaks the call it missed."""
    from urllib.parse import urlsplit

    from tests.faultproxy import FaultProxy

    server_port = urlsplit(hall.url).port
    assert server_port is not None
    proxy = FaultProxy(server_port).start()
    try:
        url = key_url(proxy.url, hall.data_dir, hall.db_url)
        ctx, page, _ = open_display(chromium, url, [ZH_VOICE])
        first = call_at(signed_in(hall.url, "1001", 1), 1)
        shows(page, first["number"])
        port = proxy.port
        proxy.stop()  # the TV's cable is pulled
        page.wait_for_selector('body[data-live="0"]', timeout=15_000)
        missed = call_at(signed_in(hall.url, "1002", 2), 2)
        page.wait_for_timeout(1500)
        assert page.inner_text("#now-num") == first["number"]
        proxy = FaultProxy(server_port, listen_port=port).start()  # and plugged back in
        page.wait_for_selector('body[data-live="1"]', timeout=30_000)
        shows(page, missed["number"])
        assert page.inner_text('#windows li[data-no="2"] .wnum') == missed["number"]
        wait_for(lambda: any(s["text"] == display.say_zh(missed["number"], 2)
                             for s in page.evaluate("window.__spoken")), timeout=10,
                 what="the missed call spoken")
        ctx.close()
    finally:
        proxy.stop()
