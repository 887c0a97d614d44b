"""The desk's side of the evaluator pad: its state in the status bar, F10 "evaluate", the lock on
the desk's rating controls while a rating is open, and the pairing dialog's logic.

Plain Python (no Tk): it talks to a runner with ``run(op, on_success, on_error)``, the core's
``PadService`` and callbacks into the desk presenter. The clerk never learns the level: the
events it listens to (RatingRequested, RatingStored, RatingNotGiven) carry none, and the desk
only says "rating received".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
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
    def show_status(self, lines: list[str], good: bool) -> None: ...


class PadStatus(Protocol):
    """What the dialog shows of the window's paired pad (api_client.models.PadInfo, a frozen
    dataclass: read-only members, hence properties)."""

    @property
    def pad_id(self) -> str: ...
    @property
    def paired_at(self) -> datetime: ...
    @property
    def paired_by(self) -> str: ...
    @property
    def last_seen_at(self) -> datetime | None: ...


def pair_page_url(server_url: str) -> str:
    return server_url.rstrip("/") + "/pair/"


class PairingPresenter:
    """The desk's pad dialog (Ctrl+P): the pad's status and how to pair it. The desk takes no
    supervisor password and relays no pairing any more: a supervisor pairs the pad from their
    own device on the hall server (its /pair/ page, or IT's `hall-server pad-pair`), so the
    window PC is outside the pad's trust path (docs/pad.md)."""

    def __init__(self, view: PairingView, runner: Runner,
                 status: Callable[[], PadStatus | None], *, server_url: str,
                 error_text: Callable[[BaseException], str]) -> None:
        self.view, self.runner, self._status = view, runner, status
        self.server_url = server_url
        self.error_text = error_text
        self.busy = False

    def help_lines(self) -> list[str]:
        return [
            _("To pair or replace the pad, ask a supervisor or IT."),
            _("They start the pairing on their own device at {url} (never on this PC); the pad "
              "shows a fingerprint that they type there to confirm.").format(
                url=pair_page_url(self.server_url)),
        ]

    def refresh(self) -> None:
        if self.busy:
            return
        self.busy = True
        self.view.show_busy(True)
        status = self._status

        def ok(pad: PadStatus | None) -> None:
            self.busy = False
            self.view.show_busy(False)
            if pad is None:
                lines = [_("No pad is paired at this window.")]
            else:
                seen = (pad.last_seen_at.astimezone().strftime("%H:%M:%S")
                        if pad.last_seen_at else _("not yet"))
                lines = [_("Pad {id} paired by {who} on {when}.").format(
                             id=pad.pad_id, who=pad.paired_by,
                             when=pad.paired_at.astimezone().strftime("%Y-%m-%d %H:%M")),
                         _("Last seen by the hall server: {t}").format(t=seen)]
            self.view.show_status(lines + self.help_lines(), pad is not None)

        def fail(exc: BaseException) -> None:
            self.busy = False
            self.view.show_busy(False)
            self.view.show_error(self.error_text(exc))

        self.runner.run(status, ok, fail)
