"""The idempotency fingerprint the reference server stores for a request is keyed with the
server's secret: for `/auth/login` the body holds the password, so a plain SHA-256 of it in the
permanent idempotency table would let anyone with a copy of the database guess passwords
offline at hash speed. Replays and mismatches still behave as before."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.support.server_fixtures import Api, RunningServer, start_server_thread


def _fingerprint(server: RunningServer, key: str) -> str:
    eng = create_engine(server.db_url)
    try:
        with eng.connect() as c:
            return str(c.execute(text("SELECT fingerprint FROM idempotency_keys WHERE key = :k"),
                                 {"k": key}).scalar_one())
    finally:
        eng.dispose()


def _login(server: RunningServer, key: str, body: bytes) -> int:
    api = Api(server.url)
    r = api.s.post(server.url + "/api/v1/auth/login", data=body, timeout=30,
                   headers={"Idempotency-Key": key, "Content-Type": "application/json"})
    return int(r.status_code)


def test_login_fingerprint_is_keyed_by_the_server_secret(hall_server: RunningServer, tmp_path: Path) -> None:
    body = b'{"staff_no":"1012","password":"demo1234"}'
    key = str(uuid.uuid4())
    assert _login(hall_server, key, body) == 200
    stored = _fingerprint(hall_server, key)
    plain = hashlib.sha256(b"POST\0/api/v1/auth/login?\0" + body).hexdigest()
    assert stored != plain
    assert hashlib.sha256(body).hexdigest() != stored
    # Another server (another secret) fingerprints the very same request differently.
    other = start_server_thread(data_dir=tmp_path / "other", demo=True)
    try:
        assert _login(other, key, body) == 200
        assert _fingerprint(other, key) != stored
    finally:
        other.stop()
    # Same key, same request: replayed; same key, another body: refused.
    api = Api(hall_server.url)
    r = api.s.post(hall_server.url + "/api/v1/auth/login", data=body, timeout=30,
                   headers={"Idempotency-Key": key, "Content-Type": "application/json"})
    assert r.status_code == 200 and r.headers.get("Idempotent-Replayed") == "true"
    r = api.s.post(hall_server.url + "/api/v1/auth/login", data=body.replace(b"1012", b"1001"),
                   timeout=30, headers={"Idempotency-Key": key, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_mismatch"
