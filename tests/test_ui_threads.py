"""The Tk thread only draws: a scripted session in the real desk window against the real server,
with every kind of blocking I/O the desk does wrapped to record the thread that called it.

Recorded: SQLite (every connection the core opens is made through a recording factory:
``execute``/``executemany``/``executescript``/``cursor``/``commit``), HTTP
(``requests.Session.request``), the catalog's ``get``/``search``, the keyring (``keyring.get_password``/``set_password``), image
decoding (``PIL.Image.open``) and file reads (``builtins.open``). The core is built before the
window exists (its databases and the keyring are opened then, with no event loop to stall); from
the moment the Tk root exists, none of these may run on the main thread.

A second test plays the race of issue 3: the clerk selects a waiting ticket to call it by name,
another window (staff 1002 at window 2, its own HallClient) takes it first; the desk says so
calmly on its message line (no dialog) and calls the next ticket.
"""

from __future__ import annotations

import builtins
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import customtkinter as ctk
import keyring
import pytest
import requests
from PIL import Image

from tests.documents_helpers import MemoryKeyring, memory_keyring  # noqa: F401 - fixture
from tests.support.gui_fixtures import pump, pump_until, screenshot
from tests.test_ui_desk import (
    PASSWORD,
    desk_state,
    dialog,
    dialog_closed,
    issue,
    key_in,
    notice,
    number_shown,
    open_desk,
    press,
    type_text,
)

pytestmark = pytest.mark.gui


class IoRecorder:
    """Who did which I/O: (kind, thread name, whether a Tk root existed by then)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bool]] = []
        self.tk_alive = False
        self.main = threading.main_thread()
        self._lock = threading.Lock()

    def note(self, kind: str) -> None:
        t = threading.current_thread()
        with self._lock:
            self.calls.append((kind, t.name, self.tk_alive and t is self.main))

    def on_tk_thread(self) -> list[str]:
        return [kind for kind, _name, bad in self.calls if bad]

    def kinds(self) -> set[str]:
        return {kind.split(":")[0] for kind, _n, _b in self.calls}


@pytest.fixture
def io_threads(monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring) -> Iterator[IoRecorder]:  # noqa: F811
    rec = IoRecorder()

    class RecordingCursor(sqlite3.Cursor):
        def execute(self, *a: Any, **kw: Any) -> Any:
            rec.note("sqlite:cursor.execute")
            return super().execute(*a, **kw)

    class RecordingConnection(sqlite3.Connection):
        def execute(self, *a: Any, **kw: Any) -> Any:
            rec.note("sqlite:execute")
            return super().execute(*a, **kw)

        def executemany(self, *a: Any, **kw: Any) -> Any:
            rec.note("sqlite:executemany")
            return super().executemany(*a, **kw)

        def executescript(self, *a: Any, **kw: Any) -> Any:
            rec.note("sqlite:executescript")
            return super().executescript(*a, **kw)

        def cursor(self, *a: Any, **kw: Any) -> Any:  # type: ignore[override]
            rec.note("sqlite:cursor")
            return super().cursor(RecordingCursor)

        def commit(self) -> None:
            rec.note("sqlite:commit")
            super().commit()

    real_connect = sqlite3.connect

    def connect(*a: Any, **kw: Any) -> Any:
        kw.setdefault("factory", RecordingConnection)
        return real_connect(*a, **kw)

    monkeypatch.setattr(sqlite3, "connect", connect)

    real_request = requests.Session.request

    def request(self: Any, method: str, url: str, *a: Any, **kw: Any) -> Any:
        rec.note(f"http:{method} {url.split('/', 3)[-1]}")
        return real_request(self, method, url, *a, **kw)

    monkeypatch.setattr(requests.Session, "request", request)

    for name in ("get_password", "set_password"):
        real_kr = getattr(keyring, name)

        def kr(*a: Any, _real: Any = real_kr, _name: str = name, **kw: Any) -> Any:
            rec.note(f"keyring:{_name}")
            return _real(*a, **kw)

        monkeypatch.setattr(keyring, name, kr)

    real_image_open = Image.open

    def image_open(*a: Any, **kw: Any) -> Any:
        rec.note("image:open")
        return real_image_open(*a, **kw)

    monkeypatch.setattr(Image, "open", image_open)

    real_open = builtins.open

    def file_open(file: Any, mode: str = "r", *a: Any, **kw: Any) -> Any:
        rec.note(f"file:{mode} {file}")
        return real_open(file, mode, *a, **kw)

    monkeypatch.setattr(builtins, "open", file_open)

    # The catalog answers from memory, but the desk must not rely on that (see DeskPresenter).
    from counter_app.catalog import Catalog

    for name in ("get", "search"):
        real_method = getattr(Catalog, name)

        def method(self: Any, *a: Any, _real: Any = real_method, _name: str = name, **kw: Any) -> Any:
            rec.note(f"catalog:{_name}")
            return _real(self, *a, **kw)

        monkeypatch.setattr(Catalog, name, method)

    real_ctk_init = ctk.CTk.__init__

    def ctk_init(self: Any, *a: Any, **kw: Any) -> None:
        rec.tk_alive = True
        real_ctk_init(self, *a, **kw)

    monkeypatch.setattr(ctk.CTk, "__init__", ctk_init)
    yield rec


def test_scripted_session_runs_no_io_on_the_tk_thread(desk_app_factory: Any, fresh_hall_server: Any,
                                                      io_threads: IoRecorder) -> None:
    url = fresh_hall_server.url
    issue(url)
    app = open_desk(desk_app_factory, url)
    pump_until(app.root, lambda: app.core.catalog.count() > 100, what="the catalog synced")
    # Call, start, set the matter through the search dialog.
    press(app, "F1")
    pump_until(app.root, lambda: desk_state(app) == "calling", what="calling")
    press(app, "F7")
    pump_until(app.root, lambda: desk_state(app) == "serving" and app.desk.s.busy is None,
               what="serving")
    press(app, "F8")
    d = dialog(app)
    type_text(d.entry, "gtgshsl")
    pump_until(app.root, lambda: d.listbox.size() > 0 and "个体工商户设立登记" in d.listbox.get(0),
               what="search results")
    key_in(d.entry, "Return")
    pump_until(app.root, lambda: dialog_closed(app), what="the dialog closed")
    # The checklist is drawn from a matter looked up on a worker.
    tree = app.desk_view.checklist.tree
    pump_until(app.root, lambda: len(tree.get_children()) == 6, what="six materials")
    assert "个体工商户设立登记" in app.desk_view.matter_label.cget("text")
    # Materials, by key.
    first = tree.get_children()[0]
    tree.selection_set(first)
    key_in(tree, "Key-1")
    pump_until(app.root, lambda: tree.exists(first) and tree.item(first, "values")[2] == "已收取",
               what="marked received")
    # Complete (a required material is still unchecked: the completion guard wants a reason).
    press(app, "F9")
    d = dialog(app)
    d.override_entry.insert(0, "负责人同意")
    key_in(d.listbox, "Return")
    pump_until(app.root, lambda: desk_state(app) == "idle" and app.desk.s.busy is None,
               what="idle after completion")
    pump(app.root, 0.3)
    # Closing signs out and stops the core through the runner too.
    app.close()
    pump_until(app.root, lambda: app.closed, what="the window closed")

    kinds = io_threads.kinds()
    # The recorders saw the I/O they wrap, so an empty "bad" list below means something.
    assert {"sqlite", "http", "keyring", "catalog"} <= kinds, kinds
    assert any(k.startswith("http:POST") and "call-next" in k for k, _n, _b in io_threads.calls)
    assert io_threads.on_tk_thread() == []


def test_ticket_taken_by_another_window_is_said_calmly_and_the_next_is_called(
        desk_app_factory: Any, fresh_hall_server: Any) -> None:
    from api_client import HallClient

    url = fresh_hall_server.url
    app = open_desk(desk_app_factory, url)
    a = issue(url)
    b = issue(url)
    c = issue(url)
    q = app.desk_view.queue
    pump_until(app.root, lambda: len(q.row_ids()) == 3, what="three rows")
    # The clerk picks the second ticket to call it by name; the button says what Enter does.
    q.tree.selection_set(str(b["id"]))
    app.root.update()
    assert q.resume_button.cget("state") == "normal"
    assert q.resume_button.cget("text") == "立即呼叫选中的号 (Enter)"
    # Meanwhile window 2 takes exactly that ticket (the desk has not redrawn yet).
    other = HallClient(url)
    try:
        other.login("1002", PASSWORD, window_no=2)
        taken = other.call_ticket(int(b["id"]), 2)
        assert taken.number == b["number"]
    finally:
        other.close()
    q.resume_button.invoke()
    pump_until(app.root, lambda: desk_state(app) == "calling" and app.desk.s.busy is None,
               what="the desk calling again")
    # The next one in call order was called instead, and the message line says both, calmly.
    assert number_shown(app) == a["number"]
    text = notice(app)
    assert b["number"] in text and a["number"] in text and "其他窗口" in text, text
    assert app.desk_view.notice_kind == "info"
    assert app.desk_view.dialog is None
    pump_until(app.root, lambda: q.row_ids() == [str(c["id"])], what="only the third left waiting")
    screenshot(app.root, "desk_ticket_taken_zh")
