"""The desk's side of the evaluator pad: its state in the status bar, F10 "evaluate", the lock on
the desk's rating controls while a rating is open, and the pairing dialog's logic.

Plain Python (no Tk): it talks to a runner with ``run(op, on_success, on_error)``, the core's
``PadService`` and callbacks into the desk presenter. The clerk never learns the level: the
events it listens to (RatingRequested, RatingStored, RatingNotGiven) carry none, and the desk
only says "rating received".
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

from ui.i18n import N_, _

log = logging.getLogger(__name__)

STATE_TEXT: dict[str, str] = {
    "paired": N_("Pad: paired"),
    "connected": N_("Pad: connected"),
    "unpaired": N_("Pad: not paired"),
    "offline": N_("Pad: OFFLINE"),
    "none": N_("Pad: not configured"),
}
# Which states mean "a citizen can rate now" (the status bar shows them in green).
GOOD_STATES = frozenset({"paired", "connected"})
TRANSPORTS = {"lan": "lan", "web": "lan", "second_screen": "second_screen", "serial": "serial"}


class Runner(Protocol):
    def run(self, op: Callable[[], Any], on_success: Callable[[Any], None] | None = ...,
            on_error: Callable[[BaseException], None] | None = ..., *, kind: str = ...) -> int: ...


def transport_kind(setting: str | None) -> str:
    """The configured ``pad_transport`` as "lan" | "second_screen" | "serial" | "none"."""
    return TRANSPORTS.get((setting or "none").strip().lower(), "none")


class PadPresenter:
    """Pad state for the desk. UI thread only (events arrive through the dispatcher)."""

    def __init__(self, runner: Runner, service: Any, *, on_change: Callable[[], None],
                 notice: Callable[[Callable[[], str], str], None],
                 error_text: Callable[[BaseException], str]) -> None:
        self.runner = runner
        self.service = service
        self.on_change = on_change
        self.notice = notice
        self.error_text = error_text
        self.state = str(getattr(service, "state", "offline")) if service is not None else "none"
        self.rating_open = bool(getattr(service, "rating_open", False))
        self.requesting = False
        self.rated: set[int] = set()

    @property
    def configured(self) -> bool:
        return self.service is not None

    @property
    def locked(self) -> bool:
        """The desk's own rating controls are locked (a rating is being asked or is open)."""
        return self.rating_open or self.requesting

    def can_evaluate(self, case: Any) -> bool:
        case_id = getattr(case, "id", None)
        return (self.configured and case_id is not None and case_id not in self.rated
                and not self.locked)

    def status(self) -> tuple[str, bool]:
        """The status-bar text and whether it is good news (green)."""
        if not self.configured:
            text = STATE_TEXT["none"]  # not inside _(): Babel would extract "none" as a message
            return _(text), False
        if self.locked:
            return _("Pad: rating in progress"), True
        return _(STATE_TEXT.get(self.state, STATE_TEXT["offline"])), self.state in GOOD_STATES

    # -- actions -----------------------------------------------------------------------------------
    def evaluate(self, case: Any) -> None:
        """Ask the pad to rate ``case`` (F10, or right after completing)."""
        if not self.can_evaluate(case):
            return
        service = self.service
        self.requesting = True
        self.on_change()

        def ok(_request: Any) -> None:
            self.requesting = False
            self.rating_open = True
            self.notice(lambda: _("Rating in progress on the pad. Please wait; do not help "
                                  "the citizen choose."), "info")
            self.on_change()

        def fail(exc: BaseException) -> None:
            self.requesting = False
            if getattr(exc, "code", "") == "case_already_rated":
                self.rated.add(int(case.id))
            self.notice(lambda: self.error_text(exc), "error")
            self.on_change()

        self.runner.run(lambda: service.request_rating(case), ok, fail)

    # -- core events (UI thread) ----------------------------------------------------------------
    def on_pad_state(self, ev: Any) -> None:
        self.state = str(ev.state)
        self.on_change()

    def on_rating_requested(self, _ev: Any) -> None:
        self.rating_open = True
        self.on_change()

    def on_rating_stored(self, ev: Any) -> None:
        self.rating_open = False
        self.rated.add(int(ev.case_id))
        # Only that it arrived: staff must not see the level before it is submitted (and after,
        # it is not the desk's business either).
        self.notice(lambda: _("Rating received. Thank you."), "info")
        self.on_change()

    def on_rating_not_given(self, _ev: Any) -> None:
        self.rating_open = False
        self.notice(lambda: _("No rating was given; the pad shows a code to rate later."), "info")
        self.on_change()


class PairingView(Protocol):
    def show_busy(self, busy: bool) -> None: ...
    def show_error(self, text: str) -> None: ...
    def show_offer(self, qr_png: bytes, code: str, url: str) -> None: ...
    def show_countdown(self, text: str, expired: bool) -> None: ...
    def show_unpaired(self, count: int) -> None: ...


def unpair_window(settings: Any, staff_no: str, password: str,
                  client_factory: Callable[..., Any] | None = None) -> int:
    """Sign in as the supervisor/IT, unpair every pad of this window, sign out. Worker thread.

    Returns how many pads were unpaired. Raises CounterError (zh/en) on a wrong password or role.
    """
    from counter_app.errors import CounterError, from_api

    if client_factory is None:
        from api_client import HallClient

        client_factory = HallClient
    client = client_factory(settings.server_url, ca_bundle=settings.ca_bundle,
                            proxies=getattr(settings, "proxies", None))
    try:
        try:
            client.login(staff_no, password)
            pads = client.window_pads(settings.window_no)
            for pad in pads:
                client.unpair_pad(settings.window_no, pad.pad_id)
            return len(pads)
        except CounterError:
            raise
        except Exception as exc:
            raise from_api(exc) from exc
        finally:
            try:
                client.logout()
            except Exception:  # noqa: BLE001 - the supervisor's session then just expires
                pass
    finally:
        client.close()


class PairingPresenter:
    """Pairing dialog logic: credentials -> offer (QR, code, countdown); unpair; pair again."""

    def __init__(self, view: PairingView, runner: Runner, settings: Any, *,
                 start: Callable[..., Any] | None = None,
                 unpair: Callable[..., int] | None = None,
                 error_text: Callable[[BaseException], str],
                 on_paired_changed: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if start is None:
            from counter_app.pad.pairing import start_pairing

            start = start_pairing
        self.view, self.runner, self.settings = view, runner, settings
        self._start = start
        self._unpair = unpair or unpair_window
        self.error_text = error_text
        self.on_paired_changed = on_paired_changed or (lambda: None)
        self.clock = clock
        self.offer: Any = None
        self.busy = False

    def _check(self, staff_no: str, password: str) -> bool:
        if self.busy:
            return False
        if not staff_no.strip() or not password:
            self.view.show_error(_("Enter a supervisor or IT staff number and password."))
            return False
        return True

    def pair(self, staff_no: str, password: str) -> None:
        if not self._check(staff_no, password):
            return
        self.busy = True
        self.view.show_busy(True)
        settings, start = self.settings, self._start

        def ok(offer: Any) -> None:
            self.busy = False
            self.offer = offer
            self.view.show_busy(False)
            self.view.show_offer(offer.qr_png, offer.code, offer.url)
            self.tick()

        self.runner.run(lambda: start(settings, staff_no.strip(), password), ok, self._fail)

    def unpair(self, staff_no: str, password: str) -> None:
        if not self._check(staff_no, password):
            return
        self.busy = True
        self.view.show_busy(True)
        settings, unpair = self.settings, self._unpair

        def ok(count: int) -> None:
            self.busy = False
            self.offer = None
            self.view.show_busy(False)
            self.view.show_unpaired(int(count))
            self.on_paired_changed()

        self.runner.run(lambda: unpair(settings, staff_no.strip(), password), ok, self._fail)

    def _fail(self, exc: BaseException) -> None:
        self.busy = False
        self.view.show_busy(False)
        self.view.show_error(self.error_text(exc))

    def seconds_left(self) -> int:
        if self.offer is None:
            return 0
        expires = self.offer.expires_at.timestamp()
        return max(0, math.ceil(expires - self.clock()))  # 0.4 s left still counts as 1

    def tick(self) -> bool:
        """Update the countdown; returns True while the offer is still valid (call every second)."""
        if self.offer is None:
            return False
        left = self.seconds_left()
        if left <= 0:
            self.view.show_countdown(_("The code has expired. Press \"New code\" to pair again."),
                                     True)
            return False
        self.view.show_countdown(_("Valid for {s} s. Scan the code with the pad, or type the "
                                   "6 digits on it.").format(s=left), False)
        return True
