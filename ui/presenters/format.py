"""Pure formatting: tickets, queue rows, durations, figures, checklist rows, as the desk shows them.

Inputs are api_client models (tests give objects with the same attributes); outputs are small
frozen dataclasses of display strings, so views only place text and presenters are testable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from api_client.models import Case, Category, Matter, QueueSnapshot, Stats, Ticket
from ui.i18n import N_, _, language

# The waiting list names every priority (an empty cell reads as "unknown" after hours at the
# desk); the ticket card shows a badge only for the two that jump the queue.
PRIORITY_LABELS = {"green": N_("Green channel"), "appointment": N_("Appointment"),
                   "normal": N_("Normal")}
BADGE_PRIORITIES = frozenset({"green", "appointment"})

MATERIAL_STATUSES = ("received", "e_licence", "accepted_pending", "missing", "not_applicable")
MATERIAL_LABELS = {
    "received": N_("Received"),
    "e_licence": N_("Electronic licence"),
    "accepted_pending": N_("Accepted, to follow"),
    "missing": N_("Missing"),
    "not_applicable": N_("Not applicable"),
    "": N_("Not checked"),
    "unchecked": N_("Not checked"),  # the server's start state (issue 16)
}
REQUIREMENT_LABELS = {
    "required": N_("Required"),
    "optional": N_("Optional"),
    "accepted_pending": N_("May follow later"),
}
OUTCOMES = ("completed", "accepted", "correction", "rejected", "forwarded")
OUTCOME_LABELS = {
    "completed": N_("Completed on the spot"),
    "accepted": N_("Accepted for processing"),
    "correction": N_("Told what to add"),
    "rejected": N_("Rejected (reason needed)"),
    "forwarded": N_("Handed to another department"),
}
RATING_LEVELS = ("very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied")
RATING_LABELS = {
    "very_satisfied": N_("Very satisfied"),
    "satisfied": N_("Satisfied"),
    "basic": N_("Basically satisfied"),
    "dissatisfied": N_("Dissatisfied"),
    "very_dissatisfied": N_("Very dissatisfied"),
}
STATE_LABELS = {
    "idle": N_("Ready"),
    "calling": N_("Calling"),
    "serving": N_("Serving"),
    "paused": N_("Paused"),
    "closed": N_("Closed"),
}


class Named(Protocol):
    """Anything with a bilingual name: staff, windows, categories, matters, checklist items."""

    @property
    def name_zh(self) -> str: ...

    @property
    def name_en(self) -> str: ...


def pick(zh: str | None, en: str | None) -> str:
    """The English text when the desk speaks English and there is one, else the Chinese."""
    return (en if language() == "en" and en else zh) or ""


def name(obj: Named | None) -> str:
    """``obj``'s name in the desk's language (falling back to Chinese); "" for None."""
    return "" if obj is None else pick(obj.name_zh, obj.name_en)


def duration(seconds: float | None) -> str:
    """"3:07" for short spans, "1:02:07" past an hour; "—" when unknown."""
    if seconds is None or seconds < 0:
        return "—"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def since(moment: datetime | None, now: datetime | None = None) -> float | None:
    if moment is None:
        return None
    now = now or datetime.now(UTC)
    return (now - moment).total_seconds()


@dataclass(frozen=True)
class TicketCard:
    number: str
    matter: str
    priority: str  # "normal" | "green" | "appointment"
    priority_label: str
    waited: str
    recalls: str
    state: str
    # The matter's promise, as badges: time limit, 即办 / 秒批, 跨省通办 (issue 15 item 1).
    badges: tuple[str, ...] = ()


def matter_badges(matter: Matter | None) -> tuple[str, ...]:
    """What the clerk promises with this matter: its time limit in working days (or 即办 for
    a limit of 0), 秒批秒办 and 跨省通办 where the catalog says so."""
    if matter is None:
        return ()
    out = [_("Same-day matter") if matter.time_limit_days == 0
           else _("Time limit {n} working days").format(n=matter.time_limit_days)]
    if matter.instant:
        out.append(_("Instant approval"))
    if matter.cross_region:
        out.append(_("Cross-province"))
    return tuple(out)


def category_text(code: str, category: Category | None) -> str:
    """"A · 市场主体登记": the category's code and its name when the hall's list has it."""
    named = name(category)
    return f"{code} · {named}" if named and code else (code or named)


def ticket_card(ticket: Ticket, matter: Matter | None, now: datetime | None = None,
                recall_limit: int | None = None, category: Category | None = None) -> TicketCard:
    """What the big ticket panel shows for the current ticket.

    Without a matter the line names the ticket's category (``category``: the hall's entry for
    it), so the clerk knows what kind of business to expect before pressing F8.
    """
    waited = since(ticket.queued_at, now)
    # In service the clock that matters is the handling time, not the wait (issue 16 item 5).
    serving = ticket.state == "serving" and ticket.started_at is not None
    clock_text = (_("Handling {time}").format(time=duration(since(ticket.started_at, now))) if serving
                  else _("Waited {time}").format(time=duration(waited)))
    recalls = ticket.recalls or 0
    limit = f" / {recall_limit}" if recall_limit else ""
    if matter is not None:
        matter_text = name(matter)
    elif ticket.matter_code:
        matter_text = ticket.matter_code
    else:
        cat = category_text(ticket.category or "", category)
        matter_text = (_("{category} · matter not chosen yet").format(category=cat) if cat
                       else _("Matter not chosen yet"))
    priority = ticket.priority or "normal"
    return TicketCard(
        number=str(ticket.number),
        matter=matter_text,
        priority=priority,
        priority_label=_(PRIORITY_LABELS[priority]) if priority in BADGE_PRIORITIES else "",
        waited=clock_text,
        recalls=_("Recalled {n}{limit} times").format(n=recalls, limit=limit),
        state=_(STATE_LABELS[ticket.state]) if ticket.state in STATE_LABELS else "",
        badges=matter_badges(matter),
    )


@dataclass(frozen=True)
class QueueRow:
    iid: str
    number: str
    priority: str
    priority_label: str
    category: str
    waited: str
    note: str
    suspended: bool


def queue_rows(snapshot: QueueSnapshot | None, now: datetime | None = None) -> list[QueueRow]:
    """Rows for the waiting list: waiting in call order, then suspended ones (resumable here)."""
    if snapshot is None:
        return []
    return ([_row(t, now, suspended=False) for t in snapshot.waiting]
            + [_row(t, now, suspended=True) for t in snapshot.suspended])


def _row(t: Ticket, now: datetime | None, *, suspended: bool) -> QueueRow:
    prio = t.priority or "normal"
    label = _(PRIORITY_LABELS[prio]) if prio in PRIORITY_LABELS else prio
    note = _("Suspended (fetching materials)") if suspended else (
        _("Sent to this window") if t.target_window_no else "")
    return QueueRow(
        iid=str(t.id), number=str(t.number), priority=prio, priority_label=label,
        category=str(t.category), waited=duration(since(t.queued_at, now)), note=note,
        suspended=suspended)


@dataclass(frozen=True)
class ChecklistRow:
    item_id: str
    name: str
    requirement: str
    requirement_label: str
    status: str
    status_label: str
    note: str
    alarm: bool  # required and marked missing: shown in colour AND words
    e_licence: bool


def checklist_rows(matter: Matter | None, case: Case | None) -> list[ChecklistRow]:
    """The current case's materials against its matter's checklist."""
    if matter is None:
        return []
    statuses = {m.item_id: m for m in (case.materials if case is not None else ())}
    rows = []
    for item in matter.checklist:
        st = statuses.get(item.id)
        status = st.status if st is not None else ""
        req = item.requirement
        # Every material starts 未核对 (neutral) until the clerk marks it: red is kept for a
        # required item actually marked missing, so it stands out (issue 16 item 3).
        alarm = req == "required" and status == "missing"
        label = _(MATERIAL_LABELS.get(status, status))
        if alarm:
            label = _("REQUIRED, MISSING")
        rows.append(ChecklistRow(
            item_id=item.id, name=name(item), requirement=req,
            requirement_label=_(REQUIREMENT_LABELS.get(req, req)), status=status,
            status_label=label, note=(st.note if st is not None else "") or "", alarm=alarm,
            e_licence=bool(item.e_licence)))
    return rows


@dataclass(frozen=True)
class Figures:
    served: str
    avg_handle: str
    no_shows: str
    satisfaction: str
    per_hour: list[int]
    by_level: list[tuple[str, str, int]]  # (level, label, count)
    # Measured from the window's cases (docs/figures.md), "—" when nothing to divide.
    on_time: str = "—"
    on_the_spot: str = "—"


def figures(stats: Stats | None) -> Figures:
    if stats is None:
        return Figures("—", "—", "—", "—", [0] * 24, [(lv, _(RATING_LABELS[lv]), 0) for lv in RATING_LEVELS])
    rate = stats.satisfaction_rate
    signed = stats.satisfaction_rate_signed
    by_level = stats.ratings_by_level or {}
    satisfaction = "—" if rate is None else f"{rate * 100:.1f}%"
    if signed is not None:
        # Over the pad-signed ratings only: the figure nobody at the window could have made up.
        satisfaction += "\n" + _("signed: {p}").format(p=f"{signed * 100:.1f}%")
    return Figures(
        served=str(stats.served),
        avg_handle=duration(stats.avg_handle_seconds),
        no_shows=str(stats.no_shows),
        satisfaction=satisfaction,
        per_hour=list(stats.tickets_per_hour or [0] * 24),
        by_level=[(lv, _(RATING_LABELS[lv]), int(by_level.get(lv, 0))) for lv in RATING_LEVELS],
        on_time=percent(stats.on_time_rate),
        on_the_spot=percent(stats.on_the_spot_rate),
    )


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"
