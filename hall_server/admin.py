"""IT admin operations (role `it_admin`): staff, window categories, enrollment codes, matters
import. The CLI subcommands call the same `*_op` functions directly on the database."""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from hall_server import catalog, queue
from hall_server import schema as t
from hall_server.core import (
    JSON,
    hall_of,
    load_window,
    mutate,
    require_role,
    staff_json,
    window_out,
)
from hall_server.db import Tx, iso_ms, now_ms
from hall_server.deps import Auth, IdPath, WinNo
from hall_server.errors import ApiError
from hall_server.security import hash_password

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

Role = Literal["staff", "supervisor", "it_admin"]


class StaffIn(BaseModel):
    staff_no: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z_-]+$")]
    name_zh: Annotated[str, Field(min_length=1, max_length=100)]
    name_en: Annotated[str, Field(max_length=100)] = ""
    role: Role = "staff"
    password: Annotated[str, Field(min_length=8, max_length=200)]


class StaffPatch(BaseModel):
    disabled: bool | None = None


class CategoriesIn(BaseModel):
    categories: Annotated[list[Annotated[str, Field(max_length=8)]], Field(max_length=50)]


class EnrollmentIn(BaseModel):
    window_no: WinNo


def create_staff_op(tx: Tx, staff_no: str, name_zh: str, name_en: str, role: str, password_hash: str) -> JSON:
    conn = tx.conn
    if conn.execute(select(t.staff.c.staff_no).where(t.staff.c.staff_no == staff_no)).first() is not None:
        raise ApiError(409, "staff_exists", {"staff_no": staff_no})
    conn.execute(t.staff.insert().values(staff_no=staff_no, name_zh=name_zh, name_en=name_en, role=role,
                                         password_hash=password_hash, disabled=False))
    return staff_json(conn.execute(select(t.staff).where(t.staff.c.staff_no == staff_no)).mappings().one())


def set_disabled_op(tx: Tx, staff_no: str, disabled: bool) -> JSON:
    conn = tx.conn
    if not conn.execute(t.staff.update().where(t.staff.c.staff_no == staff_no).values(disabled=disabled)).rowcount:
        raise ApiError(404, "not_found", {"staff_no": staff_no})
    if disabled:
        conn.execute(t.sessions.update().where(t.sessions.c.staff_no == staff_no, t.sessions.c.closed_ms.is_(None))
                     .values(closed_ms=now_ms()))
    return staff_json(conn.execute(select(t.staff).where(t.staff.c.staff_no == staff_no)).mappings().one())


def set_window_categories_op(tx: Tx, no: int, cats: list[str]) -> JSON:
    conn = tx.conn
    load_window(conn, no, for_update=True)
    known = set(conn.execute(select(t.categories.c.code)).scalars())
    unknown = [c for c in cats if c not in known]
    if unknown:
        raise ApiError(422, "unknown_category", {"unknown": unknown})
    conn.execute(t.windows.update().where(t.windows.c.no == no).values(categories=",".join(dict.fromkeys(cats))))
    out = window_out(conn, load_window(conn, no))
    queue._emit_window(tx, "window.updated", out)
    return out


def enrollment_code_op(tx: Tx, no: int, lifetime_s: int) -> JSON:
    load_window(tx.conn, no)
    code = "-".join(secrets.token_hex(3).upper() for _ in range(3))
    expires = now_ms() + lifetime_s * 1000
    tx.conn.execute(t.enrollment_codes.insert().values(code=code, window_no=no, expires_ms=expires))
    return {"code": code, "window_no": no, "expires_at": iso_ms(expires)}


@router.post("/staff", status_code=201)
async def create_staff(request: Request, body: StaffIn, p: Auth) -> Response:
    require_role(p, "it_admin")
    pw = await anyio.to_thread.run_sync(hash_password, body.password)
    return await mutate(
        request, lambda tx: create_staff_op(tx, body.staff_no, body.name_zh, body.name_en, body.role, pw), status=201
    )


@router.patch("/staff/{staff_no}")
async def patch_staff(request: Request, staff_no: str, body: StaffPatch, p: Auth) -> Response:
    require_role(p, "it_admin")

    def fn(tx: Tx) -> JSON:
        if body.disabled is None:
            row = tx.conn.execute(select(t.staff).where(t.staff.c.staff_no == staff_no)).mappings().first()
            if row is None:
                raise ApiError(404, "not_found", {"staff_no": staff_no})
            return staff_json(row)
        return set_disabled_op(tx, staff_no, body.disabled)

    # No cache to clear: every request checks its session in the database (deps.principal).
    return await mutate(request, fn)


@router.put("/windows/{no}/categories")
async def window_categories(request: Request, no: IdPath, body: CategoriesIn, p: Auth) -> Response:
    require_role(p, "it_admin")
    return await mutate(request, lambda tx: set_window_categories_op(tx, no, body.categories))


@router.post("/enrollment-codes")
async def enrollment_code(request: Request, body: EnrollmentIn, p: Auth) -> Response:
    require_role(p, "it_admin")
    life = hall_of(request).settings.enrollment_code_seconds
    return await mutate(request, lambda tx: enrollment_code_op(tx, body.window_no, life))


@router.post(
    "/matters/import",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "array", "items": {"type": "object"}}}}}},
)
async def import_matters(request: Request, p: Auth) -> Response:
    require_role(p, "it_admin")
    raw = await request.body()
    try:
        items: Any = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ApiError(400, "malformed_json", {"message": str(e)}) from None
    return await mutate(request, lambda tx: catalog.import_matters(tx, items))
