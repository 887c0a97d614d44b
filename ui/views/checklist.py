"""The checklist panel of the current case: one row per material, its status settable by keys.

Keyboard-first: after F7/F8 the list has the focus (a clear ring around it); ↑/↓ move, 1-5 mark
the focus row received / electronic licence / accepted-pending / missing / not applicable and
move to the next row; the focus row survives the redraw that follows. The note field is sent
with the status. Every material starts 未核对 (neutral); a required material marked missing is
shown in the danger colour AND says so in words, so colour-blind staff see it too.
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
        # The focus ring: ttk's Treeview draws none, so a frame around it lights up on focus.
        self.ring = tk.Frame(self, highlightthickness=3, bd=0,
                             highlightbackground=style.pick("tree_heading_bg"),
                             highlightcolor=style.pick("accent"))
        self.tree = ttk.Treeview(self.ring, columns=COLUMNS, show="headings",
                                 style=style.style_treeview(self, "Checklist.Treeview", 32),
                                 selectmode="browse", height=3)  # grows with the window
        self.tree.bind("<FocusIn>", lambda _e: self._ring(True), add=True)
        self.tree.bind("<FocusOut>", lambda _e: self._ring(False), add=True)
        # Narrow enough for 1280 px (the name column takes what is left).
        widths = {"name": 300, "requirement": 110, "status": 150, "note": 80}
        for col in COLUMNS:
            self.tree.column(col, width=widths[col], anchor="w", stretch=col == "name")
        self._relabel_headings()
        self.tree.tag_configure("alarm", foreground=style.pick("danger"))
        self.tree.tag_configure("done", foreground=style.pick("ok"))
        self.ring.grid(row=1, column=0, sticky="nsew", padx=12, pady=4)
        self.ring.grid_columnconfigure(0, weight=1)
        self.ring.grid_rowconfigure(0, weight=1)
        self.tree.grid(row=0, column=0, sticky="nsew")
        # A long checklist (11 items) scrolls, and the bar says there is more.
        self.scroll = ctk.CTkScrollbar(self.ring, command=self.tree.yview)
        self.tree.configure(yscrollcommand=self.scroll.set)
        self.scroll.grid(row=0, column=1, sticky="ns")

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

    def _ring(self, on: bool) -> None:
        colour = style.pick("accent") if on else style.pick("tree_heading_bg")
        self.ring.configure(highlightbackground=colour, highlightcolor=colour)

    def show(self, title: str, rows: Sequence[ChecklistRow]) -> None:
        self.title.configure(text=title)
        # Redrawn after every status change: keep the clerk's row (focus and selection).
        keep = self.tree.focus() or next(iter(self.tree.selection()), "")
        self.tree.delete(*self.tree.get_children(""))
        for row in rows:
            tags = ("alarm",) if row.alarm else (("done",) if row.status in ("received", "e_licence") else ())
            name = row.name + (" · " + _("e-licence available") if row.e_licence else "")
            self.tree.insert("", "end", iid=row.item_id, tags=tags,
                             values=(name, row.requirement_label, row.status_label, row.note))
        if keep and self.tree.exists(keep):
            self._go(keep)
        elif rows:
            self._go(rows[0].item_id)
        for b in self.status_buttons.values():
            set_enabled(b, bool(rows), style.color("button_secondary"))

    def _go(self, iid: str) -> None:
        """Make ``iid`` the focus row: selected, focused (↑/↓ move from it) and in view."""
        self.tree.selection_set(iid)
        self.tree.focus(iid)
        self.tree.see(iid)

    def focus_rows(self) -> None:
        """Give the list the keyboard (after F7/F8); the focus row stays, or is the first row."""
        self.tree.focus_set()
        if not self.tree.focus():
            rows = self.tree.get_children("")
            if rows:
                self._go(rows[0])

    def _key_for(self, status: str) -> Callable[[tk.Event[tk.Misc]], None]:
        """The digit key that marks the focus row ``status`` and moves on to the next row."""

        def on_key(_e: tk.Event[tk.Misc]) -> None:
            self.set_selected(status, advance=True)

        return on_key

    def set_selected(self, status: str, advance: bool = False) -> None:
        sel = self.tree.focus() or next(iter(self.tree.selection()), "")
        if sel:
            note = self.note_entry.get().strip()
            self._on_set(sel, status, note)
            if note:  # clearing an empty CTkEntry would wipe its placeholder too
                self.note_entry.delete(0, "end")
            nxt = self.tree.next(sel)
            if advance and nxt:
                self._go(nxt)
