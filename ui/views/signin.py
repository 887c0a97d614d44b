"""The sign-in screen: window number, server state, staff number and password, caps-lock warning,
and (after an IT password reset) the new password twice.

Enter submits (bound on the toplevel by the app, since clicking in customtkinter 6 moves focus).
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable

import customtkinter as ctk

from ui import style
from ui.i18n import N_
from ui.views.common import Relabel

CAPS_LOCK_MASK = 0x2


class SignInView(ctk.CTkFrame):
    def __init__(self, master: tk.Misc, *, on_submit: Callable[[str, str, str, str], None],
                 on_caps: Callable[[bool], None], on_language: Callable[[], None]) -> None:
        super().__init__(master, corner_radius=12)
        self._on_submit = on_submit
        self._on_caps = on_caps
        self.labels = Relabel(self)
        self.grid_columnconfigure(0, weight=1)

        self.lang_button = ctk.CTkButton(self, width=110, height=36, font=style.font(15),
                                         command=on_language,
                                         fg_color=style.color("button_secondary"),
                                         hover_color=style.color("button_secondary_hover"))
        self.labels.text(self.lang_button, N_("Switch language"))
        self.lang_button.grid(row=0, column=0, sticky="e", padx=16, pady=(12, 0))

        self.title_label = ctk.CTkLabel(self, font=style.font(30, "bold"))
        self.labels.text(self.title_label, N_("Counter desk sign-in"))
        self.title_label.grid(row=1, column=0, padx=48, pady=(8, 4))

        self.window_label = ctk.CTkLabel(self, font=style.font(40, "bold"),
                                         text_color=style.color("ticket_number"))
        self.window_label.grid(row=2, column=0, pady=(4, 4))

        self.server_label = ctk.CTkLabel(self, font=style.font(16))
        self.server_label.grid(row=3, column=0, pady=(0, 16))

        # This PC's set-up problems (a refused server address, no safe keyring...), for the clerk
        # to pass on to IT; hidden when there are none.
        self.setup_label = ctk.CTkLabel(self, font=style.font(15), text="", wraplength=350,
                                        justify="left", corner_radius=8,
                                        fg_color=style.color("warning_bg"),
                                        text_color=style.color("warning"))
        self.setup_label.grid(row=4, column=0, padx=48, pady=(0, 12), sticky="ew")
        self.setup_label.grid_remove()

        self.staff_caption = ctk.CTkLabel(self, font=style.font(16), anchor="w")
        self.labels.text(self.staff_caption, N_("Staff number"))
        self.staff_caption.grid(row=5, column=0, sticky="ew", padx=48)
        self.staff_entry = ctk.CTkEntry(self, width=360, height=44, font=style.font(20))
        self.staff_entry.grid(row=6, column=0, padx=48, pady=(2, 10))

        self.password_caption = ctk.CTkLabel(self, font=style.font(16), anchor="w")
        self.labels.text(self.password_caption, N_("Password"))
        self.password_caption.grid(row=7, column=0, sticky="ew", padx=48)
        self.password_entry = ctk.CTkEntry(self, width=360, height=44, font=style.font(20), show="•")
        self.password_entry.grid(row=8, column=0, padx=48, pady=(2, 4))

        # Shown only when the server asks for a new password (after an IT reset).
        self.new_caption = ctk.CTkLabel(self, font=style.font(16), anchor="w")
        self.labels.text(self.new_caption, N_("New password"))
        self.new_entry = ctk.CTkEntry(self, width=360, height=44, font=style.font(20), show="•")
        self.confirm_caption = ctk.CTkLabel(self, font=style.font(16), anchor="w")
        self.labels.text(self.confirm_caption, N_("New password again"))
        self.confirm_entry = ctk.CTkEntry(self, width=360, height=44, font=style.font(20), show="•")
        self._change_rows = ((self.new_caption, 9, dict(sticky="ew", padx=48)),
                             (self.new_entry, 10, dict(padx=48, pady=(2, 4))),
                             (self.confirm_caption, 11, dict(sticky="ew", padx=48)),
                             (self.confirm_entry, 12, dict(padx=48, pady=(2, 4))))
        self.changing = False

        self.caps_label = ctk.CTkLabel(self, font=style.font(15, "bold"),
                                       text_color=style.color("warning"))
        self.labels.text(self.caps_label, N_("Caps Lock is on"))
        self.caps_label.grid(row=13, column=0, pady=(0, 4))
        self.caps_label.grid_remove()

        self.error_label = ctk.CTkLabel(self, font=style.font(16), text="", wraplength=420,
                                        text_color=style.color("danger"))
        self.error_label.grid(row=14, column=0, padx=48, pady=(0, 6))

        self.submit_button = ctk.CTkButton(self, width=360, height=52, font=style.font(20, "bold"),
                                           command=self.submit)
        self.labels.text(self.submit_button, N_("Sign in (Enter)"))
        self.submit_button.grid(row=15, column=0, padx=48, pady=(4, 32))

        for entry in (self.staff_entry, self.password_entry, self.new_entry, self.confirm_entry):
            entry.bind("<KeyPress>", self._key, add="+")
            entry.bind("<KeyRelease>", self._key, add="+")

    def _key(self, event: tk.Event[tk.Misc]) -> None:
        # Tk gives the modifier state as a number (a string only for events that have none).
        caps = bool(event.state & CAPS_LOCK_MASK) if isinstance(event.state, int) else False
        if event.keysym in ("Caps_Lock",):
            # The state bit reports the value before this key took effect.
            self._on_caps(not caps if event.type == "2" else caps)
            return
        self._on_caps(caps)

    def submit(self) -> None:
        new, confirm = (self.new_entry.get(), self.confirm_entry.get()) if self.changing else ("", "")
        self._on_submit(self.staff_entry.get(), self.password_entry.get(), new, confirm)

    # -- show_* (called by the presenter) ------------------------------------------------------
    def show_window(self, text: str) -> None:
        self.window_label.configure(text=text)

    def show_server(self, text: str, ok: bool | None) -> None:
        colour = style.color("muted") if ok is None else style.color("ok" if ok else "danger")
        self.server_label.configure(text=text, text_color=colour)

    def show_error(self, text: str | None, calm: bool = False) -> None:
        # A calm hint (what to do next) in the text colour; a refusal in red.
        self.error_label.configure(text=text or "",
                                   text_color=style.color("text" if calm else "danger"))

    def show_setup_problems(self, lines: list[str]) -> None:
        if lines:
            self.setup_label.configure(text="\n".join(f"⚠\u00a0{x}" for x in lines))
            self.setup_label.grid()
        else:
            self.setup_label.grid_remove()

    def show_caps_lock(self, on: bool) -> None:
        if on:
            self.caps_label.grid()
        else:
            self.caps_label.grid_remove()

    def show_change_password(self, on: bool) -> None:
        if on == self.changing:
            return
        self.changing = on
        for widget, row, opts in self._change_rows:
            if on:
                widget.grid(row=row, column=0, **opts)
            else:
                widget.grid_remove()
        self.labels.text(self.submit_button,
                         N_("Set password and sign in (Enter)") if on else N_("Sign in (Enter)"))
        if on:
            self.new_entry.focus_set()

    def set_busy(self, busy: bool) -> None:
        self.submit_button.configure(state="disabled" if busy else "normal")
        for entry in (self.staff_entry, self.password_entry, self.new_entry, self.confirm_entry):
            entry.configure(state="disabled" if busy else "normal")
