"""Issue 16 (the desk): a clerk's whole day on the real window against the real server.

The completion guard, the keyboard-first checklist, the screen fit at 1366x768 and 1920x1080,
what the panel says while paused or serving, and honest rating messages. Clerk-eye screenshots
go to $COUNTER_ARTIFACTS/screenshots/desk_*.png.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.gui_fixtures import pump_until
from tests.test_ui_desk import (
    desk_state,
    dialog,
    dialog_closed,
    issue,
    key_in,
    open_desk,
    press,
    shot_both,
    type_text,
)
from ui.views.common import select_index

pytestmark = pytest.mark.gui

MATTER = "370191-A-0001"  # 个体工商户设立登记: six materials, five of them required


def serve_with_matter(app: Any, url: str) -> Any:
    """Call, start and set the matter by keys; returns the checklist tree."""
    pump_until(app.root, lambda: app.core.catalog is not None and app.core.catalog.count() > 100,
               what="the catalog synced")
    issue(url)
    press(app, "F1")
    pump_until(app.root, lambda: desk_state(app) == "calling", what="calling")
    press(app, "F7")
    pump_until(app.root, lambda: desk_state(app) == "serving", what="serving")
    press(app, "F8")
    d = dialog(app)
    type_text(d.entry, "gtgshsl")
    pump_until(app.root, lambda: d.listbox.size() > 0 and "个体工商户设立登记" in d.listbox.get(0),
               what="the matter found")
    key_in(d.entry, "Return")
    pump_until(app.root, lambda: dialog_closed(app), what="the dialog closed")
    tree = app.desk_view.checklist.tree
    pump_until(app.root, lambda: app.desk.s.case is not None and app.desk.s.case.matter_code == MATTER
               and len(tree.get_children()) == 6, what="six materials")
    return tree


def outcome_note(db_url: str, case_id: int) -> str:
    eng = sa.create_engine(db_url)
    try:
        with eng.connect() as c:
            return str(c.execute(sa.text("SELECT outcome_note FROM cases WHERE id = :i"),
                                 {"i": case_id}).scalar_one())
    finally:
        eng.dispose()


def test_complete_with_required_materials_missing_is_guarded(desk_app_factory: Any,
                                                             fresh_hall_server: Any) -> None:
    """Item 2. Old code: F9 + Enter completed with five required materials unchecked, silently."""
    url = fresh_hall_server.url
    app = open_desk(desk_app_factory, url)
    tree = serve_with_matter(app, url)
    case_id = app.desk.s.case.id
    first = tree.get_children()[0]
    tree.selection_set(first)
    key_in(tree, "Key-1")
    pump_until(app.root, lambda: tree.item(first, "values")[2] == "已收取", what="first received")
    alarms = [tree.item(i, "values")[0] for i in tree.get_children() if "alarm" in tree.item(i, "tags")]
    assert alarms
    press(app, "F9")
    d = dialog(app)
    # The warning is the first thing in the dialog and names what is missing.
    assert d.guard_label.winfo_ismapped()
    text = d.guard_label.cget("text")
    assert text.startswith(f"{len(alarms)} 项必交材料") and all(a.split(" · ")[0] in text for a in alarms)
    shot_both(app, "desk_complete_guard")
    select_index(d.listbox, 0)  # completed on the spot
    key_in(d.listbox, "Return")
    assert not dialog_closed(app), "completed with required materials missing and no reason"
    assert "补正" in d.error_label.cget("text") or "理由" in d.error_label.cget("text")
    assert desk_state(app) == "serving"
    shot_both(app, "desk_complete_guard_refused")
    # The correction notice is one key away: the outcome switches to 告知补正.
    d.correction_button.invoke()
    assert d.chosen() == "correction"
    # Go on anyway with a reason: completed, and the reason is on the case record.
    select_index(d.listbox, 0)
    d.override_entry.insert(0, "领导批准容缺办理")
    key_in(d.listbox, "Return")
    pump_until(app.root, lambda: desk_state(app) == "idle", what="idle after completion")
    note = outcome_note(fresh_hall_server.db_url, case_id)
    assert "领导批准容缺办理" in note and "缺件放行理由" in note
