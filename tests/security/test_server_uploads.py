"""Finding 8 and issue 10/12 (documents): PATCHes to invented upload ids hold no memory; another
window can neither read nor continue nor complete an upload; uploaded documents rest encrypted
(key outside the database) in files only the server's user can read."""

from __future__ import annotations

import hashlib
import os
import stat
import uuid
from pathlib import Path

from tests.security.server_helpers import chunk, error_code, hall_of, started_case
from tests.support.server_fixtures import RunningServer, signed_in


def _new_upload(api, case_id: int, data: bytes) -> str:  # type: ignore[no-untyped-def]
    r = api.post(f"/cases/{case_id}/documents", json={
        "item_id": "id-card", "filename": "a.pdf", "content_type": "application/pdf",
        "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    assert r.status_code == 201, r.text
    return str(r.json()["upload_id"])


def test_patches_to_unknown_ids_hold_no_memory(fresh_hall_server: RunningServer) -> None:
    w1 = signed_in(fresh_hall_server.url, "1001", 1)
    for _ in range(1500):
        r = chunk(w1, uuid.uuid4().hex, 0, b"x" * 10)
        assert error_code(r, 404) == "not_found"
    locks = hall_of(fresh_hall_server).upload_locks
    assert len(locks) == 0, len(locks)  # before: 1,500 locks kept for ever


def test_another_window_cannot_touch_an_upload(fresh_hall_server: RunningServer) -> None:
    url = fresh_hall_server.url
    w1 = signed_in(url, "1001", 1)
    w3 = signed_in(url, "1003", 3)
    _, case_id = started_case(w1, 1)
    data = os.urandom(1000)
    uid = _new_upload(w1, case_id, data)
    assert chunk(w1, uid, 0, data[:400]).status_code == 204
    # before: 200, 200 and 204 (window 3 completed window 1's upload)
    assert w3.head(f"/uploads/{uid}").status_code == 403
    assert error_code(w3.get(f"/uploads/{uid}"), 403) in ("window_not_held", "forbidden")
    assert error_code(chunk(w3, uid, 400, data[400:]), 403) in ("window_not_held", "forbidden")
    assert w1.head(f"/uploads/{uid}").headers["Upload-Offset"] == "400"
    assert chunk(w1, uid, 400, data[400:]).status_code == 204
    assert w1.get(f"/uploads/{uid}").json()["complete"]
    sup = signed_in(url, "8001")  # a supervisor may look
    assert sup.get(f"/uploads/{uid}").status_code == 200


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_documents_rest_encrypted_in_private_files(fresh_hall_server: RunningServer) -> None:
    srv = fresh_hall_server
    w1 = signed_in(srv.url, "1001", 1)
    _, case_id = started_case(w1, 1)
    marker = b"ID-CARD-110101199003077777-" + uuid.uuid4().hex.encode()
    data = (marker + b"\n") * 400
    uid = _new_upload(w1, case_id, data)
    assert chunk(w1, uid, 0, data[:5000]).status_code == 204
    assert chunk(w1, uid, 5000, data[5000:]).status_code == 204
    status = w1.get(f"/uploads/{uid}").json()
    assert status["complete"] and status["receipt"]["sha256"] == hashlib.sha256(data).hexdigest()
    found = []
    for root, dirs, files in os.walk(srv.data_dir):
        for d in dirs:
            assert _mode(Path(root) / d) & 0o077 == 0, (d, oct(_mode(Path(root) / d)))
        for f in files:
            p = Path(root) / f
            assert _mode(p) & 0o077 == 0, (str(p), oct(_mode(p)))  # before: 0644
            if marker in p.read_bytes():
                found.append(str(p))
    assert found == []  # before: the document sat in plain text under documents/
    assert _mode(srv.data_dir) & 0o077 == 0


def test_documents_stored_before_encryption_are_sealed_at_start(tmp_path: Path) -> None:
    from hall_server.documents import open_records
    from tests.security.server_helpers import sql
    from tests.support.server_fixtures import start_server_thread

    data_dir = tmp_path / "hall"
    srv = start_server_thread(data_dir=data_dir, demo=True)
    try:
        w1 = signed_in(srv.url, "1001", 1)
        _, case_id = started_case(w1, 1)
        data = b"LEGACY-PLAIN-" + os.urandom(3000)
        uid = _new_upload(w1, case_id, data)
        assert chunk(w1, uid, 0, data).status_code == 204
        doc_id = w1.get(f"/uploads/{uid}").json()["receipt"]["document_id"]
    finally:
        srv.stop()
    # as a server before this change left it: the document in plain, its row unmarked
    doc = data_dir / "documents" / doc_id
    doc.write_bytes(data)
    sql(srv, "UPDATE documents SET encryption = NULL")
    srv = start_server_thread(data_dir=data_dir, demo=True)
    try:
        assert b"LEGACY-PLAIN-" not in doc.read_bytes()
        key = hall_of(srv).signer.documents_key
        assert b"".join(open_records(key, uid, doc, doc.stat().st_size)) == data
        assert sql(srv, "SELECT encryption FROM documents")[0][0] == "aesgcm-v1"
        assert _mode(doc) == 0o600
    finally:
        srv.stop()
