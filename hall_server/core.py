"""Shared server state (`Hall`), JSON shapes of rows, and the generic mutation path.

`mutate()` is the ONE idempotency mechanism: every mutating endpoint runs its effect through it.
The `Idempotency-Key` row is inserted first in the same transaction as the effect and the
response is stored in it before COMMIT, so a key is either absent (nothing happened) or carries
the exact response to replay. A concurrent duplicate blocks on the key's unique index (PostgreSQL)
or waits behind the single writer (SQLite) and then replays the stored response.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from cryptography.fernet import Fernet, InvalidToken
from fastapi import Request, Response
from sqlalchemy import Connection, RowMapping, select
from sqlalchemy.dialects import postgresql, sqlite

from hall_server import schema as t
from hall_server.db import Store, Tx, iso_ms, now_ms, run
from hall_server.errors import ApiError
from hall_server.security import LoginLimits, Principal, TokenSigner
from hall_server.settings import Settings

JSON = dict[str, Any]


class Hall:
    """Everything a request handler needs, hung on `app.state.hall`."""

    def __init__(self, settings: Settings, store: Store, signer: TokenSigner) -> None:
        self.settings = settings
        self.store = store
        self.signer = signer
        self.tz = ZoneInfo(settings.timezone)
        self.rules = settings.rules
        self.login_limits = LoginLimits(settings.login_failure_limit, settings.login_address_limit,
                                        settings.login_global_limit, settings.login_failure_window_s)
        self.code = "HALL"
        self.broker: Any = None  # events.Broker, set by create_app
        # Locks of uploads being written by this process, only for uploads that exist and only
        # while a PATCH holds or waits for one (documents.py removes them).
        self.upload_locks: dict[str, Any] = {}
        self.streams: dict[str, int] = {}  # session key -> live /events streams in this process
        self.rate_later_key: bytes | None = None  # set by create_app from the server secret
        # The server secret itself (from its 0600 file, never the database), for the keys the
        # display and the /pair/ page derive from it; set by create_app.
        self.server_secret: bytes = b""
        self.session_watch: Any = None  # deps.SessionWatch, set by create_app
        self.heartbeat: Any = None  # heartbeat.Heartbeat, set by create_app
        self.db_health: Any = None  # identity.DbHealth, set by create_app
        self.avatars: dict[str, bytes] = {}
        self._tokens: dict[str, tuple[Principal, float]] = {}

    def verify_token(self, token: str) -> Principal:
        """`signer.verify`, remembered per token: a desk sends the same token for its whole
        lifetime, and the HMAC and JSON work were a visible part of every call-next. A token
        is immutable, so its checked signature stays checked; its expiry is still checked
        on every use (and the session's liveness by the caller)."""
        hit = self._tokens.get(token)
        if hit is None:
            p = self.signer.verify(token)  # raises 401 for a bad or expired token
            body = token.split(".")[1]
            exp = float(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["exp"])
            if len(self._tokens) >= 10_000:
                self._tokens.clear()
            self._tokens[token] = hit = (p, exp)
        elif hit[1] < time.time():
            raise ApiError(401, "token_expired")
        return hit[0]

    def day_of(self, ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, self.tz).strftime("%Y-%m-%d")

    def today(self) -> str:
        return self.day_of(now_ms())

    def day_bounds_ms(self, day: str) -> tuple[int, int]:
        d = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=self.tz)
        start = int(d.timestamp() * 1000)
        return start, start + 86_400_000


def hall_of(request: Request) -> Hall:
    hall: Hall = request.app.state.hall
    return hall


# ---- JSON shapes --------------------------------------------------------------------------
def staff_json(r: Mapping[str, Any]) -> JSON:
    return {
        "staff_no": r["staff_no"],
        "name_zh": r["name_zh"],
        "name_en": r["name_en"],
        "role": r["role"],
        "photo_url": f"/api/v1/staff/{r['staff_no']}/photo",
        "disabled": bool(r["disabled"]),
    }


TICKET_COLS = [
    t.tickets.c.id,
    t.tickets.c.number,
    t.tickets.c.category,
    t.tickets.c.matter_code,
    t.tickets.c.priority,
    t.tickets.c.appointment_ms,
    t.tickets.c.state,
    t.tickets.c.window_no,
    t.tickets.c.target_window_no,
    t.tickets.c.issued_ms,
    t.tickets.c.queued_ms,
    t.tickets.c.called_ms,
    t.tickets.c.first_called_ms,
    t.tickets.c.started_ms,
    t.tickets.c.finished_ms,
    t.tickets.c.recalls,
    t.tickets.c.case_id,
    t.tickets.c.sort_key,
]


def ticket_json(r: Mapping[str, Any]) -> JSON:
    return {
        "id": int(r["id"]),
        "number": r["number"],
        "category": r["category"],
        "matter_code": r["matter_code"],
        "priority": r["priority"],
        "appointment_at": iso_ms(r["appointment_ms"]),
        "state": r["state"],
        "window_no": r["window_no"],
        "target_window_no": r["target_window_no"],
        "issued_at": iso_ms(r["issued_ms"]),
        "queued_at": iso_ms(r["queued_ms"]),
        "called_at": iso_ms(r["called_ms"]),
        "started_at": iso_ms(r["started_ms"]),
        "finished_at": iso_ms(r["finished_ms"]),
        "recalls": int(r["recalls"]),
        "case_id": None if r["case_id"] is None else int(r["case_id"]),
    }


def window_json(r: Mapping[str, Any], staff: Mapping[str, Any] | None) -> JSON:
    return {
        "no": int(r["no"]),
        "name_zh": r["name_zh"],
        "name_en": r["name_en"],
        "categories": [c for c in r["categories"].split(",") if c],
        "state": r["state"],
        "pause_reason_code": r["pause_reason_code"],
        "staff": staff_json(staff) if staff is not None else None,
        "current_ticket_id": None if r["current_ticket_id"] is None else int(r["current_ticket_id"]),
    }


def load_window(conn: Connection, no: int, *, for_update: bool = False) -> RowMapping:
    q = select(t.windows).where(t.windows.c.no == no)
    if for_update and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).mappings().first()
    if row is None:
        raise ApiError(404, "not_found", {"window_no": no})
    return row


def window_out(conn: Connection, w: Mapping[str, Any]) -> JSON:
    staff = None
    if w["staff_no"] is not None:
        staff = conn.execute(select(t.staff).where(t.staff.c.staff_no == w["staff_no"])).mappings().first()
    return window_json(w, staff)


def all_windows(conn: Connection) -> list[JSON]:
    ws = conn.execute(select(t.windows).order_by(t.windows.c.no)).mappings().all()
    staff = {
        s["staff_no"]: s
        for s in conn.execute(
            select(t.staff).where(t.staff.c.staff_no.in_([w["staff_no"] for w in ws if w["staff_no"]]))
        ).mappings()
    }
    return [window_json(w, staff.get(w["staff_no"])) for w in ws]


CASE_COLS = "id, case_no, ticket_id, matter_code, staff_no, window_no, started_ms, completed_ms, outcome, notes"
_CASE_SQL = f"SELECT {CASE_COLS} FROM cases WHERE id = :id"  # noqa: S608
_MATERIALS_SQL = "SELECT item_id, status, note FROM case_materials WHERE case_id = :id ORDER BY position"


def case_json(conn: Connection, case_id: int) -> JSON:
    c = run(conn, _CASE_SQL, {"id": case_id}).first()
    if c is None:
        raise ApiError(404, "not_found", {"case_id": case_id})
    mats = run(conn, _MATERIALS_SQL, {"id": case_id}).all()
    return case_from_row(c, [{"item_id": m[0], "status": m[1], "note": m[2]} for m in mats])


def case_from_row(c: Any, materials: list[JSON]) -> JSON:
    """The Case shape from a row of CASE_COLS (in that order) and its materials."""
    return {
        "id": int(c[0]),
        "case_no": c[1],
        "ticket_id": None if c[2] is None else int(c[2]),
        "matter_code": c[3],
        "staff_no": c[4],
        "window_no": c[5],
        "started_at": iso_ms(c[6]),
        "completed_at": iso_ms(c[7]),
        "outcome": c[8],
        "materials": materials,
        "notes": c[9],
    }


def insert_ignore(conn: Connection, table: Any, values: dict[str, Any], keys: list[str]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when the row was inserted."""
    ins: Any = postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
    col = getattr(table.c, keys[0])
    stmt = ins.values(**values).on_conflict_do_nothing(index_elements=keys).returning(col)
    return conn.execute(stmt).first() is not None


_COUNTER_SQL = (
    "INSERT INTO counters (scope, day, n) VALUES (:scope, :day, 1) "
    "ON CONFLICT (scope, day) DO UPDATE SET n = counters.n + 1 RETURNING n"
)


def next_counter(conn: Connection, scope: str, day: str) -> int:
    return int(run(conn, _COUNTER_SQL, {"scope": scope, "day": day}).scalar_one())


def get_meta(conn: Connection, key: str) -> str | None:
    return conn.execute(select(t.meta.c.value).where(t.meta.c.key == key)).scalar()


def set_meta(conn: Connection, key: str, value: str) -> None:
    if conn.execute(t.meta.update().where(t.meta.c.key == key).values(value=value)).rowcount == 0:
        conn.execute(t.meta.insert().values(key=key, value=value))


# ---- the mutation path -------------------------------------------------------------------
def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, as `json.dumps(ensure_ascii=False, separators=(",", ":"))` writes it,
    by orjson: several times less CPU on every reply the event loop and the writer produce."""
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)


# Replies that carry secrets (tokens, device secrets) are kept for replay sealed under a key
# derived from the server secret (outside the database): the idempotency table is permanent and
# must not become a plaintext store of credentials. Such a reply is replayed only while what it
# hands out is still valid (`still_valid`): never the tokens of a session that was signed out
# or whose refresh token has been rotated since.
_SECRET_PREFIX = "enc1:"


def _seal(hall: Hall, body: bytes) -> str:
    return _SECRET_PREFIX + Fernet(hall.signer.replay_key).encrypt(body).decode()


def _unseal(hall: Hall, stored: str) -> bytes:
    try:
        return Fernet(hall.signer.replay_key).decrypt(stored[len(_SECRET_PREFIX):].encode())
    except InvalidToken:
        raise ApiError(409, "idempotency_expired") from None


def caller_scope(request: Request) -> str:
    """Whose Idempotency-Keys these are. A token acting for a window: that window's (its PC's
    outbox keys stay its own across sign-ins and shift changes, so a retried rating or upload
    is replayed, never done twice; another window's staff never meets them). A signed-in
    caller without a window (supervisor, IT, a look-up session): its staff number's. Anyone
    else (the kiosk, sign-in, the citizen's page): its network address's, so an anonymous key
    never meets a signed-in caller's key."""
    p: Principal | None = getattr(request.state, "principal", None)
    if p is not None:
        if p.window_no is not None:
            return f"window:{p.window_no}"
        return "staff:" + p.staff_no
    host = request.client.host if request.client else "?"
    return "anon:" + host


def refresh_still_valid(conn: Connection, reply: JSON) -> bool:
    """A stored sign-in/refresh reply may be replayed only while its refresh token is the
    session's current one and the session is open (not signed out, rotated or expired)."""
    token = reply.get("refresh_token")
    if not isinstance(token, str):
        return False
    row = run(conn, "SELECT s.closed_ms, s.refresh_expires_ms, st.disabled FROM sessions s "
                    "JOIN staff st ON st.staff_no = s.staff_no WHERE s.refresh_hash = :h",
              {"h": hashlib.sha256(token.encode()).hexdigest()}).first()
    return row is not None and row[0] is None and int(row[1]) > now_ms() and not row[2]


def device_still_valid(conn: Connection, reply: JSON) -> bool:
    """A stored enrolment reply (the device secret) is replayed only while that device is
    still enrolled (not revoked or replaced)."""
    row = run(conn, "SELECT revoked FROM devices WHERE id = :i", {"i": str(reply.get("device_id"))}).first()
    return row is not None and not row[0]


async def mutate(
    request: Request,
    fn: Callable[[Tx], Any],
    *,
    status: int = 200,
    secret: bool = False,
    still_valid: Callable[[Connection, JSON], bool] | None = None,
) -> Response:
    """Run `fn` in one write transaction under the request's Idempotency-Key (if any), which
    is the caller's own (`caller_scope`): the same key from another caller is another key.

    `secret=True` for replies that carry credentials: their stored copy is sealed (see above),
    and with `still_valid` a replay happens only while the reply's credentials are still good
    (else 409 `idempotency_expired`: the client signs in again under a new key).
    """
    hall = hall_of(request)
    key = request.headers.get("idempotency-key")
    scope = caller_scope(request)
    fingerprint = ""
    if key is not None:
        if not key or len(key) > 200:
            raise ApiError(
                422,
                "validation_error",
                {"errors": [{"field": "header.Idempotency-Key", "message": "1..200 characters"}]},
            )
        # Keyed with the server secret: the table is permanent and a login body holds the
        # password, which a plain hash would expose to offline guessing.
        h = hmac.new(hall.signer.fingerprint_key, digestmod=hashlib.sha256)
        h.update(request.method.encode() + b"\0" + request.url.path.encode() + b"?")
        h.update(request.url.query.encode() + b"\0")
        h.update(await request.body())
        fingerprint = h.hexdigest()

    def work(tx: Tx) -> tuple[bool, int, bytes]:
        if key is not None:
            # On PostgreSQL a concurrent twin blocks here until the first commits or rolls back.
            fresh = run(
                tx.conn,
                "INSERT INTO idempotency_keys (scope, key, fingerprint, created_ms) "
                "VALUES (:sc, :k, :f, :now) ON CONFLICT (scope, key) DO NOTHING RETURNING key",
                {"sc": scope, "k": key, "f": fingerprint, "now": now_ms()},
            ).first()
            if fresh is None:
                row = run(
                    tx.conn,
                    "SELECT fingerprint, status_code, body FROM idempotency_keys "
                    "WHERE scope = :sc AND key = :k",
                    {"sc": scope, "k": key},
                ).mappings().one()
                if row["fingerprint"] != fingerprint:
                    raise ApiError(422, "idempotency_mismatch")
                if row["status_code"] is None:
                    raise ApiError(409, "idempotency_in_progress", headers={"Retry-After": "1"})
                stored = row["body"] or ""
                if stored.startswith(_SECRET_PREFIX):
                    body = _unseal(hall, stored)
                    if still_valid is not None and not still_valid(tx.conn, orjson.loads(body)):
                        raise ApiError(409, "idempotency_expired")
                    return True, int(row["status_code"]), body
                return True, int(row["status_code"]), stored.encode()
        result = fn(tx)
        body = b"" if result is None else dumps(result)
        if key is not None:
            run(
                tx.conn,
                "UPDATE idempotency_keys SET status_code = :s, body = :b WHERE scope = :sc AND key = :k",
                {"s": status, "b": _seal(hall, body) if secret else body.decode(), "sc": scope, "k": key},
            )
        return False, status, body

    replayed, code, body = await hall.store.write(work)
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    if code == 204:
        return Response(status_code=204, headers=headers)
    return Response(body, status_code=code, media_type="application/json", headers=headers)


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(dumps(obj), status_code=status, media_type="application/json")


def ms_from_iso(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ApiError(
            422,
            "validation_error",
            {"errors": [{"field": "time", "message": "a time zone (Z) is required"}]},
        )
    return int(value.timestamp() * 1000)


def require_role(p: Principal, *roles: str) -> None:
    if p.role not in roles:
        raise ApiError(403, "forbidden", {"need": list(roles)})


def time_ms() -> int:
    return int(time.time() * 1000)
