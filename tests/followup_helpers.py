"""Helpers for the follow-up, appeal and push tests: real bad ratings on real cases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, text

from tests.pad_helpers import open_cases
from tests.support.server_fixtures import Api, RunningServer


def rate(desk: Api, window_no: int, level: str = "very_dissatisfied", case_id: int | None = None) -> dict[str, Any]:
    """A rating from the desk on a fresh completed case (or `case_id`); returns ids and the reply."""
    if case_id is None:
        case_id = open_cases(desk, window_no, 1)[0]
    reasons = desk.get("/rating-reasons").json()
    bad = level in ("dissatisfied", "very_dissatisfied")
    rid = uuid.uuid4().hex
    r = desk.post("/ratings", json={
        "id": rid, "case_id": case_id, "window_no": window_no, "level": level,
        "reasons": [reasons["reasons"][0]["code"]] if bad else [], "reasons_version": reasons["version"],
        "comment": "等太久 waited too long" if bad else "", "rated_at": datetime.now(UTC).isoformat()}, key=rid)
    assert r.status_code == 201, r.text
    return {"rating_id": rid, "case_id": case_id}


def followup_of(api: Api, rating_id: str) -> dict[str, Any]:
    items = api.get("/followups").json()["items"]
    found = [f for f in items if f["rating_id"] == rating_id]
    assert len(found) == 1, items
    return found[0]


def sql(srv: RunningServer, query: str, **params: Any) -> list[dict[str, Any]]:
    eng = create_engine(srv.db_url)
    try:
        with eng.begin() as c:
            res = c.execute(text(query), params)
            return [dict(r) for r in res.mappings()] if res.returns_rows else []
    finally:
        eng.dispose()


def mine(items: list[dict[str, Any]], *ratings: dict[str, Any]) -> list[dict[str, Any]]:
    """The items about these ratings (a demo hall may hold seeded follow-ups of its own)."""
    ids = {r["rating_id"] for r in ratings}
    return [i for i in items if i["rating_id"] in ids]


def evidence(api: Api, case_id: int, item: str = "followup_evidence") -> str:
    """A small PDF stored on the case through the ordinary resumable upload; its document id."""
    import base64
    import hashlib

    data = b"%PDF-1.4\n% evidence " + uuid.uuid4().hex.encode() + b"\n%%EOF\n"
    r = api.post(f"/cases/{case_id}/documents", json={"item_id": item, "filename": "evidence.pdf",
                                                      "content_type": "application/pdf", "size": len(data),
                                                      "sha256": hashlib.sha256(data).hexdigest()})
    assert r.status_code == 201, r.text
    uid = r.json()["upload_id"]
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    r = api.s.patch(f"{api.url}/api/v1/uploads/{uid}", data=data, timeout=30, headers=api.headers(extra={
        "Upload-Offset": "0", "Upload-Checksum": f"sha256 {digest}",
        "Content-Type": "application/offset+octet-stream", "Tus-Resumable": "1.0.0"}))
    assert r.status_code == 204, r.text
    return str(api.get(f"/uploads/{uid}").json()["receipt"]["document_id"])
