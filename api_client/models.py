"""Typed, immutable models of the Hall API bodies (docs/hall-api.md), with strict parsing.

Each model is a frozen dataclass whose field names mirror the contract, built by
``Model.from_json(obj)``. Parsing checks every field the client relies on; a missing field, a
wrong type or a bad timestamp raises :class:`api_client.errors.ApiResponseValidationError` naming
the field (``Ticket.called_at``), never a ``KeyError``/``TypeError``. Unknown extra fields are
ignored so a newer server does not break an older desk. Timestamps become aware UTC
``datetime``; lists become tuples (the models are values, shared between threads).

Secrets (tokens, device secrets) are excluded from ``repr`` so that logging a model cannot leak
them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import date as Date
from typing import Any, Self, TypeVar

from .errors import ApiResponseValidationError, invalid_response

__all__ = [
    "ApplicantCase",
    "Case",
    "CaseApplicant",
    "Category",
    "ChecklistItem",
    "DeviceCredential",
    "EnrollmentCode",
    "Hall",
    "Health",
    "LoginResult",
    "Matter",
    "MatterPage",
    "MaterialStatus",
    "Me",
    "PauseReason",
    "QueueSnapshot",
    "PadInfo",
    "PadPairing",
    "RatingChallenge",
    "RatingReason",
    "RatingReasons",
    "RatingReceipt",
    "RatingSubmission",
    "Rules",
    "ServerEvent",
    "ServiceResult",
    "Staff",
    "Stats",
    "Ticket",
    "UploadCreated",
    "UploadReceipt",
    "UploadStatus",
    "Window",
    "format_datetime",
    "parse_datetime",
]

T = TypeVar("T")

# The shape the contract promises; fromisoformat alone accepts oddities (other separators,
# stray characters) that would hide a broken server.
_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?", re.ASCII
)


def parse_datetime(value: str, where: str = "timestamp") -> datetime:
    """An ISO 8601 timestamp with an offset (``Z`` included) -> aware UTC datetime."""
    try:
        if not isinstance(value, str) or not _ISO_TIME.fullmatch(value):
            raise ValueError(value)
        dt = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise invalid_response(f"{where} is not an ISO 8601 time: {value!r:.60}") from None
    if dt.tzinfo is None:
        raise invalid_response(f"{where} has no time zone: {value!r:.60}")
    try:
        return dt.astimezone(UTC)
    except OverflowError:
        raise invalid_response(f"{where} is out of range: {value!r:.60}") from None


def format_datetime(value: datetime) -> str:
    """Aware datetime -> ``2026-11-25T09:30:00Z`` (microseconds kept when present)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: give a time zone (UTC) / 时间缺少时区")
    s = value.astimezone(UTC).isoformat()
    return s.removesuffix("+00:00") + "Z"


class _Obj:
    """Typed accessors over one JSON object; every failure names ``Model.field``."""

    __slots__ = ("_d", "_name")

    def __init__(self, obj: Any, name: str) -> None:
        if not isinstance(obj, Mapping):
            raise invalid_response(f"{name} is not an object (got {type(obj).__name__})")
        self._d = obj
        self._name = name

    def _where(self, key: str) -> str:
        return f"{self._name}.{key}"

    def __contains__(self, key: str) -> bool:
        return key in self._d

    def _get(self, key: str) -> Any:
        if key not in self._d:
            raise invalid_response(f"{self._where(key)} is missing")
        return self._d[key]

    def _bad(self, key: str, want: str, got: Any) -> ApiResponseValidationError:
        return invalid_response(
            f"{self._where(key)} should be {want}, got {type(got).__name__} {got!r:.60}"
        )

    def has(self, key: str) -> bool:
        return key in self._d

    def text(self, key: str, default: str | None = None) -> str:
        if default is not None and key not in self._d:
            return default
        v = self._get(key)
        if not isinstance(v, str):
            raise self._bad(key, "a string", v)
        return v

    def opt_text(self, key: str) -> str | None:
        v = self._d.get(key)
        if v is None:
            return None
        if not isinstance(v, str):
            raise self._bad(key, "a string or null", v)
        return v

    def integer(self, key: str, default: int | None = None) -> int:
        if default is not None and key not in self._d:
            return default
        v = self._get(key)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self._bad(key, "an integer", v)
        return v

    def opt_integer(self, key: str) -> int | None:
        v = self._d.get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            raise self._bad(key, "an integer or null", v)
        return v

    def opt_number(self, key: str) -> float | None:
        v = self._d.get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self._bad(key, "a number or null", v)
        try:
            f = float(v)
        except OverflowError:
            raise self._bad(key, "a number in range", v) from None
        if not math.isfinite(f):
            raise self._bad(key, "a finite number", v)
        return f

    def flag(self, key: str, default: bool | None = None) -> bool:
        if default is not None and key not in self._d:
            return default
        v = self._get(key)
        if not isinstance(v, bool):
            raise self._bad(key, "true or false", v)
        return v

    def dt(self, key: str) -> datetime:
        v = self._get(key)
        if not isinstance(v, str):
            raise self._bad(key, "a timestamp", v)
        return parse_datetime(v, self._where(key))

    def opt_dt(self, key: str) -> datetime | None:
        v = self._d.get(key)
        if v is None:
            return None
        if not isinstance(v, str):
            raise self._bad(key, "a timestamp or null", v)
        return parse_datetime(v, self._where(key))

    def day(self, key: str) -> Date:
        v = self._get(key)
        if not isinstance(v, str):
            raise self._bad(key, "a date", v)
        try:
            return Date.fromisoformat(v)
        except ValueError:
            raise self._bad(key, "a date YYYY-MM-DD", v) from None

    def obj(self, key: str, parse: Callable[[Any], T]) -> T:
        return parse(self._get(key))

    def opt_obj(self, key: str, parse: Callable[[Any], T]) -> T | None:
        v = self._d.get(key)
        return None if v is None else parse(v)

    def seq(
        self, key: str, parse: Callable[[Any], T], default_empty: bool = False
    ) -> tuple[T, ...]:
        if default_empty and self._d.get(key) is None:
            return ()
        v = self._get(key)
        if not isinstance(v, list):
            raise self._bad(key, "a list", v)
        return tuple(parse(x) for x in v)

    def texts(self, key: str, default_empty: bool = False) -> tuple[str, ...]:
        def one(x: Any) -> str:
            if not isinstance(x, str):
                raise self._bad(key, "a list of strings", x)
            return x

        return self.seq(key, one, default_empty)

    def integers(self, key: str) -> tuple[int, ...]:
        def one(x: Any) -> int:
            if isinstance(x, bool) or not isinstance(x, int):
                raise self._bad(key, "a list of integers", x)
            return x

        return self.seq(key, one)

    def int_map(self, key: str) -> dict[str, int]:
        v = self._get(key)
        if not isinstance(v, Mapping):
            raise self._bad(key, "an object", v)
        out: dict[str, int] = {}
        for k, n in v.items():
            if not isinstance(k, str) or isinstance(n, bool) or not isinstance(n, int):
                raise self._bad(key, "an object of integers", n)
            out[k] = n
        return out

    def mapping(self, key: str) -> dict[str, Any]:
        v = self._d.get(key)
        if v is None:
            return {}
        if not isinstance(v, Mapping):
            raise self._bad(key, "an object", v)
        return dict(v)


# --- staff, hall ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Staff:
    staff_no: str
    name_zh: str
    name_en: str
    role: str
    photo_url: str | None
    disabled: bool

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "Staff")
        return cls(
            staff_no=o.text("staff_no"),
            name_zh=o.text("name_zh"),
            name_en=o.text("name_en", ""),
            role=o.text("role"),
            photo_url=o.opt_text("photo_url"),
            disabled=o.flag("disabled", False),
        )


@dataclass(frozen=True, slots=True)
class Window:
    no: int
    name_zh: str
    name_en: str
    categories: tuple[str, ...]
    state: str
    pause_reason_code: str | None
    staff: Staff | None
    current_ticket_id: int | None

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "Window")
        return cls(
            no=o.integer("no"),
            name_zh=o.text("name_zh"),
            name_en=o.text("name_en", ""),
            categories=o.texts("categories"),
            state=o.text("state"),
            pause_reason_code=o.opt_text("pause_reason_code"),
            staff=o.opt_obj("staff", Staff.from_json),
            current_ticket_id=o.opt_integer("current_ticket_id"),
        )


@dataclass(frozen=True, slots=True)
class Rules:
    recall_limit: int
    no_show_min_recalls: int
    no_show_min_seconds: int
    rate_later_days: int

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "Rules")
        return cls(
            recall_limit=o.integer("recall_limit"),
            no_show_min_recalls=o.integer("no_show_min_recalls"),
            no_show_min_seconds=o.integer("no_show_min_seconds"),
            rate_later_days=o.integer("rate_later_days"),
        )


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    name_zh: str
    name_en: str

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "Category")
        return cls(code=o.text("code"), name_zh=o.text("name_zh"), name_en=o.text("name_en", ""))


@dataclass(frozen=True, slots=True)
class PauseReason:
    code: str
    name_zh: str
    name_en: str
    public_zh: str
    public_en: str

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "PauseReason")
        return cls(
            code=o.text("code"),
            name_zh=o.text("name_zh"),
            name_en=o.text("name_en", ""),
            public_zh=o.text("public_zh", ""),
            public_en=o.text("public_en", ""),
        )


@dataclass(frozen=True, slots=True)
class Hall:
    code: str
    name_zh: str
    name_en: str
    timezone: str
    rules: Rules
    categories: tuple[Category, ...]
    windows: tuple[Window, ...]
    pause_reasons: tuple[PauseReason, ...]

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "Hall")
        return cls(
            code=o.text("code"),
            name_zh=o.text("name_zh"),
            name_en=o.text("name_en", ""),
            timezone=o.text("timezone"),
            rules=o.obj("rules", Rules.from_json),
            categories=o.seq("categories", Category.from_json),
            windows=o.seq("windows", Window.from_json),
            pause_reasons=o.seq("pause_reasons", PauseReason.from_json),
        )


@dataclass(frozen=True, slots=True)
class HallIdentity:
    """GET /identity: what a PC keys its device credential by (stable across address changes)."""

    hall_code: str
    server_id: str

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "HallIdentity")
        return cls(hall_code=o.text("hall_code"), server_id=o.text("server_id"))


@dataclass(frozen=True, slots=True)
class Health:
    status: str
    version: str
    time: datetime
    database: str

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "Health")
        return cls(
            status=o.text("status"),
            version=o.text("version"),
            time=o.dt("time"),
            database=o.text("database", ""),
        )


@dataclass(frozen=True, slots=True)
class LoginResult:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    token_type: str
    expires_in: int
    staff: Staff
    window: Window | None

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "LoginResult")
        return cls(
            access_token=o.text("access_token"),
            refresh_token=o.text("refresh_token"),
            token_type=o.text("token_type", "bearer"),
            expires_in=o.integer("expires_in"),
            staff=o.obj("staff", Staff.from_json),
            window=o.opt_obj("window", Window.from_json),
        )


@dataclass(frozen=True, slots=True)
class Me:
    staff: Staff
    window: Window | None

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "Me")
        return cls(
            staff=o.obj("staff", Staff.from_json), window=o.opt_obj("window", Window.from_json)
        )


@dataclass(frozen=True, slots=True)
class DeviceCredential:
    device_id: str
    device_secret: str = field(repr=False)
    window_no: int

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "DeviceCredential")
        return cls(
            device_id=o.text("device_id"),
            device_secret=o.text("device_secret"),
            window_no=o.integer("window_no"),
        )


@dataclass(frozen=True, slots=True)
class EnrollmentCode:
    code: str = field(repr=False)
    window_no: int
    expires_at: datetime

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "EnrollmentCode")
        return cls(
            code=o.text("code"), window_no=o.integer("window_no"), expires_at=o.dt("expires_at")
        )


# --- matters catalog --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    id: str
    name_zh: str
    name_en: str
    requirement: str
    copies: int
    original_required: bool
    e_licence: bool
    notes_zh: str
    notes_en: str

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "ChecklistItem")
        return cls(
            id=o.text("id"),
            name_zh=o.text("name_zh"),
            name_en=o.text("name_en", ""),
            requirement=o.text("requirement"),
            copies=o.integer("copies", 1),
            original_required=o.flag("original_required", False),
            e_licence=o.flag("e_licence", False),
            notes_zh=o.opt_text("notes_zh") or "",
            notes_en=o.opt_text("notes_en") or "",
        )


@dataclass(frozen=True, slots=True)
class Matter:
    code: str
    name_zh: str
    name_en: str
    department_zh: str
    department_en: str
    category: str
    time_limit_days: int
    instant: bool
    cross_region: bool
    version: int
    deleted: bool
    checklist: tuple[ChecklistItem, ...]

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "Matter")
        deleted = o.flag("deleted", False)
        if deleted:
            # A tombstone needs only its code and version; the rest may be absent.
            return cls(
                code=o.text("code"),
                name_zh=o.opt_text("name_zh") or "",
                name_en=o.opt_text("name_en") or "",
                department_zh=o.opt_text("department_zh") or "",
                department_en=o.opt_text("department_en") or "",
                category=o.opt_text("category") or "",
                time_limit_days=o.opt_integer("time_limit_days") or 0,
                instant=bool(o.has("instant") and o.flag("instant")),
                cross_region=bool(o.has("cross_region") and o.flag("cross_region")),
                version=o.integer("version"),
                deleted=True,
                checklist=o.seq("checklist", ChecklistItem.from_json, default_empty=True),
            )
        return cls(
            code=o.text("code"),
            name_zh=o.text("name_zh"),
            name_en=o.text("name_en", ""),
            department_zh=o.text("department_zh", ""),
            department_en=o.text("department_en", ""),
            category=o.text("category"),
            time_limit_days=o.integer("time_limit_days"),
            instant=o.flag("instant", False),
            cross_region=o.flag("cross_region", False),
            version=o.integer("version"),
            deleted=False,
            checklist=o.seq("checklist", ChecklistItem.from_json, default_empty=True),
        )


@dataclass(frozen=True, slots=True)
class MatterPage:
    catalog_version: int
    items: tuple[Matter, ...]
    next_after: str | None

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "MatterPage")
        return cls(
            catalog_version=o.integer("catalog_version"),
            items=o.seq("items", Matter.from_json),
            next_after=o.opt_text("next_after"),
        )


# --- tickets, queue, cases --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ticket:
    id: int
    number: str
    category: str
    matter_code: str | None
    priority: str
    appointment_at: datetime | None
    state: str
    window_no: int | None
    target_window_no: int | None
    issued_at: datetime
    queued_at: datetime
    called_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    recalls: int
    case_id: int | None

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "Ticket")
        return cls(
            id=o.integer("id"),
            number=o.text("number"),
            category=o.text("category"),
            matter_code=o.opt_text("matter_code"),
            priority=o.text("priority"),
            appointment_at=o.opt_dt("appointment_at"),
            state=o.text("state"),
            window_no=o.opt_integer("window_no"),
            target_window_no=o.opt_integer("target_window_no"),
            issued_at=o.dt("issued_at"),
            queued_at=o.dt("queued_at"),
            called_at=o.opt_dt("called_at"),
            started_at=o.opt_dt("started_at"),
            finished_at=o.opt_dt("finished_at"),
            recalls=o.integer("recalls", 0),
            case_id=o.opt_integer("case_id"),
        )


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    window: Window
    current: Ticket | None
    waiting: tuple[Ticket, ...]
    suspended: tuple[Ticket, ...]

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "QueueSnapshot")
        return cls(
            window=o.obj("window", Window.from_json),
            current=o.opt_obj("current", Ticket.from_json),
            waiting=o.seq("waiting", Ticket.from_json),
            suspended=o.seq("suspended", Ticket.from_json, default_empty=True),
        )


@dataclass(frozen=True, slots=True)
class MaterialStatus:
    item_id: str
    status: str
    note: str

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "MaterialStatus")
        return cls(
            item_id=o.text("item_id"), status=o.text("status"), note=o.opt_text("note") or ""
        )


@dataclass(frozen=True, slots=True)
class Case:
    id: int
    case_no: str
    ticket_id: int | None
    matter_code: str | None
    staff_no: str
    window_no: int | None
    started_at: datetime
    completed_at: datetime | None
    outcome: str | None
    materials: tuple[MaterialStatus, ...]
    notes: str

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "Case")
        return cls(
            id=o.integer("id"),
            case_no=o.text("case_no"),
            ticket_id=o.opt_integer("ticket_id"),
            matter_code=o.opt_text("matter_code"),
            staff_no=o.text("staff_no"),
            window_no=o.opt_integer("window_no"),
            started_at=o.dt("started_at"),
            completed_at=o.opt_dt("completed_at"),
            outcome=o.opt_text("outcome"),
            materials=o.seq("materials", MaterialStatus.from_json, default_empty=True),
            notes=o.opt_text("notes") or "",
        )


@dataclass(frozen=True, slots=True)
class CaseApplicant:
    """The applicant on a case: masked (张*明, 3701**********1234) unless from ``reveal``."""

    case_id: int
    masked: bool
    name: str
    doc_type: str
    doc_number: str
    phone: str
    address: str
    company_name: str
    credit_code: str
    disability_certificate: bool
    source: str
    green_channel_suggested: bool
    birth_date: str | None = None  # only in a revealed record (YYYY-MM-DD)

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "CaseApplicant")
        return cls(
            case_id=o.integer("case_id"), masked=o.flag("masked"), name=o.text("name"),
            doc_type=o.text("doc_type"), doc_number=o.text("doc_number"), phone=o.text("phone", ""),
            address=o.text("address", ""), company_name=o.text("company_name", ""),
            credit_code=o.text("credit_code", ""),
            disability_certificate=o.flag("disability_certificate", False),
            source=o.text("source", "manual"),
            green_channel_suggested=o.flag("green_channel_suggested", False),
            birth_date=o.opt_text("birth_date") if o.has("birth_date") else None,
        )


@dataclass(frozen=True, slots=True)
class ApplicantCase:
    """One hit of ``search_applicants``: a past case and its masked applicant."""

    case_no: str
    window_no: int
    day: str
    matter_code: str | None
    applicant: CaseApplicant

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "ApplicantCase")
        return cls(case_no=o.text("case_no"), window_no=o.integer("window_no"), day=o.text("day"),
                   matter_code=o.opt_text("matter_code"),
                   applicant=o.obj("applicant", CaseApplicant.from_json))


@dataclass(frozen=True, slots=True)
class CaseMailing:
    """The result mailing (邮寄) of a case, masked: recipient, phone, address, tracking number."""

    case_id: int
    recipient: str
    phone: str
    address: str
    carrier: str
    tracking_no: str
    status: str  # "to_mail" | "mailed"
    mailed_at: str | None = None

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "CaseMailing")
        return cls(case_id=o.integer("case_id"), recipient=o.text("recipient"), phone=o.text("phone"),
                   address=o.text("address"), carrier=o.text("carrier"),
                   tracking_no=o.text("tracking_no", ""), status=o.text("status"),
                   mailed_at=o.opt_text("mailed_at") if o.has("mailed_at") else None)


@dataclass(frozen=True, slots=True)
class ServiceResult:
    ticket: Ticket
    case: Case

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "ServiceResult")
        return cls(ticket=o.obj("ticket", Ticket.from_json), case=o.obj("case", Case.from_json))


# --- ratings ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RatingReason:
    code: str
    text_zh: str
    text_en: str

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "RatingReason")
        return cls(code=o.text("code"), text_zh=o.text("text_zh"), text_en=o.text("text_en", ""))


@dataclass(frozen=True, slots=True)
class RatingReasons:
    version: str
    reasons: tuple[RatingReason, ...]

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "RatingReasons")
        return cls(version=o.text("version"), reasons=o.seq("reasons", RatingReason.from_json))


@dataclass(frozen=True, slots=True)
class RatingChallenge:
    case_id: int
    challenge: str
    issued_at: datetime

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "RatingChallenge")
        return cls(
            case_id=o.integer("case_id"), challenge=o.text("challenge"), issued_at=o.dt("issued_at")
        )


@dataclass(frozen=True, slots=True)
class RatingSubmission:
    """A rating as captured at the desk; ``to_json()`` is the body of ``POST /ratings``.

    ``from_json`` reads the same shape back (the outbox stores it as JSON).
    """

    id: str
    case_id: int
    window_no: int
    level: str
    rated_at: datetime
    source: str
    reasons: tuple[str, ...] = ()
    reasons_version: str = ""
    comment: str = ""
    pad_id: str | None = None
    pad_counter: int | None = None
    challenge: str | None = None
    signature: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "case_id": self.case_id,
            "window_no": self.window_no,
            "level": self.level,
            "reasons": list(self.reasons),
            "reasons_version": self.reasons_version,
            "comment": self.comment,
            "source": self.source,
            "rated_at": format_datetime(self.rated_at),
            "pad_id": self.pad_id,
            "pad_counter": self.pad_counter,
            "challenge": self.challenge,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "RatingSubmission")
        return cls(
            id=o.text("id"),
            case_id=o.integer("case_id"),
            window_no=o.integer("window_no"),
            level=o.text("level"),
            rated_at=o.dt("rated_at"),
            source=o.text("source"),
            reasons=o.texts("reasons", default_empty=True),
            reasons_version=o.opt_text("reasons_version") or "",
            comment=o.opt_text("comment") or "",
            pad_id=o.opt_text("pad_id"),
            pad_counter=o.opt_integer("pad_counter"),
            challenge=o.opt_text("challenge"),
            signature=o.opt_text("signature"),
        )


@dataclass(frozen=True, slots=True)
class RatingReceipt:
    rating_id: str
    case_id: int
    level: str
    assurance: str
    received_at: datetime

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "RatingReceipt")
        return cls(
            rating_id=o.text("rating_id"),
            case_id=o.integer("case_id"),
            level=o.text("level"),
            assurance=o.text("assurance"),
            received_at=o.dt("received_at"),
        )


# --- evaluator pads ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PadPairing:
    """A one-time pad pairing: `token` (QR, 128-bit base64url) or the 6-digit `code`."""

    pairing_id: str
    window_no: int
    token: str
    code: str
    expires_at: datetime
    expires_in: int

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "PadPairing")
        return cls(
            pairing_id=o.text("pairing_id"),
            window_no=o.integer("window_no"),
            token=o.text("token"),
            code=o.text("code"),
            expires_at=o.dt("expires_at"),
            expires_in=o.integer("expires_in"),
        )


@dataclass(frozen=True, slots=True)
class PadInfo:
    """A paired pad: its Ed25519 public key (raw, base64url) and its last accepted counter."""

    pad_id: str
    window_no: int
    alg: str
    public_key: str
    paired_at: datetime
    paired_by: str
    last_counter: int
    gaps: int
    last_seen_at: datetime | None = None  # the pad's last proven request to the server

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "PadInfo")
        return cls(
            pad_id=o.text("pad_id"),
            window_no=o.integer("window_no"),
            alg=o.text("alg"),
            public_key=o.text("public_key"),
            paired_at=o.dt("paired_at"),
            paired_by=o.text("paired_by"),
            last_counter=o.integer("last_counter"),
            gaps=o.integer("gaps"),
            last_seen_at=o.opt_dt("last_seen_at"),
        )


@dataclass(frozen=True, slots=True)
class RatingStatus:
    """How the rating the desk opened ended (never its level): `state` is "open" (the pad may
    still answer), "rated", "closed" (over: rate later) or "none"."""

    case_id: int
    state: str
    rated: bool
    rating_id: str | None
    source: str | None
    assurance: str | None

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "RatingStatus")
        return cls(
            case_id=o.integer("case_id"),
            state=o.text("state"),
            rated=o.flag("rated"),
            rating_id=o.opt_text("rating_id"),
            source=o.opt_text("source"),
            assurance=o.opt_text("assurance"),
        )


# --- figures ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stats:
    date: Date
    window_no: int | None
    served: int
    avg_wait_seconds: float | None
    avg_handle_seconds: float | None
    no_shows: int
    on_time_rate: float | None
    on_the_spot_rate: float | None
    ratings: int
    satisfaction_rate: float | None
    bad_open: int
    tickets_per_hour: tuple[int, ...]
    ratings_by_level: dict[str, int]
    #: signed (the pad's key) / unsigned (relayed by the window PC) / later (rate-later page);
    #: empty from a server that does not split them.
    ratings_by_assurance: dict[str, int] = field(default_factory=dict)
    satisfaction_rate_signed: float | None = None

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "Stats")
        return cls(
            date=o.day("date"),
            window_no=o.opt_integer("window_no"),
            served=o.integer("served"),
            avg_wait_seconds=o.opt_number("avg_wait_seconds"),
            avg_handle_seconds=o.opt_number("avg_handle_seconds"),
            no_shows=o.integer("no_shows"),
            on_time_rate=o.opt_number("on_time_rate"),
            on_the_spot_rate=o.opt_number("on_the_spot_rate"),
            ratings=o.integer("ratings"),
            satisfaction_rate=o.opt_number("satisfaction_rate"),
            bad_open=o.integer("bad_open"),
            tickets_per_hour=o.integers("tickets_per_hour"),
            ratings_by_level=o.int_map("ratings_by_level"),
            ratings_by_assurance=(o.int_map("ratings_by_assurance")
                                  if "ratings_by_assurance" in o else {}),
            satisfaction_rate_signed=o.opt_number("satisfaction_rate_signed"),
        )


# --- uploads ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UploadCreated:
    upload_id: str
    offset: int
    size: int
    location: str

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "UploadCreated")
        return cls(
            upload_id=o.text("upload_id"),
            offset=o.integer("offset"),
            size=o.integer("size"),
            location=o.text("location", ""),
        )


@dataclass(frozen=True, slots=True)
class UploadReceipt:
    document_id: str
    sha256: str
    size: int
    received_at: datetime

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "UploadReceipt")
        doc = o._d.get("document_id")
        # Tolerate an integer id: the contract does not fix its type, the desk only shows it.
        if isinstance(doc, int) and not isinstance(doc, bool):
            document_id = str(doc)
        else:
            document_id = o.text("document_id")
        return cls(
            document_id=document_id,
            sha256=o.text("sha256"),
            size=o.integer("size"),
            received_at=o.dt("received_at"),
        )


@dataclass(frozen=True, slots=True)
class UploadStatus:
    upload_id: str
    offset: int
    size: int
    complete: bool
    receipt: UploadReceipt | None

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "UploadStatus")
        return cls(
            upload_id=o.text("upload_id"),
            offset=o.integer("offset"),
            size=o.integer("size"),
            complete=o.flag("complete"),
            receipt=o.opt_obj("receipt", UploadReceipt.from_json),
        )


# --- live events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """One Server-Sent Event: ``type`` like ``ticket.issued``; ``data`` is the raw JSON object."""

    id: str
    type: str
    at: datetime | None
    ticket: Ticket | None
    window: Window | None
    data: dict[str, Any]

    @classmethod
    def from_sse(cls, event_id: str, event_type: str, data: Any) -> Self:
        """Build from a parsed SSE frame; ``data`` is the decoded JSON of the ``data:`` lines."""
        o = _Obj(data, f"ServerEvent({event_type})")
        etype = event_type
        if etype in ("", "message"):
            etype = o.opt_text("type") or "message"
        return cls(
            id=event_id,
            type=etype,
            at=o.opt_dt("at"),
            ticket=o.opt_obj("ticket", Ticket.from_json),
            window=o.opt_obj("window", Window.from_json),
            data=dict(data),
        )


# ---- the window's own follow-ups and appeals (GET /windows/{no}/followups; docs/followup.md) ----
@dataclass(frozen=True, slots=True)
class FollowupItem:
    """A bad rating of this window under follow-up (核实 → 整改 → 反馈 → 复核)."""

    id: int
    rating_id: str
    case_no: str
    level: str
    comment: str
    state: str  # open, assigned, called_back, verified, rectified, answered (closed ones are not listed)
    due_day: Date
    overdue: bool
    assignee: str | None

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "FollowupItem")
        return cls(id=o.integer("id"), rating_id=o.text("rating_id"), case_no=o.text("case_no", ""),
                   level=o.text("level"), comment=o.text("comment", ""), state=o.text("state"),
                   due_day=o.day("due_day"), overdue=o.flag("overdue"), assignee=o.opt_text("assignee"))


@dataclass(frozen=True, slots=True)
class AppealItem:
    """An appeal (申诉) of a rating of this window, and the supervisor's decision."""

    id: int
    rating_id: str
    case_no: str
    state: str  # pending, upheld, rejected
    reason: str
    decision_note: str
    filed_by: str

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "AppealItem")
        return cls(id=o.integer("id"), rating_id=o.text("rating_id"), case_no=o.text("case_no", ""),
                   state=o.text("state"), reason=o.text("reason", ""), decision_note=o.text("decision_note", ""),
                   filed_by=o.text("filed_by", ""))


@dataclass(frozen=True, slots=True)
class WindowFollowups:
    window_no: int
    today: Date
    followups: tuple[FollowupItem, ...]
    appeals: tuple[AppealItem, ...]

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        o = _Obj(obj, "WindowFollowups")
        fus, aps = obj.get("followups"), obj.get("appeals")
        if not isinstance(fus, list) or not isinstance(aps, list):
            raise invalid_response("WindowFollowups.followups/appeals should be lists")
        return cls(window_no=o.integer("window_no"), today=o.day("today"),
                   followups=tuple(FollowupItem.from_json(x) for x in fus),
                   appeals=tuple(AppealItem.from_json(x) for x in aps))
