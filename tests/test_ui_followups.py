"""The desk's follow-up dialog (Ctrl+G): the presenter's lines (pure), the typed client call
against the real server, and the real Tk dialog at window 2 of the demo hall with its seeded
follow-ups and appeals (zh and en screenshots)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from api_client.models import AppealItem, FollowupItem, WindowFollowups
from ui import i18n
from ui.presenters.followups import FollowupsPresenter, Line, lines


def _fu(id_: int, state: str, due: str, overdue: bool, assignee: str | None = None) -> FollowupItem:
    return FollowupItem(id=id_, rating_id=f"r{id_}", case_no=f"C{id_}", level="dissatisfied", comment="太慢",
                        state=state, due_day=date.fromisoformat(due), overdue=overdue, assignee=assignee)


DATA = WindowFollowups(
    window_no=2, today=date(2026, 12, 3),
    followups=(_fu(1, "assigned", "2026-12-08", False, "1002"), _fu(2, "open", "2026-11-20", True),
               _fu(3, "answered", "2026-12-04", False, "1005")),
    appeals=(AppealItem(1, "r9", "C9", "rejected", "不在等候区", "系统记录为准", "1002"),
             AppealItem(2, "r8", "C8", "pending", "误触", "", "1002")))


def test_lines_put_overdue_first_and_mark_the_clerks_own() -> None:
    i18n.set_language("zh")
    fus, aps = lines(DATA, "1002")
    assert [f.text.split(" · ")[0] for f in fus] == ["C2", "C3", "C1"]  # overdue, then by deadline
    assert fus[0].urgent and "已超期" in fus[0].text and "待分派" in fus[0].text
    assert fus[2].mine and not fus[2].urgent and "由您承办" in fus[2].text and "期限 2026-12-08" in fus[2].text
    assert not fus[1].urgent and not fus[1].mine and "“太慢”" in fus[1].text
    assert aps[0].text.startswith("C8 · 申诉待裁定") and "申诉驳回" in aps[1].text and "系统记录为准" in aps[1].text
    i18n.set_language("en")
    fus, aps = lines(DATA, "1002")
    assert "OVERDUE" in fus[0].text and "assigned to you" in fus[2].text and "appeal pending" in aps[0].text
    i18n.set_language("zh")


class SyncRunner:
    def run(self, op: Callable[[], Any], on_success: Any = None, on_error: Any = None, *, kind: str = "") -> int:
        try:
            v = op()
        except BaseException as e:  # noqa: BLE001
            on_error(e)
        else:
            on_success(v)
        return 0


class View:
    def __init__(self) -> None:
        self.busy: list[bool] = []
        self.shown: tuple[list[Line], list[Line]] | None = None
        self.error = ""

    def show_busy(self, busy: bool) -> None:
        self.busy.append(busy)

    def show_error(self, text: str) -> None:
        self.error = text

    def show_lines(self, followups: list[Line], appeals: list[Line]) -> None:
        self.shown = (followups, appeals)


def test_presenter_shows_lines_or_the_error() -> None:
    v = View()
    FollowupsPresenter(v, SyncRunner(), lambda: DATA, "1002", str).refresh()
    assert v.busy == [True, False] and v.shown is not None and len(v.shown[0]) == 3
    v2 = View()

    def boom() -> WindowFollowups:
        raise RuntimeError("offline")

    FollowupsPresenter(v2, SyncRunner(), boom, "1002", lambda e: f"无法连接：{e}").refresh()
    assert v2.error == "无法连接：offline" and v2.shown is None


def test_client_window_followups_is_typed(fresh_hall_server: Any) -> None:
    from api_client import HallClient
    from hall_server.db import Store
    from hall_server.followup_demo import seed_followups_demo

    store = Store(fresh_hall_server.db_url)
    try:
        seed_followups_demo(store)
    finally:
        store.close()
    with HallClient(fresh_hall_server.url) as c:
        c.login("1002", "demo1234", window_no=2)
        data = c.window_followups(2)
    assert isinstance(data, WindowFollowups) and data.window_no == 2
    assert {f.state for f in data.followups} == {"assigned", "answered"}
    assert sorted(a.state for a in data.appeals) == ["pending", "rejected"]


@pytest.mark.gui
def test_ctrl_g_opens_the_windows_follow_ups(desk_app_factory: Any, fresh_hall_server: Any) -> None:
    from hall_server.db import Store
    from hall_server.followup_demo import seed_followups_demo
    from tests.support.gui_fixtures import pump_until, screenshot
    from tests.test_ui_desk import dialog, open_desk

    store = Store(fresh_hall_server.db_url)
    try:
        seed_followups_demo(store)
    finally:
        store.close()
    app = open_desk(desk_app_factory, fresh_hall_server.url, window_no=2, staff="1002")
    app.root.event_generate("<Control-g>", when="tail")
    d = dialog(app)

    def texts(box: Any) -> list[str]:
        return [w.cget("text") for w in box.winfo_children()]

    pump_until(app.root, lambda: len(texts(d.fu_box)) == 2 and len(texts(d.ap_box)) == 2, what="the lines")
    assert any("由您承办" in x for x in texts(d.fu_box)) and any("申诉驳回" in x for x in texts(d.ap_box))
    screenshot(d, "desk_followups_zh")
    i18n.set_language("en")
    d.ok_button.invoke()
    pump_until(app.root, lambda: any("assigned to you" in x for x in texts(d.fu_box)), what="en lines")
    screenshot(d, "desk_followups_en")
    i18n.set_language("zh")
    d.cancel()
