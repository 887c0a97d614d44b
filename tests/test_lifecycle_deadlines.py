"""Deadline arithmetic of a case (issue 15 item 1): the promised deadline is the matter's
`time_limit_days`-th working day after acceptance in the hall calendar. Property tests against
a plain day-by-day reference over random holidays and make-up working days, and the published
2026 calendar's National Day week."""

from __future__ import annotations

import json
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from hall_server import lifecycle, workdays

START = date(2026, 1, 1)


def reference_deadline(accepted: date, n: int, holidays: set[date], makeup: set[date]) -> date:
    """List every working day after `accepted` in order; the deadline is the n-th (n=0: the
    acceptance day itself). Written separately from WorkCalendar: a working day is a make-up
    day, or a Monday-Friday that is not a holiday."""
    if n == 0:
        return accepted
    found: list[date] = []
    d = accepted
    while len(found) < n:
        d = d + timedelta(days=1)
        weekday = d.isoweekday() <= 5
        if d in makeup or (weekday and d not in holidays):
            found.append(d)
    return found[-1]


days = st.integers(min_value=0, max_value=120).map(lambda k: START + timedelta(days=k))


@settings(max_examples=300, deadline=None)
@given(accepted=days, n=st.integers(min_value=0, max_value=40),
       holidays=st.sets(days, max_size=25), makeup=st.sets(days, max_size=8))
def test_deadline_matches_day_by_day_reference(accepted: date, n: int, holidays: set[date],
                                               makeup: set[date]) -> None:
    holidays = holidays - makeup  # a day is one or the other in a calendar file
    cal = workdays.WorkCalendar(holidays=frozenset(holidays), workdays=frozenset(makeup))
    got = lifecycle.deadline_for(accepted, n, cal)
    assert got == reference_deadline(accepted, n, holidays, makeup)
    # and the count of working days back to the acceptance is exactly n
    assert lifecycle.working_days_between(accepted, got, cal) == n
    if n:
        assert cal.is_working_day(got)


@settings(max_examples=200, deadline=None)
@given(a=days, b=days, holidays=st.sets(days, max_size=25), makeup=st.sets(days, max_size=8))
def test_working_days_between_is_antisymmetric_and_counts(a: date, b: date, holidays: set[date],
                                                          makeup: set[date]) -> None:
    cal = workdays.WorkCalendar(holidays=frozenset(holidays - makeup), workdays=frozenset(makeup))
    n = lifecycle.working_days_between(a, b, cal)
    assert n == -lifecycle.working_days_between(b, a, cal)
    lo, hi = min(a, b), max(a, b)
    plain = sum(1 for k in range(1, (hi - lo).days + 1) if cal.is_working_day(lo + timedelta(days=k)))
    assert abs(n) == plain


def test_national_day_2026_from_the_published_calendar() -> None:
    raw = json.loads((workdays.DATA_DIR / "cn-2026.json").read_text(encoding="utf-8"))
    _, entries = workdays.parse_year_file(json.dumps(raw).encode(), "cn-2026.json")
    cal = workdays.WorkCalendar(
        holidays=frozenset(e.day for e in entries if e.kind == "holiday"),
        workdays=frozenset(e.day for e in entries if e.kind == "workday"))
    # Accepted Tuesday 29 September with 3 working days: Wed 30 Sep, then the holiday week
    # (1, 2, 5, 6, 7 Oct off; weekend 3-4), Thu 8 Oct, Fri 9 Oct.
    assert lifecycle.deadline_for(date(2026, 9, 29), 3, cal) == date(2026, 10, 9)
    # Saturday 10 October is a make-up working day (调休上班): the 4th.
    assert lifecycle.deadline_for(date(2026, 9, 29), 4, cal) == date(2026, 10, 10)
    # Limit 0 (即办): the same day.
    assert lifecycle.deadline_for(date(2026, 9, 29), 0, cal) == date(2026, 9, 29)


def test_conclusion_on_time_is_measured_not_constant() -> None:
    case = {"outcome": "accepted", "conclusion": None, "day": "2026-09-29", "deadline_day": "2026-10-09"}
    today = date(2026, 12, 1)
    on = lifecycle.conclusion_values(case, "approved", date(2026, 10, 9), today, 0, "8001")
    late = lifecycle.conclusion_values(case, "refused", date(2026, 10, 10), today, 0, "8001")
    assert on["on_time"] is True and late["on_time"] is False
    assert late["conclusion"] == "refused" and late["concluded_day"] == "2026-10-10"
