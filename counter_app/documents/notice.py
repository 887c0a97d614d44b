"""The one-time notification (一次性告知书): every missing required material, printed at once.

Made with fpdf2 and the WenQuanYi Micro Hei font (Debian fonts-wqy-microhei; on Windows a
system CJK font is used), with the case number also as a QR code (segno, drawn in memory).
Contents: hall, window, matter, each missing material with its notes, the legal basis
(《中华人民共和国行政许可法》第三十二条第一款第（四）项), clerk, date, case number, signature
lines. ``print_pdf`` hands the file to the OS print path; tests swap it with ``set_printer``.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from counter_app.documents import DocumentError

LEGAL_BASIS = "《中华人民共和国行政许可法》第三十二条第一款第（四）项"
LEGAL_TEXT = ("申请材料不齐全或者不符合法定形式的，应当当场或者在五日内一次告知申请人需要补正的全部内容，"
              "逾期不告知的，自收到申请材料之日起即为受理。")
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "C:/Windows/Fonts/simhei.ttf",
    "C:/Windows/Fonts/msyh.ttc",
    "/System/Library/Fonts/PingFang.ttc",
)


@dataclass(frozen=True)
class MissingItem:
    name: str
    notes: str = ""
    copies: int = 1
    original_required: bool = False
    requirement: str = "required"
    item_id: str = ""


@dataclass(frozen=True)
class NoticeData:
    hall: str
    window: str
    matter: str
    case_no: str
    clerk: str
    items: Sequence[MissingItem]
    day: date = field(default_factory=date.today)
    department: str = ""
    phone: str = ""
    # The applicant's full name (the notice is handed to them; counter_app/applicant.py, issue 17).
    applicant: str = ""


def missing_items(matter: Any, case: Any) -> list[MissingItem]:
    """Required items not received (missing or not yet checked), in checklist order."""
    statuses = {m.item_id: m.status for m in (getattr(case, "materials", None) or [])}
    out = []
    for item in getattr(matter, "checklist", ()) or ():
        if item.requirement != "required":
            continue
        if statuses.get(item.id, "") in ("", "unchecked", "missing"):
            out.append(MissingItem(item.name_zh, item.notes_zh, int(item.copies),
                                   bool(item.original_required), item.requirement, item.id))
    return out


def _font() -> str:
    for p in FONT_CANDIDATES:
        if Path(p).exists():
            return p
    raise DocumentError(message_zh="找不到中文字体，无法生成告知书（请安装 fonts-wqy-microhei）。",
                        message_en="No Chinese font found to make the notice (install fonts-wqy-microhei).",
                        code="no_font")


def _qr_png(text: str) -> bytes:
    import segno

    buf = io.BytesIO()
    segno.make_qr(text, error="m").save(buf, kind="png", scale=8, border=4)  # not Micro QR: phones and zbar read only full QR
    return buf.getvalue()


def case_page(title: str, case_no: str) -> Any:
    """A new A4 page for a paper about one case (the notice, the receipt): the CJK font, and the
    case number top right as text and as a QR code."""
    from fpdf import FPDF

    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(auto=True, margin=22)
    pdf.set_margins(20, 18, 20)
    font = _font()
    pdf.add_font("cjk", "", font, collection_font_number=0) if font.endswith(".ttc") \
        else pdf.add_font("cjk", "", font)
    pdf.set_title(title)
    pdf.add_page()
    pdf.image(io.BytesIO(_qr_png(case_no)), x=pdf.w - pdf.r_margin - 28, y=14, w=28, h=28)
    pdf.set_font("cjk", size=11)
    pdf.set_xy(pdf.w - pdf.r_margin - 48, 43)
    pdf.cell(48, 5, f"办件编号：{case_no}", align="R")
    return pdf


def chinese_date(d: date) -> str:
    return f"{d.year} 年 {d.month} 月 {d.day} 日"


def signature_block(pdf: Any, first: tuple[str, str], second: tuple[str, str]) -> None:
    """Two rows of two half-width cells (who and when, left; the applicant's part, right)."""
    from fpdf.enums import XPos, YPos

    pdf.set_font("cjk", size=13)
    half = (pdf.w - pdf.l_margin - pdf.r_margin) / 2
    y = pdf.get_y()
    for row, (left, right) in enumerate((first, second)):
        if row:
            pdf.set_y(y + 12)
        pdf.cell(half, 9, left)
        pdf.cell(half, 9, right, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def render(data: NoticeData) -> bytes:
    """The notice as PDF bytes (A4, Chinese)."""
    from fpdf.enums import XPos, YPos

    if not data.items:
        raise DocumentError(message_zh="没有缺少的必需材料，无需一次性告知。",
                            message_en="No required material is missing; no notice is needed.",
                            code="nothing_missing")
    pdf = case_page("一次性告知书", data.case_no)
    width = pdf.w - pdf.l_margin - pdf.r_margin

    # Title centred on the page, as official notices are; the QR code sits at the right.
    pdf.set_xy(pdf.l_margin, 20)
    pdf.set_font("cjk", size=14)
    pdf.cell(width, 8, data.hall, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("cjk", size=26)
    pdf.cell(width, 15, "一次性告知书", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(52)

    pdf.set_font("cjk", size=13)
    rows = [("办理事项", data.matter), ("受理窗口", data.window), ("办件编号", data.case_no)]
    if data.department:
        rows.insert(1, ("承办部门", data.department))
    if data.applicant:
        rows.insert(0, ("申请人", data.applicant))
    for k, v in rows:
        pdf.cell(28, 8, f"{k}：")
        pdf.multi_cell(width - 28, 8, v, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    pdf.multi_cell(width, 7.5,
                   "申请人：您好！您申请办理的上述事项，经审查，申请材料尚不齐全。现将需要补正的全部材料"
                   "一次性告知如下，请补齐后到本大厅同类窗口办理，无需重新排队取号：",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)

    # The list: number, material, requirement (copies, original), notes.
    pdf.set_font("cjk", size=13)
    for i, item in enumerate(data.items, start=1):
        need = [f"{item.copies} 份"]
        if item.original_required:
            need.append("需验原件")
        pdf.set_font("cjk", size=14)
        pdf.multi_cell(width, 8, f"{i}．{item.name}（{'，'.join(need)}）",
                       new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if item.notes:
            pdf.set_font("cjk", size=12)
            pdf.set_x(pdf.l_margin + 8)
            pdf.multi_cell(width - 8, 6.5, f"说明：{item.notes}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1.5)

    pdf.ln(4)
    pdf.set_font("cjk", size=11)
    pdf.multi_cell(width, 6, f"告知依据：{LEGAL_BASIS}：“{LEGAL_TEXT}”",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if data.phone:
        pdf.multi_cell(width, 6, f"咨询电话：{data.phone}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(10)

    signature_block(pdf, (f"经办人：{data.clerk}", "申请人签收：________________"),
                    (f"告知日期：{chinese_date(data.day)}", "签收日期：______年____月____日"))
    pdf.ln(8)
    pdf.set_font("cjk", size=10)
    pdf.multi_cell(width, 5.5, "本告知书一式两份，申请人与窗口各执一份。补齐材料后请携带本告知书到本大厅同类窗口续办（右上角二维码即办件编号）。",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    out = pdf.output()
    return bytes(out)


def save(data: NoticeData, folder: Path) -> Path:
    """Write the notice for printing (not a scan: no personal images; purged after a day)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"notice-{data.case_no}.pdf"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(render(data))
    os.replace(tmp, path)
    return path


def purge_old(folder: Path, older_than_s: float = 86400.0, now: float | None = None) -> int:
    import time

    cutoff = (now if now is not None else time.time()) - older_than_s
    n = 0
    for p in folder.glob("notice-*.pdf") if folder.is_dir() else ():
        if p.stat().st_mtime < cutoff:
            p.unlink(missing_ok=True)
            n += 1
    return n


def _os_print(path: Path) -> None:
    if sys.platform == "win32":
        os.startfile(str(path), "print")  # type: ignore[attr-defined,unused-ignore]
        return
    for cmd in (["lp", str(path)], ["xdg-open", str(path)]):
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=30)
            return
        except (FileNotFoundError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
            continue
    raise DocumentError(message_zh="无法打印：本机没有可用的打印程序（lp 或 xdg-open）。告知书已保存：" + str(path),
                        message_en="Cannot print: no print command (lp or xdg-open) on this PC. The notice "
                        "is saved at " + str(path), code="no_printer")


_printer: Callable[[Path], None] = _os_print


def set_printer(fn: Callable[[Path], None] | None) -> None:
    """Swap the print path (tests record instead of printing); None restores the OS one."""
    global _printer
    _printer = fn or _os_print


def print_pdf(path: Path) -> None:
    _printer(path)
