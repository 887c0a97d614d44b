"""The second-screen pad on a WIDE display (2560x800, its own Xvfb): the window sits at +1280+0,
as on a hall PC with a citizen-facing monitor to the right, and is clicked with REAL pointer
clicks (xdotool). A rating goes through the real outbox to the real server, which records it as
"unsigned". Screenshots of every screen, in Chinese and in English.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import queue
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from counter_app.pad.base import ClerkCard, PadRating, RatingRequest
from tests.support.gui_fixtures import artifacts_dir, pump, pump_until, teardown_root

pytestmark = pytest.mark.gui

WIDE = (2560, 800)
PAD_GEOMETRY = "1280x800+1280+0"


def _free_display() -> int:
    for n in range(71, 140):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number")


@pytest.fixture(scope="session")
def wide_server() -> Iterator[str]:
    """Our own Xvfb with a 2560x800 screen: the desk's half and the citizen's half.

    Never killed by the tests: Tk keeps its display connection for as long as its interpreter
    lives (customtkinter holds on to windows), and a Tk whose X server vanishes ends the whole
    process. ``-terminate`` ends the server when its last client leaves, that is when this
    process exits; a connection of our own keeps it up in between.
    """
    if shutil.which("Xvfb") is None or shutil.which("xdotool") is None:
        pytest.fail("Xvfb and xdotool are needed (apt-get install xvfb xdotool)")
    n = _free_display()
    proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", f"{WIDE[0]}x{WIDE[1]}x24",
                             "-nolisten", "tcp", "-terminate"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not Path(f"/tmp/.X11-unix/X{n}").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("Xvfb did not start")
        time.sleep(0.02)
    libx11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    libx11.XOpenDisplay.restype = ctypes.c_void_p
    keeper = None
    while keeper is None and time.monotonic() < deadline:
        keeper = libx11.XOpenDisplay(f":{n}".encode()) or None
        time.sleep(0.02)
    if keeper is None:
        proc.kill()
        raise RuntimeError("cannot connect to our Xvfb")
    yield f":{n}"


@pytest.fixture(scope="module")
def wide_display(wide_server: str) -> Iterator[str]:
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = wide_server
    try:
        yield wide_server
    finally:
        if old is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = old


@pytest.fixture
def pad_env(wide_display: str) -> Iterator[tuple[Any, Any, Any]]:
    import customtkinter as ctk

    from ui import style
    from ui.pad_window import SecondScreenPad
    from ui.tasks import TaskRunner

    style.apply("light", 1.0)
    root = ctk.CTk()
    root.geometry("600x400+0+0")
    runner = TaskRunner(root)
    pad = SecondScreenPad(root, lambda fn: runner.call_soon(0, fn), geometry=PAD_GEOMETRY,
                          hall_name=("高新区政务服务大厅", "Hi-Tech Zone Service Hall"))
    yield root, runner, pad
    pad.stop()
    pump(root, 0.05)
    runner.close()
    teardown_root(root)


def card(photo: bytes | None = None) -> ClerkCard:
    return ClerkCard("1001", "张伟", "Zhang Wei", 1, "综合受理一号窗口", "General Window 1", photo)


def rating_request(case_id: int, challenge: str, reasons: tuple[tuple[str, str, str], ...],
                   version: str = "v") -> RatingRequest:
    return RatingRequest(case_id=case_id, case_no=f"C{case_id}", window_no=1,
                         matter_name_zh="个体工商户设立登记", matter_name_en="Sole trader registration",
                         challenge=challenge, reasons_version=version, reasons=reasons,
                         timeout_s=60, rate_later_url="http://127.0.0.1:8123/rate?case=C1")


def click(root: Any, widget: Any) -> None:
    """A real pointer click in the middle of ``widget`` (Enter, press, release: CTk 6 needs all)."""
    pump(root, 0.05)
    x = widget.winfo_rootx() + widget.winfo_width() // 2
    y = widget.winfo_rooty() + widget.winfo_height() // 2
    subprocess.run(["xdotool", "mousemove", str(x), str(y)], check=True)
    pump(root, 0.05)
    subprocess.run(["xdotool", "click", "1"], check=True)
    pump(root, 0.1)


def shot(pad: Any, name: str) -> Path:
    from PIL import ImageGrab

    win = pad.window
    for _ in range(5):
        win.update_idletasks()
        win.update()
    x, y = win.winfo_rootx(), win.winfo_rooty()
    image = ImageGrab.grab(bbox=(x, y, x + win.winfo_width(), y + win.winfo_height()),
                           xdisplay=os.environ["DISPLAY"])
    path = artifacts_dir() / f"{name}.png"
    image.save(path)
    return path


REASONS = (("A05", "等候时间过长", "Waited too long"),
           ("A07", "服务态度差、推诿扯皮", "Poor attitude or passing the buck"),
           ("A14", "其他", "Other"))


def test_window_is_borderless_on_the_second_monitor_and_shows_every_screen(pad_env) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image
    root, runner, pad = pad_env
    states: list[str] = []
    pad.start(lambda _r: None, states.append)
    pad.show_idle(card())
    win = pump_until(root, lambda: pad.window, what="pad window")
    pump_until(root, lambda: win.winfo_ismapped() and win.winfo_rootx() == 1280, what="placed")
    assert (win.winfo_rootx(), win.winfo_rooty()) == (1280, 0)
    assert (win.winfo_width(), win.winfo_height()) == (1280, 800)
    assert bool(win.overrideredirect()) and states == ["connected"]

    seen: dict[str, Path] = {}
    for lang in ("zh", "en"):
        def to_lang(lang: str = lang) -> None:
            if pad.lang != lang:
                click(root, pad.lang_button)  # the citizen's own switch, a real click

        pad.show_idle(card())
        pump(root, 0.1)
        to_lang()
        assert pad.lang == lang
        seen[f"idle_{lang}"] = shot(pad, f"pad_second_screen_idle_{lang}")
        pad.ask_rating(rating_request(1, "c", REASONS), card())
        pump(root, 0.1)
        to_lang()
        assert set(pad.level_buttons) == {"very_satisfied", "satisfied", "basic", "dissatisfied",
                                          "very_dissatisfied"}
        # Five LARGE targets: each at least 200 px wide and 300 px tall on a 1280x800 screen.
        for b in pad.level_buttons.values():
            assert b.winfo_width() >= 200 and b.winfo_height() >= 300
        seen[f"rating_{lang}"] = shot(pad, f"pad_second_screen_rating_{lang}")
        click(root, pad.level_buttons["very_dissatisfied"])
        assert pad.screen == "reasons"
        click(root, pad.reason_buttons["A05"])
        seen[f"reasons_{lang}"] = shot(pad, f"pad_second_screen_reasons_{lang}")
        pad.show_thanks()
        pump(root, 0.1)
        to_lang()
        seen[f"thanks_{lang}"] = shot(pad, f"pad_second_screen_thanks_{lang}")
        pad.show_paused("暂停服务，请稍候", "Service paused, please wait")
        pump(root, 0.1)
        to_lang()
        seen[f"paused_{lang}"] = shot(pad, f"pad_second_screen_paused_{lang}")
        pad.show_not_rated("http://127.0.0.1:8123/rate?case=C1")
        pump(root, 0.1)
        to_lang()
        seen[f"not_rated_{lang}"] = shot(pad, f"pad_second_screen_not_rated_{lang}")
    for name, path in seen.items():
        with Image.open(path) as im:
            assert im.size == (1280, 800), name
            # Not a blank screen: the level colours / the words are drawn.
            assert len(set(im.convert("RGB").resize((64, 40)).get_flattened_data())) > 8, name
    # The rate-later QR on screen decodes to the link (zbarimg reads the screenshot).
    if shutil.which("zbarimg"):
        out = subprocess.run(["zbarimg", "--raw", "-q", str(seen["not_rated_zh"])],
                             capture_output=True, text=True)
        assert out.stdout.strip() == "http://127.0.0.1:8123/rate?case=C1"


def test_bad_rating_needs_a_reason_and_one_touch_rates_once(pad_env) -> None:  # type: ignore[no-untyped-def]
    root, runner, pad = pad_env
    got: queue.Queue[PadRating] = queue.Queue()
    pad.start(got.put, lambda _s: None)
    pad.ask_rating(rating_request(5, "chal", REASONS), card())
    pump_until(root, lambda: pad.level_buttons, what="rating screen")
    click(root, pad.level_buttons["dissatisfied"])
    click(root, pad.submit_button)  # no reason chosen yet: nothing is sent
    pump(root, 0.2)
    assert got.empty() and pad.screen == "reasons"
    click(root, pad.back_button)
    assert pad.screen == "rating"
    click(root, pad.level_buttons["very_dissatisfied"])
    click(root, pad.reason_buttons["A14"])
    click(root, pad.reason_buttons["A05"])
    click(root, pad.reason_buttons["A14"])  # un-chosen again
    click(root, pad.submit_button)
    r = pump_until(root, lambda: None if got.empty() else got.get(), what="rating")
    assert (r.case_id, r.level, r.reasons, r.source, r.challenge) == (
        5, "very_dissatisfied", ("A05",), "second_screen", "chal")
    assert pad.screen == "sending"
    pad.ask_rating(rating_request(6, "c6", REASONS), card())
    pump_until(root, lambda: pad.level_buttons, what="rating screen")
    button = pad.level_buttons["satisfied"]
    click(root, button)
    r = pump_until(root, lambda: None if got.empty() else got.get(), what="rating")
    assert (r.case_id, r.level, r.reasons) == (6, "satisfied", ())
    click(root, pad.window)  # a second touch on the "sending" screen
    pump(root, 0.3)
    assert got.empty()


def test_a_rating_the_desk_could_not_store_can_be_given_again(pad_env) -> None:  # type: ignore[no-untyped-def]
    root, runner, pad = pad_env
    calls: list[PadRating] = []

    def on_rating(r: PadRating) -> None:
        calls.append(r)
        if len(calls) == 1:
            raise RuntimeError("disk full")  # as NotSavedError from the outbox would

    pad.start(on_rating, lambda _s: None)
    pad.ask_rating(rating_request(8, "c8", REASONS), card())
    pump_until(root, lambda: pad.level_buttons, what="rating screen")
    click(root, pad.level_buttons["basic"])
    pump_until(root, lambda: pad.screen == "rating" and pad.retry_note, what="asked again")
    shot(pad, "pad_second_screen_retry_zh")
    click(root, pad.level_buttons["basic"])
    pump_until(root, lambda: len(calls) == 2, what="second try")
    assert calls[0].rating_id != calls[1].rating_id and calls[1].level == "basic"
    pump(root, 0.2)
    assert pad.screen == "sending"


def test_calls_from_worker_threads_are_marshalled(pad_env) -> None:  # type: ignore[no-untyped-def]
    import threading

    root, runner, pad = pad_env
    pad.start(lambda _r: None, lambda _s: None)
    pump_until(root, lambda: pad.window, what="window")
    t = threading.Thread(target=lambda: (pad.show_idle(card()), pad.show_paused("维护", "Maint")))
    t.start()
    t.join()
    pump_until(root, lambda: pad.screen == "paused", what="paused from a worker")


def test_bad_geometry_is_a_clear_error() -> None:
    from ui.pad_window import parse_geometry

    assert parse_geometry("+1280+0") == (1280, 800, 1280, 0)
    assert parse_geometry("1920x1080+1920+0") == (1920, 1080, 1920, 0)
    with pytest.raises(ValueError, match="副屏"):
        parse_geometry("right monitor")


def test_click_rating_reaches_the_server_as_unsigned(pad_env, fresh_hall_server: Any, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from api_client import HallClient
    from api_client.models import RatingSubmission
    from counter_app.outbox import HallSender, Outbox
    from tests.outbox_child import PASSWORD, make_cases

    root, runner, pad = pad_env
    desk = HallClient(fresh_hall_server.url)
    desk.login("1001", PASSWORD, 1)
    good, bad = make_cases(desk, 1, 2)
    reasons = desk.rating_reasons()
    reason_rows = tuple((r.code, r.text_zh, r.text_en) for r in reasons.reasons)
    outbox = Outbox(tmp_path / "outbox.sqlite3", HallSender(desk))
    outbox.start()
    stored: queue.Queue[str] = queue.Queue()

    def on_rating(r: PadRating) -> None:  # a worker thread, as PadService would be called
        stored.put(outbox.enqueue_rating(RatingSubmission(
            id=r.rating_id, case_id=r.case_id, window_no=r.window_no, level=r.level,
            rated_at=_parse(r.rated_at), source=r.source, reasons=r.reasons,
            reasons_version=reasons.version, comment=r.comment, challenge=r.challenge)))

    try:
        pad.start(on_rating, lambda _s: None)
        ids = []
        for case, level in ((good, "very_satisfied"), (bad, "dissatisfied")):
            challenge = desk.rating_challenge(case["case_id"]).challenge
            pad.ask_rating(rating_request(case["case_id"], challenge, reason_rows,
                                          reasons.version), card())
            pump_until(root, lambda: pad.screen == "rating" and pad.level_buttons, what="rating")
            click(root, pad.level_buttons[level])
            if level == "dissatisfied":
                click(root, pad.reason_buttons[reason_rows[0][0]])
                click(root, pad.submit_button)
            ids.append(pump_until(root, lambda: None if stored.empty() else stored.get(),
                                  what="stored"))
            pad.show_thanks()
        try:
            pump_until(root, lambda: outbox.depth() == 0, what="delivered")
        except AssertionError:
            raise AssertionError([(i.state, i.last_error) for i in outbox.items()]) from None
        for item_id in ids:
            item = outbox.get(item_id)
            assert item is not None and item.state == "done"
            assert item.receipt["assurance"] == "unsigned"
        on_server = desk.window_rating_ids(1, _today())
        assert set(ids) <= set(on_server)
    finally:
        outbox.close()
        desk.close()


def _parse(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _today() -> Any:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def test_desk_f10_to_second_screen_to_server(wide_display: str, desk_app_factory: Any,
                                             fresh_hall_server: Any) -> None:
    """The whole desk: PadService drives the second screen; the citizen clicks for real."""
    from tests.test_ui_desk import desk_state, dialog, issue, key_in, notice, open_desk, press
    from ui.views.common import select_index

    app = open_desk(desk_app_factory, fresh_hall_server.url, pad_transport="second_screen")
    app.root.geometry("1280x760+0+0")  # the clerk's monitor: the left half of the wide screen
    service = app.pad_service
    pad = service.transport
    pump_until(app.root, lambda: pad.screen == "idle" and pad.window is not None, what="idle card")
    assert (pad.window.winfo_rootx(), pad.window.winfo_rooty()) == (1280, 0)
    pump_until(app.root, lambda: app.desk_view.status.pad.cget("text") == "评价器：已连接",
               what="pad status")
    shot(pad, "pad_second_screen_idle_desk_zh")
    issue(fresh_hall_server.url, "A")
    press(app, "F1")
    pump_until(app.root, lambda: desk_state(app) == "calling", what="calling")
    press(app, "F7")
    pump_until(app.root, lambda: desk_state(app) == "serving", what="serving")
    press(app, "F10")  # evaluate while serving: the pad asks at once
    pump_until(app.root, lambda: pad.screen == "rating" and pad.level_buttons, what="pad asks")
    pump_until(app.root, lambda: "评价进行中" in app.desk_view.status.pad.cget("text"),
               what="desk locked")
    assert not app.desk.enabled()["evaluate"]
    click(app.root, pad.level_buttons["very_satisfied"])
    pump_until(app.root, lambda: "已收到评价" in notice(app), what="received on the desk")
    pump_until(app.root, lambda: pad.screen == "thanks", what="thanks on the pad")
    outbox = app.core.outbox
    pump_until(app.root, lambda: outbox.depth() == 0 and outbox.items(state="done"),
               what="delivered")
    (item,) = outbox.items(state="done")
    assert item.receipt["assurance"] == "unsigned"
    assert item.payload_obj["source"] == "second_screen"
    # Completing now asks nothing more: the case is rated (one rating per service).
    press(app, "F9")
    d = dialog(app)
    select_index(d.listbox, 0)
    key_in(d.listbox, "Return")
    pump_until(app.root, lambda: desk_state(app) == "idle", what="idle")
    pump(app.root, 0.3)
    assert pad.screen != "rating" and not app.desk.enabled()["evaluate"]


def test_a_slow_complaint_on_the_second_screen_is_not_cut_off(wide_display: str,
                                                              desk_app_factory: Any,
                                                              fresh_hall_server: Any) -> None:
    """Issue 16, item 8, on the desk's own second screen: the wait for a rating runs from the
    last touch, not from the F10. A citizen who chooses 非常不满意 and then picks reasons slowly,
    for longer than the whole timeout, still gets their complaint in (before: the "not rated"
    screen replaced it when the timeout ran out from the request)."""
    from tests.test_ui_desk import desk_state, issue, notice, open_desk, press

    app = open_desk(desk_app_factory, fresh_hall_server.url, pad_transport="second_screen")
    app.root.geometry("1280x760+0+0")
    service = app.pad_service
    pad = service.transport
    service.timeout_s = 2.0  # the hall's 60 s, shortened; the citizen's steps come every 0.7 s
    pump_until(app.root, lambda: pad.screen == "idle" and pad.window is not None, what="idle card")
    issue(fresh_hall_server.url, "A")
    press(app, "F1")
    pump_until(app.root, lambda: desk_state(app) == "calling", what="calling")
    press(app, "F7")
    pump_until(app.root, lambda: desk_state(app) == "serving", what="serving")
    press(app, "F10")
    pump_until(app.root, lambda: pad.screen == "rating" and pad.level_buttons, what="pad asks")
    pump(app.root, 0.7)
    click(app.root, pad.level_buttons["very_dissatisfied"])
    pump_until(app.root, lambda: pad.screen == "reasons" and pad.reason_buttons, what="reasons")
    codes = list(pad.reason_buttons)[:4]
    for code in codes:  # 0.7 s + 4 x 0.7 s = 3.5 s from the request: well past the 2 s
        pump(app.root, 0.7)
        assert pad.screen == "reasons", "the complaint was cut off while the citizen chose"
        click(app.root, pad.reason_buttons[code])
    click(app.root, pad.submit_button)
    pump_until(app.root, lambda: "已收到评价" in notice(app), what="received on the desk")
    outbox = app.core.outbox
    pump_until(app.root, lambda: outbox.depth() == 0 and outbox.items(state="done"),
               what="delivered")
    (item,) = outbox.items(state="done")
    assert item.payload_obj["level"] == "very_dissatisfied"
    assert sorted(item.payload_obj["reasons"]) == sorted(codes)
