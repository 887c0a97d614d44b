"""The applicant on the case at the desk (issue 17): F11 reads the ID card (or opens manual
entry), the case shows the applicant masked (张*明 · 3701**********1234), a reveal asks for the
purpose (the server audits it), and an applicant of the green-channel age or with a disability
certificate is offered the green channel.

Plain Python like the desk presenter: the reader and the server are only reached through the
runner (worker threads); callbacks arrive on the Tk thread. What is shown stays in memory: the
masked record per case, and the full values only inside the reveal dialog while it is open.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

from api_client.models import ApplicantCase, CaseApplicant
from counter_app.applicant import (
    DOC_TYPES,
    Applicant,
    InvalidEntryError,
    age_on,
    validate_applicant,
)
from counter_app.applicant_desk import CardRead
from counter_app.errors import CounterError
from counter_app.printing import CasePapers
from ui.i18n import N_, _, language

if TYPE_CHECKING:
    from ui.presenters.desk import DeskPresenter

log = logging.getLogger(__name__)

#: The desk key that reads the card (shown on its button, bound on the toplevel).
READ_KEY = "F11"
#: The desk key of the receipt, mailing and reprints dialog.
PAPERS_KEY = "F12"
CARRIER_LABELS = {"ems": N_("EMS (China Post)"), "sf": N_("SF Express"), "jd": N_("JD Logistics"),
                  "zto": N_("ZTO Express"), "yto": N_("YTO Express"), "sto": N_("STO Express"),
                  "yunda": N_("Yunda Express"), "other": N_("Other carrier")}


class ApplicantView(Protocol):
    def show_applicant(self, line: str | None, can_reveal: bool) -> None: ...
    def ask_manual_entry(self, doc_types: list[tuple[str, str]],
                         on_submit: Callable[[dict[str, Any]], None]) -> None: ...
    def manual_entry_error(self, field: str, text: str) -> None: ...
    def close_manual_entry(self) -> None: ...
    def ask_reveal(self, on_purpose: Callable[[str], None]) -> None: ...
    def show_revealed(self, rows: list[tuple[str, str]]) -> None: ...
    def reveal_error(self, text: str) -> None: ...
    def ask_green_channel(self, text: str, on_answer: Callable[[bool], None]) -> None: ...
    def ask_papers(self, actions: Any, has_case: bool) -> None: ...
    def papers_hits(self, hits: list[tuple[int, str]]) -> None: ...
    def papers_message(self, text: str, kind: str = "info") -> None: ...
    def ask_mailing(self, carriers: list[tuple[str, str]], prefill: dict[str, str],
                    on_submit: Callable[[dict[str, str]], None]) -> None: ...
    def mailing_error(self, field: str, text: str) -> None: ...
    def close_mailing(self) -> None: ...


@dataclass(frozen=True)
class Recorded:
    """What a card read or a manual entry left on the case."""

    shown: CaseApplicant
    applicant: Applicant
    expired: bool = False


def doc_label(doc_type: str) -> str:
    zh, en = DOC_TYPES.get(doc_type, (doc_type, doc_type))
    return en if language() == "en" else zh


def masked_line(a: CaseApplicant) -> str:
    """One line for the case panel, masked as the server sent it."""
    parts = [a.name]
    if a.company_name:
        parts.insert(0, a.company_name)
    parts.append(f"{doc_label(a.doc_type)} {a.doc_number}")
    if a.phone:
        parts.append(a.phone)
    return _("Applicant: {who}").format(who="  ·  ".join(parts))


class ApplicantPresenter:
    """Tk thread only. `desk` gives the current case and ticket, and shows the notices."""

    def __init__(self, desk: DeskPresenter, view: ApplicantView,
                 today: Callable[[], date] = date.today) -> None:
        self.desk, self.view, self._today = desk, view, today
        self.shown: dict[int, CaseApplicant | None] = {}
        self._papers = CasePapers(desk.core)
        self._asked: set[int] = set()  # cases whose record was asked of the server once
        self.busy = False

    # -- the case panel -------------------------------------------------------------------------
    def render(self) -> None:
        case = self.desk.s.case
        if case is None:
            self.view.show_applicant(None, False)
            return
        shown = self.shown.get(case.id)
        if shown is None and case.id not in self.shown and case.id not in self._asked:
            self._fetch(case.id)
        if shown is None:
            self.view.show_applicant(_("Applicant: not recorded · {key} reads the ID card")
                                     .format(key=READ_KEY), False)
        else:
            self.view.show_applicant(masked_line(shown), True)

    def _fetch(self, case_id: int) -> None:
        """A case resumed or taken over may already have its applicant on the server."""
        svc = self.desk.core.applicants
        if svc is None:
            return
        self._asked.add(case_id)

        def ok(a: CaseApplicant) -> None:
            self.shown[case_id] = a
            self.render()

        def fail(exc: BaseException) -> None:
            if not (isinstance(exc, CounterError) and exc.code == "no_applicant"):
                log.warning("the applicant of case %s could not be read: %s", case_id,
                            getattr(exc, "code", type(exc).__name__))

        self.desk.runner.run(lambda: svc.shown(case_id), ok, fail)

    # -- F11: the card, or manual entry ---------------------------------------------------------
    def read(self) -> None:
        case = self.desk.s.case
        svc = self.desk.core.applicants
        if case is None or svc is None:
            self.desk.notice(lambda: _("Start the service (F7) before recording the applicant."),
                             "warn")
            return
        if self.busy:
            return
        if not svc.has_reader:
            self.manual()
            return
        self.busy = True
        self.desk.notice(lambda: _("Reading the ID card… keep it on the reader."), "info")
        case_id = case.id

        def op() -> tuple[CardRead, CaseApplicant]:
            read = svc.read_card()
            return read, svc.record(case_id, read.applicant)

        def ok(result: tuple[CardRead, CaseApplicant]) -> None:
            self.busy = False
            read, shown = result
            self._recorded(case_id, Recorded(shown, read.applicant, read.expired))

        def fail(exc: BaseException) -> None:
            self.busy = False
            if isinstance(exc, CounterError) and exc.code == "no_reader":
                self.manual()
                return
            self.desk.notice(lambda: _("{error} (or enter the details by hand: the button "
                                       "beside the applicant)").format(error=_text(exc)), "error")

        self.desk.runner.run(op, ok, fail)

    def manual(self) -> None:
        case = self.desk.s.case
        if case is None or self.desk.core.applicants is None:
            self.desk.notice(lambda: _("Start the service (F7) before recording the applicant."),
                             "warn")
            return
        types = [(code, doc_label(code)) for code in DOC_TYPES]
        self.view.ask_manual_entry(types, self.submit_manual)

    def submit_manual(self, fields: dict[str, Any]) -> None:
        """The manual-entry dialog's OK: checked here (pure rules, no I/O), then recorded."""
        case = self.desk.s.case
        svc = self.desk.core.applicants
        if case is None or svc is None or self.busy:
            return
        try:
            who = validate_applicant(
                name=str(fields.get("name", "")), doc_type=str(fields.get("doc_type", "")),
                doc_number=str(fields.get("doc_number", "")), phone=str(fields.get("phone", "")),
                address=str(fields.get("address", "")),
                disability_certificate=bool(fields.get("disability_certificate", False)),
                company_name=str(fields.get("company_name", "")),
                credit_code=str(fields.get("credit_code", "")), today=self._today())
        except InvalidEntryError as exc:
            field = str(exc.details.get("field", ""))
            # The ID rules name their field "id_number": the dialog has one number entry.
            self.view.manual_entry_error("doc_number" if field == "id_number" else field,
                                         exc.message(language()))
            return
        self.busy = True
        case_id = case.id

        def ok(shown: CaseApplicant) -> None:
            self.busy = False
            self.view.close_manual_entry()
            self._recorded(case_id, Recorded(shown, who))

        def fail(exc: BaseException) -> None:
            self.busy = False
            field = str(exc.details.get("field", "")) if isinstance(exc, CounterError) else ""
            self.view.manual_entry_error(field, _text(exc))

        self.desk.runner.run(lambda: svc.record(case_id, who), ok, fail)

    def _recorded(self, case_id: int, r: Recorded) -> None:
        self.shown[case_id] = r.shown
        self.render()
        name = r.shown.name
        if r.expired:
            self.desk.notice(lambda: _("Applicant {name} recorded. The ID card has EXPIRED: "
                                       "ask for a valid document.").format(name=name), "warn")
        else:
            self.desk.notice(lambda: _("Applicant {name} recorded on the case.").format(name=name),
                             "info")
        self._offer_green(r)

    # -- the green channel ----------------------------------------------------------------------
    def green_reason(self, r: Recorded) -> str | None:
        """Why the applicant may use the green channel, or None. The server decides by the
        hall's own rule (its green-channel age, a disability certificate); the desk says why."""
        if not r.shown.green_channel_suggested:
            return None
        a = r.applicant
        if a.disability_certificate:
            return _("the applicant holds a disability certificate")
        if a.birth_date is not None:
            return _("the applicant is {age} years old").format(age=age_on(a.birth_date,
                                                                           self._today()))
        return _("the hall's rule for the green channel applies")

    def _offer_green(self, r: Recorded) -> None:
        ticket = self.desk.s.ticket
        if ticket is None or ticket.priority == "green":
            return
        reason = self.green_reason(r)
        if reason is None:
            return
        number, category = ticket.number, ticket.category
        text = _("Green channel: {reason}. Move ticket {number} to the green channel so it is "
                 "served first?").format(reason=reason, number=number)

        def answer(yes: bool) -> None:
            if yes:
                desk = self.desk.core.desk
                self.desk._desk_call("transfer",
                                     lambda: desk.transfer(to_category=category, priority="green"),
                                     N_("{number} moved to the green channel"))

        self.view.ask_green_channel(text, answer)

    # -- reveal ---------------------------------------------------------------------------------
    def reveal(self) -> None:
        case = self.desk.s.case
        svc = self.desk.core.applicants
        if case is None or svc is None or self.shown.get(case.id) is None:
            return
        case_id = case.id

        def purpose(text: str) -> None:
            text = text.strip()
            if len(text) < 2:
                self.view.reveal_error(_("Say why the full details are needed (it is logged)."))
                return

            def ok(full: CaseApplicant) -> None:
                self.view.show_revealed(revealed_rows(full))

            self.desk.runner.run(lambda: svc.reveal(case_id, text), ok,
                                 lambda exc: self.view.reveal_error(_text(exc)))

        self.view.ask_reveal(purpose)

    def forget(self) -> None:
        self.shown.clear()
        self._asked.clear()

    # -- F12: the acceptance receipt, the mailing, reprints of past cases -----------------------
    def papers(self) -> None:
        self.view.ask_papers(self, self.desk.s.case is not None)

    def print_receipt(self) -> None:
        case = self.desk.s.case
        if case is None:
            return
        number = case.case_no

        def ok(_none: None) -> None:
            self.view.papers_message(_("The acceptance receipt of {case_no} was sent to the "
                                       "printer.").format(case_no=number))

        self.desk.runner.run(lambda: self._papers.print_receipt(case), ok,
                             lambda exc: self.view.papers_message(_text(exc), "error"))

    def mailing(self) -> None:
        case = self.desk.s.case
        svc = self.desk.core.applicants
        if case is None or svc is None:
            return
        held = svc.held(case.id)  # the applicant recorded here: the likely recipient
        prefill = {"recipient": held.name, "phone": held.phone, "address": held.address} \
            if held is not None else {}
        carriers = [(code, _(label)) for code, label in CARRIER_LABELS.items()]
        self.view.ask_mailing(carriers, prefill, self.submit_mailing)

    def submit_mailing(self, values: dict[str, str]) -> None:
        case = self.desk.s.case
        svc = self.desk.core.applicants
        if case is None or svc is None:
            return
        case_id = case.id

        def op() -> Any:
            return svc.record_mailing(case_id, recipient=values.get("recipient", ""),
                                      phone=values.get("phone", ""),
                                      address=values.get("address", ""),
                                      carrier=values.get("carrier", "ems"),
                                      tracking_no=values.get("tracking_no", ""))

        def ok(m: Any) -> None:
            self.view.close_mailing()
            carrier = _(CARRIER_LABELS.get(m.carrier, m.carrier))
            if m.status == "mailed":
                self.desk.notice(lambda: _("Result mailing recorded: {carrier}, tracking number "
                                           "{tracking}.").format(carrier=carrier,
                                                                 tracking=m.tracking_no))
            else:
                self.desk.notice(lambda: _("Result mailing recorded: {carrier}, to be mailed to "
                                           "{recipient}.").format(carrier=carrier,
                                                                  recipient=m.recipient))

        def fail(exc: BaseException) -> None:
            field = str(exc.details.get("field", "")) if isinstance(exc, CounterError) else ""
            self.view.mailing_error(field, _text(exc))

        self.desk.runner.run(op, ok, fail)

    def find(self, by: str, text: str) -> None:
        svc = self.desk.core.applicants
        text = text.strip()
        if svc is None:
            return
        if not text:
            self.view.papers_message(_("Type what to search for."), "error")
            return
        if by == "day" and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            self.view.papers_message(_("Write the date as YYYY-MM-DD."), "error")
            return
        criteria = {by: text}

        def ok(hits: list[ApplicantCase]) -> None:
            # No translated words in a row: it stays right after a language switch.
            rows = [(h.applicant.case_id, f"{h.case_no}  ·  {h.day}  ·  {h.applicant.name}  ·  "
                     f"{h.applicant.doc_number}") for h in hits]
            self.view.papers_hits(rows)
            if not rows:
                self.view.papers_message(_("No case found."), "error")

        self.desk.runner.run(lambda: svc.find(**criteria), ok,
                             lambda exc: self.view.papers_message(_text(exc), "error"))

    def reprint(self, case_id: int, kind: str) -> None:
        def ok(how: str) -> None:
            self.view.papers_message(_("Reprinted (the kept copy).") if how == "kept"
                                     else _("Reprinted (made again from the case on the server)."))

        self.desk.runner.run(lambda: self._papers.reprint(case_id, kind), ok,
                             lambda exc: self.view.papers_message(_text(exc), "error"))


def revealed_rows(a: CaseApplicant) -> list[tuple[str, str]]:
    rows = [(_("Name"), a.name), (_("Document"), f"{doc_label(a.doc_type)} {a.doc_number}")]
    if a.birth_date:
        rows.append((_("Born"), a.birth_date))
    if a.phone:
        rows.append((_("Phone"), a.phone))
    if a.address:
        rows.append((_("Address"), a.address))
    if a.company_name:
        rows.append((_("Company"), f"{a.company_name} {a.credit_code}"))
    return rows


def _text(exc: BaseException) -> str:
    if isinstance(exc, CounterError):
        return exc.message(language())
    return _("Unexpected error: {error}").format(error=type(exc).__name__)
