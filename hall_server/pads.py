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

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from hall_server import schema as t
from hall_server.api import Auth, IdPath, WinNo
from hall_server.core import JSON, hall_of, json_response, load_window, mutate, require_role
from hall_server.db import Tx, iso_ms, now_ms
from hall_server.errors import ApiError

router = APIRouter(prefix="/api/v1", tags=["pads"])

ALG = "Ed25519"
PURPOSE = "hall-rating-v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_MSG: dict[str, tuple[str, str]] = {
    "signature_required": ("本窗口已配对评价器，评价须由评价器签名",
                           "A pad is paired at this window: the rating must be signed by it"),
    "bad_signature": ("评价签名无效", "The rating's signature is not valid"),
    "pad_not_paired": ("评价器未与本窗口配对", "The pad is not paired with this window"),
    "stale_challenge": ("评价凭据已失效或不属于此办件",
                        "The challenge is not the open one for this case"),
    "counter_replayed": ("评价器计数未增长（重放）", "The pad counter did not grow (replay)"),
    "wrong_window": ("办件不属于此窗口", "The case does not belong to this window"),
    "pairing_invalid": ("配对码无效、已使用或已过期", "The pairing token is unknown, used or expired"),
    "bad_pairing_code": ("配对数字码错误或尝试次数过多",
                         "Wrong pairing code, or too many attempts"),
    "bad_public_key": ("评价器公钥无效", "The pad's public key is not valid"),
}


def _err(status: int, code: str, details: dict[str, Any] | None = None) -> ApiError:
    zh, en = _MSG[code]
    return ApiError(status, code, details, message_zh=zh, message_en=en)


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    """Strict base64url (no padding needed); ValueError on anything else."""
    if not text or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                       for c in text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


def epoch_ms(dt: datetime) -> int:
    """Exact integer milliseconds (no float rounding: the pad signed this very number)."""
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def canonical_message(*, rating_id: str, pad_id: str, window_no: int, case_id: int,
                      challenge: str, level: str, reasons: list[str] | tuple[str, ...],
                      comment: str, pad_counter: int, pad_time: int) -> bytes:
    """The bytes a pad signs: UTF-8 JSON, keys sorted, no spaces, reasons sorted.

    JSON.stringify in the pad page produces the same bytes for an object built with its keys
    in this order (both escape only `"`, `\\` and control characters, and leave the rest raw).
    """
    obj = {
        "case_id": case_id,
        "challenge": challenge,
        "comment": comment,
        "level": level,
        "pad_counter": pad_counter,
        "pad_id": pad_id,
        "pad_time": pad_time,
        "purpose": PURPOSE,
        "rating_id": rating_id,
        "reasons": sorted(reasons),
        "window_no": window_no,
    }
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


def verify_signature(public_key_b64: str, message: bytes, signature_b64: str) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(unb64u(public_key_b64))
        sig = unb64u(signature_b64)
        if len(sig) != 64:
            return False
        key.verify(sig, message)
        return True
    except (ValueError, InvalidSignature):
        return False


# ---- the rating check (called by api.submit_rating inside its transaction) -------------------
def paired_pad(conn: Connection, window_no: int) -> Any:
    return conn.execute(
        select(t.pads).where(t.pads.c.window_no == window_no, t.pads.c.unpaired_ms.is_(None))
    ).mappings().first()


def check_rating(conn: Connection, body: Any, now: int) -> str:
    """Raise ApiError unless the rating may be stored; return its assurance level.

    Runs in the rating's write transaction, so the counter advance, the challenge closing and a
    gap flag commit together with the rating (or not at all).
    """
    # Every rating, signed or not, is for a case of the rating's window (the caller acts for
    # that window: api.submit_rating checked it).
    case_window = conn.execute(
        select(t.cases.c.window_no).where(t.cases.c.id == body.case_id)
    ).scalar()
    if case_window != body.window_no:
        raise _err(403, "wrong_window", {"case_window_no": case_window})
    if body.source != "pad":
        # The window PC relays second-screen and serial ratings too: where a pad is paired,
        # anything the PC could make up is refused, not stored as "unsigned".
        if paired_pad(conn, body.window_no) is not None:
            raise _err(403, "signature_required", {"window_no": body.window_no})
        return "unsigned"
    if not body.pad_id or not body.signature or not body.challenge or body.pad_counter is None:
        raise _err(403, "signature_required", {"window_no": body.window_no})
    pad = conn.execute(select(t.pads).where(t.pads.c.pad_id == body.pad_id)).mappings().first()
    if pad is None or pad["unpaired_ms"] is not None or pad["window_no"] != body.window_no:
        raise _err(403, "pad_not_paired", {"pad_id": body.pad_id})
    try:
        msg = canonical_message(
            rating_id=body.id, pad_id=body.pad_id, window_no=body.window_no,
            case_id=body.case_id, challenge=body.challenge, level=body.level,
            reasons=list(body.reasons), comment=body.comment, pad_counter=body.pad_counter,
            pad_time=epoch_ms(body.rated_at),
        )
    except UnicodeEncodeError:  # a lone surrogate cannot have been signed as UTF-8
        raise _err(403, "bad_signature") from None
    if not verify_signature(pad["public_key"], msg, body.signature):
        raise _err(403, "bad_signature")
    ch = conn.execute(
        select(t.rating_challenges).where(t.rating_challenges.c.case_id == body.case_id)
    ).mappings().first()
    if (ch is None or ch["closed_ms"] is not None
            or not hmac.compare_digest(ch["challenge"], body.challenge)):
        raise _err(409, "stale_challenge", {"case_id": body.case_id})
    last = int(pad["last_counter"])
    if body.pad_counter <= last:
        raise _err(409, "counter_replayed", {"last_counter": last})
    values: dict[str, Any] = {"last_counter": body.pad_counter}
    if body.pad_counter > last + 1:
        # Counters the pad used that never reached us: ratings the PC may have dropped.
        values["gaps"] = int(pad["gaps"]) + 1
        conn.execute(t.pad_flags.insert().values(
            pad_id=body.pad_id, window_no=body.window_no, kind="counter_gap", rating_id=body.id,
            details=json.dumps({"expected": last + 1, "got": body.pad_counter}), at_ms=now))
    conn.execute(t.pads.update().where(t.pads.c.pad_id == body.pad_id).values(**values))
    conn.execute(t.rating_challenges.update()
                 .where(t.rating_challenges.c.case_id == body.case_id).values(closed_ms=now))
    return "signed"


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
