"""The `/api/v1` routes of docs/hall-api.md. Handlers are thin: they check input, then run
the effect through `core.mutate` (writes, idempotent) or `Store.read` (reads)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import Connection, func, select

from hall_server import __version__, followups, queue, stats
from hall_server import schema as t
from hall_server.core import (
    JSON,
    all_windows,
    case_json,
    device_still_valid,
    get_meta,
    hall_of,
    json_response,
    load_window,
    ms_from_iso,
    mutate,
    refresh_still_valid,
    staff_json,
    ticket_json,
    window_out,
)
from hall_server.db import Tx, iso_ms, now_ms
from hall_server.deps import (
    MAX_INT,
    Auth,
    IdPath,
    Priority,
    QInt,
    WinNo,
    check_password,
    session_alive,
)
from hall_server.errors import ApiError
from hall_server.events import stream
from hall_server.rating_channels import check_reasons_version
from hall_server.rating_check import check_rating, open_challenge
from hall_server.security import (
    Principal,
    new_secret,
    session_key,
    sha256_hex,
)
from hall_server.seed import demo_avatar

router = APIRouter(prefix="/api/v1")
log = logging.getLogger("hall_server.api")



# ---- health -------------------------------------------------------------------------------
@router.get("/health", tags=["health"])
async def health(request: Request) -> Response:
    hall = hall_of(request)
    return json_response(
        {"status": "ok", "version": __version__, "time": iso_ms(now_ms()), "database": hall.store.kind}
    )


@router.get("/health/db", tags=["health"])
async def health_db(request: Request) -> Response:
    """For the load balancer's and monitoring's health checks: 200 only when this process can
    reach its database (a process whose PostgreSQL is gone answers 503 and is taken out).
    Unauthenticated, so bounded: one database probe a second per process (identity.DbHealth)."""
    hall = hall_of(request)
    # Store.read answers 503 database_unavailable (after its connect retries) when it cannot.
    return json_response(await hall.db_health.check(hall))


# ---- auth ---------------------------------------------------------------------------------
class LoginIn(BaseModel):
    staff_no: Annotated[str, Field(min_length=1, max_length=32)]
    password: Annotated[str, Field(max_length=200)]
    window_no: WinNo | None = None


class RefreshIn(BaseModel):
    refresh_token: Annotated[str, Field(max_length=200)]


def _login_result(conn: Connection, hall: Any, p: Principal, refresh: str) -> JSON:
    staff = conn.execute(select(t.staff).where(t.staff.c.staff_no == p.staff_no)).mappings().one()
    window = window_out(conn, load_window(conn, p.window_no)) if p.window_no is not None else None
    return {
        "access_token": hall.signer.issue(p),
        "refresh_token": refresh,
        "token_type": "bearer",
        "expires_in": hall.signer.lifetime_s,
        "staff": staff_json(staff),
        "window": window,
    }


def _device_ok(conn: Connection, device_id: str | None, secret: str | None, window_no: int) -> bool:
    if not device_id or not secret:
        return False
    row = conn.execute(select(t.devices).where(t.devices.c.id == device_id)).mappings().first()
    return (
        row is not None
        and not row["revoked"]
        and row["window_no"] == window_no
        and row["secret_hash"] == sha256_hex(secret)
    )


@router.post("/auth/login", tags=["auth"])
async def login(
    request: Request,
    body: LoginIn,
    x_device_id: Annotated[str | None, Header(max_length=100)] = None,
    x_device_secret: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    hall = hall_of(request)
    address = request.client.host if request.client else "?"
    # The one password check every door uses (deps.check_password): counted in the shared
    # sign-in limits BEFORE the slow argon2 check, so parallel guesses cannot all get through.
    staff = await check_password(request, body.staff_no, body.password)
    if staff is None:
        log.info("sign-in failed for staff %s from %s", body.staff_no[:32], address)
        raise ApiError(401, "bad_credentials")
    if staff["disabled"]:
        raise ApiError(403, "staff_disabled")
    # After a reset the password is one-time: it proves who this is, but opens nothing until
    # the staff member chose their own at POST /api/v1/auth/password (hall_server/admin.py).
    if staff["must_change_password"]:
        raise ApiError(403, "password_change_required")
    if body.window_no is None and staff["role"] == "staff" and staff["window_no"] is None:
        pass  # staff may sign in without a window (e.g. to look things up)

    def fn(tx: Tx) -> JSON:
        conn = tx.conn
        now = now_ms()
        if body.window_no is not None:
            w = conn.execute(select(t.windows).where(t.windows.c.no == body.window_no)).mappings().first()
            if w is None:
                raise ApiError(422, "unknown_window", {"window_no": body.window_no})
            # A revoked PC opens no window, even where enrolment is optional (admin device revoke).
            if x_device_id and conn.execute(select(t.devices.c.revoked).where(t.devices.c.id == x_device_id)).scalar():
                raise ApiError(403, "device_revoked")
            if hall.settings.require_device and not _device_ok(conn, x_device_id, x_device_secret, body.window_no):
                raise ApiError(403, "device_required")
            if w["staff_no"] is not None and w["staff_no"] != body.staff_no and w["session_id"]:
                if session_alive(conn, w["session_id"]):
                    raise ApiError(409, "window_in_use", {"staff_no": w["staff_no"]})
        sid = new_secret(15)
        sid_key = session_key(sid)  # the database keeps only the hash of the id in the token
        refresh = new_secret(32)
        conn.execute(
            t.sessions.insert().values(
                id=sid_key,
                sid_sealed=hall.signer.seal_sid(sid),
                staff_no=body.staff_no,
                window_no=body.window_no,
                refresh_hash=sha256_hex(refresh),
                created_ms=now,
                refresh_expires_ms=now + hall.settings.refresh_token_seconds * 1000,
                device_id=x_device_id,
            )
        )
        if body.window_no is not None:
            # The same staff signed in at another window: that window closes.
            for other in conn.execute(
                select(t.windows.c.no).where(t.windows.c.staff_no == body.staff_no, t.windows.c.no != body.window_no)
            ).scalars().all():
                conn.execute(
                    t.windows.update().where(t.windows.c.no == other)
                    .values(state="closed", staff_no=None, session_id=None, pause_reason_code=None)
                )
                queue._emit_window(tx, "window.closed", window_out(conn, load_window(conn, other)))
            conn.execute(
                t.windows.update()
                .where(t.windows.c.no == body.window_no)
                .values(state="open", staff_no=body.staff_no, session_id=sid_key, pause_reason_code=None)
            )
            queue._emit_window(tx, "window.opened", window_out(conn, load_window(conn, body.window_no)))
        p = Principal(body.staff_no, staff["role"], body.window_no, sid)
        return _login_result(conn, hall, p, refresh)

    return await mutate(request, fn, secret=True, still_valid=refresh_still_valid)


@router.post("/auth/refresh", tags=["auth"])
async def refresh(request: Request, body: RefreshIn) -> Response:
    hall = hall_of(request)

    def fn(tx: Tx) -> JSON:
        conn = tx.conn
        s = conn.execute(
            select(t.sessions).where(t.sessions.c.refresh_hash == sha256_hex(body.refresh_token))
        ).mappings().first()
        if s is None or s["closed_ms"] is not None or s["refresh_expires_ms"] < now_ms():
            raise ApiError(401, "unauthorized")
        role = conn.execute(select(t.staff.c.role, t.staff.c.disabled).where(t.staff.c.staff_no == s["staff_no"])).one()
        if role[1]:
            raise ApiError(401, "unauthorized")
        new_refresh = new_secret(32)
        conn.execute(
            t.sessions.update().where(t.sessions.c.id == s["id"]).values(refresh_hash=sha256_hex(new_refresh))
        )
        # The database keeps the session id only hashed and sealed under the server secret:
        # the new token carries the same id (tokens already out keep working until they expire).
        sid = hall.signer.unseal_sid(s["sid_sealed"]) if s["sid_sealed"] else None
        if sid is None or session_key(sid) != s["id"]:
            raise ApiError(401, "unauthorized")
        return _login_result(conn, hall, Principal(s["staff_no"], role[0], s["window_no"], sid), new_refresh)

    return await mutate(request, fn, secret=True, still_valid=refresh_still_valid)


@router.post("/auth/logout", tags=["auth"], status_code=204)
async def logout(request: Request, p: Auth) -> Response:
    sid_key = session_key(p.session_id)

    def fn(tx: Tx) -> None:
        conn = tx.conn
        conn.execute(t.sessions.update().where(t.sessions.c.id == sid_key).values(closed_ms=now_ms()))
        for no in conn.execute(select(t.windows.c.no).where(t.windows.c.session_id == sid_key)).scalars().all():
            conn.execute(
                t.windows.update().where(t.windows.c.no == no)
                .values(state="closed", staff_no=None, session_id=None, pause_reason_code=None)
            )
            queue._emit_window(tx, "window.closed", window_out(conn, load_window(conn, no)))

    return await mutate(request, fn, status=204)


@router.get("/me", tags=["auth"])
async def me(request: Request, p: Auth) -> Response:
    def fn(conn: Connection) -> JSON:
        staff = conn.execute(select(t.staff).where(t.staff.c.staff_no == p.staff_no)).mappings().one()
        w = window_out(conn, load_window(conn, p.window_no)) if p.window_no is not None else None
        return {"staff": staff_json(staff), "window": w}

    return json_response(await hall_of(request).store.read(fn))


@router.get("/staff/{staff_no}/photo", tags=["auth"], response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
async def staff_photo(request: Request, staff_no: str, p: Auth) -> Response:
    hall = hall_of(request)
    row = await hall.store.read(
        lambda c: c.execute(
            select(t.staff.c.photo, t.staff.c.name_zh).where(t.staff.c.staff_no == staff_no)
        ).first()
    )
    if row is None:
        raise ApiError(404, "not_found", {"staff_no": staff_no})
    photo = row[0]
    if not photo and hall.settings.demo:
        photo = hall.avatars.get(staff_no)
        if photo is None:
            photo = await anyio.to_thread.run_sync(demo_avatar, staff_no, row[1])
            if photo:
                hall.avatars[staff_no] = photo
    if not photo:
        raise ApiError(404, "not_found", {"staff_no": staff_no})
    return Response(bytes(photo), media_type="image/png", headers={"Cache-Control": "max-age=3600"})


# ---- devices ------------------------------------------------------------------------------
class EnrollIn(BaseModel):
    enrollment_code: Annotated[str, Field(min_length=1, max_length=40)]
    window_no: WinNo
    hostname: Annotated[str, Field(max_length=200)]
    replace: bool = False


@router.post("/devices/enroll", tags=["devices"])
async def enroll(request: Request, body: EnrollIn) -> Response:
    def fn(tx: Tx) -> JSON:
        conn = tx.conn
        now = now_ms()
        code = conn.execute(
            select(t.enrollment_codes).where(t.enrollment_codes.c.code == body.enrollment_code)
        ).mappings().first()
        if code is None or code["used_ms"] is not None or code["expires_ms"] < now or code["window_no"] != body.window_no:
            raise ApiError(403, "bad_enrollment_code")
        existing = conn.execute(
            select(t.devices.c.id).where(t.devices.c.window_no == body.window_no, t.devices.c.revoked.is_(False))
        ).scalars().all()
        if existing and not body.replace:
            raise ApiError(409, "window_has_device", {"device_ids": list(existing)})
        conn.execute(t.devices.update().where(t.devices.c.id.in_(existing)).values(revoked=True))
        conn.execute(t.enrollment_codes.update().where(t.enrollment_codes.c.code == body.enrollment_code).values(used_ms=now))
        device_id = "dev_" + new_secret(12)
        secret = new_secret(32)
        conn.execute(t.devices.insert().values(
            id=device_id, secret_hash=sha256_hex(secret), window_no=body.window_no,
            hostname=body.hostname, enrolled_ms=now, revoked=False))
        return {"device_id": device_id, "device_secret": secret, "window_no": body.window_no}

    return await mutate(request, fn, secret=True, still_valid=device_still_valid)


# ---- hall structure -----------------------------------------------------------------------
def _categories(conn: Connection) -> list[JSON]:
    return [dict(r) for r in conn.execute(select(t.categories).order_by(t.categories.c.code)).mappings()]


@router.get("/hall", tags=["hall"])
async def hall_info(request: Request, p: Auth) -> Response:
    hall = hall_of(request)

    def fn(conn: Connection) -> JSON:
        return {
            "code": get_meta(conn, "hall_code") or hall.code,
            "name_zh": get_meta(conn, "hall_name_zh") or "",
            "name_en": get_meta(conn, "hall_name_en") or "",
            "timezone": hall.settings.timezone,
            "rules": hall.rules.to_json(),
            "categories": _categories(conn),
            "windows": all_windows(conn),
            "pause_reasons": [
                dict(r) for r in conn.execute(select(t.pause_reasons).order_by(t.pause_reasons.c.code)).mappings()
            ],
        }

    return json_response(await hall.store.read(fn))


@router.get("/windows", tags=["hall"])
async def windows(request: Request, p: Auth) -> Response:
    return json_response(await hall_of(request).store.read(all_windows))


@router.get("/windows/{no}", tags=["hall"])
async def window(request: Request, no: IdPath, p: Auth) -> Response:
    return json_response(await hall_of(request).store.read(lambda c: window_out(c, load_window(c, no))))


class PauseIn(BaseModel):
    reason_code: Annotated[str, Field(max_length=32)]


def _window_change(p: Principal, no: IdPath, change: str, reason: str | None = None) -> Any:
    def fn(tx: Tx) -> JSON:
        queue.acting_window(p, no)
        conn = tx.conn
        w = load_window(conn, no, for_update=True)
        if change == "pause":
            if conn.execute(select(t.pause_reasons.c.code).where(t.pause_reasons.c.code == reason)).first() is None:
                raise ApiError(422, "unknown_reason", {"reason_code": reason})
            if w["state"] == "closed":
                raise ApiError(409, "window_closed")
            values: dict[str, Any] = {"state": "paused", "pause_reason_code": reason}
            ev = "window.paused"
        elif change == "resume":
            if w["state"] == "closed":
                raise ApiError(409, "window_closed")
            values = {"state": "open", "pause_reason_code": None}
            ev = "window.resumed"
        else:
            values = {"state": "closed", "pause_reason_code": None}
            ev = "window.closed"
        conn.execute(t.windows.update().where(t.windows.c.no == no).values(**values))
        out = window_out(conn, load_window(conn, no))
        queue._emit_window(tx, ev, out)
        return out

    return fn


@router.post("/windows/{no}/pause", tags=["hall"])
async def pause_window(request: Request, no: IdPath, body: PauseIn, p: Auth) -> Response:
    return await mutate(request, _window_change(p, no, "pause", body.reason_code))


@router.post("/windows/{no}/resume", tags=["hall"])
async def resume_window(request: Request, no: IdPath, p: Auth) -> Response:
    return await mutate(request, _window_change(p, no, "resume"))


@router.post("/windows/{no}/close", tags=["hall"])
async def close_window(request: Request, no: IdPath, p: Auth) -> Response:
    return await mutate(request, _window_change(p, no, "close"))


# ---- catalog ------------------------------------------------------------------------------
@router.get("/categories", tags=["catalog"])
async def categories(request: Request, p: Auth) -> Response:
    return json_response(await hall_of(request).store.read(_categories))


def matters_with_checklists(conn: Connection, rows: list[Any]) -> list[JSON]:
    codes = [r["code"] for r in rows]
    items: dict[str, list[JSON]] = {c: [] for c in codes}
    if codes:
        for it in conn.execute(
            select(t.checklist_items)
            .where(t.checklist_items.c.matter_code.in_(codes))
            .order_by(t.checklist_items.c.matter_code, t.checklist_items.c.position)
        ).mappings():
            items[it["matter_code"]].append({
                "id": it["id"], "name_zh": it["name_zh"], "name_en": it["name_en"],
                "requirement": it["requirement"], "copies": it["copies"],
                "original_required": bool(it["original_required"]), "e_licence": bool(it["e_licence"]),
                "notes_zh": it["notes_zh"], "notes_en": it["notes_en"],
            })
    return [
        {
            "code": r["code"], "name_zh": r["name_zh"], "name_en": r["name_en"],
            "department_zh": r["department_zh"], "department_en": r["department_en"],
            "category": r["category"], "time_limit_days": r["time_limit_days"],
            "instant": bool(r["instant"]), "cross_region": bool(r["cross_region"]),
            "version": int(r["version"]), "deleted": bool(r["deleted"]),
            "checklist": items[r["code"]],
        }
        for r in rows
    ]


@router.get("/matters", tags=["catalog"])
async def matters(
    request: Request,
    p: Auth,
    updated_since: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    def fn(conn: Connection) -> JSON:
        version = int(get_meta(conn, "catalog_version") or 0)
        q = select(t.matters).where(t.matters.c.version > updated_since)
        if after is not None:
            q = q.where(t.matters.c.code > after)
        rows = conn.execute(q.order_by(t.matters.c.code).limit(limit + 1)).mappings().all()
        more = len(rows) > limit
        rows = rows[:limit]
        return {
            "catalog_version": version,
            "items": matters_with_checklists(conn, list(rows)),
            "next_after": rows[-1]["code"] if more and rows else None,
        }

    return json_response(await hall_of(request).store.read(fn))


@router.get("/matters/{code}", tags=["catalog"])
async def matter(request: Request, code: str, p: Auth) -> Response:
    def fn(conn: Connection) -> JSON:
        row = conn.execute(select(t.matters).where(t.matters.c.code == code)).mappings().first()
        if row is None:
            raise ApiError(404, "not_found", {"matter_code": code})
        return matters_with_checklists(conn, [row])[0]

    return json_response(await hall_of(request).store.read(fn))


# ---- tickets and the queue -----------------------------------------------------------------
class TicketIn(BaseModel):
    category: Annotated[str, Field(min_length=1, max_length=8)]
    priority: Priority = "normal"
    matter_code: Annotated[str, Field(max_length=64)] | None = None
    appointment_at: datetime | None = None


@router.post("/tickets", tags=["queue"], status_code=201)
async def issue_ticket(request: Request, body: TicketIn) -> Response:
    hall = hall_of(request)
    appt = ms_from_iso(body.appointment_at)
    return await mutate(
        request,
        lambda tx: queue.issue_ticket(tx, hall, body.category, body.priority, body.matter_code, appt),
        status=201,
    )


@router.get("/windows/{no}/queue", tags=["queue"])
async def window_queue(request: Request, no: IdPath, p: Auth) -> Response:
    return json_response(await hall_of(request).store.read(lambda c: queue.queue_snapshot(c, no)))


@router.get("/tickets/{ticket_id}", tags=["queue"])
async def get_ticket(request: Request, ticket_id: IdPath, p: Auth) -> Response:
    return json_response(
        await hall_of(request).store.read(lambda c: ticket_json(queue.load_ticket(c, ticket_id)))
    )


@router.post("/windows/{no}/call-next", tags=["queue"])
async def call_next(request: Request, no: IdPath, p: Auth) -> Response:
    hall = hall_of(request)
    return await mutate(request, lambda tx: queue.call_next(tx, hall, p, no))


class WindowNoIn(BaseModel):
    window_no: WinNo


@router.post("/tickets/{ticket_id}/call", tags=["queue"])
async def call_ticket(request: Request, ticket_id: IdPath, body: WindowNoIn, p: Auth) -> Response:
    hall = hall_of(request)
    return await mutate(request, lambda tx: queue.call_ticket(tx, hall, p, ticket_id, body.window_no))


@router.post("/tickets/{ticket_id}/recall", tags=["queue"])
async def recall(request: Request, ticket_id: IdPath, p: Auth) -> Response:
    hall = hall_of(request)
    return await mutate(request, lambda tx: queue.recall(tx, hall, p, ticket_id))


@router.post("/tickets/{ticket_id}/no-show", tags=["queue"])
async def no_show(request: Request, ticket_id: IdPath, p: Auth) -> Response:
    hall = hall_of(request)
    return await mutate(request, lambda tx: queue.no_show(tx, hall, p, ticket_id))


@router.post("/tickets/{ticket_id}/start", tags=["queue"])
async def start(request: Request, ticket_id: IdPath, p: Auth) -> Response:
    hall = hall_of(request)
    return await mutate(request, lambda tx: queue.start(tx, hall, p, ticket_id))


class TransferIn(BaseModel):
    to_window_no: WinNo | None = None
    to_category: Annotated[str, Field(max_length=8)] | None = None
    matter_code: Annotated[str, Field(max_length=64)] | None = None
    priority: Priority | None = None
    # Why (said by the clerk): kept in the case's notes, so the next window knows.
    reason: Annotated[str, Field(max_length=500)] = ""


@router.post("/tickets/{ticket_id}/transfer", tags=["queue"])
async def transfer(request: Request, ticket_id: IdPath, body: TransferIn, p: Auth) -> Response:
    hall = hall_of(request)
    return await mutate(
        request,
        lambda tx: queue.transfer(
            tx, hall, p, ticket_id, body.to_window_no, body.to_category, body.matter_code, body.priority,
            body.reason.strip(),
        ),
    )


class SuspendIn(BaseModel):
    note: Annotated[str, Field(max_length=2000)] = ""


@router.post("/tickets/{ticket_id}/suspend", tags=["queue"])
async def suspend(request: Request, ticket_id: IdPath, p: Auth, body: SuspendIn | None = None) -> Response:
    hall = hall_of(request)
    note = body.note if body else ""
    return await mutate(request, lambda tx: queue.suspend(tx, hall, p, ticket_id, note))


@router.post("/tickets/{ticket_id}/resume", tags=["queue"])
async def resume(request: Request, ticket_id: IdPath, body: WindowNoIn, p: Auth) -> Response:
    hall = hall_of(request)
    return await mutate(request, lambda tx: queue.resume(tx, hall, p, ticket_id, body.window_no))


@router.post("/tickets/{ticket_id}/return", tags=["queue"])
async def return_to_queue(request: Request, ticket_id: IdPath, p: Auth) -> Response:
    hall = hall_of(request)
    return await mutate(request, lambda tx: queue.return_to_queue(tx, hall, p, ticket_id))


class CompleteIn(BaseModel):
    outcome: Literal["completed", "accepted", "correction", "rejected", "forwarded"]
    note: Annotated[str, Field(max_length=4000)] = ""
    reason: Annotated[str, Field(max_length=4000)] = ""


@router.post("/tickets/{ticket_id}/complete", tags=["queue"])
async def complete(request: Request, ticket_id: IdPath, body: CompleteIn, p: Auth) -> Response:
    hall = hall_of(request)
    return await mutate(
        request, lambda tx: queue.complete(tx, hall, p, ticket_id, body.outcome, body.note, body.reason)
    )


# ---- cases --------------------------------------------------------------------------------
@router.get("/cases/{case_id}", tags=["cases"])
async def get_case(request: Request, case_id: IdPath, p: Auth) -> Response:
    # A case (its notes hold citizens' details) is read by its window's current session, a
    # supervisor or IT only: not by every signed-in staff of the hall.
    def fn(c: Connection) -> JSON:
        _load_case(c, case_id, p)
        return case_json(c, case_id)

    return json_response(await hall_of(request).store.read(fn))


def _load_case(conn: Connection, case_id: IdPath, acting: Principal | None = None) -> Any:
    """The case row; with `acting`, also check that the caller acts for the case's window
    (staff at window 1 never change window 2's case; supervisors and IT may)."""
    c = conn.execute(select(t.cases).where(t.cases.c.id == case_id)).mappings().first()
    if c is None:
        raise ApiError(404, "not_found", {"case_id": case_id})
    if acting is not None:
        queue.acting_window(acting, int(c["window_no"]))
    return c


class CaseMatterIn(BaseModel):
    matter_code: Annotated[str, Field(max_length=64)]


@router.put("/cases/{case_id}/matter", tags=["cases"])
async def set_case_matter(request: Request, case_id: IdPath, body: CaseMatterIn, p: Auth) -> Response:
    def fn(tx: Tx) -> JSON:
        conn = tx.conn
        c = _load_case(conn, case_id, p)
        if c["completed_ms"] is not None:
            raise ApiError(409, "case_closed")
        if conn.execute(select(t.matters.c.code).where(t.matters.c.code == body.matter_code, t.matters.c.deleted.is_(False))).first() is None:
            raise ApiError(422, "unknown_matter", {"matter_code": body.matter_code})
        conn.execute(t.cases.update().where(t.cases.c.id == case_id).values(matter_code=body.matter_code))
        if c["ticket_id"] is not None:
            conn.execute(t.tickets.update().where(t.tickets.c.id == c["ticket_id"]).values(matter_code=body.matter_code))
        queue.reset_materials(conn, case_id, body.matter_code)
        return case_json(conn, case_id)

    return await mutate(request, fn)


class MaterialIn(BaseModel):
    status: Literal["received", "e_licence", "accepted_pending", "missing", "not_applicable"]
    note: Annotated[str, Field(max_length=2000)] = ""


@router.put("/cases/{case_id}/materials/{item_id}", tags=["cases"])
async def set_material(request: Request, case_id: IdPath, item_id: str, body: MaterialIn, p: Auth) -> Response:
    def fn(tx: Tx) -> JSON:
        conn = tx.conn
        _load_case(conn, case_id, p)
        n = conn.execute(
            t.case_materials.update()
            .where(t.case_materials.c.case_id == case_id, t.case_materials.c.item_id == item_id)
            .values(status=body.status, note=body.note)
        ).rowcount
        if not n:
            raise ApiError(422, "unknown_item", {"item_id": item_id})
        return case_json(conn, case_id)

    return await mutate(request, fn)


class NotesIn(BaseModel):
    notes: Annotated[str, Field(max_length=20000)]


@router.put("/cases/{case_id}/notes", tags=["cases"])
async def set_notes(request: Request, case_id: IdPath, body: NotesIn, p: Auth) -> Response:
    def fn(tx: Tx) -> JSON:
        _load_case(tx.conn, case_id, p)
        tx.conn.execute(t.cases.update().where(t.cases.c.id == case_id).values(notes=body.notes))
        return case_json(tx.conn, case_id)

    return await mutate(request, fn)


# ---- ratings ------------------------------------------------------------------------------
def _reasons(conn: Connection) -> JSON:
    rows = conn.execute(select(t.rating_reasons).order_by(t.rating_reasons.c.position)).mappings().all()
    version = rows[0]["version"] if rows else ""
    return {
        "version": version,
        "reasons": [{"code": r["code"], "text_zh": r["text_zh"], "text_en": r["text_en"]} for r in rows],
    }


@router.get("/rating-reasons", tags=["ratings"])
async def rating_reasons(request: Request, p: Auth) -> Response:
    return json_response(await hall_of(request).store.read(_reasons))


@router.post("/cases/{case_id}/rating-challenge", tags=["ratings"])
async def rating_challenge(request: Request, case_id: IdPath, p: Auth) -> Response:
    """Open the on-the-spot rating of a completed case (its window only): the pad paired at
    the window shows the request (rating_check.open_challenge)."""
    def fn(tx: Tx) -> JSON:
        conn = tx.conn
        case = _load_case(conn, case_id, p)
        row = open_challenge(conn, case, now_ms())
        # Wakes the pad's long-poll (pad_site.py); carries no secret.
        tx.emit("rating.requested", {"case_id": case_id}, window_no=int(case["window_no"]))
        return {"case_id": case_id, "challenge": row["challenge"], "issued_at": iso_ms(row["issued_ms"])}

    return await mutate(request, fn)


Level = Literal["very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied"]
BAD_LEVELS = ("dissatisfied", "very_dissatisfied")


class RatingIn(BaseModel):
    id: Annotated[str, Field(min_length=1, max_length=64)]
    case_id: WinNo
    window_no: WinNo
    level: Level
    reasons: Annotated[list[Annotated[str, Field(max_length=32)]], Field(max_length=50)] = []
    reasons_version: Annotated[str, Field(max_length=64)] = ""
    comment: Annotated[str, Field(max_length=2000)] = ""
    source: Literal["pad", "second_screen", "serial", "desk", "later"] = "desk"
    rated_at: datetime
    pad_id: Annotated[str, Field(max_length=64)] | None = None
    pad_counter: WinNo | None = None
    challenge: Annotated[str, Field(max_length=64)] | None = None
    signature: Annotated[str, Field(max_length=1000)] | None = None


@router.post("/ratings", tags=["ratings"], status_code=201)
async def submit_rating(request: Request, body: RatingIn, p: Auth) -> Response:
    hall = hall_of(request)
    rated_ms = ms_from_iso(body.rated_at)
    assert rated_ms is not None

    # Only the rating's own window records it; "later" ratings are made by the citizen's
    # rate-later page alone (no sign-in there), so a staff token never makes one.
    queue.acting_window(p, body.window_no)
    if body.source == "later":
        raise ApiError(403, "forbidden", {"source": "later"})

    def fn(tx: Tx) -> JSON:
        conn = tx.conn
        _load_case(conn, body.case_id)
        check_reasons_version(conn, body.reasons_version, now_ms())  # rating_channels.py
        bad = body.level in BAD_LEVELS
        if body.reasons:
            known = set(conn.execute(select(t.rating_reasons.c.code)).scalars())
            unknown = [r for r in body.reasons if r not in known]
            if unknown:
                raise ApiError(422, "unknown_rating_reason", {"unknown": unknown})
        if bad and not body.reasons and not body.comment.strip():
            raise ApiError(422, "reason_required")
        if conn.execute(select(t.ratings.c.id).where(t.ratings.c.case_id == body.case_id)).first() is not None:
            raise ApiError(409, "case_already_rated", {"case_id": body.case_id})
        now = now_ms()
        # Pads sign; the check (and its counter/challenge updates) share this transaction.

        assurance = check_rating(conn, body, now)
        # The server dates a rating it cannot verify (and so the day the statistics count it
        # on): a desk could otherwise move a bad rating to a day nobody looks at. A signed
        # rating's time is part of what the pad signed. The desk's claim is kept apart.
        stored_ms = rated_ms if assurance == "signed" else now
        # The unique constraint on case_id is the real guard (一次一评); the check above only
        # gives the clear error code in the common case.
        conn.execute(t.ratings.insert().values(
            id=body.id, case_id=body.case_id, window_no=body.window_no, level=body.level,
            reasons=json.dumps(body.reasons), reasons_version=body.reasons_version,
            comment=body.comment, source=body.source, rated_ms=stored_ms, received_ms=now,
            claimed_rated_ms=rated_ms,
            pad_id=body.pad_id, pad_counter=body.pad_counter, challenge=body.challenge,
            signature=body.signature, assurance=assurance, bad=bad, followed_up=False,
            day=hall.day_of(stored_ms),
        ))
        followups.open_for_rating(conn, body.id)  # a bad rating opens its follow-up (docs/followup.md)
        return {"rating_id": body.id, "case_id": body.case_id, "level": body.level,
                "assurance": assurance, "received_at": iso_ms(now)}

    from sqlalchemy.exc import IntegrityError

    try:
        return await mutate(request, fn, status=201)
    except IntegrityError:
        raise ApiError(409, "case_already_rated", {"case_id": body.case_id}) from None


@router.get("/windows/{no}/ratings", tags=["ratings"])
async def window_ratings(request: Request, no: IdPath, p: Auth, date_: Annotated[date, Query(alias="date")]) -> Response:
    day = date_.isoformat()

    hall = hall_of(request)
    start, end = hall.day_bounds_ms(day)

    def fn(conn: Connection) -> JSON:
        # For reconciliation: the ratings filed on that day, and those the desk captured on
        # that day (an unsigned rating is filed on the day the server received it, which is
        # later when the desk was offline over midnight).
        ids = conn.execute(
            select(t.ratings.c.id).where(
                t.ratings.c.window_no == no,
                (t.ratings.c.day == day)
                | ((t.ratings.c.claimed_rated_ms >= start) & (t.ratings.c.claimed_rated_ms < end)),
            ).order_by(t.ratings.c.id)
        ).scalars().all()
        return {"window_no": no, "date": day, "ids": list(ids)}

    return json_response(await hall.store.read(fn))


# ---- stats --------------------------------------------------------------------------------
@router.get("/stats", tags=["stats"])
async def get_stats(
    request: Request,
    p: Auth,
    date_: Annotated[date | None, Query(alias="date")] = None,
    window_no: QInt = None,
) -> Response:
    hall = hall_of(request)
    day = date_.isoformat() if date_ else hall.today()
    return json_response(await hall.store.read(lambda c: stats.compute(c, hall, day, window_no)))


# ---- events -------------------------------------------------------------------------------
@router.get("/events", tags=["events"], response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def events(
    request: Request,
    p: Auth,
    window_no: QInt = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=40)] = None,
) -> StreamingResponse:
    hall = hall_of(request)
    cats: set[str] = set()
    if window_no is not None:
        w = await hall.store.read(lambda c: load_window(c, window_no))
        cats = {c for c in w["categories"].split(",") if c}
    after: int | None = None
    if last_event_id:
        try:
            after = int(last_event_id)
        except ValueError:
            raise ApiError(400, "bad_request", {"Last-Event-ID": "must be an event id"}) from None
    # At most `max_streams_per_session` streams per session in this process: a stolen or
    # buggy token cannot hold open hundreds of streams (each costs a queue and its events).
    skey = session_key(p.session_id)
    if hall.streams.get(skey, 0) >= hall.settings.max_streams_per_session:
        raise ApiError(429, "too_many_streams", {"limit": hall.settings.max_streams_per_session},
                       headers={"Retry-After": "5"})
    hall.streams[skey] = hall.streams.get(skey, 0) + 1

    async def still_allowed() -> bool:
        return bool(await hall.session_watch.alive(p))

    async def counted() -> AsyncIterator[bytes]:
        try:
            async for chunk in stream(hall.store, hall.broker, window_no, cats, after,
                                      hall.settings.ping_seconds, still_allowed):
                yield chunk
        finally:
            left = hall.streams.get(skey, 1) - 1
            if left > 0:
                hall.streams[skey] = left
            else:
                hall.streams.pop(skey, None)

    return StreamingResponse(
        counted(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


_unused = (func,)

# The router tries its routes in order, one regex each: the queue's hot paths go first. Safe
# because no other route of this router matches their paths.
_HOT = {(m, router.prefix + path) for m, path in (
    ("POST", "/windows/{no}/call-next"), ("POST", "/tickets/{ticket_id}/complete"),
    ("POST", "/tickets/{ticket_id}/start"), ("POST", "/tickets"),
)}
router.routes.sort(
    key=lambda r: not any((m, getattr(r, "path", "")) in _HOT for m in getattr(r, "methods", None) or ())
)
