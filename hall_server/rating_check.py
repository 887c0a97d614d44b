"""The check of a rating before it is stored: the pad's Ed25519 signature over the canonical
message, the case's open challenge, the pad's growing counter, and the rule that where a pad is
paired nothing unsigned is accepted. Pure SQLAlchemy Core and cryptography, no FastAPI: the
ratings route and the pad routes both use it (see hall_server/pads.py for pairing)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, select

from hall_server import schema as t
from hall_server.errors import ApiError

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
    "fingerprint_mismatch": ("评价器指纹与服务器收到的不一致，配对已作废",
                             "The pad's fingerprint does not match the key the server received; "
                             "the pairing is void"),
    "pairing_not_registered": ("评价器尚未登记密钥", "No pad has registered a key for this pairing yet"),
    "pad_proof_required": ("评价器身份验证失败", "The pad's proof is missing or not valid"),
    "case_not_completed": ("办件尚未办结，不能评价", "The case is not completed yet"),
    "case_already_rated": ("本次服务已评价", "The case has already been rated"),
    "rating_open": ("评价器上的评价尚未结束", "A rating on the pad is still open for this case"),
    "rating_closed": ("本次服务的现场评价已结束", "The on-the-spot rating for this case is over"),
    "pad_paired": ("本窗口已配对评价器：稍后评价链接只在评价器上显示",
                   "A pad is paired at this window: the rate-later link is shown on the pad only"),
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


KEY_PURPOSE = "hall-pad-key-v1"
HEARTBEAT_PURPOSE = "hall-pad-heartbeat-v1"


def fingerprint(public_key_b64: str) -> str:
    """The short fingerprint the pad shows and the supervisor compares (64 bits, 4 groups of 4
    hex digits): SHA-512 (tweetnacl's nacl.hash on the pad) of "hall-pad-key-v1\n<key>"."""
    digest = hashlib.sha512(f"{KEY_PURPOSE}\n{public_key_b64}".encode()).hexdigest()[:16].upper()
    return "-".join(digest[i:i + 4] for i in range(0, 16, 4))


def heartbeat_message(pad_id: str, pad_time: int) -> bytes:
    """What the pad signs to prove a request is its own (state polls, its link and photo)."""
    return f"{HEARTBEAT_PURPOSE}\n{pad_id}\n{pad_time}".encode()


def challenge_state(ch: Any, rated: bool, now: int, open_ms: int) -> str:
    """"rated" | "open" (a pad may still answer) | "closed" (over: rate later) | "none"."""
    if rated:
        return "rated"
    if ch is None:
        return "none"
    if ch["closed_ms"] is None and now < int(ch["issued_ms"]) + open_ms:
        return "open"
    return "closed"


def open_challenge(conn: Connection, case: Any, now: int) -> Any:
    """The case's rating challenge, opened (or re-opened for a new period) now.

    Only for a case that is not rated and whose on-the-spot rating was not given up (a
    rate-later link closed it): the pad shows the request while it is open. The desk may ask
    while still serving (F10); a rate-later link, though, needs the case completed."""
    import secrets

    if conn.execute(select(t.ratings.c.id).where(t.ratings.c.case_id == case["id"])).first() is not None:
        raise _err(409, "case_already_rated", {"case_id": case["id"]})
    ch = conn.execute(select(t.rating_challenges)
                      .where(t.rating_challenges.c.case_id == case["id"])).mappings().first()
    if ch is None:
        conn.execute(t.rating_challenges.insert().values(
            case_id=case["id"], challenge=secrets.token_urlsafe(16), issued_ms=now))
    elif ch["closed_ms"] is not None:
        raise _err(409, "rating_closed", {"case_id": case["id"]})
    else:  # asked again (F10): the same challenge, shown for a new period
        conn.execute(t.rating_challenges.update()
                     .where(t.rating_challenges.c.case_id == case["id"]).values(issued_ms=now))
    return conn.execute(select(t.rating_challenges)
                        .where(t.rating_challenges.c.case_id == case["id"])).mappings().one()


def close_challenge(conn: Connection, case_id: int, now: int) -> None:
    """The on-the-spot rating is over (a rate-later link was handed out): no pad rating after."""
    ch = conn.execute(select(t.rating_challenges)
                      .where(t.rating_challenges.c.case_id == case_id)).mappings().first()
    if ch is None:
        conn.execute(t.rating_challenges.insert().values(
            case_id=case_id, challenge="closed", issued_ms=now, closed_ms=now))
    elif ch["closed_ms"] is None:
        conn.execute(t.rating_challenges.update()
                     .where(t.rating_challenges.c.case_id == case_id).values(closed_ms=now))


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
