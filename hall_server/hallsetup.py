"""Bootstrapping a hall: the `hall.toml` model (`HallSpec`), its validation, and `init_hall`,
the ONE code path that creates a hall in an empty database — used by `hall-server init`
(interactive or `--from hall.toml`) and by `--demo` (seed.py feeds it the demo files).

Also the hall's settings that live in the database after init: the rules (`HallRules`, meta key
`rules`), the time zone, and `runtime(store)` that the app reads at start-up.
See docs/hall-setup.md for the file format and hall.example.toml for a commented example.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import Connection, select

from hall_server import schema as t
from hall_server import workdays
from hall_server.core import get_meta, set_meta
from hall_server.db import Store, Tx, now_ms
from hall_server.errors import ApiError
from hall_server.settings import Rules

DATA_DIR = Path(__file__).resolve().parent / "data"
RATING_REASONS_FILE = DATA_DIR / "rating_reasons.json"
DEMO_HALL_FILE = DATA_DIR / "demo-hall.toml"

Code = Annotated[str, Field(min_length=1, max_length=8, pattern=r"^[A-Z][A-Z0-9]{0,7}$")]
ReasonCode = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")]
Name = Annotated[str, Field(min_length=1, max_length=100)]
NameEn = Annotated[str, Field(max_length=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HallInfo(_Strict):
    code: Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$")]
    name_zh: Name
    name_en: NameEn = ""
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (e.g. Asia/Shanghai)") from None
        return v


class HallRules(_Strict):
    """The rules a hall may tune. The first four are served to desks as `Rules`."""

    recall_limit: Annotated[int, Field(ge=0, le=20)] = 3
    no_show_min_recalls: Annotated[int, Field(ge=0, le=20)] = 2
    no_show_min_seconds: Annotated[int, Field(ge=0, le=3600)] = 120
    rate_later_days: Annotated[int, Field(ge=1, le=30)] = 5  # working days (Shandong: 5)
    green_channel_age: Annotated[int, Field(ge=50, le=100)] = 65  # 老年人绿色通道
    bad_rating_followup_days: Annotated[int, Field(ge=1, le=30)] = 5  # working days to close a follow-up (Shandong: 5)
    # days a replaced rating-reasons list's version is still accepted (rating_channels.py)
    reasons_version_grace_days: Annotated[int, Field(ge=0, le=365)] = 30

    def desk_rules(self) -> Rules:
        return Rules(recall_limit=self.recall_limit, no_show_min_recalls=self.no_show_min_recalls,
                     no_show_min_seconds=self.no_show_min_seconds, rate_later_days=self.rate_later_days)


class CategorySpec(_Strict):
    code: Code
    name_zh: Name
    name_en: NameEn = ""


class WindowSpec(_Strict):
    no: Annotated[int, Field(ge=1, le=9999)]
    name_zh: Name
    name_en: NameEn = ""
    categories: Annotated[list[Code], Field(max_length=50)] = []


class PauseReasonSpec(_Strict):
    code: ReasonCode
    name_zh: Name
    name_en: NameEn = ""
    public_zh: Annotated[str, Field(min_length=1, max_length=200)]
    public_en: Annotated[str, Field(max_length=200)] = ""


class RatingReason(_Strict):
    code: Annotated[str, Field(min_length=1, max_length=32)]
    text_zh: Annotated[str, Field(min_length=1, max_length=300)]
    text_en: Annotated[str, Field(max_length=300)] = ""


class RatingReasons(_Strict):
    """A versioned reason list (ratings store the version they were given under)."""

    version: Annotated[str, Field(min_length=1, max_length=64)]
    reasons: Annotated[list[RatingReason], Field(min_length=1, max_length=100)]
    source: str = ""

    @model_validator(mode="after")
    def _unique(self) -> RatingReasons:
        codes = [r.code for r in self.reasons]
        dup = sorted({c for c in codes if codes.count(c) > 1})
        if dup:
            raise ValueError(f"duplicate reason codes {dup}")
        return self


class AdminSpec(_Strict):
    staff_no: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z_-]+$")]
    name_zh: Name
    name_en: NameEn = ""


class HallSpec(_Strict):
    hall: HallInfo
    rules: HallRules = HallRules()
    categories: Annotated[list[CategorySpec], Field(min_length=1, max_length=50)]
    windows: Annotated[list[WindowSpec], Field(min_length=1, max_length=500)]
    pause_reasons: Annotated[list[PauseReasonSpec], Field(max_length=50)] = []
    rating_reasons: RatingReasons | None = None  # None: the shipped national list
    calendar: list[str] = []  # year files (paths), imported in order
    admin: AdminSpec | None = None  # the first IT admin (its password is never in the file)

    @model_validator(mode="after")
    def _consistent(self) -> HallSpec:
        problems: list[str] = []
        cats = [c.code for c in self.categories]
        for what, codes in (("categories", cats), ("windows", [str(w.no) for w in self.windows]),
                            ("pause_reasons", [p.code for p in self.pause_reasons])):
            dup = sorted({c for c in codes if codes.count(c) > 1})
            if dup:
                problems.append(f"{what}: duplicates {dup}")
        for w in self.windows:
            unknown = [c for c in w.categories if c not in cats]
            if unknown:
                problems.append(f"window {w.no}: unknown categories {unknown}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def national_rating_reasons() -> RatingReasons:
    return RatingReasons.model_validate_json(RATING_REASONS_FILE.read_bytes())


def spec_errors(e: ValidationError) -> list[str]:
    """pydantic's errors as `where: message` lines an IT person can act on."""
    out = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(file)"
        out.append(f"{loc}: {err.get('msg', '')}")
    return out


def load_spec(path: Path) -> HallSpec:
    """Read and check a hall.toml. `rating_reasons = "file.json"` and calendar paths are read
    relative to the file; a ValueError lists every problem."""
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from None
    rr = raw.get("rating_reasons")
    if isinstance(rr, str):
        rr_path = _resolve(path.parent, rr)
        try:
            raw["rating_reasons"] = json.loads(rr_path.read_text(encoding="utf-8-sig"))
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"rating_reasons: cannot read {rr_path}: {e}") from None
    cal = raw.get("calendar")
    if isinstance(cal, dict):  # [calendar] files = [...]
        cal = cal.get("files", [])
    if isinstance(cal, list):
        raw["calendar"] = [str(_resolve(path.parent, str(c))) for c in cal]
    try:
        return HallSpec.model_validate(raw)
    except ValidationError as e:
        raise ValueError(f"{path}:\n  " + "\n  ".join(spec_errors(e))) from None


def _resolve(base: Path, name: str) -> Path:
    """A path relative to the hall.toml, else one of the files shipped in hall_server/data."""
    p = Path(name)
    if not p.is_absolute() and not (base / p).exists():
        for shipped in (DATA_DIR / p, workdays.DATA_DIR / p):
            if shipped.exists():
                return shipped
    return p if p.is_absolute() else base / p


# ---- the database side -------------------------------------------------------------------------
def is_initialised(conn: Connection) -> bool:
    """A hall exists: made by init/--demo (meta `hall_code`), or by hand before init existed
    (windows in the table) — such a database must keep serving after the upgrade."""
    if get_meta(conn, "hall_code") is not None:
        return True
    return conn.execute(select(t.windows.c.no).limit(1)).first() is not None


def audit(conn: Connection, actor: str, action: str, target: str,
          before: Any = None, after: Any = None) -> None:
    """One audit row; `before`/`after` are JSON-able and never hold a secret."""
    def enc(v: Any) -> str | None:
        return None if v is None else json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)

    conn.execute(t.audit_log.insert().values(at_ms=now_ms(), actor=actor[:64], action=action[:64],
                                             target=target[:200], before=enc(before), after=enc(after)))


def get_rules(conn: Connection) -> HallRules:
    raw = get_meta(conn, "rules")
    return HallRules() if raw is None else HallRules.model_validate_json(raw)


def set_rules(conn: Connection, rules: HallRules) -> None:
    set_meta(conn, "rules", rules.model_dump_json())


RETIRED_REASONS_KEY = "rating_reasons_retired"  # meta: {version: ms it stopped being served}


def retire_version(conn: Connection, old_version: str | None, new_version: str, now: int) -> None:
    """Remember when a reasons list version stopped being served: ratings made with it are
    accepted for `reasons_version_grace_days` more (rating_channels.check_reasons_version)."""
    if not old_version or old_version == new_version:
        return
    retired = json.loads(get_meta(conn, RETIRED_REASONS_KEY) or "{}")
    retired[old_version] = now
    retired.pop(new_version, None)
    set_meta(conn, RETIRED_REASONS_KEY, json.dumps(retired, ensure_ascii=False, sort_keys=True))


def write_rating_reasons(conn: Connection, rr: RatingReasons) -> None:
    old = conn.execute(select(t.rating_reasons.c.version).limit(1)).scalar()
    retire_version(conn, old, rr.version, now_ms())  # the old version's grace period starts
    conn.execute(t.rating_reasons.delete())
    conn.execute(t.rating_reasons.insert(), [
        {"code": r.code, "version": rr.version, "position": i, "text_zh": r.text_zh, "text_en": r.text_en}
        for i, r in enumerate(rr.reasons)
    ])


def read_calendar_files(paths: list[str]) -> list[tuple[int, list[workdays.DayEntry]]]:
    out = []
    for p in paths:
        try:
            data = Path(p).read_bytes()
        except OSError as e:
            raise ValueError(f"calendar: cannot read {p}: {e}") from None
        try:
            out.append(workdays.parse_year_file(data, p))
        except ValueError as e:
            raise ValueError(f"calendar {p}: {e}") from None
    return out


def init_hall(tx: Tx, spec: HallSpec, actor: str, admin_password_hash: str | None,
              years: list[tuple[int, list[workdays.DayEntry]]] | None = None) -> dict[str, Any]:
    """Create the hall in an empty database, all of it or nothing (one transaction).

    409 `already_initialised` when the database already holds a hall: init never overwrites;
    later changes go through the admin operations, each with its audit row."""
    conn = tx.conn
    if is_initialised(conn):
        raise ApiError(409, "already_initialised", {"hall_code": get_meta(conn, "hall_code")})
    if spec.admin is not None and admin_password_hash is None:
        raise ValueError("the first IT admin needs a password")
    set_meta(conn, "hall_code", spec.hall.code)
    set_meta(conn, "hall_name_zh", spec.hall.name_zh)
    set_meta(conn, "hall_name_en", spec.hall.name_en)
    set_meta(conn, "timezone", spec.hall.timezone)
    set_rules(conn, spec.rules)
    conn.execute(t.categories.insert(), [c.model_dump() for c in spec.categories])
    conn.execute(t.windows.insert(), [
        {"no": w.no, "name_zh": w.name_zh, "name_en": w.name_en,
         "categories": ",".join(dict.fromkeys(w.categories)), "state": "closed"}
        for w in spec.windows
    ])
    if spec.pause_reasons:
        conn.execute(t.pause_reasons.insert(), [p.model_dump() for p in spec.pause_reasons])
    rr = spec.rating_reasons or national_rating_reasons()
    write_rating_reasons(conn, rr)
    for year, entries in years or []:
        workdays.replace_year(conn, year, entries)
    if spec.admin is not None and admin_password_hash is not None:
        conn.execute(t.staff.insert().values(
            staff_no=spec.admin.staff_no, name_zh=spec.admin.name_zh, name_en=spec.admin.name_en,
            role="it_admin", password_hash=admin_password_hash, disabled=False,
            must_change_password=False))
    summary = {
        "hall": spec.hall.model_dump(), "rules": spec.rules.model_dump(),
        "categories": len(spec.categories), "windows": len(spec.windows),
        "pause_reasons": len(spec.pause_reasons), "rating_reasons_version": rr.version,
        "calendar_years": [y for y, _ in years or []],
        "admin": spec.admin.staff_no if spec.admin else None,
    }
    audit(conn, actor, "hall.init", spec.hall.code, None, summary)
    return summary


@dataclass(frozen=True)
class Runtime:
    """What the app reads from the database at start-up."""

    initialised: bool
    timezone: str | None
    rules: HallRules | None  # None: never set (a database from before 0006), keep Settings.rules
    calendar: workdays.WorkCalendar


def runtime(store: Store) -> Runtime:
    def fn(conn: Connection) -> Runtime:
        return Runtime(initialised=is_initialised(conn), timezone=get_meta(conn, "timezone"),
                       rules=get_rules(conn) if get_meta(conn, "rules") else None,
                       calendar=workdays.load(conn))

    return store.read_sync(fn)


def demo_spec(source_hall: dict[str, Any], categories: list[dict[str, Any]],
              windows: list[dict[str, Any]], pause_reasons: list[dict[str, Any]],
              rating_reasons: dict[str, Any]) -> tuple[HallSpec, list[tuple[int, list[workdays.DayEntry]]]]:
    """The demo hall as a HallSpec: hall.toml settings from data/demo-hall.toml, the hall's
    structure from the demo data (hall_server/demo_data.py), so `--demo` runs `init_hall`."""
    base = load_spec_partial(DEMO_HALL_FILE)
    spec = HallSpec.model_validate({
        **base,
        "hall": {**base.get("hall", {}), **{k: source_hall[k] for k in ("code", "name_zh", "name_en")}},
        "categories": categories, "windows": windows, "pause_reasons": pause_reasons,
        "rating_reasons": {"version": rating_reasons["version"], "reasons": rating_reasons["reasons"]},
    })
    return spec, read_calendar_files(spec.calendar)


def load_spec_partial(path: Path) -> dict[str, Any]:
    raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    cal = raw.get("calendar")
    if isinstance(cal, dict):
        cal = cal.get("files", [])
    raw["calendar"] = [str(_resolve(path.parent, str(c))) for c in cal or []]
    return raw
