"""Dialogs of the desk: transfer, pause with a reason, complete with an outcome, matter search.

Each is fully keyboard-usable: focus starts in the first field, Tab moves in creation order,
arrow keys move in lists, Enter confirms and Escape cancels. They call ``on_done`` with the
choice and never talk to the core themselves.
"""

from __future__ import annotations

import dataclasses
import tkinter as tk
import tkinter.font as tkfont
from collections.abc import Callable
from typing import Generic, TypeVar

import customtkinter as ctk

from api_client.models import Matter
from ui import style
from ui.i18n import N_, _
from ui.presenters.desk import GUARDED_OUTCOMES, CompleteChoice, TransferChoice
from ui.views.common import Relabel, Toplevel, select_index, selected_indices, themed_listbox

K = TypeVar("K")


class Dialog(Toplevel):
    """Modal-ish dialog: transient to the desk, grabs input, Enter = OK, Escape = cancel."""

    def __init__(self, master: tk.Misc, title_msgid: str, ok_msgid: str = N_("OK (Enter)")) -> None:
        super().__init__(master)
        self.labels = Relabel(self, self._retitle)
        self._title_msgid = title_msgid
        self._retitle()
        self.transient(master.winfo_toplevel())
        self.resizable(False, False)
        # A visible edge and an in-window title: hall PCs may run kiosk-like without decorations.
        tk.Toplevel.configure(self, highlightthickness=2,
                              highlightbackground=style.pick("accent"), highlightcolor=style.pick("accent"))
        self.heading = ctk.CTkLabel(self, font=style.font(20, "bold"), anchor="w")
        self.labels.text(self.heading, title_msgid)
        self.heading.pack(fill="x", padx=20, pady=(14, 0))
        self.body = ctk.CTkFrame(self, fg_color="transparent")
        self.body.pack(fill="both", expand=True, padx=20, pady=(6, 4))
        self.error_label = ctk.CTkLabel(self, text="", font=style.font(15),
                                        text_color=style.color("danger"), wraplength=520)
        self.error_label.pack(fill="x", padx=20)
        buttons = ctk.CTkFrame(self, fg_color="transparent")
        buttons.pack(fill="x", padx=20, pady=(6, 16))
        self.cancel_button = ctk.CTkButton(buttons, height=44, width=160, font=style.font(16),
                                           command=self.cancel,
                                           fg_color=style.color("button_secondary"),
                                           hover_color=style.color("button_secondary_hover"))
        self.labels.text(self.cancel_button, N_("Cancel (Esc)"))
        self.ok_button = ctk.CTkButton(buttons, height=44, width=200, font=style.font(16, "bold"),
                                       command=self.confirm)
        self.labels.text(self.ok_button, ok_msgid)
        self.ok_button.pack(side="right")
        self.cancel_button.pack(side="right", padx=(0, 10))
        self.bind("<Return>", lambda _e: self.confirm())
        self.bind("<KP_Enter>", lambda _e: self.confirm())
        self.bind("<Escape>", lambda _e: self.cancel())
        self.protocol("WM_DELETE_WINDOW", self.cancel)

    def _retitle(self) -> None:
        self.title(_(self._title_msgid))

    def open(self, first_focus: tk.Misc) -> None:
        self.update_idletasks()
        root = self.master.winfo_toplevel()
        x = root.winfo_rootx() + max((root.winfo_width() - self.winfo_reqwidth()) // 2, 0)
        y = root.winfo_rooty() + max((root.winfo_height() - self.winfo_reqheight()) // 3, 0)
        self.geometry(f"+{x}+{y}")
        self.lift()
        try:
            self.grab_set()
        except tk.TclError:
            pass  # not viewable yet on some WMs; the dialog still works without the grab
        first_focus.focus_set()

    def confirm(self) -> None:
        raise NotImplementedError

    def cancel(self) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.grab_release()
        except tk.TclError:
            pass
        self.destroy()

    def fail(self, text: str) -> None:
        self.error_label.configure(text=text)

    def caption(self, msgid: str) -> ctk.CTkLabel:
        label = ctk.CTkLabel(self.body, font=style.font(16), anchor="w")
        self.labels.text(label, msgid)
        label.pack(fill="x", pady=(6, 2))
        return label


class ListDialog(Dialog, Generic[K]):
    """A list to pick from (arrow keys + Enter); each row carries its key of type ``K``."""

    def __init__(self, master: tk.Misc, title_msgid: str, caption_msgid: str,
                 items: list[tuple[K, str]], on_done: Callable[[K], None], height: int = 8) -> None:
        super().__init__(master, title_msgid)
        self._items, self._on_done = items, on_done
        self.caption(caption_msgid)
        box = ctk.CTkFrame(self.body, fg_color="transparent")
        box.pack(fill="both", expand=True)
        self.listbox = themed_listbox(box, height=height)
        self.listbox.configure(width=44)
        for _key, text in items:
            self.listbox.insert("end", text)
        # Windows 12-13 and the categories below them scroll into view, with a visible bar.
        self.scroll = ctk.CTkScrollbar(box, command=self.listbox.yview)
        self.listbox.configure(yscrollcommand=self.scroll.set)
        self.scroll.pack(side="right", fill="y")
        self.listbox.pack(side="left", fill="both", expand=True)
        select_index(self.listbox, 0)

    def chosen(self) -> K | None:
        sel = selected_indices(self.listbox)
        return self._items[sel[0]][0] if sel else None


class SuspendDialog(Dialog):
    """F5 asks why (a habit F5 to refresh no longer sends the citizen away); the note goes with
    the ticket so the next window knows what the citizen is fetching."""

    def __init__(self, master: tk.Misc, on_done: Callable[[str], None]) -> None:
        super().__init__(master, N_("Suspend the ticket"), N_("Suspend (Enter)"))
        self._on_done = on_done
        self.caption(N_("What is the citizen fetching? (needed)"))
        self.entry = ctk.CTkEntry(self.body, height=44, font=style.font(18), width=520)
        self.entry.pack(fill="x")
        self.open(self.entry)

    def confirm(self) -> None:
        note = self.entry.get().strip()
        if not note:
            self.fail(_("Say why the ticket is suspended (e.g. fetching the ID card)."))
            self.entry.focus_set()
            return
        self.close()
        self._on_done(note)


class PauseDialog(ListDialog[str]):
    def __init__(self, master: tk.Misc, reasons: list[tuple[str, str]], on_done: Callable[[str], None]) -> None:
        super().__init__(master, N_("Pause the window"), N_("Reason (shown to citizens on the pad)"),
                         reasons, on_done)
        self.open(self.listbox)

    def confirm(self) -> None:
        code = self.chosen()
        if code is None:
            self.fail(_("Choose a reason."))
            return
        self.close()
        self._on_done(code)


class TransferDialog(ListDialog[TransferChoice]):
    """Where to, why (the next window reads it in the case's notes) and the priority, as desk
    buttons (PgUp/PgDn change it from the keyboard), not Tk's plain drop-down."""

    PRIORITIES = (("", N_("Keep its priority")), ("normal", N_("Normal")),
                  ("green", N_("Green channel")), ("appointment", N_("Appointment")))

    def __init__(self, master: tk.Misc, windows: list[tuple[int, str]], categories: list[tuple[str, str]],
                 on_done: Callable[[TransferChoice], None]) -> None:
        items = [(TransferChoice(to_window_no=no), label) for no, label in windows]
        items += [(TransferChoice(to_category=code), _("Category {label}").format(label=label))
                  for code, label in categories]
        super().__init__(master, N_("Transfer the citizen"), N_("To a window or a category"),
                         items, on_done, height=10)
        self.caption(N_("Why (the next window reads it)"))
        self.reason_entry = ctk.CTkEntry(self.body, height=40, font=style.font(16), width=480)
        self.reason_entry.pack(fill="x")
        self.caption(N_("Priority (PgUp/PgDn)"))
        self._prio_labels = [_(label) for _c, label in self.PRIORITIES]
        self.priority = ctk.CTkSegmentedButton(self.body, values=self._prio_labels, font=style.font(15),
                                               height=40)
        self.priority.set(self._prio_labels[0])
        self.priority.pack(fill="x", pady=(0, 4))
        for key, step in (("<Prior>", -1), ("<Next>", 1)):
            self.bind(key, lambda _e, d=step: self.step_priority(d))
        self.open(self.listbox)

    def priority_index(self) -> int:
        value = self.priority.get()
        return self._prio_labels.index(value) if value in self._prio_labels else 0

    def step_priority(self, delta: int) -> str:
        i = (self.priority_index() + delta) % len(self._prio_labels)
        self.priority.set(self._prio_labels[i])
        return "break"

    def confirm(self) -> None:
        target = self.chosen()
        if target is None:
            self.fail(_("Choose where to send the citizen."))
            return
        prio = self.PRIORITIES[self.priority_index()][0] or None
        reason = self.reason_entry.get().strip()
        self.close()
        self._on_done(dataclasses.replace(target, priority=prio, reason=reason))


class CompleteDialog(ListDialog[str]):
    """Outcome, reason, note; and the completion guard when required materials are not in hand.

    With ``missing`` required materials (missing or unchecked), completing or accepting is held:
    the warning at the top names them, offers the correction notice (补正告知: the outcome
    "told what to add", or the printed one-time notice) and takes a reason to go on anyway,
    which the presenter logs and records with the case.
    """

    def __init__(self, master: tk.Misc, outcomes: list[tuple[str, str]],
                 on_done: Callable[[CompleteChoice], None], missing: list[str] | None = None,
                 on_notice: Callable[[], None] | None = None) -> None:
        super().__init__(master, N_("Finish the service"), N_("Outcome"), outcomes,
                         lambda _x: None, height=5)
        self._finish = on_done
        self._missing = list(missing or [])
        self._on_notice = on_notice
        self.override_entry: ctk.CTkEntry | None = None
        self.notice_button: ctk.CTkButton | None = None
        self.correction_button: ctk.CTkButton | None = None
        if self._missing:
            self._guard_panel()
        self.caption(N_("Reason (needed when rejected)"))
        self.reason_entry = ctk.CTkEntry(self.body, height=40, font=style.font(16), width=480)
        self.reason_entry.pack(fill="x")
        self.caption(N_("Note"))
        self.note_entry = ctk.CTkEntry(self.body, height=40, font=style.font(16), width=480)
        self.note_entry.pack(fill="x")
        self.open(self.listbox)

    def _guard_panel(self) -> None:
        """The warning, first in the dialog: what is missing and the ways on."""
        first = self.body.winfo_children()[0]
        box = ctk.CTkFrame(self.body, fg_color=style.color("warning_bg"), corner_radius=8)
        box.pack(fill="x", pady=(4, 8), before=first)
        shown = "、".join(self._missing[:8]) + (" …" if len(self._missing) > 8 else "")
        self.guard_label = ctk.CTkLabel(box, font=style.font(16, "bold"), anchor="w", justify="left",
                                        wraplength=560, text_color=style.color("warning"))
        self.labels.text(self.guard_label, N_("{n} required material(s) missing or not checked: {names}"),
                         n=len(self._missing), names=shown)
        self.guard_label.pack(fill="x", padx=12, pady=(8, 4))
        row = ctk.CTkFrame(box, fg_color="transparent")
        row.pack(fill="x", padx=12, pady=(0, 6))
        self.correction_button = ctk.CTkButton(row, height=38, font=style.font(15, "bold"),
                                               command=self.choose_correction)
        self.labels.text(self.correction_button, N_("Correction notice instead"))
        self.correction_button.pack(side="left")
        if self._on_notice is not None:
            self.notice_button = ctk.CTkButton(row, height=38, font=style.font(15),
                                               command=self.print_notice,
                                               fg_color=style.color("button_secondary"),
                                               hover_color=style.color("button_secondary_hover"))
            self.labels.text(self.notice_button, N_("Print the one-time notice…"))
            self.notice_button.pack(side="left", padx=(8, 0))
        caption = ctk.CTkLabel(box, font=style.font(15), anchor="w")
        self.labels.text(caption, N_("Or the reason to complete/accept anyway (logged):"))
        caption.pack(fill="x", padx=12)
        self.override_entry = ctk.CTkEntry(box, height=38, font=style.font(15), width=480)
        self.override_entry.pack(fill="x", padx=12, pady=(0, 10))

    def choose_correction(self) -> None:
        """Switch the outcome to "told what to add" (补正告知); Enter then confirms it."""
        keys = [k for k, _label in self._items]
        if "correction" in keys:
            select_index(self.listbox, keys.index("correction"))
        self.error_label.configure(text="")
        self.listbox.focus_set()

    def print_notice(self) -> None:
        """Close and open the capture panel, where the one-time notice is printed."""
        on_notice = self._on_notice
        self.close()
        if on_notice is not None:
            on_notice()

    def confirm(self) -> None:
        outcome = self.chosen()
        if outcome is None:
            self.fail(_("Choose an outcome."))
            return
        reason = self.reason_entry.get().strip()
        if outcome == "rejected" and not reason:
            self.fail(_("A rejection needs a reason: the citizen is told why."))
            self.reason_entry.focus_set()
            return
        override = self.override_entry.get().strip() if self.override_entry is not None else ""
        if self._missing and outcome in GUARDED_OUTCOMES and not override:
            self.fail(_("Required materials are missing: choose the correction notice, or give "
                        "the reason to go on anyway."))
            if self.override_entry is not None:
                self.override_entry.focus_set()
            return
        note = self.note_entry.get().strip()
        self.close()
        self._finish(CompleteChoice(outcome, note, reason, override))


class MatterDialog(Dialog):
    """Catalog search: type pinyin initials (or any part of the name or code), arrows, Enter."""

    def __init__(self, master: tk.Misc, search: Callable[[str, Callable[[list[Matter]], None]], None],
                 describe: Callable[[Matter], str], on_done: Callable[[str], None]) -> None:
        super().__init__(master, N_("Choose the matter"), N_("Choose (Enter)"))
        self._search, self._describe, self._on_done = search, describe, on_done
        self._results: list[Matter] = []
        self.caption(N_("Type pinyin initials, a name or a code"))
        self.entry = ctk.CTkEntry(self.body, height=44, font=style.font(18), width=900)
        self.entry.pack(fill="x")
        self.count_label = ctk.CTkLabel(self.body, text="", font=style.font(14),
                                        text_color=style.color("muted"), anchor="w")
        self.count_label.pack(fill="x")
        box = ctk.CTkFrame(self.body, fg_color="transparent")
        box.pack(fill="both", expand=True)
        self.listbox = themed_listbox(box, height=12)
        # As wide as the screen allows (up to 120 characters): a long English name after the
        # code fits; the code comes first, so a row is never cut before it.
        digit = max(1, tkfont.Font(font=self.listbox.cget("font")).measure("0"))
        self.listbox.configure(width=max(60, min(120, (self.winfo_screenwidth() - 160) // digit)))
        self.scroll = ctk.CTkScrollbar(box, command=self.listbox.yview)
        self.listbox.configure(yscrollcommand=self.scroll.set)
        self.scroll.pack(side="right", fill="y")
        self.listbox.pack(side="left", fill="both", expand=True)
        self.entry.bind("<KeyRelease>", self._changed)
        self.entry.bind("<Down>", lambda _e: self._move(1))
        self.entry.bind("<Up>", lambda _e: self._move(-1))
        self.listbox.bind("<Double-1>", lambda _e: self.confirm())
        self._last: str | None = ""
        self.open(self.entry)
        self._search("", self.show_results)  # the first matters at once, said as such

    def _changed(self, event: tk.Event[tk.Misc]) -> None:
        if event.keysym in ("Up", "Down", "Return", "KP_Enter", "Escape", "Tab"):
            return
        text = self.entry.get().strip()
        if text == self._last:
            return
        self._last = text
        self._search(text, self.show_results)

    def _move(self, delta: int) -> str:
        sel = selected_indices(self.listbox)
        select_index(self.listbox, (sel[0] + delta) if sel else 0)
        return "break"

    def show_results(self, items: list[Matter]) -> None:
        if not self.winfo_exists():
            return
        self._results = list(items)
        self.listbox.delete(0, "end")
        for m in self._results:
            self.listbox.insert("end", self._describe(m))
        select_index(self.listbox, 0)
        self.count_label.configure(text=self.count_text(self._last or "", len(self._results)))

    LIMIT = 50  # the presenter asks the catalog for at most this many

    @classmethod
    def count_text(cls, query: str, n: int) -> str:
        """Say what the list is: an empty query lists the first matters, not "found" ones."""
        if not query:
            return _("The first {n} matters; type to search").format(n=n)
        if n == 0:
            return _("No matter found; try other words or the code")
        if n >= cls.LIMIT:
            return _("The first {n} matches; type more to narrow").format(n=n)
        return _("{n} matters found").format(n=n)

    def confirm(self) -> None:
        sel = selected_indices(self.listbox)
        if not sel or not self._results:
            self.fail(_("No matter chosen: type to search first."))
            return
        code = self._results[sel[0]].code
        self.close()
        self._on_done(code)
