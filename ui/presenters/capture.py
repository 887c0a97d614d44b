"""The capture panel's presenter: the checklist as slots, capturing into them, the upload state,
and the one-time notification (一次性告知) with the offer to suspend without materials.

Plain Python (no Tk): every scanner, disk, image and network call goes through the runner
(``run(op, on_success, on_error)``), so the Tk thread never waits on I/O and never decodes an
image; thumbnails arrive as already-decoded PIL images made on a worker.

Its strings are gettext message ids (English) translated by the shared catalogs under
``ui/locale``, so the desk's language switch covers the panel too.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from api_client.models import Case, Matter, Ticket
from counter_app.config import Settings
from counter_app.core import CounterCore
from counter_app.errors import CounterError
from counter_app.events import DocumentUploadProgress
from ui.i18n import N_, _, language
from ui.presenters.desk import Runner, error_text

if TYPE_CHECKING:
    from PIL import Image

    from counter_app.documents.notice import MissingItem
    from counter_app.documents.service import CaptureResult, DocumentService, Slot
    from counter_app.documents.sources import CaptureSource, ScanSettings
    from counter_app.documents.store import StoredDoc

log = logging.getLogger(__name__)

RESOLUTIONS = (150, 200, 300, 600)
COLOURS = ("color", "gray", "lineart")
FEEDS = ("flatbed", "adf")
SOURCES = ("scanner", "folder", "file")
MARKS = ("e_licence", "accepted_pending", "not_applicable")


LABELS: dict[str, str] = {
    "scanner": N_("Scanner"), "folder": N_("Hot folder"), "file": N_("File"),
    "color": N_("Colour"), "gray": N_("Grey"), "lineart": N_("Black/white"),
    "flatbed": N_("Flatbed"), "adf": N_("Feeder (ADF)"),
    "e_licence": N_("E-licence"), "accepted_pending": N_("Accept, to follow"),
    "not_applicable": N_("Not applicable"), "received": N_("Received"),
    "missing": N_("Missing"), "": N_("Not checked"), "unchecked": N_("Not checked"),
    "required": N_("Required"), "optional": N_("Optional"),
    "queued": N_("Queued"), "uploading": N_("Uploading"),
    "confirmed": N_("Uploaded ✓"), "failed": N_("Upload failed"),
}


def label(key: str) -> str:
    """A slot, source, option or upload state in the current language."""
    return _(LABELS[key]) if key in LABELS else key


@dataclass(frozen=True)
class SlotRow:
    item_id: str
    name: str
    requirement: str
    status: str
    pages: str
    upload: str
    alarm: bool


class CaptureView(Protocol):
    def show_slots(self, rows: Sequence[SlotRow], selected: str | None) -> None: ...
    def show_pages(self, title: str, thumbs: Sequence[Image.Image],
                   selected: int | None) -> None: ...
    def show_controls(self, source: str, resolution: int, colour: str, feed: str,
                      busy: bool, can_finish: bool, can_notice: bool) -> None: ...
    def show_message(self, text: str, kind: str = "info") -> None: ...
    def ask_files(self, on_done: Callable[[list[str]], None]) -> None: ...
    def ask_yes_no(self, text: str, on_done: Callable[[bool], None]) -> None: ...
    def close(self) -> None: ...


class CapturePresenter:
    def __init__(self, view: CaptureView, runner: Runner, core: CounterCore, case: Case,
                 matter: Matter, *, clerk: str = "", window_label: str = "", hall_name: str = "",
                 settings: Settings | None = None, item_id: str | None = None) -> None:
        self.view, self.runner, self.core = view, runner, core
        self.case, self.matter = case, matter
        self.clerk, self.window_label, self.hall_name = clerk, window_label, hall_name
        self.docs: DocumentService | None = core.documents
        cfg = settings if settings is not None else core.settings
        self.source = {"sane": "scanner", "folder": "folder"}.get(cfg.scanner_source, "file")
        self.device = cfg.scanner_device or ""
        self.data_dir = cfg.data_dir
        self.resolution, self.colour, self.feed = 300, "color", "flatbed"
        items = list(matter.checklist)
        self.items = {i.id: i for i in items}
        self.selected = item_id if item_id in self.items else (items[0].id if items else None)
        self.page_index: int | None = None
        self.busy = False
        self._message: tuple[Callable[[], str], str] | None = None

    # -- rendering -------------------------------------------------------------------------------
    def _statuses(self) -> dict[str, str]:
        return {m.item_id: m.status for m in self.case.materials}

    def _slot(self, item_id: str) -> Slot | None:
        return self.docs.slot(self.case.id, item_id) if self.docs is not None else None

    def rows(self) -> list[SlotRow]:
        st = self._statuses()
        out = []
        for item in self.items.values():
            slot = self._slot(item.id)
            n = len(slot.pages) if slot is not None else 0
            upload = ""
            if slot is not None and slot.upload_state:
                upload = label(slot.upload_state)
                if slot.upload_state == "uploading":
                    upload += f" {slot.percent}%"
                if slot.upload_state == "failed" and slot.reason:
                    upload += f"（{slot.reason[:40]}）" if language() != "en" else f" ({slot.reason[:40]})"
            status = st.get(item.id, "")
            name = item.name_en if language() == "en" and item.name_en else item.name_zh
            pages = _("{n} p.").format(n=n) if n else ""
            if not n and slot is not None and slot.pdf_pages:
                pages = f"PDF·{slot.pdf_pages}"
            out.append(SlotRow(item.id, name, label(item.requirement), label(status), pages, upload,
                               item.requirement == "required" and status in ("", "unchecked", "missing")
                               and n == 0))
        return out

    def render(self) -> None:
        self.view.show_slots(self.rows(), self.selected)
        self._render_pages()
        self._render_controls()
        if self._message is not None:
            text, kind = self._message
            self.view.show_message(text(), kind)

    def _render_pages(self) -> None:
        slot = self._slot(self.selected) if self.selected else None
        pages = list(slot.pages) if slot is not None else []
        if self.page_index is not None and self.page_index >= len(pages):
            self.page_index = len(pages) - 1 if pages else None
        item = self.items.get(self.selected or "")
        name = (item.name_en if language() == "en" else item.name_zh) if item else ""
        self.view.show_pages(name, [p.thumb for p in pages], self.page_index)

    def _render_controls(self) -> None:
        slot = self._slot(self.selected) if self.selected else None
        can_finish = bool(slot is not None and slot.pages) and not self.busy
        self.view.show_controls(self.source, self.resolution, self.colour, self.feed, self.busy,
                                can_finish, not self.busy and bool(self.missing()))

    def message(self, text: Callable[[], str], kind: str = "info") -> None:
        self._message = (text, kind)
        self.view.show_message(text(), kind)

    def _fail(self, exc: BaseException) -> None:
        self.busy = False
        self.message(lambda: error_text(exc), "error")
        self.render()
        if not isinstance(exc, CounterError):
            log.error("capture action failed", exc_info=exc)

    # -- choices -----------------------------------------------------------------------------------
    def select(self, item_id: str) -> None:
        if item_id in self.items and item_id != self.selected:
            self.selected, self.page_index = item_id, None
            self.render()

    def select_page(self, index: int) -> None:
        self.page_index = index
        self._render_pages()

    def set_source(self, source: str) -> None:
        if source in SOURCES:
            self.source = source
            self._render_controls()

    def set_options(self, resolution: int | None = None, colour: str | None = None,
                    feed: str | None = None) -> None:
        if resolution is not None and resolution in RESOLUTIONS:
            self.resolution = resolution
        if colour is not None and colour in COLOURS:
            self.colour = colour
        if feed is not None and feed in FEEDS:
            self.feed = feed
        self._render_controls()

    def scan_settings(self) -> ScanSettings:
        from counter_app.documents.sources import ScanSettings

        return ScanSettings(resolution=self.resolution, colour=self.colour, source=self.feed)

    # -- capture -----------------------------------------------------------------------------------
    def _capture_source(self, docs: DocumentService) -> CaptureSource:
        """Built on the worker (the hot folder starts watching there)."""
        from counter_app.documents.sources import SaneSource

        if self.source == "scanner":
            if not self.device:
                from counter_app.documents import DocumentError

                log.warning("no scanner configured (scanner_device)")  # the key is for IT, in the log
                raise DocumentError(message_zh="本机未设置扫描仪，请联系信息技术人员，或改用“导入文件”。",
                                    message_en="No scanner is set up on this PC; please call IT, or use "
                                               "'Import file'.", code="no_scanner")
            return SaneSource(self.device)
        return docs.hot_folder_source()

    def capture(self, replace_index: int | None = None) -> None:
        """Scan (or take the hot folder's files) into the selected slot; file: ask for files."""
        docs = self.docs
        if self.busy or self.selected is None or docs is None:
            return
        if self.source == "file":
            self.view.ask_files(lambda paths: self.import_files(paths, replace_index))
            return
        self._run_capture(lambda: self._capture_source(docs), replace_index)

    def import_files(self, paths: Sequence[str], replace_index: int | None = None) -> None:
        docs = self.docs
        if not paths or self.busy or self.selected is None or docs is None:
            return
        from counter_app.documents.sources import FileImportSource

        files = [Path(p) for p in paths]
        limits = docs.limits
        self._run_capture(lambda: FileImportSource(files, limits), replace_index)

    def _run_capture(self, make_source: Callable[[], CaptureSource],
                     replace_index: int | None) -> None:
        docs, case_id, item_id, settings = self.docs, self.case.id, self.selected, self.scan_settings()
        assert item_id is not None and docs is not None
        self.busy = True
        self.message(lambda: _("Capturing…"))
        self._render_controls()

        def op() -> CaptureResult:
            return docs.capture(case_id, item_id, make_source(), settings, replace_index=replace_index)

        def ok(result: CaptureResult) -> None:
            self.busy = False
            if result.error is not None:
                err = result.error
                fallback = err.details.get("fallback")
                self.message(lambda: error_text(err) + (_(" (use 'Import file')") if fallback else ""),
                             "error")
            else:
                n = result.added
                self.message(lambda: _("{n} page(s) captured.").format(n=n))
            if replace_index is not None:
                self.page_index = replace_index
            self.render()

        self.runner.run(op, ok, self._fail)

    # -- editing -----------------------------------------------------------------------------------
    def _edit(self, fn: Callable[[], None], new_index: int | None) -> None:
        def ok(_r: None) -> None:
            self.page_index = new_index
            self.render()

        self.runner.run(fn, ok, self._fail)

    def move(self, delta: int) -> None:
        i = self.page_index
        if i is None or self.selected is None or self.busy:
            return
        slot, docs, case_id = self._slot(self.selected), self.docs, self.case.id
        j = i + delta
        if slot is None or docs is None or not 0 <= j < len(slot.pages):
            return
        item = self.selected
        self._edit(lambda: docs.move(case_id, item, i, delta), j)

    def delete(self) -> None:
        i, docs, case_id = self.page_index, self.docs, self.case.id
        if i is None or self.selected is None or self.busy or docs is None:
            return
        item = self.selected
        self._edit(lambda: docs.delete_page(case_id, item, i), max(0, i - 1))

    def rescan(self) -> None:
        if self.page_index is not None:
            self.capture(replace_index=self.page_index)

    # -- finish / marks ------------------------------------------------------------------------------
    def finish(self) -> None:
        """Build the PDF, store it encrypted, queue the upload; mark the material received."""
        if self.busy or self.selected is None or self.docs is None:
            return
        docs, case, item_id = self.docs, self.case, self.selected
        code = self.matter.code
        desk = self.core.desk
        self.busy = True
        self.message(lambda: _("Making the PDF…"))
        self._render_controls()

        def op() -> tuple[StoredDoc, Case | None]:
            doc = docs.finish(case.id, item_id, code)
            new_case = None
            try:
                new_case = desk.set_material(item_id, "received", f"扫描件 {len(doc.pages)} 页")
            except Exception as exc:  # noqa: BLE001 - the PDF is queued; the mark can wait
                log.info("marking %s received failed: %s", item_id, exc)
            return doc, new_case

        def ok(result: tuple[StoredDoc, Case | None]) -> None:
            doc, new_case = result
            self.busy = False
            if new_case is not None:
                self.case = new_case
            n = len(doc.pages)
            self.message(lambda: _("A {n}-page PDF is queued for upload.").format(n=n))
            self.page_index = None
            self.render()

        self.runner.run(op, ok, self._fail)

    def mark(self, status: str) -> None:
        """Electronic licence / accepted-pending / not applicable, instead of a scan."""
        if status not in MARKS or self.selected is None or self.busy:
            return
        desk, item_id = self.core.desk, self.selected
        self.busy = True

        def ok(new_case: Case) -> None:
            self.busy = False
            self.case = new_case
            self.message(lambda: _("Marked '{status}'.").format(status=label(status)))
            self.render()

        self.runner.run(lambda: desk.set_material(item_id, status, ""), ok, self._fail)

    def on_upload_progress(self, ev: DocumentUploadProgress) -> None:
        if ev.case_id not in (None, self.case.id):
            return
        self.view.show_slots(self.rows(), self.selected)
        item = self.items.get(ev.item_id)
        name = (item.name_en if language() == "en" else item.name_zh) if item else ev.item_id
        if ev.state == "confirmed":
            self.message(lambda: _("'{name}' is uploaded and verified by the server; the local "
                                   "copy was deleted.").format(name=name))
        elif ev.state == "failed":
            self.message(lambda: _("'{name}' not uploaded yet, retrying automatically: {reason}")
                         .format(name=name, reason=ev.reason),
                         "warn")

    # -- one-time notification ----------------------------------------------------------------------
    def missing(self) -> list[MissingItem]:
        from counter_app.documents.notice import missing_items

        have_pages = {i for i in self.items if (s := self._slot(i)) is not None
                      and (s.pages or s.upload_state)}
        return [m for m in missing_items(self.matter, self.case) if m.item_id not in have_pages]

    def notice(self) -> None:
        """Print the 一次性告知书 for every missing required item, then offer to suspend."""
        from counter_app.documents import notice
        from counter_app.documents.printouts import print_once

        items = self.missing()
        if not items or self.busy:
            return
        data = notice.NoticeData(
            hall=self.hall_name, window=self.window_label,
            matter=self.matter.name_zh, case_no=self.case.case_no,
            clerk=self.clerk, items=items, day=date.today(),
            department=self.matter.department_zh)
        folder = self.data_dir / "notices"
        self.busy = True
        self._render_controls()
        applicants = self.core.applicants
        printouts = self.core.documents.printouts if self.core.documents is not None else None
        spool = self.data_dir / "spool"
        case_id, case_no = self.case.id, self.case.case_no

        def op() -> None:
            notice.purge_old(folder)  # plaintext notices of older versions of the desk
            # The notice names the applicant (held in memory, or revealed: audited).
            name = applicants.name_for_print(case_id, "打印一次性告知书") \
                if applicants is not None else ""
            pdf = notice.render(dataclasses.replace(data, applicant=name))
            if printouts is not None:
                printouts.print_new(pdf, kind="notice", case_id=case_id, case_no=case_no)
            else:  # no store: printed, never kept
                print_once(pdf, spool)

        def ok(_none: None) -> None:
            self.busy = False
            n = len(items)
            self.message(lambda: _("The one-time notice was sent to the printer ({n} missing).")
                         .format(n=n))
            self.render()
            self.view.ask_yes_no(
                _("The notice is printed. Suspend the ticket (without materials) so the citizen "
                  "can come back with them without queuing again?"),
                lambda yes: self.suspend(n) if yes else None)

        self.runner.run(op, ok, self._fail)

    def suspend(self, missing: int) -> None:
        desk = self.core.desk
        note = f"一次性告知：缺 {missing} 项材料"
        self.busy = True

        def ok(_t: Ticket) -> None:
            self.busy = False
            self.view.close()

        self.runner.run(lambda: desk.suspend(note=note), ok, self._fail)
