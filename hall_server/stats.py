"""The hall's published figures for one local day, per window or for the whole hall.

Ratings are counted by how they came (`ratings_by_assurance`): `signed` (by the paired pad's
key: nobody at the window could have made it up), `unsigned` (second screen, button box,
relayed by the window PC) and `later` (the rate-later page). `satisfaction_rate` is over all
ratings, `satisfaction_rate_signed` over the signed ones only. A rating excluded by an upheld
appeal counts nowhere; `bad_open` is the bad ratings whose follow-up is not closed yet,
`bad_followed_up` those whose follow-up a supervisor accepted (docs/followup.md).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from hall_server import schema as t

ASSURANCES = ("signed", "unsigned", "later")
LEVELS = ("very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied")


def _rate(num: int, den: int) -> float | None:
    return None if den == 0 else round(num / den, 4)


def compute(conn: Connection, hall: Any, day: str, window_no: int | None) -> dict[str, Any]:
    start_ms, _ = hall.day_bounds_ms(day)
    tq = select(
        t.tickets.c.state, t.tickets.c.issued_ms, t.tickets.c.queued_ms, t.tickets.c.called_ms,
        t.tickets.c.first_called_ms, t.tickets.c.started_ms, t.tickets.c.finished_ms,
    ).where(t.tickets.c.day == day)
    if window_no is not None:
        tq = tq.where(t.tickets.c.window_no == window_no)
    per_hour = [0] * 24
    served = no_shows = 0
    waits: list[float] = []
    handles: list[float] = []
    for r in conn.execute(tq).mappings():
        hour = int((r["issued_ms"] - start_ms) // 3_600_000)
        if 0 <= hour < 24:
            per_hour[hour] += 1
        if r["state"] == "completed":
            served += 1
            if r["started_ms"] and r["finished_ms"]:
                handles.append((r["finished_ms"] - r["started_ms"]) / 1000)
        elif r["state"] == "no_show":
            no_shows += 1
        if r["first_called_ms"]:
            waits.append((r["first_called_ms"] - r["queued_ms"]) / 1000)
    cq = select(t.cases.c.outcome, t.cases.c.on_time).where(t.cases.c.day == day, t.cases.c.outcome.is_not(None))
    if window_no is not None:
        cq = cq.where(t.cases.c.window_no == window_no)
    outcomes = conn.execute(cq).all()
    on_spot = sum(1 for o in outcomes if o[0] == "completed")
    on_time = sum(1 for o in outcomes if o[1])
    # A rating excluded by an upheld appeal (申诉复核) counts in no figure (it stays stored).
    # A bad rating is open until its follow-up is closed by the supervisor's review.
    rq = (select(t.ratings.c.level, t.ratings.c.bad, t.followups.c.state, t.ratings.c.assurance)
          .outerjoin(t.followups, t.followups.c.rating_id == t.ratings.c.id)
          .where(t.ratings.c.day == day, t.ratings.c.excluded_from_figures.is_(False)))
    if window_no is not None:
        rq = rq.where(t.ratings.c.window_no == window_no)
    by_level = dict.fromkeys(LEVELS, 0)
    by_assurance = dict.fromkeys(ASSURANCES, 0)
    signed_levels = dict.fromkeys(LEVELS, 0)
    bad_open = bad_followed_up = 0
    ratings = conn.execute(rq).all()
    for level, bad, fu_state, assurance in ratings:
        by_level[level] = by_level.get(level, 0) + 1
        by_assurance[assurance] = by_assurance.get(assurance, 0) + 1
        if assurance == "signed":
            signed_levels[level] = signed_levels.get(level, 0) + 1
        if bad and fu_state == "closed":
            bad_followed_up += 1
        elif bad:
            bad_open += 1
    satisfied = by_level["very_satisfied"] + by_level["satisfied"] + by_level["basic"]
    signed_ok = signed_levels["very_satisfied"] + signed_levels["satisfied"] + signed_levels["basic"]
    return {
        "date": day,
        "window_no": window_no,
        "served": served,
        "avg_wait_seconds": round(sum(waits) / len(waits), 1) if waits else None,
        "avg_handle_seconds": round(sum(handles) / len(handles), 1) if handles else None,
        "no_shows": no_shows,
        "on_time_rate": _rate(on_time, len(outcomes)),
        "on_the_spot_rate": _rate(on_spot, len(outcomes)),
        "ratings": len(ratings),
        "satisfaction_rate": _rate(satisfied, len(ratings)),
        "satisfaction_rate_signed": _rate(signed_ok, by_assurance["signed"]),
        "ratings_by_assurance": by_assurance,
        "bad_open": bad_open,
        "bad_followed_up": bad_followed_up,
        "tickets_per_hour": per_hour,
        "ratings_by_level": by_level,
    }
