"""The reference server's upload when the last chunk's transaction fails (a real SQLite
trigger makes the document insert abort): nothing is lost, the file stays where a retry finds
it, the retried chunk completes the upload, and later PATCH/HEAD calls answer its state."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

from sqlalchemy import create_engine, text

from hall_server.documents import open_records
from tests.support.server_fixtures import RunningServer, signed_in


def _sql(server: RunningServer, *statements: str) -> None:
    eng = create_engine(server.db_url)
    try:
        with eng.begin() as c:
            for s in statements:
                c.execute(text(s))
    finally:
        eng.dispose()


def _chunk(api: Any, uid: str, offset: int, data: bytes) -> Any:
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    return api.s.patch(f"{api.url}/api/v1/uploads/{uid}", data=data, timeout=30, headers=api.headers(extra={
        "Upload-Offset": str(offset), "Upload-Checksum": f"sha256 {digest}",
        "Content-Type": "application/offset+octet-stream", "Tus-Resumable": "1.0.0"}))


def test_a_failed_last_commit_loses_nothing_and_the_retry_completes(fresh_hall_server: RunningServer) -> None:
    srv = fresh_hall_server
    w1 = signed_in(srv.url, "1001", 1)
    cat = w1.get("/windows/1").json()["categories"][0]
    tk = w1.post("/tickets", json={"category": cat}).json()
    assert w1.post(f"/tickets/{tk['id']}/call", json={"window_no": 1}).status_code == 200
    case = w1.post(f"/tickets/{tk['id']}/start").json()["case"]["id"]
    data = os.urandom(1000)
    sha = hashlib.sha256(data).hexdigest()
    r = w1.post(f"/cases/{case}/documents", json={"item_id": "x", "filename": "a.pdf",
                                                   "content_type": "application/pdf", "size": len(data),
                                                   "sha256": sha})
    assert r.status_code == 201, r.text
    uid = r.json()["upload_id"]
    assert _chunk(w1, uid, 0, data[:600]).status_code == 204
    _sql(srv, "CREATE TRIGGER fail_doc BEFORE INSERT ON documents "
              "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END")
    r = _chunk(w1, uid, 600, data[600:])
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error", r.text
    _sql(srv, "DROP TRIGGER fail_doc")
    head = w1.head(f"/uploads/{uid}")
    assert head.status_code == 200 and head.headers["Upload-Offset"] == "600"
    # The rolled-back chunk is simply sent again: the bytes are still where the upload keeps them.
    r = _chunk(w1, uid, 600, data[600:])
    assert r.status_code == 204 and r.headers["Upload-Offset"] == "1000", r.text
    status = w1.get(f"/uploads/{uid}").json()
    assert status["complete"] and status["receipt"]["sha256"] == sha
    doc = srv.data_dir / "documents" / status["receipt"]["document_id"]
    assert data not in doc.read_bytes()  # stored encrypted ...
    key = srv._server.config.app.state.hall.signer.documents_key
    assert b"".join(open_records(key, uid, doc, doc.stat().st_size)) == data  # ... and whole
    assert not (srv.data_dir / "uploads" / uid).exists()
    # Later calls on the completed upload answer its state.
    r = _chunk(w1, uid, 600, data[600:])
    assert r.status_code == 409 and r.json()["error"]["code"] == "upload_complete", r.text
    head = w1.head(f"/uploads/{uid}")
    assert head.status_code == 200 and head.headers["Upload-Offset"] == "1000"
