"""The pad dialog (Ctrl+P): the window's paired pad as the hall server knows it, and how to
pair one. It takes no password: pairing happens on a supervisor's own device against the hall
server (docs/pad.md), so nothing typed at the window PC can bind a pad key.

Thin: ``PairingPresenter`` (ui/presenters/pad.py) does the work through the task runner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import customtkinter as ctk

from ui import style
from ui.i18n import N_, _
from ui.presenters.pad import PairingPresenter
from ui.views.dialogs import Dialog


class PadPairingDialog(Dialog):
    def __init__(self, master: Any, make_presenter: Callable[[PadPairingDialog], PairingPresenter]) -> None:
        super().__init__(master, N_("Evaluator pad"), N_("Refresh (Enter)"))
        self.status_label = ctk.CTkLabel(self.body, text="", font=style.font(18), anchor="w",
                                         justify="left", wraplength=560)
        self.status_label.pack(fill="x", pady=(6, 0))
        self.presenter = make_presenter(self)
        self.open(self.ok_button)
        self.presenter.refresh()

    def confirm(self) -> None:
        self.error_label.configure(text="")
        self.presenter.refresh()

    # -- PairingView -------------------------------------------------------------------------------
    def show_busy(self, busy: bool) -> None:
        self.ok_button.configure(state="disabled" if busy else "normal")
        if busy:
            self.status_label.configure(text=_("Asking the hall server…"))

    def show_error(self, text: str) -> None:
        self.fail(text)

    def show_status(self, lines: list[str], good: bool) -> None:
        self.status_label.configure(
            text="\n\n".join(lines), text_color=style.color("text") if good else style.color("muted"))
