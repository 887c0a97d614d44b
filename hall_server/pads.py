"""Evaluator pads: pairing, the paired pad's public key, and the check of signed ratings.

The window PC is only a relay: staff control it, so a rating it could make up proves nothing.
A networked pad holds its own Ed25519 key; pairing (started by a supervisor or IT) stores the
public key here, and `check_rating` verifies every `source: "pad"` rating against it before the
rating is stored, in the same transaction: the signature over the canonical message, the
case's open challenge (then closed), a per-pad counter that must grow (a gap is flagged: it shows
ratings the PC dropped) and, with the ratings table's unique constraint, one rating per case.
Where a pad is paired, every rating not signed by it (desk, second screen, serial) is refused
(`403 signature_required`); at a window without a pad those are stored `assurance: "unsigned"`.
See docs/hall-api.md ("Evaluator pads") for the exact canonical message.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from hall_server import schema as t
from hall_server.core import JSON, hall_of, json_response, load_window, mutate, require_role
from hall_server.db import Tx, iso_ms, now_ms
from hall_server.deps import Auth, IdPath, WinNo
from hall_server.errors import ApiError
from hall_server.rating_check import ALG, _err, b64u, unb64u

router = APIRouter(prefix="/api/v1", tags=["pads"])

# ---- pairing ---------------------------------------------------------------------------------
def _code_hash(pairing_id: str, code: str) -> str:
    return hashlib.sha256(f"{pairing_id}:{code}".encode()).hexdigest()


def _pad_json(r: Any) -> JSON:
    return {
        "pad_id": r["pad_id"], "window_no": int(r["window_no"]), "alg": r["alg"],
        "public_key": r["public_key"], "paired_at": iso_ms(r["paired_ms"]),
        "paired_by": r["paired_by"], "last_counter": int(r["last_counter"]),
        "gaps": int(r["gaps"]),
    }


@router.post("/windows/{no}/pads/pairings", status_code=201)
async def start_pairing(request: Request, no: IdPath, p: Auth) -> Response:
    """A one-time pairing: 128-bit token (QR) + 6-digit fallback code, valid a short while.

    Not replayed through Idempotency-Key on purpose: the answer holds the secret token, which
    must not be stored; a retried call simply makes another short-lived pairing.
    """
    require_role(p, "supervisor", "it_admin")
    hall = hall_of(request)
    ttl = hall.settings.pad_pairing_seconds

    def fn(tx: Tx) -> JSON:
        load_window(tx.conn, no)
        now = now_ms()
        pid = "pp_" + secrets.token_urlsafe(9)
        token = b64u(secrets.token_bytes(16))
        code = f"{secrets.randbelow(10**6):06d}"
        tx.conn.execute(t.pad_pairings.insert().values(
            id=pid, token_hash=hashlib.sha256(token.encode()).hexdigest(),
            code_hash=_code_hash(pid, code), window_no=no, created_by=p.staff_no,
            created_ms=now, expires_ms=now + ttl * 1000, used_ms=None, code_attempts=0))
        return {"pairing_id": pid, "window_no": no, "token": token, "code": code,
                "expires_at": iso_ms(now + ttl * 1000), "expires_in": ttl}

    return json_response(await hall.store.write(fn), status=201)


class RegisterIn(BaseModel):
    token: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    code: Annotated[str, Field(pattern=r"^[0-9]{6}$")] | None = None
    window_no: WinNo | None = None
    pad_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
    public_key: Annotated[str, Field(min_length=40, max_length=64)]
    alg: Literal["Ed25519"] = ALG


def _match_code(tx: Tx, window_no: int, code: str, limit: int) -> str | None:
    """The open pairing this code belongs to, or None; a miss costs every open pairing of the
    window one attempt (committed even though the request fails), so 10^6 guesses are out."""
    now = now_ms()
    rows = tx.conn.execute(select(t.pad_pairings).where(
        t.pad_pairings.c.window_no == window_no, t.pad_pairings.c.used_ms.is_(None),
        t.pad_pairings.c.expires_ms > now, t.pad_pairings.c.code_attempts < limit,
    )).mappings().all()
    for r in rows:
        if hmac.compare_digest(r["code_hash"], _code_hash(r["id"], code)):
            return str(r["id"])
    for r in rows:
        tx.conn.execute(t.pad_pairings.update().where(t.pad_pairings.c.id == r["id"])
                        .values(code_attempts=t.pad_pairings.c.code_attempts + 1))
    return None


@router.post("/pads/register")
async def register_pad(request: Request, body: RegisterIn, p: Auth) -> Response:
    """The pad (through its desk) presents the token or the code and its public key."""
    hall = hall_of(request)
    try:
        raw = unb64u(body.public_key)
        if len(raw) != 32 or raw.count(0) == 32:  # the all-zero key is a known weak point
            raise ValueError("length")
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise _err(422, "bad_public_key") from None
    pairing_id: str | None = None
    if body.token is None:
        if body.code is None or body.window_no is None:
            raise ApiError(422, "validation_error", {"errors": [
                {"field": "body.token", "message": "token, or code and window_no, are required"}]})
        code, window_no = body.code, body.window_no
        pairing_id = await hall.store.write(
            lambda tx: _match_code(tx, window_no, code, hall.settings.pad_code_attempts))
        if pairing_id is None:
            raise _err(403, "bad_pairing_code")

    def fn(tx: Tx) -> JSON:
        conn = tx.conn
        now = now_ms()
        q = select(t.pad_pairings)
        if pairing_id is not None:
            q = q.where(t.pad_pairings.c.id == pairing_id)
        else:
            assert body.token is not None
            q = q.where(t.pad_pairings.c.token_hash == hashlib.sha256(body.token.encode()).hexdigest())
        pr = conn.execute(q).mappings().first()
        if pr is None or pr["used_ms"] is not None or pr["expires_ms"] <= now:
            reason = "unknown" if pr is None else ("used" if pr["used_ms"] is not None else "expired")
            raise _err(403, "pairing_invalid", {"reason": reason})
        # Single use: the UPDATE's condition is the guard against a concurrent twin.
        n = conn.execute(t.pad_pairings.update().where(
            t.pad_pairings.c.id == pr["id"], t.pad_pairings.c.used_ms.is_(None)).values(used_ms=now)).rowcount
        if n != 1:
            raise _err(403, "pairing_invalid", {"reason": "used"})
        no = int(pr["window_no"])
        conn.execute(t.pads.update().where(
            t.pads.c.window_no == no, t.pads.c.unpaired_ms.is_(None), t.pads.c.pad_id != body.pad_id,
        ).values(unpaired_ms=now))
        old = conn.execute(select(t.pads).where(t.pads.c.pad_id == body.pad_id)).mappings().first()
        values = {"window_no": no, "public_key": body.public_key, "alg": body.alg,
                  "paired_ms": now, "paired_by": pr["created_by"], "unpaired_ms": None}
        if old is None:
            conn.execute(t.pads.insert().values(pad_id=body.pad_id, last_counter=0, gaps=0, **values))
        else:
            if old["public_key"] != body.public_key:
                values["last_counter"] = 0  # a new key: its counter starts afresh
            conn.execute(t.pads.update().where(t.pads.c.pad_id == body.pad_id).values(**values))
        row = conn.execute(select(t.pads).where(t.pads.c.pad_id == body.pad_id)).mappings().one()
        return _pad_json(row)

    return await mutate(request, fn)


@router.get("/windows/{no}/pads")
async def window_pads(request: Request, no: IdPath, p: Auth) -> Response:
    def fn(conn: Connection) -> JSON:
        load_window(conn, no)
        rows = conn.execute(select(t.pads).where(
            t.pads.c.window_no == no, t.pads.c.unpaired_ms.is_(None))).mappings().all()
        return {"window_no": no, "pads": [_pad_json(r) for r in rows]}

    return json_response(await hall_of(request).store.read(fn))


@router.delete("/windows/{no}/pads/{pad_id}", status_code=204)
async def unpair_pad(request: Request, no: IdPath, pad_id: str, p: Auth) -> Response:
    require_role(p, "supervisor", "it_admin")

    def fn(tx: Tx) -> None:
        n = tx.conn.execute(t.pads.update().where(
            t.pads.c.window_no == no, t.pads.c.pad_id == pad_id, t.pads.c.unpaired_ms.is_(None),
        ).values(unpaired_ms=now_ms())).rowcount
        if n != 1:
            raise ApiError(404, "not_found", {"pad_id": pad_id, "window_no": no})

    return await mutate(request, fn, status=204)
