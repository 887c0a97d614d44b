"""Console pages of issue 15 items 1, 3, 4 (docs/console.md): the hall report with charts and
its XLSX/PDF export (`/console/reports`), cases nearing or past their deadline with the
conclusion (办结) form (`/console/cases`), and the entry of paper-form and phone-survey ratings
(`/console/rating-entry`). Supervisors conclude and enter ratings; IT admins may look.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from sqlalchemy import Connection, select
from starlette.datastructures import UploadFile

from hall_server import documents, figures, lifecycle, rating_channels, reports
from hall_server import schema as t
from hall_server.console import (
    LEVEL_COLORS,
    Refused,
    _bars,
    _err_text,
    _ok,
    _s,
    form_of,
    hall_name,
    lang_of,
    need,
    render,
)
from hall_server.core import hall_of
from hall_server.db import Tx
from hall_server.errors import ApiError

router = APIRouter(prefix="/console", include_in_schema=False)


def _no_supervisor(request: Request, user: Any) -> Refused:
    return Refused(render(request, "error.html", user, status=403,
                          err_zh="只有主管可以办结办件或录入评价。",
                          err_en="Only a supervisor may conclude cases or enter ratings."))


# ---- the report ------------------------------------------------------------------------------
@router.get("/reports")
async def reports_page(request: Request, period: str = "", by: str = "window") -> Response:
    try:
        user = await need(request)
    except Refused as r:
        return r.response
    hall = hall_of(request)
    q = request.query_params
    group = by if by in figures.GROUPS else "window"
    lang = lang_of(request)
    try:
        start, end = reports.parse_range(q.get("from", "")[:10], q.get("to", "")[:10], hall.today(),
                                         period=period[:10])
    except ApiError as e:
        start, end = reports.parse_range("", "", hall.today())
        err = _err_text(e, lang)
    else:
        err = ""
    rep = await hall.store.read(lambda c: reports.build(c, start, end, group))
    en = lang == "en"
    daily = rep["daily"]
    short = [(d["day"][8:], d) for d in daily]  # the day of the month: 31 labels fit
    level_names = {"very_satisfied": ("非常满意", "Very satisfied"), "satisfied": ("满意", "Satisfied"),
                   "basic": ("基本满意", "Basic"), "dissatisfied": ("不满意", "Dissatisfied"),
                   "very_dissatisfied": ("非常不满意", "Very dissatisfied")}
    # days with nothing concluded (weekends, holidays) have no rate: left out, not drawn as 0%
    rated_days = [(k, d) for k, d in short if d["on_time_rate"] is not None]
    charts = {
        "accepted": _bars([(k, float(d["accepted"])) for k, d in short], height=180),
        "on_time": _bars([(k, round(d["on_time_rate"] * 100)) for k, d in rated_days], height=180,
                         colors=["#156d3a" if d["on_time_rate"] >= 0.95 else "#b8463d" for _, d in rated_days]),
        "channels": _bars(width=720, values=[(reports.CHANNEL_NAMES[ch][1 if en else 0],
                                              float(rep["hall"]["ratings_by_channel"][ch]))
                                             for ch in figures.CHANNELS]),
        "levels": _bars(width=480, values=[(level_names[lv][1 if en else 0], float(n))
                                           for lv, n in rep["hall"]["ratings_by_level"].items()],
                        colors=[LEVEL_COLORS[k] for k in rep["hall"]["ratings_by_level"]]),
    }
    export_q = f"from={start}&to={end}&by={group}&lang={lang}"
    return render(request, "reports.html", user, hall_name=await hall_name(request), rep=rep, charts=charts,
                  columns=reports.COLUMNS, cell=reports.cell, channel_names=reports.CHANNEL_NAMES,
                  channels=figures.CHANNELS, export_q=export_q, error=err, group=group)


async def _export(request: Request, ext: str) -> Response:
    try:
        await need(request)
    except Refused as r:
        return r.response
    hall = hall_of(request)
    q = request.query_params
    group = q.get("by", "window") if q.get("by", "window") in figures.GROUPS else "window"
    lang = "en" if q.get("lang") == "en" else "zh"
    start, end = reports.parse_range(q.get("from", "")[:10], q.get("to", "")[:10], hall.today(),
                                     period=q.get("period", "")[:10])
    rep = await hall.store.read(lambda c: reports.build(c, start, end, group))
    data = reports.to_xlsx(rep, lang) if ext == "xlsx" else reports.to_pdf(rep, lang)
    return reports.export_response(data, rep, ext)


@router.get("/reports.xlsx")
async def reports_xlsx(request: Request) -> Response:
    return await _export(request, "xlsx")


@router.get("/reports.pdf")
async def reports_pdf(request: Request) -> Response:
    return await _export(request, "pdf")


# ---- cases: deadlines and conclusion ----------------------------------------------------------
@router.get("/cases")
async def cases_page(request: Request, within: int = 3, ok: str = "", error: str = "") -> Response:
    try:
        user = await need(request)
    except Refused as r:
        return r.response
    hall = hall_of(request)
    today = date.fromisoformat(hall.today())
    within = max(0, min(within, 60))
    items = await hall.store.read(lambda c: lifecycle.deadline_list(c, today, within, None))
    return render(request, "cases.html", user, hall_name=await hall_name(request), deadline_cases=items,
                  within=within, today=today.isoformat(), ok=ok[:200], error=error[:300],
                  may_conclude=user.role in lifecycle.CONCLUDE_ROLES)


@router.post("/cases/conclude")
async def cases_conclude(request: Request) -> Response:
    try:
        user = await need(request)
        form = await form_of(request, user, it=False)
        if user.role not in lifecycle.CONCLUDE_ROLES:
            raise _no_supervisor(request, user)
    except Refused as r:
        return r.response
    hall = hall_of(request)
    case_no, result = _s(form, "case_no")[:40], _s(form, "result")
    try:
        day = date.fromisoformat(_s(form, "date")) if _s(form, "date") else None
        if result not in lifecycle.CONCLUSIONS:
            raise ApiError(422, "validation_error", {"errors": ["result: approved / refused / withdrawn"]})
        await hall.store.write(lambda tx: lifecycle.conclude(tx, hall, user.staff_no, None, case_no, result, day,
                                                             _s(form, "note")[:2000]))
    except (ApiError, ValueError) as e:
        items = await hall.store.read(lambda c: lifecycle.deadline_list(c, date.fromisoformat(hall.today()), 3, None))
        return render(request, "cases.html", user, status=422, hall_name=await hall_name(request), deadline_cases=items,
                      within=3, today=hall.today(), error=_err_text(e, lang_of(request)), ok="",
                      may_conclude=True)
    return _ok("/console/cases", case_no)


# ---- paper-form and phone-survey ratings ------------------------------------------------------
@router.get("/rating-entry")
async def enter_page(request: Request, ok: str = "") -> Response:
    try:
        user = await need(request)
    except Refused as r:
        return r.response
    hall = hall_of(request)
    ctx = await hall.store.read(_enter_ctx_sync)
    return render(request, "enter_rating.html", user, hall_name=await hall_name(request), ok=ok[:200],
                  today=hall.today(), may_enter=user.role == "supervisor", **ctx)


def _enter_ctx_sync(conn: Connection) -> dict[str, Any]:
    rows = conn.execute(select(t.rating_reasons).order_by(t.rating_reasons.c.position)).mappings().all()
    return {"reasons": [dict(r) for r in rows], "reasons_version": rows[0]["version"] if rows else ""}


@router.post("/rating-entry")
async def enter_post(request: Request) -> Response:
    try:
        user = await need(request)
        form = await form_of(request, user, it=False)
        if user.role != "supervisor":
            raise _no_supervisor(request, user)
    except Refused as r:
        return r.response
    hall = hall_of(request)
    scan = form.get("form_scan")
    data = b""
    ctype = filename = ""
    if isinstance(scan, UploadFile) and scan.filename:
        data = await scan.read()
        ctype, filename = (scan.content_type or "").split(";")[0].strip(), scan.filename
    _, doc_dir = documents._dirs(request)
    key = hall.signer.documents_key
    raw = {"case_no": _s(form, "case_no"), "channel": _s(form, "channel"), "level": _s(form, "level"),
           "reasons": [v for k, v in form.items() if k.startswith("reason_") and isinstance(v, str)],
           "reasons_version": _s(form, "reasons_version"), "comment": _s(form, "comment"),
           "rated_on": _s(form, "rated_on")}
    try:
        body = rating_channels.EnteredRatingIn.model_validate(raw)

        def fn(tx: Tx) -> Any:
            doc_id = None
            if body.channel == "paper" and data:
                doc_id = rating_channels.store_form_scan(tx, key, doc_dir, body.case_no, filename, ctype, data)
            return rating_channels.enter_rating(tx, hall, user.staff_no,
                                                body.model_copy(update={"form_document_id": doc_id}))

        await hall.store.write(fn)
    except (ApiError, ValidationError) as e:
        ctx = await hall.store.read(_enter_ctx_sync)
        return render(request, "enter_rating.html", user, status=422, hall_name=await hall_name(request),
                      today=hall.today(), may_enter=True, error=_err_text(e, lang_of(request)), ok="",
                      form=raw, **ctx)
    return _ok("/console/rating-entry", body.case_no)
