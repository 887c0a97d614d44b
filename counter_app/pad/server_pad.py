"""The tablet pad, now a client of the HALL SERVER (hall_server/pad_site.py), not of the desk.

The pad loads its page from the hall server, pairs with it (a supervisor confirms the key's
fingerprint on their own device) and posts its signed ratings there itself, so the window PC
never sees the pad's key, its pairing token or its traffic, and cannot serve it code. What is
left on the desk is this thin transport for PadService:

* `ask_rating`: nothing to send (PadService already opened the case's rating challenge on the
  server, which the pad shows); the transport follows `GET /cases/{id}/rating-status` on a
  daemon thread until the case is rated (`on_stored(case_id, rating_id)`) or the on-the-spot
  rating is over (`on_not_given(case_id)`). Never the level: the desk cannot see it.
* the pad's link state: `GET /windows/{no}/pads` every `status_every_s`: "unpaired", "paired"
  or "connected" (the server saw a proven request from the pad within `connected_s`).
* `show_idle`, `show_paused`, `show_not_rated`, `show_thanks`: nothing; the server derives the
  pad's screens from the window's own state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from api_client.models import PadInfo, RatingStatus
from counter_app.pad.base import ClerkCard, PadRating, RatingRequest

log = logging.getLogger(__name__)


class PadStatusClient(Protocol):
    """The two calls this transport makes (HallClient has both)."""

    def rating_status(self, case_id: int) -> RatingStatus: ...

    def window_pads(self, window_no: int) -> list[PadInfo]: ...


class ServerPadTransport:
    """PadTransport for the pad that talks to the hall server (see the module docstring)."""

    name = "server"
    assurance = "signed"  # the server stores the pad's ratings itself; the desk relays none

    def __init__(self, client: PadStatusClient, window_no: int, *, poll_s: float = 1.0,
                 status_every_s: float = 10.0, connected_s: float = 45.0) -> None:
        self.client = client
        self.window_no = window_no
        self.poll_s = poll_s
        self.status_every_s = status_every_s
        self.connected_s = connected_s
        self.on_stored: Callable[[int, str], None] = lambda _case, _rid: None
        self.on_not_given: Callable[[int], None] = lambda _case: None
        self._on_state: Callable[[str], None] = lambda _s: None
        self._stop = threading.Event()
        self._case: int | None = None
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.state = "offline"

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, on_rating: Callable[[PadRating], None], on_state: Callable[[str], None]) -> None:
        del on_rating  # the pad's ratings go to the server, never through the desk
        self._on_state = on_state
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pad-server-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    # -- screens: the server draws them -------------------------------------------------------
    def show_idle(self, card: ClerkCard) -> None:
        del card

    def show_paused(self, public_zh: str, public_en: str) -> None:
        del public_zh, public_en

    def ask_rating(self, request: RatingRequest, card: ClerkCard) -> None:
        del card
        self._case = request.case_id
        self._wake.set()

    def show_not_rated(self, rate_later_url: str) -> None:
        del rate_later_url

    def show_thanks(self) -> None:
        pass

    def forget(self) -> None:
        """Stop following the open case (PadService cancelled it)."""
        self._case = None

    # -- the watcher ----------------------------------------------------------------------------
    def _run(self) -> None:
        next_status = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_status:
                self._check_pad()
                next_status = now + self.status_every_s
            case = self._case
            if case is not None:
                self._check_case(case)
            self._wake.wait(self.poll_s if self._case is not None else min(self.status_every_s, 2.0))
            self._wake.clear()

    def _check_case(self, case: int) -> None:
        try:
            st = self.client.rating_status(case)
        except Exception as exc:  # offline: ask again on the next round
            log.info("rating status of case %s: %s", case, exc)
            return
        if self._case != case:
            return
        if st.rated:
            self._case = None
            self.on_stored(case, st.rating_id or "")
        elif st.state != "open":
            self._case = None
            self.on_not_given(case)

    def _check_pad(self) -> None:
        try:
            pads = self.client.window_pads(self.window_no)
        except Exception as exc:
            log.info("pad status: %s", exc)
            state = "offline"
        else:
            if not pads:
                state = "unpaired"
            else:
                seen = pads[0].last_seen_at
                fresh = seen is not None and (datetime.now(UTC) - seen).total_seconds() < self.connected_s
                state = "connected" if fresh else "paired"
        if state != self.state:
            self.state = state
            try:
                self._on_state(state)
            except Exception:
                log.exception("pad on_state handler failed")
