"""Resumable, checksummed document upload with tus 1.0 semantics.

Create (idempotent, through `mutate`), HEAD for the offset, PATCH a chunk at the exact offset
with `Upload-Checksum: sha256 <base64>`: a wrong offset is 409, a bad chunk 460 and the offset
stays. Bytes are appended and fsynced before the new offset is committed, so a crash can only
leave extra bytes past the committed offset, which the next PATCH at that offset overwrites.
After the last byte the whole file's SHA-256 is checked; on success the file becomes a document
and the receipt carries its SHA-256.

At rest every chunk is encrypted (AES-256-GCM, a fresh nonce per chunk, the upload id and
offset as associated data) under a key derived from the server secret, which is outside the
database: the upload and document files are records `length | nonce | ciphertext`, in 0600
files and 0700 folders. `uploads.stored_bytes` is the file's length at the committed offset.
Only the upload's case window (or a supervisor / IT) may read its state or send its chunks,
and a lock is taken only for an upload that exists, and dropped when no request holds it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import secrets
import struct
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import APIRouter, Header, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from hall_server import schema as t
from hall_server.core import JSON, hall_of, json_response, mutate
from hall_server.db import Store, Tx, iso_ms, now_ms
from hall_server.deps import MAX_INT, Auth, IdPath
from hall_server.errors import ApiError
from hall_server.queue import acting_window
from hall_server.security import Principal

router = APIRouter(prefix="/api/v1", tags=["documents"])
log = logging.getLogger("hall_server.documents")

TYPES = {"application/pdf", "image/jpeg", "image/png", "image/tiff"}
ENCRYPTION = "aesgcm-v1"
_HEAD = struct.Struct(">I12s")  # ciphertext length, nonce


def _aad(upload_id: str, offset: int) -> bytes:
    return f"{upload_id}:{offset}".encode()


def seal_chunk(key: bytes, upload_id: str, offset: int, data: bytes) -> bytes:
    nonce = os.urandom(12)
    ct = AESGCM(key).encrypt(nonce, data, _aad(upload_id, offset))
    return _HEAD.pack(len(ct), nonce) + ct


def open_records(key: bytes, upload_id: str, path: Path, stored_bytes: int) -> Iterator[bytes]:
    """The plaintext chunks of an encrypted upload/document file, up to `stored_bytes`."""
    with open(path, "rb") as f:
        yield from read_records(key, upload_id, f, stored_bytes)


def read_records(key: bytes, upload_id: str, f: BinaryIO, stored_bytes: int) -> Iterator[bytes]:
    """The same, from an open file (from its start). The chunk writer reads through the handle
    it holds locked: opening and closing a second descriptor of the file would drop the
    process's POSIX lock on it (fcntl semantics), letting another process in mid-write."""
    aes = AESGCM(key)
    offset = 0
    f.seek(0)
    while f.tell() < stored_bytes:
        n, nonce = _HEAD.unpack(f.read(_HEAD.size))
        chunk = aes.decrypt(nonce, f.read(n), _aad(upload_id, offset))
        offset += len(chunk)
        yield chunk


def _is_sealed(key: bytes, upload_id: str, path: Path) -> bool:
    try:
        for _ in open_records(key, upload_id, path, path.stat().st_size):
            pass
    except (InvalidTag, struct.error, ValueError):
        return False
    return True


def encrypt_legacy_documents(store: Store, key: bytes) -> int:
    """Documents stored before encryption (`documents.encryption` NULL) are sealed in place at
    start: the sealed copy is written and fsynced beside the file, then replaces it, then the
    row is marked. A crash in between leaves a file that is already sealed (recognised by
    decrypting it) or still plain: either way the next start finishes the job."""
    rows = store.read_sync(lambda c: c.execute(
        select(t.documents.c.id, t.documents.c.upload_id, t.documents.c.path)
        .where(t.documents.c.encryption.is_(None))).all())
    done = 0
    for doc_id, upload_id, path_s in rows:
        path = Path(path_s)
        if not path.exists():
            log.warning("document %s: file %s is missing; left as it is", doc_id, path)
            continue
        if not _is_sealed(key, upload_id, path):
            tmp = path.with_name(path.name + ".sealing")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                offset = 0
                for block in iter(lambda: src.read(1 << 20), b""):
                    out.write(seal_chunk(key, upload_id, offset, block))
                    offset += len(block)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        def mark(tx: Tx, d: str = doc_id) -> None:
            tx.conn.execute(t.documents.update().where(t.documents.c.id == d).values(encryption=ENCRYPTION))

        store.write_sync(mark)
        done += 1
    if done:
        log.info("sealed %d document(s) stored before encryption at rest", done)
    return done


def _private(path: Path) -> None:
    """A new empty file only the server's user can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)


class UploadIn(BaseModel):
    item_id: Annotated[str, Field(min_length=1, max_length=64)]
    filename: Annotated[str, Field(min_length=1, max_length=300)]
    content_type: Annotated[str, Field(max_length=100)]
    size: Annotated[int, Field(ge=1, le=MAX_INT)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]


def _dirs(request: Request) -> tuple[Path, Path]:
    base = hall_of(request).settings.data_dir
    up, docs = base / "uploads", base / "documents"
    up.mkdir(mode=0o700, parents=True, exist_ok=True)
    docs.mkdir(mode=0o700, parents=True, exist_ok=True)
    return up, docs


@router.post("/cases/{case_id}/documents", status_code=201)
async def create_upload(request: Request, case_id: IdPath, body: UploadIn, p: Auth) -> Response:
    hall = hall_of(request)
    if body.size > hall.settings.max_upload_bytes:
        raise ApiError(413, "too_large", {"limit": hall.settings.max_upload_bytes})
    if body.content_type not in TYPES:
        raise ApiError(422, "unsupported_type", {"allowed": sorted(TYPES)})
    up_dir, _ = _dirs(request)

    def fn(tx: Tx) -> JSON:
        case_window = tx.conn.execute(select(t.cases.c.window_no).where(t.cases.c.id == case_id)).first()
        if case_window is None:
            raise ApiError(404, "not_found", {"case_id": case_id})
        acting_window(p, int(case_window[0]))  # only the case's window (or a supervisor/IT)
        uid = secrets.token_hex(16)
        tx.conn.execute(t.uploads.insert().values(
            id=uid, case_id=case_id, item_id=body.item_id, filename=body.filename,
            content_type=body.content_type, size=body.size, sha256=body.sha256.lower(),
            offset=0, stored_bytes=0, created_ms=now_ms()))
        _private(up_dir / uid)
        return {"upload_id": uid, "offset": 0, "size": body.size, "location": f"/api/v1/uploads/{uid}"}

    return await mutate(request, fn, status=201)


def _settle(path: Path, final: Path) -> None:
    """Move a completed upload's file to its document path; nothing to do once it is there."""
    with contextlib.suppress(FileNotFoundError):  # already moved (or a retry got there first)
        os.replace(path, final)


def _load(conn: Connection, uid: str, p: Principal) -> dict[str, Any]:
    """The upload row, if the caller acts for its case's window (403 otherwise; 404 unknown)."""
    row = conn.execute(
        select(t.uploads, t.cases.c.window_no.label("case_window_no"))
        .join(t.cases, t.cases.c.id == t.uploads.c.case_id)
        .where(t.uploads.c.id == uid)
    ).mappings().first()
    if row is None:
        raise ApiError(404, "not_found", {"upload_id": uid})
    acting_window(p, int(row["case_window_no"]))
    return dict(row)


def _status(conn: Connection, uid: str, p: Principal) -> JSON:
    u = _load(conn, uid, p)
    receipt = None
    if u["document_id"] is not None:
        d = conn.execute(select(t.documents).where(t.documents.c.id == u["document_id"])).mappings().one()
        receipt = {"document_id": d["id"], "sha256": d["sha256"], "size": int(d["size"]),
                   "received_at": iso_ms(d["received_ms"])}
    return {"upload_id": uid, "offset": int(u["offset"]), "size": int(u["size"]),
            "complete": receipt is not None, "receipt": receipt}


@router.head("/uploads/{upload_id}")
async def upload_head(request: Request, upload_id: str, p: Auth) -> Response:
    u = await hall_of(request).store.read(lambda c: _load(c, upload_id, p))
    return Response(status_code=200, headers={
        "Upload-Offset": str(u["offset"]), "Upload-Length": str(u["size"]),
        "Tus-Resumable": "1.0.0", "Cache-Control": "no-store"})


@router.get("/uploads/{upload_id}")
async def upload_status(request: Request, upload_id: str, p: Auth) -> Response:
    return json_response(await hall_of(request).store.read(lambda c: _status(c, upload_id, p)))


@router.patch(
    "/uploads/{upload_id}",
    status_code=204,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def upload_chunk(
    request: Request,
    upload_id: str,
    p: Auth,
    upload_offset: Annotated[int, Header(ge=0, le=MAX_INT)],
    upload_checksum: Annotated[str | None, Header(max_length=200)] = None,
    content_type: Annotated[str | None, Header()] = None,
) -> Response:
    hall = hall_of(request)
    if (content_type or "").split(";")[0].strip().lower() != "application/offset+octet-stream":
        raise ApiError(415 if content_type else 400, "unsupported_type",
                       {"expected": "application/offset+octet-stream"})
    data = await request.body()
    if upload_checksum is not None:
        algo, _, b64 = upload_checksum.partition(" ")
        if algo.lower() != "sha256":
            raise ApiError(400, "bad_request", {"Upload-Checksum": "only sha256 is supported"})
        try:
            want = base64.b64decode(b64.strip(), validate=True)
        except ValueError:
            raise ApiError(400, "bad_request", {"Upload-Checksum": "not base64"}) from None
        if hashlib.sha256(data).digest() != want:
            raise ApiError(460, "checksum_mismatch")
    up_dir, doc_dir = _dirs(request)
    # Look the upload up (and check the window) BEFORE taking a lock: an invented id costs
    # one read and leaves nothing behind.
    await hall.store.read(lambda c: _load(c, upload_id, p))
    async with _upload_lock(hall.upload_locks, upload_id):
        path = up_dir / upload_id
        # Every process that writes this upload takes the file's lock first (several server
        # processes share the data folder): the offset is read, the chunk written and the new
        # offset committed by one process at a time. None: the file was already moved away.
        handle = await asyncio.to_thread(_lock_file, path)
        moves: list[tuple[Path, Path]] = []
        try:
            u = await hall.store.read(lambda c: _load(c, upload_id, p))
            offset, size = int(u["offset"]), int(u["size"])
            stored = int(u["stored_bytes"])
            key = hall.signer.documents_key
            if u["document_id"] is not None:
                # Finish a move that a crash between COMMIT and the move left undone (idempotent).
                await asyncio.to_thread(_settle, path, doc_dir / str(u["document_id"]))
                raise ApiError(409, "upload_complete", {"offset": offset})
            if handle is None:
                raise RuntimeError(f"upload {upload_id}: its file is missing before completion")
            if upload_offset != offset:
                raise ApiError(409, "offset_mismatch", {"offset": offset})
            if offset + len(data) > size:
                raise ApiError(413, "too_large", {"size": size, "offset": offset})

            record = seal_chunk(key, upload_id, offset, data)
            new_stored = stored + len(record)
            f = handle

            def write() -> str | None:
                # Bytes past the committed length are from a chunk whose commit failed: cut.
                f.truncate(stored)
                f.seek(stored)
                f.write(record)
                f.flush()
                os.fsync(f.fileno())
                if offset + len(data) < size:
                    return None
                h = hashlib.sha256()
                for block in read_records(key, upload_id, f, new_stored):
                    h.update(block)
                return h.hexdigest()

            digest = await asyncio.to_thread(write)
            new_offset = offset + len(data)

            def commit(tx: Tx) -> int:
                # Compare-and-set on the offset: the committed state can only move forward from
                # the one this chunk was written after.
                mine = (t.uploads.c.id == upload_id, t.uploads.c.offset == offset,
                        t.uploads.c.document_id.is_(None))
                if digest is not None and digest != u["sha256"]:
                    tx.conn.execute(t.uploads.update().where(*mine).values(offset=0, stored_bytes=0))
                    return -1
                done = tx.conn.execute(t.uploads.update().where(*mine)
                                       .values(offset=new_offset, stored_bytes=new_stored))
                if not done.rowcount:
                    return -2
                if digest is not None:
                    doc_id = secrets.token_hex(16)
                    final = doc_dir / doc_id
                    # The file moves only after COMMIT (below): a transaction that fails leaves it
                    # where the retried chunk expects it.
                    moves.append((path, final))
                    tx.conn.execute(t.documents.insert().values(
                        id=doc_id, upload_id=upload_id, case_id=u["case_id"], item_id=u["item_id"],
                        filename=u["filename"], content_type=u["content_type"], size=size,
                        sha256=digest, path=str(final), received_ms=now_ms(), encryption=ENCRYPTION))
                    tx.conn.execute(t.uploads.update().where(t.uploads.c.id == upload_id)
                                    .values(document_id=doc_id))
                return new_offset

            result = await hall.store.write(commit)
        finally:
            if handle is not None:
                await asyncio.to_thread(_unlock_file, handle)
        if result >= 0:
            for src, dst in moves[-1:]:  # a retried transaction appends again: the last committed
                await asyncio.to_thread(_settle, src, dst)
        if result == -2:  # cannot happen while every writer takes the lock; said, never a 500
            now = await hall.store.read(lambda c: _load(c, upload_id, p))
            raise ApiError(409, "offset_mismatch", {"offset": int(now["offset"])})
        if result < 0:
            _private(path)
            raise ApiError(422, "sha256_mismatch", {"offset": 0})
    return Response(status_code=204, headers={"Upload-Offset": str(result), "Tus-Resumable": "1.0.0"})


def _lock_file(path: Path) -> BinaryIO | None:
    """The upload file opened for writing and locked against every other process (a POSIX
    record lock, which NFS passes on to the server's lock manager); None if it is gone. Blocks
    while another process writes a chunk of the same upload (one write and commit). While it is
    held, this process must not open and close the file by another descriptor (that would
    release the lock): everything goes through this handle."""
    try:
        f = open(path, "r+b")  # noqa: SIM115 - held across the commit, closed by _unlock_file
    except FileNotFoundError:
        return None
    if sys.platform != "win32":
        import fcntl

        fcntl.lockf(f, fcntl.LOCK_EX)
    return f


def _unlock_file(f: BinaryIO) -> None:
    try:
        if sys.platform != "win32":
            import fcntl

            fcntl.lockf(f, fcntl.LOCK_UN)
    finally:
        f.close()


@contextlib.asynccontextmanager
async def _upload_lock(locks: dict[str, Any], upload_id: str) -> AsyncIterator[None]:
    """One writer per upload in this process; the entry lives only while someone holds or
    waits for it (so the table is as big as the PATCHes in flight, never more)."""
    entry = locks.get(upload_id)
    if entry is None:
        entry = locks[upload_id] = [asyncio.Lock(), 0]
    entry[1] += 1
    try:
        async with entry[0]:
            yield
    finally:
        entry[1] -= 1
        if entry[1] == 0 and locks.get(upload_id) is entry:
            del locks[upload_id]
