"""Capture sources for real: SANE's `test` backend (a real SANE device, flatbed test:0 and ADF
test:1) and a watchdog hot folder with a slow writer."""

# ruff: noqa: F811  (pytest fixtures imported from tests.documents_helpers)
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from counter_app.documents.service import DocumentService
from counter_app.documents.sources import HotFolderWatcher, SaneSource, ScanSettings
from counter_app.documents.store import DocumentStore, KeyringMasterKey
from tests.documents_helpers import (
    MemoryKeyring,
    a4_jpeg,
    files_with_plaintext,
    memory_keyring,  # noqa: F401 - fixture
    sane_test_backend,  # noqa: F401 - fixture
)

FAST = dict(resolution=75)


def test_sane_flatbed_and_three_page_adf_batch(tmp_path: Path, sane_test_backend: str,
                                               memory_keyring: MemoryKeyring) -> None:
    svc = DocumentService(DocumentStore(tmp_path / "store", KeyringMasterKey()))
    assert SaneSource("test:0").health().ok
    r1 = svc.capture(1, "id_card", SaneSource("test:0"), ScanSettings(**FAST))
    assert r1.added == 1 and r1.error is None
    r2 = svc.capture(1, "id_card", SaneSource("test:1"),
                     ScanSettings(source="adf", max_pages=3, colour="color", **FAST))
    assert r2.added == 3 and r2.error is None
    pages = svc.slot(1, "id_card").pages
    assert len(pages) == 4 and all(p.page.mime == "image/jpeg" for p in pages)
    assert all(p.stored_id for p in pages)
    assert files_with_plaintext(tmp_path) == []


def test_unplugged_scanner_says_so_and_offers_the_fallback(sane_test_backend: str) -> None:
    h = SaneSource("test:9").health()
    assert not h.ok and h.fallback == "file"
    assert "未找到扫描仪" in h.message_zh and "not found" in h.message_en
    assert "test:0" in h.devices


class UnpluggedAfter(SaneSource):
    """The real test device, told to fail its reads from page ``n`` on (like a pulled cable)."""

    def __init__(self, device: str, n: int) -> None:
        super().__init__(device)
        self.n = n

    def _page_done(self, dev: Any, done: int) -> None:
        if done == self.n:
            dev.read_return_value = "SANE_STATUS_IO_ERROR"

    def capture(self, settings: ScanSettings) -> Any:
        try:
            yield from super().capture(settings)
        finally:
            # The test backend keeps option values across opens: plug the cable back in.
            import sane

            dev = sane.open(self.device)
            dev.read_return_value = "Default"
            dev.close()


def test_scanner_failing_mid_batch_keeps_captured_pages(tmp_path: Path, sane_test_backend: str,
                                                        memory_keyring: MemoryKeyring) -> None:
    svc = DocumentService(DocumentStore(tmp_path / "store", KeyringMasterKey()))
    r = svc.capture(2, "licence", UnpluggedAfter("test:1", 2),
                    ScanSettings(source="adf", max_pages=5, **FAST))
    assert r.added == 2
    assert r.error is not None and r.error.code == "scan_failed"
    assert "已采集的 2 页已保留" in r.error.message_zh and "2 page(s)" in r.error.message_en
    assert len(svc.slot(2, "licence").pages) == 2
    # The device is usable again afterwards.
    assert svc.capture(2, "licence", SaneSource("test:0"), ScanSettings(**FAST)).added == 1


def test_rescan_replaces_one_page(tmp_path: Path, sane_test_backend: str,
                                  memory_keyring: MemoryKeyring) -> None:
    svc = DocumentService(DocumentStore(tmp_path / "store", KeyringMasterKey()))
    r = svc.capture(1, "x", SaneSource("test:1"), ScanSettings(source="adf", max_pages=3, **FAST))
    assert r.added == 3 and r.error is None
    slot = svc.slot(1, "x")
    old = [p.stored_id for p in slot.pages]
    svc.capture(1, "x", SaneSource("test:0"), ScanSettings(colour="gray", **FAST), replace_index=1)
    assert len(slot.pages) == 3
    assert slot.pages[0].stored_id == old[0] and slot.pages[2].stored_id == old[2]
    assert slot.pages[1].stored_id not in old
    assert not svc.store.exists(str(old[1]))
    svc.move(1, "x", 0, 1)
    assert slot.pages[1].stored_id == old[0]
    svc.delete_page(1, "x", 1)
    assert len(slot.pages) == 2 and not svc.store.exists(str(old[0]))


# -- hot folder ------------------------------------------------------------------------------------
def _wait(pred: Any, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.01)


def test_hot_folder_slow_writer_imported_once_complete(tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    got: list[tuple[Path, bytes]] = []
    lock = threading.Lock()

    def on_file(p: Path) -> None:
        with lock:
            got.append((p, p.read_bytes()))

    w = HotFolderWatcher(folder, on_file)
    w.start()
    try:
        data = a4_jpeg(150)
        target = folder / "page1.jpg"
        with open(target, "wb") as f:
            for i in range(0, len(data), len(data) // 8 + 1):
                f.write(data[i:i + len(data) // 8 + 1])
                f.flush()
                time.sleep(0.05)
                with lock:
                    assert got == []  # nothing taken while it is being written
        _wait(lambda: len(got) == 1)
        # A later reader opening and closing it is not a new file.
        target.read_bytes()
        # Moving a finished file in is an arrival too (scanners that write then rename).
        outside = tmp_path / "page2.part"
        outside.write_bytes(a4_jpeg(100, seed=2))
        outside.rename(folder / "page2.jpg")
        _wait(lambda: len(got) == 2)
        time.sleep(0.3)
        with lock:
            assert [p.name for p, _ in got] == ["page1.jpg", "page2.jpg"]
            assert got[0][1] == data
    finally:
        w.stop()


def test_hot_folder_without_close_events_waits_for_a_stable_size(tmp_path: Path) -> None:
    """The Windows path (no close events): a file is taken only once its size settles."""
    folder = tmp_path / "scans"
    folder.mkdir()
    got: list[bytes] = []
    w = HotFolderWatcher(folder, lambda p: got.append(p.read_bytes()), settle_s=0.4,
                         use_close_events=False)
    w.start()
    try:
        data = a4_jpeg(100)
        with open(folder / "slow.jpg", "wb") as f:
            for i in range(0, len(data), len(data) // 5 + 1):
                f.write(data[i:i + len(data) // 5 + 1])
                f.flush()
                time.sleep(0.1)
                assert got == []
        _wait(lambda: len(got) == 1)
        time.sleep(0.6)
        assert got == [data]
    finally:
        w.stop()


def test_hot_folder_into_slot_removes_the_plaintext_file(tmp_path: Path,
                                                         memory_keyring: MemoryKeyring) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    svc = DocumentService(DocumentStore(tmp_path / "store", KeyringMasterKey()), hot_folder=folder)
    src = svc.hot_folder_source()
    try:
        (folder / "a.jpg").write_bytes(a4_jpeg(100))
        (folder / "bad.jpg").write_bytes(b"MZ" + b"\0" * 300)
        _wait(lambda: src.pending() == 2)
        r = svc.capture(4, "x", src, ScanSettings())
        assert r.added == 1 and r.error is not None and r.error.code == "not_an_image"
        assert not (folder / "a.jpg").exists()  # imported: encrypted in the store, plaintext gone
        assert (folder / "bad.jpg").exists()  # refused: left for the clerk to look at
    finally:
        svc.close()


@pytest.mark.parametrize("colour", ["gray", "lineart"])
def test_sane_modes_encode(colour: str, tmp_path: Path, sane_test_backend: str) -> None:
    pages = list(SaneSource("test:0").capture(ScanSettings(colour=colour, **FAST)))
    assert len(pages) == 1
    assert pages[0].mime == ("image/png" if colour == "lineart" else "image/jpeg")
