"""The checklist panel of the current case: one row per material, its status settable by keys.

Select a row, then press 1-5 (or a button): received / electronic licence / accepted-pending /
missing / not applicable; the note field is sent with it. A required material that is missing
is shown in the danger colour AND says so in words, so colour-blind staff see it too.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable, Sequence
from functools import partial
from tkinter import ttk

import customtkinter as ctk

from ui import style
from ui.i18n import N_, _
from ui.presenters.format import MATERIAL_LABELS, MATERIAL_STATUSES, ChecklistRow
from ui.views.common import Relabel, set_enabled

COLUMNS = ("name", "requirement", "status", "note")
HEADINGS = {"name": N_("Material"), "requirement": N_("Requirement"), "status": N_("Status"),
            "note": N_("Note")}


class ChecklistPanel(ctk.CTkFrame):
    def __init__(self, master: tk.Misc, *, on_set: Callable[[str, str, str], None]) -> None:
        super().__init__(master)
        self._on_set = on_set
        self.status_buttons: dict[str, ctk.CTkButton] = {}
        self.labels = Relabel(self, self._relabel_headings)
        self.grid_columnconfigure(0, weight=1)
        self.grid_rowconfigure(1, weight=1)
        self.title = ctk.CTkLabel(self, font=style.font(18, "bold"), anchor="w")
        self.title.grid(row=0, column=0, sticky="ew", padx=12, pady=(8, 4))
        self.tree = ttk.Treeview(self, columns=COLUMNS, show="headings",
                                 style=style.style_treeview(self, "Checklist.Treeview", 32),
                                 selectmode="browse", height=6)
        widths = {"name": 400, "requirement": 130, "status": 180, "note": 110}
        for col in COLUMNS:
            self.tree.column(col, width=widths[col], anchor="w", stretch=col == "name")
        self._relabel_headings()
        self.tree.tag_configure("alarm", foreground=style.pick("danger"))
        self.tree.tag_configure("done", foreground=style.pick("ok"))
        self.tree.grid(row=1, column=0, sticky="nsew", padx=12, pady=4)

        bar = ctk.CTkFrame(self, fg_color="transparent")
        bar.grid(row=2, column=0, sticky="ew", padx=12, pady=(2, 10))
        for i, status in enumerate(MATERIAL_STATUSES, start=1):
            b = ctk.CTkButton(bar, height=34, width=100, font=style.font(14),
                              command=partial(self.set_selected, status),
                              fg_color=style.color("button_secondary"),
                              hover_color=style.color("button_secondary_hover"))
            b.grid(row=0, column=i - 1, padx=(0, 6))
            self.status_buttons[status] = b
            self.tree.bind(str(i), self._key_for(status))
        self.note_entry = ctk.CTkEntry(bar, height=34, width=170, font=style.font(14))
        self.labels.text(self.note_entry, N_("Note (optional)"), option="placeholder_text")
        self.note_entry.grid(row=0, column=len(MATERIAL_STATUSES), padx=(6, 0), sticky="ew")
        bar.grid_columnconfigure(len(MATERIAL_STATUSES), weight=1)
        self._relabel_headings()

    def _relabel_headings(self) -> None:
        for col in COLUMNS:
            self.tree.heading(col, text=_(HEADINGS[col]))
        for i, (status, b) in enumerate(self.status_buttons.items(), start=1):
            b.configure(text=f"{_(MATERIAL_LABELS[status])} [{i}]")

    def show(self, title: str, rows: Sequence[ChecklistRow]) -> None:
        self.title.configure(text=title)
        selected = self.tree.selection()
        self.tree.delete(*self.tree.get_children(""))
        for row in rows:
            tags = ("alarm",) if row.alarm else (("done",) if row.status in ("received", "e_licence") else ())
            name = row.name + (" · " + _("e-licence available") if row.e_licence else "")
            self.tree.insert("", "end", iid=row.item_id, tags=tags,
                             values=(name, row.requirement_label, row.status_label, row.note))
        if selected and self.tree.exists(selected[0]):
            self.tree.selection_set(selected[0])
        elif rows:
            self.tree.selection_set(rows[0].item_id)
        for b in self.status_buttons.values():
            set_enabled(b, bool(rows), style.color("button_secondary"))

    def _key_for(self, status: str) -> Callable[[tk.Event[tk.Misc]], None]:
        """The digit key that marks the selected material ``status``."""

        def on_key(_e: tk.Event[tk.Misc]) -> None:
            self.set_selected(status)

        return on_key

    def set_selected(self, status: str) -> None:
        sel = self.tree.selection()
        if sel:
            note = self.note_entry.get().strip()
            self._on_set(sel[0], status, note)
            self.note_entry.delete(0, "end")
