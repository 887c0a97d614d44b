"""Presenters and formatting without Tk: what is enabled, what the screen says, what runs.

Fakes here are for pure logic only (a recording view, a runner that runs at once or on demand,
a desk that records calls); the real window against the real server is in test_ui_desk.py.
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace as NS
from typing import Any

import pytest

from counter_app.errors import IllegalActionError, OfflineError
from counter_app.events import ConnectionChanged, DeskChanged, TicketTakenElsewhere
from ui import i18n
from ui.presenters import format as fmt
from ui.presenters.desk import CompleteChoice, DeskPresenter
from ui.presenters.signin import SignInPresenter

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def chinese() -> Any:
    i18n.set_language("zh")
    yield
    i18n.set_language("zh")


class View:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.kw_calls: list[tuple[str, dict[str, Any]]] = []
        self.pending: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any, **kw: Any) -> None:
            self.calls.append((name, args))
            self.kw_calls.append((name, kw))
            if name.startswith("ask_"):
                self.pending[name] = args[-1]

        return record

    def last(self, name: str) -> tuple[Any, ...]:
        return [a for n, a in self.calls if n == name][-1]


class Runner:
    """Runs ops when ``flush`` is called, like a worker that has not answered yet."""

    def __init__(self, immediate: bool = True) -> None:
        self.immediate = immediate
        self.queued: list[tuple[Any, Any, Any]] = []
        self.ran = 0

    def run(self, op: Any, on_success: Any = None, on_error: Any = None, *, kind: str = "http") -> int:
        self.queued.append((op, on_success, on_error))
        if self.immediate:
            self.flush()
        return len(self.queued)

    def flush(self) -> None:
        while self.queued:
            op, ok, fail = self.queued.pop(0)
            self.ran += 1
            try:
                result = op()
            except Exception as exc:  # noqa: BLE001
                if fail:
                    fail(exc)
            else:
                if ok:
                    ok(result)


def ticket(number: str = "A001", priority: str = "normal", state: str = "called", recalls: int = 0,
           tid: int = 1, **kw: Any) -> Any:
    return NS(id=tid, number=number, category="A", priority=priority, state=state, recalls=recalls,
              queued_at=NOW - timedelta(minutes=3, seconds=7), matter_code=kw.get("matter_code"),
              target_window_no=kw.get("target_window_no"), started_at=kw.get("started_at"))


class Desk:
    def __init__(self) -> None:
        self.state, self.ticket, self.case = "idle", None, None
        self.window: Any = None
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.fail_with: Exception | None = None

    def _do(self, name: str, *args: Any) -> Any:
        self.calls.append((name, args))
        if self.fail_with:
            raise self.fail_with
        return None

    def call_next(self) -> Any:
        self._do("call_next")
        self.state, self.ticket = "calling", ticket()
        return self.ticket

    def complete(self, outcome: str, note: str = "", reason: str = "") -> Any:
        self._do("complete", outcome, note, reason)
        self.state, self.ticket = "idle", None

    def recall(self) -> Any:
        return self._do("recall")

    def pause(self, code: str) -> Any:
        self._do("pause", code)
        self.state = "paused"

    def resume_window(self) -> Any:
        self._do("resume_window")
        self.state = "idle"


def make(immediate: bool = True) -> tuple[DeskPresenter, View, Runner, Desk, Any]:
    desk = Desk()
    catalog = NS(get=lambda code: None, search=lambda text, limit=50: [NS(code=text)])
    hall = NS(rules=NS(recall_limit=3), windows=[NS(no=1, name_zh="1号窗口", name_en="Window 1"),
                                                   NS(no=2, name_zh="2号窗口", name_en="Window 2")],
              categories=[NS(code="A", name_zh="市场主体登记", name_en="Market entities")],
              pause_reasons=[NS(code="break", name_zh="暂时休息", name_en="Short break")])
    core = NS(desk=desk, catalog=catalog, hall=hall, session=NS(window=NS(no=1)),
              refresh_stats=lambda: None)
    view, runner = View(), Runner(immediate)
    p = DeskPresenter(view, runner, core, clock=lambda: NOW)
    return p, view, runner, desk, core


def test_enabled_actions_follow_the_desk_state() -> None:
    p, *_ = make()
    # F12 (receipt, mailing, reprints of past cases) works while idle too (issue 17)
    assert {a for a, on in p.enabled().items() if on} == {"call_next", "pause", "papers", "lock"}
    p.s.state = "calling"
    on = {a for a, v in p.enabled().items() if v}
    assert {"recall", "no_show", "start", "complete", "transfer"} <= on and "call_next" not in on
    p.s.state = "serving"
    on = {a for a, v in p.enabled().items() if v}
    assert "suspend" in on and "no_show" not in on
    assert not p.enabled()["evaluate"]  # until the pad issue lands


def test_offline_keeps_only_what_works_without_the_server_and_shows_the_banner() -> None:
    p, view, *_ = make()
    p.on_connection_changed(ConnectionChanged("offline", "refused"))
    on = {a for a, v in p.enabled().items() if v}
    assert on == {"lock"}
    assert "仍可使用" in view.last("show_banner")[0]
    p.on_connection_changed(ConnectionChanged("reconnecting", "stream"))
    assert view.last("show_banner") == (None,)
    assert p.enabled()["call_next"]


def test_a_double_press_acts_once_while_the_request_is_in_flight() -> None:
    p, view, runner, desk, _ = make(immediate=False)
    p.trigger("call_next")
    p.trigger("call_next")
    enabled, busy, _label = view.last("show_actions")
    assert busy == "call_next" and not any(enabled.values())
    runner.flush()
    assert [c[0] for c in desk.calls] == ["call_next"]
    assert view.last("show_notice")[0] == "正在呼叫 A001"
    assert p.s.busy is None and p.s.state == "calling"


def test_errors_are_shown_inline_in_the_current_language() -> None:
    p, view, _r, desk, _ = make()
    p.s.state = desk.state = "calling"
    desk.fail_with = IllegalActionError(message_zh="还不能过号", message_en="Too early for a no-show")
    p.trigger("recall")
    assert view.last("show_notice") == ("还不能过号", "error")
    i18n.set_language("en")
    p.trigger("recall")
    assert view.last("show_notice") == ("Too early for a no-show", "error")
    desk.fail_with = OfflineError()
    p.trigger("recall")
    assert "server" in view.last("show_notice")[0].lower()


def test_ticket_taken_elsewhere_is_a_calm_inline_message() -> None:
    p, view, *_ = make()
    p.on_ticket_taken(TicketTakenElsewhere("A007"))
    text, kind = view.last("show_notice")
    assert "A007" in text and kind == "info"
    assert not [n for n, _a in view.calls if n.startswith("ask_")]


def test_complete_asks_for_the_outcome_then_calls_the_desk() -> None:
    p, view, _r, desk, _ = make()
    p.on_desk_changed(DeskChanged("serving", ticket(state="serving"), None))
    p.trigger("complete")
    outcomes = view.last("ask_complete")[0]
    assert [o for o, _l in outcomes] == list(fmt.OUTCOMES)
    assert dict(outcomes)["rejected"] == "不予受理（需填理由）"
    view.pending["ask_complete"](CompleteChoice("rejected", "", "材料不符合法定形式"))
    assert desk.calls[-1] == ("complete", ("rejected", "", "材料不符合法定形式"))
    assert p.s.state == "idle"


def test_pause_offers_the_servers_reasons_and_resume_needs_none() -> None:
    p, view, _r, desk, _ = make()
    p.trigger("pause")
    assert view.last("ask_pause")[0] == [("break", "暂时休息")]
    view.pending["ask_pause"]("break")
    assert desk.calls[-1] == ("pause", ("break",))
    assert view.last("show_actions")[2] == "恢复"
    p.trigger("pause")
    assert desk.calls[-1] == ("resume_window", ())


def test_transfer_lists_other_windows_and_categories() -> None:
    p, view, _r, desk, _ = make()
    p.s.state = desk.state = "calling"
    p.trigger("transfer")
    windows, categories, _cb = view.last("ask_transfer")
    assert windows == [(2, "2号窗口")]
    assert categories == [("A", "A · 市场主体登记")]


def test_stale_search_answers_are_dropped() -> None:
    p, _v, runner, *_ = make(immediate=False)
    got: list[Any] = []
    p.search_matters("g", got.append)
    p.search_matters("gt", got.append)
    runner.flush()
    assert [[m.code for m in r] for r in got] == [["gt"]]


def test_ticket_card_queue_rows_checklist_and_figures_text() -> None:
    card = fmt.ticket_card(ticket(priority="green", recalls=2), None, NOW, recall_limit=3)
    assert (card.number, card.priority_label) == ("A001", "绿色通道")
    assert card.waited == "已等候 3:07" and card.recalls == "已重呼 2 / 3 次"
    snap = NS(waiting=[ticket("A002", tid=2), ticket("A003", tid=3, target_window_no=1)],
              suspended=[ticket("A001", tid=1, state="suspended")])
    rows = fmt.queue_rows(snap, NOW)
    assert [(r.number, r.suspended) for r in rows] == [("A002", False), ("A003", False), ("A001", True)]
    assert rows[1].note == "指定本窗口" and rows[2].note.startswith("已挂起")
    item = lambda i, req: NS(id=i, name_zh=f"材料{i}", name_en=f"Item {i}", requirement=req, e_licence=False)  # noqa: E731
    matter = NS(checklist=[item("1", "required"), item("2", "required"), item("3", "optional")])
    case = NS(materials=[NS(item_id="1", status="received", note=""), NS(item_id="2", status="missing", note=""),
                         NS(item_id="3", status="missing", note="")])
    rows2 = fmt.checklist_rows(matter, case)
    assert [r.alarm for r in rows2] == [False, True, False]
    # Unchecked is neutral for every item, required or not (issue 16 item 3).
    rows3 = fmt.checklist_rows(matter, NS(materials=[]))
    assert [(r.alarm, r.status_label) for r in rows3] == [(False, "未核对")] * 3
    assert rows2[1].status_label == "必交，缺少！" and rows2[2].status_label == "缺少"
    f = fmt.figures(NS(served=12, avg_handle_seconds=425.0, no_shows=1, satisfaction_rate=0.9876, on_time_rate=None, on_the_spot_rate=1.0,
                       satisfaction_rate_signed=None, tickets_per_hour=[0] * 24, ratings_by_level={"satisfied": 3}))
    assert (f.served, f.avg_handle, f.satisfaction) == ("12", "7:05", "98.8%")
    assert ("satisfied", "满意", 3) in f.by_level
    assert fmt.figures(None).satisfaction == "—"


def test_sign_in_presenter_checks_input_and_reports_errors() -> None:
    view, runner = View(), Runner()
    signed: list[Any] = []

    def sign_in(staff: str, pw: str) -> Any:
        if pw != "demo1234":
            raise IllegalActionError(message_zh="工号或密码错误", message_en="Wrong staff number or password")
        return NS(staff=NS(staff_no=staff))

    core = NS(session=NS(sign_in=sign_in), client=NS(health=lambda: NS(status="ok")), warnings=[])
    p = SignInPresenter(view, runner, core, 3, signed.append)
    p.render()
    assert view.last("show_window") == ("3 号窗口",)
    p.submit("", "")
    assert view.last("show_error") == ("请输入工号和密码。",)
    p.submit("1001", "bad")
    assert view.last("show_error") == ("工号或密码错误",) and not signed
    p.submit(" 1001 ", "demo1234")
    assert signed and signed[0].staff.staff_no == "1001"


def test_presenters_import_no_tk() -> None:
    root = Path(__file__).resolve().parents[1] / "ui" / "presenters"
    for f in root.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] in ("tkinter", "customtkinter") for n in names), f


def test_language_switch_calls_listeners_and_unsubscribes() -> None:
    seen: list[str] = []
    before = i18n.listener_count()
    unsubscribe = i18n.on_change(seen.append)
    i18n.set_language("en")
    assert i18n._("Call next") == "Call next" and seen == ["en"]
    i18n.set_language("zh")
    assert i18n._("Call next") == "叫号"
    unsubscribe()
    assert i18n.listener_count() == before
    with pytest.raises(ValueError):
        i18n.set_language("fr")


def test_messages_are_reworded_after_a_language_switch() -> None:
    p, view, _r, desk, _ = make()
    p.trigger("call_next")
    assert view.last("show_notice") == ("正在呼叫 A001", "info")
    i18n.set_language("en")
    p.relabel()
    assert view.last("show_notice") == ("Calling A001", "info")
    sview, runner = View(), Runner()
    core = NS(session=NS(sign_in=lambda s, pw: (_ for _ in ()).throw(
        IllegalActionError(message_zh="工号或密码错误", message_en="Wrong staff number or password"))), client=None,
        warnings=[("本机设置有问题", "This PC has a set-up problem")])
    sp = SignInPresenter(sview, runner, core, 1, lambda me: None)
    sp.submit("1001", "x")
    assert sview.last("show_error") == ("Wrong staff number or password",)
    i18n.set_language("zh")
    sp.render()
    assert sview.last("show_error") == ("工号或密码错误",)
    assert sview.last("show_setup_problems") == (["本机设置有问题"],)


def test_normal_priority_is_named_and_a_ticket_without_matter_shows_its_category() -> None:
    snap = NS(waiting=[ticket("A002", tid=2), ticket("A003", tid=3, priority="green")], suspended=[])
    assert [r.priority_label for r in fmt.queue_rows(snap, NOW)] == ["普通", "绿色通道"]
    card = fmt.ticket_card(ticket(), None, NOW, 3, NS(code="A", name_zh="市场主体登记", name_en="Market entities"))
    assert card.matter == "A · 市场主体登记 · 尚未选择事项"
    assert card.priority_label == ""  # no badge for a normal ticket
    p, view, runner, desk, core = make()
    desk.state, desk.ticket = "calling", ticket()
    p._sync_from_desk()
    assert "市场主体登记" in view.last("show_ticket")[0].matter


def test_the_matter_is_looked_up_through_the_runner_and_redrawn_when_it_arrives() -> None:
    p, view, runner, desk, core = make(immediate=False)
    looked: list[str] = []
    matter = NS(code="M1", name_zh="事项一", name_en="Matter one", checklist=[], time_limit_days=0, instant=False,
                cross_region=False)
    core.catalog = NS(get=lambda code: looked.append(code) or matter)
    desk.state, desk.ticket = "calling", ticket(matter_code="M1")
    p._sync_from_desk()
    assert looked == []  # not on this (the UI) thread
    assert view.last("show_ticket")[0].matter == "M1"
    runner.flush()
    assert looked == ["M1"]
    assert view.last("show_ticket")[0].matter == "事项一"
    assert view.last("show_checklist")[0] == "事项一"
    p._sync_from_desk()
    runner.flush()
    assert looked == ["M1"]  # cached


def _guarded_case() -> tuple[Any, Any]:
    item = lambda i, req: NS(id=i, name_zh=f"材料{i}", name_en=f"Item {i}", requirement=req,  # noqa: E731
                             e_licence=False, notes_zh="", copies=1, original_required=False)
    matter = NS(code="M1", name_zh="事项", name_en="Matter", time_limit_days=5, instant=False, cross_region=False, checklist=[
        item("1", "required"), item("2", "required"), item("3", "required"), item("4", "optional")])
    case = NS(id=9, case_no="C-9", matter_code="M1", materials=[
        NS(item_id="1", status="received", note=""), NS(item_id="2", status="missing", note="")])
    return matter, case


def test_complete_with_required_materials_missing_is_held_until_a_reason_is_given(caplog: Any) -> None:
    """Issue 16 item 2: 办结 with required materials missing went through silently."""
    p, view, _r, desk, _ = make()
    matter, case = _guarded_case()
    p.s.matter_cache["M1"] = matter
    p.on_desk_changed(DeskChanged("serving", ticket("A023", state="serving", matter_code="M1"), case))
    p.trigger("complete")
    # The dialog is told what is missing (missing and unchecked required items; not optional).
    _outcomes, done = view.last("ask_complete")
    missing = [kw for n, kw in view.kw_calls if n == "ask_complete"][-1]["missing"]
    assert missing == ["材料2", "材料3"]
    # No reason: refused here as well (a view that skipped its own check changes nothing).
    done(CompleteChoice("completed"))
    assert not [c for c in desk.calls if c[0] == "complete"]
    text, kind = view.last("show_notice")
    assert kind == "warn" and "A023" in text and "2" in text
    # The correction notice outcome needs no override.
    done(CompleteChoice("correction"))
    assert desk.calls[-1] == ("complete", ("correction", "", ""))
    # With a reason: goes through, the reason is recorded with the case and logged for IT.
    p.on_desk_changed(DeskChanged("serving", ticket("A023", state="serving", matter_code="M1"), case))
    caplog.set_level("WARNING", logger="ui.presenters.desk")
    done(CompleteChoice("accepted", "note", "", "窗口负责人同意容缺"))
    name, (outcome, note, _reason) = desk.calls[-1]
    assert (name, outcome) == ("complete", "accepted")
    assert note.startswith("note\n") and "窗口负责人同意容缺" in note and "材料2、材料3" in note
    assert any("completion override" in r.getMessage() and "A023" in r.getMessage()
               and "窗口负责人同意容缺" in r.getMessage() for r in caplog.records)


def test_complete_with_every_required_material_in_hand_is_not_held() -> None:
    p, view, _r, desk, _ = make()
    matter, case = _guarded_case()
    case.materials = [NS(item_id=i, status=s, note="") for i, s in
                      (("1", "received"), ("2", "e_licence"), ("3", "accepted_pending"))]
    p.s.matter_cache["M1"] = matter
    p.on_desk_changed(DeskChanged("serving", ticket("A023", state="serving", matter_code="M1"), case))
    p.trigger("complete")
    assert [kw for n, kw in view.kw_calls if n == "ask_complete"][-1]["missing"] == []
    view.pending["ask_complete"](CompleteChoice("completed"))
    assert desk.calls[-1] == ("complete", ("completed", "", ""))


def test_too_early_no_show_says_the_recalls_and_seconds_left() -> None:
    """Issue 16 item 5: the server sends recalls_needed/seconds_left; the desk said neither."""
    p, view, _r, desk, _ = make()
    p.on_desk_changed(DeskChanged("calling", ticket("A031"), None))

    def no_show() -> Any:
        raise IllegalActionError(message_zh="过早", message_en="too early", code="no_show_too_early",
                                 details={"recalls_needed": 2, "seconds_left": 95})

    desk.no_show = no_show  # type: ignore[attr-defined]
    p.trigger("no_show")
    text, kind = view.last("show_notice")
    assert kind == "warn" and "A031" in text and "2" in text and "95" in text


def test_paused_panel_says_why_how_long_and_f6() -> None:
    p, view, _r, desk, core = make()
    desk.window = NS(pause_reason_code="break")
    p.on_desk_changed(DeskChanged("paused", None, None))
    title, detail = view.last("show_paused")
    assert title == "窗口暂停服务：暂时休息"
    assert detail.startswith("已暂停 0:00") and "按 F6 恢复" in detail
    p.clock = lambda: NOW + timedelta(minutes=4, seconds=2)
    p._render_ticket()
    assert view.last("show_paused")[1].startswith("已暂停 4:02")


def test_serving_shows_handling_time_not_waiting_time() -> None:
    t = ticket(state="serving")
    t.started_at = NOW - timedelta(minutes=1, seconds=5)
    assert fmt.ticket_card(t, None, NOW).waited == "已办理 1:05"
    t2 = ticket(state="called")
    t2.started_at = None
    assert fmt.ticket_card(t2, None, NOW).waited == "已等候 3:07"


def test_f5_asks_for_a_reason_before_suspending() -> None:
    """Old code: F5 suspended at once (clerks press F5 by habit to refresh)."""
    p, view, _r, desk, _ = make()
    p.on_desk_changed(DeskChanged("serving", ticket(state="serving"), None))
    desk.suspend = lambda note="": desk._do("suspend", note)  # type: ignore[attr-defined]
    p.trigger("suspend")
    assert not [c for c in desk.calls if c[0] == "suspend"]
    view.pending["ask_suspend"]("回去取身份证")
    assert desk.calls[-1] == ("suspend", ("回去取身份证",))


def _with_pad(state: str) -> tuple[DeskPresenter, View, Desk, list[Any]]:
    p, view, _r, desk, _core = make()
    asked: list[Any] = []
    p.pad = NS(state=state, can_evaluate=lambda case: case is not None, evaluate=asked.append,  # type: ignore[assignment]
               status=lambda: ("评价器：" + state, state == "connected"))
    done = NS(ticket=ticket("A023", state="done"), case=NS(id=5, case_no="C-5", matter_code=None, materials=[]))

    def complete(outcome: str, note: str = "", reason: str = "") -> Any:
        desk._do("complete", outcome, note, reason)
        desk.state, desk.ticket = "idle", None
        return done

    desk.complete = complete  # type: ignore[method-assign]
    desk.last_result = None  # type: ignore[attr-defined]
    p.on_desk_changed(DeskChanged("serving", ticket("A023", state="serving"), NS(id=5, case_no="C-5", matter_code=None, materials=[])))
    return p, view, desk, asked


def test_with_the_pad_offline_f10_is_off_and_says_what_happens_instead() -> None:
    """Issue 16 item 4: with no pad, F10 and the request at completion said '评价进行中' for 60 s."""
    p, view, desk, asked = _with_pad("offline")
    assert p.enabled()["evaluate"] is False
    p.trigger("evaluate")
    text, kind = view.last("show_notice")
    assert kind == "warn" and text.startswith("A023：评价器未连接") and "稍后" in text
    assert asked == []
    p.trigger("complete")
    view.pending["ask_complete"](CompleteChoice("completed"))
    text, _kind = view.last("show_notice")
    assert "A023 办结完成" in text and "评价器未连接" in text and "评价进行中" not in text
    assert asked == []


def test_a_late_rating_message_never_overwrites_a_later_confirmation() -> None:
    p, view, desk, asked = _with_pad("connected")
    assert p.enabled()["evaluate"] is True
    p.trigger("complete")
    view.pending["ask_complete"](CompleteChoice("completed"))
    assert [c.id for c in asked] == [5]
    p.pad_notice(lambda: "评价进行中", "info")
    text = view.last("show_notice")[0]
    assert text.startswith("A023 办结完成") and "A023：评价进行中" in text
    # The clerk calls the next citizen; the rating of A023 arrives afterwards.
    p.trigger("call_next")
    calling = view.last("show_notice")[0]
    assert "A001" in calling
    p.pad_notice(lambda: "已收到评价，谢谢", "info")
    text = view.last("show_notice")[0]
    assert text.startswith(calling) and text.endswith("A023：已收到评价，谢谢")


def test_transfer_confirmation_names_the_ticket_and_where_it_went() -> None:
    p, view, _r, desk, _ = make()
    p.on_desk_changed(DeskChanged("calling", ticket("A023"), None))
    desk.state = "calling"
    desk.transfer = lambda **kw: desk._do("transfer", kw)  # type: ignore[attr-defined]
    p.trigger("transfer")
    from ui.presenters.desk import TransferChoice

    view.pending["ask_transfer"](TransferChoice(to_window_no=2))
    assert view.last("show_notice")[0] == "A023 已转移至 2号窗口"
