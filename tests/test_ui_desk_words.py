"""The desk's search in the clerks' words and its dialogs in the desk's style and language
(issue 16 items 6 and 7): the real desk window (customtkinter under Xvfb) against the real
reference server on loopback.

* F8 lists the first matters at once and says so ("前 50 个事项" is not "找到 50 个"); "sbk" and
  "社保卡" find 社会保障卡; rows start with the code and an English name is not cut off.
* F4 transfer takes a reason (kept in the case's notes) and a priority as desk buttons
  (PgUp/PgDn); the import-file chooser is the desk's own, in the desk's language, keyboard
  first; disabled capture buttons are flat grey; no config key or raw path in the clerk's
  error texts.
"""

from __future__ import annotations

import tkinter.font as tkfont
from pathlib import Path
from typing import Any

import pytest

from tests.support.gui_fixtures import pump, pump_until, screenshot
from tests.support.server_fixtures import signed_in
from tests.test_ui_desk import (
    desk_state,
    dialog,
    dialog_closed,
    issue,
    key_in,
    open_desk,
    press,
    type_text,
)
from ui import i18n, style

pytestmark = pytest.mark.gui


def type_words(widget: Any, text: str) -> None:
    """Type ``text`` as an input method commits it (Chinese comes in one go), then a key up."""
    widget.focus_force()
    widget.insert("end", text)
    widget.event_generate("<KeyRelease>", keysym="space", when="tail")
    widget.update()


def serving(app: Any, url: str) -> dict[str, Any]:
    pump_until(app.root, lambda: app.core.catalog is not None and app.core.catalog.count() > 100,
               what="the catalog synced")
    tk_ = issue(url)
    press(app, "F1")
    pump_until(app.root, lambda: desk_state(app) == "calling", what="calling")
    press(app, "F7")
    pump_until(app.root, lambda: desk_state(app) == "serving", what="serving")
    return tk_


def test_matter_search_finds_clerks_words_and_says_what_it_lists(desk_app_factory: Any,
                                                                  fresh_hall_server: Any) -> None:
    app = open_desk(desk_app_factory, fresh_hall_server.url)
    serving(app, fresh_hall_server.url)
    press(app, "F8")
    d = dialog(app)
    # The first matters at once, said as "the first 50", not "found".
    pump_until(app.root, lambda: d.listbox.size() == 50, what="the first 50 matters")
    assert d.count_label.cget("text") == "前 50 个事项，输入可搜索"
    screenshot(d, "padux_matter_dialog_empty_zh")
    for q in ("sbk", "社保卡"):
        d.entry.delete(0, "end")
        type_words(d.entry, q)
        pump_until(app.root, lambda: d.listbox.size() > 0 and "社会保障卡" in d.listbox.get(0),
                   what=f"{q} finds 社会保障卡")
        assert d.count_label.cget("text").startswith("找到 ")
    screenshot(d, "padux_matter_dialog_sbk_zh")
    d.entry.delete(0, "end")
    type_text(d.entry, "qqqqqq")
    pump_until(app.root, lambda: d.listbox.size() == 0, what="nothing for nonsense")
    assert d.count_label.cget("text") == "未找到事项，可换个说法或输入编码"
    key_in(d.entry, "Escape")
    pump_until(app.root, lambda: dialog_closed(app), what="closed")

    # In English: the code first, and the name after it fits in the row.
    i18n.set_language("en")
    pump(app.root, 0.1)
    press(app, "F8")
    d = dialog(app)
    pump_until(app.root, lambda: d.listbox.size() == 50, what="the first 50 matters (en)")
    assert d.count_label.cget("text") == "The first 50 matters; type to search"
    type_words(d.entry, "social security card")
    pump_until(app.root, lambda: d.listbox.size() > 0, what="English search")
    font = tkfont.Font(font=d.listbox.cget("font"))
    width = d.listbox.winfo_width()
    codes = {m.code for m in d._results}
    for i in range(d.listbox.size()):
        row = d.listbox.get(i)
        code = row.split()[0]
        assert code in codes, row
        code_and_name = row.split("  ·  ")[0]
        assert font.measure(code_and_name) < width, (row, font.measure(code_and_name), width)
    screenshot(d, "padux_matter_dialog_en")
    key_in(d.entry, "Escape")
    i18n.set_language("zh")


def test_transfer_takes_a_reason_and_a_priority_from_the_keyboard(desk_app_factory: Any,
                                                                  fresh_hall_server: Any) -> None:
    url = fresh_hall_server.url
    app = open_desk(desk_app_factory, url)
    tk_ = serving(app, url)
    case_id = app.desk.s.case.id
    press(app, "F4")
    d = dialog(app)
    assert d.priority.winfo_class() != "TCombobox"  # the desk's own buttons, not Tk's drop-down
    d.reason_entry.insert(0, "需到不动产窗口查档")
    key_in(d.listbox, "Next")
    key_in(d.listbox, "Next")
    assert d.priority.get() == "绿色通道"
    screenshot(d, "padux_dialog_transfer_zh")
    key_in(d.listbox, "Return")
    pump_until(app.root, lambda: desk_state(app) == "idle", what="idle after transfer")
    sup = signed_in(url, "8001")
    moved = sup.get(f"/tickets/{tk_['id']}").json()
    assert moved["state"] == "waiting" and moved["priority"] == "green"
    notes = sup.get(f"/cases/{case_id}").json().get("notes", "")
    assert "需到不动产窗口查档" in notes
    # The same dialog in English (labels and the priority buttons in the desk's language).
    i18n.set_language("en")
    try:
        issue(url)
        press(app, "F1")
        pump_until(app.root, lambda: desk_state(app) == "calling", what="calling")
        press(app, "F4")
        d = dialog(app)
        assert d.priority.get() == "Keep its priority"
        screenshot(d, "padux_dialog_transfer_en")
        key_in(d.listbox, "Escape")
    finally:
        i18n.set_language("zh")


def test_import_uses_the_desks_own_chooser_in_its_language(tmp_path: Path) -> None:
    """The chooser alone on a Tk root (no desk needed): lists the folder's scans on a worker,
    Enter opens a folder, Backspace goes up, Ctrl+A and Enter import; in zh and in en."""
    import customtkinter as ctk

    style.apply()
    (tmp_path / "sub").mkdir()
    for name in ("a.pdf", "b.jpg", "notes.txt"):
        (tmp_path / "sub" / name).write_bytes(b"x" * 10)
    root = ctk.CTk()
    root.geometry("1200x800+0+0")
    try:
        choose_in(root, tmp_path, "zh", "选择要导入的扫描件", "扫描件（图片、PDF）")
        choose_in(root, tmp_path, "en", "Choose scans to import", "Scans (images, PDF)")
    finally:
        i18n.set_language("zh")
        root.destroy()


def choose_in(root: Any, folder: Path, lang: str, title: str, scans: str) -> None:
    from ui.views.file_chooser import FileChooser

    i18n.set_language(lang)
    got: list[list[str]] = []
    fc = FileChooser(root, got.append, start=folder)
    assert fc.title() == title and fc.filter.get() == scans
    pump_until(root, lambda: fc.listbox.size() == 1, what="the folder listed")
    assert fc.listbox.get(0).strip().startswith("▸ sub")
    key_in(fc.listbox, "Return")  # open the folder
    pump_until(root, lambda: fc.folder == folder / "sub" and fc.listbox.size() == 2,
               what="the scans listed (not notes.txt)")
    screenshot(fc, f"padux_file_chooser_{lang}")
    key_in(fc.listbox, "BackSpace")
    pump_until(root, lambda: fc.folder == folder and fc.listbox.size() == 1, what="up again")
    key_in(fc.listbox, "Return")
    pump_until(root, lambda: fc.listbox.size() == 2, what="into sub again")
    key_in(fc.listbox, "Control-a")
    key_in(fc.listbox, "Return")
    pump_until(root, lambda: got, what="the files chosen")
    assert sorted(Path(p).name for p in got[0]) == ["a.pdf", "b.jpg"]


def test_no_native_dialog_disabled_buttons_grey_and_no_keys_or_paths_in_errors(tmp_path: Path) -> None:
    import ast
    import inspect

    import ui.views.capture as capture_view
    from counter_app.documents.sources import HotFolderSource

    tree = ast.parse(inspect.getsource(capture_view))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert "filedialog" not in imported
    missing = tmp_path / "no-such-folder"
    h = HotFolderSource(missing).health()
    for text in (h.message_zh, h.message_en):
        assert str(missing) not in text and "scanner_folder" not in text
    import customtkinter as ctk

    from ui.views.capture import CaptureWindow

    # The capture panel's green "finish" and orange "notice" turn flat grey when they cannot be
    # pressed, and get their colour back when they can.
    style.apply()
    root = ctk.CTk()
    try:
        win = CaptureWindow(root)
        green, orange = win.finish_button.cget("fg_color"), win.notice_button.cget("fg_color")
        grey = style.color("button_disabled")
        assert grey not in (green, orange)
        win.show_controls("file", 300, "color", "flatbed", busy=False, can_finish=False, can_notice=False)
        assert win.finish_button.cget("fg_color") == grey and win.notice_button.cget("fg_color") == grey
        assert win.finish_button.cget("state") == "disabled"
        assert win.res_menu.cget("fg_color") == grey  # scanner options off for files
        screenshot(win, "padux_capture_disabled_zh")
        win.show_controls("file", 300, "color", "flatbed", busy=False, can_finish=True, can_notice=True)
        assert win.finish_button.cget("fg_color") == green and win.notice_button.cget("fg_color") == orange
    finally:
        root.destroy()
