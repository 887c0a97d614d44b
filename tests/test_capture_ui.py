# ruff: noqa: F811  (pytest fixtures imported from tests.documents_helpers)
"""The capture panel in the real desk window (Xvfb) against the real reference server, with the
SANE test backend as the scanner: capture into a slot, thumbnails, reorder/delete, finish and
upload (state shown per item), the one-time notification and suspending without materials.

It also shows the Tk thread never decodes an image: ``PIL.Image.open`` is wrapped to record
the calling thread during the whole session, and every call must come from a worker.
Screenshots (zh and en) go to $COUNTER_ARTIFACTS/screenshots/capture_*.png.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from counter_app.documents import notice
from tests.documents_helpers import (
    MemoryKeyring,
    a4_jpeg,
    memory_keyring,  # noqa: F401 - fixture
    sane_test_backend,  # noqa: F401 - fixture
)
from tests.support.gui_fixtures import pump, pump_until, screenshot
from tests.support.server_fixtures import Api, start_server_process
from ui import i18n

pytestmark = pytest.mark.gui


@pytest.fixture
def hall_proc(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """The demo hall server in its OWN process. A server thread inside this Tk test process can
    run the garbage collector over Tk objects: `tkinter.Font.__del__` then calls Tcl from the
    server's thread, which blocks its event loop, and the upload was never confirmed (seen under
    load, with a stack dump). The desk is a separate process from its server in a hall, too."""
    data = tmp_path / "hall"
    srv = start_server_process(data, demo=True)
    yield SimpleNamespace(url=srv.url, data_dir=data)
    srv.terminate()


def _matter(url: str) -> Any:
    from api_client import HallClient

    c = HallClient(url)
    c.login("8001", "demo1234")
    try:
        for m in c.sync_matters().items:
            req = [i for i in m.checklist if i.requirement == "required"]
            if m.category == "A" and len(req) >= 2:
                return m
    finally:
        c.close()
    raise AssertionError("no demo matter with two required items in category A")


def _serving(desk_app_factory: Any, url: str, matter: Any, tmp_path: Path) -> Any:
    app = desk_app_factory(url, 1, scanner_source="sane", scanner_device="test:0",
                           scanner_folder=str(tmp_path / "hot"))
    pump_until(app.root, lambda: app.signin is not None and app.signin.server_ok, what="server check")
    app.sign_in("1001", "demo1234")
    pump_until(app.root, lambda: app.desk_view is not None, what="the desk")
    r = Api(url).post("/tickets", json={"category": "A", "matter_code": matter.code})
    assert r.status_code == 201, r.text
    pump_until(app.root, lambda: app.core.catalog.get(matter.code) is not None, what="catalog")
    # The SANE test devices keep option values between opens: give them a colour test page
    # instead of their default solid black, so the thumbnails show something.
    import sane

    from counter_app.documents.sources import _sane

    _sane()
    for dev_name in ("test:0", "test:1"):
        dev = sane.open(dev_name)
        dev.test_picture = "Color pattern"
        dev.close()
    for key, state in (("F1", "calling"), ("F7", "serving")):
        app.root.focus_force()
        app.root.event_generate(f"<{key}>", when="tail")
        pump_until(app.root, lambda s=state: app.desk.s.state == s and app.desk.s.busy is None,
                   what=state)
    pump_until(app.root, lambda: app.desk_view.checklist.tree.get_children(), what="checklist rows")
    return app


@pytest.fixture
def image_open_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every PIL.Image.open call's thread name, for the whole test."""
    seen: list[str] = []
    real = Image.open

    def spy(*a: Any, **kw: Any) -> Any:
        seen.append(threading.current_thread().name)
        return real(*a, **kw)

    monkeypatch.setattr(Image, "open", spy)
    return seen


def test_capture_panel_scan_reorder_finish_upload(desk_app_factory: Any, hall_proc: Any,
                                                  tmp_path: Path, sane_test_backend: str,
                                                  memory_keyring: MemoryKeyring,
                                                  image_open_threads: list[str]) -> None:
    url = hall_proc.url
    matter = _matter(url)
    app = _serving(desk_app_factory, url, matter, tmp_path)
    first = matter.checklist[0]
    app.desk_view.checklist.tree.selection_set(first.id)
    app.desk_view.capture_button.invoke()
    win = pump_until(app.root, lambda: getattr(app, "capture_window", None), what="the panel")
    p = win.presenter
    assert p.selected == first.id
    assert win.tree.selection() == (first.id,)
    p.set_options(resolution=150)
    # Flatbed scan, then a batch from the feeder of the same SANE test device family.
    win.capture_button.invoke()
    pump_until(app.root, lambda: not p.busy and len(p._slot(first.id).pages) == 1, what="flatbed page")
    p.device = "test:1"
    win._on_feed("自动进纸")
    assert p.feed == "adf"
    win.capture_button.invoke()
    pump_until(app.root, lambda: not p.busy and len(p._slot(first.id).pages) > 1, what="ADF batch")
    n = len(p._slot(first.id).pages)
    assert n == 11  # 1 flatbed + the test feeder's 10 sheets
    assert len(win._thumb_frames) == n
    # Import a file through the import button (the dialog answered by the test).
    f = tmp_path / "extra.jpg"
    f.write_bytes(a4_jpeg(150, seed=9))
    win.ask_files = lambda on_done: on_done([str(f)])  # type: ignore[method-assign]
    win.import_button.invoke()
    pump_until(app.root, lambda: not p.busy and len(p._slot(first.id).pages) == n + 1, what="import")
    # Select the last page, move it earlier, delete the first.
    last = p._slot(first.id).pages[-1]
    win._thumb_frames[-1]._canvas.event_generate("<Button-1>")  # where a click lands
    pump(app.root, 0.05)
    assert p.page_index == n
    win.edit_buttons["left"].invoke()
    pump_until(app.root, lambda: p._slot(first.id).pages[n - 1] is last, what="moved")
    win._thumb_frames[0]._canvas.event_generate("<Button-1>")
    pump(app.root, 0.05)
    win.edit_buttons["delete"].invoke()
    pump_until(app.root, lambda: len(p._slot(first.id).pages) == n, what="deleted")
    pump(app.root, 0.2)
    screenshot(win, "capture_panel_zh")
    i18n.set_language("en")
    pump(app.root, 0.2)
    assert win.finish_button.cget("text") == "Finish and upload"
    screenshot(win, "capture_panel_en")
    i18n.set_language("zh")
    pump(app.root, 0.1)
    # Finish: one PDF, queued, uploaded by the outbox worker, confirmed on screen.
    docs = hall_proc.data_dir / "documents"  # the demo's history has stored paper forms there
    before = set(docs.iterdir()) if docs.is_dir() else set()
    win.finish_button.invoke()
    pump_until(app.root, lambda: p._slot(first.id).upload_state == "confirmed", timeout=60,
               what="upload confirmed")
    pump_until(app.root, lambda: "已上传" in str(win.tree.item(first.id, "values")[4]), what="row")
    pump_until(app.root, lambda: any(m.item_id == first.id and m.status == "received"
                                     for m in (p.case.materials or ())), what="marked received")
    assert app.core.documents.store.documents() == []
    assert len(set(docs.iterdir()) - before) == 1
    screenshot(win, "capture_uploaded_zh")
    # The Tk thread never opened (decoded) an image; workers did.
    assert image_open_threads, "no image was opened at all"
    assert "MainThread" not in image_open_threads, image_open_threads
    win.close()


def test_closing_the_panel_while_the_pdf_is_made_loses_nothing(
        desk_app_factory: Any, hall_proc: Any, tmp_path: Path, sane_test_backend: str,
        memory_keyring: MemoryKeyring, caplog: pytest.LogCaptureFixture) -> None:
    """A clerk presses "finish" and closes the panel at once (seen in the frozen desk test): the
    PDF is still made and uploaded, and its result is not drawn into the destroyed window (that
    raised TclError "invalid command name" in a Tk callback)."""
    matter = _matter(hall_proc.url)
    app = _serving(desk_app_factory, hall_proc.url, matter, tmp_path)
    first = matter.checklist[0]
    app.desk_view.checklist.tree.selection_set(first.id)
    app.desk_view.capture_button.invoke()
    win = pump_until(app.root, lambda: getattr(app, "capture_window", None), what="the panel")
    p = win.presenter
    p.set_options(resolution=150)
    win.capture_button.invoke()
    pump_until(app.root, lambda: not p.busy and len(p._slot(first.id).pages) == 1, what="page")
    docs = hall_proc.data_dir / "documents"  # the demo's history has stored paper forms there
    before = set(docs.iterdir()) if docs.is_dir() else set()
    win.finish_button.invoke()
    assert p.busy  # the PDF is being made on a worker
    win.close()
    pump_until(app.root, lambda: docs.is_dir() and bool(set(docs.iterdir()) - before), timeout=60,
               what="the upload after the panel closed")
    pump(app.root, 0.3)
    bad = [r.getMessage() for r in caplog.records if "uncaught error" in r.getMessage()]
    assert not bad, bad


def test_scanner_missing_offers_file_import(desk_app_factory: Any, hall_proc: Any,
                                            tmp_path: Path, sane_test_backend: str,
                                            memory_keyring: MemoryKeyring) -> None:
    matter = _matter(hall_proc.url)
    app = _serving(desk_app_factory, hall_proc.url, matter, tmp_path)
    app.desk_view.capture_button.invoke()
    win = pump_until(app.root, lambda: getattr(app, "capture_window", None), what="the panel")
    win.presenter.device = "test:7"  # unplugged
    win.capture_button.invoke()
    pump_until(app.root, lambda: not win.presenter.busy and win.message_kind == "error", what="error")
    text = win.message_label.cget("text")
    assert "未找到扫描仪" in text and "导入文件" in text
    screenshot(win, "capture_scanner_missing_zh")
    win.close()


def test_one_time_notice_then_suspend(desk_app_factory: Any, hall_proc: Any,
                                      tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    matter = _matter(hall_proc.url)
    app = _serving(desk_app_factory, hall_proc.url, matter, tmp_path)
    # The spool file is deleted once printed (issue 17 item 4): keep what the printer got.
    printed: list[bytes] = []
    notice.set_printer(lambda path: printed.append(path.read_bytes()))
    try:
        app.desk_view.capture_button.invoke()
        win = pump_until(app.root, lambda: getattr(app, "capture_window", None), what="the panel")
        p = win.presenter
        required = [i for i in matter.checklist if i.requirement == "required"]
        # One required item arrives as an electronic licence; the rest are missing.
        p.select(required[0].id)
        win.mark_buttons["e_licence"].invoke()
        pump_until(app.root, lambda: not p.busy and any(
            m.item_id == required[0].id and m.status == "e_licence" for m in p.case.materials),
            what="e-licence mark")
        assert len(p.missing()) == len(required) - 1
        win.notice_button.invoke()
        pump_until(app.root, lambda: win.yes_no is not None, what="the suspend question")
        assert len(printed) == 1 and printed[0].startswith(b"%PDF")
        screenshot(win.yes_no, "capture_notice_prompt_zh")
        win.yes_button.invoke()
        pump_until(app.root, lambda: win.closed, what="panel closed after suspend")
        pump_until(app.root, lambda: app.desk.s.state == "idle", what="desk idle")
        snap = app.core.client.queue(1)
        assert len(snap.suspended) == 1
    finally:
        notice.set_printer(None)
