"""The desk's own file chooser for "Import file": in the desk's style and language.

Tk's native dialog on Linux is English whatever the desk's language, with its own look and a
filter label in another language; this one is a desk dialog like the others: a folder bar, a
list of folders and files (images and PDF, or all files), keyboard first. Enter opens the
selected folder or imports the selected files, Backspace goes up a folder, Ctrl+A selects every
file, Escape cancels; Shift/Ctrl + arrows or clicks select several files.

Listing a folder is I/O (a network share can hang): it runs on a worker thread and the list is
filled when it comes back, so the Tk thread never waits on it.
"""

from __future__ import annotations

import os
import queue
import threading
import tkinter as tk
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import customtkinter as ctk

from ui import style
from ui.i18n import N_, _
from ui.views.common import select_index, selected_indices, themed_listbox
from ui.views.dialogs import Dialog

SCAN_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".pdf"})


@dataclass(frozen=True)
class Entry:
    """One row: a folder or a file of the folder shown."""

    path: Path
    is_dir: bool
    size: int = 0


def list_folder(folder: Path, only_scans: bool) -> tuple[list[Entry], str]:
    """(rows: folders first, then files, by name; an error text for the clerk, or "")."""
    try:
        with os.scandir(folder) as it:
            found = list(it)
    except OSError:
        return [], _("This folder cannot be opened.")
    rows: list[Entry] = []
    for e in found:
        if e.name.startswith("."):
            continue
        try:
            if e.is_dir():
                rows.append(Entry(Path(e.path), True))
            elif e.is_file() and (not only_scans or Path(e.name).suffix.lower() in SCAN_SUFFIXES):
                rows.append(Entry(Path(e.path), False, e.stat().st_size))
        except OSError:
            continue
    rows.sort(key=lambda r: (not r.is_dir, r.path.name.lower()))
    return rows, ""


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MB"
    return f"{max(1, n // 1024)} KB"


class FileChooser(Dialog):
    """Choose scan files to import (see the module docstring); ``on_done`` gets the paths."""

    last_folder: Path | None = None  # the folder used last, for the next import

    def __init__(self, master: tk.Misc, on_done: Callable[[list[str]], None],
                 start: Path | None = None) -> None:
        super().__init__(master, N_("Choose scans to import"), N_("Import (Enter)"))
        self._on_done = on_done
        self._rows: list[Entry] = []
        self._results: queue.Queue[tuple[Path, list[Entry], str]] = queue.Queue()
        bar = ctk.CTkFrame(self.body, fg_color="transparent")
        bar.pack(fill="x", pady=(4, 4))
        self.up_button = ctk.CTkButton(bar, height=40, width=150, font=style.font(15),
                                       command=self.go_up, fg_color=style.color("button_secondary"),
                                       hover_color=style.color("button_secondary_hover"))
        self.labels.text(self.up_button, N_("Up (Backspace)"))
        self.up_button.pack(side="left")
        self.home_button = ctk.CTkButton(bar, height=40, width=120, font=style.font(15),
                                         command=lambda: self.show(Path.home()),
                                         fg_color=style.color("button_secondary"),
                                         hover_color=style.color("button_secondary_hover"))
        self.labels.text(self.home_button, N_("Home folder"))
        self.home_button.pack(side="left", padx=(8, 0))
        self.filter = ctk.CTkSegmentedButton(bar, font=style.font(15), command=lambda _v: self.refresh(),
                                             values=[_("Scans (images, PDF)"), _("All files")])
        self.filter.set(_("Scans (images, PDF)"))
        self.filter.pack(side="right")
        self.folder_label = ctk.CTkLabel(self.body, text="", font=style.font(15), anchor="w",
                                         text_color=style.color("muted"))
        self.folder_label.pack(fill="x")
        box = ctk.CTkFrame(self.body, fg_color="transparent")
        box.pack(fill="both", expand=True)
        self.listbox = themed_listbox(box, height=12)
        self.listbox.configure(width=64, selectmode="extended")
        self.scroll = ctk.CTkScrollbar(box, command=self.listbox.yview)
        self.listbox.configure(yscrollcommand=self.scroll.set)
        self.scroll.pack(side="right", fill="y")
        self.listbox.pack(side="left", fill="both", expand=True)
        self.listbox.bind("<Double-1>", lambda _e: self.confirm())
        self.listbox.bind("<BackSpace>", lambda _e: self.go_up())
        self.listbox.bind("<Control-a>", lambda _e: self.select_all_files())
        self.hint = ctk.CTkLabel(self.body, font=style.font(14), anchor="w", text_color=style.color("muted"))
        self.labels.text(self.hint, N_("Enter opens a folder or imports the chosen files; Shift or Ctrl "
                                       "with the arrows or a click chooses several; Backspace goes up."))
        self.hint.pack(fill="x")
        self.folder = Path("/")
        self.show(start or FileChooser.last_folder or Path.home())
        self.open(self.listbox)

    # -- the folder shown ---------------------------------------------------------------------
    def only_scans(self) -> bool:
        return bool(self.filter.get() == _("Scans (images, PDF)"))

    def show(self, folder: Path) -> None:
        self.folder = folder
        self.folder_label.configure(text=_("Folder: {folder}").format(folder=str(folder)))
        self.error_label.configure(text="")
        only = self.only_scans()

        def work() -> None:
            rows, error = list_folder(folder, only)
            self._results.put((folder, rows, error))

        threading.Thread(target=work, name="file-chooser-list", daemon=True).start()
        self.after(20, self._poll)

    def refresh(self) -> None:
        self.show(self.folder)

    def _poll(self) -> None:
        if not self.winfo_exists():
            return
        try:
            folder, rows, error = self._results.get_nowait()
        except queue.Empty:
            self.after(20, self._poll)
            return
        if folder != self.folder:  # an older listing: a newer one is on its way
            self.after(20, self._poll)
            return
        self._rows = rows
        self.listbox.delete(0, "end")
        for r in rows:
            self.listbox.insert("end", f"▸ {r.path.name}/" if r.is_dir
                                else f"   {r.path.name}    {_size(r.size)}")
        select_index(self.listbox, 0)
        if error:
            self.fail(error)
        elif not rows:
            self.fail(_("No scans in this folder."))

    def go_up(self) -> str:
        if self.folder.parent != self.folder:
            self.show(self.folder.parent)
        return "break"

    def select_all_files(self) -> str:
        self.listbox.selection_clear(0, "end")
        for i, r in enumerate(self._rows):
            if not r.is_dir:
                self.listbox.selection_set(i)
        return "break"

    # -- the answer ---------------------------------------------------------------------------
    def confirm(self) -> None:
        chosen = [self._rows[i] for i in selected_indices(self.listbox) if i < len(self._rows)]
        if len(chosen) == 1 and chosen[0].is_dir:
            self.show(chosen[0].path)
            return
        files = [str(r.path) for r in chosen if not r.is_dir]
        if not files:
            self.fail(_("Choose one or more files (or open a folder with Enter)."))
            return
        FileChooser.last_folder = self.folder
        self.close()
        self._on_done(files)
