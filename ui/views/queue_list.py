"""The waiting list: one themed ttk.Treeview (never a CTk widget per row), updated by diff.

Waiting tickets in call order, then suspended ones (shown in the warning colour, with a note).
Enter, a double click or the button below acts on the selected row: a waiting ticket is called
by name (指呼), a suspended one is resumed here. The button says which.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable, Sequence
from tkinter import ttk
from typing import Any

import customtkinter as ctk

from ui import style
from ui.i18n import N_, _
from ui.presenters.format import QueueRow
from ui.views.common import Relabel, set_enabled

COLUMNS = ("number", "priority", "category", "waited", "note")
HEADINGS = {"number": N_("Ticket"), "priority": N_("Priority"), "category": N_("Category"),
            "waited": N_("Waited"), "note": N_("Note")}


class QueueList(ctk.CTkFrame):
    def __init__(self, master: tk.Misc, *, on_resume: Callable[[int], None]) -> None:
        super().__init__(master)
        self._on_resume = on_resume
        self._rows: dict[str, tuple[Any, ...]] = {}
        self._suspended: set[str] = set()
        self._order: list[str] = []
        self.labels = Relabel(self, self._relabel_headings)
        self.grid_columnconfigure(0, weight=1)
        self.grid_rowconfigure(1, weight=1)
        self.title = ctk.CTkLabel(self, font=style.font(18, "bold"), anchor="w")
        self.title.grid(row=0, column=0, sticky="ew", padx=12, pady=(8, 4))
        self.style_name = style.style_treeview(self)
        self.tree = ttk.Treeview(self, columns=COLUMNS, show="headings", style=self.style_name,
                                 selectmode="browse")
        widths = {"number": 90, "priority": 110, "category": 80, "waited": 90, "note": 220}
        for col in COLUMNS:
            self.tree.column(col, width=widths[col], anchor="w", stretch=col == "note")
        self._relabel_headings()
        self.tree.tag_configure("suspended", foreground=style.pick("tree_suspended"))
        self.tree.tag_configure("green", foreground=style.pick("tree_green"))
        self.scroll = ctk.CTkScrollbar(self, command=self.tree.yview)
        self.tree.configure(yscrollcommand=self.scroll.set)
        self.tree.grid(row=1, column=0, sticky="nsew", padx=(12, 0), pady=4)
        self.scroll.grid(row=1, column=1, sticky="ns", padx=(0, 8), pady=4)
        self.resume_button = ctk.CTkButton(self, height=40, font=style.font(16, "bold"),
                                           command=self.resume_selected, state="disabled")
        self._resume_fg = self.resume_button.cget("fg_color")
        self.resume_button.grid(row=2, column=0, columnspan=2, sticky="ew", padx=12, pady=(4, 10))
        self._update_resume()
        self.tree.bind("<<TreeviewSelect>>", lambda _e: self._update_resume())
        self.tree.bind("<Return>", lambda _e: self.resume_selected())
        self.tree.bind("<Double-1>", lambda _e: self.resume_selected())

    def _relabel_headings(self) -> None:
        for col in COLUMNS:
            self.tree.heading(col, text=_(HEADINGS[col]))
        if hasattr(self, "resume_button"):
            self.resume_button.configure(text=_(self._button_text()))

    def set_title(self, text: str) -> None:
        self.title.configure(text=text)

    def show_rows(self, rows: Sequence[QueueRow]) -> None:
        """Bring the tree in line with ``rows``, touching only what changed."""
        new_order = [r.iid for r in rows]
        wanted = {r.iid: r for r in rows}
        for iid in [i for i in self._order if i not in wanted]:
            self.tree.delete(iid)
            self._rows.pop(iid, None)
            self._suspended.discard(iid)
        for index, row in enumerate(rows):
            values = (row.number, row.priority_label, row.category, row.waited, row.note)
            tags = ("suspended",) if row.suspended else (("green",) if row.priority == "green" else ())
            if row.iid not in self._rows:
                self.tree.insert("", index, iid=row.iid, values=values, tags=tags)
            elif self._rows[row.iid] != values + tags:
                self.tree.item(row.iid, values=values, tags=tags)
            self._rows[row.iid] = values + tags
            if row.suspended:
                self._suspended.add(row.iid)
            else:
                self._suspended.discard(row.iid)
        if new_order != list(self.tree.get_children("")):
            for index, iid in enumerate(new_order):
                self.tree.move(iid, "", index)
        self._order = new_order
        self._update_resume()

    def _button_text(self) -> str:
        sel = self.tree.selection()
        if sel and sel[0] in self._rows and sel[0] not in self._suspended:
            return N_("Call the selected ticket now (Enter)")
        return N_("Resume selected suspended ticket (Enter)")

    def _update_resume(self) -> None:
        sel = self.tree.selection()
        ok = bool(sel) and sel[0] in self._rows
        set_enabled(self.resume_button, ok, self._resume_fg)
        self.resume_button.configure(text=_(self._button_text()))

    def resume_selected(self) -> None:
        """Act on the selected row (call a waiting ticket, resume a suspended one)."""
        sel = self.tree.selection()
        if sel and sel[0] in self._rows:
            self._on_resume(int(sel[0]))

    def row_ids(self) -> list[str]:
        return list(self.tree.get_children(""))

    def row_values(self, iid: str) -> tuple[Any, ...]:
        try:
            return tuple(self.tree.item(iid, "values"))
        except tk.TclError:
            return ()
