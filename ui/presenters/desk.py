"""The desk presenter: what the clerk can do now, what runs where, and what the screen says.

Plain Python: it talks to a view protocol, a runner with ``run(op, on_success, on_error)`` and the
core (``counter_app.core.CounterCore``; unit tests give an object with the same attributes), and
takes the core's typed events. Every call into the core goes through the runner; callbacks
arrive on the UI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, TypeVar

from api_client.errors import ApiError
from api_client.models import (
    Case,
    Category,
    Matter,
    QueueSnapshot,
    Rules,
    ServiceResult,
    Stats,
    Ticket,
)
from counter_app.core import CounterCore
from counter_app.documents.notice import MissingItem, missing_items
from counter_app.errors import CounterError
from counter_app.events import (
    CatalogSynced,
    ConnectionChanged,
    DeskChanged,
    ErrorRaised,
    Locked,
    OutboxChanged,
    QueueChanged,
    StatsUpdated,
    TicketArrivedInEmptyQueue,
    TicketTakenElsewhere,
    Unlocked,
)
from ui.i18n import N_, _, language
from ui.presenters import format as fmt
from ui.presenters.pad import GOOD_STATES

if TYPE_CHECKING:
    from ui.presenters.applicant import ApplicantPresenter
    from ui.presenters.pad import PadPresenter

log = logging.getLogger(__name__)

# Action name -> hotkey shown on its button and bound on the toplevel.
ACTIONS: dict[str, str] = {
    "call_next": "F1",
    "recall": "F2",
    "no_show": "F3",
    "transfer": "F4",
    "suspend": "F5",
    "pause": "F6",
    "start": "F7",
    "change_matter": "F8",
    "complete": "F9",
    "evaluate": "F10",
    "applicant": "F11",  # read the ID card, or enter the applicant by hand (issue 17)
    "papers": "F12",  # acceptance receipt, result mailing, reprints of past cases (issue 17)
    "lock": "Ctrl+L",
}

# Which actions the desk state allows; "evaluate" is decided by the pad (see enabled()).
ALLOWED: dict[str, frozenset[str]] = {
    "idle": frozenset({"call_next", "pause", "papers", "lock"}),
    "calling": frozenset({"recall", "no_show", "transfer", "start", "change_matter", "complete",
                          "papers", "lock"}),
    "serving": frozenset({"transfer", "suspend", "change_matter", "complete", "applicant",
                          "papers", "lock"}),
    "paused": frozenset({"pause", "lock"}),
    "closed": frozenset({"lock"}),
}
# What needs the server: disabled while offline (the banner says so).
NEEDS_SERVER = frozenset(ACTIONS) - {"lock", "evaluate"}


T = TypeVar("T")


class Runner(Protocol):
    def run(self, op: Callable[[], T], on_success: Callable[[T], None] | None = ...,
            on_error: Callable[[BaseException], None] | None = ..., *, kind: str = ...) -> int: ...


@dataclass(frozen=True)
class TransferChoice:
    """Where the transfer dialog sends the citizen: a window or a category, maybe a priority."""

    to_window_no: int | None = None
    to_category: str | None = None
    priority: str | None = None  # None: keep the ticket's priority
    reason: str = ""  # why (kept in the case's notes for the next window)


# Outcomes that say "the file is complete": guarded when required materials are not in hand.
GUARDED_OUTCOMES = frozenset({"completed", "accepted"})


@dataclass(frozen=True)
class CompleteChoice:
    """What the completion dialog returns. ``override`` is the clerk's reason for completing or
    accepting although required materials are missing or unchecked (empty: no override)."""

    outcome: str
    note: str = ""
    reason: str = ""
    override: str = ""


class DeskView(Protocol):
    def show_ticket(self, card: fmt.TicketCard | None, desk_state: str) -> None: ...
    def show_actions(self, enabled: dict[str, bool], busy: str | None, pause_label: str) -> None: ...
    def show_queue(self, rows: list[fmt.QueueRow], summary: str) -> None: ...
    def show_checklist(self, title: str, rows: list[fmt.ChecklistRow]) -> None: ...
    def focus_checklist(self) -> None: ...
    def show_figures(self, figures: fmt.Figures) -> None: ...
    def show_status(self, connection: str, outbox: str, pad: str, scanner: str, online: bool) -> None: ...
    def show_banner(self, text: str | None) -> None: ...
    def show_notice(self, text: str, kind: str = "info") -> None: ...
    def alert_new_ticket(self, number: str, flash: bool, sound: bool) -> None: ...
    def ask_transfer(self, windows: list[tuple[int, str]], categories: list[tuple[str, str]],
                     on_done: Callable[[TransferChoice], None]) -> None: ...
    def ask_pause(self, reasons: list[tuple[str, str]], on_done: Callable[[str], None]) -> None: ...
    def ask_complete(self, outcomes: list[tuple[str, str]], on_done: Callable[[CompleteChoice], None],
                     missing: list[str]) -> None: ...
    def ask_matter(self, on_done: Callable[[str], None]) -> None: ...
    def ask_suspend(self, on_done: Callable[[str], None]) -> None: ...
    def show_paused(self, title: str, detail: str) -> None: ...
    def ask_unlock(self) -> None: ...
    def show_locked(self, locked: bool, message: str = "") -> None: ...


def error_text(exc: BaseException) -> str:
    """A user-fit message for any error: CounterError (and ApiError) carry zh/en, the rest is a bug."""
    if isinstance(exc, CounterError | ApiError):
        return exc.message(language())
    return _("Unexpected error: {error}").format(error=type(exc).__name__)


@dataclass
class DeskState:
    state: str = "idle"
    ticket: Ticket | None = None
    case: Case | None = None
    snapshot: QueueSnapshot | None = None
    connection: str = "online"
    connection_detail: str = ""
    outbox_depth: int = 0
    outbox_dead: int = 0
    stats: Stats | None = None
    busy: str | None = None
    locked: bool = False
    matter_cache: dict[str, Matter | None] = field(default_factory=dict)


class DeskPresenter:
    """Drives a DeskView from the core. UI thread only (runner callbacks arrive there)."""

    def __init__(self, view: DeskView, runner: Runner, core: CounterCore, *, alert_flash: bool = True,
                 alert_sound: bool = True, clock: Callable[[], datetime] | None = None) -> None:
        self.view = view
        self.runner = runner
        self.core = core
        self.alert_flash = alert_flash
        self.alert_sound = alert_sound
        self.clock = clock or (lambda: datetime.now(UTC))
        self.s = DeskState()
        self._search_seq = 0
        self._matter_pending: set[str] = set()
        self._catalog_generation = 0
        # Number of a ticket another window took during our named call (see on_ticket_taken).
        self._taken: str | None = None
        self._notice: tuple[Callable[[], str], str] | None = None
        # The last confirmation of a desk action (and its number in the sequence of messages),
        # and from which number on an action counts as later than the rating request, for
        # which ticket: see pad_notice.
        self._seq = 0
        self._action_notice: tuple[Callable[[], str], str] | None = None
        self._action_notice_seq = 0
        self._rating_seq = 1
        self._rating_number = ""
        # When this desk saw the window paused (the server does not send it): the paused panel's clock.
        self._paused_since: datetime | None = None
        # The evaluator pad (ui.presenters.pad.PadPresenter), when one is configured.
        self.pad: PadPresenter | None = None
        # The applicant on the case (ui.presenters.applicant, issue 17): F11 and the case line.
        self.applicant: ApplicantPresenter | None = None

    def notice(self, text: Callable[[], str], kind: str = "info") -> None:
        """Show a message; ``text`` is re-evaluated after a language switch."""
        self._seq += 1
        self._action_notice, self._action_notice_seq = (text, kind), self._seq
        self._show(text, kind)

    def _show(self, text: Callable[[], str], kind: str) -> None:
        self._notice = (text, kind)
        self.view.show_notice(text(), kind)

    def pad_notice(self, text: Callable[[], str], kind: str = "info") -> None:
        """A message from the pad (rating asked, received, not given). It names the ticket it is
        about, and if the clerk has confirmed an action since the rating was asked, it is added
        after that confirmation instead of replacing it (issue 16 item 4)."""
        number = self._rating_number

        def said() -> str:
            return _("{number}: {text}").format(number=number, text=text()) if number else text()

        base = self._action_notice
        if base is not None and self._action_notice_seq >= self._rating_seq:
            base_text, base_kind = base
            self._show(lambda: base_text() + "  ·  " + said(),
                       "error" if "error" in (kind, base_kind) else base_kind)
        else:
            self._show(said, kind)

    def pad_connected(self) -> bool:
        """A pad is configured and reachable now (paired / connected)."""
        return self.pad is not None and self.pad.state in GOOD_STATES

    # -- rendering ------------------------------------------------------------------------------
    def render(self) -> None:
        """Redraw everything from the last known state (also after a language switch)."""
        self._render_ticket()
        self._render_actions()
        self._render_queue()
        self._render_checklist()
        self.view.show_figures(fmt.figures(self.s.stats))
        self._render_status()

    def relabel(self) -> None:
        """After a language switch: everything, and the last message in the new language."""
        self.render()
        if self._notice is not None:
            text, kind = self._notice
            self.view.show_notice(text(), kind)

    def enabled(self) -> dict[str, bool]:
        allowed = ALLOWED.get(self.s.state, frozenset())
        # "reconnecting" is the event stream only; the server may still answer, so actions stay
        # on (a failure then says so inline). "offline" is a failed request: actions wait.
        online = self.s.connection != "offline"
        out = {}
        for action in ACTIONS:
            ok = action in allowed and self.s.busy is None and not self.s.locked
            if action in NEEDS_SERVER and not online:
                ok = False
            out[action] = ok
        # Evaluate: a pad is configured, there is a case to rate, and no rating is open (the
        # desk's own rating controls stay locked while the citizen rates).
        # With the pad offline F10 is off (pressing it says why and what happens instead).
        out["evaluate"] = bool(self.pad is not None and self.pad_connected()
                               and self.pad.can_evaluate(self.rating_case())
                               and self.s.busy is None and not self.s.locked)
        return out

    def rating_case(self) -> Case | None:
        """The case F10 would rate: the one being served, or the one just completed."""
        if self.s.state in ("calling", "serving") and self.s.case is not None:
            return self.s.case
        if self.s.state == "idle" and self.s.ticket is None:
            last = self.core.desk.last_result
            return last.case if last is not None else None
        return None

    def _rules(self) -> Rules | None:
        hall = self.core.hall
        return hall.rules if hall is not None else None

    def _matter(self, code: str | None) -> Matter | None:
        """The cached matter for ``code``; if not cached yet, look it up on a worker and redraw.

        The lookup goes through the runner although ``Catalog.get`` is an in-memory dict read
        today: the presenter must not depend on that (a catalog opening its SQLite lazily, or
        a remote one, would otherwise block the Tk thread while the checklist is drawn).
        """
        if not code:
            return None
        if code in self.s.matter_cache:
            return self.s.matter_cache[code]
        self._look_up_matter(code)
        return self.s.matter_cache.get(code)

    def current_matter(self) -> Matter | None:
        """The current case's matter if it is already known (no lookup started). Tk thread."""
        code = self._matter_code()
        return self.s.matter_cache.get(code) if code else None

    def _look_up_matter(self, code: str) -> None:
        catalog = self.core.catalog
        if catalog is None or code in self._matter_pending:
            return
        self._matter_pending.add(code)
        generation = self._catalog_generation

        def ok(matter: Matter | None) -> None:
            self._matter_pending.discard(code)
            if generation != self._catalog_generation:
                return  # the catalog was synced meanwhile; a new lookup is on its way
            self.s.matter_cache[code] = matter
            if code == self._matter_code():
                self._render_ticket()
                self._render_checklist()

        def fail(exc: BaseException) -> None:
            self._matter_pending.discard(code)
            log.warning("matter %s could not be read from the catalog: %s", code, exc)

        self.runner.run(lambda: catalog.get(code), ok, fail)

    def _category(self, code: str | None) -> Category | None:
        """The hall's entry for a ticket category (loaded at sign-in, in memory)."""
        hall = self.core.hall
        for c in hall.categories if hall is not None else ():
            if c.code == code:
                return c
        return None

    def _matter_code(self) -> str | None:
        case, ticket = self.s.case, self.s.ticket
        return ((case.matter_code if case is not None else None)
                or (ticket.matter_code if ticket is not None else None))

    def _render_ticket(self) -> None:
        if self.s.state == "paused":
            self._paused_since = self._paused_since or self.clock()
        else:
            self._paused_since = None
        if self.s.ticket is None:
            self.view.show_ticket(None, self.s.state)
            if self.applicant is not None:
                self.applicant.render()
            if self.s.state == "paused":
                self._render_paused()
            return
        rules = self._rules()
        card = fmt.ticket_card(self.s.ticket, self._matter(self._matter_code()), self.clock(),
                               rules.recall_limit if rules is not None else None,
                               self._category(self.s.ticket.category))
        self.view.show_ticket(card, self.s.state)
        if self.applicant is not None:
            self.applicant.render()

    def _render_paused(self) -> None:
        """While paused: why, since when, and how to resume (issue 16 item 5)."""
        window = self.core.desk.window
        code = window.pause_reason_code if window is not None else None
        hall = self.core.hall
        reason = next((fmt.name(r) for r in (hall.pause_reasons if hall is not None else ())
                       if r.code == code), code or "")
        since = self._paused_since or self.clock()
        elapsed = fmt.duration((self.clock() - since).total_seconds())
        self.view.show_paused(_("Window paused: {reason}").format(reason=reason) if reason
                              else _("Window paused"),
                              _("Paused for {time} · press F6 to resume").format(time=elapsed))

    def _render_actions(self) -> None:
        pause_label = _("Resume") if self.s.state == "paused" else _("Pause")
        self.view.show_actions(self.enabled(), self.s.busy, pause_label)

    def _render_queue(self) -> None:
        rows = fmt.queue_rows(self.s.snapshot, self.clock())
        waiting = sum(1 for r in rows if not r.suspended)
        suspended = len(rows) - waiting
        self.view.show_queue(rows, _("{waiting} waiting, {suspended} suspended").format(
            waiting=waiting, suspended=suspended))

    def _render_checklist(self) -> None:
        matter = self._matter(self._matter_code())
        if self.s.case is None and self.s.ticket is None:
            self.view.show_checklist(_("No citizen at the window"), [])
        elif matter is None:
            self.view.show_checklist(_("Choose the matter (F8) to see its materials"), [])
        else:
            self.view.show_checklist(fmt.name(matter), fmt.checklist_rows(matter, self.s.case))

    def _render_status(self) -> None:
        conn = {
            "online": _("Server: connected"),
            "polling": _("Server: connected (polling)"),
            "reconnecting": _("Server: reconnecting…"),
            "offline": _("Server: OFFLINE"),
        }.get(self.s.connection, self.s.connection)
        outbox = _("Unsent ratings: {n}").format(n=self.s.outbox_depth)
        if self.s.outbox_dead:
            outbox += " · " + _("failed: {n}").format(n=self.s.outbox_dead)
        pad = self.pad.status()[0] if self.pad is not None else _("Pad: not configured")
        self.view.show_status(conn, outbox, pad, _("Scanner: not configured"),
                              self.s.connection in ("online", "polling"))
        if self.s.connection == "offline":
            self.view.show_banner(_(
                "No connection to the hall server. Still working: the checklist on screen, the "
                "catalog search, the lock, and ratings (kept and sent later). Calling, transfer "
                "and completion wait until the connection is back."))
        else:
            self.view.show_banner(None)

    # -- core events (delivered on the UI thread by the dispatcher) -------------------------------
    def on_desk_changed(self, ev: DeskChanged) -> None:
        self.s.state, self.s.ticket, self.s.case = ev.state, ev.ticket, ev.case
        self._render_ticket()
        self._render_actions()
        self._render_checklist()

    def on_queue_changed(self, ev: QueueChanged) -> None:
        self.s.snapshot = ev.snapshot
        self._render_queue()

    def on_connection_changed(self, ev: ConnectionChanged) -> None:
        self.s.connection, self.s.connection_detail = ev.state, ev.detail
        self._render_status()
        self._render_actions()

    def on_outbox_changed(self, ev: OutboxChanged) -> None:
        self.s.outbox_depth, self.s.outbox_dead = ev.depth, ev.dead
        self._render_status()

    def on_stats_updated(self, ev: StatsUpdated) -> None:
        self.s.stats = ev.stats
        self.view.show_figures(fmt.figures(self.s.stats))

    def on_ticket_arrived(self, ev: TicketArrivedInEmptyQueue) -> None:
        self.view.alert_new_ticket(str(ev.ticket.number), self.alert_flash, self.alert_sound)

    def on_ticket_taken(self, ev: TicketTakenElsewhere) -> None:
        # Calm and inline: the desk has already moved on to the next ticket. The named call's
        # own answer (arriving right after this event) then says which one it called.
        self._taken = str(ev.number)
        self.notice(lambda: _("Ticket {number} was taken by another window; calling the next one.")
                              .format(number=ev.number), "info")

    def on_error_raised(self, ev: ErrorRaised) -> None:
        self.notice(lambda: error_text(ev.error), "error")

    def on_catalog_synced(self, ev: CatalogSynced) -> None:
        self._catalog_generation += 1
        self.s.matter_cache.clear()
        self._render_checklist()
        self._render_ticket()

    def on_locked(self, _ev: Locked | None = None) -> None:
        self.s.locked = True
        self.view.show_locked(True)
        self._render_actions()

    def on_unlocked(self, _ev: Unlocked | None = None) -> None:
        self.s.locked = False
        self.view.show_locked(False)
        self._render_actions()

    # -- actions -------------------------------------------------------------------------------
    def trigger(self, action: str) -> None:
        """A button or hotkey. Ignored when not enabled (a double press never acts twice)."""
        if not self.enabled().get(action, False):
            if action == "evaluate" and self.pad is not None and not self.pad_connected():
                self._pad_offline_notice(self._case_number())
            return
        self._handlers()[action]()

    def _handlers(self) -> dict[str, Callable[[], None]]:
        """Action name -> what it does (the buttons and hotkeys of ACTIONS)."""
        return {"call_next": self.on_call_next, "recall": self.on_recall,
                "no_show": self.on_no_show, "transfer": self.on_transfer,
                "suspend": self.on_suspend, "pause": self.on_pause, "start": self.on_start,
                "change_matter": self.on_change_matter, "complete": self.on_complete,
                "evaluate": self.on_evaluate, "lock": self.on_lock,
                "applicant": self.on_applicant, "papers": self.on_papers}

    def on_papers(self) -> None:
        if self.applicant is not None:
            self.applicant.papers()

    def on_applicant(self) -> None:
        if self.applicant is not None:
            self.applicant.read()

    def _desk_call(self, action: str, op: Callable[[], T], done: str | None = None,
                   refresh_stats: bool = False, then: Callable[[T], None] | None = None,
                   args: dict[str, str] | None = None) -> None:
        # Confirmations name their ticket ("A023 已转移至 2号窗口"): a late message about another
        # ticket can then never be mistaken for this one (issue 16 item 4).
        ticket = self.s.ticket
        fields = {"number": str(ticket.number) if ticket is not None else "", **(args or {})}
        self.s.busy = action
        self._render_actions()

        def ok(result: T) -> None:
            self.s.busy = None
            self._sync_from_desk()
            if done:
                self.notice(lambda: _(done).format(**fields), "info")
            if refresh_stats:
                self.refresh_stats()
            if then is not None:
                then(result)

        def fail(exc: BaseException) -> None:
            self.s.busy = None
            self._sync_from_desk()
            self.notice(lambda: error_text(exc), "error")
            if not _is_user_error(exc):
                log.error("desk action %s failed", action, exc_info=exc)

        self.runner.run(op, ok, fail)

    def _sync_from_desk(self) -> None:
        desk = self.core.desk
        self.s.state, self.s.ticket, self.s.case = desk.state, desk.ticket, desk.case
        self._render_ticket()
        self._render_actions()
        self._render_checklist()

    def on_call_next(self) -> None:
        desk = self.core.desk

        def op() -> Ticket | None:
            return desk.call_next()

        self.s.busy = "call_next"
        self._render_actions()

        def ok(ticket: Ticket | None) -> None:
            self.s.busy = None
            self._sync_from_desk()
            if ticket is None:
                self.notice(lambda: _("Nobody is waiting for this window."), "info")
            else:
                self.notice(lambda: _("Calling {number}").format(number=ticket.number), "info")

        def fail(exc: BaseException) -> None:
            self.s.busy = None
            self._sync_from_desk()
            self.notice(lambda: error_text(exc), "error")

        self.runner.run(op, ok, fail)

    def on_recall(self) -> None:
        self._desk_call("recall", self.core.desk.recall, N_("{number} recalled"))

    def on_no_show(self) -> None:
        ticket = self.s.ticket
        number = str(ticket.number) if ticket is not None else ""
        self.s.busy = "no_show"
        self._render_actions()

        def ok(_t: Ticket) -> None:
            self.s.busy = None
            self._sync_from_desk()
            self.notice(lambda: _("{number} marked as no-show").format(number=number), "info")
            self.refresh_stats()

        def fail(exc: BaseException) -> None:
            self.s.busy = None
            self._sync_from_desk()
            details = exc.details if isinstance(exc, CounterError) else {}
            if isinstance(exc, CounterError) and exc.code == "no_show_too_early" and details:
                # The server says how far off the rule is: say it (docs/desk.md promises it).
                recalls, seconds = details.get("recalls_needed", 0), details.get("seconds_left", 0)
                self.notice(lambda: _("{number}: too early for no-show. Recall {recalls} more "
                                      "time(s), or wait {seconds} s more.").format(
                    number=number, recalls=recalls, seconds=seconds), "warn")
                return
            self.notice(lambda: error_text(exc), "error")

        self.runner.run(self.core.desk.no_show, ok, fail)

    def on_start(self) -> None:
        # Keyboard-first: the next thing the clerk does is check materials (F8 first if no matter).
        self._desk_call("start", self.core.desk.start, N_("{number}: service started"),
                        then=lambda _c: self.view.focus_checklist())

    def on_suspend(self) -> None:
        # Asks first: clerks press F5 by habit to refresh, and the note tells the next window why.
        def done(note: str) -> None:
            self._desk_call("suspend", lambda: self.core.desk.suspend(note),
                            N_("{number} suspended: the citizen can come back to any window of "
                               "this category"))

        self.view.ask_suspend(done)

    def on_resume_ticket(self, ticket_id: int) -> None:
        """Enter, double click or the button on a row of the waiting list: a suspended ticket is
        resumed here, a waiting one is called by name (指呼)."""
        waiting = {t.id for t in (self.s.snapshot.waiting if self.s.snapshot is not None else ())}
        if int(ticket_id) in waiting:
            self.on_call_ticket(int(ticket_id))
            return
        if self.s.state != "idle" or self.s.busy or self.s.locked:
            self.notice(lambda: _("Finish the current citizen before resuming another."), "warn")
            return
        self._desk_call("resume", lambda: self.core.desk.resume(int(ticket_id)), N_("Resumed"))

    def on_call_ticket(self, ticket_id: int) -> None:
        """Call this waiting ticket now. If another window was faster, the core calls the next
        one; the message line says both, calmly (no dialog: nothing is wrong)."""
        if self.s.state != "idle" or self.s.busy or self.s.locked or self.s.connection == "offline":
            self.notice(lambda: _("Finish the current citizen before calling another."), "warn")
            return
        desk = self.core.desk
        self._taken = None
        self.s.busy = "call_next"
        self._render_actions()

        def ok(ticket: Ticket | None) -> None:
            self.s.busy = None
            self._sync_from_desk()
            taken, self._taken = self._taken, None
            number = ticket.number if ticket is not None else None
            if taken is None:
                self.notice(lambda: _("Calling {number}").format(number=number), "info")
            elif number is None:
                self.notice(lambda: _("Ticket {taken} was taken by another window; nobody else is "
                                      "waiting for this window.").format(taken=taken), "info")
            else:
                self.notice(lambda: _("Ticket {taken} was taken by another window; calling "
                                      "{number} instead.").format(taken=taken, number=number), "info")

        def fail(exc: BaseException) -> None:
            self.s.busy = None
            self._taken = None
            self._sync_from_desk()
            self.notice(lambda: error_text(exc), "error")

        self.runner.run(lambda: desk.call_ticket(ticket_id), ok, fail)

    def on_transfer(self) -> None:
        hall = self.core.hall
        own = self.core.session.window
        own_no = own.no if own is not None else None
        windows = [(w.no, fmt.name(w) or _("Window {no}").format(no=w.no))
                   for w in (hall.windows if hall is not None else ()) if w.no != own_no]
        categories = [(c.code, f"{c.code} · {fmt.name(c)}")
                      for c in (hall.categories if hall is not None else ())]

        def done(choice: TransferChoice) -> None:
            self._desk_call("transfer", lambda: self.core.desk.transfer(
                to_window_no=choice.to_window_no, to_category=choice.to_category,
                priority=choice.priority, reason=choice.reason), N_("{number} transferred to {target}"),
                args={"target": dict(windows).get(choice.to_window_no or -1)
                      or dict(categories).get(choice.to_category or "", choice.to_category or "")})

        self.view.ask_transfer(windows, categories, done)

    def on_pause(self) -> None:
        if self.s.state == "paused":
            self._desk_call("pause", self.core.desk.resume_window, N_("Window open again"))
            return
        hall = self.core.hall
        reasons = [(r.code, fmt.name(r)) for r in (hall.pause_reasons if hall is not None else ())]

        def done(code: str) -> None:
            self._desk_call("pause", lambda: self.core.desk.pause(code), N_("Window paused"))

        self.view.ask_pause(reasons, done)

    def missing_required(self) -> list[MissingItem]:
        """Required materials of the current case not received (missing or still unchecked).

        Empty when the matter is not known yet (no checklist to hold the case against)."""
        matter = self.current_matter()
        if matter is None or self.s.case is None:
            return []
        return missing_items(matter, self.s.case)

    def on_complete(self) -> None:
        outcomes = [(o, _(fmt.OUTCOME_LABELS[o])) for o in fmt.OUTCOMES]
        matter = self.current_matter()
        by_id = {i.id: fmt.name(i) for i in (matter.checklist if matter is not None else ())}
        missing = self.missing_required()
        names = [by_id.get(m.item_id, m.name) for m in missing]
        ticket = self.s.ticket
        number = str(ticket.number) if ticket is not None else ""
        case_no = self.s.case.case_no if self.s.case is not None else ""

        def done(choice: CompleteChoice) -> None:
            note = choice.note
            override = choice.override.strip()
            if missing and choice.outcome in GUARDED_OUTCOMES:
                # The guard holds here too, not only in the dialog: no view may skip it.
                if not override:
                    self.notice(lambda: _("{number}: {n} required material(s) missing or unchecked. "
                                          "Give the correction notice, or a reason to go on anyway.")
                                .format(number=number, n=len(missing)), "warn")
                    return
                # The record keeps the override with the case (the API's note field) and IT's
                # log has it: who went on with what missing, and why.
                zh_names = "、".join(m.name for m in missing)
                note = (note + "\n" if note else "") + f"缺件放行理由 / override: {override}（缺：{zh_names}）"
                log.warning("completion override: ticket %s case %s outcome %s with %d required "
                            "material(s) missing or unchecked (%s); reason: %s", number, case_no,
                            choice.outcome, len(missing), ", ".join(m.item_id for m in missing), override)
            self._desk_call("complete", lambda: self.core.desk.complete(choice.outcome, note=note,
                                                                        reason=choice.reason),
                            N_("{number}: service finished"), refresh_stats=True, then=self._ask_pad)

        self.view.ask_complete(outcomes, done, missing=names)

    def on_change_matter(self) -> None:
        def done(code: str) -> None:
            self._desk_call("change_matter", lambda: self.core.desk.set_matter(code), N_("{number}: matter set"),
                            then=lambda _c: self.view.focus_checklist())

        self.view.ask_matter(done)

    def _case_number(self) -> str:
        """The ticket number of the case F10 would rate (the current or the last completed)."""
        if self.s.ticket is not None:
            return str(self.s.ticket.number)
        last = self.core.desk.last_result
        return str(last.ticket.number) if last is not None else ""

    def _pad_offline_notice(self, number: str) -> None:
        """Say plainly that no pad will ask, and what the citizen can do instead."""
        self._rating_number, self._rating_seq = number, self._seq
        self.pad_notice(lambda: _("The rating pad is not connected: no rating is asked now. The "
                                  "citizen can rate later with the code on the ticket slip."), "warn")

    def on_evaluate(self) -> None:
        if self.pad is not None:
            # Only messages after this press are later actions (see pad_notice).
            self._rating_number, self._rating_seq = self._case_number(), self._seq + 1
            self.pad.evaluate(self.rating_case())

    def _ask_pad(self, result: ServiceResult) -> None:
        # Right after completing, the pad invites the citizen to rate (F10 asks again if needed).
        if self.pad is None:
            return
        number = str(result.ticket.number)
        if not self.pad_connected():
            self._pad_offline_notice(number)
            return
        # The completion confirmation stays; the pad's messages are added after it.
        self._rating_number, self._rating_seq = number, self._seq
        self.pad.evaluate(result.case)

    def pad_changed(self) -> None:
        """The pad's state or an open rating changed: redraw the buttons and the status bar."""
        self._render_actions()
        self._render_status()

    def on_lock(self) -> None:
        session = self.core.session
        self.runner.run(session.lock, lambda _r: self.on_locked(), self._show_error)

    def unlock(self, password: str, on_result: Callable[[bool], None]) -> None:
        session = self.core.session

        def ok(result: bool) -> None:
            if result:
                self.on_unlocked()
            on_result(bool(result))

        self.runner.run(lambda: session.unlock(password), ok, self._show_error)

    def set_material(self, item_id: str, status: str, note: str = "") -> None:
        if self.s.case is None:
            return
        self._desk_call("material", lambda: self.core.desk.set_material(item_id, status, note))

    def search_matters(self, text: str, on_results: Callable[[list[Matter]], None]) -> None:
        """Catalog search off the UI thread; stale answers (older keystrokes) are dropped."""
        self._search_seq += 1
        seq = self._search_seq
        catalog = self.core.catalog
        if catalog is None:
            on_results([])
            return

        def ok(items: list[Matter]) -> None:
            if seq == self._search_seq:
                on_results(items)

        self.runner.run(lambda: catalog.search(text, limit=50), ok, self._show_error)

    def refresh_stats(self) -> None:
        def ok(stats: Stats) -> None:
            self.s.stats = stats
            self.view.show_figures(fmt.figures(stats))

        self.runner.run(self.core.refresh_stats, ok, lambda exc: log.info("stats not refreshed: %s", exc))

    def _show_error(self, exc: BaseException) -> None:
        self.notice(lambda: error_text(exc), "error")


def _is_user_error(exc: BaseException) -> bool:
    return isinstance(exc, CounterError | ApiError)
