"""The reports a hall publishes (issue 15 item 4): figures.py over a day, a month or any range,
for the hall, per window and per staff member, as JSON, XLSX (openpyxl) and PDF (reportlab,
with a Chinese font embedded so the file reads the same on any PC).

API (supervisor / IT): `GET /api/v1/reports?from=&to=&by=hall|window|staff`, and the same query
on `/api/v1/reports.xlsx` and `/api/v1/reports.pdf`. The console's report page (console_reports.py)
renders the same `build` result.
"""

from __future__ import annotations

import io
import logging
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import Connection, select

from hall_server import figures
from hall_server import schema as t
from hall_server.core import JSON, get_meta, hall_of, json_response, require_role
from hall_server.deps import Auth
from hall_server.errors import MESSAGES, ApiError

log = logging.getLogger("hall_server.reports")

MAX_DAYS = 366
REPORT_ROLES = ("supervisor", "it_admin")
# TrueType-outline CJK fonts reportlab can embed (Debian: fonts-wqy-microhei, fonts-wqy-zenhei,
# fonts-arphic-uming); the Noto CJK OTFs have CFF outlines, which reportlab cannot embed.
CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "C:/Windows/Fonts/simhei.ttf",
)

MESSAGES.update({
    "bad_range": ("日期范围有误：开始不能晚于结束，最长 366 天", "Bad date range: from after to, or longer than 366 days"),
    "no_cjk_font": ("服务器未安装中文字体，无法生成 PDF（请安装 fonts-wqy-microhei）",
                    "No Chinese font on the server, so no PDF (install fonts-wqy-microhei)"),
})

# (key, zh, en, kind): the columns every export shows, in order.
COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("accepted", "受理", "Accepted", "n"),
    ("concluded", "办结", "Concluded", "n"),
    ("on_time_rate", "按时办结率", "On-time rate", "%"),
    ("on_the_spot_rate", "现场办结率", "On-the-spot rate", "%"),
    ("ratings", "评价数", "Ratings", "n"),
    ("satisfaction_rate", "满意率", "Satisfaction", "%"),
    ("bad", "差评", "Bad ratings", "n"),
    ("bad_open", "差评未办结", "Bad open", "n"),
    ("bad_closed", "差评已办结", "Bad closed", "n"),
    ("avg_wait_seconds", "平均等候(秒)", "Avg wait (s)", "s"),
    ("avg_handle_seconds", "平均办理(秒)", "Avg handling (s)", "s"),
)
CHANNEL_NAMES = {"pad_signed": ("评价器(签名)", "Pad (signed)"), "second_screen": ("副屏", "Second screen"),
                 "serial_box": ("评价按键盒", "Button box"), "desk": ("窗口录入", "Desk"),
                 "rate_later": ("扫码补评", "Rate later"), "paper": ("纸质评价表", "Paper form"),
                 "phone": ("电话回访", "Phone survey")}


def parse_range(start: str, end: str, today: str, *, period: str = "") -> tuple[str, str]:
    """[start, end] from the query: `period` = a day (YYYY-MM-DD) or month (YYYY-MM) wins;
    default this month up to today. 422 `bad_range` for a reversed or too long range."""
    try:
        if period:
            if len(period) == 7:
                first = date.fromisoformat(period + "-01")
                nxt = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
                return first.isoformat(), (nxt - timedelta(days=1)).isoformat()
            d = date.fromisoformat(period)
            return d.isoformat(), d.isoformat()
        e = date.fromisoformat(end) if end else date.fromisoformat(today)
        s = date.fromisoformat(start) if start else e.replace(day=1)
    except ValueError:
        raise ApiError(422, "bad_range", {"from": start, "to": end, "period": period}) from None
    if s > e or (e - s).days >= MAX_DAYS:
        raise ApiError(422, "bad_range", {"from": s.isoformat(), "to": e.isoformat(), "max_days": MAX_DAYS})
    return s.isoformat(), e.isoformat()


def build(conn: Connection, start: str, end: str, group: str = "window") -> JSON:
    """The whole report: the hall's figures, one row per window or staff member, the daily
    series for the charts, and the names to print."""
    hall_row = figures.compute(conn, start, end, "hall")[0]
    rows = figures.compute(conn, start, end, group) if group != "hall" else []
    names: dict[str, tuple[str, str]] = {}
    if group == "window":
        for no, zh, en in conn.execute(select(t.windows.c.no, t.windows.c.name_zh, t.windows.c.name_en)).all():
            names[str(no)] = (zh, en or zh)
    elif group == "staff":
        for no, zh, en in conn.execute(select(t.staff.c.staff_no, t.staff.c.name_zh, t.staff.c.name_en)).all():
            names[str(no)] = (f"{no} {zh}", f"{no} {en or zh}")
    for r in rows:
        zh, en = names.get(str(r["key"]), (str(r["key"]), str(r["key"])))
        r["name_zh"], r["name_en"] = zh, en
    return {"from": start, "to": end, "by": group,
            "hall_name_zh": get_meta(conn, "hall_name_zh") or "", "hall_name_en": get_meta(conn, "hall_name_en") or "",
            "hall": hall_row, "rows": rows, "daily": figures.daily_series(conn, start, end)}


def cell(value: Any, kind: str) -> str:
    """A figure as printed: rates in %, "—" where there is nothing to divide."""
    if value is None:
        return "—"
    if kind == "%":
        return f"{value * 100:.1f}%"
    if kind == "s":
        return f"{value:.0f}"
    return str(value)


def _title(rep: JSON, lang: str) -> str:
    name = (rep["hall_name_en"] or rep["hall_name_zh"]) if lang == "en" else rep["hall_name_zh"]
    word = "cases and ratings report" if lang == "en" else "办件与评价报表"
    return f"{name} {word} {rep['from']} – {rep['to']}".strip()


def _table(rep: JSON, lang: str) -> list[list[str]]:
    """Header + the hall row + one row per group key, as strings (the PDF and the tests)."""
    en = lang == "en"
    head = [("Scope" if en else "范围")] + [c[2] if en else c[1] for c in COLUMNS]
    out = [head, [("Whole hall" if en else "全厅")] + [cell(rep["hall"][c[0]], c[3]) for c in COLUMNS]]
    for r in rep["rows"]:
        out.append([r["name_en"] if en else r["name_zh"]] + [cell(r[c[0]], c[3]) for c in COLUMNS])
    return out


def _channel_table(rep: JSON, lang: str) -> list[list[str]]:
    en = lang == "en"
    out = [["Channel" if en else "渠道", "Ratings" if en else "评价数", "Satisfaction" if en else "满意率"]]
    h = rep["hall"]
    for ch in figures.CHANNELS:
        out.append([CHANNEL_NAMES[ch][1 if en else 0], str(h["ratings_by_channel"][ch]),
                    cell(h["satisfaction_by_channel"][ch], "%")])
    return out


def to_xlsx(rep: JSON, lang: str = "zh") -> bytes:
    """Sheets: the figures (numbers as numbers, rates as percentages), channels, days."""
    from openpyxl import Workbook  # type: ignore[import-untyped]

    en = lang == "en"
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Figures" if en else "指标"
    ws.append([_title(rep, lang)])
    ws.append(["Scope" if en else "范围"] + [c[2] if en else c[1] for c in COLUMNS])
    rows = [("Whole hall" if en else "全厅", rep["hall"])] + [
        (r["name_en"] if en else r["name_zh"], r) for r in rep["rows"]]
    for label, r in rows:
        ws.append([label] + [r[c[0]] for c in COLUMNS])
        for i, c in enumerate(COLUMNS, start=2):
            if c[3] == "%" and r[c[0]] is not None:
                ws.cell(row=ws.max_row, column=i).number_format = "0.0%"
    ch = wb.create_sheet("Channels" if en else "渠道")
    ch.append(["Channel" if en else "渠道", "code", "Ratings" if en else "评价数", "Satisfaction" if en else "满意率"])
    for code in figures.CHANNELS:
        ch.append([CHANNEL_NAMES[code][1 if en else 0], code, rep["hall"]["ratings_by_channel"][code],
                   rep["hall"]["satisfaction_by_channel"][code]])
    dy = wb.create_sheet("Days" if en else "每日")
    dy.append(["Day" if en else "日期"] + [c[2] if en else c[1] for c in COLUMNS])
    for d in rep["daily"]:
        dy.append([d["day"]] + [d[c[0]] for c in COLUMNS])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def cjk_font() -> str | None:
    return next((p for p in CJK_FONTS if Path(p).is_file()), None)


def to_pdf(rep: JSON, lang: str = "zh") -> bytes:
    """An A4 landscape PDF: title, the figures table, the channels table; the CJK font is
    embedded (subset) so the numbers and names print anywhere."""
    from reportlab.lib import colors  # type: ignore[import-untyped]
    from reportlab.lib.pagesizes import A4, landscape  # type: ignore[import-untyped]
    from reportlab.lib.styles import ParagraphStyle  # type: ignore[import-untyped]
    from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
    from reportlab.pdfbase.ttfonts import TTFont  # type: ignore[import-untyped]
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle  # type: ignore[import-untyped]

    path = cjk_font()
    if path is None:
        log.error("report PDF: none of %s is installed", ", ".join(CJK_FONTS))
        raise ApiError(503, "no_cjk_font")
    if "HallCJK" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("HallCJK", path, subfontIndex=0) if path.endswith(".ttc")
                                else TTFont("HallCJK", path))
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=landscape(A4), title=_title(rep, lang), leftMargin=24,
                            rightMargin=24, topMargin=24, bottomMargin=24)
    h1 = ParagraphStyle("h1", fontName="HallCJK", fontSize=15, leading=20)
    body = ParagraphStyle("b", fontName="HallCJK", fontSize=9, leading=12)
    style = TableStyle([("FONTNAME", (0, 0), (-1, -1), "HallCJK"), ("FONTSIZE", (0, 0), (-1, -1), 8),
                        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef6")),
                        ("ALIGN", (1, 1), (-1, -1), "RIGHT")])
    note = ("On-time rate: concluded on or before the deadline (working days) / concluded with a deadline. "
            "On-the-spot: concluded at the window the same visit / accepted. See docs/figures.md."
            if lang == "en" else
            "按时办结率＝在承诺时限（工作日）内办结数÷有时限的办结数；现场办结率＝当场在窗口办结数÷受理数。计算方法见 docs/figures.md。")
    story: list[Any] = [Paragraph(_title(rep, lang), h1), Spacer(1, 8),
                        Table(_table(rep, lang), style=style, repeatRows=1), Spacer(1, 12),
                        Table(_channel_table(rep, lang), style=style), Spacer(1, 10), Paragraph(note, body)]
    doc.build(story)
    return buf.getvalue()


# ---- API -------------------------------------------------------------------------------------
router = APIRouter(prefix="/api/v1", tags=["reports"])
By = Literal["hall", "window", "staff"]


async def _report(request: Request, p: Any, start: str, end: str, period: str, by: str) -> JSON:
    require_role(p, *REPORT_ROLES)
    hall = hall_of(request)
    s, e = parse_range(start, end, hall.today(), period=period)
    rep: JSON = await hall.store.read(lambda c: build(c, s, e, by))
    return rep


Q = Annotated[str, Query(max_length=10)]


@router.get("/reports")
async def get_report(request: Request, p: Auth, from_: Annotated[str, Query(alias="from", max_length=10)] = "",
                     to: Q = "", period: Q = "", by: By = "window") -> Response:
    return json_response(await _report(request, p, from_, to, period, by))


@router.get("/reports.xlsx")
async def get_report_xlsx(request: Request, p: Auth, from_: Annotated[str, Query(alias="from", max_length=10)] = "",
                          to: Q = "", period: Q = "", by: By = "window", lang: Literal["zh", "en"] = "zh") -> Response:
    rep = await _report(request, p, from_, to, period, by)
    return export_response(to_xlsx(rep, lang), rep, "xlsx")


@router.get("/reports.pdf")
async def get_report_pdf(request: Request, p: Auth, from_: Annotated[str, Query(alias="from", max_length=10)] = "",
                         to: Q = "", period: Q = "", by: By = "window", lang: Literal["zh", "en"] = "zh") -> Response:
    rep = await _report(request, p, from_, to, period, by)
    return export_response(to_pdf(rep, lang), rep, "pdf")


TYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "pdf": "application/pdf"}


def export_response(data: bytes, rep: JSON, ext: str) -> Response:
    name = f"hall-report-{rep['from']}-{rep['to']}-{rep['by']}.{ext}"
    return Response(data, media_type=TYPES[ext], headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
