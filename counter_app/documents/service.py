"""DocumentService: the checklist's slots, what the capture panel drives (worker threads only).

A slot is one checklist item of one case. Captured pages go into it one by one: validated,
encrypted into the DocumentStore at once, thumbnailed (off the Tk thread), then kept in memory
for reordering, deleting and rescanning. "Finish" assembles one PDF (img2pdf), stores it
encrypted, and queues it in the outbox as a ``document``; the uploader deletes the local copies
once the server's receipt matches.

If a page cannot be stored (disk full, unsafe keyring) it stays in memory in its slot, marked
unsaved, and the error is reported: nothing already captured is lost while the desk runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from counter_app.documents import DocumentError, pdf
from counter_app.documents.page import Page
from counter_app.documents.pdf import DEFAULT_LIMITS, Limits
from counter_app.documents.printouts import Printouts
from counter_app.documents.sources import CaptureSource, HotFolderSource, ScanSettings
from counter_app.documents.store import (
    DocumentStore,
    KeyringMasterKey,
    MasterKeyProvider,
    StoredDoc,
)
from counter_app.documents.upload import DocumentUploader
from counter_app.events import DocumentUploadProgress, EventBus

if TYPE_CHECKING:
    from PIL import Image

    from api_client import HallClient
    from counter_app.outbox import Outbox

log = logging.getLogger(__name__)


@dataclass
class SlotPage:
    page: Page
    thumb: Image.Image
    stored_id: str | None  # None: only in memory (could not be stored; see the slot's error)


@dataclass
class Slot:
    case_id: int
    item_id: str
    pages: list[SlotPage] = field(default_factory=list)
    upload_state: str = ""  # "" | "queued" | "uploading" | "confirmed" | "failed"
    sent: int = 0
    total: int = 0
    reason: str = ""
    doc_id: str | None = None
    pdf_pages: int = 0  # pages in the last PDF made from this slot

    @property
    def percent(self) -> int:
        return int(100 * self.sent / self.total) if self.total else 0


@dataclass(frozen=True)
class CaptureResult:
    added: int
    error: DocumentError | None = None  # set when the batch stopped early; pages added are kept


class DocumentService:
    def __init__(self, store: DocumentStore, uploader: DocumentUploader | None = None,
                 outbox: Outbox | None = None, bus: EventBus | None = None, *,
                 limits: Limits = DEFAULT_LIMITS,
                 hot_folder: Path | None = None) -> None:
        self.store = store
        self.uploader = uploader
        self.outbox = outbox
        self.bus = bus
        self.limits = limits
        self.hot_folder = hot_folder
        self._hot: HotFolderSource | None = None
        # Notices and receipts kept encrypted for reprinting (issue 17; set by for_core).
        self.printouts: Printouts | None = None
        self._slots: dict[tuple[int, str], Slot] = {}
        self._lock = threading.RLock()
        if bus is not None:
            bus.subscribe(DocumentUploadProgress, self._on_progress)

    @classmethod
    def for_core(cls, data_dir: Path, client: HallClient, outbox: Outbox | None,
                 bus: EventBus | None, *,
                 hot_folder: Path | None = None,
                 keys: MasterKeyProvider | None = None) -> DocumentService:
        store = DocumentStore(data_dir / "documents", keys or KeyringMasterKey())
        uploader = DocumentUploader(client, store, bus)
        if outbox is not None:
            uploader.register(outbox)
        service = cls(store, uploader, outbox, bus, hot_folder=hot_folder)
        service.printouts = Printouts(data_dir, store.keys)
        try:
            service.queue_unqueued()
        except Exception:  # the desk starts anyway; restore() sweeps again when a case opens
            log.exception("could not queue stored documents at start-up")
        return service

    def _queued_doc_states(self) -> dict[str, tuple[str, str]]:
        """doc id -> (outbox state, last error) of every document row in the outbox."""
        from counter_app.documents.upload import KIND_DOCUMENT

        if self.outbox is None:
            return {}
        out: dict[str, tuple[str, str]] = {}
        for item in self.outbox.items(kind=KIND_DOCUMENT):
            try:
                doc_id = str(item.payload_obj["doc_id"])
            except (ValueError, KeyError, TypeError):
                continue
            out[doc_id] = (item.state, item.last_error or "")
        return out

    def queue_unqueued(self) -> int:
        """Queue every stored PDF that has no outbox row; returns how many were queued.

        ``finish`` stores the PDF and then queues it, two steps: a crash between them leaves a
        PDF no one would ever send. Run at start-up and on restore. Safe to repeat: the row id
        is derived from the document id and the outbox keeps an existing row as it is.
        """
        if self.uploader is None or self.outbox is None:
            return 0
        queued = self._queued_doc_states()
        n = 0
        for doc in self.store.documents("pdf"):
            if doc.id in queued:
                continue
            log.warning("document %s (case %s) was stored but not queued; queuing it now",
                        doc.id, doc.case_id)
            self.uploader.enqueue(self.outbox, doc)
            n += 1
        return n

    # -- slots -------------------------------------------------------------------------------
    def slot(self, case_id: int, item_id: str) -> Slot:
        with self._lock:
            key = (case_id, item_id)
            if key not in self._slots:
                self._slots[key] = Slot(case_id, item_id)
            return self._slots[key]

    def slots(self, case_id: int) -> dict[str, Slot]:
        with self._lock:
            return {k[1]: s for k, s in self._slots.items() if k[0] == case_id}

    def restore(self, case_id: int) -> int:
        """Reload this case's stored, not yet finished pages after a restart; returns how many."""
        queued = {pid for d in self.store.documents("pdf") for pid in d.pages}
        n = 0
        for doc in self.store.documents("page"):
            if doc.case_id != case_id or doc.id in queued:
                continue
            slot = self.slot(case_id, doc.item_id)
            with self._lock:
                if any(p.stored_id == doc.id for p in slot.pages):
                    continue
            data = self.store.get(doc.id)
            page = Page(data, doc.content_type, doc.filename)
            sp = SlotPage(page, pdf.thumbnail(data, doc.content_type), doc.id)
            with self._lock:
                slot.pages.append(sp)
            n += 1
        self.queue_unqueued()
        states = self._queued_doc_states()
        for doc in self.store.documents("pdf"):
            if doc.case_id == case_id:
                slot = self.slot(case_id, doc.item_id)
                state, reason = states.get(doc.id, ("pending", ""))
                with self._lock:
                    if not slot.upload_state:
                        slot.upload_state, slot.doc_id, slot.total = "queued", doc.id, doc.size
                        if state == "dead":  # refused for good: say so, not "queued" forever
                            slot.upload_state, slot.reason = "failed", reason
        return n

    # -- capture -------------------------------------------------------------------------------
    def _take(self, case_id: int, item_id: str, page: Page, position: int) -> SlotPage:
        """Validate, encrypt+store, thumbnail one page. Raises DocumentError (page not kept) for
        bad input; a storage failure keeps the page in memory and raises after adding it."""
        info = pdf.validate_bytes(page.data, page.name or "scan", self.limits)
        page = Page(page.data, info.mime, page.name, info.width, info.height)
        thumb = pdf.thumbnail(page.data, page.mime)
        ext = {"image/jpeg": "jpg", "image/png": "png", "image/tiff": "tif",
               "application/pdf": "pdf"}[page.mime]
        try:
            doc = self.store.put(page.data, kind="page", case_id=case_id, item_id=item_id,
                                 content_type=page.mime, filename=f"{item_id}-{position + 1}.{ext}",
                                 position=position)
            return SlotPage(page, thumb, doc.id)
        except DocumentError as exc:
            exc.details["unsaved_page"] = SlotPage(page, thumb, None)
            raise

    def capture(self, case_id: int, item_id: str, source: CaptureSource, settings: ScanSettings,
                on_page: Callable[[SlotPage], None] | None = None,
                replace_index: int | None = None) -> CaptureResult:
        """Run one capture into a slot (health first). Pages already added stay on error.

        A bad file (empty, corrupt, not an image, too big) is refused on its own and the rest
        of the batch goes on; a storage failure keeps that page in memory and stops; a source
        failure (scanner unplugged, jam) stops with the pages so far kept.
        """
        health = source.health()
        if not health.ok:
            return CaptureResult(0, DocumentError(message_zh=health.message_zh, message_en=health.message_en,
                                                  code="source_unavailable",
                                                  details={"fallback": health.fallback}))
        slot = self.slot(case_id, item_id)
        added = 0
        refused: list[DocumentError] = []
        pages: Iterator[Page] = source.capture(settings)
        try:
            while True:
                try:
                    page = next(pages)
                except StopIteration:
                    break
                except DocumentError as exc:
                    if _is_per_file(exc):
                        refused.append(exc)
                        continue
                    raise
                if page.refused is not None:
                    refused.append(page.refused)
                    continue
                with self._lock:
                    pos = replace_index if replace_index is not None else len(slot.pages)
                try:
                    sp = self._take(case_id, item_id, page, pos)
                except DocumentError as exc:
                    unsaved = exc.details.pop("unsaved_page", None)
                    if unsaved is None:
                        refused.append(exc)
                        continue
                    self._add(slot, unsaved, replace_index)
                    added += 1
                    if on_page is not None:
                        on_page(unsaved)
                    return CaptureResult(added, exc)
                self._add(slot, sp, replace_index)
                if isinstance(source, HotFolderSource):
                    source.imported(page)
                added += 1
                if on_page is not None:
                    on_page(sp)
                if replace_index is not None:
                    break
        except DocumentError as exc:  # the source failed (scanner unplugged, jam)
            return CaptureResult(added, exc)
        except OSError as exc:
            return CaptureResult(added, DocumentError(
                message_zh=f"采集中断：{exc}。已采集的 {added} 页已保留。",
                message_en=f"Capture stopped: {exc}. The {added} page(s) already captured are kept.",
                code="capture_io"))
        finally:
            close = getattr(pages, "close", None)
            if callable(close):
                close()
        if not refused:
            return CaptureResult(added)
        if len(refused) == 1:
            return CaptureResult(added, refused[0])
        return CaptureResult(added, DocumentError(
            message_zh="；".join(e.message_zh for e in refused), message_en=" ".join(e.message_en for e in refused),
            code=refused[0].code))

    def _add(self, slot: Slot, sp: SlotPage, replace_index: int | None) -> None:
        with self._lock:
            if replace_index is not None and 0 <= replace_index < len(slot.pages):
                old = slot.pages[replace_index]
                slot.pages[replace_index] = sp
                if old.stored_id:
                    self.store.delete(old.stored_id)
            else:
                slot.pages.append(sp)
            if slot.upload_state in ("confirmed", "failed"):
                slot.upload_state = ""

    # -- editing -------------------------------------------------------------------------------
    def move(self, case_id: int, item_id: str, index: int, delta: int) -> None:
        slot = self.slot(case_id, item_id)
        with self._lock:
            j = index + delta
            if 0 <= index < len(slot.pages) and 0 <= j < len(slot.pages):
                slot.pages[index], slot.pages[j] = slot.pages[j], slot.pages[index]

    def reorder(self, case_id: int, item_id: str, order: list[int]) -> None:
        slot = self.slot(case_id, item_id)
        with self._lock:
            if sorted(order) != list(range(len(slot.pages))):
                raise ValueError("order must be a permutation of the page indexes")
            slot.pages = [slot.pages[i] for i in order]

    def delete_page(self, case_id: int, item_id: str, index: int) -> None:
        slot = self.slot(case_id, item_id)
        with self._lock:
            if not 0 <= index < len(slot.pages):
                return
            sp = slot.pages.pop(index)
        if sp.stored_id:
            self.store.delete(sp.stored_id)

    # -- finish: PDF + queue ---------------------------------------------------------------
    def finish(self, case_id: int, item_id: str, matter_code: str = "") -> StoredDoc:
        """One PDF of the slot's pages, stored encrypted and queued for upload."""
        slot = self.slot(case_id, item_id)
        with self._lock:
            pages = list(slot.pages)
        if any(p.stored_id is None for p in pages):
            # Retry storing the in-memory pages first (the disk may have been freed since).
            for i, p in enumerate(pages):
                if p.stored_id is None:
                    doc = self.store.put(p.page.data, kind="page", case_id=case_id,
                                         item_id=item_id, content_type=p.page.mime,
                                         filename=f"{item_id}-{i + 1}", position=i)
                    p.stored_id = doc.id
        data = pdf.assemble([p.page for p in pages], self.limits)
        name = f"{matter_code + '-' if matter_code else ''}{item_id}-case{case_id}.pdf"
        doc = self.store.put(data, kind="pdf", case_id=case_id, item_id=item_id,
                             content_type=pdf.MIME_PDF, filename=name,
                             pages=[p.stored_id for p in pages if p.stored_id])
        if self.uploader is None or self.outbox is None:
            raise DocumentError(message_zh="没有上传队列，PDF 已加密保存在本机。",
                                message_en="No upload queue; the PDF is stored encrypted on this PC.",
                                code="no_outbox")
        self.uploader.enqueue(self.outbox, doc)
        with self._lock:
            slot.doc_id, slot.upload_state, slot.sent, slot.total = doc.id, "queued", 0, doc.size
            slot.pdf_pages = len(pages)
            slot.pages = []
        return doc

    def _on_progress(self, ev: DocumentUploadProgress) -> None:
        with self._lock:
            for slot in self._slots.values():
                if slot.doc_id == ev.doc_id:
                    slot.upload_state, slot.sent, slot.total, slot.reason = (
                        ev.state, ev.sent, ev.total, ev.reason)

    # -- hot folder ------------------------------------------------------------------------------
    def hot_folder_source(self, on_arrival: Callable[[Path], None] | None = None) -> HotFolderSource:
        """The hot folder (started on first use, worker thread)."""
        if self.hot_folder is None:
            log.warning("no hot folder configured (scanner_folder)")  # the key is for IT, in the log
            raise DocumentError(message_zh="本机未设置扫描文件夹，请联系信息技术人员，或改用“导入文件”。",
                                message_en="No scan folder is set up on this PC; please call IT, or use "
                                           "'Import file'.", code="no_folder")
        with self._lock:
            if self._hot is None:
                self._hot = HotFolderSource(Path(self.hot_folder))
                self._hot.start()
            if on_arrival is not None:
                self._hot.on_arrival = on_arrival
            return self._hot

    def stale(self) -> list[StoredDoc]:
        return self.store.stale()

    def close(self) -> None:
        if self._hot is not None:
            self._hot.stop()
            self._hot = None


def _is_per_file(exc: DocumentError) -> bool:
    return exc.code in ("empty", "too_large", "not_an_image", "unsupported_type", "corrupt",
                        "too_many_pixels", "bad_page_count", "missing", "permission")
