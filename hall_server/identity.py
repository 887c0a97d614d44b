"""The hall server's identity (`GET /api/v1/identity`) and the bounded database health check.

The identity is what a window PC keys its device credential by (counter_app.credentials):
the hall code and a server id derived from the hall's server secret (the secret every process
of the hall shares, kept in its 0600 file, never in the database). Both stay the same when IT
moves the hall from http to https or gives the server a new host name, so no PC re-enrols;
another hall (another secret) has another id. The id is an HMAC of a fixed label: it reveals
nothing about the secret. No sign-in is needed: `counter-app setup` asks before enrolling.

`/api/v1/health/db` is for load balancers and monitoring and needs no sign-in, so anyone on the
LAN may call it as often as they like: each process runs one probe at a time (callers during a
probe share its answer) and a success is reused for `HEALTH_DB_EVERY_S`, so a flood of health
checks costs the database at most four small queries a second. A failure is never reused: the
first check after the database is back answers 200.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import Any

from fastapi import APIRouter, Request, Response

from hall_server.core import JSON, get_meta, hall_of, json_response
from hall_server.db import iso_ms, now_ms
from hall_server.errors import ApiError

router = APIRouter(prefix="/api/v1")

IDENTITY_LABEL = b"hall-server identity v1"
HEALTH_DB_EVERY_S = 0.25


def server_id(secret: bytes) -> str:
    """The public id of the hall's server secret (32 hex digits)."""
    return hmac.new(secret, IDENTITY_LABEL, hashlib.sha256).hexdigest()[:32]


@router.get("/identity", tags=["health"])
async def identity(request: Request) -> Response:
    hall = hall_of(request)
    code = await hall.store.read(lambda c: get_meta(c, "hall_code")) or hall.code
    return json_response({"hall_code": code, "server_id": server_id(hall.server_secret)})


class DbHealth:
    """At most one database probe in flight per process; a success reused HEALTH_DB_EVERY_S."""

    def __init__(self, every_s: float = HEALTH_DB_EVERY_S) -> None:
        self.every_s = every_s
        self._at = 0.0
        self._result: JSON | None = None
        self._failure: ApiError | None = None
        self._failed_at = 0.0
        self._lock = asyncio.Lock()

    async def check(self, hall: Any) -> JSON:
        waited_from = time.monotonic()
        async with self._lock:  # callers during a probe wait for it instead of adding their own
            fresh = self._result is not None and (time.monotonic() - self._at < self.every_s
                                                  or self._at >= waited_from)
            if fresh and self._result is not None:
                return self._result
            if self._failed_at >= waited_from and self._failure is not None:
                raise self._failure  # the probe this caller waited for has just failed
            started = now_ms()
            try:
                last = await hall.store.read(
                    lambda c: c.exec_driver_sql("SELECT MAX(id) FROM events").scalar())
            except ApiError as e:  # 503 database_unavailable (after Store.read's retries)
                self._result, self._failure, self._failed_at = None, e, time.monotonic()
                raise
            self._result = {"status": "ok", "database": hall.store.kind,
                            "db_ms": now_ms() - started, "last_event_id": last,
                            "checked_at": iso_ms(started)}
            self._at = time.monotonic()
            return self._result
