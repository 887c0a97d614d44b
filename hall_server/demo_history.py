"""The demo hall's month of history (issue 15 item 4): every working day of the 30 days before
today, each staffed window served a few citizens: tickets, cases with their deadlines (from the
hall calendar and the matter's limit), conclusions by the back office (most on time, a few
late, some still open and a few overdue), no-shows, and ratings from every channel with some
bad ones. Deterministic for a seed and a "today".

Tickets and cases are written as rows with past times (the queue functions stamp "now"), but
every lifecycle column comes from the same functions the live paths use:
`lifecycle.window_close_values` (the window closing a case), `lifecycle.conclusion_values`
(the back office's 办结), `rating_channels.store_form_scan` for the paper forms' scans. Run once, after the demo seed
(`seed`, idempotent through the meta key `demo_history`).
"""

from __future__ import annotations

import io
import json
import random
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from hall_server import lifecycle, rating_channels, workdays
from hall_server import schema as t
from hall_server.core import get_meta, set_meta
from hall_server.db import Store, Tx

DAYS = 30
PER_WINDOW = 4  # citizens per window per working day
# (source, assurance, weight): most ratings from the signed pads, every channel some.
SOURCES = (("pad", "signed", 45), ("second_screen", "unsigned", 12), ("serial", "unsigned", 8),
           ("desk", "unsigned", 8), ("later", "later", 12), ("paper", "entered", 8), ("phone", "entered", 7))
SUPERVISOR = "8001"


def _ms(day: date, hour: int, minute: int, tz: ZoneInfo) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).timestamp() * 1000)


def seed(store: Store, hall_code: str, tz_name: str, today: date, rng_seed: int = 1,
         documents_key: bytes | None = None, doc_dir: Path | None = None) -> int:
    """Seed the history once; the number of cases written (0 when already there). With the
    documents key and folder, every paper-form rating gets its scanned form (a generated
    image), stored as any document is (rating_channels.store_form_scan)."""
    scans = None if documents_key is None or doc_dir is None else (documents_key, doc_dir, form_scan_png())
    return int(store.write_sync(lambda tx: _seed(tx, hall_code, ZoneInfo(tz_name), today, rng_seed, scans)))


def form_scan_png() -> bytes:
    """A stand-in for a scanned 评价表: a plain page with ruled lines (no real person's form)."""
    from PIL import Image, ImageDraw

    im = Image.new("L", (620, 877), 250)
    d = ImageDraw.Draw(im)
    d.rectangle((40, 40, 580, 837), outline=60, width=3)
    for y in range(120, 800, 48):
        d.line((70, y, 550, y), fill=150, width=2)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _seed(tx: Tx, hall_code: str, tz: ZoneInfo, today: date, rng_seed: int,
          scans: tuple[bytes, Path, bytes] | None) -> int:
    conn = tx.conn
    if get_meta(conn, "demo_history"):
        return 0
    rng = random.Random(rng_seed)
    cal = workdays.load(conn)
    staff = {int(w): no for no, w in conn.execute(
        select(t.staff.c.staff_no, t.staff.c.window_no)
        .where(t.staff.c.window_no.is_not(None), t.staff.c.role == "staff")).all()}
    windows = [(int(no), [c for c in cats.split(",") if c]) for no, cats in conn.execute(
        select(t.windows.c.no, t.windows.c.categories).order_by(t.windows.c.no)).all() if int(no) in staff]
    matters: dict[str, list[Any]] = {}
    for m in conn.execute(select(t.matters.c.code, t.matters.c.category, t.matters.c.time_limit_days,
                                 t.matters.c.instant).where(t.matters.c.deleted.is_(False))
                          .order_by(t.matters.c.code)).mappings():
        matters.setdefault(m["category"], []).append(m)
    reasons = list(conn.execute(select(t.rating_reasons.c.code, t.rating_reasons.c.version)
                                .order_by(t.rating_reasons.c.position)).all())
    version = reasons[0][1] if reasons else ""
    n_cases = 0
    rating_no = 0
    for back in range(DAYS, 0, -1):
        d = today - timedelta(days=back)
        if not cal.is_working_day(d):
            continue
        day = d.isoformat()
        case_n = 0
        for w, cats in windows:
            pool = [m for c in cats for m in matters.get(c, [])]
            if not pool:
                continue
            for i in range(PER_WINDOW):
                m = pool[rng.randrange(len(pool))]
                queued = _ms(d, 9, 0, tz) + (i * 55 + rng.randrange(20)) * 60_000
                called = queued + rng.randrange(3, 20) * 60_000
                if rng.random() < 0.06:  # did not come when called
                    _ticket(conn, m["category"], m["code"], i, w, day, queued, called, None, None, "no_show", None)
                    continue
                started = called + 60_000
                finished = started + rng.randrange(4, 25) * 60_000
                instant = bool(m["instant"]) or int(m["time_limit_days"]) == 0
                outcome = "completed" if instant or rng.random() < 0.25 else "accepted"
                if rng.random() < 0.05:
                    outcome = "correction"  # 补正: nothing accepted
                case_n += 1
                case_no = f"{hall_code}-{day.replace('-', '')}-{case_n:04d}"
                life = lifecycle.window_close_values(conn, m["code"], outcome, day, finished, staff[w])
                case_id = conn.execute(t.cases.insert().values(
                    case_no=case_no, ticket_id=None, matter_code=m["code"], staff_no=staff[w], window_no=w,
                    started_ms=started, completed_ms=finished, outcome=outcome, outcome_note="",
                    reason="", notes="", day=day, **life).returning(t.cases.c.id)).scalar_one()
                tid = _ticket(conn, m["category"], m["code"], i, w, day, queued, called, started, finished, "completed",
                              int(case_id))
                conn.execute(t.cases.update().where(t.cases.c.id == case_id).values(ticket_id=tid))
                n_cases += 1
                if outcome == "accepted" and life["deadline_day"] is not None:
                    _back_office(conn, rng, cal, int(case_id), today, finished)
                if rng.random() < 0.8:
                    rating_no += 1
                    source = _rating(conn, rng, int(case_id), w, finished, rating_no, reasons, version, tz,
                                     _ms(today, 0, 0, tz))
                    if source == "paper" and scans is not None:
                        key, doc_dir, png = scans
                        doc = rating_channels.store_form_scan(tx, key, doc_dir, case_no, "评价表.png", "image/png", png)
                        conn.execute(t.ratings.update().where(t.ratings.c.case_id == case_id)
                                     .values(form_document_id=doc))
    set_meta(conn, "demo_history", json.dumps({"today": today.isoformat(), "cases": n_cases}))
    return n_cases


def _ticket(conn: Connection, cat: str, matter: str, i: int, w: int, day: str, queued: int, called: int,
            started: int | None, finished: int | None, state: str, case_id: int | None) -> int:
    return int(conn.execute(t.tickets.insert().values(
        number=f"{cat}{i + 1:03d}", category=cat, matter_code=matter, priority="normal", appointment_ms=None,
        state=state, window_no=w, target_window_no=None, issued_ms=queued, queued_ms=queued, called_ms=called,
        first_called_ms=called, started_ms=started, finished_ms=finished or called + 180_000, recalls=0,
        case_id=case_id, sort_key=2 * 10**13 + queued, day=day).returning(t.tickets.c.id)).scalar_one())


def _back_office(conn: Connection, rng: random.Random, cal: workdays.WorkCalendar, case_id: int,
                 today: date, finished: int) -> None:
    """Most accepted cases concluded a little before their deadline, about one in ten late,
    and the ones not yet due (or overdue) left open."""
    case = conn.execute(select(t.cases).where(t.cases.c.id == case_id)).mappings().one()
    deadline = date.fromisoformat(case["deadline_day"])
    accepted = date.fromisoformat(case["day"])
    roll = rng.random()
    if roll < 0.08:
        when = cal.working_days_after(deadline, rng.randrange(1, 4))  # late
    elif roll < 0.11:
        return  # still with the back office (overdue if its deadline has passed)
    else:
        span = lifecycle.working_days_between(accepted, deadline, cal)
        when = cal.working_days_after(accepted, max(0, span - rng.randrange(0, max(1, span))))
    yesterday = today - timedelta(days=1)
    if when > yesterday:
        return  # the future is not history: open
    result = "approved" if rng.random() < 0.9 else "refused"
    values = lifecycle.conclusion_values(case, result, when, yesterday, finished, SUPERVISOR)
    conn.execute(t.cases.update().where(t.cases.c.id == case_id).values(**values))


def _rating(conn: Connection, rng: random.Random, case_id: int, w: int, finished: int, n: int,
            reasons: list[Any], version: str, tz: ZoneInfo, today_start: int) -> str:
    source, assurance, _ = rng.choices(SOURCES, weights=[w for *_, w in SOURCES])[0]
    roll = rng.random()
    level = ("very_dissatisfied" if roll < 0.03 else "dissatisfied" if roll < 0.08 else "basic" if roll < 0.15
             else "satisfied" if roll < 0.4 else "very_satisfied")
    bad = level in ("dissatisfied", "very_dissatisfied")
    why = [reasons[rng.randrange(len(reasons))][0]] if bad and reasons else []
    rated = finished + 60_000 if source not in ("later", "paper", "phone") else finished + 86_400_000
    if rated >= today_start:  # a late channel's rating of yesterday's case: keep it in the past
        rated = finished + 60_000
    rated_day = datetime.fromtimestamp(rated / 1000, tz).date().isoformat()
    conn.execute(t.ratings.insert().values(
        id=f"demo-{case_id}", case_id=case_id, window_no=w, level=level, reasons=json.dumps(why),
        reasons_version=version, comment="等候时间太长" if bad else "", source=source, rated_ms=rated,
        received_ms=rated, claimed_rated_ms=rated, pad_id=None, pad_counter=None, challenge=None,
        signature=None, assurance=assurance, bad=bad, followed_up=bad and rng.random() < 0.5,
        day=rated_day, entered_by=SUPERVISOR if assurance == "entered" else None, form_document_id=None))
    return str(source)
