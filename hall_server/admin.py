"""Hall administration, one model for three doors: the `*_op` functions here are the operations
(each one transaction, each writing an audit row: who, when, what, before/after); the admin API
routes below (`/api/v1/admin/...`, role `it_admin`) and the `hall-server` CLI subcommands
(hall_server/cli.py) call the same functions, and a web console can call them later.

Covers staff (create, edit, roles, disable, one-time password reset, photo), the staff member's
own password change (`/api/v1/auth/password`, no token: it is how a one-time password is
replaced), devices (list, revoke), windows (add, rename, retire, categories), categories, pause
and rating reasons, rules, the working calendar, enrollment codes, the catalog import and the
audit log.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Connection, func, select

from hall_server import catalog, hallsetup, queue, workdays
from hall_server import schema as t
from hall_server.core import (
    JSON,
    get_meta,
    hall_of,
    json_response,
    load_window,
    mutate,
    require_role,
    set_meta,
    staff_json,
    window_out,
)
from hall_server.db import Tx, iso_ms, now_ms
from hall_server.deps import Auth, IdPath, WinNo, check_password, session_alive
from hall_server.errors import ApiError
from hall_server.hallsetup import HallRules, RatingReasons, audit
from hall_server.security import hash_password

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
auth_router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

Role = Literal["staff", "supervisor", "it_admin"]
StaffNo = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z_-]+$")]
Password = Annotated[str, Field(min_length=8, max_length=200)]
Name = Annotated[str, Field(min_length=1, max_length=100)]
NameEn = Annotated[str, Field(max_length=100)]
CatCode = Annotated[str, Field(min_length=1, max_length=8, pattern=r"^[A-Z][A-Z0-9]{0,7}$")]

# Photos: what a clerk's phone or an ID-photo file gives, and the one shape the pad shows.
PHOTO_MAX_BYTES = 5 * 1024 * 1024
PHOTO_MIN_SIDE = 120
PHOTO_MAX_SIDE = 8000
PHOTO_SIZE = (295, 413)  # 一寸照 (25 x 35 mm at 300 dpi): the standard Chinese ID portrait


# ---- request bodies ----------------------------------------------------------------------------
class StaffIn(BaseModel):
    staff_no: StaffNo
    name_zh: Name
    name_en: NameEn = ""
    role: Role = "staff"
    password: Password


class StaffPatch(BaseModel):
    disabled: bool | None = None
    name_zh: Name | None = None
    name_en: NameEn | None = None
    role: Role | None = None


class PasswordChangeIn(BaseModel):
    staff_no: StaffNo
    password: Annotated[str, Field(min_length=1, max_length=200)]
    new_password: Password


class CategoriesIn(BaseModel):
    categories: Annotated[list[Annotated[str, Field(max_length=8)]], Field(max_length=50)]


class EnrollmentIn(BaseModel):
    window_no: WinNo


class WindowIn(BaseModel):
    no: Annotated[int, Field(ge=1, le=9999)]
    name_zh: Name
    name_en: NameEn = ""
    categories: Annotated[list[CatCode], Field(max_length=50)] = []


class WindowPatch(BaseModel):
    name_zh: Name
    name_en: NameEn = ""


class CategoryIn(BaseModel):
    name_zh: Name
    name_en: NameEn = ""


class PauseReasonIn(BaseModel):
    name_zh: Name
    name_en: NameEn = ""
    public_zh: Annotated[str, Field(min_length=1, max_length=200)]
    public_en: Annotated[str, Field(max_length=200)] = ""


# ---- staff ---------------------------------------------------------------------------------------
def _staff_row(conn: Connection, staff_no: str) -> Any:
    row = conn.execute(select(t.staff).where(t.staff.c.staff_no == staff_no)).mappings().first()
    if row is None:
        raise ApiError(404, "not_found", {"staff_no": staff_no})
    return row


def _staff_out(row: Any) -> JSON:
    return {**staff_json(row), "must_change_password": bool(row["must_change_password"]),
            "window_no": row["window_no"], "has_photo": row["photo"] is not None}


def _close_sessions(conn: Connection, staff_no: str) -> None:
    conn.execute(t.sessions.update().where(t.sessions.c.staff_no == staff_no, t.sessions.c.closed_ms.is_(None))
                 .values(closed_ms=now_ms()))


def create_staff_op(tx: Tx, staff_no: str, name_zh: str, name_en: str, role: str, password_hash: str,
                    *, actor: str = "cli") -> JSON:
    conn = tx.conn
    if conn.execute(select(t.staff.c.staff_no).where(t.staff.c.staff_no == staff_no)).first() is not None:
        raise ApiError(409, "staff_exists", {"staff_no": staff_no})
    conn.execute(t.staff.insert().values(staff_no=staff_no, name_zh=name_zh, name_en=name_en, role=role,
                                         password_hash=password_hash, disabled=False,
                                         must_change_password=False))
    out = _staff_out(_staff_row(conn, staff_no))
    audit(conn, actor, "staff.create", staff_no, None, out)
    return out


def set_disabled_op(tx: Tx, staff_no: str, disabled: bool, *, actor: str = "cli") -> JSON:
    return update_staff_op(tx, actor, staff_no, {"disabled": disabled})


def update_staff_op(tx: Tx, actor: str, staff_no: str, changes: dict[str, Any]) -> JSON:
    """Name, role or disabled; disabling or a role change ends the staff member's sessions
    (a token carries the role it was issued with)."""
    conn = tx.conn
    before = _staff_out(_staff_row(conn, staff_no))
    changes = {k: v for k, v in changes.items() if v is not None and k in ("name_zh", "name_en", "role", "disabled")}
    if changes:
        conn.execute(t.staff.update().where(t.staff.c.staff_no == staff_no).values(**changes))
    if changes.get("disabled") or ("role" in changes and changes["role"] != before["role"]):
        _close_sessions(conn, staff_no)
    after = _staff_out(_staff_row(conn, staff_no))
    audit(conn, actor, "staff.update", staff_no, before, after)
    return after


def one_time_password() -> str:
    """12 characters without look-alikes (0/O, 1/l/I): read out or handed over on paper."""
    alphabet = "abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(12))


def reset_password_op(tx: Tx, actor: str, staff_no: str, one_time_hash: str) -> JSON:
    """The staff member's password becomes a one-time password: every sign-in answers 403
    `password_change_required` until they choose their own (`change_password_op`), and their
    open sessions end now (whoever knew the old password is out)."""
    conn = tx.conn
    _staff_row(conn, staff_no)
    conn.execute(t.staff.update().where(t.staff.c.staff_no == staff_no)
                 .values(password_hash=one_time_hash, must_change_password=True))
    _close_sessions(conn, staff_no)
    audit(conn, actor, "staff.reset_password", staff_no, None, {"must_change_password": True})
    return _staff_out(_staff_row(conn, staff_no))


def change_password_op(tx: Tx, staff_no: str, old_hash: str, new_hash: str) -> None:
    """Set a password the staff member chose. `old_hash` is the hash the caller verified the
    current password against: if it changed meanwhile (a reset), nothing is written."""
    conn = tx.conn
    n = conn.execute(t.staff.update().where(t.staff.c.staff_no == staff_no, t.staff.c.password_hash == old_hash)
                     .values(password_hash=new_hash, must_change_password=False)).rowcount
    if not n:
        raise ApiError(401, "bad_credentials")
    audit(conn, staff_no, "staff.change_password", staff_no, None, {"must_change_password": False})


def process_photo(data: bytes) -> bytes:
    """A PNG or JPEG within the limits, re-encoded (nothing of the upload survives: no EXIF,
    no trailing bytes, no second image) and cropped to the standard portrait PHOTO_SIZE."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    def bad(reason: str, zh: str, en: str, **extra: Any) -> ApiError:
        return ApiError(422, "bad_photo", {"reason": reason, **extra},
                        message_zh=f"照片不符合要求：{zh}", message_en=f"The photo is not acceptable: {en}")

    if len(data) > PHOTO_MAX_BYTES:
        raise bad("too_large", "文件超过 5 MB", "larger than 5 MB", limit=PHOTO_MAX_BYTES)
    try:
        img = Image.open(io.BytesIO(data))
        fmt = img.format
        w, h = img.size  # from the header: checked before any pixel is decoded
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise bad("not_an_image", "不是 PNG 或 JPEG 图片", "not a PNG or JPEG image") from None
    if fmt not in ("PNG", "JPEG"):
        raise bad("unsupported_type", "只接受 PNG 或 JPEG", "only PNG or JPEG", format=fmt)
    if min(w, h) < PHOTO_MIN_SIDE or max(w, h) > PHOTO_MAX_SIDE:
        raise bad("bad_dimensions", f"尺寸须在 {PHOTO_MIN_SIDE}–{PHOTO_MAX_SIDE} 像素之间",
                  f"sides must be {PHOTO_MIN_SIDE}-{PHOTO_MAX_SIDE} pixels", width=w, height=h)
    if fmt == "JPEG":
        # Decode at a reduced scale (JPEG's DCT draft mode): a 6000 px photo costs a few MB of
        # memory, not a hundred, and the portrait is small anyway.
        img.draft("RGB", (PHOTO_SIZE[0] * 2, PHOTO_SIZE[1] * 2))
    try:
        img.load()
        upright = ImageOps.exif_transpose(img) or img
        # Faces sit in the upper part of a photo: crop around a point above the centre.
        portrait = ImageOps.fit(upright.convert("RGB"), PHOTO_SIZE, method=Image.Resampling.LANCZOS,
                                centering=(0.5, 0.35))
    except (OSError, ValueError, Image.DecompressionBombError):
        raise bad("corrupt", "图片已损坏", "the image is damaged") from None
    out = io.BytesIO()
    portrait.save(out, format="PNG", optimize=True)
    return out.getvalue()


def set_photo_op(tx: Tx, actor: str, staff_no: str, png: bytes) -> JSON:
    conn = tx.conn
    before = _staff_row(conn, staff_no)
    old = None if before["photo"] is None else hashlib.sha256(bytes(before["photo"])).hexdigest()
    conn.execute(t.staff.update().where(t.staff.c.staff_no == staff_no).values(photo=png))
    audit(conn, actor, "staff.photo", staff_no, {"sha256": old},
          {"sha256": hashlib.sha256(png).hexdigest(), "bytes": len(png), "size": list(PHOTO_SIZE)})
    return _staff_out(_staff_row(conn, staff_no))


def list_staff(conn: Connection) -> list[JSON]:
    return [_staff_out(r) for r in conn.execute(select(t.staff).order_by(t.staff.c.staff_no)).mappings()]


# ---- devices -------------------------------------------------------------------------------------
def list_devices(conn: Connection) -> list[JSON]:
    return [
        {"id": r["id"], "window_no": r["window_no"], "hostname": r["hostname"],
         "enrolled_at": iso_ms(r["enrolled_ms"]), "revoked": bool(r["revoked"])}
        for r in conn.execute(select(t.devices).order_by(t.devices.c.window_no, t.devices.c.enrolled_ms)).mappings()
    ]


def revoke_device_op(tx: Tx, actor: str, device_id: str) -> JSON:
    """The PC can no longer open a window (login answers 403 device_revoked), and the sessions
    it opened end now."""
    conn = tx.conn
    row = conn.execute(select(t.devices).where(t.devices.c.id == device_id)).mappings().first()
    if row is None:
        raise ApiError(404, "not_found", {"device_id": device_id})
    conn.execute(t.devices.update().where(t.devices.c.id == device_id).values(revoked=True))
    conn.execute(t.sessions.update().where(t.sessions.c.device_id == device_id, t.sessions.c.closed_ms.is_(None))
                 .values(closed_ms=now_ms()))
    audit(conn, actor, "device.revoke", device_id, {"revoked": bool(row["revoked"])},
          {"revoked": True, "window_no": row["window_no"], "hostname": row["hostname"]})
    return next(d for d in list_devices(conn) if d["id"] == device_id)


def enrollment_code_op(tx: Tx, no: int, lifetime_s: int, *, actor: str = "cli") -> JSON:
    load_window(tx.conn, no)
    code = "-".join(secrets.token_hex(3).upper() for _ in range(3))
    expires = now_ms() + lifetime_s * 1000
    tx.conn.execute(t.enrollment_codes.insert().values(code=code, window_no=no, expires_ms=expires))
    audit(tx.conn, actor, "device.enrollment_code", str(no), None, {"expires_at": iso_ms(expires)})
    return {"code": code, "window_no": no, "expires_at": iso_ms(expires)}


# ---- windows and categories ----------------------------------------------------------------------
def _known_categories(conn: Connection, cats: list[str]) -> None:
    known = set(conn.execute(select(t.categories.c.code)).scalars())
    unknown = [c for c in cats if c not in known]
    if unknown:
        raise ApiError(422, "unknown_category", {"unknown": unknown})


def set_window_categories_op(tx: Tx, no: int, cats: list[str], *, actor: str = "cli") -> JSON:
    conn = tx.conn
    before = window_out(conn, load_window(conn, no, for_update=True))
    _known_categories(conn, cats)
    conn.execute(t.windows.update().where(t.windows.c.no == no).values(categories=",".join(dict.fromkeys(cats))))
    out = window_out(conn, load_window(conn, no))
    queue._emit_window(tx, "window.updated", out)
    audit(conn, actor, "window.categories", str(no), before["categories"], out["categories"])
    return out


def add_window_op(tx: Tx, actor: str, no: int, name_zh: str, name_en: str, cats: list[str]) -> JSON:
    conn = tx.conn
    if conn.execute(select(t.windows.c.no).where(t.windows.c.no == no)).first() is not None:
        raise ApiError(409, "window_exists", {"window_no": no})
    _known_categories(conn, cats)
    conn.execute(t.windows.insert().values(no=no, name_zh=name_zh, name_en=name_en,
                                           categories=",".join(dict.fromkeys(cats)), state="closed"))
    out = window_out(conn, load_window(conn, no))
    queue._emit_window(tx, "window.updated", out)
    audit(conn, actor, "window.add", str(no), None, out)
    return out


def rename_window_op(tx: Tx, actor: str, no: int, name_zh: str, name_en: str) -> JSON:
    conn = tx.conn
    before = window_out(conn, load_window(conn, no, for_update=True))
    conn.execute(t.windows.update().where(t.windows.c.no == no).values(name_zh=name_zh, name_en=name_en))
    out = window_out(conn, load_window(conn, no))
    queue._emit_window(tx, "window.updated", out)
    audit(conn, actor, "window.rename", str(no), {"name_zh": before["name_zh"], "name_en": before["name_en"]},
          {"name_zh": name_zh, "name_en": name_en})
    return out


def retire_window_op(tx: Tx, actor: str, no: int) -> JSON:
    """The window leaves the hall: refused while someone is signed in at it; its PCs are
    revoked and its pads unpaired. Its tickets, cases and ratings keep the number (history is never rewritten);
    the audit row keeps what it was."""
    conn = tx.conn
    w = load_window(conn, no, for_update=True)
    if w["session_id"] is not None and session_alive(conn, w["session_id"]):
        raise ApiError(409, "window_in_use", {"staff_no": w["staff_no"]})
    before = window_out(conn, w)
    conn.execute(t.devices.update().where(t.devices.c.window_no == no, t.devices.c.revoked.is_(False))
                 .values(revoked=True))
    # Its pads stop counting for it (a pad's ratings name the window it is paired with).
    conn.execute(t.pads.update().where(t.pads.c.window_no == no, t.pads.c.unpaired_ms.is_(None))
                 .values(unpaired_ms=now_ms()))
    conn.execute(t.windows.delete().where(t.windows.c.no == no))
    audit(conn, actor, "window.retire", str(no), before, None)
    return {"retired": no}


def upsert_category_op(tx: Tx, actor: str, code: str, name_zh: str, name_en: str) -> JSON:
    conn = tx.conn
    row = conn.execute(select(t.categories).where(t.categories.c.code == code)).mappings().first()
    before = None if row is None else dict(row)
    if row is None:
        conn.execute(t.categories.insert().values(code=code, name_zh=name_zh, name_en=name_en))
    else:
        conn.execute(t.categories.update().where(t.categories.c.code == code).values(name_zh=name_zh, name_en=name_en))
    after = {"code": code, "name_zh": name_zh, "name_en": name_en}
    audit(conn, actor, "category.add" if row is None else "category.update", code, before, after)
    return after


def delete_category_op(tx: Tx, actor: str, code: str) -> JSON:
    conn = tx.conn
    row = conn.execute(select(t.categories).where(t.categories.c.code == code)).mappings().first()
    if row is None:
        raise ApiError(404, "not_found", {"category": code})
    windows = [w for w, cats in conn.execute(select(t.windows.c.no, t.windows.c.categories)) if code in cats.split(",")]
    matters = conn.execute(select(func.count()).select_from(t.matters)
                           .where(t.matters.c.category == code, t.matters.c.deleted.is_(False))).scalar_one()
    waiting = conn.execute(select(func.count()).select_from(t.tickets)
                           .where(t.tickets.c.category == code, t.tickets.c.state == "waiting")).scalar_one()
    if windows or matters or waiting:
        raise ApiError(409, "in_use", {"category": code, "windows": windows, "matters": int(matters),
                                        "waiting_tickets": int(waiting)})
    conn.execute(t.categories.delete().where(t.categories.c.code == code))
    audit(conn, actor, "category.remove", code, dict(row), None)
    return {"removed": code}


# ---- reasons, rules, hall, calendar --------------------------------------------------------------
def upsert_pause_reason_op(tx: Tx, actor: str, code: str, body: dict[str, str]) -> JSON:
    conn = tx.conn
    row = conn.execute(select(t.pause_reasons).where(t.pause_reasons.c.code == code)).mappings().first()
    if row is None:
        conn.execute(t.pause_reasons.insert().values(code=code, **body))
    else:
        conn.execute(t.pause_reasons.update().where(t.pause_reasons.c.code == code).values(**body))
    after = {"code": code, **body}
    audit(conn, actor, "pause_reason.add" if row is None else "pause_reason.update", code,
          None if row is None else dict(row), after)
    return after


def delete_pause_reason_op(tx: Tx, actor: str, code: str) -> JSON:
    conn = tx.conn
    row = conn.execute(select(t.pause_reasons).where(t.pause_reasons.c.code == code)).mappings().first()
    if row is None:
        raise ApiError(404, "not_found", {"pause_reason": code})
    paused = list(conn.execute(select(t.windows.c.no).where(t.windows.c.pause_reason_code == code)).scalars())
    if paused:
        raise ApiError(409, "in_use", {"pause_reason": code, "windows": paused})
    conn.execute(t.pause_reasons.delete().where(t.pause_reasons.c.code == code))
    audit(conn, actor, "pause_reason.remove", code, dict(row), None)
    return {"removed": code}


def rating_reasons_json(conn: Connection) -> JSON:
    rows = conn.execute(select(t.rating_reasons).order_by(t.rating_reasons.c.position)).mappings().all()
    return {"version": rows[0]["version"] if rows else "",
            "reasons": [{"code": r["code"], "text_zh": r["text_zh"], "text_en": r["text_en"]} for r in rows]}


def set_rating_reasons_op(tx: Tx, actor: str, rr: RatingReasons) -> JSON:
    """Replace the reason list. Past ratings keep the codes and version they were given under."""
    conn = tx.conn
    before = rating_reasons_json(conn)
    hallsetup.write_rating_reasons(conn, rr)
    after = rating_reasons_json(conn)
    audit(conn, actor, "rating_reasons.set", rr.version, before, after)
    return after


def set_rules_op(tx: Tx, actor: str, changes: dict[str, Any]) -> JSON:
    conn = tx.conn
    before = hallsetup.get_rules(conn)
    try:
        after = HallRules.model_validate({**before.model_dump(), **changes})
    except ValidationError as e:
        raise ApiError(422, "invalid_settings", {"errors": hallsetup.spec_errors(e)}) from None
    hallsetup.set_rules(conn, after)
    audit(conn, actor, "rules.set", "rules", before.model_dump(), after.model_dump())
    return after.model_dump()


def set_hall_names_op(tx: Tx, actor: str, name_zh: str, name_en: str) -> JSON:
    conn = tx.conn
    before = {"name_zh": get_meta(conn, "hall_name_zh"), "name_en": get_meta(conn, "hall_name_en")}
    set_meta(conn, "hall_name_zh", name_zh)
    set_meta(conn, "hall_name_en", name_en)
    after = {"name_zh": name_zh, "name_en": name_en}
    audit(conn, actor, "hall.names", get_meta(conn, "hall_code") or "", before, after)
    return after


def import_calendar_op(tx: Tx, actor: str, year: int, entries: list[workdays.DayEntry]) -> JSON:
    conn = tx.conn
    before = workdays.year_rows(conn, year)
    workdays.replace_year(conn, year, entries)
    after = workdays.year_rows(conn, year)
    audit(conn, actor, "calendar.import", str(year), before, after)
    return {"year": year, "holidays": sum(e.kind == "holiday" for e in entries),
            "workdays": sum(e.kind == "workday" for e in entries)}


def import_matters_op(tx: Tx, actor: str, items: Any, *, dry_run: bool = False) -> JSON:
    """The catalog import with its audit row; `dry_run` checks everything and writes nothing."""
    if dry_run:
        cats = set(tx.conn.execute(select(t.categories.c.code)).scalars())
        errors = catalog.with_lines(catalog.validate(items, cats), items)
        if errors:
            raise ApiError(422, "import_invalid", {"errors": errors[:200], "count": len(errors)})
        return {"dry_run": True, "would_import": len(items)}
    out = catalog.import_matters(tx, items)
    audit(tx.conn, actor, "catalog.import", f"version {out['catalog_version']}", None, out)
    return out


def audit_rows(conn: Connection, limit: int = 100, before_id: int | None = None,
               action: str | None = None) -> list[JSON]:
    q = select(t.audit_log).order_by(t.audit_log.c.id.desc()).limit(limit)
    if before_id is not None:
        q = q.where(t.audit_log.c.id < before_id)
    if action:
        q = q.where(t.audit_log.c.action == action)
    return [
        {"id": int(r["id"]), "at": iso_ms(r["at_ms"]), "actor": r["actor"], "action": r["action"],
         "target": r["target"], "before": None if r["before"] is None else json.loads(r["before"]),
         "after": None if r["after"] is None else json.loads(r["after"])}
        for r in conn.execute(q).mappings()
    ]


# ---- the admin API (role it_admin) ---------------------------------------------------------------
def _reload_rules(request: Request, rules: JSON) -> None:
    """This process uses the new rules at once (other worker processes: on their next start;
    see docs/hall-setup.md)."""
    hall = hall_of(request)
    hall.rules = HallRules.model_validate(rules).desk_rules()


async def _read(request: Request, fn: Any) -> Response:
    return json_response(await hall_of(request).store.read(fn))


@router.get("/staff")
async def get_staff(request: Request, p: Auth) -> Response:
    require_role(p, "it_admin")
    return await _read(request, list_staff)


@router.post("/staff", status_code=201)
async def create_staff(request: Request, body: StaffIn, p: Auth) -> Response:
    require_role(p, "it_admin")
    pw = await anyio.to_thread.run_sync(hash_password, body.password)
    return await mutate(
        request, lambda tx: create_staff_op(tx, body.staff_no, body.name_zh, body.name_en, body.role, pw,
                                            actor=p.staff_no), status=201
    )


@router.patch("/staff/{staff_no}")
async def patch_staff(request: Request, staff_no: str, body: StaffPatch, p: Auth) -> Response:
    require_role(p, "it_admin")
    # No cache to clear: every request checks its session in the database (deps.principal).
    return await mutate(request, lambda tx: update_staff_op(tx, p.staff_no, staff_no, body.model_dump()))


@router.post("/staff/{staff_no}/reset-password")
async def reset_password(request: Request, staff_no: str, p: Auth) -> Response:
    """Answers the one-time password ONCE (its stored replay is sealed like a token)."""
    require_role(p, "it_admin")
    otp = one_time_password()
    h = await anyio.to_thread.run_sync(hash_password, otp)

    def fn(tx: Tx) -> JSON:
        return {**reset_password_op(tx, p.staff_no, staff_no, h), "one_time_password": otp}

    resp = await mutate(request, fn, secret=True)
    return resp


@router.put("/staff/{staff_no}/photo", openapi_extra={"requestBody": {"required": True, "content": {
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}})
async def put_photo(request: Request, staff_no: str, p: Auth) -> Response:
    """The raw PNG/JPEG as the body; stored re-encoded and cropped (see process_photo)."""
    require_role(p, "it_admin")
    png = await anyio.to_thread.run_sync(process_photo, await request.body())
    hall = hall_of(request)
    resp = await mutate(request, lambda tx: set_photo_op(tx, p.staff_no, staff_no, png))
    hall.avatars.pop(staff_no, None)
    return resp


@router.get("/devices")
async def get_devices(request: Request, p: Auth) -> Response:
    require_role(p, "it_admin")
    return await _read(request, list_devices)


@router.post("/devices/{device_id}/revoke")
async def revoke_device(request: Request, device_id: Annotated[str, PathParam(max_length=40)], p: Auth) -> Response:
    require_role(p, "it_admin")
    return await mutate(request, lambda tx: revoke_device_op(tx, p.staff_no, device_id))


@router.post("/enrollment-codes")
async def enrollment_code(request: Request, body: EnrollmentIn, p: Auth) -> Response:
    require_role(p, "it_admin")
    life = hall_of(request).settings.enrollment_code_seconds
    return await mutate(request, lambda tx: enrollment_code_op(tx, body.window_no, life, actor=p.staff_no))


@router.post("/windows", status_code=201)
async def add_window(request: Request, body: WindowIn, p: Auth) -> Response:
    require_role(p, "it_admin")
    return await mutate(request, lambda tx: add_window_op(tx, p.staff_no, body.no, body.name_zh, body.name_en,
                                                          body.categories), status=201)


@router.patch("/windows/{no}")
async def rename_window(request: Request, no: IdPath, body: WindowPatch, p: Auth) -> Response:
    require_role(p, "it_admin")
    return await mutate(request, lambda tx: rename_window_op(tx, p.staff_no, no, body.name_zh, body.name_en))


@router.delete("/windows/{no}")
async def retire_window(request: Request, no: IdPath, p: Auth) -> Response:
    require_role(p, "it_admin")
    return await mutate(request, lambda tx: retire_window_op(tx, p.staff_no, no))


@router.put("/windows/{no}/categories")
async def window_categories(request: Request, no: IdPath, body: CategoriesIn, p: Auth) -> Response:
    require_role(p, "it_admin")
    return await mutate(request, lambda tx: set_window_categories_op(tx, no, body.categories, actor=p.staff_no))


@router.put("/categories/{code}")
async def put_category(request: Request, code: Annotated[str, PathParam(pattern=r"^[A-Z][A-Z0-9]{0,7}$")], body: CategoryIn, p: Auth) -> Response:
    require_role(p, "it_admin")
    return await mutate(request, lambda tx: upsert_category_op(tx, p.staff_no, code, body.name_zh, body.name_en))


@router.delete("/categories/{code}")
async def delete_category(request: Request, code: Annotated[str, PathParam(max_length=8)], p: Auth) -> Response:
    require_role(p, "it_admin")
    return await mutate(request, lambda tx: delete_category_op(tx, p.staff_no, code))


@router.put("/pause-reasons/{code}")
async def put_pause_reason(request: Request, code: Annotated[str, PathParam(pattern=r"^[a-z0-9_]{1,32}$")],
                           body: PauseReasonIn, p: Auth) -> Response:
    require_role(p, "it_admin")
    return await mutate(request, lambda tx: upsert_pause_reason_op(tx, p.staff_no, code, body.model_dump()))


@router.delete("/pause-reasons/{code}")
async def delete_pause_reason(request: Request, code: Annotated[str, PathParam(max_length=32)], p: Auth) -> Response:
    require_role(p, "it_admin")
    return await mutate(request, lambda tx: delete_pause_reason_op(tx, p.staff_no, code))


@router.get("/rating-reasons")
async def get_rating_reasons(request: Request, p: Auth) -> Response:
    require_role(p, "it_admin", "supervisor")
    return await _read(request, rating_reasons_json)


@router.put("/rating-reasons")
async def put_rating_reasons(request: Request, body: RatingReasons, p: Auth) -> Response:
    require_role(p, "it_admin")
    return await mutate(request, lambda tx: set_rating_reasons_op(tx, p.staff_no, body))


@router.get("/rules")
async def get_rules(request: Request, p: Auth) -> Response:
    require_role(p, "it_admin", "supervisor")
    return await _read(request, lambda c: hallsetup.get_rules(c).model_dump())


@router.patch("/rules")
async def patch_rules(request: Request, body: dict[str, int], p: Auth) -> Response:
    require_role(p, "it_admin")
    unknown = sorted(set(body) - set(HallRules.model_fields))
    if unknown:
        raise ApiError(422, "invalid_settings", {"errors": [f"{k}: unknown rule" for k in unknown]})
    resp = await mutate(request, lambda tx: set_rules_op(tx, p.staff_no, body))
    _reload_rules(request, json.loads(bytes(resp.body)))
    return resp


@router.get("/calendar")
async def get_calendar(request: Request, p: Auth,
                       year: Annotated[int | None, Query(ge=1900, le=2200)] = None) -> Response:
    require_role(p, "it_admin", "supervisor")
    return await _read(request, lambda c: workdays.year_rows(c, year))


@router.put("/calendar/{year}", openapi_extra={"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object"}}, "text/csv": {"schema": {"type": "string"}}}}})
async def put_calendar(request: Request, year: Annotated[int, PathParam(ge=1900, le=2200)], p: Auth) -> Response:
    """The year's exceptions from a JSON or CSV year file (as `hall-server calendar import`)."""
    require_role(p, "it_admin")
    ctype = request.headers.get("content-type", "")
    name = "upload.csv" if "csv" in ctype else "upload.json"
    try:
        got, entries = workdays.parse_year_file(await request.body(), name)
    except ValueError as e:
        raise ApiError(422, "invalid_calendar", {"errors": str(e).split("; ")}) from None
    if got != year:
        raise ApiError(422, "invalid_calendar", {"errors": [f"the file is for {got}, not {year}"]})
    hall = hall_of(request)
    resp = await mutate(request, lambda tx: import_calendar_op(tx, p.staff_no, year, entries))
    workdays.set_current(await hall.store.read(workdays.load))
    return resp


@router.get("/audit")
async def get_audit(request: Request, p: Auth,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    before_id: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
                    action: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    require_role(p, "it_admin", "supervisor")
    return await _read(request, lambda c: audit_rows(c, limit, before_id, action))


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.post(
    "/matters/import",
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
        "text/csv": {"schema": {"type": "string"}},
        XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}}}}},
)
async def import_matters(request: Request, p: Auth, dry_run: bool = False) -> Response:
    """A JSON array of Matter, or the same file formats as `hall-server import-matters`
    (text/csv in UTF-8 or GBK, XLSX) by Content-Type; `?dry_run=true` checks and writes nothing."""
    require_role(p, "it_admin")
    raw = await request.body()
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype in ("text/csv", XLSX_TYPE):
        try:
            items: Any = await anyio.to_thread.run_sync(
                catalog.read_matters_bytes, raw, ".csv" if ctype == "text/csv" else ".xlsx")
        except ValueError as e:  # not a table at all (empty, not UTF-8/GBK, not a workbook)
            raise ApiError(422, "import_invalid", {"errors": [{"row": 0, "field": "file", "message": str(e)}],
                                                   "count": 1}) from None
    else:
        try:
            items = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ApiError(400, "malformed_json", {"message": str(e)}) from None
    return await mutate(request, lambda tx: import_matters_op(tx, p.staff_no, items, dry_run=dry_run))


# ---- the staff member's own password (no token: a one-time password cannot sign in) ------------
@auth_router.post("/password", status_code=204)
async def change_password(request: Request, body: PasswordChangeIn) -> Response:
    """Replace the current (or one-time) password. Proves the current password like a login,
    under the same failure limit, so it is no side door for guessing."""
    row = await check_password(request, body.staff_no, body.password)
    if row is None:
        raise ApiError(401, "bad_credentials")
    if row["disabled"]:
        raise ApiError(403, "staff_disabled")
    if body.new_password == body.password:
        raise ApiError(422, "weak_password")
    new_hash = await anyio.to_thread.run_sync(hash_password, body.new_password)
    return await mutate(request, lambda tx: change_password_op(tx, body.staff_no, row["password_hash"], new_hash), status=204)
