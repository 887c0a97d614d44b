"""The hall's published figures for one local day, per window or for the whole hall.

Ratings are counted by how they came (`ratings_by_assurance`): `signed` (by the paired pad's
key: nobody at the window could have made it up), `unsigned` (second screen, button box,
relayed by the window PC) and `later` (the rate-later page). `satisfaction_rate` is over all
ratings, `satisfaction_rate_signed` over the signed ones only. On-time and on-the-spot rates
and every rating counted come from figures.py (the same rules as the hall's reports): a rating
excluded by an upheld appeal counts nowhere; `bad_open` is the bad ratings whose follow-up is not
closed yet, `bad_followed_up` those whose follow-up a supervisor accepted (docs/followup.md).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from hall_server import figures
from hall_server import schema as t

ASSURANCES = figures.ASSURANCES
LEVELS = figures.LEVELS


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
    # Cases and ratings as every published figure counts them (figures.py, docs/figures.md).
    fig = figures.compute(conn, day, day, "hall", window_no)[0]
    by_level = dict.fromkeys(LEVELS, 0)
    by_assurance = dict.fromkeys(ASSURANCES, 0)
    signed_levels = dict.fromkeys(LEVELS, 0)
    ratings = figures.counted_ratings(conn, day, day, window_no)
    for rt in ratings:
        by_level[rt.level] = by_level.get(rt.level, 0) + 1
        by_assurance[rt.assurance] = by_assurance.get(rt.assurance, 0) + 1
        if rt.assurance == "signed":
            signed_levels[rt.level] = signed_levels.get(rt.level, 0) + 1
    bad_open, bad_followed_up = fig["bad_open"], fig["bad_closed"]
    satisfied = by_level["very_satisfied"] + by_level["satisfied"] + by_level["basic"]
    signed_ok = signed_levels["very_satisfied"] + signed_levels["satisfied"] + signed_levels["basic"]
    return {
        "date": day,
        "window_no": window_no,
        "served": served,
        "avg_wait_seconds": round(sum(waits) / len(waits), 1) if waits else None,
        "avg_handle_seconds": round(sum(handles) / len(handles), 1) if handles else None,
        "no_shows": no_shows,
        "on_time_rate": fig["on_time_rate"],
        "on_the_spot_rate": fig["on_the_spot_rate"],
        "ratings_by_channel": fig["ratings_by_channel"],
        "ratings": len(ratings),
        "satisfaction_rate": _rate(satisfied, len(ratings)),
        "satisfaction_rate_signed": _rate(signed_ok, by_assurance["signed"]),
        "ratings_by_assurance": by_assurance,
        "bad_open": bad_open,
        "bad_followed_up": bad_followed_up,
        "tickets_per_hour": per_hour,
        "ratings_by_level": by_level,
    }
