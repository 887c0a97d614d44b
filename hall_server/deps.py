"""Shared FastAPI dependencies of the `/api/v1` routers: the bearer-token principal and the
bounded path/body integer types. Every router module imports these from here (never from
another router), so the routers form no import cycle (the FastAPI template's `api/deps.py`)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field
from sqlalchemy import Connection, select

from hall_server import schema as t
from hall_server.core import hall_of
from hall_server.db import now_ms
from hall_server.errors import ApiError
from hall_server.security import Principal

bearer = HTTPBearer(auto_error=False, description="Access token from /auth/login")

# Every integer from outside is bounded to what a 64-bit database column holds, so a huge
# number is a 422, never a driver OverflowError (found by schemathesis).
MAX_INT = 2**63 - 1
IdPath = Annotated[int, Path(ge=0, le=MAX_INT)]
WinNo = Annotated[int, Field(ge=0, le=MAX_INT)]
QInt = Annotated[int | None, Query(ge=0, le=MAX_INT)]
Priority = Literal["normal", "green", "appointment"]


# ---- auth dependency ----------------------------------------------------------------------
def session_alive(conn: Connection, sid: str) -> bool:
    row = conn.execute(
        select(t.sessions.c.closed_ms, t.staff.c.disabled, t.sessions.c.refresh_expires_ms)
        .join(t.staff, t.staff.c.staff_no == t.sessions.c.staff_no)
        .where(t.sessions.c.id == sid)
    ).first()
    # A session whose refresh token has run out is over even without a logout (a desk that
    # crashed must not hold its window for ever).
    return row is not None and row[0] is None and not row[1] and row[2] > now_ms()


def _session_state(conn: Connection, sid: str, window_no: int | None) -> tuple[bool, bool]:
    """(session alive, session still holds `window_no`): a staff token acts for its window only
    while `windows.session_id` is its session."""
    if not session_alive(conn, sid):
        return False, False
    if window_no is None:
        return True, True
    holder = conn.execute(select(t.windows.c.session_id).where(t.windows.c.no == window_no)).scalar()
    return True, holder == sid


async def principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if creds is None or creds.scheme.lower() != "bearer":
        raise ApiError(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})
    hall = hall_of(request)
    p = hall.verify_token(creds.credentials)
    state = hall.sessions.get(p.session_id)
    if state is None:
        epoch = hall.sessions.epoch
        state = await hall.store.read(lambda c: _session_state(c, p.session_id, p.window_no))
        hall.sessions.put(p.session_id, state, epoch)
    alive, holds = state
    if not alive:
        raise ApiError(401, "unauthorized")
    if not holds:
        # Still signed in, but the window the token names went to another session: the token
        # acts for no window (queue.acting_window refuses with `window_not_held`).
        return dataclasses.replace(p, window_no=None, lost_window_no=p.window_no)
    return p


Auth = Annotated[Principal, Depends(principal)]
