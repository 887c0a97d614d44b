"""The sign-in presenter: checks the server, signs in through the runner, reports clearly.

Plain Python (no Tk). The view shows the window number, the server state and a caps-lock
warning; Enter submits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from api_client.models import Health, Me
from counter_app.core import CounterCore
from ui.i18n import N_, _
from ui.presenters.desk import Runner, error_text


class SignInView(Protocol):
    def show_window(self, text: str) -> None: ...
    def show_server(self, text: str, ok: bool | None) -> None: ...
    def show_error(self, text: str | None) -> None: ...
    def show_caps_lock(self, on: bool) -> None: ...
    def set_busy(self, busy: bool) -> None: ...


class SignInPresenter:
    def __init__(self, view: SignInView, runner: Runner, core: CounterCore, window_no: int,
                 on_signed_in: Callable[[Me], None]) -> None:
        self.view, self.runner, self.core = view, runner, core
        self.window_no = window_no
        self.on_signed_in = on_signed_in
        self.busy = False
        self.server_ok: bool | None = None
        # The last error, kept as the error itself so a language switch re-words it.
        self._error: BaseException | str | None = None

    def render(self) -> None:
        self.view.show_window(_("Window {no}").format(no=self.window_no))
        self._render_server()
        self._render_error()

    def _render_error(self) -> None:
        err = self._error
        if err is None:
            self.view.show_error(None)
        else:
            self.view.show_error(_(err) if isinstance(err, str) else error_text(err))

    def _render_server(self) -> None:
        text = {None: _("Server: checking…"), True: _("Server: connected"),
                False: _("Server: not reachable")}[self.server_ok]
        self.view.show_server(text, self.server_ok)

    def check_server(self) -> None:
        client = self.core.client

        def ok(_h: Health) -> None:
            self.server_ok = True
            self._render_server()

        def fail(_e: BaseException) -> None:
            self.server_ok = False
            self._render_server()

        self.runner.run(client.health, ok, fail)

    def on_caps_lock(self, on: bool) -> None:
        self.view.show_caps_lock(on)

    def submit(self, staff_no: str, password: str) -> None:
        if self.busy:
            return
        staff_no = staff_no.strip()
        if not staff_no or not password:
            self._error = N_("Enter your staff number and password.")
            self._render_error()
            return
        self.busy = True
        self.view.set_busy(True)
        self._error = None
        self._render_error()
        session = self.core.session

        def ok(me: Me) -> None:
            self.busy = False
            self.view.set_busy(False)
            self.server_ok = True
            self._render_server()
            self.on_signed_in(me)

        def fail(exc: BaseException) -> None:
            self.busy = False
            self.view.set_busy(False)
            self._error = exc
            self._render_error()

        self.runner.run(lambda: session.sign_in(staff_no, password), ok, fail)
