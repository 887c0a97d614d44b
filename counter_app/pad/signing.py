"""The signed rating message, shared by the desk's check and the tests (the server has its own
copy in hall_server/rating_check.py, which never imports counter_app; a test holds the two equal).

The heartbeat proof (``heartbeat_message``) is the pad's signature over
"hall-pad-heartbeat-v1\n<pad_id>\n<pad_time ms>".

Message: UTF-8 JSON, keys sorted, no spaces, reasons sorted, `purpose` "hall-rating-v1",
`pad_time` the pad's clock in integer epoch milliseconds (the rating's `rated_at`). The pad page
builds the same bytes with JSON.stringify over an object whose keys are inserted in that order.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PURPOSE = "hall-rating-v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_B64U = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    """Strict base64url without padding; ValueError otherwise."""
    if not isinstance(text, str) or not text or not set(text) <= _B64U:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


def epoch_ms(dt: datetime) -> int:
    """Exact integer milliseconds of an aware datetime (no float rounding)."""
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def iso_from_ms(ms: int) -> str:
    """What the pad page's `new Date(ms).toISOString()` gives."""
    dt = _EPOCH + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def canonical_message(*, rating_id: str, pad_id: str, window_no: int, case_id: int,
                      challenge: str, level: str, reasons: Sequence[str], comment: str,
                      pad_counter: int, pad_time: int) -> bytes:
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


HEARTBEAT_PURPOSE = "hall-pad-heartbeat-v1"


def heartbeat_message(pad_id: str, pad_time: int) -> bytes:
    """What the paired pad signs on each state poll: proves the poll is the pad's own (the desk
    checks it with the key registered at pairing) so a visitor's browser cannot pose as it."""
    return f"{HEARTBEAT_PURPOSE}\n{pad_id}\n{pad_time}".encode()


def verify(public_key_b64: str, message: bytes, signature_b64: str) -> bool:
    """True when `signature_b64` is a valid Ed25519 signature of `message` by the key."""
    try:
        key = Ed25519PublicKey.from_public_bytes(unb64u(public_key_b64))
        sig = unb64u(signature_b64)
        if len(sig) != 64:
            return False
        key.verify(sig, message)
        return True
    except (ValueError, InvalidSignature):
        return False
