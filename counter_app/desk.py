"""The desk state machine of one window: idle, calling, serving, paused, closed.

The server is the authority on every rule (recall limit, no-show timing, who holds a ticket);
the desk mirrors its answers and checks only the obvious preconditions locally so a wrong key
gets a clear message without a round trip. Every action is blocking (run it on a worker) and
guarded: a second action while one is in flight raises DeskBusyError at once, and each user
action sends its own Idempotency-Key, so the client's retries of one press can never act twice.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from counter_app.errors import (
    CounterError,
    DeskBusyError,
    IllegalActionError,
    from_api,
)
from counter_app.events import DeskChanged, EventBus, TicketTakenElsewhere

if TYPE_CHECKING:
    from api_client import HallClient
    from api_client.models import Case, QueueSnapshot, ServiceResult, Ticket, Window

log = logging.getLogger(__name__)

T = TypeVar("T")

IDLE, CALLING, SERVING, PAUSED, CLOSED = "idle", "calling", "serving", "paused", "closed"

_NO_TICKET = ("当前没有正在办理的号", "There is no current ticket")


def _state_of(window: Window | None, ticket: Ticket | None) -> str:
    if ticket is not None and ticket.state == "called":
        return CALLING
    if ticket is not None and ticket.state == "serving":
        return SERVING
    if window is None or window.state == "closed":
        return CLOSED
    if window.state == "paused":
        return PAUSED
    return IDLE


class Desk:
    """One window's desk. `.state`, `.ticket`, `.case` are readable from any thread."""

    def __init__(self, client: HallClient, bus: EventBus, window_no: int,
                 *, snapshot_source: Callable[[], QueueSnapshot | None] | None = None) -> None:
        self._client = client
        self._bus = bus
        self.window_no = window_no
        self._busy = threading.Lock()
        self._window: Window | None = None
        self._ticket: Ticket | None = None
        self._case: Case | None = None
        self.last_result: ServiceResult | None = None
        self._last_action_done = 0.0
        # Where to look up a ticket's number without a round trip (the live queue's snapshot).
        self._snapshot_source = snapshot_source

    # -- readable state ----------------------------------------------------------------------
    @property
    def state(self) -> str:
        return _state_of(self._window, self._ticket)

    @property
    def ticket(self) -> Ticket | None:
        return self._ticket

    @property
    def case(self) -> Case | None:
        return self._case

    @property
    def window(self) -> Window | None:
        return self._window

    @property
    def busy(self) -> bool:
        return self._busy.locked()

    # -- plumbing ----------------------------------------------------------------------------
    def _run(self, name: str, op: Callable[[str], T]) -> T:
        """Run one user action: refuse a concurrent one, one idempotency key, translate errors."""
        if not self._busy.acquire(blocking=False):
            raise DeskBusyError(code="desk_busy")
        try:
            key = str(uuid.uuid4())
            log.info("desk action %s (key %s)", name, key)
            try:
                return op(key)
            except CounterError:
                raise
            except Exception as exc:
                err = from_api(exc)
                if isinstance(err, IllegalActionError) and err.code in (
                    "illegal_transition", "not_your_ticket", "window_busy", "window_paused",
                    "window_closed",
                ):
                    # Our picture of the desk was wrong (another PC, a supervisor, a restart):
                    # take the server's and let the UI redraw.
                    self._resync_quietly()
                raise err from exc
        finally:
            self._last_action_done = time.monotonic()
            self._busy.release()

    def _set(self, *, window: Window | None | bool = False, ticket: Ticket | None | bool = False,
             case: Case | None | bool = False) -> None:
        # `False` means "unchanged"; None clears.
        if window is not False:
            self._window = window  # type: ignore[assignment]
        if ticket is not False:
            self._ticket = ticket  # type: ignore[assignment]
        if case is not False:
            self._case = case  # type: ignore[assignment]
        self._bus.publish(DeskChanged(self.state, self._ticket, self._case))

    def _refresh_window(self) -> None:
        try:
            self._window = self._client.window(self.window_no)
        except Exception as exc:
            log.warning("could not refresh window %s: %s", self.window_no, from_api(exc))

    def _need_ticket(self, *states: str) -> Ticket:
        t = self._ticket
        if t is None:
            raise IllegalActionError(message_zh=_NO_TICKET[0], message_en=_NO_TICKET[1], code="no_ticket")
        if states and t.state not in states:
            raise IllegalActionError(
                message_zh=f"号 {t.number} 当前状态不允许此操作", message_en=f"Ticket {t.number} does not allow this now",
                code="illegal_transition", details={"state": t.state},
            )
        return t

    def _need_idle(self) -> None:
        st = self.state
        if st == IDLE:
            return
        if st in (CALLING, SERVING):
            t = self._ticket
            num = t.number if t else ""
            raise IllegalActionError(message_zh=f"请先办结或处理当前号 {num}",
                                     message_en=f"Finish or dispose of the current ticket {num} first",
                                     code="window_busy")
        if st == PAUSED:
            raise IllegalActionError(message_zh="窗口已暂停，请先恢复服务", message_en="The window is paused; resume first",
                                     code="window_paused")
        raise IllegalActionError(message_zh="窗口已关闭", message_en="The window is closed", code="window_closed")

    # -- rebuilding from the server ----------------------------------------------------------
    def apply_snapshot(self, snap: QueueSnapshot) -> None:
        """Take the server's view of this window: state, current ticket and its case."""
        case: Case | None = None
        cur = snap.current
        if cur is not None and cur.case_id is not None:
            if self._case is not None and self._case.id == cur.case_id:
                case = self._case
            else:
                case = self._client.case(cur.case_id)
        self._set(window=snap.window, ticket=cur, case=case)

    def adopt(self, snap: QueueSnapshot, requested_at: float) -> None:
        """Take a live snapshot if it shows a change made elsewhere (any thread).

        Skipped while an action is in flight, and for a snapshot requested before our last
        action finished: such a snapshot predates what we did and would undo it on screen.
        """
        if not self._busy.acquire(blocking=False):
            return
        try:
            if requested_at <= self._last_action_done:
                return
            cur, mine = snap.current, self._ticket
            changed = (
                self._window is None
                or snap.window.state != self._window.state
                or snap.window.pause_reason_code != self._window.pause_reason_code
                or (cur.id if cur else None) != (mine.id if mine else None)
                or (cur is not None and mine is not None
                    and (cur.state, cur.recalls) != (mine.state, mine.recalls))
            )
            if changed:
                log.info("desk adopts the server's view: window %s, ticket %s",
                         snap.window.state, cur.number if cur else None)
                self.apply_snapshot(snap)
        except Exception as exc:
            log.warning("adopting a snapshot failed: %s", from_api(exc))
        finally:
            self._busy.release()

    def resync(self) -> None:
        """Rebuild the desk from the server's queue snapshot (after sign-in or a restart)."""
        try:
            snap = self._client.queue(self.window_no)
            self.apply_snapshot(snap)
        except Exception as exc:
            raise from_api(exc) from exc

    def _resync_quietly(self) -> None:
        try:
            self.resync()
        except CounterError as err:
            log.warning("resync failed: %s", err)

    def reset(self) -> None:
        """Forget everything (signed out)."""
        self._set(window=None, ticket=None, case=None)

    # -- queue actions -----------------------------------------------------------------------
    def call_next(self) -> Ticket | None:
        """Call the next eligible ticket; None when nobody is waiting."""
        def op(key: str) -> Ticket | None:
            self._need_idle()
            t = self._client.call_next(self.window_no, idempotency_key=key)
            self._set(ticket=t, case=None)
            return t
        return self._run("call_next", op)

    def call_ticket(self, ticket_id: int) -> Ticket | None:
        """Call a named ticket (指呼). If another window took it first, publish
        TicketTakenElsewhere and call the next one instead (returned; None if nobody waits)."""
        def op(key: str) -> Ticket | None:
            self._need_idle()
            try:
                t = self._client.call_ticket(ticket_id, self.window_no, idempotency_key=key)
            except Exception as exc:
                err = from_api(exc)
                if err.code != "ticket_taken":
                    raise err from exc
                number = self._number_of(ticket_id)
                log.info("ticket %s taken by another window; calling the next", number)
                self._bus.publish(TicketTakenElsewhere(number))
                nxt = self._client.call_next(self.window_no, idempotency_key=str(uuid.uuid4()))
                self._set(ticket=nxt, case=None)
                return nxt
            self._set(ticket=t, case=None)
            return t
        return self._run("call_ticket", op)

    def _number_of(self, ticket_id: int) -> str:
        snap = self._snapshot_source() if self._snapshot_source else None
        if snap is not None:
            for t in (*snap.waiting, *snap.suspended):
                if t.id == ticket_id:
                    return t.number
        try:
            return self._client.ticket(ticket_id).number
        except Exception:
            return str(ticket_id)

    def recall(self) -> Ticket:
        def op(key: str) -> Ticket:
            t = self._need_ticket("called")
            t2 = self._client.recall(t.id, idempotency_key=key)
            self._set(ticket=t2)
            return t2
        return self._run("recall", op)

    def no_show(self) -> Ticket:
        def op(key: str) -> Ticket:
            t = self._need_ticket("called")
            t2 = self._client.no_show(t.id, idempotency_key=key)
            self._set(ticket=None, case=None)
            return t2
        return self._run("no_show", op)

    def start(self) -> Case:
        """The citizen arrived: open the case."""
        def op(key: str) -> Case:
            t = self._need_ticket("called")
            res = self._client.start_service(t.id, idempotency_key=key)
            self._set(ticket=res.ticket, case=res.case)
            return res.case
        return self._run("start", op)

    def transfer(self, to_window_no: int | None = None, to_category: str | None = None,
                 matter_code: str | None = None, priority: str | None = None,
                 reason: str = "") -> Ticket:
        def op(key: str) -> Ticket:
            if to_window_no is None and to_category is None and matter_code is None:
                raise IllegalActionError(message_zh="请选择转移到的窗口或事项",
                                         message_en="Choose a window or matter to transfer to",
                                         code="transfer_target_missing")
            t = self._need_ticket("called", "serving")
            t2 = self._client.transfer(t.id, to_window_no=to_window_no, to_category=to_category,
                                       matter_code=matter_code, priority=priority,
                                       idempotency_key=key, reason=reason)
            self._set(ticket=None, case=None)
            return t2
        return self._run("transfer", op)

    def suspend(self, note: str = "") -> Ticket:
        def op(key: str) -> Ticket:
            t = self._need_ticket("called", "serving")
            t2 = self._client.suspend(t.id, note, idempotency_key=key)
            self._set(ticket=None, case=None)
            return t2
        return self._run("suspend", op)

    def resume(self, ticket_id: int) -> Ticket:
        """Take back a suspended ticket at this window (the case continues)."""
        def op(key: str) -> Ticket:
            self._need_idle()
            t = self._client.resume(ticket_id, self.window_no, idempotency_key=key)
            case = self._client.case(t.case_id) if t.case_id is not None else None
            self._set(ticket=t, case=case)
            return t
        return self._run("resume", op)

    def return_to_queue(self) -> Ticket:
        def op(key: str) -> Ticket:
            t = self._need_ticket("called", "serving")
            t2 = self._client.return_to_queue(t.id, idempotency_key=key)
            self._set(ticket=None, case=None)
            return t2
        return self._run("return_to_queue", op)

    def complete(self, outcome: str, note: str = "", reason: str = "") -> ServiceResult:
        def op(key: str) -> ServiceResult:
            if outcome == "rejected" and not reason.strip():
                raise IllegalActionError(message_zh="不予受理需要填写理由", message_en="A rejection needs a reason",
                                         code="reason_required")
            t = self._need_ticket("called", "serving")
            res = self._client.complete(t.id, outcome, note, reason, idempotency_key=key)
            self.last_result = res
            self._set(ticket=None, case=None)
            return res
        return self._run("complete", op)

    # -- window actions ----------------------------------------------------------------------
    def pause(self, reason_code: str) -> Window:
        def op(key: str) -> Window:
            if not reason_code:
                raise IllegalActionError(message_zh="暂停需要选择原因", message_en="Pausing needs a reason",
                                         code="reason_required")
            if self.state in (CALLING, SERVING):
                self._need_idle()
            w = self._client.pause_window(self.window_no, reason_code, idempotency_key=key)
            self._set(window=w)
            return w
        return self._run("pause", op)

    def resume_window(self) -> Window:
        def op(key: str) -> Window:
            w = self._client.resume_window(self.window_no, idempotency_key=key)
            self._set(window=w)
            return w
        return self._run("resume_window", op)

    def close_window(self) -> Window:
        def op(key: str) -> Window:
            self._need_no_ticket()
            w = self._client.close_window(self.window_no, idempotency_key=key)
            self._set(window=w)
            return w
        return self._run("close_window", op)

    def _need_no_ticket(self) -> None:
        if self._ticket is not None:
            self._need_idle()

    # -- case actions ------------------------------------------------------------------------
    def _need_case(self) -> Case:
        c = self._case
        if c is None:
            raise IllegalActionError(message_zh="当前没有办件", message_en="There is no open case", code="no_case")
        return c

    def set_matter(self, code: str) -> Case:
        def op(key: str) -> Case:
            c = self._client.set_case_matter(self._need_case().id, code, idempotency_key=key)
            self._set(case=c)
            return c
        return self._run("set_matter", op)

    def set_material(self, item_id: str, status: str, note: str = "") -> Case:
        def op(key: str) -> Case:
            c = self._client.set_material(self._need_case().id, item_id, status, note,
                                          idempotency_key=key)
            self._set(case=c)
            return c
        return self._run("set_material", op)

    def set_notes(self, notes: str) -> Case:
        def op(key: str) -> Case:
            c = self._client.set_case_notes(self._need_case().id, notes, idempotency_key=key)
            self._set(case=c)
            return c
        return self._run("set_notes", op)

    def describe(self) -> dict[str, Any]:
        t = self._ticket
        return {"state": self.state, "ticket": t.number if t else None,
                "case": self._case.case_no if self._case else None}
