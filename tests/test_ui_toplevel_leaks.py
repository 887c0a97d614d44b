"""Dialogs and windows leave nothing behind: after many open/close cycles no dialog object is
alive, customtkinter's scaling tracker holds no destroyed window, the Tk named fonts and the
"all" <Button-1> binding are back where they started, and a click still moves the focus.

The desk opens two or three dialogs per citizen; before ``ui.views.common.Toplevel`` each one
stayed in memory for good (bench/bench_memory.py: ~24 MB a day at 240 tickets).
"""

from __future__ import annotations

import gc
from typing import Any

import customtkinter as ctk
import pytest
from customtkinter.windows.widgets.scaling.scaling_tracker import ScalingTracker

from tests.support.gui_fixtures import pump, teardown_root
from ui import style
from ui.views.common import Toplevel
from ui.views.dialogs import CompleteDialog, MatterDialog, TransferDialog

pytestmark = pytest.mark.gui


@pytest.fixture
def root() -> Any:
    style.apply()
    r = ctk.CTk()
    r.geometry("900x600+0+0")
    pump(r)
    yield r
    teardown_root(r)


def _alive(cls: type) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, cls))


def _state(root: Any) -> tuple[int, int, str]:
    gc.collect()
    return (len(ScalingTracker.window_dpi_scaling_dict), len(root.tk.call("font", "names")),
            str(root.tk.call("bind", "all", "<Button-1>")))


def _open_close(root: Any, make: Any, n: int) -> None:
    for _ in range(n):
        d = make()
        pump(root, 0.01)
        d.close()
        pump(root, 0.01)


def test_dialogs_leave_nothing_behind(root: Any) -> None:
    makers = [
        lambda: CompleteDialog(root, [("approved", "OK"), ("rejected", "No")], lambda *_a: None),
        lambda: TransferDialog(root, [(2, "2")], [("A", "A")], lambda _c: None),
        lambda: MatterDialog(root, lambda _t, cb: cb([]), str, lambda _c: None),
    ]
    for make in makers:  # first use may build caches (theme, fonts) once
        _open_close(root, make, 1)
    # Counted relative to the start: windows of earlier tests in the same process may still
    # be waiting for their own teardown.
    alive_before = [_alive(c) for c in (CompleteDialog, TransferDialog, MatterDialog)]
    before = _state(root)
    for make in makers:
        _open_close(root, make, 8)
    after = _state(root)
    assert [_alive(c) for c in (CompleteDialog, TransferDialog, MatterDialog)] == alive_before
    assert after[0] == before[0], "the scaling tracker keeps destroyed windows"
    assert after[1] == before[1], "Tk named fonts of destroyed dialogs are not freed"
    assert after[2] == before[2], "each window added a line to the 'all' <Button-1> binding"


def test_plain_toplevel_is_released_and_clicks_still_focus(root: Any) -> None:
    alive_before = _alive(Toplevel)
    before = _state(root)
    for _ in range(5):
        w = Toplevel(root)
        ctk.CTkEntry(w, font=style.font(16)).pack()
        pump(root, 0.01)
        w.destroy()
    del w
    pump(root, 0.01)
    assert _alive(Toplevel) == alive_before
    assert _state(root) == before
    # The root's own click-to-focus handler survives the windows' clean-up.
    entry = ctk.CTkEntry(root)
    entry.pack()
    button = ctk.CTkButton(root, text="x")
    button.pack()
    pump(root, 0.1)
    entry.focus_force()
    pump(root, 0.05)
    root.event_generate("<Button-1>")  # a no-op target: just proves the binding script is valid
    button._canvas.event_generate("<Button-1>", x=5, y=5)
    pump(root, 0.1)
    assert root.focus_get() is not entry._entry
