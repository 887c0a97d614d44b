"""The desk's side of the evaluator pad, against the real server: the pad dialog (no password:
it shows the pad's status and how a supervisor pairs it), and a whole rating through the serial
box on a pty:
complete -> the box lights up -> the desk locks its rating controls and says "rating in
progress" -> a key press -> "rating received" (never the level) -> the server has it, unsigned.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest

from tests.support.gui_fixtures import pump, pump_until, screenshot
from tests.test_pad_serial import Box
from tests.test_ui_desk import desk_state, dialog, issue, key_in, notice, open_desk, press

pytestmark = pytest.mark.gui


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_pad_dialog_takes_no_password_and_shows_the_pad_status(desk_app_factory: Any,
                                                              fresh_hall_server: Any) -> None:
    from tests.pad_helpers import SoftPad, pair
    from tests.support.server_fixtures import signed_in

    app = open_desk(desk_app_factory, fresh_hall_server.url, pad_transport="lan")
    app.root.event_generate("<Control-p>", when="tail")
    d = dialog(app)
    assert not hasattr(d, "password_entry") and not hasattr(d, "staff_entry")
    pump_until(app.root, lambda: "本窗口尚未配对评价器" in d.status_label.cget("text"), what="no pad")
    assert fresh_hall_server.url + "/pair/" in d.status_label.cget("text")
    screenshot(d, "pad_dialog_unpaired_zh")
    # A supervisor pairs a pad from their own device; the dialog shows it on refresh.
    pad = SoftPad()
    pair(signed_in(fresh_hall_server.url, "8001"), None, 1, pad)
    d.ok_button.invoke()
    pump_until(app.root, lambda: pad.pad_id in d.status_label.cget("text"), what="paired pad")
    assert "8001" in d.status_label.cget("text")
    from ui import i18n

    i18n.set_language("en")
    d.ok_button.invoke()
    pump_until(app.root, lambda: "paired by 8001" in d.status_label.cget("text"), what="en status")
    screenshot(d, "pad_dialog_paired_en")
    i18n.set_language("zh")
    d.cancel()


def test_serial_box_rating_from_the_desk_to_the_server(desk_app_factory: Any, fresh_hall_server: Any) -> None:
    from counter_app.pad.serial_box import T_MODE

    master, slave = os.openpty()
    box = Box(master)
    try:
        app = open_desk(desk_app_factory, fresh_hall_server.url, pad_transport="serial",
                        pad_serial_port=os.ttyname(slave))
        box.heartbeat()
        pump_until(app.root, lambda: app.pad is not None and app.pad.state == "connected",
                   what="serial box connected")
        status = app.desk_view.status.pad
        pump_until(app.root, lambda: status.cget("text") == "评价器：已连接", what="status")
        assert not app.desk.enabled()["evaluate"]  # nobody served yet: nothing to rate
        issue(fresh_hall_server.url, "A")
        press(app, "F1")
        pump_until(app.root, lambda: desk_state(app) == "calling", what="calling")
        press(app, "F7")
        pump_until(app.root, lambda: desk_state(app) == "serving", what="serving")
        assert app.desk.enabled()["evaluate"]
        press(app, "F9")
        d = dialog(app)
        from ui.views.common import select_index

        select_index(d.listbox, 0)
        key_in(d.listbox, "Return")
        pump_until(app.root, lambda: desk_state(app) == "idle", what="idle after completion")
        # Completing asks the pad at once: the box lights its keys, the desk locks F10.
        box.wait_for(lambda f: f.type == T_MODE and f.payload == b"\x01")
        pump_until(app.root, lambda: app.pad.rating_open, what="rating open")
        pump_until(app.root, lambda: status.cget("text") == "评价器：评价进行中", what="in progress")
        assert not app.desk.enabled()["evaluate"]
        assert app.desk_view.buttons["evaluate"].cget("state") == "disabled"
        press(app, "F10")  # locked: a press does nothing
        pump(app.root, 0.1)
        assert "评价进行中" in notice(app)
        screenshot(app.root, "desk_pad_rating_in_progress_zh")
        box.key(1, 2)  # the citizen presses "satisfied"
        pump_until(app.root, lambda: "已收到评价" in notice(app), what="rating received")
        for word in ("满意", "satisfied"):
            assert word not in notice(app) and word not in status.cget("text")
        assert not app.desk.enabled()["evaluate"]  # one rating per service
        outbox = app.core.outbox
        pump_until(app.root, lambda: outbox.depth() == 0 and outbox.items(state="done"),
                   what="delivered")
        (item,) = outbox.items(state="done")
        assert item.receipt["assurance"] == "unsigned"
        assert item.payload_obj["source"] == "serial"
        screenshot(app.root, "desk_pad_rating_received_zh")
    finally:
        box.close()
        os.close(slave)
        os.close(master)
