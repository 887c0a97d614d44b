"""Helpers shared by the server security tests: a completed case at a window, raw SQL on the
test server's database, and the running app's `Hall` (for the few checks of process memory)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from sqlalchemy import create_engine, text

from tests.support.server_fixtures import Api, RunningServer


def sql(server: RunningServer, statement: str, **params: Any) -> list[Any]:
    eng = create_engine(server.db_url)
    try:
        with eng.begin() as c:
            res = c.execute(text(statement), params)
            return list(res.all()) if res.returns_rows else []
    finally:
        eng.dispose()


def hall_of(server: RunningServer) -> Any:
    return server._server.config.app.state.hall


def started_case(desk: Api, window_no: int) -> tuple[int, int]:
    """(ticket id, case id) of a ticket called and started at `window_no` (still being served)."""
    cat = desk.get(f"/windows/{window_no}").json()["categories"][0]
    tk = desk.post("/tickets", json={"category": cat}).json()
    r = desk.post(f"/tickets/{tk['id']}/call", json={"window_no": window_no})
    assert r.status_code == 200, r.text
    started = desk.post(f"/tickets/{tk['id']}/start")
    assert started.status_code == 200, started.text
    return int(tk["id"]), int(started.json()["case"]["id"])


def chunk(api: Api, uid: str, offset: int, data: bytes) -> Any:
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    return api.s.patch(f"{api.url}/api/v1/uploads/{uid}", data=data, timeout=30, headers=api.headers(extra={
        "Upload-Offset": str(offset), "Upload-Checksum": f"sha256 {digest}",
        "Content-Type": "application/offset+octet-stream", "Tus-Resumable": "1.0.0"}))


def error_code(r: Any, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    e = r.json()["error"]
    assert e["message_zh"] and e["message_en"]
    return str(e["code"])
