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


def test_a_year_deadlines_may_reach_without_a_calendar_is_named() -> None:
    """From November the next year's dates are due (the State Council publishes them then); a
    deadline counted into a year the hall never imported treats its holidays as working days."""
    from hall_server import workdays

    data = json.loads((DATA / "cn-2026.json").read_text(encoding="utf-8"))
    cal = workdays.WorkCalendar(
        holidays=frozenset(dt.date.fromisoformat(h["date"]) for h in data["holidays"]),
        workdays=frozenset(dt.date.fromisoformat(w["date"]) for w in data["workdays"]))
    assert cal.years == {2026}
    assert workdays.missing_years(cal, dt.date(2026, 6, 1)) == []
    assert workdays.missing_years(cal, dt.date(2026, 10, 31)) == []
    assert workdays.missing_years(cal, dt.date(2026, 11, 1)) == [2027]
    assert workdays.missing_years(cal, dt.date(2027, 2, 1)) == [2027]
    assert workdays.missing_years(workdays.WorkCalendar(), dt.date(2026, 12, 3)) == [2026, 2027]
    msg = workdays.missing_years_message([2027])
    assert "2027" in msg and "hall-server calendar import" in msg
    # The cost of the gap, concretely: 2027-01-01 (a Friday, New Year's Day) counts as working.
    assert cal.is_working_day(dt.date(2027, 1, 1))


def test_calendar_show_warns_about_a_missing_year(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from hall_server import workdays

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("HALL_DB_URL", None)

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hall_server", *args, "--data-dir", str(tmp_path)],
                              input=stdin, capture_output=True, text=True, timeout=180, env=env,
                              cwd=str(root))

    init = cli("init", "--from", str(root / "hall.example.toml"), "--admin-password-stdin",
               stdin="it-admin-pw\n")
    assert init.returncode == 0, init.stderr
    shown = cli("calendar", "show")
    assert shown.returncode == 0, shown.stderr
    cal = workdays.WorkCalendar(holidays=frozenset(
        dt.date.fromisoformat(r["day"]) for r in json.loads(shown.stdout) if r["kind"] == "holiday"))
    gaps = workdays.missing_years(cal, dt.date.today())
    if gaps:  # e.g. in December 2026: 2027 is not shipped
        assert workdays.missing_years_message(gaps) in shown.stderr
    else:
        assert "hall-server calendar import" not in shown.stderr
