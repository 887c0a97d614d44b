"""Demo follow-ups and appeals: bad ratings in every follow-up state (two of them overdue) and one
appeal of each outcome, so the console's follow-up pages show something true on first start.

`seed_followups_demo(store)` runs once after the demo hall (and its month of history, seeded by
demo_history.py) exists. First the history's own bad ratings get their follow-ups, so the figures
and the follow-up pages agree: a rating the history marks followed up is worked through every
step and closed, the others stay open (the older ones overdue, as they would be). Then it makes
its own ten completed cases with bad ratings on windows 1-6 over the past working days, in every
state. Every step goes through the real operations of hall_server/followups.py (the same checks
as the API) and is then dated back to when it would have happened. Marked done in `meta`
(`followups_seeded`); a second call does nothing.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from hall_server import followups, lifecycle, workdays
from hall_server import schema as t
from hall_server.core import get_meta, set_meta
from hall_server.db import Store, Tx
from hall_server.security import Principal

SUP = Principal("8001", "supervisor", None, "demo-seed")

# (window, level, comment, target state, working days ago, verification valid)
PLAN: list[tuple[int, str, str, str, int, bool]] = [
    (1, "very_dissatisfied", "排队一个多小时，只开了一个窗口", "open", 1, True),
    (2, "dissatisfied", "材料清单和网上说的不一样，白跑一趟", "assigned", 2, True),
    (3, "dissatisfied", "工作人员态度不耐烦", "called_back", 3, True),
    (1, "very_dissatisfied", "系统故障，等了四十分钟", "verified", 4, True),
    (4, "dissatisfied", "没有告知需要复印件", "rectified", 4, True),
    (2, "dissatisfied", "叫号后窗口没人", "answered", 5, True),
    (3, "very_dissatisfied", "要求补交的材料前后说法不一", "closed", 10, True),
    (5, "dissatisfied", "办得太慢", "closed", 12, False),
    (4, "dissatisfied", "电话一直打不通", "assigned", 12, True),
    (6, "very_dissatisfied", "午休时间窗口全关", "open", 14, True),
]
STEPS = {"open": [], "assigned": ["assign"], "called_back": ["assign", "callback"],
         "verified": ["assign", "callback", "verify"], "rectified": ["assign", "callback", "verify", "rectify"],
         "answered": ["assign", "callback", "verify", "rectify", "answer"],
         "closed": ["assign", "callback", "verify", "rectify", "answer", "review"]}
APPEALS = {7: ("upheld", "评价器被儿童误触，申请人当场口头表示满意（有监控录像）", "录像证实误触，申诉成立"),
           5: ("rejected", "叫号时申请人不在等候区", "系统记录显示叫号时窗口无人应答，申诉不成立"),
           1: ("pending", "当日材料清单已按最新版本告知", "")}


def _working_days_before(cal: workdays.WorkCalendar, d: date, n: int) -> date:
    while n:
        d -= timedelta(days=1)
        if cal.is_working_day(d):
            n -= 1
    return d


def _office_later(cal: workdays.WorkCalendar, when: datetime, hours: int) -> datetime:
    """`hours` office hours (9:00-17:00 on working days) after `when`."""
    left = hours * 60
    while left:
        when += timedelta(minutes=1)
        if cal.is_working_day(when.date()) and 9 <= when.hour < 17:
            left -= 1
    return when


def _at(day: date, hour: int, minute: int, tz: ZoneInfo) -> int:
    return int(datetime.combine(day, time(hour, minute), tz).timestamp() * 1000)


def _date_back(conn: Connection, cal: workdays.WorkCalendar, tz: ZoneInfo, fid: int, opened: int,
               closed: bool) -> None:
    """The follow-up opened at `opened` (ms), then a step every two office hours."""
    steps = conn.execute(select(t.followup_steps.c.id).where(t.followup_steps.c.followup_id == fid)
                         .order_by(t.followup_steps.c.id)).scalars().all()
    when = datetime.fromtimestamp(opened / 1000, tz)
    last = opened
    for k, sid in enumerate(steps):
        if k:
            when = _office_later(cal, when, hours=2)
        last = int(when.timestamp() * 1000)
        conn.execute(t.followup_steps.update().where(t.followup_steps.c.id == sid).values(at_ms=last))
    conn.execute(t.followups.update().where(t.followups.c.id == fid).values(
        opened_ms=opened, updated_ms=last, closed_ms=last if closed else None))


def _history(tx: Tx, tz: ZoneInfo) -> int:
    """Follow-ups for the history's bad ratings (demo_history.py stores them as rows)."""
    conn = tx.conn
    cal = workdays.current()
    rows = conn.execute(
        select(t.ratings.c.id, t.ratings.c.followed_up, t.ratings.c.received_ms, t.ratings.c.window_no)
        .outerjoin(t.followups, t.followups.c.rating_id == t.ratings.c.id)
        .where(t.ratings.c.bad.is_(True), t.followups.c.id.is_(None))
        .order_by(t.ratings.c.received_ms)).all()
    for rid, followed, received, win in rows:
        fid = followups.open_for_rating(conn, rid, cal)
        if fid is None:
            continue
        if followed:
            clerk = Principal(str(1000 + int(win)), "staff", int(win), "demo-seed")
            followups.assign_op(tx, SUP, fid, clerk.staff_no)
            followups.callback_op(tx, clerk, fid, True, "对处理结果表示理解")
            followups.verify_op(tx, clerk, fid, True, "调取叫号记录核实属实", [])
            followups.rectify_op(tx, clerk, fid, "已向窗口人员提醒改进，纳入周例会通报")
            followups.answer_op(tx, clerk, fid, "已电话告知群众核实结果和整改措施")
            followups.review_op(tx, SUP, fid, "accept", "整改到位，同意办结")
        _date_back(conn, cal, tz, fid, int(received or 0), closed=bool(followed))
    return len(rows)


def _seed(tx: Tx, tz: ZoneInfo) -> int:
    conn = tx.conn
    if get_meta(conn, "followups_seeded"):
        return 0
    cal = workdays.load(conn)
    workdays.set_current(cal)  # the due days below follow the hall's calendar
    _history(tx, tz)
    today = datetime.now(tz).date()
    reasons = list(conn.execute(select(t.rating_reasons.c.code, t.rating_reasons.c.version)
                                .order_by(t.rating_reasons.c.position)).all())
    matter = conn.execute(select(t.matters.c.code).where(t.matters.c.deleted.is_(False)).limit(1)).scalar()
    made = 0
    for i, (win, level, comment, state, ago, valid) in enumerate(PLAN):
        day = _working_days_before(cal, today, ago)
        started = _at(day, 9 + i % 6, 10 + i, tz)
        done = started + 11 * 60_000
        # Completed at the window: the lifecycle columns as the queue sets them (lifecycle.py).
        closing = lifecycle.window_close_values(conn, matter, "completed", day.isoformat(), done,
                                              str(1000 + win))
        case_id = int(conn.execute(t.cases.insert().values(
            case_no=f"DEMO-FU-{day:%Y%m%d}-{i + 1:02d}", ticket_id=None, matter_code=matter,
            staff_no=str(1000 + win), window_no=win, started_ms=started, completed_ms=done, outcome="completed",
            outcome_note="", reason="", notes="", day=day.isoformat(), **closing)).inserted_primary_key[0])  # type: ignore[index]
        rid = "demo-fu-" + uuid.uuid4().hex[:16]
        code, version = reasons[i % len(reasons)] if reasons else ("", "")
        conn.execute(t.ratings.insert().values(
            id=rid, case_id=case_id, window_no=win, level=level, reasons=json.dumps([code] if code else []),
            reasons_version=version, comment=comment, source="pad", rated_ms=done + 60_000, received_ms=done + 61_000,
            assurance="signed", bad=True, followed_up=False, day=day.isoformat()))
        fid = followups.open_for_rating(conn, rid)
        assert fid is not None
        clerk = Principal(str(1000 + win), "staff", win, "demo-seed")
        for step in STEPS[state] if valid else [s for s in STEPS[state] if s != "rectify"]:
            if step == "assign":
                followups.assign_op(tx, SUP, fid, clerk.staff_no)
            elif step == "callback":
                followups.callback_op(tx, clerk, fid, True, "希望以后高峰时段多开窗口")
            elif step == "verify":
                followups.verify_op(tx, clerk, fid, valid, "调取叫号记录和监控核实" + ("属实" if valid else "：不属实"), [])
            elif step == "rectify":
                followups.rectify_op(tx, clerk, fid, "高峰时段增开一个综合窗口，已调整排班")
            elif step == "answer":
                followups.answer_op(tx, clerk, fid, "已电话告知群众核实结果和整改措施，群众表示认可")
            else:
                followups.review_op(tx, SUP, fid, "accept", "整改到位，同意办结")
        # Date the work back: the rating's minute, then a step every two office hours.
        opened = done + 61_000
        _date_back(conn, cal, tz, fid, opened, closed=state == "closed")
        if i in APPEALS:
            outcome, reason, note = APPEALS[i]
            ap = followups.file_appeal_op(tx, clerk, rid, reason, [])
            filed = _office_later(cal, datetime.fromtimestamp(opened / 1000, tz), hours=1)
            decided = _office_later(cal, filed, hours=6)
            if outcome != "pending":
                followups.decide_appeal_op(tx, SUP, int(ap["id"]), outcome, note)
            conn.execute(t.appeals.update().where(t.appeals.c.id == int(ap["id"])).values(
                filed_ms=int(filed.timestamp() * 1000),
                decided_ms=int(decided.timestamp() * 1000) if outcome != "pending" else None))
        made += 1
    set_meta(conn, "followups_seeded", json.dumps({"followups": made}))
    return made


def seed_followups_demo(store: Store, timezone: str | None = None) -> int:
    """Seed the demo follow-ups and appeals once; returns how many follow-ups were made."""
    tz = ZoneInfo(timezone or store.read_sync(lambda c: get_meta(c, "timezone")) or "Asia/Shanghai")
    out: int = store.write_sync(lambda tx: _seed(tx, tz))
    return out

