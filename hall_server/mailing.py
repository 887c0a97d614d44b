"""Result mailing (邮寄) on a case: who receives the result, where, and the parcel's tracking number.

Routes (under /api/v1):
- ``PUT /cases/{id}/mailing``  the case's window (or a supervisor) records or updates the mailing;
  with a tracking number the result is mailed (``status = "mailed"``), without it the result
  waits to be mailed (``"to_mail"``). The reply is masked.
- ``GET /cases/{id}/mailing``  masked (张*明, 139****5678, 山东省济南市****, EMS 1234****5678).

The recipient, phone, address and tracking number are personal data: they are one AES-GCM
ciphertext under the applicant keys (hall_server/applicants.py: same key file, associated data
``mailing:<case id>``), re-encrypted by ``rotate-applicant-key`` and deleted with the applicant
record by ``purge-applicants``. Every change is in the applicant audit log (action ``mailing``).
Nothing personal is logged.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from typing import Annotated, Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from hall_server import schema as t
from hall_server.applicants import (
    ApplicantKeys,
    _allowed,
    _audit,
    _case_window,
    _private,
    _utf8,
    check_phone,
    keys_of,
    mask_address,
    mask_name,
    mask_number,
    mask_phone,
)
from hall_server.core import JSON, hall_of, mutate
from hall_server.db import Tx, iso_ms, now_ms
from hall_server.deps import Auth, IdPath
from hall_server.errors import MESSAGES, ApiError

router = APIRouter(prefix="/api/v1", tags=["applicants"])

MESSAGES.update({
    "invalid_mailing": ("邮寄信息有误，请核对", "The mailing details are not valid; please check them"),
    "no_mailing": ("该办件尚未登记邮寄信息", "No mailing is recorded on this case"),
})

Carrier = Literal["ems", "sf", "jd", "zto", "yto", "sto", "yunda", "other"]


class MailingIn(BaseModel):
    recipient: Annotated[str, Field(min_length=1, max_length=50)]
    phone: Annotated[str, Field(min_length=1, max_length=20)]
    address: Annotated[str, Field(min_length=5, max_length=200)]
    carrier: Carrier = "ems"
    tracking_no: Annotated[str, Field(max_length=40)] = ""


def _aad(case_id: int) -> bytes:
    return f"mailing:{case_id}".encode()


def encrypt(keys: ApplicantKeys, case_id: int, fields: dict[str, Any]) -> tuple[str, str]:
    nonce = secrets.token_bytes(12)
    kid, key = keys.current_key()
    ct = AESGCM(key).encrypt(nonce, json.dumps(fields, ensure_ascii=False).encode(), _aad(case_id))
    return kid, base64.b64encode(nonce + ct).decode()


def decrypt(keys: ApplicantKeys, case_id: int, kid: str, data: str) -> dict[str, Any]:
    raw = base64.b64decode(data)
    try:
        plain = AESGCM(keys.key(kid)).decrypt(raw[:12], raw[12:], _aad(case_id))
    except InvalidTag:
        raise ApiError(500, "applicant_key_missing", {"case_id": case_id}) from None
    out: dict[str, Any] = json.loads(plain)
    return out


def _invalid(field: str) -> ApiError:
    return ApiError(422, "invalid_mailing", {"field": field})


def validate(body: MailingIn) -> dict[str, Any]:
    recipient = " ".join(body.recipient.split())
    if not recipient or any(c.isdigit() for c in recipient) or not recipient.isprintable() \
            or not _utf8(recipient):
        raise _invalid("recipient")
    address = " ".join(body.address.split())
    if len(address) < 5 or not address.isprintable() or not _utf8(address):
        raise _invalid("address")
    tracking = re.sub(r"[\s\-]", "", body.tracking_no).upper()
    if tracking and not re.fullmatch(r"[A-Z0-9]{8,30}", tracking):
        raise _invalid("tracking_no")
    try:
        phone = check_phone(body.phone)
    except ApiError:
        raise _invalid("phone") from None
    return {"recipient": recipient, "phone": phone, "address": address,
            "carrier": body.carrier, "tracking_no": tracking}


def masked(case_id: int, f: dict[str, Any], status: str, updated_ms: int,
           mailed_ms: int | None) -> JSON:
    return {"case_id": case_id, "masked": True, "recipient": mask_name(f["recipient"]),
            "phone": mask_phone(f["phone"]), "address": mask_address(f["address"]),
            "carrier": f["carrier"],
            "tracking_no": mask_number(f["tracking_no"]) if f["tracking_no"] else "",
            "status": status, "updated_at": iso_ms(updated_ms),
            "mailed_at": iso_ms(mailed_ms) if mailed_ms else None}


@router.put("/cases/{case_id}/mailing")
async def put_mailing(request: Request, case_id: IdPath, body: MailingIn, p: Auth) -> Response:
    keys = keys_of(request)
    fields = validate(body)
    status = "mailed" if fields["tracking_no"] else "to_mail"

    def fn(tx: Tx) -> JSON:
        _allowed(p, _case_window(tx.conn, case_id))
        kid, data = encrypt(keys, case_id, fields)
        now = now_ms()
        m = t.case_mailings.c
        old = tx.conn.execute(select(m.mailed_ms).where(m.case_id == case_id)).first()
        mailed = (old[0] if old is not None and old[0] else now) if status == "mailed" else None
        values = {"key_id": kid, "data_enc": data, "status": status, "updated_ms": now,
                  "mailed_ms": mailed, "updated_by": p.staff_no}
        if old is None:
            tx.conn.execute(t.case_mailings.insert().values(case_id=case_id, **values))
        else:
            tx.conn.execute(t.case_mailings.update().where(m.case_id == case_id).values(**values))
        _audit(tx.conn, case_id, "mailing", p.staff_no, p.window_no, status)
        return masked(case_id, fields, status, now, mailed)

    return await mutate(request, fn)


def load(conn: Connection, keys: ApplicantKeys, case_id: int) -> JSON:
    row = conn.execute(select(t.case_mailings).where(t.case_mailings.c.case_id == case_id)
                       ).mappings().first()
    if row is None:
        raise ApiError(404, "no_mailing", {"case_id": case_id})
    f = decrypt(keys, case_id, row["key_id"], row["data_enc"])
    return masked(case_id, f, str(row["status"]), int(row["updated_ms"]),
                  int(row["mailed_ms"]) if row["mailed_ms"] else None)


@router.get("/cases/{case_id}/mailing")
async def get_mailing(request: Request, case_id: IdPath, p: Auth) -> Response:
    keys = keys_of(request)

    def fn(conn: Connection) -> JSON:
        _allowed(p, _case_window(conn, case_id))
        return load(conn, keys, case_id)

    return _private(await hall_of(request).store.read(fn))


# ---- with the applicant keys' rotation and the retention purge ---------------------------------
def reencrypt(conn: Connection, keys: ApplicantKeys, kid: str) -> int:
    """Re-encrypt every mailing not under `kid` (called inside the rotation's transaction)."""
    m = t.case_mailings.c
    rows = conn.execute(select(m.case_id, m.key_id, m.data_enc).where(m.key_id != kid)).all()
    for case_id, old, data in rows:
        new_kid, enc = encrypt(keys, int(case_id), decrypt(keys, int(case_id), old, data))
        conn.execute(t.case_mailings.update().where(m.case_id == case_id)
                     .values(key_id=new_kid, data_enc=enc))
    return len(rows)


def key_ids(conn: Connection) -> set[str]:
    return {str(r[0]) for r in conn.execute(select(t.case_mailings.c.key_id).distinct())}


def purge(conn: Connection, case_ids: Any) -> int:
    """Delete the mailings of the cases `case_ids` selects (the retention purge)."""
    return int(conn.execute(t.case_mailings.delete()
                            .where(t.case_mailings.c.case_id.in_(case_ids))).rowcount or 0)
