"""The status bar (server connection, unsent ratings, pad, scanner) and the offline banner."""

from __future__ import annotations

import tkinter as tk

import customtkinter as ctk

from ui import style


class StatusBar(ctk.CTkFrame):
    def __init__(self, master: tk.Misc) -> None:
        super().__init__(master, corner_radius=0, height=34, fg_color=style.color("panel_alt"))
        self.connection = ctk.CTkLabel(self, font=style.font(14, "bold"), anchor="w")
        self.outbox = ctk.CTkLabel(self, font=style.font(14), anchor="w")
        self.pad = ctk.CTkLabel(self, font=style.font(14), anchor="w", text_color=style.color("muted"))
        self.scanner = ctk.CTkLabel(self, font=style.font(14), anchor="w", text_color=style.color("muted"))
        for i, w in enumerate((self.connection, self.outbox, self.pad, self.scanner)):
            w.grid(row=0, column=i, padx=(14, 18), pady=3, sticky="w")
        self.grid_columnconfigure(4, weight=1)

    def show(self, connection: str, outbox: str, pad: str, scanner: str, online: bool) -> None:
        self.connection.configure(text=connection, text_color=style.color("ok" if online else "danger"))
        self.outbox.configure(text=outbox)
        self.pad.configure(text=pad)
        self.scanner.configure(text=scanner)


class Banner(ctk.CTkFrame):
    """A full-width red strip with the words; hidden while everything works."""

    def __init__(self, master: tk.Misc) -> None:
        super().__init__(master, corner_radius=0, fg_color=style.color("banner_offline"))
        self.label = ctk.CTkLabel(self, font=style.font(17, "bold"), anchor="w", justify="left",
                                  text_color=style.color("banner_text"), wraplength=1300)
        self.label.pack(fill="x", padx=16, pady=8)
        self.visible = False

    def set_text(self, text: str | None) -> None:
        self.visible = bool(text)
        self.label.configure(text=text or "")
