"""The desk's side of the applicant: read the card, record the applicant on the case, reveal
on purpose, find past cases (issue 17; docs/applicant.md).

Every method blocks (reader or network) and is called from a worker thread, never the Tk thread.
Errors are ``CounterError``s: the reader's own (``counter_app.idcard``), ``InvalidEntryError``
for a value the rules refuse, and the server's translated by ``from_api``. Nothing about the
applicant is logged or written to disk here: the record lives on the server, encrypted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from api_client import HallClient
from api_client.models import ApplicantCase, CaseApplicant
from counter_app.applicant import Applicant, green_channel_suggested, validate_applicant
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


class ApplicantDesk:
    def __init__(self, client: HallClient, reader: IdCardReader | None,
                 today: Callable[[], date] = date.today, green_age: int = 65) -> None:
        self.client, self.reader, self._today, self.green_age = client, reader, today, green_age

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
            return self.client.set_applicant(case_id, request_body(applicant))
        except Exception as exc:  # noqa: BLE001 - every client error is translated once, here
            raise from_api(exc) from exc

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

    def find(self, *, case_no: str | None = None, id_number: str | None = None,
             phone: str | None = None, day: str | None = None) -> list[ApplicantCase]:
        try:
            return self.client.search_applicants(case_no=case_no, id_number=id_number, phone=phone, day=day)
        except Exception as exc:  # noqa: BLE001
            raise from_api(exc) from exc
