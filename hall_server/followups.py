"""Bad-rating follow-up (核实 → 整改 → 反馈 → 复核, with the call-back) and appeals (申诉复核).

Every 不满意/非常不满意 rating opens one follow-up in the transaction that stores the rating
(`open_for_rating`; `sweep` opens any a path missed), due on the `bad_rating_followup_days`-th
working day after the rating's local day (hall rule, default 5; hall_server/workdays.py).

The follow-up is a state machine; a step out of order is a 409 `illegal_transition` naming the
states it is allowed from::

    open --assign--> assigned --callback--> called_back --verify--> verified
    verified(valid) --rectify--> rectified --answer--> answered
    verified(not valid) --answer--> answered
    answered --review accept--> closed        answered --review send_back--> assigned

`assign` may also move an unfinished follow-up to another person (the state stays). A further
`callback` in `called_back` is another attempt. Who may act: the supervisor for assign and
review (and never reviewing a follow-up assigned to themselves: four eyes); the assignee or a
supervisor for the call-back, verification, rectification and answer; staff see their own
window's follow-ups; IT administrators none (they run the machine, not the cases). Every step is
one row of `followup_steps` (the timeline, with its time) and one `audit_log` row.

The call-back number of a real-name case is the case's applicant's phone, decrypted only for the
assignee or a supervisor and only with a purpose, and audited in `applicant_audit` in the same
transaction (`POST /followups/{id}/callback-number`).

Appeals: staff of the rating's own window file one appeal per rating (reason + evidence: ids of
documents stored on the rating's case, uploaded through the ordinary upload API); a supervisor
other than the filer decides upheld/rejected with a note; upheld sets
`ratings.excluded_from_figures` (the rating stays; /stats and the console skip it).

Overdue = not closed and today (hall time) is after `due_day`. Rules: docs/followup.md.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError

from hall_server import schema as t
from hall_server import workdays
from hall_server.core import JSON, hall_of, json_response, mutate
from hall_server.db import Tx, iso_ms, now_ms
from hall_server.deps import Auth, IdPath, QInt
from hall_server.errors import MESSAGES, ApiError
from hall_server.hallsetup import audit, get_rules
from hall_server.queue import acting_window
from hall_server.security import Principal

log = logging.getLogger("hall_server.followups")

router = APIRouter(prefix="/api/v1", tags=["followups"])

BAD_LEVELS = ("dissatisfied", "very_dissatisfied")
STATES = ("open", "assigned", "called_back", "verified", "rectified", "answered", "closed")
OPEN_STATES = STATES[:-1]

MESSAGES.update({
    "appeal_exists": ("该评价已申诉过，每条评价只能申诉一次", "This rating has already been appealed (one appeal per rating)"),
    "appeal_decided": ("该申诉已有结论", "This appeal has already been decided"),
    "not_bad_rating": ("只有差评才需要回访整改", "Only a bad rating has a follow-up"),
    "unknown_evidence": ("证明材料不属于该办件", "The evidence is not a document of this case"),
    "unknown_staff": ("未知或已停用的工号", "Unknown or disabled staff number"),
    "own_review": ("不能复核自己承办的回访", "You cannot review a follow-up assigned to you"),
    "rectify_not_needed": ("核实为不属实，无需整改，请直接答复", "Found not valid: no rectification; answer the citizen"),
})


# ---- opening ------------------------------------------------------------------------------------
def due_day(conn: Connection, day: str, cal: workdays.WorkCalendar | None = None) -> str:
    """The last working day to close a follow-up of a rating given on local day `day`."""
    n = get_rules(conn).bad_rating_followup_days
    return (cal or workdays.current()).working_days_after(date.fromisoformat(day), n).isoformat()


def _step(conn: Connection, fid: int, step: str, actor: str, data: JSON, at: int | None = None) -> None:
    conn.execute(t.followup_steps.insert().values(
        followup_id=fid, step=step, actor=actor[:64], at_ms=now_ms() if at is None else at,
        data=json.dumps(data, ensure_ascii=False, sort_keys=True)))
    audit(conn, actor, f"followup.{step}", f"followup {fid}", None, data)


def open_for_rating(conn: Connection, rating_id: str, cal: workdays.WorkCalendar | None = None) -> int | None:
    """Open the follow-up of a bad rating (in the rating's own transaction). Returns its id, or
    None for a good rating or one that already has its follow-up."""
    r = conn.execute(select(t.ratings.c.id, t.ratings.c.case_id, t.ratings.c.window_no, t.ratings.c.bad,
                            t.ratings.c.day, t.ratings.c.received_ms)
                     .where(t.ratings.c.id == rating_id)).mappings().first()
    if r is None or not r["bad"]:
        return None
    if conn.execute(select(t.followups.c.id).where(t.followups.c.rating_id == rating_id)).first():
        return None
    now = now_ms()
    fid = int(conn.execute(t.followups.insert().values(
        rating_id=rating_id, case_id=r["case_id"], window_no=r["window_no"], state="open",
        opened_ms=now, due_day=due_day(conn, r["day"], cal), callback_attempts=0, updated_ms=now,
    )).inserted_primary_key[0])  # type: ignore[index]
    _step(conn, fid, "open", "system", {"rating_id": rating_id, "window_no": r["window_no"]}, now)
    return fid


def sweep(conn: Connection) -> int:
    """Open the follow-ups of bad ratings that have none (a path that stored a rating without
    calling `open_for_rating`, ratings older than this feature). Returns how many opened."""
    missing = conn.execute(
        select(t.ratings.c.id).outerjoin(t.followups, t.followups.c.rating_id == t.ratings.c.id)
        .where(t.ratings.c.bad.is_(True), t.followups.c.id.is_(None))).scalars().all()
    cal = workdays.load(conn) if missing else None  # a CLI process has no calendar loaded
    n = 0
    for rid in missing:
        n += open_for_rating(conn, rid, cal) is not None
    return n


# ---- reading ------------------------------------------------------------------------------------
def _today(request: Request) -> str:
    return hall_of(request).today()


def _json(r: Any, today: str) -> JSON:
    return {
        "id": r["id"], "rating_id": r["rating_id"], "case_id": r["case_id"], "window_no": r["window_no"],
        "state": r["state"], "opened_at": iso_ms(r["opened_ms"]), "due_day": r["due_day"],
        "overdue": r["state"] != "closed" and today > r["due_day"], "assignee": r["assignee"],
        "valid": r["valid"], "callback_attempts": r["callback_attempts"], "reached": r["reached"],
        "closed_at": iso_ms(r["closed_ms"]), "updated_at": iso_ms(r["updated_ms"]),
    }


def _visible(p: Principal) -> int | None:
    """The window whose follow-ups/appeals `p` may see (None: all, for a supervisor)."""
    if p.role == "supervisor":
        return None
    if p.role == "staff":
        if p.window_no is None:
            raise ApiError(403, "window_not_held" if p.lost_window_no is not None else "forbidden")
        return p.window_no
    raise ApiError(403, "forbidden")


def list_followups(conn: Connection, today: str, *, state: str | None = None, window_no: int | None = None,
                   overdue: bool | None = None, assignee: str | None = None, limit: int = 500) -> list[JSON]:
    f = t.followups.c
    q = (select(t.followups, t.ratings.c.level, t.ratings.c.comment, t.ratings.c.reasons, t.ratings.c.source,
                t.ratings.c.assurance, t.ratings.c.excluded_from_figures, t.cases.c.case_no)
         .join(t.ratings, t.ratings.c.id == f.rating_id).join(t.cases, t.cases.c.id == f.case_id))
    if state == "unfinished":
        q = q.where(f.state != "closed")
    elif state:
        q = q.where(f.state == state)
    if window_no is not None:
        q = q.where(f.window_no == window_no)
    if assignee:
        q = q.where(f.assignee == assignee)
    if overdue:
        q = q.where(f.state != "closed", f.due_day < today)
    q = q.order_by(f.due_day, f.id).limit(limit)
    out = []
    for r in conn.execute(q).mappings():
        j = _json(r, today)
        j.update(level=r["level"], comment=r["comment"], reasons=json.loads(r["reasons"]), source=r["source"],
                 assurance=r["assurance"], excluded_from_figures=bool(r["excluded_from_figures"]),
                 case_no=r["case_no"])
        out.append(j)
    return out


def followup_view(conn: Connection, fid: int, today: str) -> JSON:
    """One follow-up with its rating, case and timeline (steps in order)."""
    rows = list_followups_by_id(conn, fid, today)
    steps = [{"step": s["step"], "actor": s["actor"], "at": iso_ms(s["at_ms"]), "data": json.loads(s["data"])}
             for s in conn.execute(select(t.followup_steps).where(t.followup_steps.c.followup_id == fid)
                                   .order_by(t.followup_steps.c.id)).mappings()]
    rows["timeline"] = steps
    ap = conn.execute(select(t.appeals).where(t.appeals.c.rating_id == rows["rating_id"])).mappings().first()
    rows["appeal"] = None if ap is None else appeal_json(ap)
    return rows


def list_followups_by_id(conn: Connection, fid: int, today: str) -> JSON:
    f = t.followups.c
    r = conn.execute(
        select(t.followups, t.ratings.c.level, t.ratings.c.comment, t.ratings.c.reasons, t.ratings.c.source,
               t.ratings.c.assurance, t.ratings.c.excluded_from_figures, t.ratings.c.rated_ms, t.cases.c.case_no,
               t.cases.c.matter_code, t.cases.c.staff_no)
        .join(t.ratings, t.ratings.c.id == f.rating_id).join(t.cases, t.cases.c.id == f.case_id)
        .where(f.id == fid)).mappings().first()
    if r is None:
        raise ApiError(404, "not_found", {"followup_id": fid})
    j = _json(r, today)
    j.update(level=r["level"], comment=r["comment"], reasons=json.loads(r["reasons"]), source=r["source"],
             assurance=r["assurance"], excluded_from_figures=bool(r["excluded_from_figures"]),
             rated_at=iso_ms(r["rated_ms"]), case_no=r["case_no"], matter_code=r["matter_code"],
             case_staff_no=r["staff_no"],
             real_name=conn.execute(select(t.case_applicants.c.case_id)
                                    .where(t.case_applicants.c.case_id == r["case_id"])).first() is not None)
    return j


def appeal_json(r: Any) -> JSON:
    return {"id": r["id"], "rating_id": r["rating_id"], "window_no": r["window_no"], "filed_by": r["filed_by"],
            "filed_at": iso_ms(r["filed_ms"]), "reason": r["reason"], "evidence": json.loads(r["evidence"]),
            "state": r["state"], "decided_by": r["decided_by"], "decided_at": iso_ms(r["decided_ms"]),
            "decision_note": r["decision_note"]}


def list_appeals(conn: Connection, *, state: str | None = None, window_no: int | None = None) -> list[JSON]:
    q = select(t.appeals, t.ratings.c.level, t.cases.c.case_no).join(
        t.ratings, t.ratings.c.id == t.appeals.c.rating_id).join(t.cases, t.cases.c.id == t.ratings.c.case_id)
    if state:
        q = q.where(t.appeals.c.state == state)
    if window_no is not None:
        q = q.where(t.appeals.c.window_no == window_no)
    out = []
    for r in conn.execute(q.order_by(t.appeals.c.id.desc()).limit(500)).mappings():
        j = appeal_json(r)
        j.update(level=r["level"], case_no=r["case_no"])
        out.append(j)
    return out


def counts(conn: Connection, today: str) -> JSON:
    """Unfinished / overdue / closed follow-ups and pending appeals, hall-wide (console badge)."""
    f = t.followups.c
    unfinished = conn.execute(select(func.count()).where(f.state != "closed")).scalar_one()
    overdue = conn.execute(select(func.count()).where(f.state != "closed", f.due_day < today)).scalar_one()
    pending = conn.execute(select(func.count()).select_from(t.appeals)
                           .where(t.appeals.c.state == "pending")).scalar_one()
    return {"unfinished": unfinished, "overdue": overdue, "appeals_pending": pending}


# ---- the steps ----------------------------------------------------------------------------------
def _load(conn: Connection, fid: int) -> Any:
    q = select(t.followups).where(t.followups.c.id == fid)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()  # two supervisors acting on one follow-up: one waits for the other
    r = conn.execute(q).mappings().first()
    if r is None:
        raise ApiError(404, "not_found", {"followup_id": fid})
    return r


def _require(fu: Any, *states: str) -> None:
    if fu["state"] not in states:
        raise ApiError(409, "illegal_transition", {"state": fu["state"], "allowed_from": list(states)})


def _supervisor(p: Principal) -> None:
    if p.role != "supervisor":
        raise ApiError(403, "forbidden", {"need": ["supervisor"]})


def _worker(p: Principal, fu: Any) -> None:
    """The assignee or a supervisor does the call-back, verification, rectification, answer."""
    if p.role == "supervisor":
        return
    if p.role == "staff" and fu["assignee"] == p.staff_no:
        return
    raise ApiError(403, "forbidden", {"need": ["assignee", "supervisor"]})


def _set(conn: Connection, fid: int, **values: Any) -> None:
    conn.execute(t.followups.update().where(t.followups.c.id == fid).values(updated_ms=now_ms(), **values))


def _evidence(conn: Connection, case_id: int, ids: list[str]) -> list[str]:
    if not ids:
        return []
    found = set(conn.execute(select(t.documents.c.id).where(
        t.documents.c.id.in_(ids), t.documents.c.case_id == case_id)).scalars())
    missing = [i for i in ids if i not in found]
    if missing:
        raise ApiError(422, "unknown_evidence", {"document_ids": missing})
    return list(dict.fromkeys(ids))


def assign_op(tx: Tx, p: Principal, fid: int, assignee: str) -> JSON:
    conn = tx.conn
    _supervisor(p)
    fu = _load(conn, fid)
    _require(fu, *OPEN_STATES)
    st = conn.execute(select(t.staff.c.role, t.staff.c.disabled).where(t.staff.c.staff_no == assignee)).first()
    if st is None or st[1] or st[0] not in ("staff", "supervisor"):
        raise ApiError(422, "unknown_staff", {"staff_no": assignee})
    _set(conn, fid, assignee=assignee, state="assigned" if fu["state"] == "open" else fu["state"])
    _step(conn, fid, "assign", p.staff_no, {"assignee": assignee, "from": fu["assignee"]})
    return {"id": fid, "state": "assigned" if fu["state"] == "open" else fu["state"], "assignee": assignee}


def callback_op(tx: Tx, p: Principal, fid: int, reached: bool, said: str) -> JSON:
    conn = tx.conn
    fu = _load(conn, fid)
    _worker(p, fu)
    _require(fu, "assigned", "called_back")
    _set(conn, fid, state="called_back", reached=reached, callback_attempts=fu["callback_attempts"] + 1)
    _step(conn, fid, "callback", p.staff_no, {"reached": reached, "said": said,
                                              "attempt": fu["callback_attempts"] + 1})
    return {"id": fid, "state": "called_back", "callback_attempts": fu["callback_attempts"] + 1}


def verify_op(tx: Tx, p: Principal, fid: int, valid: bool, finding: str, evidence: list[str]) -> JSON:
    conn = tx.conn
    fu = _load(conn, fid)
    _worker(p, fu)
    _require(fu, "called_back")
    docs = _evidence(conn, fu["case_id"], evidence)
    _set(conn, fid, state="verified", valid=valid)
    _step(conn, fid, "verify", p.staff_no, {"valid": valid, "finding": finding, "evidence": docs})
    return {"id": fid, "state": "verified", "valid": valid}


def rectify_op(tx: Tx, p: Principal, fid: int, action: str) -> JSON:
    conn = tx.conn
    fu = _load(conn, fid)
    _worker(p, fu)
    _require(fu, "verified")
    if not fu["valid"]:
        raise ApiError(409, "rectify_not_needed", {"state": fu["state"], "valid": False})
    _set(conn, fid, state="rectified")
    _step(conn, fid, "rectify", p.staff_no, {"action": action})
    return {"id": fid, "state": "rectified"}


def answer_op(tx: Tx, p: Principal, fid: int, answer: str) -> JSON:
    conn = tx.conn
    fu = _load(conn, fid)
    _worker(p, fu)
    if fu["state"] == "verified" and fu["valid"]:
        raise ApiError(409, "illegal_transition", {"state": "verified", "allowed_from": ["rectified"],
                                                   "valid": True})
    _require(fu, "verified", "rectified")
    _set(conn, fid, state="answered")
    _step(conn, fid, "answer", p.staff_no, {"answer": answer})
    return {"id": fid, "state": "answered"}


def review_op(tx: Tx, p: Principal, fid: int, decision: str, note: str) -> JSON:
    conn = tx.conn
    _supervisor(p)
    fu = _load(conn, fid)
    _require(fu, "answered")
    if fu["assignee"] == p.staff_no:
        raise ApiError(403, "own_review")
    now = now_ms()
    if decision == "accept":
        _set(conn, fid, state="closed", closed_ms=now)
        conn.execute(t.ratings.update().where(t.ratings.c.id == fu["rating_id"]).values(followed_up=True))
        state = "closed"
    else:
        _set(conn, fid, state="assigned", valid=None)
        state = "assigned"
    _step(conn, fid, "review", p.staff_no, {"decision": decision, "note": note})
    return {"id": fid, "state": state}


# ---- appeals ------------------------------------------------------------------------------------
def file_appeal_op(tx: Tx, p: Principal, rating_id: str, reason: str, evidence: list[str]) -> JSON:
    conn = tx.conn
    r = conn.execute(select(t.ratings.c.window_no, t.ratings.c.case_id).where(t.ratings.c.id == rating_id)).first()
    if r is None:
        raise ApiError(404, "not_found", {"rating_id": rating_id})
    # Staff of the rating's own window only (supervisors decide appeals; they do not file them).
    if p.role != "staff":
        raise ApiError(403, "forbidden", {"need": ["staff"]})
    acting_window(p, int(r[0]))
    if conn.execute(select(t.appeals.c.id).where(t.appeals.c.rating_id == rating_id)).first():
        raise ApiError(409, "appeal_exists", {"rating_id": rating_id})
    docs = _evidence(conn, int(r[1]), evidence)
    aid = int(conn.execute(t.appeals.insert().values(
        rating_id=rating_id, window_no=int(r[0]), filed_by=p.staff_no, filed_ms=now_ms(), reason=reason,
        evidence=json.dumps(docs), state="pending", decision_note="")).inserted_primary_key[0])  # type: ignore[index]
    audit(conn, p.staff_no, "appeal.file", f"rating {rating_id}", None,
          {"appeal_id": aid, "reason": reason, "evidence": docs})
    row = conn.execute(select(t.appeals).where(t.appeals.c.id == aid)).mappings().one()
    return appeal_json(row)


def decide_appeal_op(tx: Tx, p: Principal, aid: int, decision: str, note: str) -> JSON:
    conn = tx.conn
    _supervisor(p)
    ap = conn.execute(select(t.appeals).where(t.appeals.c.id == aid)).mappings().first()
    if ap is None:
        raise ApiError(404, "not_found", {"appeal_id": aid})
    if ap["filed_by"] == p.staff_no:
        raise ApiError(403, "forbidden", {"reason": "own appeal"})
    if ap["state"] != "pending":
        raise ApiError(409, "appeal_decided", {"state": ap["state"]})
    now = now_ms()
    done = conn.execute(t.appeals.update().where(t.appeals.c.id == aid, t.appeals.c.state == "pending").values(
        state=decision, decided_by=p.staff_no, decided_ms=now, decision_note=note)).rowcount
    if not done:  # a concurrent decision won
        raise ApiError(409, "appeal_decided")
    if decision == "upheld":
        conn.execute(t.ratings.update().where(t.ratings.c.id == ap["rating_id"]).values(excluded_from_figures=True))
    audit(conn, p.staff_no, "appeal.decide", f"rating {ap['rating_id']}", {"state": "pending"},
          {"appeal_id": aid, "state": decision, "note": note})
    return appeal_json(conn.execute(select(t.appeals).where(t.appeals.c.id == aid)).mappings().one())


# ---- routes -------------------------------------------------------------------------------------
Text = Annotated[str, Field(min_length=1, max_length=2000)]
DocIds = Annotated[list[Annotated[str, Field(max_length=40)]], Field(max_length=20)]


class AssignIn(BaseModel):
    assignee: Annotated[str, Field(min_length=1, max_length=32)]


class CallbackIn(BaseModel):
    reached: bool
    said: Annotated[str, Field(max_length=2000)] = ""


class VerifyIn(BaseModel):
    valid: bool
    finding: Text
    evidence_document_ids: DocIds = []


class RectifyIn(BaseModel):
    action: Text


class AnswerIn(BaseModel):
    answer: Text


class ReviewIn(BaseModel):
    decision: Literal["accept", "send_back"]
    note: Annotated[str, Field(max_length=2000)] = ""


class PurposeIn(BaseModel):
    purpose: Annotated[str, Field(min_length=2, max_length=200)]


class AppealIn(BaseModel):
    reason: Text
    evidence_document_ids: DocIds = []


class DecisionIn(BaseModel):
    decision: Literal["upheld", "rejected"]
    note: Text


@router.get("/followups")
async def get_followups(
    request: Request, p: Auth,
    state: Annotated[str | None, Query(pattern="^(open|assigned|called_back|verified|rectified|answered|closed"
                                                "|unfinished)$")] = None,
    window_no: QInt = None, overdue: bool | None = None,
) -> Response:
    own = _visible(p)
    if own is not None:
        if window_no is not None and window_no != own:
            raise ApiError(403, "forbidden", {"window_no": window_no})
        window_no = own
    today = _today(request)
    items = await hall_of(request).store.read(
        lambda c: list_followups(c, today, state=state, window_no=window_no, overdue=overdue))
    return json_response({"today": today, "items": items})


@router.get("/followups/{fid}")
async def get_followup(request: Request, fid: IdPath, p: Auth) -> Response:
    own = _visible(p)
    today = _today(request)
    view = await hall_of(request).store.read(lambda c: followup_view(c, fid, today))
    if own is not None and view["window_no"] != own:
        raise ApiError(404, "not_found", {"followup_id": fid})  # another window's: not even its existence
    return json_response(view)


@router.post("/followups/{fid}/assign")
async def assign(request: Request, fid: IdPath, body: AssignIn, p: Auth) -> Response:
    return await mutate(request, lambda tx: assign_op(tx, p, fid, body.assignee))


@router.post("/followups/{fid}/callback")
async def callback(request: Request, fid: IdPath, body: CallbackIn, p: Auth) -> Response:
    return await mutate(request, lambda tx: callback_op(tx, p, fid, body.reached, body.said.strip()))


@router.post("/followups/{fid}/verify")
async def verify(request: Request, fid: IdPath, body: VerifyIn, p: Auth) -> Response:
    return await mutate(request, lambda tx: verify_op(tx, p, fid, body.valid, body.finding.strip(),
                                                      body.evidence_document_ids))


@router.post("/followups/{fid}/rectify")
async def rectify(request: Request, fid: IdPath, body: RectifyIn, p: Auth) -> Response:
    return await mutate(request, lambda tx: rectify_op(tx, p, fid, body.action.strip()))


@router.post("/followups/{fid}/answer")
async def answer(request: Request, fid: IdPath, body: AnswerIn, p: Auth) -> Response:
    return await mutate(request, lambda tx: answer_op(tx, p, fid, body.answer.strip()))


@router.post("/followups/{fid}/review")
async def review(request: Request, fid: IdPath, body: ReviewIn, p: Auth) -> Response:
    return await mutate(request, lambda tx: review_op(tx, p, fid, body.decision, body.note.strip()))


@router.post("/followups/{fid}/callback-number")
async def callback_number(request: Request, fid: IdPath, body: PurposeIn, p: Auth) -> Response:
    """The applicant's phone for the call-back: assignee or supervisor, with a purpose, audited."""
    from hall_server import (
        applicants,  # the key holder; imported here: applicants imports queue too
    )

    keys = applicants.keys_of(request)

    def fn(tx: Tx) -> JSON:
        fu = _load(tx.conn, fid)
        _worker(p, fu)
        _require(fu, *OPEN_STATES)
        fields, _green, _ms = applicants._load(tx.conn, keys, int(fu["case_id"]))
        purpose = f"followup {fid}: {body.purpose.strip()}"
        applicants._audit(tx.conn, int(fu["case_id"]), "reveal", p.staff_no, p.window_no, purpose)
        audit(tx.conn, p.staff_no, "followup.callback_number", f"followup {fid}", None, {"purpose": purpose})
        return {"followup_id": fid, "case_id": fu["case_id"], "name": fields["name"], "phone": fields["phone"]}

    # Not through `mutate`: a stored replay would keep the phone number in the database.
    r = json_response(await hall_of(request).store.write(fn))
    r.headers["Cache-Control"] = "no-store"
    return r


@router.get("/appeals")
async def get_appeals(request: Request, p: Auth,
                      state: Annotated[str | None, Query(pattern="^(pending|upheld|rejected)$")] = None,
                      window_no: QInt = None) -> Response:
    own = _visible(p)
    if own is not None:
        if window_no is not None and window_no != own:
            raise ApiError(403, "forbidden", {"window_no": window_no})
        window_no = own
    return json_response({"items": await hall_of(request).store.read(
        lambda c: list_appeals(c, state=state, window_no=window_no))})


@router.post("/ratings/{rating_id}/appeal", status_code=201)
async def file_appeal(request: Request, rating_id: Annotated[str, PathParam(max_length=64)], body: AppealIn,
                      p: Auth) -> Response:
    try:
        return await mutate(request, lambda tx: file_appeal_op(tx, p, rating_id, body.reason.strip(),
                                                               body.evidence_document_ids), status=201)
    except IntegrityError:  # a twin appeal committed first (the unique rating_id is the guard)
        raise ApiError(409, "appeal_exists", {"rating_id": rating_id}) from None


@router.post("/appeals/{aid}/decision")
async def decide_appeal(request: Request, aid: IdPath, body: DecisionIn, p: Auth) -> Response:
    return await mutate(request, lambda tx: decide_appeal_op(tx, p, aid, body.decision, body.note.strip()))


@router.get("/windows/{no}/followups")
async def window_followups(request: Request, no: IdPath, p: Auth) -> Response:
    """The desk's panel: the window's unfinished follow-ups and its appeals, for its own staff."""
    if p.role == "it_admin":
        raise ApiError(403, "forbidden")
    acting_window(p, no)
    today = _today(request)

    def fn(c: Connection) -> JSON:
        return {"window_no": no, "today": today,
                "followups": list_followups(c, today, state="unfinished", window_no=no),
                "appeals": list_appeals(c, window_no=no)}

    return json_response(await hall_of(request).store.read(fn))
