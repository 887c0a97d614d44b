"""The desk's heartbeat and the hall rule that closes windows whose desk went silent.

There is no heartbeat call: a desk is heard from by its existing traffic, i.e. any signed-in
request (hall_server.deps.principal) and the pings of its live `/events` stream (SessionWatch,
every `ping_seconds`). Each process writes `sessions.last_seen_ms` at most once per `every_s`
per session (one small UPDATE, off the request's path), so a busy desk costs no extra writes.

A window that is open or paused whose session has not been heard from for
`Settings.stale_window_seconds` (a PC switched off without signing out, a crashed desk, a pulled
cable) is closed and its session ended, exactly as a sign-out would, and the `window.closed`
event says why (`"reason": "desk_silent"`), so the hall display and supervisors see it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import func, select

from hall_server import schema as t
from hall_server.core import load_window, window_out
from hall_server.db import Tx, now_ms

log = logging.getLogger("hall_server.heartbeat")


class Heartbeat:
    """Records that a session's desk was heard from; throttled per session in this process."""

    def __init__(self, store: Any, every_s: float) -> None:
        self.store = store
        self.every_ms = int(every_s * 1000)
        self._written: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def seen(self, sid_key: str) -> None:
        """Note `sid_key` as alive now; the write runs in the background (never fails a call)."""
        now = now_ms()
        if now - self._written.get(sid_key, 0) < self.every_ms:
            return
        if len(self._written) > 50_000:  # bounded: old entries only cost an extra write
            self._written.clear()
        self._written[sid_key] = now
        task = asyncio.get_running_loop().create_task(self._write(sid_key, now))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, sid_key: str, at: int) -> None:
        try:
            await self.store.write(lambda tx: tx.conn.execute(
                t.sessions.update().where(t.sessions.c.id == sid_key).values(last_seen_ms=at)))
        except Exception:  # noqa: BLE001 - a missed heartbeat is retried by the next request
            self._written.pop(sid_key, None)
            log.warning("could not record the heartbeat of a session", exc_info=True)


def close_stale_windows(tx: Tx, silent_ms: int) -> list[int]:
    """Close every open or paused window whose desk was last heard from before now-silent_ms."""
    conn = tx.conn
    now = now_ms()
    last = func.coalesce(t.sessions.c.last_seen_ms, t.sessions.c.created_ms)
    rows = conn.execute(
        select(t.windows.c.no, t.windows.c.session_id, last)
        .join(t.sessions, t.sessions.c.id == t.windows.c.session_id)
        .where(t.windows.c.state != "closed", last < now - silent_ms)
    ).all()
    closed: list[int] = []
    for no, sid_key, seen_ms in rows:
        conn.execute(t.sessions.update().where(t.sessions.c.id == sid_key).values(closed_ms=now))
        conn.execute(t.windows.update().where(t.windows.c.no == no, t.windows.c.session_id == sid_key)
                     .values(state="closed", staff_no=None, session_id=None, pause_reason_code=None))
        w = window_out(conn, load_window(conn, no))
        tx.emit("window.closed", {"window": w, "reason": "desk_silent",
                                  "silent_seconds": (now - int(seen_ms)) // 1000}, window_no=no)
        closed.append(int(no))
    return closed


async def close_stale_loop(hall: Any) -> None:
    """Every `stale_check_seconds`, close the windows of silent desks (0 seconds: never)."""
    silent_s = hall.settings.stale_window_seconds
    if silent_s <= 0:
        return
    while True:
        await asyncio.sleep(hall.settings.stale_check_seconds)
        try:
            closed = await hall.store.write(lambda tx: close_stale_windows(tx, silent_s * 1000))
            if closed:
                log.warning("closed windows %s: their desks were silent for over %s s", closed, silent_s)
        except Exception:  # noqa: BLE001 - the rule must keep running
            log.exception("closing stale windows failed")
