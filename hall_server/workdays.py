"""The hall's working calendar: Monday to Friday, minus public holidays, plus make-up working
days (调休上班), as the State Council publishes them once a year.

Every deadline counted in working days goes through `WorkCalendar.working_days_after` (the
rate-later window, the bad-rating follow-up). The database holds only the exceptions
(`calendar_days`); a year's exceptions are imported from one file (JSON or CSV, see
docs/hall-setup.md and hall_server/data/calendar/). The calendar in use is loaded once per
process and replaced in place when an administrator imports a year (`set_current`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from hall_server import schema as t

KINDS = ("holiday", "workday")


@dataclass(frozen=True)
class WorkCalendar:
    """Weekdays are working days except `holidays`; weekend days are not, except `workdays`."""

    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)

    def is_working_day(self, d: date) -> bool:
        if d in self.workdays:
            return True
        if d in self.holidays:
            return False
        return d.weekday() < 5

    @property
    def years(self) -> frozenset[int]:
        """Years the hall imported (every real year has a weekday holiday, so none is empty)."""
        return frozenset(d.year for d in self.holidays | self.workdays)

    def working_days_after(self, start: date, n: int) -> date:
        """The `n`-th working day after `start` (`start` itself never counts); `start` for n=0.

        A skip over a week of weekends costs one loop turn per day: deadlines are a few weeks
        at most, so the plain walk is both fast enough and obviously right."""
        if n < 0:
            raise ValueError("n must be >= 0")
        d, left = start, n
        while left:
            d += timedelta(days=1)
            if self.is_working_day(d):
                left -= 1
        return d


_current = WorkCalendar()


def current() -> WorkCalendar:
    """The calendar this process uses (loaded at start-up, replaced by `set_current`)."""
    return _current


def set_current(cal: WorkCalendar) -> None:
    global _current
    _current = cal


def is_working_day(d: date) -> bool:
    return _current.is_working_day(d)


def working_days_after(start: date, n: int) -> date:
    return _current.working_days_after(start, n)


def load(conn: Connection) -> WorkCalendar:
    rows = conn.execute(select(t.calendar_days.c.day, t.calendar_days.c.kind)).all()
    return WorkCalendar(
        holidays=frozenset(date.fromisoformat(d) for d, k in rows if k == "holiday"),
        workdays=frozenset(date.fromisoformat(d) for d, k in rows if k == "workday"),
    )


NEXT_YEAR_FROM_MONTH = 11  # the State Council publishes next year's dates in November


def missing_years(cal: WorkCalendar, today: date) -> list[int]:
    """Years a deadline counted from `today` may reach without an imported calendar: this year,
    and from November next year too. Such days count as plain Monday-Friday (a New Year's Day
    holiday would be a working day), so IT is told (server log at start and daily, the
    `calendar show` command) to import the file."""
    want = [today.year] + ([today.year + 1] if today.month >= NEXT_YEAR_FROM_MONTH else [])
    return [y for y in want if y not in cal.years]


def missing_years_message(years: list[int]) -> str:
    ys = ", ".join(str(y) for y in years)
    return (f"工作日历缺少 {ys} 年的节假日安排，期限按周一至周五计算；请导入（hall-server calendar import FILE）"
            f" / the working calendar has no {ys} holidays; deadlines count Monday-Friday until "
            "it is imported (hall-server calendar import FILE)")


# ---- year files --------------------------------------------------------------------------------
@dataclass(frozen=True)
class DayEntry:
    day: date
    kind: str
    name_zh: str
    name_en: str


_KIND_ALIASES = {"holiday": "holiday", "假日": "holiday", "放假": "holiday", "休": "holiday",
                 "workday": "workday", "上班": "workday", "调休上班": "workday", "班": "workday"}


def parse_year_file(data: bytes, filename: str) -> tuple[int, list[DayEntry]]:
    """A year's exceptions from JSON (`{"year", "holidays": [...], "workdays": [...]}`, each
    `{"date", "name_zh", "name_en"}`) or CSV (`date,kind,name_zh,name_en`; kind holiday/workday
    or 放假/上班). Raises ValueError naming every bad entry; all dates must be in one year."""
    errors: list[str] = []
    entries: list[tuple[str, str, str, str, str]] = []  # (where, date, kind, zh, en)
    if filename.lower().endswith(".json"):
        try:
            obj: Any = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"not valid UTF-8 JSON: {e}") from None
        if not isinstance(obj, dict):
            raise ValueError('expected an object {"year", "holidays", "workdays"}')
        for kind in KINDS:
            items = obj.get(kind + "s", [])
            if not isinstance(items, list):
                errors.append(f"{kind}s: expected a list")
                continue
            for i, it in enumerate(items):
                if not isinstance(it, dict):
                    errors.append(f"{kind}s[{i}]: expected an object")
                    continue
                entries.append((f"{kind}s[{i}]", str(it.get("date", "")), kind,
                                str(it.get("name_zh", "")), str(it.get("name_en", ""))))
    else:
        text = _decode_text(data)
        for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            kind_raw = (row.get("kind") or "").strip()
            entries.append((f"line {line}", (row.get("date") or "").strip(),
                            _KIND_ALIASES.get(kind_raw.lower(), kind_raw),
                            (row.get("name_zh") or "").strip(), (row.get("name_en") or "").strip()))
    out: list[DayEntry] = []
    seen: set[date] = set()
    for where, ds, kind, zh, en in entries:
        try:
            d = date.fromisoformat(ds)
        except ValueError:
            errors.append(f"{where}: date: expected YYYY-MM-DD, got {ds!r}")
            continue
        if kind not in KINDS:
            errors.append(f"{where}: kind: expected holiday or workday, got {kind!r}")
            continue
        if d in seen:
            errors.append(f"{where}: date: {ds} listed twice")
            continue
        seen.add(d)
        out.append(DayEntry(d, kind, zh[:100], en[:100]))
    years = {e.day.year for e in out}
    if len(years) > 1:
        errors.append(f"one year per file, found {sorted(years)}")
    if errors:
        raise ValueError("; ".join(errors[:50]))
    if not out:
        raise ValueError("the file lists no days")
    return years.pop(), sorted(out, key=lambda e: e.day)


def _decode_text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030")  # as Excel saves CSV on Chinese Windows


def replace_year(conn: Connection, year: int, entries: Iterable[DayEntry]) -> None:
    """The year's exceptions become exactly `entries` (a re-import corrects, never adds up)."""
    conn.execute(t.calendar_days.delete().where(t.calendar_days.c.year == year))
    rows = [{"day": e.day.isoformat(), "kind": e.kind, "name_zh": e.name_zh, "name_en": e.name_en,
             "year": year} for e in entries]
    if rows:
        conn.execute(t.calendar_days.insert(), rows)


def year_rows(conn: Connection, year: int | None = None) -> list[dict[str, Any]]:
    q = select(t.calendar_days).order_by(t.calendar_days.c.day)
    if year is not None:
        q = q.where(t.calendar_days.c.year == year)
    return [dict(r) for r in conn.execute(q).mappings()]


DATA_DIR = Path(__file__).resolve().parent / "data" / "calendar"
