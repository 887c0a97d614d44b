"""The hall server's identity (`GET /api/v1/identity`) and the bounded database health check.

The identity is what a window PC keys its device credential by (counter_app.credentials):
the hall code and a server id derived from the hall's server secret (the secret every process
of the hall shares, kept in its 0600 file, never in the database). Both stay the same when IT
moves the hall from http to https or gives the server a new host name, so no PC re-enrols;
another hall (another secret) has another id. The id is an HMAC of a fixed label: it reveals
nothing about the secret. No sign-in is needed: `counter-app setup` asks before enrolling.

`/api/v1/health/db` is for load balancers and monitoring and needs no sign-in, so anyone on the
LAN may call it as often as they like: each process probes its database at most once per
`HEALTH_DB_EVERY_S`, callers meanwhile share the last answer (or the probe in flight), so a
flood of health checks costs the database nothing more than one query a second.
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
HEALTH_DB_EVERY_S = 1.0


def server_id(secret: bytes) -> str:
    """The public id of the hall's server secret (32 hex digits)."""
    return hmac.new(secret, IDENTITY_LABEL, hashlib.sha256).hexdigest()[:32]


@router.get("/identity", tags=["health"])
async def identity(request: Request) -> Response:
    hall = hall_of(request)
    code = await hall.store.read(lambda c: get_meta(c, "hall_code")) or hall.code
    return json_response({"hall_code": code, "server_id": server_id(hall.server_secret)})


class DbHealth:
    """One database probe per HEALTH_DB_EVERY_S per process, shared by every caller."""

    def __init__(self, every_s: float = HEALTH_DB_EVERY_S) -> None:
        self.every_s = every_s
        self._at = 0.0
        self._result: JSON | ApiError | None = None
        self._lock = asyncio.Lock()

    async def check(self, hall: Any) -> JSON:
        async with self._lock:  # callers during a probe wait for it instead of adding their own
            if self._result is None or time.monotonic() - self._at >= self.every_s:
                started = now_ms()
                try:
                    last = await hall.store.read(
                        lambda c: c.exec_driver_sql("SELECT MAX(id) FROM events").scalar())
                    self._result = {"status": "ok", "database": hall.store.kind,
                                    "db_ms": now_ms() - started, "last_event_id": last,
                                    "checked_at": iso_ms(started)}
                except ApiError as e:  # 503 database_unavailable, shared like a success
                    self._result = e
                self._at = time.monotonic()
            result = self._result
        if isinstance(result, ApiError):
            raise result
        return result
