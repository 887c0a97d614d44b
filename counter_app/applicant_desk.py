"""The desk's side of the applicant: read the card, record the applicant on the case, reveal
on purpose, find past cases (issue 17; docs/applicant.md).

Every method blocks (reader or network) and is called from a worker thread, never the Tk thread.
Errors are ``CounterError``s: the reader's own (``counter_app.idcard``), ``InvalidEntryError``
for a value the rules refuse, and the server's translated by ``from_api``. Nothing about the
applicant is logged or written to disk here: the record lives on the server, encrypted. The
applicant recorded from this desk is held in memory for the few cases it may still print for (the
one-time notice and the acceptance receipt carry the name); a case recorded elsewhere, or before a
restart, gets the name from the server by an audited reveal with the printout as its purpose.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from api_client import HallClient
from api_client.models import ApplicantCase, CaseApplicant, CaseMailing
from counter_app.applicant import (
    Applicant,
    InvalidEntryError,
    check_name,
    check_phone,
    green_channel_suggested,
    validate_applicant,
)
from counter_app.errors import CounterError, from_api
from counter_app.idcard.base import IdCardReader

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CardRead:
    """An applicant read from a card, with what the clerk must be told."""

    applicant: Applicant
    expired: bool
    green_channel: bool


def request_body(a: Applicant) -> dict[str, Any]:
    """The ``ApplicantIn`` body for the server."""
    return {"name": a.name, "doc_type": a.doc_type, "doc_number": a.doc_number, "phone": a.phone,
            "address": a.address, "disability_certificate": a.disability_certificate,
            "company_name": a.company_name, "credit_code": a.credit_code, "source": a.source}


def print_name(name: str, company_name: str = "") -> str:
    """The applicant as a printout names them: a company with the person who came."""
    return f"{company_name}（经办人：{name}）" if company_name else name


#: How many cases' applicants stay in memory for printing (the case at the window and a few before).
HELD_CASES = 4


class ApplicantDesk:
    def __init__(self, client: HallClient, reader: IdCardReader | None,
                 today: Callable[[], date] = date.today, green_age: int = 65) -> None:
        self.client, self.reader, self._today, self.green_age = client, reader, today, green_age
        self._held: OrderedDict[int, Applicant] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def has_reader(self) -> bool:
        """A card reader is configured (else the desk goes straight to manual entry)."""
        return self.reader is not None

    def held(self, case_id: int) -> Applicant | None:
        """The applicant this desk recorded on `case_id`, if still in memory (never on disk)."""
        with self._lock:
            return self._held.get(case_id)

    def forget(self) -> None:
        """Drop every held applicant (sign-out, lock of the desk's day)."""
        with self._lock:
            self._held.clear()

    def name_for_print(self, case_id: int, purpose: str) -> str:
        """The applicant's full name for a printout: held, else revealed (and audited) with
        `purpose`; "" when the case has no applicant."""
        held = self.held(case_id)
        if held is not None:
            return print_name(held.name, held.company_name)
        try:
            shown = self.reveal(case_id, purpose)
        except CounterError as exc:
            if exc.code == "no_applicant":
                return ""
            raise
        return print_name(shown.name, shown.company_name)

    def read_card(self, timeout_s: float = 5.0) -> CardRead:
        """Read the card on the reader and check it like a typed entry (an expired card is read
        and flagged: the clerk decides)."""
        if self.reader is None:
            raise CounterError(message_zh="未配置身份证阅读器，请手工录入",
                               message_en="No ID card reader is configured; enter the details by hand",
                               code="no_reader")
        card = self.reader.read_card(timeout_s)
        today = self._today()
        who = validate_applicant(name=card.name, doc_type=card.doc_type, doc_number=card.id_number,
                                 address=card.address, source="card", today=today)
        log.info("ID card read (%s)", "expired" if card.expired(today) else "valid")
        return CardRead(who, card.expired(today), green_channel_suggested(who, today, self.green_age))

    def record(self, case_id: int, applicant: Applicant) -> CaseApplicant:
        try:
            shown = self.client.set_applicant(case_id, request_body(applicant))
        except Exception as exc:  # noqa: BLE001 - every client error is translated once, here
            raise from_api(exc) from exc
        with self._lock:
            self._held[case_id] = applicant
            self._held.move_to_end(case_id)
            while len(self._held) > HELD_CASES:
                self._held.popitem(last=False)
        return shown

    def shown(self, case_id: int) -> CaseApplicant:
        try:
            return self.client.applicant(case_id)
        except Exception as exc:  # noqa: BLE001
            raise from_api(exc) from exc

    def reveal(self, case_id: int, purpose: str) -> CaseApplicant:
        try:
            return self.client.reveal_applicant(case_id, purpose)
        except Exception as exc:  # noqa: BLE001
            raise from_api(exc) from exc

    def record_mailing(self, case_id: int, *, recipient: str, phone: str, address: str,
                       carrier: str = "ems", tracking_no: str = "") -> CaseMailing:
        """Record the result mailing (checked here first, and again by the server); masked reply."""
        body = {"recipient": check_name(recipient, "recipient"), "phone": check_phone(phone),
                "address": " ".join(address.split()), "carrier": carrier,
                "tracking_no": tracking_no.strip()}
        if len(body["address"]) < 5:
            raise InvalidEntryError(message_zh="请填写完整的邮寄地址", message_en="Enter the full postal address",
                                    code="invalid_address", details={"field": "address"})
        try:
            return self.client.set_mailing(case_id, body)
        except Exception as exc:  # noqa: BLE001
            raise from_api(exc) from exc

    def mailing(self, case_id: int) -> CaseMailing:
        try:
            return self.client.mailing(case_id)
        except Exception as exc:  # noqa: BLE001
            raise from_api(exc) from exc

    def find(self, *, case_no: str | None = None, id_number: str | None = None,
             phone: str | None = None, day: str | None = None) -> list[ApplicantCase]:
        try:
            return self.client.search_applicants(case_no=case_no, id_number=id_number, phone=phone, day=day)
        except Exception as exc:  # noqa: BLE001
            raise from_api(exc) from exc
