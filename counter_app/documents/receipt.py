"""The acceptance receipt (受理回执): handed to the applicant when the window accepts a case.

Made like the one-time notice (fpdf2, a CJK font, the case number as a QR code): hall, window,
matter and its department, the applicant, the case number, the materials received (with what
was accepted to follow later), the promised time limit in working days (or 即办), the result
mailing when one is recorded, clerk and date, and the signature lines. ``build`` collects the
data from the case and its matter; printing goes through `counter_app.documents.printouts`
(kept encrypted for reprints, never in clear on disk).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from counter_app.documents.notice import case_page, chinese_date, signature_block

#: Material statuses that count as "in hand" on the receipt, and how each is printed.
RECEIVED = {"received": "已收取", "e_licence": "电子证照", "accepted_pending": "容缺受理（后补）"}


@dataclass(frozen=True)
class ReceivedItem:
    name: str
    copies: int = 1
    how: str = "已收取"


@dataclass(frozen=True)
class ReceiptData:
    hall: str
    window: str
    matter: str
    case_no: str
    clerk: str
    items: Sequence[ReceivedItem]
    applicant: str = ""
    department: str = ""
    time_limit_days: int = 0
    instant: bool = False
    mailing: str = ""  # "EMS 至 山东省济南市****" when the result is mailed
    phone: str = ""
    day: date = field(default_factory=date.today)


def received_items(matter: Any, case: Any) -> list[ReceivedItem]:
    """The checklist items the case has in hand, in checklist order."""
    statuses = {m.item_id: m.status for m in (getattr(case, "materials", None) or [])}
    out = []
    for item in getattr(matter, "checklist", ()) or ():
        how = RECEIVED.get(statuses.get(item.id, ""))
        if how:
            out.append(ReceivedItem(item.name_zh, int(item.copies), how))
    return out


def render(data: ReceiptData) -> bytes:
    """The receipt as PDF bytes (A4, Chinese)."""
    from fpdf.enums import XPos, YPos

    pdf = case_page("受理回执", data.case_no)
    width = pdf.w - pdf.l_margin - pdf.r_margin
    pdf.set_xy(pdf.l_margin, 20)
    pdf.set_font("cjk", size=14)
    pdf.cell(width, 8, data.hall, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("cjk", size=26)
    pdf.cell(width, 15, "受理回执", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(52)

    pdf.set_font("cjk", size=13)
    limit = "即办件（当场办结）" if data.instant else (
        f"{data.time_limit_days} 个工作日（自受理之日起）" if data.time_limit_days else "按规定时限")
    rows = [("申请人", data.applicant or "（未登记）"), ("办理事项", data.matter)]
    if data.department:
        rows.append(("承办部门", data.department))
    rows += [("受理窗口", data.window), ("办件编号", data.case_no), ("承诺时限", limit)]
    rows.append(("结果领取", data.mailing or "窗口领取"))
    for k, v in rows:
        pdf.cell(28, 8, f"{k}：")
        pdf.multi_cell(width - 28, 8, v, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    pdf.multi_cell(width, 7.5, "您申请办理的上述事项，本窗口已依法受理。已收取的申请材料如下：",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    for i, item in enumerate(data.items, start=1):
        pdf.multi_cell(width, 8, f"{i}．{item.name}（{item.copies} 份，{item.how}）",
                       new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if not data.items:
        pdf.multi_cell(width, 8, "（无纸质材料）", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    pdf.set_font("cjk", size=11)
    pdf.multi_cell(width, 6, "请妥善保管本回执，凭回执（或办件编号）查询办理进度、领取结果。"
                   "如对办理有意见，可通过窗口评价器或大厅“好差评”渠道反映。",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if data.phone:
        pdf.multi_cell(width, 6, f"咨询电话：{data.phone}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(10)
    signature_block(pdf, (f"受理人：{data.clerk}", "申请人签收：________________"),
                    (f"受理日期：{chinese_date(data.day)}", "（窗口盖章）"))
    return bytes(pdf.output())
