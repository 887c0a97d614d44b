"""Pad presenters without Tk: what the desk may do while a rating is open, what the status bar
says, and the pairing dialog's countdown. Fakes stand in for the runner and the service only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from counter_app.errors import IllegalActionError
from counter_app.events import RatingNotGiven, RatingStored
from ui import i18n
from ui.presenters.pad import PadPresenter, PairingPresenter, transport_kind


class Runner:
    """Runs the op at once and calls back (the real runner does this across threads)."""

    def run(self, op: Callable[[], Any], on_success: Any = None, on_error: Any = None,
            *, kind: str = "http") -> int:
        try:
            result = op()
        except Exception as exc:  # noqa: BLE001
            if on_error:
                on_error(exc)
        else:
            if on_success:
                on_success(result)
        return 0


@dataclass
class Case:
    id: int


class Service:
    state = "paired"
    rating_open = False

    def __init__(self, fail: Exception | None = None) -> None:
        self.asked: list[int] = []
        self.fail = fail

    def request_rating(self, case: Case) -> str:
        if self.fail:
            raise self.fail
        self.asked.append(case.id)
        return "request"


def make(service: Any) -> tuple[PadPresenter, list[str], list[int]]:
    notices: list[str] = []
    changes: list[int] = []
    p = PadPresenter(Runner(), service, on_change=lambda: changes.append(1),
                     notice=lambda text, _kind: notices.append(text()),
                     error_text=lambda e: str(getattr(e, "message_en", e)))
    return p, notices, changes


def test_transport_names() -> None:
    assert [transport_kind(x) for x in ("web", "LAN", "second_screen", "serial", "none", "", None)] \
        == ["lan", "lan", "second_screen", "serial", "none", "none", "none"]


def test_rating_locks_the_desk_and_the_level_is_never_shown() -> None:
    i18n.set_language("zh")
    service = Service()
    p, notices, _changes = make(service)
    assert p.status() == ("评价器：已配对", True)
    assert p.can_evaluate(Case(3)) and not p.can_evaluate(None)
    p.evaluate(Case(3))
    assert service.asked == [3] and p.locked and not p.can_evaluate(Case(3))
    assert p.status()[0] == "评价器：评价进行中"
    p.evaluate(Case(3))  # a second F10 while open asks nothing
    assert service.asked == [3]
    p.on_rating_stored(RatingStored("r-1", 3))
    assert not p.locked and not p.can_evaluate(Case(3))  # one rating per service
    assert notices[-1] == "已收到评价。"
    assert p.can_evaluate(Case(4))
    p.on_rating_requested(None)
    p.on_rating_not_given(RatingNotGiven(4))
    assert "稍后评价" in notices[-1] and not p.locked


def test_no_pad_configured_and_an_already_rated_case() -> None:
    i18n.set_language("en")
    try:
        p, _n, _c = make(None)
        assert p.status() == ("Pad: not configured", False) and not p.can_evaluate(Case(1))
        err = IllegalActionError(message_zh="已评价", message_en="Already rated", code="case_already_rated")
        p, notices, _c = make(Service(fail=err))
        p.evaluate(Case(9))
        assert notices == ["Already rated"] and not p.locked and not p.can_evaluate(Case(9))
        p.on_pad_state(type("E", (), {"state": "offline"})())
        assert p.status() == ("Pad: OFFLINE", False)
    finally:
        i18n.set_language("zh")


class PairView:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def show_busy(self, busy: bool) -> None:
        self.calls.append(("busy", busy))

    def show_error(self, text: str) -> None:
        self.calls.append(("error", text))

    def show_status(self, lines: list[str], good: bool) -> None:
        self.calls.append(("status", lines, good))


@dataclass
class Pad:
    pad_id: str
    paired_at: datetime
    paired_by: str
    last_seen_at: datetime | None


def test_pad_dialog_shows_status_and_takes_no_password() -> None:
    i18n.set_language("en")
    try:
        _pad_dialog_checks()
    finally:
        i18n.set_language("zh")


def _pad_dialog_checks() -> None:
    view = PairView()
    pads: list[Any] = [None]
    p = PairingPresenter(view, Runner(), lambda: pads[0], server_url="https://hall.example/",
                         error_text=str)
    p.refresh()
    lines, good = view.calls[-1][1], view.calls[-1][2]
    assert not good and "No pad is paired at this window." in lines
    assert any("https://hall.example/pair/" in line for line in lines)
    pads[0] = Pad("pad_abcdef12", datetime(2026, 12, 1, 9, 0, tzinfo=UTC), "8001",
                  datetime(2026, 12, 3, 10, 0, 5, tzinfo=UTC))
    p.refresh()
    lines, good = view.calls[-1][1], view.calls[-1][2]
    assert good and any("pad_abcdef12" in line and "8001" in line for line in lines)
    assert not hasattr(p, "pair") and not hasattr(p, "unpair")  # no password path at the desk
