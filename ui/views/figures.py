"""Today's figures: served, average handling time, no-shows, satisfaction rate, on-time and
on-the-spot rates (measured: docs/figures.md), and a small chart
on a plain tk Canvas (tickets per hour as bars; ratings by level as horizontal bars).
"""

from __future__ import annotations

import tkinter as tk

import customtkinter as ctk

from ui import style
from ui.i18n import N_, _
from ui.presenters.format import Figures
from ui.views.common import Relabel

TILES = (("served", N_("Served")), ("avg_handle", N_("Avg handling")),
         ("no_shows", N_("No-shows")), ("satisfaction", N_("Satisfaction")),
         ("on_time", N_("On-time rate")), ("on_the_spot", N_("On-the-spot rate")))
FIRST_HOUR, LAST_HOUR = 8, 18  # the hall's opening hours; busier hours outside still show


class FiguresPanel(ctk.CTkFrame):
    def __init__(self, master: tk.Misc) -> None:
        super().__init__(master)
        self.labels = Relabel(self, self._redraw)
        self.title = ctk.CTkLabel(self, font=style.font(18, "bold"), anchor="w")
        self.labels.text(self.title, N_("Today at this window"))
        self.title.grid(row=0, column=0, columnspan=len(TILES), sticky="ew", padx=12, pady=(8, 2))
        self.values: dict[str, ctk.CTkLabel] = {}
        for col, (key, caption) in enumerate(TILES):
            self.grid_columnconfigure(col, weight=1)
            v = ctk.CTkLabel(self, text="—", font=style.font(26, "bold"),
                             text_color=style.color("ticket_number"))
            v.grid(row=1, column=col, padx=4)
            c = ctk.CTkLabel(self, font=style.font(14), text_color=style.color("muted"))
            self.labels.text(c, caption)
            c.grid(row=2, column=col, padx=4)
            self.values[key] = v
        self.canvas = tk.Canvas(self, height=150, highlightthickness=0, bg=style.pick("panel"))
        self.canvas.grid(row=3, column=0, columnspan=len(TILES), sticky="nsew", padx=12, pady=(6, 10))
        self.grid_rowconfigure(3, weight=1)
        self.canvas.bind("<Configure>", lambda _e: self._redraw())
        self._figures: Figures | None = None

    def show(self, figures: Figures) -> None:
        self._figures = figures
        for key in self.values:
            self.values[key].configure(text=getattr(figures, key))
        self._redraw()

    def _redraw(self) -> None:
        c = self.canvas
        c.delete("all")
        f = self._figures
        if f is None:
            return
        w, h = max(c.winfo_width(), 200), max(c.winfo_height(), 100)
        axis, bar, font = style.pick("chart_axis"), style.pick("chart_bar"), style.tk_font(12)
        # Left 60%: tickets per hour.
        hours = [i for i, n in enumerate(f.per_hour) if n] or [FIRST_HOUR]
        lo, hi = min(FIRST_HOUR, min(hours)), max(LAST_HOUR, max(hours))
        span = hi - lo + 1
        left_w = w * 0.58
        top, bottom = 40, h - 20  # room for the title and the count above the tallest bar
        peak = max(f.per_hour[lo:hi + 1] + [1])
        c.create_text(4, 4, anchor="nw", text=_("Tickets per hour"), fill=axis, font=font)
        slot = (left_w - 8) / span
        for i, hour in enumerate(range(lo, hi + 1)):
            n = f.per_hour[hour] if hour < len(f.per_hour) else 0
            x0 = 4 + i * slot + 2
            y0 = bottom - (bottom - top) * n / peak
            if n:
                c.create_rectangle(x0, y0, x0 + slot - 4, bottom, fill=bar, outline="")
                c.create_text(x0 + (slot - 4) / 2, y0 - 2, anchor="s", text=str(n), fill=axis, font=font)
            if hour % 2 == 0:
                c.create_text(x0 + (slot - 4) / 2, bottom + 2, anchor="n", text=str(hour), fill=axis, font=font)
        c.create_line(4, bottom, left_w - 4, bottom, fill=axis)
        # Right 40%: ratings by level.
        x_start = left_w + 16
        c.create_text(x_start, 4, anchor="nw", text=_("Ratings by level"), fill=axis, font=font)
        label_w = 96
        most = max([n for _lv, _l, n in f.by_level] + [1])
        row_h = (bottom - top) / max(len(f.by_level), 1)
        for i, (level, label, n) in enumerate(f.by_level):
            y = top + i * row_h + row_h / 2
            c.create_text(x_start, y, anchor="w", text=label, fill=axis, font=font)
            bad = level in ("dissatisfied", "very_dissatisfied")
            colour = style.pick("chart_bad" if bad else "chart_good")
            x0 = x_start + label_w
            length = (w - x0 - 36) * n / most
            if n:
                c.create_rectangle(x0, y - row_h * 0.3, x0 + length, y + row_h * 0.3, fill=colour, outline="")
            c.create_text(x0 + length + 4, y, anchor="w", text=str(n), fill=axis, font=font)
