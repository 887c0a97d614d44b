"""The sign-in presenter: checks the server, signs in through the runner, reports clearly.

Plain Python (no Tk). The view shows the window number, the server state and a caps-lock
warning; Enter submits. After an IT password reset the server answers
``password_change_required``: the same screen then asks for a new password (twice), sets it
and signs in with it, so a clerk is never stuck at the window with a one-time password.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from api_client.models import Health, Me
from counter_app.core import CounterCore
from counter_app.errors import CounterError
from ui import i18n
from ui.i18n import N_, _
from ui.presenters.desk import Runner, error_text


class SignInView(Protocol):
    def show_window(self, text: str) -> None: ...
    def show_server(self, text: str, ok: bool | None) -> None: ...
    def show_error(self, text: str | None, calm: bool = False) -> None: ...
    def show_caps_lock(self, on: bool) -> None: ...
    def show_setup_problems(self, lines: list[str]) -> None: ...
    def set_busy(self, busy: bool) -> None: ...
    def show_change_password(self, on: bool) -> None: ...


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
        self.changing_password = False  # the server asked for a new password first
        self._note: str | None = None  # a calm hint above the error (not an error itself)

    def render(self) -> None:
        self.view.show_window(_("Window {no}").format(no=self.window_no))
        # Both languages come with each warning (the core's, from the config and the wiring).
        en = i18n.language() == "en"
        self.view.show_setup_problems([en_ if en else zh for zh, en_ in self.core.warnings])
        self._render_server()
        self._render_error()

    def _render_error(self) -> None:
        self.view.show_change_password(self.changing_password)
        err = self._error
        if err is None:
            self.view.show_error(_(self._note) if self._note else None, calm=True)
        elif isinstance(err, str):
            self.view.show_error(_(err))
        elif isinstance(err, CounterError) and err.code == "device_revoked":
            self.view.show_error(error_text(err) + "\n" + _(
                "Ask IT to enrol this PC again (counter-app setup with a new enrolment code)."))
        else:
            self.view.show_error(error_text(err))

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

    def submit(self, staff_no: str, password: str, new_password: str = "",
               confirm: str = "") -> None:
        if self.busy:
            return
        staff_no = staff_no.strip()
        if not staff_no or not password:
            self._error = N_("Enter your staff number and password.")
            self._render_error()
            return
        session = self.core.session
        op: Callable[[], Me]
        if self.changing_password:
            problem = new_password_problem(password, new_password, confirm)
            if problem is not None:
                self._error = problem
                self._render_error()
                return
            op = lambda: session.change_password_and_sign_in(staff_no, password, new_password)  # noqa: E731
        else:
            op = lambda: session.sign_in(staff_no, password)  # noqa: E731
        self.busy = True
        self.view.set_busy(True)
        self._error = None
        self._render_error()

        def ok(me: Me) -> None:
            self.busy = False
            self.changing_password = False
            self._note = None
            self.view.set_busy(False)
            self.server_ok = True
            self._render_server()
            self.on_signed_in(me)

        def fail(exc: BaseException) -> None:
            self.busy = False
            self.view.set_busy(False)
            if isinstance(exc, CounterError) and exc.code == "password_change_required":
                # Not a failure: the one-time password was right. Ask for the clerk's own.
                self.changing_password = True
                self._note = N_("Your password was reset by IT. Choose a new password "
                                "(8 or more characters) and type it twice.")
                self._error = None
            else:
                self._error = exc
            self._render_error()

        self.runner.run(op, ok, fail)


MIN_PASSWORD = 8  # the server's rule (weak_password); checked here first to say it sooner


def new_password_problem(old: str, new: str, confirm: str) -> str | None:
    """Why a new password would be refused, as a catalog message, or None when it is fine."""
    if len(new) < MIN_PASSWORD:
        return N_("The new password needs at least 8 characters.")
    if new == old:
        return N_("The new password must differ from the one IT gave you.")
    if new != confirm:
        return N_("The two new passwords differ; type it again.")
    return None
