"""The desk screen: the current ticket LARGE, the action buttons with their hotkeys on them, the
waiting list, the checklist, today's figures, the offline banner, the status bar, the lock screen.

Thin: it lays out widgets and shows what the presenter tells it; hotkeys are bound on the
toplevel by the app (customtkinter 6 moves focus on click, so entry bindings are not enough).
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from functools import partial
from typing import Any

import customtkinter as ctk

from api_client.models import Matter
from ui import style
from ui.i18n import N_, _
from ui.presenters import format as fmt
from ui.presenters.desk import ACTIONS, CompleteChoice, TransferChoice
from ui.views.applicant import (
    ApplicantBar,
    MailingDialog,
    ManualEntryDialog,
    PapersDialog,
    RevealDialog,
    YesNoDialog,
)
from ui.views.checklist import ChecklistPanel
from ui.views.common import Relabel, action_button, set_enabled
from ui.views.dialogs import (
    CompleteDialog,
    MatterDialog,
    PauseDialog,
    SuspendDialog,
    TransferDialog,
)
from ui.views.figures import FiguresPanel
from ui.views.queue_list import QueueList
from ui.views.statusbar import Banner, StatusBar

ACTION_LABELS = {
    "call_next": N_("Call next"), "recall": N_("Recall"), "no_show": N_("No-show"),
    "transfer": N_("Transfer"), "suspend": N_("Suspend"), "pause": N_("Pause"),
    "start": N_("Start service"), "change_matter": N_("Set matter"),
    "complete": N_("Complete"), "evaluate": N_("Evaluate"), "lock": N_("Lock"),
    "applicant": N_("ID card"),
}
# 过号 is an everyday action, not an alarm: no bright red (issue 16 item 3).
ACTION_KIND = {"call_next": "ok", "no_show": "secondary", "complete": "ok", "pause": "secondary",
               "lock": "secondary", "evaluate": "secondary", "suspend": "secondary",
               "applicant": "secondary"}
NOTICE_MS = 10000


class LockScreen(ctk.CTkFrame):
    """Covers the desk; only the password unlocks it (Enter)."""

    def __init__(self, master: tk.Misc, on_unlock: Callable[[str], None]) -> None:
        super().__init__(master, corner_radius=0, fg_color=style.color("panel_alt"))
        self._on_unlock = on_unlock
        self.labels = Relabel(self)
        box = ctk.CTkFrame(self, corner_radius=12)
        box.place(relx=0.5, rely=0.4, anchor="center")
        self.title = ctk.CTkLabel(box, font=style.font(30, "bold"))
        self.labels.text(self.title, N_("The desk is locked"))
        self.title.pack(padx=60, pady=(30, 6))
        self.who = ctk.CTkLabel(box, font=style.font(18), text="")
        self.who.pack(pady=(0, 12))
        self.password_caption = ctk.CTkLabel(box, font=style.font(16), anchor="w")
        self.labels.text(self.password_caption, N_("Password"))
        self.password_caption.pack(fill="x", padx=60)
        self.password_entry = ctk.CTkEntry(box, width=340, height=46, font=style.font(20), show="•")
        self.password_entry.pack(padx=60)
        self.error_label = ctk.CTkLabel(box, font=style.font(16), text="",
                                        text_color=style.color("danger"))
        self.error_label.pack(pady=4)
        self.unlock_button = ctk.CTkButton(box, width=340, height=50, font=style.font(20, "bold"),
                                           command=self.submit)
        self.labels.text(self.unlock_button, N_("Unlock (Enter)"))
        self.unlock_button.pack(padx=60, pady=(4, 30))
        self.password_entry.bind("<Return>", lambda _e: self.submit())

    def submit(self) -> None:
        self._on_unlock(self.password_entry.get())

    def reset(self, who: str) -> None:
        self.who.configure(text=who)
        self.error_label.configure(text="")
        self.password_entry.delete(0, "end")
        self.password_entry.focus_set()

    def fail(self, text: str) -> None:
        self.error_label.configure(text=text)
        self.password_entry.delete(0, "end")


class DeskView(ctk.CTkFrame):
    def __init__(self, master: tk.Misc, *, on_action: Callable[[str], None],
                 on_resume: Callable[[int], None], on_set_material: Callable[[str, str, str], None],
                 search: Callable[[str, Callable[[list[Matter]], None]], None],
                 on_language: Callable[[], None], on_unlock: Callable[[str], None],
                 on_capture: Callable[[str | None], None] | None = None) -> None:
        super().__init__(master, corner_radius=0, fg_color="transparent")
        self._on_action = on_action
        self._search = search
        self._on_capture = on_capture
        self.capture_button: ctk.CTkButton | None = None  # made below when capture is wired
        self.labels = Relabel(self, self._relabel)
        self.grid_columnconfigure(0, weight=3, uniform="cols")
        self.grid_columnconfigure(1, weight=2, uniform="cols")
        self.grid_rowconfigure(2, weight=1)
        self._notice_after: str | None = None
        self._flash_after: str | None = None
        self.dialog: ctk.CTkToplevel | None = None
        self.alerts = 0

        # Header: who and where, the language switch.
        header = ctk.CTkFrame(self, corner_radius=0, fg_color=style.color("panel"))
        header.grid(row=0, column=0, columnspan=2, sticky="ew")
        header.grid_columnconfigure(1, weight=1)
        self.who_label = ctk.CTkLabel(header, font=style.font(20, "bold"), anchor="w", text="")
        self.who_label.grid(row=0, column=0, padx=16, pady=8, sticky="w")
        self.state_label = ctk.CTkLabel(header, font=style.font(18, "bold"), anchor="w", text="",
                                        text_color=style.color("accent"))
        self.state_label.grid(row=0, column=1, padx=16, sticky="w")
        self.lang_button = ctk.CTkButton(header, width=110, height=36, font=style.font(15),
                                         command=on_language,
                                         fg_color=style.color("button_secondary"),
                                         hover_color=style.color("button_secondary_hover"))
        self.labels.text(self.lang_button, N_("Switch language"))
        self.lang_button.grid(row=0, column=2, padx=16, pady=8)

        self.banner = Banner(self)
        self.banner.grid(row=1, column=0, columnspan=2, sticky="ew")
        self.banner.grid_remove()

        # Left: ticket, notice, actions, checklist.
        left = ctk.CTkFrame(self, fg_color="transparent")
        left.grid(row=2, column=0, sticky="nsew", padx=(12, 6), pady=10)
        left.grid_columnconfigure(0, weight=1)
        left.grid_rowconfigure(3, weight=1)
        self.ticket_panel = ctk.CTkFrame(left, corner_radius=12)
        self.ticket_panel.grid(row=0, column=0, sticky="ew")
        self.ticket_panel.grid_columnconfigure(1, weight=1)
        self.number_label = ctk.CTkLabel(self.ticket_panel, text="", font=style.font(84, "bold"),
                                         text_color=style.color("ticket_number"), width=260)
        self.number_label.grid(row=0, column=0, rowspan=3, padx=(20, 16), pady=10)
        self.badge_label = ctk.CTkLabel(self.ticket_panel, text="", font=style.font(18, "bold"),
                                        corner_radius=8, text_color=style.color("badge_text"),
                                        fg_color=style.color("green_badge"))
        self.badge_label.grid(row=0, column=1, sticky="w", pady=(16, 0))
        self.badge_label.grid_remove()
        self.matter_label = ctk.CTkLabel(self.ticket_panel, text="", font=style.font(24, "bold"),
                                         anchor="w", justify="left", wraplength=520)
        self.matter_label.grid(row=1, column=1, sticky="w")
        self.detail_label = ctk.CTkLabel(self.ticket_panel, text="", font=style.font(19),
                                         text_color=style.color("muted"), anchor="w")
        self.detail_label.grid(row=2, column=1, sticky="w", pady=(0, 16))
        # The applicant on the case, masked (issue 17): a line, manual entry and the reveal.
        self.applicant_bar = ApplicantBar(self.ticket_panel)
        self.applicant_bar.grid(row=3, column=0, columnspan=2, sticky="ew", padx=16, pady=(0, 10))
        self.applicant_bar.grid_remove()

        self.notice_label = ctk.CTkLabel(left, text="", font=style.font(17), anchor="w",
                                         corner_radius=8, height=36)
        self.notice_label.grid(row=1, column=0, sticky="ew", pady=(8, 0))

        grid = ctk.CTkFrame(left, fg_color="transparent")
        grid.grid(row=2, column=0, sticky="ew", pady=8)
        self.buttons: dict[str, ctk.CTkButton] = {}
        self._button_colours: dict[str, Any] = {}
        order = ["call_next", "recall", "no_show", "start", "complete", "transfer",
                 "suspend", "change_matter", "pause", "evaluate", "lock", "applicant"]
        for i, action in enumerate(order):
            b = action_button(grid, command=partial(self._on_action, action),
                              kind=ACTION_KIND.get(action, "primary"), size=18, height=66, width=120)
            b.grid(row=i // 6, column=i % 6, padx=4, pady=4, sticky="ew")
            grid.grid_columnconfigure(i % 6, weight=1, uniform="b")
            self.buttons[action] = b
            self._button_colours[action] = b.cget("fg_color")
        self._pause_label = _("Pause")
        self._busy: str | None = None

        self.checklist = ChecklistPanel(left, on_set=on_set_material)
        self.checklist.grid(row=3, column=0, sticky="nsew")
        # Document capture (issue 6): opens the capture panel on the selected checklist item.
        if on_capture is not None:
            self.capture_button = ctk.CTkButton(
                self.checklist, height=34, width=170, font=style.font(15, "bold"),
                command=lambda: on_capture(self.selected_material()))
            self.capture_button.grid(row=0, column=0, sticky="e", padx=12, pady=(8, 4))

        # Right: waiting list and figures.
        right = ctk.CTkFrame(self, fg_color="transparent")
        right.grid(row=2, column=1, sticky="nsew", padx=(6, 12), pady=10)
        right.grid_columnconfigure(0, weight=1)
        right.grid_rowconfigure(0, weight=3)
        right.grid_rowconfigure(1, weight=2)
        self.queue = QueueList(right, on_resume=on_resume)
        self.queue.grid(row=0, column=0, sticky="nsew")
        self.figures = FiguresPanel(right)
        self.figures.grid(row=1, column=0, sticky="nsew", pady=(10, 0))

        self.status = StatusBar(self)
        self.status.grid(row=3, column=0, columnspan=2, sticky="ew")

        self.lock_screen = LockScreen(self, on_unlock)
        self.locked = False
        self._relabel()

    def selected_material(self) -> str | None:
        sel = self.checklist.tree.selection()
        return str(sel[0]) if sel else None

    def _relabel(self) -> None:
        if self.capture_button is not None:
            self.capture_button.configure(text=_("Capture / scan…"))
        for action, b in self.buttons.items():
            label = self._pause_label if action == "pause" else _(ACTION_LABELS[action])
            if action == self._busy:
                label += " …"
            b.configure(text=f"{label}\n{ACTIONS[action]}")

    # -- show_* ------------------------------------------------------------------------------
    def set_who(self, text: str) -> None:
        self.who_label.configure(text=text)

    def show_ticket(self, card: fmt.TicketCard | None, desk_state: str) -> None:
        self.state_label.configure(text=_(fmt.STATE_LABELS.get(desk_state, desk_state)))
        if card is None:
            self.number_label.configure(text="")
            self.matter_label.configure(text=_("No citizen at the window. Press F1 to call the next."))
            # The key of the papers dialog, which has no button (issue 17).
            self.detail_label.configure(text=_("F12: acceptance receipt, mailing, reprints"))
            self.badge_label.grid_remove()
            return
        self.number_label.configure(text=card.number)
        badges = " · ".join(card.badges)  # the matter's promise: time limit, 即办/秒批, 跨省通办
        self.matter_label.configure(text=f"{card.matter}  |  {badges}" if badges else card.matter)
        self.detail_label.configure(text=f"{card.waited}    {card.recalls}")
        if card.priority_label:
            colour = "green_badge" if card.priority == "green" else "appointment_badge"
            self.badge_label.configure(text=f"  {card.priority_label}  ", fg_color=style.color(colour))
            self.badge_label.grid()
        else:
            self.badge_label.grid_remove()

    def show_actions(self, enabled: dict[str, bool], busy: str | None, pause_label: str) -> None:
        self._pause_label, self._busy = pause_label, busy
        for action, b in self.buttons.items():
            set_enabled(b, bool(enabled.get(action)), self._button_colours[action])
        self._relabel()

    def show_queue(self, rows: list[fmt.QueueRow], summary: str) -> None:
        self.queue.set_title(_("Waiting list") + " · " + summary)
        self.queue.show_rows(rows)

    def show_checklist(self, title: str, rows: list[fmt.ChecklistRow]) -> None:
        self.checklist.show(_("Materials") + " · " + title, rows)

    def focus_checklist(self) -> None:
        """After F7/F8 the keys 1-5 go to the checklist without a mouse click."""
        self.checklist.focus_rows()

    def show_figures(self, figures: fmt.Figures) -> None:
        self.figures.show(figures)

    def show_status(self, connection: str, outbox: str, pad: str, scanner: str, online: bool) -> None:
        self.status.show(connection, outbox, pad, scanner, online)

    def show_banner(self, text: str | None) -> None:
        self.banner.set_text(text)
        if text:
            self.banner.grid()
        else:
            self.banner.grid_remove()

    def show_notice(self, text: str, kind: str = "info") -> None:
        fg = {"info": "info_bg", "warn": "warning_bg", "error": "danger_bg"}.get(kind, "info_bg")
        tc = {"info": "text", "warn": "warning", "error": "danger"}.get(kind, "text")
        self.notice_label.configure(text=f"  {text}", fg_color=style.color(fg), text_color=style.color(tc))
        self.notice_kind = kind
        if self._notice_after is not None:
            self.after_cancel(self._notice_after)
        self._notice_after = self.after(NOTICE_MS, self._clear_notice)

    def _clear_notice(self) -> None:
        self._notice_after = None
        self.notice_label.configure(text="", fg_color="transparent")

    def alert_new_ticket(self, number: str, flash: bool, sound: bool) -> None:
        self.alerts += 1
        self.show_notice(_("New citizen waiting: {number}").format(number=number), "warn")
        if sound:
            self.bell()
        if flash:
            self._flash(6)

    def _flash(self, times: int) -> None:
        if times <= 0:
            self._flash_after = None
            self.ticket_panel.configure(fg_color=style.color("panel"))
            return
        colour = style.color("flash") if times % 2 == 0 else style.color("panel")
        self.ticket_panel.configure(fg_color=colour)
        self._flash_after = self.after(300, lambda: self._flash(times - 1))

    # -- dialogs -----------------------------------------------------------------------------
    def _open(self, dialog: ctk.CTkToplevel) -> None:
        self.dialog = dialog

    def ask_transfer(self, windows: list[tuple[int, str]], categories: list[tuple[str, str]],
                     on_done: Callable[[TransferChoice], None]) -> None:
        self._open(TransferDialog(self, windows, categories, on_done))

    def ask_suspend(self, on_done: Callable[[str], None]) -> None:
        self._open(SuspendDialog(self, on_done))

    def show_paused(self, title: str, detail: str) -> None:
        self.number_label.configure(text="")  # no glyph: the hall PC fonts may lack ⏸
        self.matter_label.configure(text=title)
        self.detail_label.configure(text=detail)

    def ask_pause(self, reasons: list[tuple[str, str]], on_done: Callable[[str], None]) -> None:
        self._open(PauseDialog(self, reasons, on_done))

    def ask_complete(self, outcomes: list[tuple[str, str]], on_done: Callable[[CompleteChoice], None],
                     missing: list[str]) -> None:
        notice = self._on_capture
        self._open(CompleteDialog(self, outcomes, on_done, missing,
                                  (lambda: notice(None)) if notice is not None else None))

    def ask_matter(self, on_done: Callable[[str], None]) -> None:
        def describe(m: Matter) -> str:
            # The code first (clerks read it off the form), then the name: a long English name
            # or department may run past the edge, the code never does.
            return f"{m.code}   {fmt.name(m)}  ·  {fmt.pick(m.department_zh, m.department_en)}"

        self._open(MatterDialog(self, self._search, describe, on_done))

    # -- the applicant (ui.presenters.applicant.ApplicantView) ---------------------------------
    def show_applicant(self, line: str | None, can_reveal: bool) -> None:
        if line is None:
            self.applicant_bar.grid_remove()
            return
        self.applicant_bar.show(line, can_reveal)
        self.applicant_bar.grid()

    def ask_manual_entry(self, doc_types: list[tuple[str, str]],
                         on_submit: Callable[[dict[str, Any]], None]) -> None:
        self._open(ManualEntryDialog(self, doc_types, on_submit))

    def manual_entry_error(self, field: str, text: str) -> None:
        if isinstance(self.dialog, ManualEntryDialog) and self.dialog.winfo_exists():
            self.dialog.field_error(field, text)

    def close_manual_entry(self) -> None:
        if isinstance(self.dialog, ManualEntryDialog) and self.dialog.winfo_exists():
            self.dialog.close()

    def ask_reveal(self, on_purpose: Callable[[str], None]) -> None:
        self._open(RevealDialog(self, on_purpose))

    def show_revealed(self, rows: list[tuple[str, str]]) -> None:
        if isinstance(self.dialog, RevealDialog) and self.dialog.winfo_exists():
            self.dialog.show(rows)

    def reveal_error(self, text: str) -> None:
        if isinstance(self.dialog, RevealDialog) and self.dialog.winfo_exists():
            self.dialog.fail(text)

    def ask_green_channel(self, text: str, on_answer: Callable[[bool], None]) -> None:
        self._open(YesNoDialog(self, N_("Green channel"), text, on_answer))

    def ask_papers(self, actions: Any, has_case: bool) -> None:
        self._open(PapersDialog(self, actions, has_case))

    def papers_hits(self, hits: list[tuple[int, str]]) -> None:
        if isinstance(self.dialog, PapersDialog) and self.dialog.winfo_exists():
            self.dialog.show_hits(hits)

    def papers_message(self, text: str, kind: str = "info") -> None:
        if isinstance(self.dialog, PapersDialog) and self.dialog.winfo_exists():
            self.dialog.error_label.configure(
                text=text, text_color=style.color("danger" if kind == "error" else "ok"))
        else:
            self.show_notice(text, kind)

    def ask_mailing(self, carriers: list[tuple[str, str]], prefill: dict[str, str],
                    on_submit: Callable[[dict[str, str]], None]) -> None:
        if isinstance(self.dialog, PapersDialog) and self.dialog.winfo_exists():
            self.dialog.close()  # one dialog at a time (each grabs the input)
        self._open(MailingDialog(self, carriers, prefill, on_submit))

    def mailing_error(self, field: str, text: str) -> None:
        if isinstance(self.dialog, MailingDialog) and self.dialog.winfo_exists():
            self.dialog.field_error(field, text)

    def close_mailing(self) -> None:
        if isinstance(self.dialog, MailingDialog) and self.dialog.winfo_exists():
            self.dialog.close()

    def ask_unlock(self) -> None:
        self.lock_screen.password_entry.focus_set()

    def show_locked(self, locked: bool, message: str = "") -> None:
        self.locked = locked
        if locked:
            self.lock_screen.place(relx=0, rely=0, relwidth=1, relheight=1)
            self.lock_screen.lift()
            self.lock_screen.reset(self.who_label.cget("text"))
        else:
            self.lock_screen.place_forget()
            self.focus_set()

    def cancel_timers(self) -> None:
        for after_id in (self._notice_after, self._flash_after):
            if after_id is not None:
                try:
                    self.after_cancel(after_id)
                except tk.TclError:
                    pass
        self._notice_after = self._flash_after = None
