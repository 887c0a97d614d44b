"""The pad pairing dialog: a supervisor's or IT's credential, then the one-time QR code (large),
the 6-digit fallback code and a countdown; "new code" pairs again, "unpair" removes the pad.

Thin: ``PairingPresenter`` (ui/presenters/pad.py) does the work through the task runner. The
password lives only in the entry while the dialog is open.
"""

from __future__ import annotations

import io
import tkinter as tk
from collections.abc import Callable
from typing import Any

import customtkinter as ctk
from PIL import Image

from ui import style
from ui.i18n import N_, _
from ui.presenters.pad import PairingPresenter
from ui.views.dialogs import Dialog

QR_SIDE = 340


class PadPairingDialog(Dialog):
    def __init__(self, master: Any, make_presenter: Callable[[PadPairingDialog], PairingPresenter]) -> None:
        super().__init__(master, N_("Pair the evaluator pad"), N_("Show pairing code (Enter)"))
        self._after: str | None = None
        self._qr: ctk.CTkImage | None = None
        self.caption(N_("Supervisor or IT staff number"))
        self.staff_entry = ctk.CTkEntry(self.body, height=42, font=style.font(18), width=420)
        self.staff_entry.pack(fill="x")
        self.caption(N_("Password"))
        self.password_entry = ctk.CTkEntry(self.body, height=42, font=style.font(18), width=420,
                                           show="•")
        self.password_entry.pack(fill="x")
        self.offer_frame = ctk.CTkFrame(self.body, fg_color="transparent")
        self.qr_label = ctk.CTkLabel(self.offer_frame, text="")
        self.qr_label.grid(row=0, column=0, rowspan=3, padx=(0, 20), pady=8)
        self.code_caption = ctk.CTkLabel(self.offer_frame, font=style.font(18), anchor="w")
        self.labels.text(self.code_caption, N_("Or type this code on the pad:"))
        self.code_caption.grid(row=0, column=1, sticky="sw")
        self.code_label = ctk.CTkLabel(self.offer_frame, text="", font=style.font(56, "bold"),
                                       text_color=style.color("ticket_number"), anchor="w")
        self.code_label.grid(row=1, column=1, sticky="w")
        self.countdown_label = ctk.CTkLabel(self.offer_frame, text="", font=style.font(17),
                                            anchor="w", justify="left", wraplength=320)
        self.countdown_label.grid(row=2, column=1, sticky="nw")
        self.url_label = ctk.CTkLabel(self.offer_frame, text="", font=style.font(13),
                                      text_color=style.color("muted"), anchor="w")
        self.url_label.grid(row=3, column=0, columnspan=2, sticky="w")
        self.status_label = ctk.CTkLabel(self.body, text="", font=style.font(16), anchor="w")
        self.status_label.pack(fill="x", pady=(6, 0))
        bar = self.ok_button.master
        self.unpair_button = ctk.CTkButton(bar, height=44, width=150, font=style.font(16),
                                           command=self.on_unpair,
                                           fg_color=style.color("button_danger"),
                                           hover_color=style.color("button_danger_hover"))
        self.labels.text(self.unpair_button, N_("Unpair pad"))
        self.unpair_button.pack(side="left")
        self.presenter = make_presenter(self)
        self.open(self.staff_entry)

    # -- input ---------------------------------------------------------------------------------
    def confirm(self) -> None:
        self.error_label.configure(text="")
        self.presenter.pair(self.staff_entry.get(), self.password_entry.get())

    def on_unpair(self) -> None:
        self.error_label.configure(text="")
        self.presenter.unpair(self.staff_entry.get(), self.password_entry.get())

    def close(self) -> None:
        self._stop_timer()
        super().close()

    # -- PairingView -------------------------------------------------------------------------------
    def show_busy(self, busy: bool) -> None:
        state = "disabled" if busy else "normal"
        self.ok_button.configure(state=state)
        self.unpair_button.configure(state=state)
        self.status_label.configure(text=_("Asking the hall server…") if busy else "")

    def show_error(self, text: str) -> None:
        self.fail(text)

    def show_offer(self, qr_png: bytes, code: str, url: str) -> None:
        image = Image.open(io.BytesIO(qr_png)).convert("RGB")
        self._qr = ctk.CTkImage(light_image=image, dark_image=image, size=(QR_SIDE, QR_SIDE))
        self.qr_label.configure(image=self._qr)
        self.code_label.configure(text=f"{code[:3]} {code[3:]}")
        self.url_label.configure(text=url.split("#", 1)[0])  # never the token in plain sight
        self.offer_frame.pack(fill="x", pady=(10, 0))
        self.labels.text(self.ok_button, N_("New code (Enter)"))
        self._stop_timer()
        self._after = self.after(1000, self._tick)
        self.update_idletasks()
        self._recentre()

    def show_countdown(self, text: str, expired: bool) -> None:
        self.countdown_label.configure(
            text=text, text_color=style.color("danger") if expired else style.color("text"))
        if expired:
            self.qr_label.configure(image=None)
            self._qr = None
            self.code_label.configure(text="——")

    def show_unpaired(self, count: int) -> None:
        self.offer_frame.pack_forget()
        self.status_label.configure(
            text=_("Pad unpaired ({n}). Ratings from it are refused from now on.").format(n=count)
            if count else _("No pad was paired at this window."))

    # -- internals ---------------------------------------------------------------------------------
    def _tick(self) -> None:
        self._after = None
        if self.presenter.tick():
            self._after = self.after(1000, self._tick)

    def _stop_timer(self) -> None:
        if self._after is not None:
            try:
                self.after_cancel(self._after)
            except tk.TclError:
                pass
            self._after = None

    def _recentre(self) -> None:
        root = self.master.winfo_toplevel()
        x = root.winfo_rootx() + max((root.winfo_width() - self.winfo_reqwidth()) // 2, 0)
        y = root.winfo_rooty() + max((root.winfo_height() - self.winfo_reqheight()) // 4, 0)
        self.geometry(f"+{x}+{y}")
