"""Shared FastAPI dependencies of the `/api/v1` routers: the bearer-token principal and the
bounded path/body integer types, and the live-stream session watch. Every router module imports these from here (never from
another router), so the routers form no import cycle (the FastAPI template's `api/deps.py`)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field
from sqlalchemy import Connection, select

from hall_server import schema as t
from hall_server.core import hall_of
from hall_server.db import now_ms, run
from hall_server.errors import ApiError
from hall_server.security import (
    Principal,
    attempt_done,
    count_attempt,
    session_key,
    verify_password,
)

bearer = HTTPBearer(auto_error=False, description="Access token from /auth/login")

# Every integer from outside is bounded to what a 64-bit database column holds, so a huge
# number is a 422, never a driver OverflowError (found by schemathesis).
MAX_INT = 2**63 - 1
IdPath = Annotated[int, Path(ge=0, le=MAX_INT)]
WinNo = Annotated[int, Field(ge=0, le=MAX_INT)]
QInt = Annotated[int | None, Query(ge=0, le=MAX_INT)]
Priority = Literal["normal", "green", "appointment"]


# ---- auth dependency ----------------------------------------------------------------------
def session_alive(conn: Connection, sid_key: str) -> bool:
    """Is the session stored under `sid_key` (security.session_key of its id) still open?"""
    row = conn.execute(
        select(t.sessions.c.closed_ms, t.staff.c.disabled, t.sessions.c.refresh_expires_ms)
        .join(t.staff, t.staff.c.staff_no == t.sessions.c.staff_no)
        .where(t.sessions.c.id == sid_key)
    ).first()
    # A session whose refresh token has run out is over even without a logout (a desk that
    # crashed must not hold its window for ever).
    return row is not None and row[0] is None and not row[1] and row[2] > now_ms()


# One indexed query per request (primary keys of sessions, staff and windows), in the same
# read as nothing else: no per-process cache, so a sign-out, a disabled account or a window
# taken over is seen by every server process at the next request (docs/performance.md).
_SESSION_SQL = (
    "SELECT s.staff_no, st.role, st.disabled, s.closed_ms, s.refresh_expires_ms, w.session_id "
    "FROM sessions s JOIN staff st ON st.staff_no = s.staff_no "
    "LEFT JOIN windows w ON w.no = :w WHERE s.id = :sid"
)


def session_state(conn: Connection, p: Principal) -> tuple[bool, bool]:
    """(the token's session is alive and is the token's staff and role, it holds `p.window_no`)."""
    key = session_key(p.session_id)
    row = run(conn, _SESSION_SQL, {"sid": key, "w": p.window_no if p.window_no is not None else -1}).first()
    if row is None:
        return False, False
    staff_no, role, disabled, closed_ms, expires_ms, holder = row
    # The role and staff come from the database, not from the token: a token that claims
    # more than its session has (a leaked key, a signing bug) is refused outright.
    alive = (staff_no == p.staff_no and role == p.role and not disabled and closed_ms is None
             and int(expires_ms) > now_ms())
    if not alive:
        return False, False
    return True, p.window_no is None or holder == key


async def principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if creds is None or creds.scheme.lower() != "bearer":
        raise ApiError(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})
    hall = hall_of(request)
    p = hall.verify_token(creds.credentials)
    alive, holds = await hall.store.read(lambda c: session_state(c, p))
    if not alive:
        raise ApiError(401, "unauthorized")
    if not holds:
        # Still signed in, but the window the token names went to another session: the token
        # acts for no window (queue.acting_window refuses with `window_not_held`).
        p = dataclasses.replace(p, window_no=None, lost_window_no=p.window_no)
    if hall.heartbeat is not None:
        hall.heartbeat.seen(session_key(p.session_id))  # the desk is heard from (heartbeat.py)
    request.state.principal = p  # the caller's scope for Idempotency-Keys (core.caller_scope)
    return p


class SessionWatch:
    """Are these sessions still alive? Asked by every live event stream on each event batch
    and ping; the questions of one event-loop turn are answered by ONE query, so a burst that
    wakes 200 streams costs one read, not 200."""

    def __init__(self, store: Any, on_alive: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.on_alive = on_alive  # a live stream's ping is the desk's heartbeat too
        self._waiting: dict[str, list[asyncio.Future[bool]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def alive(self, p: Principal) -> bool:
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(session_key(p.session_id), []).append(fut)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush())
        return await fut

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the other streams woken by the same batch ask too
        waiting, self._waiting, self._task = self._waiting, {}, None
        keys = list(waiting)
        try:
            alive = await self.store.read(lambda c: _alive_keys(c, keys))
        except Exception as e:  # noqa: BLE001 - handed to every waiter
            for futs in waiting.values():
                for f in futs:
                    if not f.done():
                        f.set_exception(e)
            return
        for k, futs in waiting.items():
            if k in alive and self.on_alive is not None:
                self.on_alive(k)
            for f in futs:
                if not f.done():
                    f.set_result(k in alive)


def _alive_keys(conn: Connection, keys: list[str]) -> set[str]:
    rows = conn.execute(
        select(t.sessions.c.id)
        .join(t.staff, t.staff.c.staff_no == t.sessions.c.staff_no)
        .where(t.sessions.c.id.in_(keys), t.sessions.c.closed_ms.is_(None), t.staff.c.disabled.is_(False),
               t.sessions.c.refresh_expires_ms > now_ms())
    ).scalars()
    return set(rows)


Auth = Annotated[Principal, Depends(principal)]


async def check_password(request: Request, staff_no: str, password: str) -> Any | None:
    """The staff row when `password` is right for `staff_no`, else None. Every password check
    (the API sign-in, the console's sign-in, the `/pair/` page and the password change) is counted in the shared, database-held sign-in limits
    BEFORE the slow argon2 check (security.count_attempt: 429 when over a limit), so none of
    them is a side door for guessing."""
    hall = hall_of(request)
    address = request.client.host if request.client else "?"
    attempt = await hall.store.write(
        lambda tx: count_attempt(tx.conn, hall.login_limits, staff_no, address, now_ms()))
    staff = await hall.store.read(
        lambda c: c.execute(select(t.staff).where(t.staff.c.staff_no == staff_no)).mappings().first())
    ok = await anyio.to_thread.run_sync(
        verify_password, staff["password_hash"] if staff else None, password)
    ok = ok and staff is not None
    await hall.store.write(lambda tx: attempt_done(tx.conn, attempt, staff_no, address, ok=ok))
    return staff if ok else None
