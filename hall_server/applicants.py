"""The applicant on a case: routes, validation, encryption at rest, lookups, retention.

Routes (under /api/v1):
- ``PUT  /cases/{id}/applicant``        the case's window (or a supervisor) records who came;
  the reply is masked.
- ``GET  /cases/{id}/applicant``        masked (张*明, 3701**********1234, 138****5678).
- ``POST /cases/{id}/applicant/reveal`` with a ``purpose``: the unmasked record, and an audit row
  written in the same transaction (no reveal without its audit entry).
- ``GET  /applicants/search``           a past case by case number, full document number (keyed
  hash match), phone (keyed hash) or day; masked results; staff see their own window's cases.

At rest: every personal field is inside one AES-GCM ciphertext (associated data binds it to its
case, so a ciphertext copied onto another case does not decrypt), under a key held outside the
database: a 0600 JSON key file in the data directory (created on first start) or the
``HALL_APPLICANT_KEYS`` environment variable with the same JSON. Each row names its key id, so
``hall-server rotate-applicant-key`` adds a key, re-encrypts every row and retires the old keys.
Document numbers and phones are found through HMAC-SHA256 under a separate index key.
``hall-server purge-applicants`` deletes the applicant records of cases older than the retention
setting (``Settings.applicant_retention_days``).

Validation repeats the rules of counter_app/applicant.py (hall_server may not import the desk
packages; tests/test_applicant_server.py checks both agree): the server trusts no desk.
Nothing personal is logged: log lines carry case ids and counts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
import threading
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from hall_server import schema as t
from hall_server.core import JSON, hall_of, json_response, mutate
from hall_server.db import Tx, iso_ms, now_ms
from hall_server.deps import Auth, IdPath
from hall_server.errors import MESSAGES, ApiError
from hall_server.queue import acting_window
from hall_server.security import Principal

log = logging.getLogger("hall_server.applicants")

router = APIRouter(prefix="/api/v1", tags=["applicants"])

KEY_FILE = "applicant-keys.json"
KEYS_ENV = "HALL_APPLICANT_KEYS"

MESSAGES.update({
    "invalid_applicant": ("申请人信息有误，请核对", "The applicant details are not valid; please check them"),
    "no_applicant": ("该办件尚未登记申请人", "No applicant is recorded on this case"),
    "applicant_key_missing": ("申请人数据密钥缺失，无法解密，请联系信息技术人员",
                              "The applicant data key is missing; call IT"),
    "search_criteria_required": ("请至少提供一个查询条件", "Give at least one search criterion"),
})


# ---- keys --------------------------------------------------------------------------------------
class KeyFileError(Exception):
    """The key file or variable is missing, unreadable, too open or malformed."""


class ApplicantKeys:
    """Data keys by id (the current one encrypts) and the index key, from the file or the env.

    An unknown key id reloads the source once: another process (the rotate command) may have
    added a key since this one started.
    """

    def __init__(self, data_dir: Path, env: str | None = None) -> None:
        self.path = data_dir / KEY_FILE
        self._env = env if env is not None else os.environ.get(KEYS_ENV, "")
        self._lock = threading.Lock()
        self.current = ""
        self.keys: dict[str, bytes] = {}
        self.index_key = b""
        self._mtime = 0.0
        self._load(create=True)

    @property
    def from_env(self) -> bool:
        return bool(self._env)

    def _load(self, create: bool = False) -> None:
        if self._env:
            raw = self._env
        elif self.path.exists():
            mode = stat.S_IMODE(self.path.stat().st_mode)
            if mode & 0o077:
                raise KeyFileError(f"{self.path} is readable by others (mode {mode:o}); chmod 600 it")
            self._mtime = self.path.stat().st_mtime
            raw = self.path.read_text(encoding="utf-8")
        elif create:
            kid = new_key_id()
            doc = {"current": kid, "keys": {kid: _b64(AESGCM.generate_key(bit_length=256))},
                   "index_key": _b64(secrets.token_bytes(32))}
            write_key_file(self.path, doc, exclusive=True)
            self._load()  # another worker process may have created it first: use theirs
            return
        else:
            raise KeyFileError(f"{self.path} is missing")
        try:
            doc = json.loads(raw)
            keys = {str(k): base64.b64decode(v) for k, v in doc["keys"].items()}
            current, index_key = str(doc["current"]), base64.b64decode(doc["index_key"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyFileError(f"applicant keys malformed: {type(exc).__name__}") from exc
        if current not in keys or any(len(k) != 32 for k in keys.values()) or len(index_key) < 32:
            raise KeyFileError("applicant keys malformed: the current key or a key length is wrong")
        self.current, self.keys, self.index_key = current, keys, index_key

    def current_key(self) -> tuple[str, bytes]:
        """The key new values are encrypted with, re-read when the file changed (a rotation by
        the CLI while this server runs must not leave it writing under a retired key)."""
        with self._lock:
            if not self._env:
                try:
                    changed = self.path.stat().st_mtime != self._mtime
                except OSError:
                    changed = False
                if changed:
                    self._load()
            return self.current, self.keys[self.current]

    def key(self, kid: str) -> bytes:
        with self._lock:
            if kid not in self.keys:
                self._load()
            if kid not in self.keys:
                log.error("applicant key %s is not in the key source", kid)
                raise ApiError(500, "applicant_key_missing", {"key_id": kid})
            return self.keys[kid]

    def index(self, kind: str, value: str) -> str:
        return hmac.new(self.index_key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def new_key_id() -> str:
    return "k" + datetime.now().strftime("%Y%m%d%H%M%S") + secrets.token_hex(2)


def write_key_file(path: Path, doc: dict[str, Any], exclusive: bool = False) -> None:
    """Write the key file 0600 from its first byte, atomically (a crash leaves the old file).

    ``exclusive``: only if there is none yet (hard link, which fails on an existing file), so
    worker processes starting together agree on one key instead of replacing each other's.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f)
        f.flush()
        os.fsync(f.fileno())
    if not exclusive:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def encrypt(keys: ApplicantKeys, case_id: int, fields: dict[str, Any]) -> tuple[str, str]:
    nonce = secrets.token_bytes(12)
    kid, key = keys.current_key()
    ct = AESGCM(key).encrypt(nonce, json.dumps(fields, ensure_ascii=False).encode(),
                                       f"applicant:{case_id}".encode())
    return kid, _b64(nonce + ct)


def decrypt(keys: ApplicantKeys, case_id: int, kid: str, data: str) -> dict[str, Any]:
    raw = base64.b64decode(data)
    try:
        plain = AESGCM(keys.key(kid)).decrypt(raw[:12], raw[12:], f"applicant:{case_id}".encode())
    except InvalidTag:
        log.error("applicant record of case %s does not decrypt (tampered or moved)", case_id)
        raise ApiError(500, "applicant_key_missing", {"case_id": case_id}) from None
    out: dict[str, Any] = json.loads(plain)
    return out


def keys_of(request: Request) -> ApplicantKeys:
    """The keys loaded at start-up by create_app (a bad key file stops the start, not a request)."""
    keys: ApplicantKeys = request.app.state.applicant_keys
    return keys


def _private(obj: Any) -> Response:
    r = json_response(obj)
    r.headers["Cache-Control"] = "no-store"
    return r


# ---- validation (the rules of counter_app/applicant.py, kept in step by a test) ---------------
ID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
DocType = Literal["resident_id", "passport", "hk_macao_permit", "taiwan_permit", "foreigner_pr",
                  "hmt_residence_permit"]
_FORMATS = {"passport": r"[A-Z0-9]{6,12}", "hk_macao_permit": r"[HM](\d{8}|\d{10})",
            "taiwan_permit": r"\d{8}"}


def _invalid(field: str) -> ApiError:
    return ApiError(422, "invalid_applicant", {"field": field})


def _id18(v: str, today: date) -> date:
    if not re.fullmatch(r"[1-9]\d{16}[\dX]", v):
        raise _invalid("doc_number")
    try:
        born = date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        raise _invalid("doc_number") from None
    check = "10X98765432"[sum(int(c) * w for c, w in zip(v[:17], ID_WEIGHTS, strict=True)) % 11]
    if born.year < 1850 or born > today or check != v[17]:
        raise _invalid("doc_number")
    return born


def check_document(doc_type: str, number: str, today: date) -> tuple[str, date | None]:
    v = re.sub(r"[\s\-]", "", number).upper()
    if doc_type in ("resident_id", "hmt_residence_permit"):
        born = _id18(v, today)
        if doc_type == "hmt_residence_permit" and not v.startswith(("81", "82", "83")):
            raise _invalid("doc_number")
        return v, born
    if doc_type == "foreigner_pr":
        if re.fullmatch(r"[A-Z]{3}\d{12}", v):
            return v, None
        if v.startswith("9"):
            return v, _id18(v, today)
        raise _invalid("doc_number")
    pattern = _FORMATS.get(doc_type)
    if pattern is None or not re.fullmatch(pattern, v) or (doc_type == "passport" and not re.search(r"\d", v)):
        raise _invalid("doc_number")
    return v, None


def check_phone(value: str) -> str:
    v = re.sub(r"[\s\-()]", "", value)
    v = re.sub(r"^(\+?86)(?=1\d{10}$)", "", v)
    if not re.fullmatch(r"1[3-9]\d{9}", v):
        raise _invalid("phone")
    return v


def check_credit_code(value: str) -> str:
    v = re.sub(r"[\s\-]", "", value).upper()
    if len(v) != 18 or any(c not in USCC_CHARS for c in v) or not v[2:8].isdigit():
        raise _invalid("credit_code")
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(v[:17], USCC_WEIGHTS, strict=True))
    if USCC_CHARS[(31 - total % 31) % 31] != v[17]:
        raise _invalid("credit_code")
    return v


def _utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


# ---- masking -----------------------------------------------------------------------------------
def mask_name(name: str) -> str:
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_number(number: str) -> str:
    n = len(number)
    head, tail = (4, 4) if n >= 15 else ((1, 3) if n >= 8 else (0, min(2, n // 3)))
    return number[:head] + "*" * (n - head - tail) + number[n - tail:]


def mask_phone(phone: str) -> str:
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:] if len(phone) >= 11 else mask_number(phone)


def mask_address(address: str) -> str:
    return address[:6] + "****" if len(address) > 6 else ("*" * len(address))


# ---- routes ------------------------------------------------------------------------------------
Name = Annotated[str, Field(min_length=1, max_length=50)]


class ApplicantIn(BaseModel):
    name: Name
    doc_type: DocType
    doc_number: Annotated[str, Field(min_length=1, max_length=40)]
    phone: Annotated[str, Field(max_length=20)] = ""
    address: Annotated[str, Field(max_length=200)] = ""
    disability_certificate: bool = False
    company_name: Annotated[str, Field(max_length=200)] = ""
    credit_code: Annotated[str, Field(max_length=30)] = ""
    source: Literal["manual", "card"] = "manual"


class RevealIn(BaseModel):
    purpose: Annotated[str, Field(min_length=2, max_length=200)]


def _case_window(conn: Connection, case_id: int) -> int:
    row = conn.execute(select(t.cases.c.window_no).where(t.cases.c.id == case_id)).first()
    if row is None:
        raise ApiError(404, "not_found", {"case_id": case_id})
    return int(row[0])


def _allowed(p: Principal, window_no: int) -> None:
    """The case's window, or a supervisor; IT administrators run the machine, not the cases."""
    if p.role == "it_admin":
        raise ApiError(403, "forbidden")
    acting_window(p, window_no)


def _audit(conn: Connection, case_id: int | None, action: str, staff_no: str, window_no: int | None,
           purpose: str) -> None:
    conn.execute(t.applicant_audit.insert().values(case_id=case_id, action=action, staff_no=staff_no,
                                                   window_no=window_no, purpose=purpose, at_ms=now_ms()))


def _masked(case_id: int, f: dict[str, Any], green: bool, updated_ms: int) -> JSON:
    return {
        "case_id": case_id, "masked": True, "name": mask_name(f["name"]), "doc_type": f["doc_type"],
        "doc_number": mask_number(f["doc_number"]), "phone": mask_phone(f["phone"]) if f["phone"] else "",
        "address": mask_address(f["address"]) if f["address"] else "",
        "company_name": f["company_name"], "credit_code": f["credit_code"],
        "disability_certificate": f["disability_certificate"], "source": f["source"],
        "green_channel_suggested": green, "updated_at": iso_ms(updated_ms),
    }


@router.put("/cases/{case_id}/applicant")
async def put_applicant(request: Request, case_id: IdPath, body: ApplicantIn, p: Auth) -> Response:
    hall = hall_of(request)
    keys = keys_of(request)
    today = datetime.now(hall.tz).date()
    number, born = check_document(body.doc_type, body.doc_number, today)
    name = " ".join(body.name.split())
    if not name or any(c.isdigit() for c in name):
        raise _invalid("name")
    for field, value in (("name", name), ("address", body.address), ("company_name", body.company_name)):
        # Control characters and lone surrogates (valid JSON escapes, not text) are refused here
        # rather than failing the encryption with a 500.
        if not value.isprintable() or not _utf8(value):
            raise _invalid(field)
    phone = check_phone(body.phone) if body.phone.strip() else ""
    company = body.company_name.strip()
    code = ""
    if company or body.credit_code.strip():
        if not company:
            raise _invalid("company_name")
        code = check_credit_code(body.credit_code)
    green = body.disability_certificate or (
        born is not None and age_on(born, today) >= hall.settings.green_channel_age)
    fields = {"name": name, "doc_type": body.doc_type, "doc_number": number, "phone": phone,
              "address": body.address.strip(), "birth_date": born.isoformat() if born else None,
              "disability_certificate": body.disability_certificate, "company_name": company,
              "credit_code": code, "source": body.source}

    def fn(tx: Tx) -> JSON:
        _allowed(p, _case_window(tx.conn, case_id))
        kid, data = encrypt(keys, case_id, fields)
        values = {"key_id": kid, "data_enc": data, "id_hash": keys.index("doc", number),
                  "phone_hash": keys.index("phone", phone) if phone else None,
                  "green_suggested": green, "updated_ms": now_ms(), "updated_by": p.staff_no}
        done = tx.conn.execute(t.case_applicants.update().where(t.case_applicants.c.case_id == case_id)
                               .values(**values)).rowcount
        if not done:
            tx.conn.execute(t.case_applicants.insert().values(case_id=case_id, **values))
        _audit(tx.conn, case_id, "put", p.staff_no, p.window_no, "")
        return _masked(case_id, fields, green, int(values["updated_ms"]))  # type: ignore[arg-type]

    return await mutate(request, fn)


def _load(conn: Connection, keys: ApplicantKeys, case_id: int) -> tuple[dict[str, Any], bool, int]:
    row = conn.execute(select(t.case_applicants).where(t.case_applicants.c.case_id == case_id)).mappings().first()
    if row is None:
        raise ApiError(404, "no_applicant", {"case_id": case_id})
    return (decrypt(keys, case_id, row["key_id"], row["data_enc"]), bool(row["green_suggested"]),
            int(row["updated_ms"]))


@router.get("/cases/{case_id}/applicant")
async def get_applicant(request: Request, case_id: IdPath, p: Auth) -> Response:
    keys = keys_of(request)

    def fn(conn: Connection) -> JSON:
        _allowed(p, _case_window(conn, case_id))
        f, green, ms = _load(conn, keys, case_id)
        return _masked(case_id, f, green, ms)

    return _private(await hall_of(request).store.read(fn))


@router.post("/cases/{case_id}/applicant/reveal")
async def reveal_applicant(request: Request, case_id: IdPath, body: RevealIn, p: Auth) -> Response:
    keys = keys_of(request)

    def fn(tx: Tx) -> JSON:
        _allowed(p, _case_window(tx.conn, case_id))
        f, green, ms = _load(tx.conn, keys, case_id)
        _audit(tx.conn, case_id, "reveal", p.staff_no, p.window_no, body.purpose.strip())
        log.info("applicant of case %s revealed to %s", case_id, p.staff_no)
        return {**f, "case_id": case_id, "masked": False, "green_channel_suggested": green,
                "updated_at": iso_ms(ms)}

    # Not through `mutate`: an idempotent replay would keep the unmasked reply in the database.
    return _private(await hall_of(request).store.write(fn))


@router.get("/applicants/search")
async def search_applicants(
    request: Request, p: Auth,
    case_no: Annotated[str | None, Query(max_length=40)] = None,
    id_number: Annotated[str | None, Query(max_length=40)] = None,
    phone: Annotated[str | None, Query(max_length=20)] = None,
    day: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
) -> Response:
    if not (case_no or id_number or phone or day):
        raise ApiError(422, "search_criteria_required")
    if p.role == "it_admin":
        raise ApiError(403, "forbidden")
    if p.role == "staff" and p.window_no is None:
        raise ApiError(403, "window_not_held" if p.lost_window_no is not None else "forbidden")
    keys = keys_of(request)
    c, a = t.cases.c, t.case_applicants.c
    q = (select(c.id, c.case_no, c.window_no, c.day, c.matter_code, a.key_id, a.data_enc,
                a.green_suggested, a.updated_ms)
         .join(t.case_applicants, a.case_id == c.id).order_by(c.id.desc()).limit(50))
    if case_no:
        q = q.where(c.case_no == case_no.strip())
    if id_number:
        q = q.where(a.id_hash == keys.index("doc", re.sub(r"[\s\-]", "", id_number).upper()))
    if phone:
        q = q.where(a.phone_hash == keys.index("phone", check_phone(phone)))
    if day:
        q = q.where(c.day == day)
    if p.role == "staff":
        q = q.where(c.window_no == p.window_no)  # a window finds its own past cases only

    def fn(tx: Tx) -> list[JSON]:
        rows = tx.conn.execute(q).mappings().all()
        if id_number or phone:
            # A search by a person's number is itself access to personal data: audited.
            _audit(tx.conn, None, "search", p.staff_no, p.window_no,
                   f"by {'id_number' if id_number else 'phone'}: {len(rows)} found")
        return [{"case_no": r["case_no"], "window_no": r["window_no"], "day": r["day"],
                 "matter_code": r["matter_code"],
                 "applicant": _masked(int(r["id"]), decrypt(keys, int(r["id"]), r["key_id"], r["data_enc"]),
                                      bool(r["green_suggested"]), int(r["updated_ms"]))}
                for r in rows]

    return _private({"cases": await hall_of(request).store.write(fn)})


# ---- IT commands (hall-server rotate-applicant-key / purge-applicants) -------------------------
def rotate(store: Any, data_dir: Path) -> JSON:
    """Add a new current key, re-encrypt every record under it, then retire the old keys."""
    from hall_server import mailing  # it builds on this module
    keys = ApplicantKeys(data_dir)
    if keys.from_env:
        raise ValueError(f"the keys come from ${KEYS_ENV}: rotate them in the secret store that sets it")
    kid = new_key_id()
    new_key = _b64(AESGCM.generate_key(bit_length=256))
    index_key = _b64(keys.index_key)
    old = {k: _b64(v) for k, v in keys.keys.items()}
    write_key_file(keys.path, {"current": kid, "keys": {**old, kid: new_key}, "index_key": index_key})  # first: a crash below leaves every key still there
    keys = ApplicantKeys(data_dir)

    def fn(tx: Tx) -> int:
        rows = tx.conn.execute(select(t.case_applicants.c.case_id, t.case_applicants.c.key_id,
                                      t.case_applicants.c.data_enc)
                               .where(t.case_applicants.c.key_id != kid)).all()
        for case_id, old, data in rows:
            new_kid, enc = encrypt(keys, int(case_id), decrypt(keys, int(case_id), old, data))
            tx.conn.execute(t.case_applicants.update().where(t.case_applicants.c.case_id == case_id)
                            .values(key_id=new_kid, data_enc=enc))
        # The result mailings (hall_server/mailing.py) are under the same keys.
        mailed = mailing.reencrypt(tx.conn, keys, kid)
        _audit(tx.conn, None, "rotate", "cli", None, f"to {kid}: {len(rows) + mailed} records")
        return len(rows) + mailed

    n = store.write_sync(fn)
    n += store.write_sync(fn)  # a running server may have written under the old key meanwhile

    def in_use(conn: Connection) -> set[str]:
        return ({str(r[0]) for r in conn.execute(select(t.case_applicants.c.key_id).distinct())}
                | mailing.key_ids(conn))

    # Retire the old keys no record uses any more (the point of rotating a leaked key); one still
    # in use (a write that raced the rotation) stays until the next rotation.
    keep = {k: v for k, v in old.items() if k in store.read_sync(in_use)}
    write_key_file(keys.path, {"current": kid, "keys": {**keep, kid: new_key}, "index_key": index_key})
    return {"key_id": kid, "re_encrypted": n, "old_keys_kept": sorted(keep)}


def purge(store: Any, days: int) -> JSON:
    """Delete the applicant records of cases finished (or started, if never finished) over
    ``days`` days ago; the cases and the audit log stay."""
    from hall_server import mailing  # it builds on this module

    if days < 1:
        raise ValueError("the retention must be at least 1 day")
    cutoff = now_ms() - days * 86_400_000

    def fn(tx: Tx) -> int:
        c = t.cases.c
        old = select(c.id).where(c.started_ms < cutoff,
                                 (c.completed_ms.is_(None)) | (c.completed_ms < cutoff))
        ids = [int(r[0]) for r in tx.conn.execute(
            select(t.case_applicants.c.case_id).where(t.case_applicants.c.case_id.in_(old))).all()]
        if ids:
            tx.conn.execute(t.case_applicants.delete().where(t.case_applicants.c.case_id.in_(ids)))
        mailing.purge(tx.conn, old)  # the result mailings go with them
        for case_id in ids:
            _audit(tx.conn, case_id, "purge", "cli", None, f"retention {days} days")
        return len(ids)

    n = store.write_sync(fn)
    log.info("purged %d applicant records older than %d days", n, days)
    return {"purged": n, "retention_days": days}
