"""Credentials never rest in plaintext on the server: a sign-in's reply is kept for idempotent
replay, but sealed, so the permanent idempotency table holds no token a reader could use."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

from tests.support.server_fixtures import DEMO_PASSWORD, Api, RunningServer


def _all_text(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT key, body FROM idempotency_keys").fetchall()
    finally:
        con.close()
    return "\n".join(f"{k} {b}" for k, b in rows)


def test_login_and_refresh_replies_are_replayed_but_not_stored_in_plaintext(
    fresh_hall_server: RunningServer,
) -> None:
    api = Api(fresh_hall_server.url)
    key = str(uuid.uuid4())
    body = {"staff_no": "1002", "password": DEMO_PASSWORD, "window_no": 2}
    first = api.post("/auth/login", json=body, key=key)
    assert first.status_code == 200
    again = api.post("/auth/login", json=body, key=key)
    assert again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["access_token"] == first.json()["access_token"]

    rkey = str(uuid.uuid4())
    refreshed = api.post("/auth/refresh", json={"refresh_token": first.json()["refresh_token"]}, key=rkey)
    assert refreshed.status_code == 200

    stored = _all_text(fresh_hall_server.data_dir / "hall.sqlite3")
    assert key in stored and rkey in stored  # the rows exist ...
    for secret in (first.json()["access_token"], first.json()["refresh_token"],
                   refreshed.json()["access_token"], refreshed.json()["refresh_token"]):
        assert secret not in stored  # ... but hold no usable credential
    # ordinary replies stay readable for reconciliation and support
    tkey = str(uuid.uuid4())
    assert api.post("/tickets", json={"category": "A"}, key=tkey).status_code == 201
    assert '"number"' in _all_text(fresh_hall_server.data_dir / "hall.sqlite3")
