"""The papers of a case that name the applicant: the acceptance receipt (受理回执) and reprints of
it and of the one-time notice, for the case at the window or a past one found by case number,
ID number (keyed-hash match on the server), phone or day (issue 17; docs/applicant.md).

Worker threads only (reader, server, disk). A printout is kept encrypted for reprinting
(`documents.printouts`); a past case with no kept copy (another desk, older than the keep period)
is made again from the server's case, the catalog's matter and the applicant's name revealed
with the reprint as its audited purpose.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from api_client.models import Case, Matter
from counter_app.documents import DocumentError, notice, receipt
from counter_app.documents.printouts import print_once
from counter_app.errors import CounterError, from_api

if TYPE_CHECKING:
    from counter_app.core import CounterCore

log = logging.getLogger(__name__)

CARRIERS = {"ems": "EMS", "sf": "顺丰速运", "jd": "京东物流", "zto": "中通快递", "yto": "圆通速递",
            "sto": "申通快递", "yunda": "韵达快递", "other": "快递"}


@dataclass(frozen=True)
class Header:
    """Who prints: the hall, the window and the clerk, as the papers name them."""

    hall: str
    window: str
    clerk: str


class CasePapers:
    def __init__(self, core: CounterCore) -> None:
        self.core = core

    def header(self) -> Header:
        core = self.core
        staff = core.session.staff
        clerk = f"{staff.name_zh}（{staff.staff_no}）" if staff is not None else ""
        hall = (core.hall.name_zh if core.hall is not None else "") or "政务服务大厅"
        return Header(hall, f"{core.settings.window_no}号窗口", clerk)

    def _matter(self, code: str | None) -> Matter:
        matter = self.core.catalog.get(code) if code and self.core.catalog is not None else None
        if matter is None:
            raise DocumentError(message_zh="该办件尚未选择事项，无法生成回执（请先按 F8 选择事项）",
                                message_en="The case has no matter yet; set it (F8) before printing",
                                code="no_matter")
        return matter

    def _name(self, case_id: int, purpose: str) -> str:
        svc = self.core.applicants
        return svc.name_for_print(case_id, purpose) if svc is not None else ""

    def _mailing(self, case_id: int) -> str:
        svc = self.core.applicants
        if svc is None:
            return ""
        try:
            m = svc.mailing(case_id)
        except CounterError as exc:
            if exc.code == "no_mailing":
                return ""
            raise
        how = CARRIERS.get(m.carrier, m.carrier)
        state = f"已寄出，运单号 {m.tracking_no}" if m.status == "mailed" else "待寄出"
        return f"{how}邮寄至 {m.recipient}（{m.address}），{state}"

    def receipt_pdf(self, case: Case, purpose: str = "打印受理回执") -> bytes:
        matter = self._matter(case.matter_code)
        h = self.header()
        data = receipt.ReceiptData(
            hall=h.hall, window=h.window, matter=matter.name_zh, case_no=case.case_no,
            clerk=h.clerk, items=receipt.received_items(matter, case),
            applicant=self._name(case.id, purpose), department=matter.department_zh,
            time_limit_days=matter.time_limit_days, instant=matter.instant,
            mailing=self._mailing(case.id), day=case.started_at.astimezone().date())
        return receipt.render(data)

    def notice_pdf(self, case: Case, purpose: str = "补打一次性告知书") -> bytes:
        matter = self._matter(case.matter_code)
        h = self.header()
        data = notice.NoticeData(
            hall=h.hall, window=h.window, matter=matter.name_zh, case_no=case.case_no,
            clerk=h.clerk, items=notice.missing_items(matter, case), day=date.today(),
            department=matter.department_zh, applicant=self._name(case.id, purpose))
        return notice.render(data)

    def _print(self, pdf: bytes, kind: str, case: Case) -> None:
        docs = self.core.documents
        if docs is not None and docs.printouts is not None:
            docs.printouts.print_new(pdf, kind=kind, case_id=case.id, case_no=case.case_no)
        else:
            print_once(pdf, self.core.settings.data_dir / "spool")

    def print_receipt(self, case: Case) -> None:
        """The 受理回执 of the case at the window."""
        self._print(self.receipt_pdf(case), "receipt", case)
        log.info("acceptance receipt printed for case %s", case.id)

    def reprint(self, case_id: int, kind: str) -> str:
        """Reprint the notice or receipt of a past case: the kept copy, else one made again.
        Returns "kept" or "remade"."""
        try:
            case = self.core.client.case(case_id)
        except Exception as exc:  # noqa: BLE001 - translated once, here
            raise from_api(exc) from exc
        docs = self.core.documents
        kept = docs.printouts.find(case_no=case.case_no, kind=kind) \
            if docs is not None and docs.printouts is not None else []
        if kept and docs is not None and docs.printouts is not None:
            docs.printouts.reprint(kept[0].id)
            log.info("%s of case %s reprinted from the kept copy", kind, case_id)
            return "kept"
        pdf = self.receipt_pdf(case, "补打受理回执") if kind == "receipt" else self.notice_pdf(case)
        self._print(pdf, kind, case)
        log.info("%s of case %s made again and printed", kind, case_id)
        return "remade"
