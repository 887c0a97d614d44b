"""Passwords (argon2), signed access tokens, refresh tokens, device secrets, login limits.

Access tokens are HMAC-SHA256 signed (no database read to check one: the call-next hot path
stays cheap); a session's end (logout) is seen through a small in-process cache of session
state (open, and still holding the window the token names) re-checked against the database
every few seconds, and dropped at once when this process ends or moves a session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hall_server.errors import ApiError

# OWASP's recommended minimum for argon2id (19 MiB, 2 passes): ~0.1 s here, where the
# library default (64 MiB, 3 passes) took 0.7 s per sign-in on these 2-core machines.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# A real hash to compare against when the staff number is unknown, so timing does not tell.
_DUMMY_HASH = _hasher.hash("not-a-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


@dataclass(frozen=True)
class Principal:
    staff_no: str
    role: str
    window_no: int | None
    session_id: str
    # Set (with window_no None) when the token names a window its session no longer holds
    # (the staff signed in again elsewhere, or someone took the window over): such a token
    # acts for no window, and the refusal can say why.
    lost_window_no: int | None = None


class TokenSigner:
    def __init__(self, key: bytes, lifetime_s: int) -> None:
        self._key = key
        self.lifetime_s = lifetime_s
        # Keys for other uses of the server secret, each derived under its own label so one
        # never stands in for another (a fingerprint is not a token signature).
        self.fingerprint_key = hmac.new(key, b"hall-idempotency-fingerprint-v1", hashlib.sha256).digest()

    def issue(self, p: Principal) -> str:
        payload = {
            "s": p.staff_no,
            "r": p.role,
            "w": p.window_no,
            "sid": p.session_id,
            "exp": int(time.time()) + self.lifetime_s,
        }
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        sig = _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
        return f"v1.{body}.{sig}"

    def verify(self, token: str) -> Principal:
        try:
            version, body, sig = token.split(".")
            if version != "v1":
                raise ValueError(version)
            want = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(want, _unb64(sig)):
                raise ValueError("signature")
            payload = json.loads(_unb64(body))
            principal = Principal(
                str(payload["s"]), str(payload["r"]), payload["w"], str(payload["sid"])
            )
            exp = int(payload["exp"])
        except (ValueError, KeyError, TypeError, json.JSONDecodeError):
            raise ApiError(401, "unauthorized") from None
        if exp < time.time():
            raise ApiError(401, "token_expired")
        return principal


class LoginLimiter:
    """At most `limit` failures per staff number in `window_s` seconds (then 429)."""

    def __init__(self, limit: int, window_s: int) -> None:
        self.limit = limit
        self.window_s = window_s
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, staff_no: str) -> None:
        now = time.monotonic()
        with self._lock:
            q = self._fails.get(staff_no)
            if not q:
                return
            while q and q[0] < now - self.window_s:
                q.popleft()
            if len(q) >= self.limit:
                retry = int(q[0] + self.window_s - now) + 1
                raise ApiError(
                    429,
                    "too_many_attempts",
                    {"retry_after": retry},
                    headers={"Retry-After": str(retry)},
                )

    def failed(self, staff_no: str) -> None:
        with self._lock:
            self._fails.setdefault(staff_no, deque()).append(time.monotonic())

    def succeeded(self, staff_no: str) -> None:
        with self._lock:
            self._fails.pop(staff_no, None)


class SessionCache:
    """session id -> (alive, holds its window), re-checked against the database after `ttl` s.

    `forget` drops entries at once (logout, a window taken over) and bumps `epoch`; a state read
    from the database before that is not stored (`put` with the epoch seen before the read), so
    a request racing the change cannot cache the old state for another `ttl`.
    """

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self.epoch = 0
        self._d: dict[str, tuple[tuple[bool, bool], float]] = {}

    def get(self, sid: str) -> tuple[bool, bool] | None:
        hit = self._d.get(sid)
        if hit is None or hit[1] + self.ttl < time.monotonic():
            return None
        return hit[0]

    def put(self, sid: str, state: tuple[bool, bool], epoch: int | None = None) -> None:
        if epoch is not None and epoch != self.epoch:
            return
        if len(self._d) > 10000:
            self._d.clear()
        self._d[sid] = (state, time.monotonic())

    def forget(self, sids: list[str]) -> None:
        self.epoch += 1
        for sid in sids:
            self._d.pop(sid, None)
