"""The applicant presenter's decisions with fakes (pure logic; the real window, reader and server
are in tests/test_ui_applicant.py): F11 with the card taken away mid-read says so and points to
manual entry; no reader opens manual entry; a refused entry stays in the dialog; nothing is
offered when the server's rule says no; the reveal needs a purpose before any request; the
green channel is not offered twice for a ticket already green; find checks the date's shape."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace as NS
from typing import Any

from api_client.models import CaseApplicant
from counter_app.applicant import validate_applicant
from counter_app.applicant_desk import CardRead
from counter_app.idcard.base import CardReadError
from tests.test_ui_presenters import Runner, View
from ui import i18n
from ui.presenters.applicant import ApplicantPresenter

TODAY = date(2026, 12, 3)
ELDER = validate_applicant(name="张三明", doc_type="resident_id", doc_number="11010519491231002X",
                           today=TODAY, source="card")


def shown(green: bool) -> CaseApplicant:
    return CaseApplicant(case_id=5, masked=True, name="张*明", doc_type="resident_id",
                         doc_number="1101**********002X", phone="", address="", company_name="",
                         credit_code="", disability_certificate=False, source="card",
                         green_channel_suggested=green)


class Service:
    def __init__(self, reader: bool = True, fail: BaseException | None = None,
                 green: bool = True) -> None:
        self.has_reader, self.fail, self.green = reader, fail, green
        self.recorded: list[Any] = []
        self.revealed: list[str] = []
        self.found: list[dict[str, str]] = []

    def read_card(self) -> CardRead:
        if self.fail is not None:
            raise self.fail
        return CardRead(ELDER, False, True)

    def record(self, case_id: int, who: Any) -> CaseApplicant:
        self.recorded.append((case_id, who))
        return shown(self.green)

    def shown(self, case_id: int) -> CaseApplicant:
        return shown(self.green)

    def reveal(self, case_id: int, purpose: str) -> CaseApplicant:
        self.revealed.append(purpose)
        return shown(self.green)

    def find(self, **criteria: str) -> list[Any]:
        self.found.append(criteria)
        return []


def make(svc: Service, priority: str = "normal") -> tuple[ApplicantPresenter, View, list[str]]:
    notices: list[str] = []
    desk = NS(s=NS(case=NS(id=5, case_no="GXQ-1", ticket_id=9),
                   ticket=NS(number="A001", category="A", priority=priority)),
              core=NS(applicants=svc, desk=NS()), runner=Runner(True),
              notice=lambda text, kind="info": notices.append(text()))
    view = View()
    return ApplicantPresenter(desk, view, today=lambda: TODAY), view, notices  # type: ignore[arg-type]


def names(view: View) -> list[str]:
    return [n for n, _a in view.calls]


def test_card_taken_away_mid_read_is_said_and_points_to_manual_entry() -> None:
    i18n.set_language("zh")
    p, view, notices = make(Service(fail=CardReadError()))
    p.read()
    assert "请重新放置证件" in notices[-1] and "手工录入" in notices[-1]
    assert not p.busy and "ask_green_channel" not in names(view)


def test_no_reader_opens_manual_entry_and_a_refused_entry_stays_open() -> None:
    svc = Service(reader=False)
    p, view, _n = make(svc)
    p.read()
    assert "ask_manual_entry" in names(view)
    p.submit_manual({"name": "王五", "doc_type": "resident_id", "doc_number": "110105194912310021"})
    # The focus goes back to the number entry (the rules call the field "id_number").
    assert [a[0] for n, a in view.calls if n == "manual_entry_error"] == ["doc_number"]
    assert svc.recorded == [] and "close_manual_entry" not in names(view)


def test_green_channel_only_when_the_server_says_so_and_not_twice() -> None:
    p, view, _n = make(Service(green=False))
    p.read()
    assert "ask_green_channel" not in names(view)  # 76 years old, but the hall's rule said no
    p, view, _n = make(Service(green=True), priority="green")
    p.read()
    assert "ask_green_channel" not in names(view)  # already in the green channel
    p, view, _n = make(Service(green=True))
    p.read()
    assert "ask_green_channel" in names(view)


def test_reveal_needs_a_purpose_before_any_request_and_find_checks_the_date() -> None:
    svc = Service()
    p, view, _n = make(svc)
    p.read()
    p.reveal()
    on_purpose = view.pending["ask_reveal"]
    on_purpose(" ")
    assert svc.revealed == [] and "reveal_error" in names(view)
    on_purpose("核对身份")
    assert svc.revealed == ["核对身份"] and "show_revealed" in names(view)
    p.find("day", "3/12/2026")
    assert svc.found == []
    p.find("day", "2026-12-03")
    assert svc.found == [{"day": "2026-12-03"}]
