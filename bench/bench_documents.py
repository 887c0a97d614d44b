"""Document figures (PERFORMANCE.md "scanned page to PDF" and scan-to-receipt).

* ``jpeg_page_to_pdf_ms_per_page``: an A4 300 dpi JPEG page into the PDF through
  ``counter_app.documents.pdf.assemble`` (img2pdf embeds the JPEG as it is). Floor/reference:
  the same page decoded and re-encoded by Pillow, what a naive "save as PDF" costs; the ratio
  shows how much the pass-through saves. Target value <= 5 ms.
* ``scan_to_receipt_5_pages_ms``: five pages (SANE test backend ADF, 200x200 mm, 300 dpi colour) into a
  slot (validate, encrypt, thumbnail), the PDF made and stored, queued in the outbox and
  delivered to the reference server on loopback until the receipt's SHA-256 is checked and the
  local copy deleted. Reported with its parts; no target (it is dominated by the scan itself).
"""

from __future__ import annotations

import io
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import figure, percentile


def _a4_jpeg(dpi: int = 300) -> bytes:
    from PIL import Image, ImageDraw

    w, h = int(8.27 * dpi), int(11.69 * dpi)
    im = Image.new("RGB", (w, h), (250, 250, 248))
    d = ImageDraw.Draw(im)
    for i in range(60):
        y = 80 + i * (h - 160) // 60
        d.rectangle((200, y, 200 + (i * 97) % (w - 400), y + 18), fill=(30, 30, 60))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85, dpi=(dpi, dpi))
    return buf.getvalue()


def bench_page_to_pdf(n: int = 60) -> list[dict[str, Any]]:
    from PIL import Image

    from counter_app.documents import pdf
    from counter_app.documents.sources import Page

    page = Page(_a4_jpeg(), "image/jpeg")
    pdf.assemble([page])  # warm up imports
    ours, pillow = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        pdf.assemble([page])
        ours.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        with Image.open(io.BytesIO(page.data)) as im:
            out = io.BytesIO()
            im.convert("RGB").save(out, "PDF", resolution=300.0)
        pillow.append((time.perf_counter() - t0) * 1000)
    return [figure("jpeg_page_to_pdf_ms_per_page", statistics.median(ours),
                   floor=statistics.median(pillow), target="value<=5", n=n,
                   floor_is="Pillow decode+re-encode of the same page (reference)",
                   p95=round(percentile(ours, 95), 3))]


def bench_scan_to_receipt(rounds: int = 3) -> list[dict[str, Any]]:
    import keyring
    from keyring.backend import KeyringBackend

    from api_client import HallClient
    from counter_app.documents.service import DocumentService
    from counter_app.documents.sources import SaneSource, ScanSettings
    from counter_app.documents.store import DocumentStore, KeyringMasterKey
    from counter_app.documents.upload import DocumentUploader
    from counter_app.events import EventBus
    from counter_app.outbox import HallSender, Outbox
    from tests.support.server_fixtures import start_server_thread

    class Mem(KeyringBackend):
        priority = 1  # type: ignore[assignment]
        d: dict[tuple[str, str], str] = {}

        def get_password(self, s: str, u: str) -> str | None:
            return self.d.get((s, u))

        def set_password(self, s: str, u: str, p: str) -> None:
            self.d[(s, u)] = p

        def delete_password(self, s: str, u: str) -> None:
            self.d.pop((s, u), None)

    old = keyring.get_keyring()
    keyring.set_keyring(Mem())
    with tempfile.TemporaryDirectory(prefix="bench-docs-") as tmp:
        root = Path(tmp)
        (root / "sane").mkdir()
        (root / "sane" / "dll.conf").write_text("test\n")
        os.environ.setdefault("SANE_CONFIG_DIR", str(root / "sane"))
        srv = start_server_thread(data_dir=root / "hall", demo=True)
        client = HallClient(srv.url)
        try:
            client.login("1001", "demo1234", 1)
            bus = EventBus()
            outbox = Outbox(root / "outbox.sqlite3", HallSender(client), bus=bus)
            store = DocumentStore(root / "documents", KeyringMasterKey())
            up = DocumentUploader(client, store, bus)
            up.register(outbox)
            svc = DocumentService(store, up, outbox, bus)
            totals, scans, finishes, sends = [], [], [], []
            for r in range(rounds):
                client.issue_ticket("A")
                t = client.call_next(1)
                assert t is not None
                case = client.start_service(t.id).case
                t0 = time.perf_counter()
                res = svc.capture(case.id, "item", SaneSource("test:1"),
                                  ScanSettings(source="adf", max_pages=5, resolution=300))
                assert res.added == 5, res
                t1 = time.perf_counter()
                svc.finish(case.id, "item")
                t2 = time.perf_counter()
                while outbox.depth():
                    outbox.deliver_due()
                t3 = time.perf_counter()
                assert store.documents() == []
                scans.append((t1 - t0) * 1000)
                finishes.append((t2 - t1) * 1000)
                sends.append((t3 - t2) * 1000)
                totals.append((t3 - t0) * 1000)
                client.complete(t.id, "completed")
                del r
            outbox.close()
        finally:
            client.close()
            srv.stop()
            keyring.set_keyring(old)
    return [figure("scan_to_receipt_5_pages_ms", statistics.median(totals), n=rounds,
                   scan_store_thumb_ms=round(statistics.median(scans), 1),
                   pdf_encrypt_queue_ms=round(statistics.median(finishes), 1),
                   upload_to_receipt_ms=round(statistics.median(sends), 1),
                   setup="SANE test backend ADF, 200x200 mm (its maximum) at 300 dpi colour, loopback, SQLite server")]


def run() -> Iterator[dict[str, Any]]:
    yield from bench_page_to_pdf()
    yield from bench_scan_to_receipt()


if __name__ == "__main__":
    for line in run():
        print(json.dumps(line, ensure_ascii=False))
