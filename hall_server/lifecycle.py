"""A case's life after the window (issue 15 item 1): the promised deadline, the back office's
conclusion (办结) and the two measured rates.

- When the window closes a case (`window_close_values`, called by queue.complete):
  * `completed` (办结 at the window, the same visit): concluded that day as `approved`,
    `on_the_spot` true, and on time (it cannot be later than any deadline);
  * `accepted` (受理): the deadline is the matter's `time_limit_days`-th working day after the
    day of acceptance in the hall calendar (workdays.py); open until the back office concludes;
    `on_the_spot` false;
  * `correction` / `rejected` / `forwarded`: nothing was accepted, so no deadline and the case
    counts in neither rate.
- `conclude` (supervisor only: the back office's decision is not the window's to make; a clerk,
  of this window or another, gets 403): `approved` / `refused` / `withdrawn` with the date;
  `on_time` = concluded_day <= deadline_day, computed here and nowhere else.
- `deadline_list`: open accepted cases past or within N working days of their deadline.

The routes are `/api/v1/cases/{id}/conclusion` and `/api/v1/case-deadlines` (docs/hall-api.md).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from hall_server import hallsetup, workdays
from hall_server import schema as t
from hall_server.core import JSON, hall_of, json_response, mutate, require_role
from hall_server.db import Tx, iso_ms, now_ms
from hall_server.deps import Auth, IdPath
from hall_server.errors import MESSAGES, ApiError
from hall_server.security import Principal

CONCLUSIONS = ("approved", "refused", "withdrawn")
CONCLUDE_ROLES = ("supervisor",)

MESSAGES.update({
    "case_not_accepted": ("该办件未受理，不能办结", "This case was not accepted, so it cannot be concluded"),
    "case_already_concluded": ("该办件已办结", "This case is already concluded"),
    "bad_conclusion_date": ("办结日期有误：不能早于受理日期，也不能晚于今天",
                            "Bad conclusion date: not before the case was accepted, not after today"),
})


def deadline_for(accepted: date, limit_days: int, cal: workdays.WorkCalendar | None = None) -> date:
    """The promised deadline: the `limit_days`-th working day after `accepted` (the day itself
    never counts; limit 0 = the same day)."""
    return (cal or workdays.current()).working_days_after(accepted, limit_days)


def window_close_values(conn: Connection, matter_code: str | None, outcome: str, day: str,
                        now: int, staff_no: str) -> dict[str, Any]:
    """The lifecycle columns a case gets when the window closes it with `outcome` on `day`."""
    limit = None
    if matter_code is not None:
        limit = conn.execute(select(t.matters.c.time_limit_days)
                             .where(t.matters.c.code == matter_code)).scalar()
    out: dict[str, Any] = {"time_limit_days": limit, "deadline_day": None, "conclusion": None,
                           "concluded_day": None, "concluded_ms": None, "concluded_by": None,
                           "on_the_spot": None, "on_time": None}
    if outcome not in ("completed", "accepted"):
        return out
    d = date.fromisoformat(day)
    deadline = deadline_for(d, int(limit)) if limit is not None else (d if outcome == "completed" else None)
    out["deadline_day"] = None if deadline is None else deadline.isoformat()
    if outcome == "completed":
        out.update(conclusion="approved", concluded_day=day, concluded_ms=now, concluded_by=staff_no,
                   on_the_spot=True, on_time=True)
    else:
        out["on_the_spot"] = False
    return out


def conclusion_values(case: Any, conclusion: str, day: date, today: date, now: int,
                      actor: str) -> dict[str, Any]:
    """Check a conclusion of `case` (a cases row) and return the columns it sets."""
    if conclusion not in CONCLUSIONS:
        raise ApiError(422, "validation_error", {"errors": [{"field": "result", "message": "approved, refused or withdrawn"}]})
    if case["outcome"] != "accepted":
        raise ApiError(409, "case_not_accepted", {"outcome": case["outcome"]})
    if case["conclusion"] is not None:
        raise ApiError(409, "case_already_concluded", {"conclusion": case["conclusion"],
                                                       "concluded_day": case["concluded_day"]})
    if day < date.fromisoformat(case["day"]) or day > today:
        raise ApiError(422, "bad_conclusion_date", {"accepted_day": case["day"], "today": today.isoformat()})
    on_time = None if case["deadline_day"] is None else day.isoformat() <= case["deadline_day"]
    return {"conclusion": conclusion, "concluded_day": day.isoformat(), "concluded_ms": now,
            "concluded_by": actor, "on_time": on_time}


def conclude(tx: Tx, hall: Any, actor: str, case_id: int | None, case_no: str | None,
             conclusion: str, day: date | None, note: str) -> JSON:
    """办结 one accepted case (API, console and CLI all come here); audited."""
    conn = tx.conn
    q = select(t.cases)
    q = q.where(t.cases.c.id == case_id) if case_id is not None else q.where(t.cases.c.case_no == case_no)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    case = conn.execute(q).mappings().first()
    if case is None:
        raise ApiError(404, "not_found", {"case_id": case_id, "case_no": case_no})
    now = now_ms()
    today = date.fromisoformat(hall.day_of(now))
    values = conclusion_values(case, conclusion, day or today, today, now, actor)
    if note.strip():
        values["outcome_note"] = (case["outcome_note"] + "\n" + note.strip()).strip()
    conn.execute(t.cases.update().where(t.cases.c.id == case["id"]).values(**values))
    hallsetup.audit(conn, actor, "case.conclude", case["case_no"], None,
          {k: values[k] for k in ("conclusion", "concluded_day", "on_time")})
    return lifecycle_json({**case, **values})


def lifecycle_json(c: Any) -> JSON:
    return {"case_id": int(c["id"]), "case_no": c["case_no"], "window_no": c["window_no"],
            "staff_no": c["staff_no"], "matter_code": c["matter_code"], "outcome": c["outcome"],
            "accepted_day": c["day"], "time_limit_days": c["time_limit_days"],
            "deadline": c["deadline_day"], "conclusion": c["conclusion"],
            "concluded_day": c["concluded_day"], "concluded_at": iso_ms(c["concluded_ms"]),
            "on_time": c["on_time"], "on_the_spot": c["on_the_spot"]}


def working_days_between(a: date, b: date, cal: workdays.WorkCalendar | None = None) -> int:
    """Working days from `a` to `b` (b after a: positive, the count of working days in (a, b];
    b before a: negative, minus the count in (b, a])."""
    c = cal or workdays.current()
    sign, lo, hi = (1, a, b) if b >= a else (-1, b, a)
    n, d = 0, lo
    while d < hi:
        d = date.fromordinal(d.toordinal() + 1)
        n += c.is_working_day(d)
    return sign * n


def deadline_list(conn: Connection, today: date, within_days: int, window_no: int | None) -> list[JSON]:
    """Open accepted cases whose deadline is past or within `within_days` working days, the
    most urgent first, each with `working_days_left` (negative: overdue by that many)."""
    horizon = deadline_for(today, within_days).isoformat()
    q = (select(t.cases).where(t.cases.c.outcome == "accepted", t.cases.c.conclusion.is_(None),
                               t.cases.c.deadline_day.is_not(None), t.cases.c.deadline_day <= horizon)
         .order_by(t.cases.c.deadline_day, t.cases.c.id))
    if window_no is not None:
        q = q.where(t.cases.c.window_no == window_no)
    rows = conn.execute(q).mappings().all()
    codes = {c["matter_code"] for c in rows if c["matter_code"]}
    names = {m[0]: (m[1], m[2]) for m in conn.execute(
        select(t.matters.c.code, t.matters.c.name_zh, t.matters.c.name_en).where(t.matters.c.code.in_(codes)))}
    out = []
    for c in rows:
        j = lifecycle_json(c)
        j["matter_name_zh"], j["matter_name_en"] = names.get(c["matter_code"], ("", ""))
        left = working_days_between(today, date.fromisoformat(c["deadline_day"]))
        j["working_days_left"] = left
        j["state"] = "overdue" if c["deadline_day"] < today.isoformat() else "due_soon"
        out.append(j)
    return out


# ---- API -------------------------------------------------------------------------------------
router = APIRouter(prefix="/api/v1", tags=["cases"])


class ConclusionIn(BaseModel):
    result: Literal["approved", "refused", "withdrawn"]
    on: date | None = Field(default=None, alias="date")  # default: today in the hall's time zone
    note: Annotated[str, Field(max_length=2000)] = ""


@router.get("/case-deadlines")
async def get_deadlines(request: Request, p: Auth,
                        within_days: Annotated[int, Query(ge=0, le=60)] = 3) -> Response:
    """Supervisors and IT see every window's; a clerk only their own window's cases."""
    hall = hall_of(request)
    today = date.fromisoformat(hall.today())
    only = _own_window(p)
    items = await hall.store.read(lambda c: deadline_list(c, today, within_days, only))
    return json_response({"today": today.isoformat(), "within_days": within_days, "items": items})


def _own_window(p: Principal) -> int | None:
    if p.role in ("supervisor", "it_admin"):
        return None
    if p.window_no is None:
        raise ApiError(403, "forbidden", {"need": ["supervisor", "it_admin"]})
    return int(p.window_no)


@router.post("/cases/{case_id}/conclusion")
async def post_conclusion(request: Request, case_id: IdPath, body: ConclusionIn, p: Auth) -> Response:
    require_role(p, *CONCLUDE_ROLES)
    hall = hall_of(request)
    return await mutate(request, lambda tx: conclude(tx, hall, p.staff_no, case_id, None, body.result,
                                                     body.on, body.note))


def conclude_cli(store: Any, case_no: str, result: str, day: str | None, note: str, actor: str) -> JSON:
    """`hall-server conclude CASE_NO --result ... [--date ...]`: the same `conclude`, audited
    as `cli:<os user>`, in the hall's own time zone and calendar. Bad input raises ValueError
    or ApiError (the CLI prints either and exits 1)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    when = date.fromisoformat(day) if day else None
    rt = hallsetup.runtime(store)
    zone = ZoneInfo(rt.timezone or "Asia/Shanghai")
    workdays.set_current(rt.calendar)

    class _Clock:
        def day_of(self, ms: int) -> str:
            return datetime.fromtimestamp(ms / 1000, zone).strftime("%Y-%m-%d")

    out: JSON = store.write_sync(lambda tx: conclude(tx, _Clock(), actor, None, case_no, result, when, note))
    return out
