# ruff: noqa: F811  (pytest fixtures imported from tests.documents_helpers)
"""Scan to server receipt, for real: SANE test backend -> slot -> PDF -> encrypted store ->
outbox kind `document` -> the reference server's tus-style upload -> receipt SHA-256 checked ->
local ciphertext and key deleted. Then the same through a fault proxy that cuts answers at
random points, and with a bit flipped in a chunk on the way (460, re-sent)."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import pytest

from api_client import HallClient
from counter_app.documents.service import DocumentService
from counter_app.documents.sources import FileImportSource, SaneSource, ScanSettings
from counter_app.documents.store import DocumentStore, KeyringMasterKey
from counter_app.documents.upload import KIND_DOCUMENT, DocumentUploader
from counter_app.events import DocumentUploadProgress, EventBus
from counter_app.outbox import HallSender, Outbox
from tests.documents_helpers import (
    MemoryKeyring,
    a4_jpeg,
    files_with_plaintext,
    memory_keyring,  # noqa: F401 - fixture
    open_case,
    sane_test_backend,  # noqa: F401 - fixture
)
from tests.faultproxy import FaultProxy
from tests.support.server_fixtures import signed_in, stored_document


def _setup(tmp_path: Path, client: HallClient, chunk: int = 256 * 1024) -> tuple[DocumentService, Outbox, list[Any]]:
    bus = EventBus()
    seen: list[Any] = []
    bus.subscribe(DocumentUploadProgress, seen.append)
    outbox = Outbox(tmp_path / "outbox.sqlite3", HallSender(client), bus=bus, base_delay_s=0.01,
                    max_delay_s=0.05)
    store = DocumentStore(tmp_path / "documents", KeyringMasterKey())
    uploader = DocumentUploader(client, store, bus, chunk_size=chunk)
    uploader.register(outbox)
    return DocumentService(store, uploader, outbox, bus), outbox, seen


def _server_doc(url: str, upload_id: str) -> dict[str, Any]:
    r = signed_in(url, "8001").get(f"/uploads/{upload_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _drain(outbox: Outbox, limit: int = 200) -> int:
    attempts = 0
    while outbox.depth():
        outbox.kick()
        outbox.deliver_due()
        attempts += 1
        assert attempts < limit, outbox.items()
    return attempts


def test_scan_to_receipt_then_local_copy_gone(fresh_hall_server: Any, tmp_path: Path,
                                              sane_test_backend: str,
                                              memory_keyring: MemoryKeyring) -> None:
    client, case = open_case(fresh_hall_server.url)
    svc, outbox, seen = _setup(tmp_path, client, chunk=64 * 1024)
    try:
        r1 = svc.capture(case.id, "id_card", SaneSource("test:0"), ScanSettings(resolution=150))
        r2 = svc.capture(case.id, "id_card", SaneSource("test:1"),
                         ScanSettings(source="adf", max_pages=3, resolution=150))
        assert (r1.added, r2.added) == (1, 3)
        doc = svc.finish(case.id, "id_card")
        local_sha = doc.sha256
        assert outbox.depth() == 1
        assert files_with_plaintext(tmp_path) == []  # pages and PDF are on disk, encrypted
        _drain(outbox)
        item = outbox.items(kind=KIND_DOCUMENT)[0]
        assert item.state == "done" and item.receipt is not None
        assert item.receipt["sha256"] == local_sha
        server = _server_doc(fresh_hall_server.url, item.receipt["upload_id"])
        assert server["complete"] and server["receipt"]["sha256"] == local_sha
        # The bytes the server keeps hash to the same value, and it is a 4-page PDF.
        stored = [stored_document(fresh_hall_server, p)
                  for p in (fresh_hall_server.data_dir / "documents").iterdir()]
        assert [hashlib.sha256(p).hexdigest() for p in stored] == [local_sha]
        from counter_app.documents.pdf import pdf_page_count

        assert pdf_page_count(stored[0]) == 4
        # Local ciphertext, key and meta of the PDF AND of its pages are gone.
        assert svc.store.documents() == []
        assert not [p for p in (tmp_path / "documents").rglob("*") if p.is_file()]
        states = [e.state for e in seen]
        assert states[0] == "queued" and "uploading" in states and states[-1] == "confirmed"
        assert svc.slot(case.id, "id_card").upload_state == "confirmed"
    finally:
        outbox.close()
        client.close()


class CutLink(HallClient):
    """Before a request, with probability ``p``, the pooled connection is dropped and the proxy
    told to cut the next one mid-answer: the request reaches the server (which acts on it) and
    the answer is lost half way. Which request that hits (create, a chunk, HEAD, the final
    status) is random, so the upload is cut at random offsets."""

    def __init__(self, url: str, proxy: FaultProxy, p: float, seed: int) -> None:
        super().__init__(url, max_retries=0)
        self.proxy, self.p, self.rng, self.cuts = proxy, p, random.Random(seed), 0
        self.armed = False

    def _request(self, method: str, path: str, **kw: Any) -> Any:  # type: ignore[override]
        if self.armed and self.rng.random() < self.p:
            self._transport.session().close()  # a fresh connection, decided by the proxy
            self.proxy.set_mode("cut_mid_body", 1.0)
            self.cuts += 1
            try:
                return super()._request(method, path, **kw)
            finally:
                self.proxy.set_mode("pass", 0.0)
        return super()._request(method, path, **kw)


def test_uploads_cut_at_random_points_resume_and_complete(fresh_hall_server: Any, tmp_path: Path,
                                                          memory_keyring: MemoryKeyring) -> None:
    proxy = FaultProxy(int(fresh_hall_server.url.rsplit(":", 1)[1]), mode="pass",
                       probability=0.0).start()
    client = CutLink(proxy.url, proxy, p=0.3, seed=6)
    outbox = None
    try:
        _, case = open_case(fresh_hall_server.url)
        client.login("1001", "demo1234", 1)
        svc, outbox, _seen = _setup(tmp_path, client, chunk=32 * 1024)
        docs = []
        for i in range(3):
            files = []
            for j in range(2):
                f = tmp_path / f"in{i}{j}.jpg"
                f.write_bytes(a4_jpeg(120, seed=i * 10 + j))
                files.append(f)
            item = f"item{i}"
            assert svc.capture(case.id, item, FileImportSource(files), ScanSettings()).added == 2
            docs.append(svc.finish(case.id, item))
        client.armed = True
        attempts = _drain(outbox, limit=400)
        client.armed = False
        assert client.cuts >= 5 and proxy.stats.faulted.get("cut_mid_body", 0) == client.cuts
        assert attempts > 1
        items = {it.payload_obj["doc_id"]: it for it in outbox.items(kind=KIND_DOCUMENT)}
        for d in docs:
            it = items[d.id]
            assert it.state == "done" and it.receipt is not None
            assert _server_doc(fresh_hall_server.url, it.receipt["upload_id"])["receipt"]["sha256"] == d.sha256
        # Each document arrived once, whole (the outbox id is the upload's idempotency key).
        stored = sorted(hashlib.sha256(stored_document(fresh_hall_server, p)).hexdigest()
                        for p in (fresh_hall_server.data_dir / "documents").iterdir())
        assert stored == sorted(d.sha256 for d in docs)
        assert svc.store.documents() == []
    finally:
        if outbox is not None:
            outbox.close()
        client.close()
        proxy.stop()


class FlipOnce(HallClient):
    """Flips one bit of the first chunk's body AFTER its checksum header was computed: the
    damage a bad link does. The server must refuse it (460) and the uploader send it again."""

    flipped = 0

    def _request(self, method: str, path: str, **kw: Any) -> Any:  # type: ignore[override]
        data = kw.get("data")
        if method == "PATCH" and data and not self.flipped:
            b = bytearray(data)
            b[len(b) // 2] ^= 0x10
            kw["data"] = bytes(b)
            self.flipped += 1
        return super()._request(method, path, **kw)


def test_bit_flip_is_rejected_and_resent(fresh_hall_server: Any, tmp_path: Path,
                                         memory_keyring: MemoryKeyring) -> None:
    _, case = open_case(fresh_hall_server.url)
    client = FlipOnce(fresh_hall_server.url)
    client.login("1001", "demo1234", 1)
    svc, outbox, _ = _setup(tmp_path, client, chunk=64 * 1024)
    try:
        f = tmp_path / "p.jpg"
        f.write_bytes(a4_jpeg(150))
        svc.capture(case.id, "x", FileImportSource([f]), ScanSettings())
        doc = svc.finish(case.id, "x")
        _drain(outbox)
        assert client.flipped == 1
        assert svc.uploader is not None and svc.uploader.resends == 1
        it = outbox.items(kind=KIND_DOCUMENT)[0]
        assert it.state == "done" and it.receipt is not None and it.receipt["sha256"] == doc.sha256
    finally:
        outbox.close()
        client.close()


def test_receipt_mismatch_keeps_the_local_copy(fresh_hall_server: Any, tmp_path: Path,
                                               memory_keyring: MemoryKeyring) -> None:
    """A receipt whose SHA-256 differs from ours must never delete our copy."""
    client, case = open_case(fresh_hall_server.url)
    svc, outbox, _ = _setup(tmp_path, client)
    try:
        f = tmp_path / "p.jpg"
        f.write_bytes(a4_jpeg(100))
        svc.capture(case.id, "x", FileImportSource([f]), ScanSettings())
        doc = svc.finish(case.id, "x")
        real_status = client.upload_status

        def lying_status(upload_id: str) -> Any:
            import dataclasses

            st = real_status(upload_id)
            assert st.receipt is not None
            return dataclasses.replace(st, receipt=dataclasses.replace(st.receipt, sha256="0" * 64))

        client.upload_status = lying_status  # type: ignore[method-assign]
        outbox.deliver_due()
        it = outbox.items(kind=KIND_DOCUMENT)[0]
        assert it.state == "dead" and "differs" in (it.last_error or "")
        assert svc.store.exists(doc.id)
    finally:
        outbox.close()
        client.close()


@pytest.mark.parametrize("n", [1])
def test_restart_restores_unfinished_pages(n: int, tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    f = tmp_path / "p.jpg"
    f.write_bytes(a4_jpeg(100))
    svc = DocumentService(DocumentStore(tmp_path / "documents", KeyringMasterKey()))
    svc.capture(9, "x", FileImportSource([f]), ScanSettings())
    # A new process: the same store, an empty service.
    svc2 = DocumentService(DocumentStore(tmp_path / "documents", KeyringMasterKey()))
    assert svc2.restore(9) == n
    assert svc2.slot(9, "x").pages[0].page.data == f.read_bytes()
