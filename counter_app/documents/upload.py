"""Resumable upload of stored documents as the outbox kind ``document``.

The outbox row (durable, retried with backoff forever, never dropped) carries only ids and the
plaintext SHA-256; the bytes stay encrypted in the DocumentStore until the server confirms them.
One delivery attempt:

1. ``create_upload`` with the outbox row id as Idempotency-Key: a retry after a lost answer (or
   after a crash) gets the SAME upload back, so nothing starts over from zero.
2. ``upload_offset`` (HEAD): resume where the server's copy ends.
3. Checksummed chunks (256 KB): ``460`` (the chunk arrived damaged) -> send the same chunk
   again; ``409 offset_mismatch`` -> re-read the offset and continue from there.
4. ``upload_status``: the receipt's SHA-256 must equal ours. ONLY THEN the local ciphertext and
   its key are deleted, and the pages that went into the PDF with them.

Progress goes out as ``DocumentUploadProgress`` events. A failure raises the api_client error
unchanged so the outbox classifies it (transport and 5xx retried, permanent 4xx -> dead;
``422 sha256_mismatch`` is retried too: the server reset the upload to 0, the next attempt sends
the whole file again; the local copy is checked against its SHA-256 first so that retry can end).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from counter_app.documents import DocumentError
from counter_app.documents.store import DocumentStore, StoredDoc
from counter_app.events import DocumentUploadProgress

if TYPE_CHECKING:
    from api_client import HallClient
    from counter_app.outbox import Outbox, OutboxItem

log = logging.getLogger(__name__)

KIND_DOCUMENT = "document"
# Namespace of the outbox ids derived from document ids (fixed: changing it would re-queue).
_ROW_NAMESPACE = uuid.UUID("5d0c7a52-3f0e-5b7e-9a51-0c4d2f1e6b3a")
CHUNK_SIZE = 256 * 1024
MAX_CHUNK_RESENDS = 5


class Bus:  # the part of EventBus we use (kept structural to avoid importing the core)
    def publish(self, event: object) -> None: ...


class ChunkKeptFailingError(DocumentError):
    """The same chunk was rejected as damaged again and again (a bad link): retry later."""

    def __init__(self) -> None:
        super().__init__(message_zh="上传的数据多次校验失败（网络线路可能有问题），稍后自动重试。",
                         message_en="The uploaded data failed its checksum repeatedly (a bad network "
                         "link?); it will be retried automatically.", code="chunk_checksum",
                         retryable=True)


class DocumentUploader:
    """Builds the outbox payload of a stored PDF and delivers it (``send``)."""

    def __init__(self, client: HallClient, store: DocumentStore, bus: Any = None, *,
                 chunk_size: int = CHUNK_SIZE,
                 on_confirmed: Callable[[StoredDoc, dict[str, Any]], None] | None = None) -> None:
        self.client = client
        self.store = store
        self.bus = bus
        self.chunk_size = chunk_size
        self.on_confirmed = on_confirmed
        self.resends = 0  # chunks sent again after a 460 (tests and the status line read it)

    def register(self, outbox: Outbox) -> None:
        """Plug into the outbox's sender (``HallSender.register_kind``)."""
        sender = getattr(outbox, "_sender", None)
        register = getattr(sender, "register_kind", None)
        if register is None:
            raise TypeError("the outbox sender cannot take new kinds")
        register(KIND_DOCUMENT, self.send)

    @staticmethod
    def payload(doc: StoredDoc) -> dict[str, Any]:
        return {"doc_id": doc.id, "case_id": doc.case_id, "item_id": doc.item_id,
                "filename": doc.filename, "content_type": doc.content_type, "size": doc.size,
                "sha256": doc.sha256, "pages": list(doc.pages)}

    @staticmethod
    def row_id(doc_id: str) -> str:
        """The outbox id (and upload Idempotency-Key) of a document: derived from its id, so
        queuing the same document again (the start-up sweep) finds the same row."""
        return str(uuid.uuid5(_ROW_NAMESPACE, doc_id))

    def enqueue(self, outbox: Outbox, doc: StoredDoc) -> str:
        """Queue the document durably (returns after COMMIT); the row id is the upload's key.

        Idempotent: a document already queued under its derived id is left as it is."""
        row_id = str(outbox.enqueue(KIND_DOCUMENT, self.payload(doc), item_id=self.row_id(doc.id),
                                    if_absent=True))
        self._progress(doc.id, doc.item_id, 0, doc.size, "queued", case_id=doc.case_id)
        return row_id

    def _progress(self, doc_id: str, item_id: str, sent: int, total: int, state: str,
                  reason: str = "", case_id: int | None = None) -> None:
        if self.bus is not None:
            self.bus.publish(DocumentUploadProgress(doc_id, item_id, sent, total, state, reason,
                                                    case_id))

    def send(self, item: OutboxItem) -> dict[str, Any]:
        p = item.payload_obj
        doc_id, item_id, size = str(p["doc_id"]), str(p["item_id"]), int(p["size"])
        case_id = int(p["case_id"])
        try:
            receipt = self._send(item.id, p)
        except Exception as exc:
            reason = getattr(exc, "message_en", None) or str(exc) or type(exc).__name__
            self._progress(doc_id, item_id, 0, size, "failed", reason, case_id)
            raise
        self._progress(doc_id, item_id, size, size, "confirmed", case_id=case_id)
        return receipt

    def _send(self, key: str, p: dict[str, Any]) -> dict[str, Any]:
        from api_client import errors as api_errors
        from counter_app.outbox import PermanentSendError

        doc_id, item_id, size, sha = str(p["doc_id"]), str(p["item_id"]), int(p["size"]), str(p["sha256"])
        case_id = int(p["case_id"])
        created = self.client.create_upload(case_id, item_id, str(p["filename"]),
                                            str(p["content_type"]), size, sha,
                                            idempotency_key=key)
        upload_id = created.upload_id
        offset = self.client.upload_offset(upload_id)
        data: bytes | None = None
        if offset < size:
            if not self.store.exists(doc_id):
                raise PermanentSendError(f"local document {doc_id} is gone before it was confirmed")
            data = self.store.get(doc_id)
            if len(data) != size:
                raise PermanentSendError("stored document size differs from the queued one")
            if hashlib.sha256(data).hexdigest() != sha.lower():
                # The server would answer 422 sha256_mismatch, which is retried: never-ending
                # for a local copy that itself is wrong. Dead, kept, with the reason, for IT.
                raise PermanentSendError(
                    f"local copy of {doc_id} does not match the SHA-256 it was queued with")
        resends = 0
        while offset < size:
            assert data is not None
            self._progress(doc_id, item_id, offset, size, "uploading", case_id=case_id)
            chunk = data[offset:offset + self.chunk_size]
            try:
                offset = self.client.upload_chunk(upload_id, offset, chunk)
                resends = 0
            except api_errors.ChecksumMismatchError:
                # The chunk was damaged on the way; the server's offset did not move.
                resends += 1
                self.resends += 1
                if resends > MAX_CHUNK_RESENDS:
                    raise ChunkKeptFailingError() from None
                log.info("upload %s: chunk at %d rejected (460); sending it again", upload_id, offset)
            except api_errors.UnprocessableEntityError as exc:
                if exc.code == "sha256_mismatch":
                    # The whole file arrived wrong though each chunk checked out; the server
                    # has reset the upload to 0. The outbox retries (classify) after its usual
                    # backoff, and the next attempt resumes at the server's offset: 0.
                    log.warning("upload %s: whole-file SHA-256 mismatch; will send again from 0",
                                upload_id)
                raise
            except api_errors.ConflictError as exc:
                if exc.code == "upload_complete":
                    break
                if exc.code != "offset_mismatch":
                    raise
                server = exc.details.get("offset")
                offset = int(server) if isinstance(server, int) else self.client.upload_offset(upload_id)
                log.info("upload %s: resuming at the server's offset %d", upload_id, offset)
        status = self.client.upload_status(upload_id)
        if not status.complete or status.receipt is None:
            raise DocumentError(message_zh="服务器尚未确认收到完整文件，稍后重试。",
                                message_en="The server has not confirmed the whole file yet; retrying later.",
                                code="not_confirmed", retryable=True)
        receipt = status.receipt
        if receipt.sha256.lower() != sha.lower():
            # Never delete our copy on a receipt that does not match what we captured.
            raise PermanentSendError(
                f"server receipt SHA-256 {receipt.sha256} differs from the local {sha}")
        self._confirmed(doc_id, p)
        return {"document_id": receipt.document_id, "sha256": receipt.sha256,
                "size": receipt.size, "received_at": receipt.received_at.isoformat(),
                "upload_id": upload_id}

    def _confirmed(self, doc_id: str, p: dict[str, Any]) -> None:
        doc = self.store.meta(doc_id)
        for page_id in p.get("pages", []):
            self.store.delete(str(page_id))
        self.store.delete(doc_id)
        if doc is not None and self.on_confirmed is not None:
            self.on_confirmed(doc, p)
