"""Console pages of the bad-rating follow-up and appeals (docs/console.md, docs/followup.md):

- ``/console/followups``        the list (filters: state, window, overdue), overdue ones marked;
- ``/console/followups/{id}``   the case view: rating, case, deadline, timeline, and the forms of
  the next step (a supervisor assigns, may do any step, reviews; forms post to the same audited
  operations as the API, hall_server/followups.py);
- ``/console/appeals``          appeals with their decision forms.

Supervisors only: staff work from the desk, IT administrators run the machine, not the cases.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import Connection, select

from hall_server import followups
from hall_server import schema as t
from hall_server.console import (
    ConsoleUser,
    Refused,
    _err_text,
    _headers,
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
from hall_server.security import Principal

router = APIRouter(prefix="/console", include_in_schema=False)

STATES = ("unfinished", *followups.STATES)


async def _supervisor(request: Request) -> ConsoleUser:
    user = await need(request)
    if user.role != "supervisor":
        raise Refused(render(request, "error.html", user, status=403, hall_name=await hall_name(request),
                             err_zh="回访与申诉页面仅值班主任可用。",
                             err_en="Only a supervisor may use the follow-up and appeal pages."))
    return user


def _p(user: ConsoleUser) -> Principal:
    return Principal(user.staff_no, user.role, None, user.session_id)


def _local(request: Request, iso: str | None) -> str:
    if not iso:
        return ""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(hall_of(request).tz).strftime("%Y-%m-%d %H:%M")


@router.get("/followups")
async def list_page(request: Request, state: str = "unfinished", window: str = "", overdue: str = "") -> Response:
    try:
        user = await _supervisor(request)
    except Refused as r:
        return r.response
    hall = hall_of(request)
    today = hall.today()
    st = state if state in STATES or state == "" else "unfinished"
    win = int(window) if window.isdigit() and len(window) < 6 else None
    late = overdue == "1"

    def fn(conn: Connection) -> dict[str, Any]:
        rows = followups.list_followups(conn, today, state=st or None, window_no=win, overdue=late or None)
        nos = list(conn.execute(select(t.windows.c.no).order_by(t.windows.c.no)).scalars())
        return {"rows": rows, "window_nos": nos, "counts": followups.counts(conn, today)}

    data = await hall.store.read(fn)
    for row in data["rows"]:
        row["opened_local"] = _local(request, row["opened_at"])
    return render(request, "followups.html", user, hall_name=await hall_name(request), state=st, window=win,
                  overdue=late, states=STATES, today=today, **data)


async def _view(request: Request, fid: int) -> dict[str, Any]:
    today = hall_of(request).today()

    def fn(conn: Connection) -> dict[str, Any]:
        v = followups.followup_view(conn, fid, today)
        staff = [dict(r) for r in conn.execute(
            select(t.staff.c.staff_no, t.staff.c.name_zh, t.staff.c.name_en)
            .where(t.staff.c.role.in_(("staff", "supervisor")), t.staff.c.disabled.is_(False))
            .order_by(t.staff.c.staff_no)).mappings()]
        reasons = {r["code"]: r for r in conn.execute(select(t.rating_reasons)).mappings()}
        v["reason_rows"] = [reasons.get(c) or {"text_zh": c, "text_en": c} for c in v["reasons"]]
        return {"f": v, "staff": staff}

    data = await hall_of(request).store.read(fn)
    for s in data["f"]["timeline"]:
        s["local"] = _local(request, s["at"])
    data["f"]["rated_local"] = _local(request, data["f"]["rated_at"])
    closed = _local(request, data["f"]["closed_at"])
    data["f"]["closed_late"] = bool(closed) and closed[:10] > data["f"]["due_day"]
    return data


@router.get("/followups/{fid}")
async def case_page(request: Request, fid: int) -> Response:
    try:
        user = await _supervisor(request)
    except Refused as r:
        return r.response
    try:
        data = await _view(request, fid)
    except ApiError:
        return render(request, "error.html", user, status=404, hall_name=await hall_name(request),
                      err_zh="没有此回访。", err_en="No such follow-up.")
    return render(request, "followup.html", user, hall_name=await hall_name(request), **data)


def _step_op(user: ConsoleUser, fid: int, step: str, form: dict[str, Any]) -> Any:
    p = _p(user)
    if step == "assign":
        return lambda tx: followups.assign_op(tx, p, fid, _s(form, "assignee")[:32])
    if step == "callback":
        return lambda tx: followups.callback_op(tx, p, fid, _s(form, "reached") == "1", _s(form, "said")[:2000])
    text = _s(form, "text")[:2000]
    if step in ("verify", "rectify", "answer") and not text:
        raise ApiError(422, "validation_error", message_zh="请填写内容", message_en="Please fill in the text")
    if step == "verify":
        return lambda tx: followups.verify_op(tx, p, fid, _s(form, "valid") == "1", text, [])
    if step == "rectify":
        return lambda tx: followups.rectify_op(tx, p, fid, text)
    if step == "answer":
        return lambda tx: followups.answer_op(tx, p, fid, text)
    if step == "review":
        decision = _s(form, "decision")
        if decision not in ("accept", "send_back"):
            raise ApiError(422, "validation_error")
        return lambda tx: followups.review_op(tx, p, fid, decision, text)
    raise ApiError(404, "not_found")


@router.post("/followups/{fid}/{step}")
async def step_post(request: Request, fid: int, step: str) -> Response:
    try:
        user = await _supervisor(request)
        form = await form_of(request, user, it=False)
    except Refused as r:
        return r.response
    try:
        op = _step_op(user, fid, step, form)
        await hall_of(request).store.write(op)
    except ApiError as e:
        try:
            data = await _view(request, fid)
        except ApiError:
            return render(request, "error.html", user, status=404, err_zh="没有此回访。", err_en="No such follow-up.")
        return render(request, "followup.html", user, status=e.status, hall_name=await hall_name(request),
                      error=_err_text(e, lang_of(request)), **data)
    return _headers(RedirectResponse(f"/console/followups/{fid}?done={step}", status_code=303))


@router.get("/appeals")
async def appeals_page(request: Request, state: str = "") -> Response:
    try:
        user = await _supervisor(request)
    except Refused as r:
        return r.response
    st = state if state in ("pending", "upheld", "rejected") else None
    rows = await hall_of(request).store.read(lambda c: followups.list_appeals(c, state=st))
    for row in rows:
        row["filed_local"] = _local(request, row["filed_at"])
        row["decided_local"] = _local(request, row["decided_at"])
    return render(request, "appeals.html", user, hall_name=await hall_name(request), rows=rows, state=st or "")


@router.post("/appeals/{aid}/decide")
async def appeal_post(request: Request, aid: int) -> Response:
    try:
        user = await _supervisor(request)
        form = await form_of(request, user, it=False)
    except Refused as r:
        return r.response
    decision, note = _s(form, "decision"), _s(form, "note")[:2000]

    def fn(tx: Tx) -> Any:
        if decision not in ("upheld", "rejected") or not note:
            raise ApiError(422, "validation_error", message_zh="请选择结论并填写说明",
                           message_en="Choose a decision and write a note")
        return followups.decide_appeal_op(tx, _p(user), aid, decision, note)

    try:
        await hall_of(request).store.write(fn)
    except ApiError as e:
        rows = await hall_of(request).store.read(lambda c: followups.list_appeals(c))
        return render(request, "appeals.html", user, status=e.status, hall_name=await hall_name(request),
                      rows=rows, state="", error=_err_text(e, lang_of(request)))
    return _headers(RedirectResponse("/console/appeals", status_code=303))


