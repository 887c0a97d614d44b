"""The staff session at this window: sign in, idle lock, unlock, sign out.

Sign-in binds the staff to the configured window (the server opens it). Tokens live only inside
the HallClient (memory) and are refreshed by it. After `idle_lock_minutes` without `touch()` the
desk locks: the queue and the outbox keep running, only the screen is covered; `unlock(password)`
re-verifies the password with the server by a fresh login at the same window. Sign-out closes
the window's session on the server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from counter_app.errors import CounterError, CredentialError, IllegalActionError, from_api
from counter_app.events import EventBus, Locked, SignedIn, SignedOut, Unlocked

if TYPE_CHECKING:
    from api_client import HallClient
    from api_client.models import Me, Staff, Window

log = logging.getLogger(__name__)


class SessionService:
    """Sign-in state of the desk. Blocking methods are for worker threads (any thread)."""

    def __init__(
        self,
        client: HallClient,
        bus: EventBus,
        window_no: int,
        *,
        idle_lock_minutes: float = 10,
        clock: Callable[[], float] = time.monotonic,
        check_interval_s: float = 5.0,
    ) -> None:
        self._client = client
        self._bus = bus
        self.window_no = window_no
        self.idle_lock_s = idle_lock_minutes * 60
        self._clock = clock
        self._check_interval_s = check_interval_s
        self._lock = threading.RLock()
        self._staff: Staff | None = None
        self._window: Window | None = None
        self._locked = False
        self._last_activity = clock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        # Called (on the signing-in thread) after a successful sign-in, before SignedIn is
        # published: the core loads the hall, rebuilds the desk and starts the live queue there,
        # so the UI's SignedIn handler already sees the right desk state.
        self.on_signed_in: list[Callable[[Me], None]] = []
        self.on_signing_out: list[Callable[[], None]] = []

    # -- state -------------------------------------------------------------------------------
    @property
    def staff(self) -> Staff | None:
        return self._staff

    @property
    def window(self) -> Window | None:
        return self._window

    @property
    def signed_in(self) -> bool:
        return self._staff is not None

    @property
    def locked(self) -> bool:
        return self._locked

    # -- actions -----------------------------------------------------------------------------
    def sign_in(self, staff_no: str, password: str) -> Me:
        """Sign in at this window; returns who and where. Raises CredentialError/OfflineError."""
        from api_client.models import Me

        staff_no = staff_no.strip()
        if not staff_no or not password:
            raise CredentialError(message_zh="请输入工号和密码", message_en="Enter your staff number and password",
                                  code="missing_credentials")
        try:
            result = self._client.login(staff_no, password, window_no=self.window_no)
        except Exception as exc:
            raise from_api(exc) from exc
        me = Me(staff=result.staff, window=result.window)
        with self._lock:
            self._staff = result.staff
            self._window = result.window
            self._locked = False
            self._last_activity = self._clock()
        for hook in list(self.on_signed_in):
            hook(me)
        self._start_watcher()
        log.info("signed in: staff %s at window %s", result.staff.staff_no, self.window_no)
        self._bus.publish(SignedIn(result.staff, result.window))
        return me

    def change_password_and_sign_in(self, staff_no: str, password: str, new_password: str) -> Me:
        """Set a new password (the one after an IT reset must be replaced before anything
        opens), then sign in with it. Raises CredentialError (e.g. ``weak_password``)."""
        staff_no = staff_no.strip()
        try:
            self._client.change_password(staff_no, password, new_password)
        except Exception as exc:
            raise from_api(exc) from exc
        log.info("password changed by staff %s at window %s", staff_no, self.window_no)
        return self.sign_in(staff_no, new_password)

    def sign_out(self) -> None:
        """Close the window's session on the server; local state is cleared even when offline."""
        if not self.signed_in:
            return
        for hook in list(self.on_signing_out):
            try:
                hook()
            except Exception:
                log.exception("sign-out hook failed")
        error: CounterError | None = None
        try:
            self._client.logout()
        except Exception as exc:
            error = from_api(exc)
            log.warning("logout on the server failed: %s", error)
        with self._lock:
            self._staff = None
            self._window = None
            self._locked = False
        self._stop.set()
        log.info("signed out at window %s", self.window_no)
        self._bus.publish(SignedOut())
        if error is not None and not error.retryable:
            raise error

    def touch(self) -> None:
        """Record user activity (any key or click); cheap, any thread."""
        self._last_activity = self._clock()

    def lock(self) -> None:
        """Cover the desk; the queue keeps running."""
        with self._lock:
            if not self.signed_in or self._locked:
                return
            self._locked = True
        log.info("desk locked")
        self._bus.publish(Locked())

    def unlock(self, password: str) -> bool:
        """Re-verify the signed-in staff's password with the server; True if unlocked.

        A wrong password is False; offline or too many attempts raise the CounterError.
        """
        staff = self._staff
        if staff is None:
            raise IllegalActionError(message_zh="尚未登录", message_en="Not signed in", code="not_signed_in")
        if not password:
            return False
        try:
            result = self._client.login(staff.staff_no, password, window_no=self.window_no)
        except Exception as exc:
            err = from_api(exc)
            if isinstance(err, CredentialError) and err.code == "bad_credentials":
                log.info("unlock refused: wrong password")
                return False
            raise err from exc
        with self._lock:
            self._window = result.window
            self._locked = False
            self._last_activity = self._clock()
        log.info("desk unlocked")
        self._bus.publish(Unlocked())
        return True

    def check_idle(self) -> bool:
        """Lock if idle long enough; returns whether the desk is locked. Any thread."""
        if (self.signed_in and not self._locked and self.idle_lock_s > 0
                and self._clock() - self._last_activity >= self.idle_lock_s):
            self.lock()
        return self._locked

    def close(self) -> None:
        self._stop.set()

    # -- internals ---------------------------------------------------------------------------
    def _start_watcher(self) -> None:
        if self.idle_lock_s <= 0 or (self._watcher and self._watcher.is_alive()):
            return
        self._stop = threading.Event()
        stop = self._stop

        def run() -> None:
            while not stop.wait(self._check_interval_s):
                try:
                    self.check_idle()
                except Exception:
                    log.exception("idle check failed")

        self._watcher = threading.Thread(target=run, name="idle-lock", daemon=True)
        self._watcher.start()
