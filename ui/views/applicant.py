"""Dialogs for the applicant on the case (issue 17): manual entry, the deliberate reveal (purpose
first, then the full details while the dialog is open), and the green-channel offer.

Keyboard-usable like the other desk dialogs (Enter confirms, Escape cancels). They never talk to
the core: the presenter (ui/presenters/applicant.py) gets the values and runs the I/O.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from typing import Any, Protocol

import customtkinter as ctk

from ui import style
from ui.i18n import N_, _
from ui.views.common import Relabel, select_index, selected_indices, themed_listbox
from ui.views.dialogs import Dialog

#: Entry fields of the manual-entry dialog: key -> label msgid.
MANUAL_FIELDS: dict[str, str] = {
    "name": N_("Name (the person at the window)"),
    "doc_number": N_("Document number"),
    "phone": N_("Mobile phone (optional)"),
    "address": N_("Address (optional)"),
    "company_name": N_("Company (optional)"),
    "credit_code": N_("Unified social credit code (with the company)"),
}


class ManualEntryDialog(Dialog):
    """For a citizen without a card or a desk without a reader: typed and checked like a card."""

    def __init__(self, master: tk.Misc, doc_types: list[tuple[str, str]],
                 on_submit: Callable[[dict[str, Any]], None]) -> None:
        super().__init__(master, N_("Applicant: enter by hand"), N_("Record (Enter)"))
        self._on_submit = on_submit
        self._types = doc_types
        self.caption(N_("Document type"))
        self.doc_type = ctk.CTkOptionMenu(self.body, values=[label for _c, label in doc_types],
                                          height=38, font=style.font(16), width=520)
        self.doc_type.pack(fill="x")
        self.entries: dict[str, ctk.CTkEntry] = {}
        for key, msgid in MANUAL_FIELDS.items():
            self.caption(msgid)
            e = ctk.CTkEntry(self.body, height=38, font=style.font(17), width=520)
            e.pack(fill="x")
            self.entries[key] = e
        self.disability = ctk.CTkCheckBox(self.body, font=style.font(16))
        self.labels.text(self.disability, N_("Holds a disability certificate"))
        self.disability.pack(fill="x", pady=(8, 0))
        self.open(self.entries["name"])

    def values(self) -> dict[str, Any]:
        label = self.doc_type.get()
        code = next((c for c, text in self._types if text == label), self._types[0][0])
        out: dict[str, Any] = {k: e.get() for k, e in self.entries.items()}
        out["doc_type"] = code
        out["disability_certificate"] = bool(self.disability.get())
        return out

    def confirm(self) -> None:
        self.error_label.configure(text="")
        self._on_submit(self.values())

    def field_error(self, field: str, text: str) -> None:
        self.fail(text)
        entry = self.entries.get(field)
        if entry is not None:
            entry.focus_set()


class RevealDialog(Dialog):
    """The full details only on purpose: the purpose is asked first and goes to the audit log."""

    def __init__(self, master: tk.Misc, on_purpose: Callable[[str], None]) -> None:
        super().__init__(master, N_("Show the applicant's full details"), N_("Show (Enter)"))
        self._on_purpose = on_purpose
        self.caption(N_("Why are the full details needed? (required, recorded in the audit log)"))
        self.entry = ctk.CTkEntry(self.body, height=44, font=style.font(18), width=520)
        self.entry.pack(fill="x")
        self.details = ctk.CTkFrame(self.body, fg_color="transparent")
        self.details.pack(fill="x", pady=(10, 0))
        self.shown = False
        self.open(self.entry)

    def confirm(self) -> None:
        if self.shown:
            self.close()
            return
        self.error_label.configure(text="")
        self._on_purpose(self.entry.get())

    def show(self, rows: list[tuple[str, str]]) -> None:
        """The full values; they vanish with the dialog (Enter or Escape closes it)."""
        self.shown = True
        self.entry.configure(state="disabled")
        for w in self.details.winfo_children():
            w.destroy()
        for i, (k, v) in enumerate(rows):
            ctk.CTkLabel(self.details, text=f"{k}：", font=style.font(16), anchor="e").grid(
                row=i, column=0, sticky="e", padx=(0, 8))
            ctk.CTkLabel(self.details, text=v, font=style.font(17, "bold"), anchor="w",
                         wraplength=420, justify="left").grid(row=i, column=1, sticky="w")
        self.labels.text(self.ok_button, N_("Close (Enter)"))


class YesNoDialog(Dialog):
    """A question with Yes (Enter) and No (Escape)."""

    def __init__(self, master: tk.Misc, title_msgid: str, text: str,
                 on_answer: Callable[[bool], None]) -> None:
        super().__init__(master, title_msgid, N_("Yes (Enter)"))
        self._on_answer = on_answer
        self.labels.text(self.cancel_button, N_("No (Esc)"))
        self.text_label = ctk.CTkLabel(self.body, text=text, font=style.font(18), wraplength=520,
                                       justify="left", anchor="w")
        self.text_label.pack(fill="x", pady=8)
        self.open(self.ok_button)

    def confirm(self) -> None:
        self.close()
        self._on_answer(True)

    def cancel(self) -> None:
        self.close()
        self._on_answer(False)


class ApplicantBar(ctk.CTkFrame):
    """The masked applicant on the case panel, with manual entry and the reveal beside it."""

    def __init__(self, master: tk.Misc) -> None:
        super().__init__(master, fg_color="transparent")
        self.labels = Relabel(self)
        self.grid_columnconfigure(0, weight=1)
        self.line = ctk.CTkLabel(self, text="", font=style.font(18), anchor="w")
        self.line.grid(row=0, column=0, sticky="w")
        self.manual_button = ctk.CTkButton(self, height=32, width=120, font=style.font(14),
                                           fg_color=style.color("button_secondary"),
                                           hover_color=style.color("button_secondary_hover"))
        self.labels.text(self.manual_button, N_("Enter by hand…"))
        self.manual_button.grid(row=0, column=1, padx=(8, 0))
        self.reveal_button = ctk.CTkButton(self, height=32, width=120, font=style.font(14),
                                           fg_color=style.color("button_secondary"),
                                           hover_color=style.color("button_secondary_hover"))
        self.labels.text(self.reveal_button, N_("Show in full…"))
        self.reveal_button.grid(row=0, column=2, padx=(8, 0))

    def bind_actions(self, on_manual: Callable[[], None], on_reveal: Callable[[], None]) -> None:
        self.manual_button.configure(command=on_manual)
        self.reveal_button.configure(command=on_reveal)

    def show(self, line: str, can_reveal: bool) -> None:
        self.line.configure(text=line)
        if can_reveal:
            self.reveal_button.grid()
        else:
            self.reveal_button.grid_remove()


class MailingDialog(Dialog):
    """The result mailing: recipient, phone, address, carrier, tracking number (once mailed)."""

    FIELDS: dict[str, str] = {
        "recipient": N_("Recipient"),
        "phone": N_("Recipient's mobile phone"),
        "address": N_("Postal address"),
        "tracking_no": N_("Tracking number (when mailed)"),
    }

    def __init__(self, master: tk.Misc, carriers: list[tuple[str, str]], prefill: dict[str, str],
                 on_submit: Callable[[dict[str, str]], None]) -> None:
        super().__init__(master, N_("Result by mail"), N_("Record (Enter)"))
        self._on_submit, self._carriers = on_submit, carriers
        self.entries: dict[str, ctk.CTkEntry] = {}
        for key, msgid in self.FIELDS.items():
            self.caption(msgid)
            e = ctk.CTkEntry(self.body, height=38, font=style.font(17), width=520)
            e.insert(0, prefill.get(key, ""))
            e.pack(fill="x")
            self.entries[key] = e
        self.caption(N_("Carrier"))
        self.carrier = ctk.CTkOptionMenu(self.body, values=[label for _c, label in carriers],
                                         height=38, font=style.font(16), width=520)
        self.carrier.pack(fill="x")
        self.open(self.entries["recipient"])

    def values(self) -> dict[str, str]:
        out = {k: e.get() for k, e in self.entries.items()}
        label = self.carrier.get()
        out["carrier"] = next((c for c, text in self._carriers if text == label), "ems")
        return out

    def confirm(self) -> None:
        self.error_label.configure(text="")
        self._on_submit(self.values())

    def field_error(self, field: str, text: str) -> None:
        self.fail(text)
        entry = self.entries.get(field)
        if entry is not None:
            entry.focus_set()


class PapersActions(Protocol):
    def print_receipt(self) -> None: ...
    def mailing(self) -> None: ...
    def find(self, by: str, text: str) -> None: ...
    def reprint(self, case_id: int, kind: str) -> None: ...


#: How a past case is found: key -> label msgid.
FIND_BY: dict[str, str] = {
    "case_no": N_("Case number"),
    "id_number": N_("ID number (full)"),
    "phone": N_("Mobile phone"),
    "day": N_("Date (YYYY-MM-DD)"),
}


class PapersDialog(Dialog):
    """F12: the acceptance receipt and the mailing of the case at the window; find a past case
    by case number, full ID number, phone or date to reprint its notice or receipt."""

    def __init__(self, master: tk.Misc, actions: PapersActions, has_case: bool) -> None:
        super().__init__(master, N_("Receipt, mailing and reprints (F12)"), N_("Find (Enter)"))
        self._actions = actions
        self._hits: list[tuple[int, str]] = []
        row = ctk.CTkFrame(self.body, fg_color="transparent")
        row.pack(fill="x", pady=(4, 8))
        self.receipt_button = ctk.CTkButton(row, height=40, width=250, font=style.font(16, "bold"),
                                            command=actions.print_receipt)
        self.labels.text(self.receipt_button, N_("Print the acceptance receipt"))
        self.receipt_button.pack(side="left")
        self.mailing_button = ctk.CTkButton(row, height=40, width=250, font=style.font(16),
                                            command=actions.mailing)
        self.labels.text(self.mailing_button, N_("Result by mail…"))
        self.mailing_button.pack(side="left", padx=(10, 0))
        if not has_case:
            self.receipt_button.configure(state="disabled")
            self.mailing_button.configure(state="disabled")
        self.caption(N_("Find a past case to reprint its papers"))
        find = ctk.CTkFrame(self.body, fg_color="transparent")
        find.pack(fill="x")
        self._by = list(FIND_BY)
        self._by_key = "case_no"
        self.by = ctk.CTkOptionMenu(find, values=[_(FIND_BY[k]) for k in self._by], height=38,
                                    font=style.font(16), width=190,
                                    command=lambda _label: self.by_key())
        self.by.pack(side="left")
        self.entry = ctk.CTkEntry(find, height=38, font=style.font(17), width=320)
        self.entry.pack(side="left", padx=(8, 0), fill="x", expand=True)
        self.results = themed_listbox(self.body, height=5)
        self.results.configure(width=72)
        self.results.pack(fill="x", pady=(8, 4))
        row2 = ctk.CTkFrame(self.body, fg_color="transparent")
        row2.pack(fill="x")
        self.reprint_receipt = ctk.CTkButton(row2, height=38, width=250, font=style.font(15),
                                             command=lambda: self._reprint("receipt"))
        self.labels.text(self.reprint_receipt, N_("Reprint the receipt"))
        self.reprint_receipt.pack(side="left")
        self.reprint_notice = ctk.CTkButton(row2, height=38, width=250, font=style.font(15),
                                            command=lambda: self._reprint("notice"))
        self.labels.text(self.reprint_notice, N_("Reprint the one-time notice"))
        self.reprint_notice.pack(side="left", padx=(10, 0))
        self.open(self.entry)

    def _retitle(self) -> None:
        super()._retitle()
        by = getattr(self, "by", None)  # None while Dialog.__init__ runs
        if by is not None:
            key = getattr(self, "_by_key", "case_no")
            by.configure(values=[_(FIND_BY[k]) for k in self._by])
            by.set(_(FIND_BY[key]))

    def by_key(self) -> str:
        label = self.by.get()
        self._by_key = next((k for k in self._by if _(FIND_BY[k]) == label), "case_no")
        return self._by_key

    def confirm(self) -> None:
        self.error_label.configure(text="")
        self._actions.find(self.by_key(), self.entry.get())

    def show_hits(self, hits: list[tuple[int, str]]) -> None:
        if self.by_key() in ("id_number", "phone"):
            self.entry.delete(0, "end")  # the full number does not stay on screen
        self._hits = hits
        self.results.delete(0, "end")
        for _case_id, text in hits:
            self.results.insert("end", text)
        if hits:
            select_index(self.results, 0)

    def _reprint(self, kind: str) -> None:
        sel = selected_indices(self.results)
        if not sel or not self._hits:
            self.fail(_("Find the case and choose it in the list first."))
            return
        self._actions.reprint(self._hits[sel[0]][0], kind)
