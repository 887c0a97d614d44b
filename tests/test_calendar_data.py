"""The shipped working calendars agree with an independent source.

Each year file in ``hall_server/data/calendar`` was typed in from the State Council's notice; a
slip (a holiday on the wrong day, a missed make-up working day) would move every deadline the hall
promises. The ``chinese-calendar`` package keeps the same notices as data, maintained apart from
us: every day of each shipped year must be a working day in both or in neither.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import chinese_calendar
import pytest

DATA = Path(__file__).resolve().parents[1] / "hall_server" / "data" / "calendar"
FILES = sorted(DATA.glob("*.json"))


def test_there_is_a_calendar_to_check() -> None:
    assert FILES, f"no calendar files in {DATA}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_day_of_the_year_matches_the_independent_calendar(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    year = int(data["year"])
    off = {dt.date.fromisoformat(h["date"]) for h in data["holidays"]}
    on = {dt.date.fromisoformat(w["date"]) for w in data["workdays"]}
    assert not off & on, "a day cannot be both a holiday and a make-up working day"
    wrong = []
    day = dt.date(year, 1, 1)
    while day.year == year:
        ours = (day.weekday() < 5 and day not in off) or day in on
        theirs = chinese_calendar.is_workday(day)
        if ours != theirs:
            wrong.append(f"{day} ours={'work' if ours else 'off'} reference={'work' if theirs else 'off'}")
        day += dt.timedelta(days=1)
    assert not wrong, wrong
