"""Shared helpers of the document tests: an in-memory keyring backend (a real keyring API
backend, so the store's safety check and key handling run unchanged), a SANE test-backend
config folder, A4 test pages, and a case opened at window 1 of the reference server."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backend import KeyringBackend

MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"%PDF", b"II*\x00", b"MM\x00*")


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    old = keyring.get_keyring()
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    yield kr
    keyring.set_keyring(old)


@pytest.fixture
def sane_test_backend(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> str:
    """SANE_CONFIG_DIR with only the `test` backend: devices test:0 (flatbed), test:1 (ADF).

    Set before the first sane.init() of the process (SANE reads the config once)."""
    d = tmp_path_factory.mktemp("sane")
    (d / "dll.conf").write_text("test\n")
    (d / "test.conf").write_text("number_of_devices 2\n")
    monkeypatch.setenv("SANE_CONFIG_DIR", str(d))
    return str(d)


def a4_jpeg(dpi: int = 300, seed: int = 1, quality: int = 85) -> bytes:
    """An A4 page at ``dpi`` with some structure (text-like bars), as a scanner would give."""
    from PIL import Image, ImageDraw

    w, h = int(8.27 * dpi), int(11.69 * dpi)
    im = Image.new("RGB", (w, h), (250, 250, 248))
    d = ImageDraw.Draw(im)
    for i in range(40):
        y = int(h * 0.05) + i * int(h * 0.022)
        d.rectangle((int(w * 0.1), y, int(w * (0.5 + 0.4 * ((i * 37 + seed) % 10) / 10)), y + h // 120),
                    fill=(20 + seed * 10 % 200, 20, 40))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality, dpi=(dpi, dpi))
    return buf.getvalue()


def small_png(alpha: bool = False) -> bytes:
    from PIL import Image

    im = Image.new("RGBA" if alpha else "RGB", (200, 280), (10, 120, 200, 128) if alpha else (10, 120, 200))
    buf = io.BytesIO()
    im.save(buf, "PNG", dpi=(150, 150))
    return buf.getvalue()


def open_case(url: str, staff: str = "1001", window: int = 1, category: str = "A") -> tuple[Any, Any]:
    """Issue a ticket, call and start it as ``staff`` at ``window``; returns (client, case)."""
    from api_client import HallClient

    client = HallClient(url)
    client.login(staff, "demo1234", window)
    client.issue_ticket(category)
    t = client.call_next(window)
    assert t is not None
    result = client.start_service(t.id)
    return client, result.case


def files_with_plaintext(root: Path) -> list[Path]:
    """Every file under ``root`` that starts like an image or PDF."""
    hits = []
    for p in root.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                head = f.read(8)
            if head.startswith(MAGIC):
                hits.append(p)
    return hits
