"""The real desk window (customtkinter under Xvfb) against the real reference server.

Each test signs in at window 1 of a fresh demo hall, drives the window the way a clerk does
(hotkeys on the toplevel, Enter/Escape in dialogs, ``invoke()`` for clicks) and checks what the
clerk would see. Screens and dialogs are saved in zh and en under $COUNTER_ARTIFACTS/screenshots.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.gui_fixtures import pump, pump_until, screenshot
from tests.support.server_fixtures import Api, signed_in
from ui import i18n

pytestmark = pytest.mark.gui

PASSWORD = "demo1234"


def issue(url: str, category: str = "A", priority: str = "normal") -> dict[str, Any]:
    r = Api(url).post("/tickets", json={"category": category, "priority": priority})
    assert r.status_code == 201, r.text
    return dict(r.json())


def press(app: Any, key: str) -> None:
    """A hotkey as the clerk types it: key events go to the focused toplevel."""
    app.root.focus_force()
    app.root.update()
    app.root.event_generate(f"<{key}>", when="tail")
    app.root.update()


def key_in(widget: Any, key: str) -> None:
    widget.focus_force()
    widget.update()
    widget.event_generate(f"<{key}>", when="tail")
    widget.update()


def type_text(widget: Any, text: str) -> None:
    """Type into a CTkEntry character by character (KeyRelease drives the search)."""
    widget.focus_force()
    for ch in text:
        widget.insert("end", ch)
        widget.event_generate("<KeyRelease>", keysym=ch, when="tail")
        widget.update()


def open_desk(desk_app_factory: Any, url: str, window_no: int = 1, staff: str = "1001", **kw: Any) -> Any:
    app = desk_app_factory(url, window_no, **kw)
    pump_until(app.root, lambda: app.signin is not None and app.signin.server_ok, what="server check")
    app.sign_in(staff, PASSWORD)
    pump_until(app.root, lambda: app.desk_view is not None, what="the desk after sign-in")
    app.root.focus_force()
    return app


def number_shown(app: Any) -> str:
    return str(app.desk_view.number_label.cget("text"))


def desk_state(app: Any) -> str:
    return str(app.desk.s.state)


def notice(app: Any) -> str:
    return str(app.desk_view.notice_label.cget("text")).strip()


def dialog(app: Any) -> Any:
    return pump_until(app.root, lambda: app.desk_view.dialog if app.desk_view.dialog is not None
                      and app.desk_view.dialog.winfo_exists() else None, what="a dialog")


def dialog_closed(app: Any) -> bool:
    d = app.desk_view.dialog
    return d is None or not d.winfo_exists()


def shot_both(app: Any, name: str) -> None:
    """Screenshot in the current language, then the other, and back."""
    first = i18n.language()
    screenshot(app.root, f"{name}_{first}")
    i18n.set_language("en" if first == "zh" else "zh")
    pump(app.root, 0.1)
    screenshot(app.root, f"{name}_{i18n.language()}")
    i18n.set_language(first)
    pump(app.root, 0.05)


def test_sign_in_screen_wrong_password_then_enter_submits(desk_app_factory: Any, fresh_hall_server: Any) -> None:
    app = desk_app_factory(fresh_hall_server.url, 1)
    view = app.signin_view
    pump_until(app.root, lambda: app.signin.server_ok, what="server check")
    assert "1" in view.window_label.cget("text")
    assert view.server_label.cget("text") == "服务器：已连接"
    assert not view.setup_label.winfo_ismapped()  # nothing wrong with this PC's set-up
    shot_both(app, "signin")
    view.staff_entry.insert(0, "1001")
    view.password_entry.insert(0, "wrong-password")
    app.root.event_generate("<Return>", when="tail")
    pump_until(app.root, lambda: view.error_label.cget("text"), what="the sign-in error")
    assert app.desk_view is None
    shot_both(app, "signin_error")
    # Caps lock: the warning shows while the state bit is set.
    view.password_entry.event_generate("<KeyPress>", keysym="Shift_L", state=0x2)
    app.root.update()
    assert view.caps_label.winfo_ismapped()
    view.password_entry.event_generate("<KeyPress>", keysym="Shift_L", state=0)
    app.root.update()
    assert not view.caps_label.winfo_ismapped()
    view.password_entry.delete(0, "end")
    view.password_entry.insert(0, PASSWORD)
    app.root.event_generate("<Return>", when="tail")
    pump_until(app.root, lambda: app.desk_view is not None, what="the desk")
    assert "1001" in app.desk_view.who_label.cget("text")


def test_one_time_password_after_a_reset_is_replaced_at_the_desk(desk_app_factory: Any,
                                                                   fresh_hall_server: Any) -> None:
    """IT resets a clerk's password; at the window the one-time password opens the "choose a new
    password" fields (not a dead end "change your password first"), the new one is checked as
    the server checks it, set, and the clerk is signed in with it."""
    url = fresh_hall_server.url
    it = signed_in(url, "9001")
    r = it.post("/admin/staff/1001/reset-password")
    assert r.status_code == 200, r.text
    otp = r.json()["one_time_password"]
    app = desk_app_factory(url, 1)
    view = app.signin_view
    pump_until(app.root, lambda: app.signin.server_ok, what="server check")
    assert not view.new_entry.winfo_ismapped()
    view.staff_entry.insert(0, "1001")
    view.password_entry.insert(0, otp)
    app.root.event_generate("<Return>", when="tail")
    pump_until(app.root, lambda: view.new_entry.winfo_ismapped(), what="the new-password fields")
    assert app.desk_view is None
    assert "新密码" in view.error_label.cget("text")
    assert app.root.focus_get() is view.new_entry._entry
    shot_both(app, "signin_new_password")
    # Too short, then two different ones: refused on the spot, nothing sent.
    view.new_entry.insert(0, "short")
    view.confirm_entry.insert(0, "short")
    app.root.event_generate("<Return>", when="tail")
    pump(app.root, 0.2)
    assert "8" in view.error_label.cget("text") and app.desk_view is None
    view.new_entry.delete(0, "end")
    view.new_entry.insert(0, "window-one-2026")
    view.confirm_entry.delete(0, "end")
    view.confirm_entry.insert(0, "window-one-2062")
    app.root.event_generate("<Return>", when="tail")
    pump(app.root, 0.2)
    assert "两次" in view.error_label.cget("text") and app.desk_view is None
    view.confirm_entry.delete(0, "end")
    view.confirm_entry.insert(0, "window-one-2026")
    app.root.event_generate("<Return>", when="tail")
    pump_until(app.root, lambda: app.desk_view is not None, what="the desk with the new password")
    # The one-time password is spent; the new one works for the next sign-in.
    assert Api(url).post("/auth/login", json={"staff_no": "1001", "password": otp}).status_code == 401
    fresh = Api(url).post("/auth/login", json={"staff_no": "1001", "password": "window-one-2026"})
    assert fresh.status_code == 200, fresh.text


def test_a_refused_server_address_is_said_on_the_sign_in_screen(desk_app_factory: Any,
                                                                 tmp_path: Any) -> None:
    """IT typed http://<server> into the machine config: the desk refuses it (passwords would
    cross the LAN in clear) and, instead of only "server: not reachable", the clerk reads why
    and whom to ask, in their language, without paths or config keys."""
    from counter_app.config import clerk_warnings, load_settings

    machine = tmp_path / "machine.toml"
    machine.write_text('server_url = "http://10.1.2.3:8000"\nwindow_no = 1\n'
                       'idle_lock_minutes = 0\nlanguage = "zh"\nwindow_no_typo = 3\n'
                       f'data_dir = "{tmp_path / "data"}"\nlog_dir = "{tmp_path / "logs"}"\n',
                       encoding="utf-8")
    loaded = load_settings(machine, tmp_path / "prefs.toml")
    assert loaded.refused_server_url == "http://10.1.2.3:8000"
    app = desk_app_factory("", settings=loaded.settings, warnings=clerk_warnings(loaded))
    view = app.signin_view
    pump(app.root, 0.2)
    assert view.setup_label.winfo_ismapped()
    text = view.setup_label.cget("text")
    assert "明文http" in text and "信息科" in text and "1项无效" in text
    assert "machine.toml" not in text and "allow_insecure_http" not in text
    i18n.set_language("en")
    pump(app.root, 0.1)
    assert "plain http" in view.setup_label.cget("text")
    i18n.set_language("zh")
    shot_both(app, "signin_setup_problem")


def test_call_next_recall_and_no_show_after_the_limit(desk_app_factory: Any, fresh_hall_server: Any) -> None:
    url = fresh_hall_server.url
    app = open_desk(desk_app_factory, url)
    pump(app.root, 0.2)
    shot_both(app, "desk_idle")
    first = issue(url)
    issue(url, priority="green")
    pump_until(app.root, lambda: len(app.desk_view.queue.row_ids()) == 2, what="two rows in the list")
    # Green channel goes first.
    press(app, "F1")
    pump_until(app.root, lambda: desk_state(app) == "calling", what="calling")
    green = number_shown(app)
    assert green != first["number"]
    assert app.desk_view.badge_label.winfo_ismapped()
    assert app.desk_view.badge_label.cget("text").strip() == "绿色通道"
    shot_both(app, "desk_calling_green")
    # Buttons of other states are off while calling: a second F1 does nothing.
    assert app.desk_view.buttons["call_next"].cget("state") == "disabled"
    press(app, "F1")
    pump(app.root, 0.2)
    assert number_shown(app) == green
    # No-show too early: a calm inline message from the server's rule, nothing changes.
    press(app, "F3")
    pump_until(app.root, lambda: app.desk.s.busy is None and notice(app), what="the no-show refusal")
    assert desk_state(app) == "calling"
    assert getattr(app.desk_view, "notice_kind", "") == "warn"  # a rule, not a failure
    assert "还不能过号" in notice(app) and green in notice(app)
    for n in (1, 2):
        press(app, "F2")
        pump_until(app.root, lambda n=n: f"已重呼 {n}" in app.desk_view.detail_label.cget("text"),
                   what=f"recall {n} shown")
    press(app, "F3")
    pump_until(app.root, lambda: desk_state(app) == "idle", what="idle after the no-show")
    assert number_shown(app) == ""
    # The no-show left only the normal ticket waiting, in the list on screen.
    pump_until(app.root, lambda: app.desk_view.queue.row_ids() == [str(first["id"])],
               what="only the first ticket left in the list")
    assert app.desk_view.queue.row_values(str(first["id"]))[0] == first["number"]


def test_start_change_matter_by_pinyin_checklist_and_complete(desk_app_factory: Any, fresh_hall_server: Any) -> None:
    url = fresh_hall_server.url
    app = open_desk(desk_app_factory, url)
    pump_until(app.root, lambda: app.core.catalog is not None and app.core.catalog.count() > 100,
               what="the catalog synced")
    issue(url)
    press(app, "F1")
    pump_until(app.root, lambda: desk_state(app) == "calling", what="calling")
    press(app, "F7")
    pump_until(app.root, lambda: desk_state(app) == "serving", what="serving")
    press(app, "F8")
    d = dialog(app)
    type_text(d.entry, "gtgshsl")
    # The answer to the last keystroke wins (answers to older keystrokes are dropped).
    pump_until(app.root, lambda: d.listbox.size() > 0 and "个体工商户设立登记" in d.listbox.get(0),
               what="个体工商户设立登记 first in the results")
    shot_both(app, "dialog_matter_search")
    key_in(d.entry, "Return")
    pump_until(app.root, lambda: dialog_closed(app), what="the dialog closed")
    pump_until(app.root, lambda: app.desk.s.case is not None and app.desk.s.case.matter_code == "370191-A-0001",
               what="the matter set on the case")
    tree = app.desk_view.checklist.tree
    pump_until(app.root, lambda: len(tree.get_children()) == 6, what="six materials")
    assert "个体工商户设立登记" in app.desk_view.matter_label.cget("text")
    # Not checked yet: neutral (red is for a required item marked missing), said in words.
    first = tree.get_children()[0]
    assert "alarm" not in tree.item(first, "tags")
    assert tree.item(first, "values")[2] == "未核对"
    tree.selection_set(first)
    key_in(tree, "Key-1")
    pump_until(app.root, lambda: tree.exists(first) and tree.item(first, "values")[2] == "已收取",
               what="the material marked received")
    assert "alarm" not in tree.item(first, "tags")
    shot_both(app, "desk_serving_checklist")
    press(app, "F9")
    d = dialog(app)
    outcomes = [d.listbox.get(i) for i in range(d.listbox.size())]
    d.listbox.focus_force()
    from ui.views.common import select_index

    select_index(d.listbox, outcomes.index("不予受理（需填理由）"))
    key_in(d.listbox, "Return")
    assert "理由" in d.error_label.cget("text")  # rejected needs a reason: said in the dialog
    assert not dialog_closed(app)
    shot_both(app, "dialog_complete_reason_needed")
    select_index(d.listbox, 0)  # completed on the spot
    # Five required materials are still unchecked: the completion guard asks for a reason.
    assert d.override_entry is not None
    d.override_entry.insert(0, "窗口负责人同意")
    key_in(d.listbox, "Return")
    pump_until(app.root, lambda: desk_state(app) == "idle", what="idle after completion")
    pump_until(app.root, lambda: app.desk_view.figures.values["served"].cget("text") == "1",
               what="served figure updated")


def test_transfer_suspend_resume_and_pause_with_reason(desk_app_factory: Any, fresh_hall_server: Any) -> None:
    url = fresh_hall_server.url
    app = open_desk(desk_app_factory, url)
    a = issue(url)
    b = issue(url)
    pump_until(app.root, lambda: len(app.desk_view.queue.row_ids()) == 2, what="two rows")
    press(app, "F1")
    pump_until(app.root, lambda: number_shown(app) == a["number"], what="first called")
    press(app, "F4")
    d = dialog(app)
    assert d.listbox.get(0).startswith("2号窗口")
    shot_both(app, "dialog_transfer")
    key_in(d.listbox, "Return")  # window 2, keep priority
    pump_until(app.root, lambda: desk_state(app) == "idle", what="idle after transfer")
    sup = signed_in(url, "8001")
    moved = sup.get(f"/tickets/{a['id']}").json()
    assert moved["state"] == "waiting" and moved["target_window_no"] == 2
    press(app, "F1")
    pump_until(app.root, lambda: number_shown(app) == b["number"], what="second called")
    press(app, "F7")
    pump_until(app.root, lambda: desk_state(app) == "serving", what="serving")
    press(app, "F5")  # asks why first (issue 16 item 5); an empty reason is refused
    d = dialog(app)
    assert desk_state(app) == "serving"
    key_in(d.entry, "Return")
    assert d.error_label.cget("text") and not dialog_closed(app)
    d.entry.insert(0, "回去取营业场所租赁合同原件")
    shot_both(app, "desk_dialog_suspend")
    key_in(d.entry, "Return")
    pump_until(app.root, lambda: desk_state(app) == "idle", what="idle after suspend")
    q = app.desk_view.queue
    pump_until(app.root, lambda: str(b["id"]) in q.row_ids() and "suspended" in q.tree.item(str(b["id"]), "tags"),
               what="the suspended row listed")
    q.tree.selection_set(str(b["id"]))
    app.root.update()
    shot_both(app, "desk_suspended_in_list")
    assert q.resume_button.cget("state") == "normal"
    q.resume_button.invoke()
    pump_until(app.root, lambda: desk_state(app) == "serving" and number_shown(app) == b["number"],
               what="resumed")
    press(app, "F9")
    d = dialog(app)
    key_in(d.listbox, "Return")
    pump_until(app.root, lambda: desk_state(app) == "idle", what="idle")
    press(app, "F6")
    d = dialog(app)
    assert d.listbox.size() == 8
    key_in(d.listbox, "Down")
    shot_both(app, "dialog_pause")
    key_in(d.listbox, "Escape")
    pump_until(app.root, lambda: dialog_closed(app), what="pause cancelled")
    assert desk_state(app) == "idle"
    press(app, "F6")
    d = dialog(app)
    key_in(d.listbox, "Return")
    pump_until(app.root, lambda: desk_state(app) == "paused", what="paused")
    assert app.desk_view.buttons["pause"].cget("text").startswith("恢复")
    assert sup.get("/windows/1").json()["pause_reason_code"] == "break"
    # The panel says why, for how long, and how to resume.
    pump_until(app.root, lambda: "按 F6 恢复" in app.desk_view.detail_label.cget("text"), what="paused panel")
    assert app.desk_view.matter_label.cget("text").startswith("窗口暂停服务：")
    shot_both(app, "desk_paused")
    press(app, "F6")
    pump_until(app.root, lambda: desk_state(app) == "idle", what="open again")


def test_language_switch_relabels_open_views(desk_app_factory: Any, fresh_hall_server: Any) -> None:
    app = open_desk(desk_app_factory, fresh_hall_server.url)
    v = app.desk_view
    assert v.buttons["call_next"].cget("text") == "叫号\nF1"
    v.lang_button.invoke()
    app.root.update()
    assert i18n.language() == "en"
    assert v.buttons["call_next"].cget("text") == "Call next\nF1"
    assert v.queue.tree.heading("number", "text") == "Ticket"
    assert v.lang_button.cget("text") == "中文"
    assert "Window 1" in v.who_label.cget("text")
    assert v.status.connection.cget("text").startswith("Server")
    assert app.root.title().startswith("Counter desk")
    v.lang_button.invoke()
    app.root.update()
    assert v.buttons["call_next"].cget("text") == "叫号\nF1"


def test_new_ticket_in_empty_queue_alerts_and_lock_screen(desk_app_factory: Any, fresh_hall_server: Any) -> None:
    app = open_desk(desk_app_factory, fresh_hall_server.url)
    v = app.desk_view
    assert v.alerts == 0
    t = issue(fresh_hall_server.url)
    pump_until(app.root, lambda: v.alerts >= 1, what="the new-ticket alert")
    assert t["number"] in notice(app)
    press(app, "Control-l")
    pump_until(app.root, lambda: v.locked and v.lock_screen.winfo_ismapped(), what="the lock screen")
    press(app, "F1")  # hotkeys do nothing while locked
    pump(app.root, 0.2)
    assert desk_state(app) == "idle"
    shot_both(app, "lock_screen")
    v.lock_screen.password_entry.insert(0, "nope")
    v.lock_screen.unlock_button.invoke()
    pump_until(app.root, lambda: v.lock_screen.error_label.cget("text"), what="wrong password said")
    v.lock_screen.password_entry.insert(0, PASSWORD)
    v.lock_screen.unlock_button.invoke()
    pump_until(app.root, lambda: not v.locked, what="unlocked")
    press(app, "F1")
    pump_until(app.root, lambda: number_shown(app) == t["number"], what="called after unlock")
