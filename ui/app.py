"""The desk application: the root window, the screens (sign-in, desk, lock), the task runner and
the dispatcher, wired to one CounterCore.

The composition root (`counter_desk.wiring.build_app`) builds the core and its services, then
this window on it; ``mainloop()`` runs it, GUI tests drive it by pumping ``root.update()``.
"""

from __future__ import annotations

import logging
import tkinter as tk
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import customtkinter as ctk

from api_client.models import Matter, Me
from counter_app import events as ev
from counter_app.config import Settings
from counter_app.core import CounterCore
from counter_app.pad.service import PadService
from ui import i18n, style
from ui.i18n import _
from ui.presenters import format as fmt
from ui.presenters.applicant import ApplicantPresenter
from ui.presenters.desk import ACTIONS, DeskPresenter, error_text
from ui.presenters.pad import PadPresenter, PairingPresenter, PairingView, transport_kind
from ui.presenters.signin import SignInPresenter
from ui.tasks import (
    TaskRunner,
    UiDispatcher,
    ViewRunner,
    install_error_handler,
    on_destroy,
    widget_alive,
)
from ui.views.desk import DeskView
from ui.views.signin import SignInView

if TYPE_CHECKING:
    from ui.views.capture import CaptureWindow
    from ui.views.followups import FollowupsDialog
    from ui.views.pad_pairing import PadPairingDialog

log = logging.getLogger(__name__)

HOTKEYS = {key: action for action, key in ACTIONS.items() if key.startswith("F")}
CLOSE_GRACE_MS = 6000
IDLE_CHECK_MS = 30000
STATS_EVERY_MS = 60000
CLOCK_TICK_MS = 1000
UPDATE_NOTE_ZH = "新版本已下载，将在下班签退后安装"
UPDATE_NOTE_EN = "Update downloaded; installs after sign-out"


MIN_W, MIN_H = 1200, 640


def maximise(root: tk.Tk) -> None:
    """Fill the screen: the window manager's maximise where there is one, else the screen size
    (kiosk PCs and Xvfb run without a window manager, where "zoomed" does nothing)."""
    w, h = root.winfo_screenwidth(), root.winfo_screenheight()
    root.geometry(f"{max(w, MIN_W)}x{max(h, MIN_H)}+0+0")
    try:
        if root.tk.call("tk", "windowingsystem") == "win32":
            root.state("zoomed")
        else:
            root.attributes("-zoomed", True)
    except tk.TclError:
        pass  # no such attribute on this platform: the geometry above stands


class DeskApp:
    """One desk window. Create, optionally ``sign_in``, then ``mainloop()`` (or pump in tests)."""

    def __init__(self, settings: Settings, *, core: CounterCore) -> None:
        self.settings = settings
        style.apply(settings.appearance, settings.scaling)
        i18n.set_language(settings.language or "zh")
        # The core comes built (counter_desk.wiring): its I/O ran before this window existed.
        self.core = core
        self.root = ctk.CTk()
        # Hall PCs are often 1366x768 with a taskbar (~728 px usable): start maximised and let
        # the layout reflow down to 1280x720 (issue 16 item 1).
        self.root.minsize(MIN_W, MIN_H)
        maximise(self.root)
        self._retitle()
        self._unsub_lang = i18n.on_change(lambda _l: self._retitle())
        self.runner = TaskRunner(self.root, default_error=self._unexpected)
        install_error_handler(self.root, settings.log_dir, self._show_bug)
        self.dispatcher = UiDispatcher(self.runner, core.bus)
        self.pad: PadPresenter | None = None
        self.exit_code = 0
        self.closing = False
        self.closed = False
        self.signin_view: SignInView | None = None
        self.signin: SignInPresenter | None = None
        self.desk_view: DeskView | None = None
        self.desk: DeskPresenter | None = None
        self._afters: dict[str, str] = {}
        self.root.protocol("WM_DELETE_WINDOW", self.close)
        self.root.bind_all("<Key>", self._activity, add="+")
        self.root.bind_all("<Button>", self._activity, add="+")
        self.root.bind("<Return>", self._on_return, add="+")
        self.root.bind("<KP_Enter>", self._on_return, add="+")
        self.root.bind("<Control-l>", self._hotkey_event("lock"), add="+")
        self.root.bind("<Control-p>", lambda _e: self.open_pad_pairing(), add="+")
        self.root.bind("<Control-g>", lambda _e: self.open_followups(), add="+")  # 差评回访与申诉
        self.root.bind("<Control-L>", self._hotkey_event("lock"), add="+")
        for key, action in HOTKEYS.items():
            self.root.bind(f"<{key}>", self._hotkey_event(action), add="+")
        self.dispatcher.subscribe(ev.SignedOut, self._on_signed_out)
        self.dispatcher.subscribe(ev.UpdateReady, lambda _e: self._render_update_note())
        self._update_note: ctk.CTkLabel | None = None
        self.capture_window: CaptureWindow | None = None  # the open capture panel (one at most)
        self.show_sign_in()

    # -- screens -----------------------------------------------------------------------------
    def _retitle(self) -> None:
        self.root.title(_("Counter desk · window {no}").format(no=self.settings.window_no))

    def show_sign_in(self) -> None:
        self._teardown_desk()
        view = SignInView(self.root, on_submit=lambda s, p, n, c: self.signin.submit(s, p, n, c) if self.signin else None,
                          on_caps=lambda on: self.signin.on_caps_lock(on) if self.signin else None,
                          on_language=self.toggle_language)
        view.place(relx=0.5, rely=0.45, anchor="center")
        self.signin_view = view
        self.signin = SignInPresenter(view, ViewRunner(self.runner, widget_alive(view), "sign-in"),
                                      self.core, self.settings.window_no,
                                      self._signed_in)
        self.signin.render()
        self.signin.check_server()
        i18n_unsub = i18n.on_change(lambda _l: self.signin.render() if self.signin else None)
        on_destroy(view, i18n_unsub)
        view.staff_entry.focus_set()

    def sign_in(self, staff_no: str, password: str) -> None:
        """Sign in as if typed (used with demo credentials). Tk thread."""
        if self.signin_view is None or self.signin is None:
            return
        self.signin_view.staff_entry.delete(0, "end")
        self.signin_view.staff_entry.insert(0, staff_no)
        self.signin_view.password_entry.delete(0, "end")
        self.signin_view.password_entry.insert(0, password)
        self.signin.submit(staff_no, password)

    def _signed_in(self, me: Me) -> None:
        if self.signin_view is not None:
            self.signin_view.destroy()
            self.signin_view, self.signin = None, None
        self.show_desk(me)

    def show_desk(self, me: Me) -> None:
        view = DeskView(self.root, on_action=self._hotkey, on_resume=self._resume,
                        on_set_material=self._set_material, search=self._search,
                        on_language=self.toggle_language, on_unlock=self._unlock,
                        on_capture=self._open_capture)
        view.pack(fill="both", expand=True)
        self.desk_view = view
        presenter = DeskPresenter(view, ViewRunner(self.runner, widget_alive(view), "the desk"),
                                  self.core,
                                  alert_flash=self.settings.alert_flash,
                                  alert_sound=self.settings.alert_sound)
        self.desk = presenter
        # F11 and the masked applicant on the case (issue 17).
        applicant = ApplicantPresenter(presenter, view)
        presenter.applicant = applicant
        view.applicant_bar.bind_actions(applicant.manual, applicant.reveal)
        self._who = me.staff
        self._render_who()
        d = self.dispatcher
        d.bind_to_widget(view, ev.DeskChanged, presenter.on_desk_changed)
        d.bind_to_widget(view, ev.QueueChanged, presenter.on_queue_changed)
        d.bind_to_widget(view, ev.ConnectionChanged, presenter.on_connection_changed)
        d.bind_to_widget(view, ev.OutboxChanged, presenter.on_outbox_changed)
        d.bind_to_widget(view, ev.StatsUpdated, presenter.on_stats_updated)
        d.bind_to_widget(view, ev.TicketArrivedInEmptyQueue, presenter.on_ticket_arrived)
        d.bind_to_widget(view, ev.TicketTakenElsewhere, presenter.on_ticket_taken)
        d.bind_to_widget(view, ev.ErrorRaised, presenter.on_error_raised)
        d.bind_to_widget(view, ev.CatalogSynced, presenter.on_catalog_synced)
        d.bind_to_widget(view, ev.Locked, presenter.on_locked)
        d.bind_to_widget(view, ev.Unlocked, presenter.on_unlocked)
        self._attach_pad(view, presenter)
        self._render_update_note()
        def relabel(_lang: str) -> None:
            self._render_who()
            presenter.relabel()
            self._render_update_note()

        on_destroy(view, i18n.on_change(relabel))
        # Start from what the core already knows (it resynced before SignedIn).
        presenter.s.snapshot = self.core.live.snapshot
        presenter.s.connection = self.core.live.connection_state or "online"
        presenter._sync_from_desk()
        presenter.render()
        presenter.refresh_stats()
        self._every("clock", CLOCK_TICK_MS, self._tick)
        self._every("stats", STATS_EVERY_MS, presenter.refresh_stats)
        if self.settings.idle_lock_minutes:
            self._every("idle", IDLE_CHECK_MS, self._check_idle)
        self.root.focus_set()

    def _render_who(self) -> None:
        if self.desk_view is None:
            return
        staff = self._who
        name = fmt.name(staff)
        number = staff.staff_no if staff is not None else ""
        self.desk_view.set_who(_("Window {no} · {name} ({staff_no})").format(
            no=self.settings.window_no, name=name, staff_no=number))

    def _render_update_note(self) -> None:
        """Status-bar note while a downloaded update waits for the end of the shift."""
        if self.desk_view is None:
            return
        updates = self.core.updates
        ready = updates.ready if updates is not None else None
        note = self._update_note
        if note is None or not note.winfo_exists() or note.master is not self.desk_view.status:
            note = ctk.CTkLabel(self.desk_view.status, font=style.font(14), anchor="e",
                                text_color=style.color("muted"))
            note.grid(row=0, column=5, padx=(14, 18), pady=3, sticky="e")
            self._update_note = note
        # Both languages are given by the spec; the note is short, so no catalogue entry.
        text = (UPDATE_NOTE_ZH if i18n.language() == "zh" else UPDATE_NOTE_EN) if ready else ""
        note.configure(text=text)

    def _teardown_desk(self) -> None:
        for key in list(self._afters):
            self._cancel(key)
        if self.desk_view is not None:
            self.desk_view.cancel_timers()
            self.desk_view.destroy()
        self.desk_view, self.desk = None, None

    def _on_signed_out(self, _e: ev.SignedOut) -> None:
        if not self.closing and self.desk_view is not None:
            self.show_sign_in()

    # -- periodic ------------------------------------------------------------------------------
    def _every(self, key: str, ms: int, fn: Callable[[], None]) -> None:
        def tick() -> None:
            self._afters.pop(key, None)
            fn()
            if not self.closing:
                self._afters[key] = self.root.after(ms, tick)

        self._cancel(key)
        self._afters[key] = self.root.after(ms, tick)

    def _cancel(self, key: str) -> None:
        after_id = self._afters.pop(key, None)
        if after_id is not None:
            try:
                self.root.after_cancel(after_id)
            except tk.TclError:
                pass

    def _tick(self) -> None:
        # Waiting times move on even when nothing else happens.
        if self.desk is not None:
            self.desk._render_ticket()
            self.desk._render_queue()

    def _check_idle(self) -> None:
        self.runner.run(self.core.session.check_idle, lambda _locked: None, lambda _e: None)

    # -- input ---------------------------------------------------------------------------------
    def _activity(self, _e: tk.Event[tk.Misc]) -> None:
        self.core.session.touch()

    def _hotkey(self, action: str) -> None:
        if self.desk is not None and self.desk_view is not None and not self._dialog_open():
            self.desk.trigger(action)

    def _hotkey_event(self, action: str) -> Callable[[tk.Event[tk.Misc]], str]:
        """A key binding for ``action``; "break" stops Tk from handling the key further."""

        def on_key(_e: tk.Event[tk.Misc]) -> str:
            self._hotkey(action)
            return "break"

        return on_key

    def _dialog_open(self) -> bool:
        d = self.desk_view.dialog if self.desk_view is not None else None
        return bool(d is not None and d.winfo_exists())

    def _on_return(self, _e: tk.Event[tk.Misc]) -> None:
        if self.signin_view is not None:
            self.signin_view.submit()

    def _resume(self, ticket_id: int) -> None:
        if self.desk is not None:
            self.desk.on_resume_ticket(ticket_id)

    def _set_material(self, item_id: str, status: str, note: str) -> None:
        if self.desk is not None:
            self.desk.set_material(item_id, status, note)

    def _open_capture(self, item_id: str | None) -> None:
        from ui.views.capture import open_for_desk

        open_for_desk(self, item_id)

    def _search(self, text: str, on_results: Callable[[list[Matter]], None]) -> None:
        if self.desk is not None:
            self.desk.search_matters(text, on_results)

    def _unlock(self, password: str) -> None:
        if self.desk is None or self.desk_view is None:
            return
        view = self.desk_view

        def result(ok: bool) -> None:
            if not ok:
                view.lock_screen.fail(_("Wrong password."))

        self.desk.unlock(password, result)

    # -- evaluator pad ---------------------------------------------------------------------------
    @property
    def pad_service(self) -> PadService | None:
        """The evaluator pad the wiring attached to the core (None: no pad)."""
        return self.core.pad

    def _attach_pad(self, view: DeskView, presenter: DeskPresenter) -> None:
        pad = PadPresenter(self.runner, self.pad_service, on_change=presenter.pad_changed,
                           notice=presenter.pad_notice, error_text=error_text)
        presenter.pad, self.pad = pad, pad
        d = self.dispatcher
        d.bind_to_widget(view, ev.PadStateChanged, pad.on_pad_state)
        d.bind_to_widget(view, ev.RatingRequested, pad.on_rating_requested)
        d.bind_to_widget(view, ev.RatingStored, pad.on_rating_stored)
        d.bind_to_widget(view, ev.RatingNotGiven, pad.on_rating_not_given)
        view.status.pad.bind("<Button-1>", lambda _e: self.open_pad_pairing(), add="+")

    def open_pad_pairing(self) -> PadPairingDialog | None:
        """Ctrl+P or a click on the pad status: the pad's status and how a supervisor pairs it."""
        if (self.desk_view is None or self._dialog_open()
                or transport_kind(self.settings.pad_transport) != "lan"):
            return None
        from ui.views.pad_pairing import PadPairingDialog

        service = self.pad_service
        if service is None:
            return None

        def make(view: PairingView) -> PairingPresenter:
            return PairingPresenter(view, self.runner, service.pad_status,
                                    server_url=self.settings.server_url, error_text=error_text)

        dialog = PadPairingDialog(self.desk_view, make)
        self.desk_view.dialog = dialog
        return dialog

    def open_followups(self) -> FollowupsDialog | None:
        """Ctrl+G: this window's open bad-rating follow-ups and appeals (docs/followup.md)."""
        if self.desk_view is None or self._dialog_open():
            return None
        from ui.presenters.followups import FollowupsPresenter
        from ui.views.followups import FollowupsDialog  # noqa: F811 - runtime import of the typed name

        me = self._who.staff_no if self._who is not None else ""

        def make(view: FollowupsDialog) -> FollowupsPresenter:
            return FollowupsPresenter(view, self.runner, self.core.window_followups, me, error_text)

        dialog = FollowupsDialog(self.desk_view, make)
        self.desk_view.dialog = dialog
        return dialog

    def toggle_language(self) -> None:
        i18n.set_language("en" if i18n.language() == "zh" else "zh")

    # -- errors --------------------------------------------------------------------------------
    def _show_bug(self, text: str) -> None:
        if self.desk_view is not None:
            self.desk_view.show_notice(text, "error")
        elif self.signin_view is not None:
            self.signin_view.show_error(text)

    def _unexpected(self, exc: BaseException) -> None:
        log.error("task failed without a handler", exc_info=exc)
        self._show_bug(_("Something went wrong. The details are in the log: {where}").format(
            where=self.settings.log_dir))

    # -- closing -------------------------------------------------------------------------------
    def close(self) -> None:
        """Sign out through the runner, stop the core, then destroy the window."""
        if self.closing:
            return
        self.closing = True
        session = self.core.session

        def sign_out() -> None:
            if session.signed_in:
                session.sign_out()

        self.runner.run(sign_out, lambda _r: self._finish_close(), lambda _e: self._finish_close())
        # Offline sign-out can take the client's full retry budget; the window goes anyway.
        self._afters["close"] = self.root.after(CLOSE_GRACE_MS, self._finish_close)

    def _finish_close(self) -> None:
        if self.closed:
            return
        self._cancel("close")
        # The core stops the pad, the outbox and the rest (worker thread: it joins threads).
        self.runner.run(self.core.close, lambda _r: self.destroy(), lambda _e: self.destroy())

    def destroy(self) -> None:
        if self.closed:
            return
        self.closed = True
        for key in list(self._afters):
            self._cancel(key)
        if self.desk_view is not None:
            self.desk_view.cancel_timers()
        self.dispatcher.close()
        self.runner.close()
        self._unsub_lang()
        try:
            # Nothing scheduled may run against destroyed widgets (CTk schedules its own too).
            for after_id in self.root.tk.call("after", "info"):
                self.root.after_cancel(after_id)
            self.root.update_idletasks()
            self.root.destroy()
        except tk.TclError:
            pass

    def mainloop(self) -> int:
        self.root.mainloop()
        return self.exit_code


def show_startup_error(message_zh: str, message_en: str, log_dir: Path | None) -> None:
    """A plain dialog before any desk window exists (Tk thread; no I/O)."""
    import tkinter as tk
    from tkinter import messagebox

    root = tk.Tk()
    root.withdraw()
    where = f"\n\n日志 / Log: {log_dir}" if log_dir else ""
    messagebox.showerror("柜台 / Counter desk", f"{message_zh}\n\n{message_en}{where}", parent=root)
    root.destroy()
