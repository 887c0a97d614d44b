"""Where a rating came from (issue 15 item 3): the `reasons_version` check, and the ratings a
supervisor enters from a paper form (with the scanned form) or a phone survey.

Channels (figures.channel_of): pad_signed, second_screen, serial_box, desk, rate_later come from
the window and the rate-later page; `paper` and `phone` are entered here, with assurance
`entered` and the supervisor's staff number in `entered_by`.

`reasons_version`: a rating names the list of bad-rating reasons it was made with. The current
list's version is accepted; a replaced list's version during the hall rule
`reasons_version_grace_days` (default 30 days) after it was replaced (a desk or pad that loaded
the list before the change still sends it); anything else is refused with
`unknown_reasons_version`. An empty version (clients before the check) is accepted: its reason
codes are still checked against the current list.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from hall_server import documents
from hall_server import schema as t
from hall_server.core import JSON, Hall, get_meta, hall_of, mutate, require_role
from hall_server.db import Tx, iso_ms, now_ms
from hall_server.deps import Auth
from hall_server.errors import MESSAGES, ApiError
from hall_server.hallsetup import RETIRED_REASONS_KEY, audit, get_rules

log = logging.getLogger("hall_server.ratings")

DAY_MS = 86_400_000
ENTRY_CHANNELS = ("paper", "phone")
BAD_LEVELS = ("dissatisfied", "very_dissatisfied")
FORM_ITEM = "rating_form"  # the scanned paper form's item id among the case's documents

MESSAGES.update({
    "unknown_reasons_version": ("评价原因列表版本未知或已过期，请刷新评价原因后重新评价",
                                "Unknown or expired rating-reasons version; reload the reasons and rate again"),
    "form_required": ("纸质评价须附扫描的评价表", "A paper-form rating needs the scanned form attached"),
    "bad_form_document": ("所附评价表不是本办件的文件", "The attached form is not a document of this case"),
})


def check_reasons_version(conn: Connection, version: str, now: int) -> None:
    """Raise 422 `unknown_reasons_version` unless `version` may be stored (module docstring)."""
    if not version:
        return
    current = conn.execute(select(t.rating_reasons.c.version).limit(1)).scalar()
    if version == current:
        return
    retired = json.loads(get_meta(conn, RETIRED_REASONS_KEY) or "{}")
    grace_days = get_rules(conn).reasons_version_grace_days
    at = retired.get(version)
    if at is not None and now - int(at) <= grace_days * DAY_MS:
        return
    log.info("rating refused: reasons_version %r is not served (current %r)", version[:64], current)
    raise ApiError(422, "unknown_reasons_version", {"reasons_version": version, "current": current,
                                                    "grace_days": grace_days})


class EnteredRatingIn(BaseModel):
    case_no: Annotated[str, Field(min_length=1, max_length=40)]
    channel: Literal["paper", "phone"]
    level: Literal["very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied"]
    reasons: Annotated[list[Annotated[str, Field(max_length=32)]], Field(max_length=50)] = []
    reasons_version: Annotated[str, Field(max_length=64)] = ""
    comment: Annotated[str, Field(max_length=2000)] = ""
    rated_on: date
    form_document_id: Annotated[str, Field(max_length=40)] | None = None


def enter_rating(tx: Tx, hall: Hall, actor: str, body: EnteredRatingIn) -> JSON:
    """Store a paper-form or phone-survey rating (supervisor; checked like any other rating)."""
    conn = tx.conn
    now = now_ms()
    case = conn.execute(select(t.cases).where(t.cases.c.case_no == body.case_no)).mappings().first()
    if case is None:
        raise ApiError(404, "not_found", {"case_no": body.case_no})
    check_reasons_version(conn, body.reasons_version, now)
    if body.reasons:
        known = set(conn.execute(select(t.rating_reasons.c.code)).scalars())
        unknown = [r for r in body.reasons if r not in known]
        if unknown:
            raise ApiError(422, "unknown_rating_reason", {"unknown": unknown})
    bad = body.level in BAD_LEVELS
    if bad and not body.reasons and not body.comment.strip():
        raise ApiError(422, "reason_required")
    if body.channel == "paper":
        if not body.form_document_id:
            raise ApiError(422, "form_required")
        doc = conn.execute(select(t.documents.c.case_id).where(t.documents.c.id == body.form_document_id)).first()
        if doc is None or int(doc[0]) != int(case["id"]):
            raise ApiError(422, "bad_form_document", {"form_document_id": body.form_document_id})
    today = date.fromisoformat(hall.day_of(now))
    if body.rated_on < date.fromisoformat(case["day"]) or body.rated_on > today:
        raise ApiError(422, "validation_error", {"errors": [{"field": "rated_on", "message":
                                                             "not before the case, not after today"}]})
    if conn.execute(select(t.ratings.c.id).where(t.ratings.c.case_id == case["id"])).first() is not None:
        raise ApiError(409, "case_already_rated", {"case_id": int(case["id"])})
    rid = f"{body.channel}-{secrets.token_hex(12)}"
    noon = datetime.combine(body.rated_on, time(12), hall.tz)
    rated_ms = int(noon.timestamp() * 1000)
    conn.execute(t.ratings.insert().values(
        id=rid, case_id=case["id"], window_no=case["window_no"], level=body.level,
        reasons=json.dumps(body.reasons), reasons_version=body.reasons_version, comment=body.comment,
        source=body.channel, rated_ms=rated_ms, received_ms=now, claimed_rated_ms=rated_ms,
        pad_id=None, pad_counter=None, challenge=None, signature=None, assurance="entered", bad=bad,
        followed_up=False, day=body.rated_on.isoformat(), entered_by=actor,
        form_document_id=body.form_document_id))
    audit(conn, actor, "rating.enter", body.case_no, None,
          {"channel": body.channel, "level": body.level, "rated_on": body.rated_on.isoformat()})
    return {"rating_id": rid, "case_id": int(case["id"]), "case_no": body.case_no, "channel": body.channel,
            "assurance": "entered", "level": body.level, "day": body.rated_on.isoformat(),
            "received_at": iso_ms(now)}


router = APIRouter(prefix="/api/v1/ratings", tags=["ratings"])


@router.post("/entered", status_code=201)
async def post_entered(request: Request, body: EnteredRatingIn, p: Auth) -> Response:
    """A paper-form or phone-survey rating, entered by a supervisor (never a window)."""
    require_role(p, "supervisor")
    hall = hall_of(request)
    from sqlalchemy.exc import IntegrityError

    try:
        return await mutate(request, lambda tx: enter_rating(tx, hall, p.staff_no, body), status=201)
    except IntegrityError:
        raise ApiError(409, "case_already_rated", {"case_no": body.case_no}) from None


def store_form_scan(tx: Tx, key: bytes, doc_dir: Path, case_no: str, filename: str, content_type: str,
                    data: bytes) -> str:
    """The scanned paper form as a document of the case, stored exactly as a finished upload
    is (documents.py: sealed record, upload row, document row); returns the document id."""
    case_id = tx.conn.execute(select(t.cases.c.id).where(t.cases.c.case_no == case_no)).scalar()
    if case_id is None:
        raise ApiError(404, "not_found", {"case_no": case_no})
    if content_type not in documents.TYPES:
        raise ApiError(422, "unsupported_type", {"allowed": sorted(documents.TYPES)})
    uid, doc_id = secrets.token_hex(16), secrets.token_hex(16)
    record = documents.seal_chunk(key, uid, 0, data)
    path = doc_dir / doc_id
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # 0600, like every document
    with os.fdopen(fd, "wb") as fh:
        fh.write(record)
        fh.flush()
        os.fsync(fh.fileno())
    now = now_ms()
    digest = hashlib.sha256(data).hexdigest()
    tx.conn.execute(t.uploads.insert().values(
        id=uid, case_id=case_id, item_id=FORM_ITEM, filename=filename[:300],
        content_type=content_type, size=len(data), sha256=digest, offset=len(data),
        stored_bytes=len(record), created_ms=now, document_id=doc_id))
    tx.conn.execute(t.documents.insert().values(
        id=doc_id, upload_id=uid, case_id=case_id, item_id=FORM_ITEM,
        filename=filename[:300], content_type=content_type, size=len(data), sha256=digest,
        path=str(path), received_ms=now, encryption=documents.ENCRYPTION))
    return doc_id
