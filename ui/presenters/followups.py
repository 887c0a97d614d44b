"""The desk's follow-up dialog (Ctrl+G): this window's unfinished bad-rating follow-ups and its
appeals, as the hall server keeps them (docs/followup.md). Plain Python: the dialog
(ui/views/followups.py) only shows the lines this presenter makes.

The clerk works a follow-up assigned to them, and files appeals, through the hall's procedures
(a supervisor assigns, reviews and decides in the console); the desk shows what is open and
what is late, so nothing waits unseen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from api_client.models import AppealItem, FollowupItem, WindowFollowups
from ui.i18n import N_, _
from ui.presenters.pad import Runner

STATE_TEXT = {
    "open": N_("awaiting assignment"), "assigned": N_("assigned for follow-up"),
    "called_back": N_("citizen called back"), "verified": N_("complaint verified"),
    "rectified": N_("rectification done"), "answered": N_("citizen answered, awaiting review"),
}
APPEAL_TEXT = {"pending": N_("appeal pending"), "upheld": N_("appeal upheld"), "rejected": N_("appeal rejected")}
LEVEL_TEXT = {"dissatisfied": N_("Dissatisfied"), "very_dissatisfied": N_("Very dissatisfied")}


@dataclass(frozen=True)
class Line:
    text: str
    urgent: bool  # overdue: shown in the danger colour
    mine: bool = False  # assigned to this clerk: shown bold


class FollowupsView(Protocol):
    def show_busy(self, busy: bool) -> None: ...
    def show_error(self, text: str) -> None: ...
    def show_lines(self, followups: list[Line], appeals: list[Line]) -> None: ...


def followup_line(f: FollowupItem, me: str) -> Line:
    parts = [f.case_no, _(LEVEL_TEXT.get(f.level, f.level)), _(STATE_TEXT.get(f.state, f.state)),
             _("due {day}").format(day=f.due_day.isoformat())]
    if f.overdue:
        parts.append(_("OVERDUE"))
    if f.assignee == me:
        parts.append(_("assigned to you"))
    text = " · ".join(parts)
    if f.comment:
        text += f"\n    “{f.comment}”"
    return Line(text, f.overdue, f.assignee == me)


def appeal_line(a: AppealItem) -> Line:
    text = " · ".join([a.case_no, _(APPEAL_TEXT.get(a.state, a.state)), a.reason])
    if a.decision_note:
        text += f"\n    {a.decision_note}"
    return Line(text, False)


def lines(data: WindowFollowups, me: str) -> tuple[list[Line], list[Line]]:
    """Overdue first, then by deadline; appeals pending first."""
    fus = sorted(data.followups, key=lambda f: (not f.overdue, f.due_day, f.id))
    aps = sorted(data.appeals, key=lambda a: (a.state != "pending", -a.id))
    return [followup_line(f, me) for f in fus], [appeal_line(a) for a in aps]


class FollowupsPresenter:
    def __init__(self, view: FollowupsView, runner: Runner, fetch: Callable[[], WindowFollowups], me: str,
                 error_text: Callable[[BaseException], str]) -> None:
        self.view, self.runner, self.fetch, self.me, self.error_text = view, runner, fetch, me, error_text
        self.busy = False

    def refresh(self) -> None:
        """Ask the hall server in the background (the Tk thread never waits on the network)."""
        if self.busy:
            return
        self.busy = True
        self.view.show_busy(True)

        def ok(data: WindowFollowups) -> None:
            self.busy = False
            self.view.show_busy(False)
            fus, aps = lines(data, self.me)
            self.view.show_lines(fus, aps)

        def fail(exc: BaseException) -> None:
            self.busy = False
            self.view.show_busy(False)
            self.view.show_error(self.error_text(exc))

        self.runner.run(self.fetch, ok, fail)
