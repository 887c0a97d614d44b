"""The local document store: every page and PDF is encrypted before it touches the disk.

* A random 256-bit key per object encrypts it with AES-GCM (the object id and its plaintext
  SHA-256 are the associated data, so a file swapped with another fails to decrypt). That key is
  wrapped (AES-GCM) by ONE master key kept in the OS keyring; an unsafe keyring backend (fail,
  null, plaintext file) is refused: nothing is persisted and the clerk is told why.
* Layout under ``root``: ``blobs/<id>.bin`` (nonce + ciphertext), ``keys/<id>.key`` (the wrapped
  key), ``meta/<id>.json`` (ids, type, size, SHA-256 of the plaintext, times; no image data).
  Each is written to a temp name, fsynced, renamed, and the folder fsynced. ``meta`` is written
  last: an object exists only once its meta file does; leftovers of an interrupted write are
  removed at open (they were never reported as stored, the caller still holds the pages).
* Plaintext lives only in memory. Deleting removes the key first (crypto-shredding), then the
  ciphertext, then the meta.
* Nothing unconfirmed is ever deleted automatically; ``stale()`` flags what waits > 24 h.

All methods block on disk (and the keyring): worker threads only.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from counter_app.documents import DocumentError

log = logging.getLogger(__name__)

KEYRING_SERVICE = "counter-app"
MASTER_KEY_USER = "documents-master-key"
STALE_AFTER_S = 24 * 3600.0
FORMAT = 1


class StoreRefusedError(DocumentError):
    """No safe place for the master key: documents are not written to disk."""


class MasterKeyProvider(Protocol):
    def get(self) -> bytes: ...


class KeyringMasterKey:
    """The master key in the OS keyring (made on first use); refuses unsafe backends."""

    def __init__(self, username: str = MASTER_KEY_USER, service: str = KEYRING_SERVICE) -> None:
        self.username, self.service = username, service
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def get(self) -> bytes:
        with self._lock:
            if self._key is None:
                self._key = self._load()
            return self._key

    def _load(self) -> bytes:
        import keyring
        import keyring.errors

        from counter_app.credentials import backend_status

        st = backend_status()
        if not st.safe:
            raise StoreRefusedError(
                message_zh="系统密钥环不可用，扫描件无法安全地保存到本机（不会写入磁盘）。请联系信息技术人员；"
                "当前页面仍保留在内存中，可直接上传。",
                message_en="No safe system keyring: scans cannot be stored safely on this PC (nothing is "
                "written to disk). Call IT; the pages on screen are kept in memory.",
                code="unsafe_keyring", details={"backend": st.name, "reason": st.reason})
        try:
            raw = keyring.get_password(self.service, self.username)
            if raw:
                key = base64.b64decode(raw)
                if len(key) == 32:
                    return key
                log.error("the stored document master key is malformed; refusing to replace it")
                raise StoreRefusedError(message_zh="文档主密钥损坏，请联系信息技术人员。",
                                        message_en="The document master key is damaged; call IT.",
                                        code="bad_master_key")
            key = AESGCM.generate_key(bit_length=256)
            keyring.set_password(self.service, self.username, base64.b64encode(key).decode())
            return key
        except keyring.errors.KeyringError as exc:
            raise StoreRefusedError(message_zh="无法读写系统密钥环，扫描件未保存到本机。",
                                    message_en="The system keyring could not be used; scans not stored.",
                                    code="keyring_error") from exc


@dataclass(frozen=True)
class StoredDoc:
    id: str
    kind: str  # "page" | "pdf"
    case_id: int
    item_id: str
    content_type: str
    filename: str
    size: int
    sha256: str
    created: float
    pages: list[str] = field(default_factory=list)  # for a pdf: the page ids it contains
    position: int = 0  # for a page: its order in the slot

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> StoredDoc:
        return cls(id=str(obj["id"]), kind=str(obj["kind"]), case_id=int(obj["case_id"]),
                   item_id=str(obj["item_id"]), content_type=str(obj["content_type"]),
                   filename=str(obj["filename"]), size=int(obj["size"]),
                   sha256=str(obj["sha256"]), created=float(obj["created"]),
                   pages=[str(p) for p in obj.get("pages", [])],
                   position=int(obj.get("position", 0)))


def _disk_error(exc: OSError) -> DocumentError:
    if exc.errno == errno.ENOSPC:
        return DocumentError(
            message_zh="磁盘已满，材料未能保存到本机。已采集的页面仍在屏幕上，请清理磁盘或联系信息技术人员后重试。",
            message_en="The disk is full; the document was not saved on this PC. The pages on screen are "
            "kept: free some space (or call IT) and try again.", code="disk_full")
    return DocumentError(message_zh=f"材料写入本机失败：{exc.strerror or exc}。已采集的页面仍在屏幕上。",
                         message_en=f"Writing the document failed: {exc.strerror or exc}. The pages on "
                         "screen are kept.", code="disk_error")


class DocumentStore:
    def __init__(self, root: Path | str, keys: MasterKeyProvider, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root)
        self.keys = keys
        self.clock = clock
        self._lock = threading.RLock()
        for sub in ("blobs", "keys", "meta"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._recover()

    # -- files -------------------------------------------------------------------------------
    def _paths(self, doc_id: str) -> tuple[Path, Path, Path]:
        if not doc_id.isalnum():
            raise ValueError("bad document id")
        return (self.root / "blobs" / f"{doc_id}.bin", self.root / "keys" / f"{doc_id}.key",
                self.root / "meta" / f"{doc_id}.json")

    @staticmethod
    def _write_atomic(path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise
        _fsync_dir(path.parent)

    def _recover(self) -> None:
        """Remove temp files and objects whose meta was never written (never reported stored)."""
        for sub in ("blobs", "keys", "meta"):
            for p in (self.root / sub).glob(".*.tmp"):
                p.unlink(missing_ok=True)
        metas = {p.stem for p in (self.root / "meta").glob("*.json")}
        for sub, suffix in (("keys", ".key"), ("blobs", ".bin")):
            for p in (self.root / sub).glob(f"*{suffix}"):
                if p.stem not in metas:
                    log.warning("removing an incomplete document write %s", p.name)
                    p.unlink(missing_ok=True)

    # -- API ---------------------------------------------------------------------------------
    def put(self, data: bytes, *, kind: str, case_id: int, item_id: str, content_type: str,
            filename: str, pages: list[str] | None = None, position: int = 0) -> StoredDoc:
        """Encrypt and store ``data``; returns only once it is durably on disk."""
        master = self.keys.get()  # raises StoreRefusedError before anything is written
        doc_id = secrets.token_hex(16)
        digest = hashlib.sha256(data).hexdigest()
        aad = f"{doc_id}:{digest}".encode()
        dk = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        blob = b"CDOC" + bytes([FORMAT]) + nonce + AESGCM(dk).encrypt(nonce, data, aad)
        wnonce = os.urandom(12)
        wrapped = AESGCM(master).encrypt(wnonce, dk, doc_id.encode())
        key_json = json.dumps({"v": FORMAT, "nonce": base64.b64encode(wnonce).decode(),
                               "wrapped": base64.b64encode(wrapped).decode()}).encode()
        doc = StoredDoc(doc_id, kind, case_id, item_id, content_type, filename, len(data),
                        digest, self.clock(), list(pages or []), position)
        blob_p, key_p, meta_p = self._paths(doc_id)
        with self._lock:
            try:
                self._write_atomic(key_p, key_json)
                self._write_atomic(blob_p, blob)
                self._write_atomic(meta_p, json.dumps(doc.to_json()).encode())
            except OSError as exc:
                for p in (key_p, blob_p, meta_p):
                    p.unlink(missing_ok=True)
                raise _disk_error(exc) from exc
        return doc

    def meta(self, doc_id: str) -> StoredDoc | None:
        try:
            return StoredDoc.from_json(json.loads(self._paths(doc_id)[2].read_bytes()))
        except FileNotFoundError:
            return None

    def get(self, doc_id: str) -> bytes:
        """Decrypt an object; its SHA-256 is checked against the one recorded at capture."""
        doc = self.meta(doc_id)
        if doc is None:
            raise DocumentError(message_zh="本机找不到该材料。", message_en="The document is not on this PC.",
                                code="missing")
        blob_p, key_p, _ = self._paths(doc_id)
        try:
            k = json.loads(key_p.read_bytes())
            dk = AESGCM(self.keys.get()).decrypt(base64.b64decode(k["nonce"]),
                                                 base64.b64decode(k["wrapped"]), doc_id.encode())
            blob = blob_p.read_bytes()
            if blob[:5] != b"CDOC" + bytes([FORMAT]):
                raise InvalidTag()
            data = AESGCM(dk).decrypt(blob[5:17], blob[17:], f"{doc_id}:{doc.sha256}".encode())
        except (InvalidTag, KeyError, ValueError, FileNotFoundError) as exc:
            raise DocumentError(message_zh="本机保存的材料已损坏，无法解密，请重新扫描。",
                                message_en="The stored document is damaged and cannot be decrypted; "
                                "please scan it again.", code="corrupt_store") from exc
        if hashlib.sha256(data).hexdigest() != doc.sha256:
            raise DocumentError(message_zh="本机保存的材料校验失败，请重新扫描。",
                                message_en="The stored document failed its checksum; please scan it again.",
                                code="corrupt_store")
        return data

    def documents(self, kind: str | None = None) -> list[StoredDoc]:
        out = []
        for p in sorted((self.root / "meta").glob("*.json")):
            try:
                doc = StoredDoc.from_json(json.loads(p.read_bytes()))
            except (ValueError, KeyError, OSError):
                log.error("unreadable document meta %s kept for IT", p.name)
                continue
            if kind is None or doc.kind == kind:
                out.append(doc)
        return sorted(out, key=lambda d: (d.created, d.position))

    def exists(self, doc_id: str) -> bool:
        return self._paths(doc_id)[2].exists()

    def delete(self, doc_id: str) -> None:
        """Key first (the ciphertext is then unreadable), then ciphertext, then meta."""
        blob_p, key_p, meta_p = self._paths(doc_id)
        with self._lock:
            for p in (key_p, blob_p, meta_p):
                p.unlink(missing_ok=True)
            for d in (key_p.parent, blob_p.parent, meta_p.parent):
                _fsync_dir(d)

    def stale(self, older_than_s: float = STALE_AFTER_S) -> list[StoredDoc]:
        """Unconfirmed objects waiting longer than 24 h: flagged for the clerk, never deleted."""
        cutoff = self.clock() - older_than_s
        return [d for d in self.documents() if d.created < cutoff]


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return  # Windows cannot open a directory for fsync; NTFS journals the rename
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
