"""Passwords (argon2), signed access tokens, the server secret, refresh tokens, device secrets,
and the sign-in limits kept in the database.

Access tokens are HMAC-SHA256 signed with the server secret, which lives OUTSIDE the database
(a 0600 file, `secret.key` in the data folder or `HALL_SECRET_FILE`): whoever reads the
database cannot mint a token. A token carries its session id; the database stores only a hash
of it (`session_key`), and every request compares the token's staff and role with the session's
row (deps.principal, one indexed query), so a sign-out, a disabled account or a window taken
over is seen by every server process at once. Sign-in attempts are counted in the database
BEFORE the password is checked (per staff number, per address, hall-wide; `count_attempt`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Connection

from hall_server.db import run
from hall_server.errors import ApiError

log = logging.getLogger("hall_server.security")

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
        self.fingerprint_key = self.derive(b"hall-idempotency-fingerprint-v1")
        # Seals replies that carry credentials in the idempotency table (core.mutate); shared
        # by every process of the hall, so a replay may land on any of them.
        self.replay_key = base64.urlsafe_b64encode(self.derive(b"hall-idempotency-replay-v1"))
        # Encrypts uploaded documents at rest (documents.py).
        self.documents_key = self.derive(b"hall-documents-v1")

    def seal_sid(self, sid: str) -> str:
        """The session id as the database may keep it (to issue refreshed tokens): sealed."""
        return Fernet(self.replay_key).encrypt(b"sid:" + sid.encode()).decode()

    def unseal_sid(self, sealed: str) -> str | None:
        try:
            raw = Fernet(self.replay_key).decrypt(sealed.encode())
        except InvalidToken:
            return None
        return raw[4:].decode() if raw.startswith(b"sid:") else None

    def derive(self, label: bytes) -> bytes:
        return hmac.new(self._key, label, hashlib.sha256).digest()

    @property
    def key(self) -> bytes:
        return self._key

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


def session_key(sid: str) -> str:
    """What the database stores for a session id: a hash, so the table holds no usable id."""
    return hashlib.sha256(sid.encode()).hexdigest()[:40]


# ---- the server secret, outside the database ----------------------------------------------
KEY_CHECK_LABEL = b"hall-secret-check-v1"


class SecretMismatch(RuntimeError):
    """This process's secret is not the one the other servers of this database use."""


def secret_path(data_dir: Path, secret_file: Path | None) -> Path:
    env = os.environ.get("HALL_SECRET_FILE")
    if secret_file is not None:
        return Path(secret_file)
    if env:
        return Path(env)
    return Path(data_dir) / "secret.key"


def read_or_create_secret(path: Path, legacy: bytes | None) -> bytes:
    """The 32-byte secret in `path` (base64, mode 0600); made once, atomically (several worker
    processes may start at the same moment: O_EXCL picks one writer, the others read its file).
    `legacy` (the key an older version kept in the database) is what a new file gets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(50):
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            pass
        else:
            if text:
                key = base64.b64decode(text)
                if len(key) < 32:
                    raise SecretMismatch(f"{path}: the secret must be 32 bytes (base64)")
                if os.stat(path).st_mode & 0o077:
                    os.chmod(path, 0o600)
                return key
            time.sleep(0.05)  # another process is writing it
            continue
        key = legacy or secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(base64.b64encode(key).decode() + "\n")
            f.flush()
            os.fsync(f.fileno())
        log.info("server secret written to %s%s", path, " (moved out of the database)" if legacy else "")
        return key
    raise SecretMismatch(f"{path}: empty secret file")


# ---- sign-in limits in the database --------------------------------------------------------
# `rate_limits`: one row per bucket, the failures `n` in a fixed window from its first attempt.
# `rate_pending`: one row per bucket for each sign-in being checked right now. An attempt is
# admitted only if failures + attempts in flight stay within the limit, decided under the
# bucket row's lock, BEFORE the slow password check: 20 parallel guesses get 5 checks, not 20.
# An attempt in flight whose server died leaves a pending row that stops counting after
# PENDING_S (far longer than a password check), so a crash never locks anybody out.
PENDING_S = 60

_TOUCH_SQL = (
    "INSERT INTO rate_limits (bucket, window_start_ms, n) VALUES (:b, :now, 0) "
    "ON CONFLICT (bucket) DO UPDATE SET "
    "n = CASE WHEN rate_limits.window_start_ms <= :cut THEN 0 ELSE rate_limits.n END, "
    "window_start_ms = CASE WHEN rate_limits.window_start_ms <= :cut THEN :now "
    "ELSE rate_limits.window_start_ms END "
    "RETURNING n, window_start_ms"
)
_PENDING_SQL = "SELECT count(*) FROM rate_pending WHERE bucket = :b AND at_ms > :stale"


@dataclass(frozen=True)
class LoginLimits:
    per_staff: int
    per_address: int
    hall_wide: int
    window_s: int


def login_buckets(staff_no: str, address: str) -> list[str]:
    # Hall-wide and per address first: a refused attempt stops before the staff number's row,
    # so invented staff numbers make rows only while those two limits allow.
    return ["global", f"addr:{address}"[:120], f"staff:{staff_no}"[:120]]


def count_attempt(conn: Connection, limits: LoginLimits, staff_no: str, address: str, now: int) -> str:
    """Admit one sign-in attempt (before its password is checked) or refuse it with 429, in
    every bucket. Returns the attempt's id for `attempt_done`. On a refusal the caller's
    transaction rolls back, so refused attempts leave no rows."""
    cut = now - limits.window_s * 1000
    attempt = secrets.token_hex(8)
    caps = [limits.hall_wide, limits.per_address, limits.per_staff]
    for bucket, cap in zip(login_buckets(staff_no, address), caps, strict=True):
        # The upsert locks the bucket row (PostgreSQL) until COMMIT: concurrent attempts on the
        # same bucket are decided one after another. SQLite has one writer anyway.
        n, start = run(conn, _TOUCH_SQL, {"b": bucket, "now": now, "cut": cut}).first()
        pending = int(run(conn, _PENDING_SQL, {"b": bucket, "stale": now - PENDING_S * 1000}).scalar() or 0)
        if int(n) + pending >= cap:
            retry = max(1, int((int(start) + limits.window_s * 1000 - now) / 1000) + 1)
            if int(n) < cap:  # only attempts in flight: they are decided within seconds
                retry = 2
            log.warning("sign-in refused: %s over its limit of %d", bucket.split(":")[0], cap)
            raise ApiError(429, "too_many_attempts", {"retry_after": retry},
                           headers={"Retry-After": str(retry)})
        run(conn, "INSERT INTO rate_pending (attempt, bucket, at_ms) VALUES (:a, :b, :now)",
            {"a": attempt, "b": bucket, "now": now})
    return attempt


def attempt_done(conn: Connection, attempt: str, staff_no: str, address: str, *, ok: bool) -> None:
    """The password was checked: a failure counts in every bucket; a success forgives the
    staff number's failures. Either way the attempt is no longer in flight."""
    glob, addr, staff = login_buckets(staff_no, address)
    if ok:
        run(conn, "DELETE FROM rate_limits WHERE bucket = :b", {"b": staff})
    else:
        for b in (glob, addr, staff):
            run(conn, "UPDATE rate_limits SET n = n + 1 WHERE bucket = :b", {"b": b})
    run(conn, "DELETE FROM rate_pending WHERE attempt = :a", {"a": attempt})


def prune_limits(conn: Connection, window_s: int, now: int) -> int:
    """Rows whose window is over count nothing, nor do attempts in flight past PENDING_S:
    deleted (the tables stay bounded)."""
    n = run(conn, "DELETE FROM rate_limits WHERE window_start_ms <= :cut",
            {"cut": now - window_s * 1000}).rowcount or 0
    run(conn, "DELETE FROM rate_pending WHERE at_ms <= :stale", {"stale": now - PENDING_S * 1000})
    return int(n)
