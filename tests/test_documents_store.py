"""The encrypted document store, validation of bad input, and PDF assembly (no server needed).

Real parts throughout: AES-GCM from cryptography, the keyring API (an in-memory backend stands
for the OS keyring; the fail backend is the real one), img2pdf/pikepdf, and a real full disk
(a 64 KB tmpfs mounted when we are root).
"""

# ruff: noqa: F811  (pytest fixtures imported from tests.documents_helpers)
from __future__ import annotations

import hashlib
import io
import os
import subprocess
from pathlib import Path

import pikepdf
import pytest
from PIL import Image

from counter_app.documents import DocumentError, pdf
from counter_app.documents.pdf import Limits, ValidationError, validate_bytes
from counter_app.documents.service import DocumentService
from counter_app.documents.sources import FileImportSource, ScanSettings, read_page
from counter_app.documents.store import DocumentStore, KeyringMasterKey, StoreRefusedError
from tests.documents_helpers import (
    MemoryKeyring,
    a4_jpeg,
    files_with_plaintext,
    memory_keyring,  # noqa: F401 - fixture
    small_png,
)


def test_stored_bytes_are_encrypted_and_round_trip(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    store = DocumentStore(tmp_path / "docs", KeyringMasterKey())
    page = a4_jpeg(150)
    doc = store.put(page, kind="page", case_id=7, item_id="id_card", content_type="image/jpeg",
                    filename="p1.jpg")
    assert doc.sha256 == hashlib.sha256(page).hexdigest()
    assert store.get(doc.id) == page
    # Nothing on disk starts like an image or PDF, and the plaintext is nowhere in any file.
    assert files_with_plaintext(tmp_path) == []
    needle = page[1000:1064]
    for p in (tmp_path / "docs").rglob("*"):
        if p.is_file():
            assert needle not in p.read_bytes()
    # The master key is in the keyring, not on disk.
    assert ("counter-app", "documents-master-key") in memory_keyring.store
    # Deleting removes ciphertext, key and meta.
    store.delete(doc.id)
    assert not any(p.is_file() for p in (tmp_path / "docs").rglob("*"))


def test_tampered_or_swapped_ciphertext_is_refused(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    store = DocumentStore(tmp_path, KeyringMasterKey())
    a = store.put(b"\xff\xd8\xff" + b"a" * 5000, kind="page", case_id=1, item_id="x",
                  content_type="image/jpeg", filename="a")
    b = store.put(b"\xff\xd8\xff" + b"b" * 5000, kind="page", case_id=1, item_id="x",
                  content_type="image/jpeg", filename="b")
    blob = tmp_path / "blobs" / f"{a.id}.bin"
    data = bytearray(blob.read_bytes())
    data[100] ^= 0x01
    blob.write_bytes(bytes(data))
    with pytest.raises(DocumentError) as e:
        store.get(a.id)
    assert e.value.code == "corrupt_store" and "解密" in e.value.message_zh
    # b's ciphertext under a's name does not decrypt either (id and SHA-256 are bound in).
    blob.write_bytes((tmp_path / "blobs" / f"{b.id}.bin").read_bytes())
    with pytest.raises(DocumentError):
        store.get(a.id)


def test_unsafe_keyring_refuses_to_persist(tmp_path: Path) -> None:
    import keyring
    import keyring.backends.fail

    old = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        store = DocumentStore(tmp_path / "docs", KeyringMasterKey())
        with pytest.raises(StoreRefusedError) as e:
            store.put(a4_jpeg(100), kind="page", case_id=1, item_id="x", content_type="image/jpeg",
                      filename="p")
        assert "密钥环" in e.value.message_zh and "keyring" in e.value.message_en
        assert not any(p.is_file() for p in (tmp_path / "docs").rglob("*"))
    finally:
        keyring.set_keyring(old)


def test_interrupted_writes_are_cleaned_and_stale_flagged(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    now = [1_000_000.0]
    store = DocumentStore(tmp_path, KeyringMasterKey(), clock=lambda: now[0])
    doc = store.put(b"\x89PNG\r\n\x1a\n" + b"z" * 100, kind="page", case_id=1, item_id="x",
                    content_type="image/png", filename="p")
    # A crash between writing the key/blob and the meta, and a temp file, are removed at open.
    (tmp_path / "keys" / "deadbeef.key").write_bytes(b"{}")
    (tmp_path / "blobs" / ".deadbeef.bin.1234.tmp").write_bytes(b"x")
    now[0] += 25 * 3600
    store2 = DocumentStore(tmp_path, KeyringMasterKey(), clock=lambda: now[0])
    assert not (tmp_path / "keys" / "deadbeef.key").exists()
    assert not list((tmp_path / "blobs").glob(".*.tmp"))
    assert [d.id for d in store2.stale()] == [doc.id]  # flagged after 24 h, still there
    assert store2.exists(doc.id)


# -- validation --------------------------------------------------------------------------------
def test_bad_inputs_get_clear_messages(tmp_path: Path) -> None:
    cases = {
        "empty.jpg": (b"", "empty"),
        "program.jpg": (b"MZ\x90\x00" + os.urandom(4000), "not_an_image"),
        "elf.png": (b"\x7fELF" + os.urandom(100), "not_an_image"),
        "text.pdf": (b"hello world", "unsupported_type"),
        "broken.jpg": (a4_jpeg(100)[:3000], "corrupt"),
        "broken.png": (small_png()[:60], "corrupt"),
        "broken.pdf": (b"%PDF-1.4\n garbage", "corrupt"),
    }
    for name, (data, code) in cases.items():
        with pytest.raises(ValidationError) as e:
            validate_bytes(data, name)
        assert e.value.code == code, name
        assert name in e.value.message_zh and name in e.value.message_en
    # A program renamed .jpg is named as a program in both languages.
    with pytest.raises(ValidationError) as e:
        validate_bytes(b"MZ" + b"\0" * 100, "photo.jpg")
    assert "程序" in e.value.message_zh and "program" in e.value.message_en


def test_200_mb_file_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "huge.jpg"
    with open(big, "wb") as f:
        f.write(b"\xff\xd8\xff\xe0")
        f.truncate(200 * 1024 * 1024)  # sparse: no 200 MB written
    with pytest.raises(ValidationError) as e:
        read_page(big)
    assert e.value.code == "too_large" and "200 MB" in e.value.message_en
    # The limit is configurable.
    small = Limits(max_file_bytes=1000)
    with pytest.raises(ValidationError):
        validate_bytes(a4_jpeg(100), "p.jpg", small)


def test_file_import_refuses_bad_files_and_keeps_good_ones(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    good1, bad, good2 = tmp_path / "a.jpg", tmp_path / "virus.jpg", tmp_path / "c.png"
    good1.write_bytes(a4_jpeg(100))
    bad.write_bytes(b"MZ" + os.urandom(1000))
    good2.write_bytes(small_png())
    svc = DocumentService(DocumentStore(tmp_path / "store", KeyringMasterKey()))
    result = svc.capture(3, "id_card", FileImportSource([good1, bad, good2]), ScanSettings())
    assert result.added == 2
    assert result.error is not None and result.error.code == "not_an_image"
    assert "virus.jpg" in result.error.message_zh
    assert [p.page.mime for p in svc.slot(3, "id_card").pages] == ["image/jpeg", "image/png"]


# -- PDF -----------------------------------------------------------------------------------------
def test_jpeg_pages_are_embedded_unchanged(tmp_path: Path) -> None:
    from counter_app.documents.sources import Page

    jpegs = [a4_jpeg(150, seed=i) for i in range(3)]
    out = pdf.assemble([Page(j, "image/jpeg") for j in jpegs] + [Page(small_png(alpha=True), "image/png")])
    with pikepdf.open(io.BytesIO(out)) as doc:
        assert len(doc.pages) == 4
        streams = []
        for page in doc.pages:
            for _name, img in page.get_images().items():
                streams.append((img.Filter, img.read_raw_bytes()))
    # The DCT streams in the PDF are byte-for-byte the JPEG files: no re-encoding.
    for j, (flt, raw) in zip(jpegs, streams[:3], strict=True):
        assert flt == "/DCTDecode" and raw == j
    # A4 at the JPEG's own DPI: 595 x 842 points.
    with pikepdf.open(io.BytesIO(out)) as doc:
        box = [float(v) for v in doc.pages[0].MediaBox]
    assert abs(box[2] - 595) < 2 and abs(box[3] - 842) < 2


def test_pdf_pages_and_images_mix_in_order(tmp_path: Path) -> None:
    from counter_app.documents.sources import Page

    two = pdf.assemble([Page(small_png(), "image/png"), Page(small_png(), "image/png")])
    out = pdf.assemble([Page(a4_jpeg(100), "image/jpeg"), Page(two, "application/pdf"),
                        Page(a4_jpeg(100, seed=3), "image/jpeg")])
    assert pdf.pdf_page_count(out) == 4
    tiff = io.BytesIO()
    Image.new("L", (300, 400), 128).save(tiff, "TIFF", dpi=(200, 200))
    assert pdf.pdf_page_count(pdf.assemble([Page(tiff.getvalue(), "image/tiff")])) == 1
    with pytest.raises(ValidationError):
        pdf.assemble([])


def test_thumbnail_uses_draft_for_jpeg() -> None:
    thumb = pdf.thumbnail(a4_jpeg(300), "image/jpeg")
    assert max(thumb.size) <= 210 and thumb.mode == "RGB"


# -- disk full ---------------------------------------------------------------------------------
@pytest.fixture
def tiny_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {r.stderr!r}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def test_disk_full_keeps_pages_on_screen_and_says_so(tiny_disk: Path, tmp_path: Path,
                                                      memory_keyring: MemoryKeyring) -> None:
    files = []
    for i in range(3):
        p = tmp_path / f"p{i}.jpg"
        p.write_bytes(a4_jpeg(100, seed=i))  # ~40-60 KB each: the second does not fit in 64 KB
        files.append(p)
    svc = DocumentService(DocumentStore(tiny_disk / "store", KeyringMasterKey()))
    result = svc.capture(5, "licence", FileImportSource(files), ScanSettings())
    assert result.error is not None and result.error.code == "disk_full"
    assert "磁盘已满" in result.error.message_zh and "disk is full" in result.error.message_en
    pages = svc.slot(5, "licence").pages
    # Every page captured up to the failure is still in the slot (the failed one in memory).
    assert len(pages) == result.added >= 1
    assert pages[-1].stored_id is None
    assert [p.page.data for p in pages] == [f.read_bytes() for f in files[:len(pages)]]
    # No half-written temp file is left on the full disk.
    assert not [p for p in (tiny_disk / "store").rglob(".*.tmp")]
