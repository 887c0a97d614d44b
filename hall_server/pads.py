"""Evaluator pads: pairing, the paired pad's public key, and the check of signed ratings.

The window PC is not in the trust path: staff control it, so a rating it could make up proves
nothing, and a key it could slip in at pairing would make its own ratings "signed". So:

- a supervisor or IT starts a pairing on their own device (`POST /windows/{no}/pads/pairings`
  through the /pair/ page or a console, or `hall-server pad-pair` on the server box): a 128-bit
  token for the QR code and a 6-digit fallback code, valid `pad_pairing_seconds`;
- the pad opens the hall server's own pad page with the token, makes its Ed25519 key and
  registers it directly with the server (`POST /pad/api/pair`, no staff session). The key is
  held on the pairing, not bound;
- the pad shows the key's short fingerprint (rating_check.fingerprint); the supervisor types it
  on their device (`POST /pads/pairings/{id}/confirm`) and only a match binds the key to the
  window; a mismatch voids the pairing.

`check_rating` (rating_check.py) then verifies every `source: "pad"` rating against the bound
key. See docs/pad.md for the threat model and docs/hall-api.md ("Evaluator pads").
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from hall_server import schema as t
from hall_server.core import JSON, Hall, hall_of, json_response, load_window, mutate, require_role
from hall_server.db import Tx, iso_ms, now_ms
from hall_server.deps import Auth, IdPath, WinNo
from hall_server.errors import ApiError
from hall_server.pad_guard import check_host
from hall_server.queue import acting_window
from hall_server.rating_check import (
    ALG,
    _err,
    b64u,
    challenge_state,
    fingerprint,
    heartbeat_message,
    unb64u,
    verify_signature,
)

log = logging.getLogger("hall_server")
router = APIRouter(prefix="/api/v1", tags=["pads"])
pad_router = APIRouter(include_in_schema=False)  # the pad's own routes, outside /api/v1

# ---- pairing ---------------------------------------------------------------------------------
def _code_hash(pairing_id: str, code: str) -> str:
    return hashlib.sha256(f"{pairing_id}:{code}".encode()).hexdigest()


def _pad_json(r: Any) -> JSON:
    return {
        "pad_id": r["pad_id"], "window_no": int(r["window_no"]), "alg": r["alg"],
        "public_key": r["public_key"], "paired_at": iso_ms(r["paired_ms"]),
        "paired_by": r["paired_by"], "last_counter": int(r["last_counter"]),
        "gaps": int(r["gaps"]),
        "last_seen_at": iso_ms(r["last_seen_ms"]) if r["last_seen_ms"] else None,
    }


def pair_url(request: Request, token: str) -> str:
    """The pad page on the hall server with the one-time token in the fragment (a fragment
    never reaches a request line or a log)."""
    public = hall_of(request).settings.public_url
    return (public or str(request.base_url)).rstrip("/") + f"/pad/#pair={token}"


def create_pairing(tx: Tx, window_no: int, created_by: str, ttl: int) -> JSON:
    """A one-time pairing for `window_no` (also used by `hall-server pad-pair`)."""
    load_window(tx.conn, window_no)
    now = now_ms()
    pid = "pp_" + secrets.token_urlsafe(9)
    token = b64u(secrets.token_bytes(16))
    code = f"{secrets.randbelow(10**6):06d}"
    tx.conn.execute(t.pad_pairings.insert().values(
        id=pid, token_hash=hashlib.sha256(token.encode()).hexdigest(),
        code_hash=_code_hash(pid, code), window_no=window_no, created_by=created_by,
        created_ms=now, expires_ms=now + ttl * 1000, used_ms=None, code_attempts=0))
    return {"pairing_id": pid, "window_no": window_no, "token": token, "code": code,
            "expires_at": iso_ms(now + ttl * 1000), "expires_in": ttl}


@router.post("/windows/{no}/pads/pairings", status_code=201)
async def start_pairing(request: Request, no: IdPath, p: Auth) -> Response:
    """A one-time pairing: 128-bit token (QR) + 6-digit fallback code, valid a short while.

    For a supervisor or IT on their own device (the /pair/ page, a console, the CLI): never
    through the window PC. Not replayed through Idempotency-Key on purpose: the answer holds
    the secret token, which must not be stored; a retried call makes another pairing.
    """
    require_role(p, "supervisor", "it_admin")
    hall = hall_of(request)
    out = await hall.store.write(
        lambda tx: create_pairing(tx, no, p.staff_no, hall.settings.pad_pairing_seconds))
    out["pair_url"] = pair_url(request, out["token"])
    return json_response(out, status=201)


class RegisterIn(BaseModel):
    token: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    code: Annotated[str, Field(pattern=r"^[0-9]{6}$")] | None = None
    window_no: WinNo | None = None
    pad_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
    public_key: Annotated[str, Field(min_length=40, max_length=64)]
    alg: Literal["Ed25519"] = "Ed25519"


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


def _status(pr: Any, now: int, confirm_ms: int) -> str:
    if pr["confirmed_ms"] is not None:
        return "confirmed"
    if pr["rejected_ms"] is not None:
        return "rejected"
    if pr["used_ms"] is None:
        return "waiting" if pr["expires_ms"] > now else "expired"
    return "registered" if now < int(pr["used_ms"]) + confirm_ms else "expired"


def pairing_json(pr: Any, now: int, confirm_ms: int) -> JSON:
    key = pr["public_key"]
    return {"pairing_id": pr["id"], "window_no": int(pr["window_no"]),
            "status": _status(pr, now, confirm_ms), "pad_id": pr["pad_id"],
            "fingerprint": fingerprint(key) if key else None,
            "expires_at": iso_ms(pr["expires_ms"]), "created_by": pr["created_by"]}


@pad_router.post("/pad/api/pair")
async def register_pad(request: Request, body: RegisterIn) -> Response:
    """The pad itself (no staff session: the window PC is not in the path) presents the token
    or the code and its public key. The key is NOT bound yet: it waits for a supervisor to
    confirm, on their own device, that the fingerprint the pad shows is the one received."""
    check_host(request)
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
            t.pad_pairings.c.id == pr["id"], t.pad_pairings.c.used_ms.is_(None)).values(
            used_ms=now, pad_id=body.pad_id, public_key=body.public_key)).rowcount
        if n != 1:
            raise _err(403, "pairing_invalid", {"reason": "used"})
        row = conn.execute(select(t.pad_pairings).where(t.pad_pairings.c.id == pr["id"])).mappings().one()
        return pairing_json(row, now, hall.settings.pad_confirm_seconds * 1000)

    log.info("pad %s registered a key for a pairing; waiting for the supervisor", body.pad_id)
    return json_response(await hall.store.write(fn))


@pad_router.get("/pad/api/pair-status")
async def pair_status(request: Request, pairing_id: Annotated[str, Query(max_length=40)],
                      pad_id: Annotated[str, Query(max_length=64)],
                      t_: Annotated[int, Query(alias="t", ge=0, le=2**53)],
                      sig: Annotated[str, Query(max_length=200)]) -> Response:
    """The registering pad asks whether its pairing was confirmed, proving it holds the key."""
    check_host(request)
    hall = hall_of(request)
    pr = await hall.store.read(lambda c: c.execute(select(t.pad_pairings).where(
        t.pad_pairings.c.id == pairing_id)).mappings().first())
    if (pr is None or pr["pad_id"] != pad_id or not pr["public_key"]
            or not verify_signature(pr["public_key"], heartbeat_message(pad_id, t_), sig)):
        raise _err(403, "pad_proof_required")
    out = pairing_json(pr, now_ms(), hall.settings.pad_confirm_seconds * 1000)
    return json_response({k: out[k] for k in ("pairing_id", "window_no", "status", "fingerprint")})


def load_pairing(conn: Connection, pairing_id: str) -> Any:
    pr = conn.execute(select(t.pad_pairings).where(t.pad_pairings.c.id == pairing_id)).mappings().first()
    if pr is None:
        raise ApiError(404, "not_found", {"pairing_id": pairing_id})
    return pr


@router.get("/pads/pairings/{pairing_id}")
async def get_pairing(request: Request, pairing_id: Annotated[str, PathParam(max_length=40)],
                      p: Auth) -> Response:
    """What the supervisor's device shows: the fingerprint of the key the server received."""
    require_role(p, "supervisor", "it_admin")
    hall = hall_of(request)
    pr = await hall.store.read(lambda c: load_pairing(c, pairing_id))
    return json_response(pairing_json(pr, now_ms(), hall.settings.pad_confirm_seconds * 1000))


class ConfirmIn(BaseModel):
    fingerprint: Annotated[str, Field(min_length=1, max_length=40)]


def normalise_fingerprint(text: str) -> str:
    clean = "".join(ch for ch in text.upper() if ch in "0123456789ABCDEF")
    return "-".join(clean[i:i + 4] for i in range(0, len(clean), 4))


def confirm(tx: Tx, pairing_id: str, typed: str, staff_no: str,
            confirm_ms: int) -> tuple[JSON, ApiError | None]:
    """Bind the registered key if `typed` (read off the pad's screen) is its fingerprint; a
    mismatch voids the pairing (a key swapped on the way never gets a second try)."""
    conn = tx.conn
    now = now_ms()
    pr = load_pairing(conn, pairing_id)
    status = _status(pr, now, confirm_ms)
    if status != "registered":
        if status == "waiting":
            raise _err(409, "pairing_not_registered", {"pairing_id": pairing_id})
        raise _err(403, "pairing_invalid", {"reason": status})
    if not hmac.compare_digest(normalise_fingerprint(typed), fingerprint(pr["public_key"])):
        conn.execute(t.pad_pairings.update().where(t.pad_pairings.c.id == pairing_id)
                     .values(rejected_ms=now))
        return {}, _err(409, "fingerprint_mismatch", {"pairing_id": pairing_id})
    no = int(pr["window_no"])
    pad_id = pr["pad_id"]
    conn.execute(t.pad_pairings.update().where(t.pad_pairings.c.id == pairing_id)
                 .values(confirmed_ms=now, confirmed_by=staff_no))
    conn.execute(t.pads.update().where(
        t.pads.c.window_no == no, t.pads.c.unpaired_ms.is_(None), t.pads.c.pad_id != pad_id,
    ).values(unpaired_ms=now))
    old = conn.execute(select(t.pads).where(t.pads.c.pad_id == pad_id)).mappings().first()
    values = {"window_no": no, "public_key": pr["public_key"], "alg": ALG,
              "paired_ms": now, "paired_by": staff_no, "unpaired_ms": None}
    if old is None:
        conn.execute(t.pads.insert().values(pad_id=pad_id, last_counter=0, gaps=0, **values))
    else:
        if old["public_key"] != pr["public_key"]:
            values["last_counter"] = 0  # a new key: its counter starts afresh
        conn.execute(t.pads.update().where(t.pads.c.pad_id == pad_id).values(**values))
    row = conn.execute(select(t.pads).where(t.pads.c.pad_id == pad_id)).mappings().one()
    return _pad_json(row), None


@router.post("/pads/pairings/{pairing_id}/confirm")
async def confirm_pairing(request: Request, pairing_id: Annotated[str, PathParam(max_length=40)],
                          body: ConfirmIn, p: Auth) -> Response:
    require_role(p, "supervisor", "it_admin")
    hall = hall_of(request)
    out = await confirm_or_raise(hall, pairing_id, body.fingerprint, p.staff_no)
    log.info("pad pairing %s confirmed by %s", pairing_id, p.staff_no)
    return json_response(out)


async def confirm_or_raise(hall: Hall, pairing_id: str, typed: str, staff_no: str) -> JSON:
    """`confirm` in a write transaction; the mismatch is committed (the pairing is void) and
    then raised."""
    out, err = await hall.store.write(
        lambda tx: confirm(tx, pairing_id, typed, staff_no, hall.settings.pad_confirm_seconds * 1000))
    if err is not None:
        log.warning("pad pairing %s: fingerprint mismatch (typed by %s); pairing void", pairing_id, staff_no)
        raise err
    return out


@router.post("/pads/pairings/{pairing_id}/reject", status_code=204)
async def reject_pairing(request: Request, pairing_id: Annotated[str, PathParam(max_length=40)],
                         p: Auth) -> Response:
    require_role(p, "supervisor", "it_admin")

    def fn(tx: Tx) -> None:
        load_pairing(tx.conn, pairing_id)
        tx.conn.execute(t.pad_pairings.update().where(
            t.pad_pairings.c.id == pairing_id, t.pad_pairings.c.confirmed_ms.is_(None))
            .values(rejected_ms=now_ms()))

    await hall_of(request).store.write(fn)
    return Response(status_code=204)


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


@router.get("/cases/{case_id}/rating-status", tags=["ratings"])
async def rating_status(request: Request, case_id: IdPath, p: Auth) -> Response:
    """How the desk learns the outcome of the rating it opened, without seeing the pad's traffic:
    rated or not, and how (`assurance`), never the level."""
    hall = hall_of(request)

    def fn(conn: Connection) -> JSON:
        case = conn.execute(select(t.cases).where(t.cases.c.id == case_id)).mappings().first()
        if case is None:
            raise ApiError(404, "not_found", {"case_id": case_id})
        acting_window(p, int(case["window_no"]))
        r = conn.execute(select(t.ratings.c.id, t.ratings.c.source, t.ratings.c.assurance)
                         .where(t.ratings.c.case_id == case_id)).first()
        ch = conn.execute(select(t.rating_challenges)
                          .where(t.rating_challenges.c.case_id == case_id)).mappings().first()
        state = challenge_state(ch, r is not None, now_ms(), hall.settings.pad_rating_seconds * 1000)
        return {"case_id": case_id, "state": state, "rated": r is not None,
                "rating_id": r[0] if r else None, "source": r[1] if r else None,
                "assurance": r[2] if r else None}

    return json_response(await hall.store.read(fn))
