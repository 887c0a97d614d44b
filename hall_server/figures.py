"""The figures a hall publishes, over any range of days, for the hall, per window or per staff
member (issue 15 items 3 and 4). How each one is computed is in docs/figures.md; in short:

- accepted: cases the windows took in (outcome `accepted` or `completed`), by the day they came;
- concluded: cases concluded (办结) in the range, at the window or by the back office;
- on_time_rate: concluded in the range with on_time true / concluded in the range that had a
  deadline (lifecycle.py sets on_time only at conclusion: concluded_day <= deadline_day);
- on_the_spot_rate: accepted cases concluded at the window the same visit / accepted;
- satisfaction_rate: (very satisfied + satisfied + basic) / ratings counted; also per channel
  and per assurance;
- bad ratings: 不满意 + 非常不满意, with their follow-up state (`bad_rating_states`);
- average wait (queued -> first called) and handling (started -> finished) of the tickets.

Every rating any figure counts comes from `counted_ratings`, and every bad rating's follow-up
state from `bad_rating_states`: the one place each rule (an upheld appeal excluding a rating,
the follow-up workflow's states) is applied.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, select

from hall_server import schema as t

LEVELS = ("very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied")
GOOD_LEVELS = ("very_satisfied", "satisfied", "basic")
CHANNELS = ("pad_signed", "second_screen", "serial_box", "desk", "rate_later", "paper", "phone")
ASSURANCES = ("signed", "unsigned", "later", "entered")
# ratings.source -> channel. A pad rating is only ever stored signed (rating_check.py).
_CHANNEL_OF_SOURCE = {"pad": "pad_signed", "second_screen": "second_screen", "serial": "serial_box",
                      "desk": "desk", "later": "rate_later", "paper": "paper", "phone": "phone"}
GROUPS = ("hall", "window", "staff")


def channel_of(source: str) -> str:
    return _CHANNEL_OF_SOURCE.get(source, source)


@dataclass(frozen=True)
class Rating:
    id: str
    case_id: int
    window_no: int
    staff_no: str
    level: str
    bad: bool
    channel: str
    assurance: str
    day: str


def counted_ratings(conn: Connection, start: str, end: str, window_no: int | None = None,
                    staff_no: str | None = None) -> list[Rating]:
    """Every rating the figures count, filed on a day in [start, end] (YYYY-MM-DD).

    The one query of ratings for figures: a rating excluded by an upheld appeal (申诉复核,
    `ratings.excluded_from_figures`, followups.py) counts in no figure; it stays stored."""
    q = (select(t.ratings.c.id, t.ratings.c.case_id, t.ratings.c.window_no, t.cases.c.staff_no,
                t.ratings.c.level, t.ratings.c.bad, t.ratings.c.source, t.ratings.c.assurance,
                t.ratings.c.day)
         .join(t.cases, t.cases.c.id == t.ratings.c.case_id)
         .where(t.ratings.c.day >= start, t.ratings.c.day <= end,
                t.ratings.c.excluded_from_figures.is_(False)))
    if window_no is not None:
        q = q.where(t.ratings.c.window_no == window_no)
    if staff_no is not None:
        q = q.where(t.cases.c.staff_no == staff_no)
    return [Rating(r[0], int(r[1]), int(r[2]), r[3], r[4], bool(r[5]), channel_of(r[6]), r[7], r[8])
            for r in conn.execute(q).all()]


def bad_rating_states(conn: Connection, rating_ids: Iterable[str]) -> dict[str, str]:
    """The follow-up state of each bad rating: "closed" (answered and reviewed) or "open".

    The one place the figures read the follow-up state: `ratings.followed_up` is set in the same
    transaction as the supervisor's review that closes the follow-up (followups.py)."""
    ids = list(rating_ids)
    out: dict[str, str] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        for rid, followed in conn.execute(select(t.ratings.c.id, t.ratings.c.followed_up)
                                          .where(t.ratings.c.id.in_(chunk))).all():
            out[rid] = "closed" if followed else "open"
    return out


def _rate(num: int, den: int) -> float | None:
    return None if den == 0 else round(num / den, 4)


@dataclass
class _Acc:
    accepted: int = 0
    on_spot: int = 0
    concluded: int = 0
    on_time_den: int = 0
    on_time: int = 0
    waits: list[float] = field(default_factory=list)
    handles: list[float] = field(default_factory=list)
    ratings: list[Rating] = field(default_factory=list)


def _key_fn(group: str) -> Callable[[Any, Any], Any]:
    if group == "window":
        return lambda w, s: w
    if group == "staff":
        return lambda w, s: s
    return lambda w, s: "hall"


def compute(conn: Connection, start: str, end: str, group: str = "hall",
            window_no: int | None = None, staff_no: str | None = None) -> list[dict[str, Any]]:
    """One row of figures per group key (the hall; each window; each staff member) over the
    days [start, end]. Rows are sorted by key; the hall row has key "hall"."""
    key = _key_fn(group)
    acc: dict[Any, _Acc] = defaultdict(_Acc)
    c = t.cases.c
    cq = select(c.window_no, c.staff_no, c.outcome, c.on_the_spot, c.day, c.concluded_day, c.on_time,
                c.conclusion)
    cq = cq.where(((c.day >= start) & (c.day <= end)) | ((c.concluded_day >= start) & (c.concluded_day <= end)))
    if window_no is not None:
        cq = cq.where(c.window_no == window_no)
    if staff_no is not None:
        cq = cq.where(c.staff_no == staff_no)
    for w, s, outcome, spot, day, cday, on_time, conclusion in conn.execute(cq).all():
        a = acc[key(w, s)]
        if start <= day <= end and outcome in ("accepted", "completed"):
            a.accepted += 1
            a.on_spot += bool(spot)
        if conclusion is not None and cday is not None and start <= cday <= end:
            a.concluded += 1
            if on_time is not None:
                a.on_time_den += 1
                a.on_time += bool(on_time)
    tk = t.tickets.c
    tq = (select(tk.window_no, c.staff_no, tk.queued_ms, tk.first_called_ms, tk.started_ms,
                 tk.finished_ms, tk.state)
          .select_from(t.tickets.outerjoin(t.cases, t.cases.c.id == tk.case_id))
          .where(tk.day >= start, tk.day <= end, tk.window_no.is_not(None)))
    if window_no is not None:
        tq = tq.where(tk.window_no == window_no)
    if staff_no is not None:
        tq = tq.where(c.staff_no == staff_no)
    for w, s, queued, first_called, started, finished, state in conn.execute(tq).all():
        if group == "staff" and s is None:
            continue  # a no-show has no case, so no staff member to put its wait on
        a = acc[key(w, s)]
        if first_called:
            a.waits.append((first_called - queued) / 1000)
        if state == "completed" and started and finished:
            a.handles.append((finished - started) / 1000)
    for r in counted_ratings(conn, start, end, window_no, staff_no):
        acc[key(r.window_no, r.staff_no)].ratings.append(r)
    states = bad_rating_states(conn, [r.id for a in acc.values() for r in a.ratings if r.bad])
    rows = []
    for k in sorted(acc, key=lambda x: (str(type(x)), x)):
        a = acc[k]
        rows.append({"key": k, **_figures(a, states)})
    if not rows and group == "hall":
        rows.append({"key": "hall", **_figures(_Acc(), states)})
    return rows


def satisfaction(ratings: list[Rating]) -> float | None:
    return _rate(sum(1 for r in ratings if r.level in GOOD_LEVELS), len(ratings))


def _figures(a: _Acc, states: dict[str, str]) -> dict[str, Any]:
    by_channel = {ch: [r for r in a.ratings if r.channel == ch] for ch in CHANNELS}
    by_assurance = {x: [r for r in a.ratings if r.assurance == x] for x in ASSURANCES}
    bad = [r for r in a.ratings if r.bad]
    bad_open = sum(1 for r in bad if states.get(r.id, "open") != "closed")
    return {
        "accepted": a.accepted,
        "concluded": a.concluded,
        "on_time": a.on_time,
        "on_time_rate": _rate(a.on_time, a.on_time_den),
        "on_the_spot": a.on_spot,
        "on_the_spot_rate": _rate(a.on_spot, a.accepted),
        "ratings": len(a.ratings),
        "satisfaction_rate": satisfaction(a.ratings),
        "ratings_by_channel": {ch: len(v) for ch, v in by_channel.items()},
        "satisfaction_by_channel": {ch: satisfaction(v) for ch, v in by_channel.items()},
        "ratings_by_assurance": {x: len(v) for x, v in by_assurance.items()},
        "satisfaction_by_assurance": {x: satisfaction(v) for x, v in by_assurance.items()},
        "ratings_by_level": {lv: sum(1 for r in a.ratings if r.level == lv) for lv in LEVELS},
        "bad": len(bad),
        "bad_open": bad_open,
        "bad_closed": len(bad) - bad_open,
        "avg_wait_seconds": round(sum(a.waits) / len(a.waits), 1) if a.waits else None,
        "avg_handle_seconds": round(sum(a.handles) / len(a.handles), 1) if a.handles else None,
    }


def days(start: str, end: str) -> list[str]:
    d, last = date.fromisoformat(start), date.fromisoformat(end)
    out = []
    while d <= last:
        out.append(d.isoformat())
        d += timedelta(days=1)
    return out


def daily_series(conn: Connection, start: str, end: str, window_no: int | None = None,
                 staff_no: str | None = None) -> list[dict[str, Any]]:
    """The hall figures day by day (for the report's charts); one query set per day is fine
    for the month or so a chart shows."""
    return [{"day": d, **compute(conn, d, d, "hall", window_no, staff_no)[0]} for d in days(start, end)]
