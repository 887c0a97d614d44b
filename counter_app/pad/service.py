"""PadService: asks the citizen-facing pad for a rating and stores what comes back, once.

On `request_rating(case)` it gets the case's challenge from the server, sends a RatingRequest
to the transport and starts the timeout (no answer: the "not rated" screen with the rate-later
QR). A PadRating from the transport is checked here before it is stored (defence in depth; the
server checks again): it must answer the open request (case, window, challenge), carry the
reasons a bad rating needs, and, for a signed transport, verify with the paired pad's Ed25519
key and carry a counter above the last one seen. It is then made durable through
`outbox.enqueue_rating` (the rating id is the Idempotency-Key, so delivery is exactly once) and
only then does the transport answer the pad, which shows "thanks".

Staff must not see or steer the rating: the desk's own rating controls are locked while a
rating is open (`rating_open`), and nothing here exposes the level before it is stored.
Publishes RatingRequested, RatingStored, RatingNotGiven and PadStateChanged on the core's bus,
and follows the window's pause/resume (DeskChanged) on the pad.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from counter_app.errors import CounterError, NotSavedError, from_api
from counter_app.events import (
    DeskChanged,
    PadStateChanged,
    RatingNotGiven,
    RatingRequested,
    RatingStored,
    SignedIn,
    SignedOut,
)
from counter_app.pad.base import (
    LEVELS,
    LEVELS_NEEDING_REASON,
    ClerkCard,
    PadRating,
    PadTransport,
    RatingRequest,
)
from counter_app.pad.ports import PadCore
from counter_app.pad.server_pad import ServerPadTransport
from counter_app.pad.signing import canonical_message, epoch_ms, verify

if TYPE_CHECKING:
    from api_client.models import Case, PadInfo

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 60.0
THANKS_S = 5.0
NOT_RATED_S = 30.0


@runtime_checkable
class DaysShown(Protocol):
    """A transport whose "not rated" screen says how many working days are left to rate."""

    rate_later_days: int | None


@runtime_checkable
class ReportsActivity(Protocol):
    """A transport whose citizen takes several steps (a level, then reasons): each touch is
    reported, and the wait for the rating starts again, so a complaint being chosen is never
    cut off by the timeout (issue 16, item 8)."""

    on_activity: Callable[[], None] | None


class RatingRefused(CounterError):
    """The desk will not store this pad message (it answers the pad with the reason)."""

    default_zh = "评价未被接受"
    default_en = "The rating was not accepted"


def _refuse(code: str, zh: str, en: str) -> RatingRefused:
    return RatingRefused(message_zh=zh, message_en=en, code=code)


@dataclass
class _Open:
    request: RatingRequest
    card: ClerkCard
    timer: threading.Timer | None


class PadService:
    """Drives one pad transport for the desk's window (see the module docstring)."""

    def __init__(self, core: PadCore, transport: PadTransport, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 thanks_s: float = THANKS_S, not_rated_s: float = NOT_RATED_S,
                 rate_later_base: str | None = None) -> None:
        self.core = core
        self.transport = transport
        self.timeout_s = timeout_s
        self.thanks_s = thanks_s
        self.not_rated_s = not_rated_s
        base = rate_later_base or f"{core.settings.server_url.rstrip('/')}/rate-later"
        self.rate_later_base = base
        self.window_no: int = int(core.settings.window_no)
        # Guards the state below; never held across I/O (HTTP, the outbox's COMMIT, the
        # transport), so a reader such as the Tk thread never waits on the network or the disk.
        self._lock = threading.RLock()
        # Signalled when a rating being stored (``_storing``) finishes either way.
        self._cond = threading.Condition(self._lock)
        self._storing: str | None = None  # id of the pad rating being made durable now
        self._storing_thread: int | None = None  # ... and the thread doing it
        self._open: _Open | None = None
        self._pad_key: tuple[str, str] | None = None  # (pad_id, public key)
        self._last_counter: dict[str, int] = {}
        self._stored: OrderedDict[str, int] = OrderedDict()  # rating id -> case id (recent)
        self._photo: dict[str, bytes | None] = {}
        self._reasons: tuple[str, tuple[tuple[str, str, str], ...]] | None = None
        self._back_timer: threading.Timer | None = None
        self._unsubs: list[Callable[[], None]] = []
        self.state = "offline"
        self.started = False
        # The tablet pad talks to the hall server itself: the desk only learns the outcome.
        self._server_pad = isinstance(transport, ServerPadTransport)
        if isinstance(transport, ServerPadTransport):
            transport.on_stored = self._stored_by_server
            transport.on_not_given = self._not_given_by_server
        if isinstance(transport, ReportsActivity):
            transport.on_activity = self.activity

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self.started:
            return
        self.transport.start(self._on_rating, self._on_state)
        self.started = True
        bus = self.core.bus
        self._unsubs = [bus.subscribe(DeskChanged, self._on_desk),
                        bus.subscribe(SignedIn, lambda _e: self.show_idle()),
                        bus.subscribe(SignedOut, lambda _e: self._closed())]
        if self.core.session.staff is not None:
            try:
                self.refresh_pad_key()
                self.show_idle()
            except Exception as exc:  # the pad shows its card once the link is back
                log.warning("pad start: %s", exc)

    def stop(self) -> None:
        for u in self._unsubs:
            u()
        self._unsubs = []
        with self._lock:
            self._settled()
            self._cancel_timers()
            self._open = None
        if self.started:
            self.transport.stop()
            self.started = False

    @property
    def rating_open(self) -> bool:
        """Lock-free (one attribute read): the Tk thread reads it and must never wait."""
        return self._open is not None

    def _settled(self) -> None:
        """Wait (holding ``_lock``; released while waiting) until no rating is being stored:
        whatever closes or replaces the open request must see that rating's outcome first."""
        # The storing thread itself (a bus subscriber called back during the COMMIT) must not
        # wait for itself.
        while self._storing is not None and self._storing_thread != threading.get_ident():
            self._cond.wait()

    # -- what the pad shows ---------------------------------------------------------------
    def card(self) -> ClerkCard:
        staff = self.core.session.staff
        window = self.core.session.window
        staff_no = staff.staff_no if staff else ""
        if staff_no and staff_no not in self._photo:
            try:
                self._photo[staff_no] = self.core.client.staff_photo(staff_no)
            except Exception:
                log.info("no photo for staff %s", staff_no)
                self._photo[staff_no] = None
        return ClerkCard(
            staff_no=staff_no,
            name_zh=staff.name_zh if staff else "",
            name_en=staff.name_en if staff else "",
            window_no=self.window_no,
            window_name_zh=window.name_zh if window else f"{self.window_no} 号窗口",
            window_name_en=window.name_en if window else f"Window {self.window_no}",
            photo_png=self._photo.get(staff_no),
        )

    def show_idle(self) -> None:
        with self._lock:
            if self._open is not None:
                return
        self.transport.show_idle(self.card())

    def _closed(self) -> None:
        with self._lock:
            self._settled()
            self._cancel_timers()
            self._open = None
        self.transport.show_paused("本窗口暂停服务", "This window is not serving now")

    def _on_desk(self, ev: DeskChanged) -> None:
        if ev.state == "paused":
            zh, en = "暂停服务", "Service paused"
            window = self.core.desk.window
            code = window.pause_reason_code if window is not None else None
            hall = self.core.hall
            for r in hall.pause_reasons if hall is not None else ():
                if r.code == code:
                    zh, en = r.public_zh or zh, r.public_en or en
            with self._lock:
                open_now = self._open is not None
            if not open_now:
                self.transport.show_paused(zh, en)
        elif ev.state in ("idle", "calling", "serving"):
            self.show_idle()

    def _on_state(self, state: str) -> None:
        self.state = state
        if state == "paired":
            try:
                self.refresh_pad_key()
            except Exception:
                log.exception("reading the paired pad failed")
        self.core.bus.publish(PadStateChanged(state))

    def pad_status(self) -> PadInfo | None:
        """The window's paired pad as the hall server knows it (worker thread)."""
        pads = self.core.client.window_pads(self.window_no)
        return pads[0] if pads else None

    def refresh_pad_key(self) -> tuple[str, str] | None:
        """The window's paired pad (id, public key) as the server knows it."""
        pads = self.core.client.window_pads(self.window_no)
        with self._lock:
            if pads:
                p = pads[0]
                self._pad_key = (p.pad_id, p.public_key)
                self._last_counter[p.pad_id] = max(self._last_counter.get(p.pad_id, 0), p.last_counter)
            else:
                self._pad_key = None
            return self._pad_key

    # -- asking ---------------------------------------------------------------------------
    def _reason_list(self) -> tuple[str, tuple[tuple[str, str, str], ...]]:
        if self._reasons is None:
            rr = self.core.client.rating_reasons()
            self._reasons = (rr.version, tuple((r.code, r.text_zh, r.text_en) for r in rr.reasons))
        return self._reasons

    def _rate_later_url(self, case_id: int) -> str:
        """The server's link for a desk-local screen (second screen, button box), asked only
        once the on-the-spot rating ran out: the server records the issuance and closes the
        rating. Where a pad is paired the server refuses (the pad shows its own QR): "" then."""
        try:
            return str(self.core.client.rate_later_link(case_id))
        except Exception as exc:
            log.info("no rate-later link for case %s: %s", case_id, exc)
            return ""

    def request_rating(self, case: Case) -> RatingRequest:
        """Ask the pad to rate `case` (blocking: call from a worker thread)."""
        with self._lock:
            if self._open is not None and self._open.request.case_id != case.id:
                raise _refuse("rating_open", "另一项评价尚未结束", "Another rating is still open")
        try:
            ch = self.core.client.rating_challenge(case.id)
            version, reasons = self._reason_list()
            later_url = ""  # asked for at the timeout only (_timed_out)
        except Exception as exc:
            raise (exc if isinstance(exc, CounterError) else from_api(exc)) from exc
        zh = en = ""
        catalog = self.core.catalog
        if case.matter_code and catalog is not None:
            m = catalog.get(case.matter_code)
            if m is not None:
                zh, en = m.name_zh, m.name_en
        req = RatingRequest(
            case_id=case.id, case_no=case.case_no, window_no=self.window_no,
            matter_name_zh=zh, matter_name_en=en, challenge=ch.challenge,
            reasons_version=version, reasons=reasons, timeout_s=self.timeout_s,
            rate_later_url=later_url,
        )
        card = self.card()
        with self._lock:
            self._settled()
            self._cancel_timers()
            timer: threading.Timer | None = None
            if not self._server_pad:  # the server decides when the pad's rating is over
                timer = threading.Timer(self.timeout_s, self._timed_out, args=(case.id,))
                timer.daemon = True
            self._open = _Open(req, card, timer)
            if timer is not None:
                timer.start()
        self.core.bus.publish(RatingRequested(case.id))
        self.transport.ask_rating(req, card)
        return req

    def activity(self) -> None:
        """The citizen touched the pad while rating: the timeout starts again from now. Any
        thread (the Tk thread calls it: the lock is never held across I/O)."""
        with self._lock:
            op = self._open
            if op is None or op.timer is None:
                return
            op.timer.cancel()
            timer = threading.Timer(self.timeout_s, self._timed_out, args=(op.request.case_id,))
            timer.daemon = True
            op.timer = timer
            timer.start()

    def cancel(self) -> None:
        """Withdraw the open request (e.g. the citizen left): back to the idle card."""
        if isinstance(self.transport, ServerPadTransport):
            self.transport.forget()
        with self._lock:
            self._settled()
            self._cancel_timers()
            self._open = None
        self.show_idle()

    def _cancel_timers(self) -> None:
        for t in (self._open.timer if self._open else None, self._back_timer):
            if t is not None:
                t.cancel()
        self._back_timer = None

    def _later(self, delay: float) -> None:
        t = threading.Timer(delay, self.show_idle)
        t.daemon = True
        self._back_timer = t
        t.start()

    def _timed_out(self, case_id: int) -> None:
        with self._lock:
            self._settled()  # a rating arriving right now wins over the timeout
            if self._open is None or self._open.request.case_id != case_id:
                return
            self._open = None
            self._later(self.not_rated_s)
        url = self._rate_later_url(case_id)
        hall = self.core.hall
        if hall is not None and isinstance(self.transport, DaysShown):
            self.transport.rate_later_days = hall.rules.rate_later_days
        self.transport.show_not_rated(url)
        self.core.bus.publish(RatingNotGiven(case_id))

    # -- the server pad's outcome (its watcher thread) ----------------------------------------
    def _stored_by_server(self, case_id: int, rating_id: str) -> None:
        with self._lock:
            if self._open is None or self._open.request.case_id != case_id:
                return
            self._cancel_timers()
            self._open = None
        self.core.bus.publish(RatingStored(rating_id, case_id))

    def _not_given_by_server(self, case_id: int) -> None:
        with self._lock:
            if self._open is None or self._open.request.case_id != case_id:
                return
            self._cancel_timers()
            self._open = None
        self.core.bus.publish(RatingNotGiven(case_id))

    # -- receiving ------------------------------------------------------------------------
    def _check(self, r: PadRating, req: RatingRequest) -> None:
        if r.case_id != req.case_id or r.window_no != self.window_no:
            raise _refuse("wrong_case", "评价与当前办件不符", "The rating is not for the open case")
        if r.challenge != req.challenge:
            raise _refuse("stale_challenge", "评价凭据不符", "The challenge does not match")
        if r.level not in LEVELS:
            raise _refuse("bad_level", "评价等级无效", "Unknown level")
        known = {c for c, _zh, _en in req.reasons}
        if any(x not in known for x in r.reasons):
            raise _refuse("unknown_rating_reason", "未知的评价原因", "Unknown rating reason")
        if r.level in LEVELS_NEEDING_REASON and not r.reasons and not r.comment.strip():
            raise _refuse("reason_required", "差评须选择或填写原因", "A bad rating needs a reason or a comment")
        if self.transport.assurance != "signed":
            return
        key = self._pad_key
        if key is None or key[0] != r.pad_id:
            key = self.refresh_pad_key()
        if key is None or key[0] != r.pad_id or r.signature is None or r.pad_counter is None:
            raise _refuse("pad_not_paired", "评价器未与本窗口配对", "The pad is not paired with this window")
        from api_client.models import parse_datetime

        try:
            pad_time = epoch_ms(parse_datetime(r.rated_at))
            msg = canonical_message(rating_id=r.rating_id, pad_id=r.pad_id, window_no=r.window_no,
                                    case_id=r.case_id, challenge=r.challenge, level=r.level,
                                    reasons=r.reasons, comment=r.comment, pad_counter=r.pad_counter,
                                    pad_time=pad_time)
        except Exception:
            raise _refuse("bad_signature", "评价签名无效", "The rating's signature is not valid") from None
        if not verify(key[1], msg, r.signature):
            raise _refuse("bad_signature", "评价签名无效", "The rating's signature is not valid")
        if r.pad_counter <= self._last_counter.get(r.pad_id, 0):
            raise _refuse("counter_replayed", "评价器计数未增长", "The pad counter did not grow")

    def _on_rating(self, r: PadRating) -> None:
        """Called by the transport (any thread); returns only once the rating is durable.

        Exactly once without holding ``_lock`` across I/O: under the lock the rating claims the
        open request (``_storing``); the checks (which may ask the server for the pad's key) and
        the outbox COMMIT run unlocked; the outcome is published under the lock again. A second
        message meanwhile (the pad re-sending after a lost answer, or another rating) waits for
        the first's outcome and is then judged against it, as if they had come one after the
        other.
        """
        from api_client.models import RatingSubmission, parse_datetime

        with self._lock:
            while True:
                if r.rating_id in self._stored and self._stored[r.rating_id] == r.case_id:
                    return  # the pad re-sent after a lost answer: already stored, answer OK again
                if self._storing is None:
                    break
                self._cond.wait()
            if self._open is None:
                raise _refuse("no_open_rating", "当前没有待评价的办件", "No rating is open now")
            opened = self._open
            self._storing, self._storing_thread = r.rating_id, threading.get_ident()
        try:
            req = opened.request
            self._check(r, req)
            outbox = self.core.outbox
            if outbox is None:
                raise NotSavedError(message_zh="评价无法保存", message_en="The rating cannot be saved",
                                    code="disk_error")
            sub = RatingSubmission(
                id=r.rating_id, case_id=r.case_id, window_no=r.window_no, level=r.level,
                rated_at=parse_datetime(r.rated_at), source=r.source, reasons=r.reasons,
                reasons_version=req.reasons_version, comment=r.comment, pad_id=r.pad_id,
                pad_counter=r.pad_counter, challenge=r.challenge, signature=r.signature,
            )
            outbox.enqueue_rating(sub)  # raises NotSavedError: the pad is told, nothing is lost
        except BaseException:
            with self._lock:
                self._storing = self._storing_thread = None
                self._cond.notify_all()
            raise
        with self._lock:
            if r.pad_id is not None and r.pad_counter is not None:
                self._last_counter[r.pad_id] = max(self._last_counter.get(r.pad_id, 0),
                                                   r.pad_counter)
            self._stored[r.rating_id] = r.case_id
            while len(self._stored) > 500:
                self._stored.popitem(last=False)
            # Everything that replaces or closes the request waits for _storing, so it is
            # still the one this rating answered.
            self._cancel_timers()
            self._open = None
            self._later(self.thanks_s)
            self._storing = self._storing_thread = None
            self._cond.notify_all()
        self.core.bus.publish(RatingStored(r.rating_id, r.case_id))
        self.transport.show_thanks()
