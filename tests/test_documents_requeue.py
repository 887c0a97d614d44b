# ruff: noqa: F811  (pytest fixtures imported from tests.documents_helpers)
"""A scanned PDF stored but never queued (the app died between the two steps of ``finish``) is
queued at the next start-up and uploaded to the real reference server; queuing it again is
harmless (the outbox id is derived from the document id)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from counter_app.documents.service import DocumentService
from counter_app.documents.sources import FileImportSource, ScanSettings
from counter_app.documents.upload import KIND_DOCUMENT, DocumentUploader
from counter_app.events import EventBus
from counter_app.outbox import HallSender, Outbox
from tests.documents_helpers import (
    MemoryKeyring,
    a4_jpeg,
    memory_keyring,  # noqa: F401 - fixture
    open_case,
)
from tests.support.server_fixtures import signed_in


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs."""


def _outbox(path: Path, client: Any) -> Outbox:
    return Outbox(path, HallSender(client), base_delay_s=0.01, max_delay_s=0.05)


def test_pdf_stored_but_not_queued_is_queued_at_start_up(fresh_hall_server: Any, tmp_path: Path,
                                                         memory_keyring: MemoryKeyring) -> None:
    client, case = open_case(fresh_hall_server.url)
    data = tmp_path / "data"
    outbox = _outbox(tmp_path / "outbox.sqlite3", client)
    svc = DocumentService.for_core(data, client, outbox, EventBus())
    assert svc.uploader is not None
    f = tmp_path / "p.jpg"
    f.write_bytes(a4_jpeg(100))
    svc.capture(case.id, "id_card", FileImportSource([f]), ScanSettings())

    def die(*_a: Any, **_k: Any) -> str:
        raise Crash()

    svc.uploader.enqueue = die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        svc.finish(case.id, "id_card")
    (stored,) = svc.store.documents("pdf")
    assert outbox.depth() == 0
    outbox.close()

    # Next start-up: the same files, new objects.
    outbox = _outbox(tmp_path / "outbox.sqlite3", client)
    try:
        svc = DocumentService.for_core(data, client, outbox, EventBus())
        assert outbox.depth() == 1
        (item,) = outbox.items(kind=KIND_DOCUMENT)
        assert item.id == DocumentUploader.row_id(stored.id)
        # Sweeping and queuing again change nothing.
        assert svc.queue_unqueued() == 0
        assert svc.uploader is not None
        assert svc.uploader.enqueue(outbox, stored) == item.id
        assert svc.restore(case.id) == 0 and outbox.depth() == 1
        assert svc.slot(case.id, "id_card").upload_state == "queued"
        for _ in range(50):
            if not outbox.depth():
                break
            outbox.kick()
            outbox.deliver_due()
        done = outbox.get(item.id)
        assert done is not None and done.state == "done" and done.receipt is not None
        assert done.receipt["sha256"] == stored.sha256
        assert svc.slot(case.id, "id_card").upload_state == "confirmed"
        r = signed_in(fresh_hall_server.url, "8001").get(f"/uploads/{done.receipt['upload_id']}")
        assert r.status_code == 200 and r.json()["receipt"]["sha256"] == stored.sha256
        assert svc.store.documents() == []
    finally:
        outbox.close()
        client.close()


def test_restore_shows_a_dead_document_as_failed(tmp_path: Path,
                                                 memory_keyring: MemoryKeyring) -> None:
    from counter_app.documents.store import DocumentStore, KeyringMasterKey

    outbox = Outbox(tmp_path / "o.sqlite3", None)
    try:
        store = DocumentStore(tmp_path / "documents", KeyringMasterKey())
        uploader = DocumentUploader(None, store)  # type: ignore[arg-type]
        svc = DocumentService(store, uploader, outbox)
        doc = store.put(b"%PDF-1.4 x", kind="pdf", case_id=3, item_id="x",
                        content_type="application/pdf", filename="x.pdf")
        assert svc.queue_unqueued() == 1
        row = uploader.row_id(doc.id)
        outbox._call(lambda c: c.execute(
            "UPDATE outbox SET state = 'dead', last_error = '422 too_large' WHERE id = ?", (row,)))
        svc2 = DocumentService(store, uploader, outbox)
        svc2.restore(3)
        slot = svc2.slot(3, "x")
        assert (slot.upload_state, slot.reason) == ("failed", "422 too_large")
        assert svc2.queue_unqueued() == 0  # dead is not re-queued behind staff's back
    finally:
        outbox.close()
