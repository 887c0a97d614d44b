"""The follow-up dialog (Ctrl+G): this window's open bad-rating follow-ups and its appeals.

Thin: ``FollowupsPresenter`` (ui/presenters/followups.py) fetches through the task runner and
makes the lines; this only shows them. Enter refreshes, Escape closes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import customtkinter as ctk

from ui import style
from ui.i18n import N_, _
from ui.presenters.followups import FollowupsPresenter, Line
from ui.views.dialogs import Dialog


class FollowupsDialog(Dialog):
    def __init__(self, master: Any, make_presenter: Callable[[FollowupsDialog], FollowupsPresenter]) -> None:
        super().__init__(master, N_("Follow-ups and appeals"), N_("Refresh (Enter)"))
        self.fu_heading = ctk.CTkLabel(self.body, font=style.font(17, "bold"), anchor="w")
        self.labels.text(self.fu_heading, N_("Bad ratings being followed up"))
        self.fu_heading.pack(fill="x", pady=(6, 0))
        self.fu_box = ctk.CTkFrame(self.body, fg_color="transparent")
        self.fu_box.pack(fill="x")
        self.ap_heading = ctk.CTkLabel(self.body, font=style.font(17, "bold"), anchor="w")
        self.labels.text(self.ap_heading, N_("Appeals"))
        self.ap_heading.pack(fill="x", pady=(10, 0))
        self.ap_box = ctk.CTkFrame(self.body, fg_color="transparent")
        self.ap_box.pack(fill="x")
        self.presenter = make_presenter(self)
        self.open(self.ok_button)
        self.presenter.refresh()

    def confirm(self) -> None:
        self.error_label.configure(text="")
        self.presenter.refresh()

    def _fill(self, box: ctk.CTkFrame, items: list[Line], empty: str) -> None:
        for w in box.winfo_children():
            w.destroy()
        for line in items or [Line(empty, False)]:
            ctk.CTkLabel(box, text=line.text, font=style.font(15, "bold" if line.urgent or line.mine else "normal"),
                         text_color=style.color("danger") if line.urgent else style.color("text"),
                         anchor="w", justify="left", wraplength=640).pack(fill="x", pady=1)

    # -- FollowupsView ------------------------------------------------------------------------------
    def show_busy(self, busy: bool) -> None:
        self.ok_button.configure(state="disabled" if busy else "normal")

    def show_error(self, text: str) -> None:
        self.fail(text)

    def show_lines(self, followups: list[Line], appeals: list[Line]) -> None:
        self._fill(self.fu_box, followups, _("No open follow-ups at this window."))
        self._fill(self.ap_box, appeals, _("No appeals."))
