"""Finding 9: whoever can read the database cannot mint a token. The signing key lives outside
the database (a 0600 file or HALL_SECRET_FILE), session ids are stored hashed, and a token's
staff and role must match its session's row. Server files are 0600, folders 0700."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import time
from pathlib import Path

from tests.security.server_helpers import hall_of, sql
from tests.support.server_fixtures import Api, RunningServer, signed_in, start_server_thread


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _forge(key: bytes, staff_no: str, role: str, sid: str) -> str:
    body = _b64(json.dumps({"s": staff_no, "r": role, "w": None, "sid": sid,
                            "exp": int(time.time()) + 600}, separators=(",", ":")).encode())
    return f"v1.{body}.{_b64(hmac.new(key, body.encode(), hashlib.sha256).digest())}"


def _sid(token: str) -> str:
    body = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["sid"])


def test_reading_the_database_mints_no_it_token(fresh_hall_server: RunningServer) -> None:
    srv = fresh_hall_server
    clerk = signed_in(srv.url, "1002", 2)
    # Everything a reader of the database file gets: every meta value and every session id.
    metas = [str(v) for (v,) in sql(srv, "SELECT value FROM meta")]
    sids = [str(s) for (s,) in sql(srv, "SELECT id FROM sessions")]
    assert _sid(clerk.token or "") not in sids  # before: stored as issued
    minted = 0
    for value in metas:
        try:
            key = base64.b64decode(value, validate=True)
        except ValueError:
            continue
        for sid in sids + [_sid(clerk.token or "")]:
            forged = Api(srv.url, _forge(key, "9001", "it_admin", sid))
            if forged.s.patch(srv.url + "/api/v1/admin/staff/1002", json={},
                              headers=forged.headers()).status_code == 200:
                minted += 1
    assert minted == 0  # before: the meta row `token_key` signed an IT token at once


def test_the_role_comes_from_the_session_not_the_token(fresh_hall_server: RunningServer) -> None:
    srv = fresh_hall_server
    clerk = signed_in(srv.url, "1002", 2)
    hall = hall_of(srv)
    from hall_server.security import Principal

    # A token with a valid signature but a role and staff its session does not have (as a
    # leaked key or a signing bug would make).
    raised = hall.signer.issue(Principal("1002", "it_admin", None, _sid(clerk.token or "")))
    r = Api(srv.url, raised).s.patch(srv.url + "/api/v1/admin/staff/1003", json={},
                                     headers={"Authorization": f"Bearer {raised}"})
    assert r.status_code == 401, r.text  # before: 200
    other = hall.signer.issue(Principal("8001", "supervisor", None, _sid(clerk.token or "")))
    assert Api(srv.url, other).get("/me").status_code == 401
    assert clerk.get("/me").status_code == 200


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_server_files_are_private_and_an_old_key_moves_out(tmp_path: Path) -> None:
    data = tmp_path / "hall"
    srv = start_server_thread(data_dir=data, demo=True)
    try:
        signed_in(srv.url, "1001", 1)
        assert _mode(data) == 0o700
        for f in data.iterdir():
            if f.is_file():
                assert _mode(f) & 0o077 == 0, (f.name, oct(_mode(f)))  # before: hall.sqlite3 0644
        key_file = data / "secret.key"
        assert key_file.exists() and _mode(key_file) == 0o600
        assert sql(srv, "SELECT count(*) FROM meta WHERE key = 'token_key'")[0][0] == 0
    finally:
        srv.stop()
    # A database from before this change: the key in `meta`, no key file. The server moves the
    # key out (tokens it signed stay valid) and deletes the row.
    old_key = base64.b64encode(b"k" * 32).decode()
    key_file.unlink()
    sql(srv, "INSERT INTO meta (key, value) VALUES ('token_key', :v)", v=old_key)
    sql(srv, "DELETE FROM meta WHERE key = 'token_key_check'")
    srv = start_server_thread(data_dir=data, demo=True)
    try:
        assert sql(srv, "SELECT count(*) FROM meta WHERE key = 'token_key'")[0][0] == 0
        assert base64.b64decode(key_file.read_text().strip()) == b"k" * 32
        assert _mode(key_file) == 0o600
        signed_in(srv.url, "1001", 1)
    finally:
        srv.stop()
