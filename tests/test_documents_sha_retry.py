# ruff: noqa: F811  (pytest fixtures imported from tests.documents_helpers)
"""``422 sha256_mismatch`` is retried, not dead: the reference server resets the upload to
offset 0 and a fresh send of the whole file succeeds.

The damage is done where the per-chunk checksum cannot see it: one byte of one chunk is flipped
BEFORE the client computes that chunk's ``Upload-Checksum`` (as a bad read of memory or disk
would), so the chunk is accepted and only the whole-file SHA-256 at the end catches it. A local
copy that no longer matches the hash it was queued with is a different matter: that is dead at
once, with the reason (sending it again could never succeed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api_client import HallClient
from counter_app.documents.service import DocumentService
from counter_app.documents.sources import FileImportSource, ScanSettings
from counter_app.documents.store import DocumentStore, KeyringMasterKey
from counter_app.documents.upload import KIND_DOCUMENT, DocumentUploader
from counter_app.outbox import HallSender, Outbox, classify
from tests.documents_helpers import (
    MemoryKeyring,
    a4_jpeg,
    memory_keyring,  # noqa: F401 - fixture
    open_case,
)


class FlipBeforeChecksum(HallClient):
    flipped = 0

    def upload_chunk(self, upload_id: str, offset: int, data: bytes, **kw: Any) -> int:
        if not self.flipped:
            b = bytearray(data)
            b[len(b) // 2] ^= 0x01
            data = bytes(b)
            self.flipped += 1
        return super().upload_chunk(upload_id, offset, data, **kw)


def _service(tmp_path: Path, client: HallClient) -> tuple[DocumentService, Outbox]:
    outbox = Outbox(tmp_path / "outbox.sqlite3", HallSender(client), base_delay_s=0.01,
                    max_delay_s=0.05)
    store = DocumentStore(tmp_path / "documents", KeyringMasterKey())
    uploader = DocumentUploader(client, store, chunk_size=32 * 1024)
    uploader.register(outbox)
    return DocumentService(store, uploader, outbox), outbox


def test_whole_file_mismatch_is_resent_from_zero(fresh_hall_server: Any, tmp_path: Path,
                                                 memory_keyring: MemoryKeyring) -> None:
    _, case = open_case(fresh_hall_server.url)
    client = FlipBeforeChecksum(fresh_hall_server.url, max_retries=0)
    client.login("1001", "demo1234", 1)
    svc, outbox = _service(tmp_path, client)
    try:
        f = tmp_path / "p.jpg"
        f.write_bytes(a4_jpeg(150))
        svc.capture(case.id, "x", FileImportSource([f]), ScanSettings())
        doc = svc.finish(case.id, "x")
        assert doc.size > 3 * 32 * 1024  # several chunks: the reset really goes back to 0
        outbox.deliver_due()
        (item,) = outbox.items(kind=KIND_DOCUMENT)
        assert client.flipped == 1
        assert item.state == "pending" and "sha256_mismatch" in (item.last_error or ""), item
        assert svc.store.exists(doc.id)
        for _ in range(20):
            if not outbox.depth():
                break
            outbox.kick()
            outbox.deliver_due()
        done = outbox.get(item.id)
        assert done is not None and done.state == "done" and done.receipt is not None
        assert done.receipt["sha256"] == doc.sha256 and done.attempts == 2
        assert not svc.store.exists(doc.id)
    finally:
        outbox.close()
        client.close()


def test_classify_sha256_mismatch_is_not_dead() -> None:
    from api_client.errors import UnprocessableEntityError

    exc = UnprocessableEntityError(message_en="Whole-file SHA-256 mismatch", message_zh="文件校验失败", status=422,
                                   code="sha256_mismatch")
    f = classify(exc)
    assert not f.dead and not f.transport
    other = UnprocessableEntityError(message_en="bad", message_zh="坏", status=422, code="validation_failed")
    assert classify(other).dead


def test_local_copy_not_matching_its_hash_is_dead(fresh_hall_server: Any, tmp_path: Path,
                                                  memory_keyring: MemoryKeyring) -> None:
    client, case = open_case(fresh_hall_server.url)
    svc, outbox = _service(tmp_path, client)
    try:
        f = tmp_path / "p.jpg"
        f.write_bytes(a4_jpeg(100))
        svc.capture(case.id, "x", FileImportSource([f]), ScanSettings())
        doc = svc.finish(case.id, "x")
        real_get = svc.store.get

        def bad_get(doc_id: str) -> bytes:
            data = bytearray(real_get(doc_id))
            data[-10] ^= 0x01
            return bytes(data)

        svc.store.get = bad_get  # type: ignore[method-assign]
        outbox.deliver_due()
        (item,) = outbox.items(kind=KIND_DOCUMENT)
        assert item.state == "dead" and "local copy" in (item.last_error or ""), item
        svc.store.get = real_get  # type: ignore[method-assign]
        assert svc.store.exists(doc.id)  # kept for IT
    finally:
        outbox.close()
        client.close()
