"""The second-screen pad shows the hall's name from the first screen after sign-in.

The name is the server's (`/hall`): the desk's config knows only the hall's code. ui/app.py used
to read `hall_name_zh` from Settings, which has no such field, so the citizen's screen showed an
empty header; the types found it, and this test failed on that code.
"""

from __future__ import annotations

from typing import Any

import customtkinter as ctk
import pytest

from tests.support.gui_fixtures import pump_until

pytestmark = pytest.mark.gui


def _texts(widget: Any) -> list[str]:
    out = []
    for child in widget.winfo_children():
        if isinstance(child, ctk.CTkLabel):
            out.append(str(child.cget("text")))
        out += _texts(child)
    return out


def test_second_screen_pad_shows_the_hall_name(desk_app_factory: Any,
                                               fresh_hall_server: Any) -> None:
    from hall_server.demo_data import HALL
    from tests.test_ui_desk import open_desk

    app = open_desk(desk_app_factory, fresh_hall_server.url, pad_transport="second_screen",
                    pad_screen_geometry="900x600+0+0")
    hall = app.core.hall  # what the server said at sign-in
    assert hall is not None and (hall.name_zh, hall.name_en) == (HALL["name_zh"], HALL["name_en"])
    pad = app.pad_service.transport
    pump_until(app.root, lambda: pad.screen == "idle" and pad.window is not None,
               what="idle card")
    assert pad.hall_name == (hall.name_zh, hall.name_en)
    pump_until(app.root, lambda: any(hall.name_zh in t for t in _texts(pad.window)),
               what="the hall's name in the pad's header")
    pad.toggle_language()
    pump_until(app.root, lambda: any(hall.name_en in t for t in _texts(pad.window)),
               what="the English name after the citizen switches language")
