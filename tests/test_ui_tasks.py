"""The task runner and the dispatcher on a real Tk root: results and events arrive on the Tk
thread, errors reach on_error, the SQLite lane is one thread, handlers go away with their view,
and an uncaught callback error is logged with its traceback and shown shortly.
"""

from __future__ import annotations

import logging
import threading
import tkinter as tk
from typing import Any

import pytest

from counter_app.events import EventBus, QueueChanged
from tests.support.gui_fixtures import pump_until, teardown_root
from ui.tasks import TaskRunner, UiDispatcher, install_error_handler

pytestmark = pytest.mark.gui


@pytest.fixture
def root() -> Any:
    r = tk.Tk()
    yield r
    teardown_root(r)


@pytest.mark.parametrize("mode", ["poll", "wake"])
def test_results_and_errors_come_back_on_the_tk_thread(root: Any, mode: str) -> None:
    runner = TaskRunner(root, mode=mode)
    tk_thread = threading.get_ident()
    seen: list[tuple[str, Any, int]] = []
    runner.run(lambda: threading.get_ident(), lambda r: seen.append(("ok", r, threading.get_ident())))
    runner.run(lambda: 1 / 0, None, lambda e: seen.append(("err", type(e).__name__, threading.get_ident())))
    if mode == "wake":
        # The wake-up is meant for a running mainloop (tkinter makes a worker wait for one).
        def check() -> None:
            if len(seen) == 2:
                root.quit()
            else:
                root.after(5, check)

        root.after(5, check)
        root.after(30000, root.quit)
        root.mainloop()
    else:
        pump_until(root, lambda: len(seen) == 2, what="both callbacks")
    ok = next(s for s in seen if s[0] == "ok")
    err = next(s for s in seen if s[0] == "err")
    assert ok[1] != tk_thread and ok[2] == tk_thread
    assert err[1] == "ZeroDivisionError" and err[2] == tk_thread
    assert runner.in_flight == 0
    runner.close(wait=True)


def test_db_lane_is_a_single_writer(root: Any) -> None:
    runner = TaskRunner(root)
    threads: set[int] = set()
    done: list[int] = []
    for i in range(20):
        runner.run(lambda: threads.add(threading.get_ident()), lambda _r, i=i: done.append(i), kind="db")
    pump_until(root, lambda: len(done) == 20, what="twenty db tasks")
    assert len(threads) == 1 and done == list(range(20))  # one thread, in order
    runner.close()


def test_dispatcher_marshals_bus_events_and_unsubscribes_with_the_widget(root: Any) -> None:
    runner = TaskRunner(root)
    bus = EventBus()
    dispatcher = UiDispatcher(runner, bus)
    frame = tk.Frame(root)
    got: list[tuple[Any, int]] = []
    dispatcher.bind_to_widget(frame, QueueChanged, lambda e: got.append((e, threading.get_ident())))
    t = threading.Thread(target=lambda: bus.publish(QueueChanged(snapshot="snap")))  # type: ignore[arg-type]
    t.start()
    t.join()
    pump_until(root, lambda: got, what="the event on the Tk thread")
    assert got[0][0].snapshot == "snap" and got[0][1] == threading.get_ident()
    assert dispatcher.handler_count() == 1
    frame.destroy()
    root.update()
    assert dispatcher.handler_count() == 0
    dispatcher.close()
    runner.close()


def test_uncaught_callback_error_is_logged_and_shown(root: Any, caplog: pytest.LogCaptureFixture, tmp_path: Any) -> None:
    shown: list[str] = []
    install_error_handler(root, tmp_path, shown.append)
    runner = TaskRunner(root)

    def broken(_r: Any) -> None:
        raise KeyError("boom")

    with caplog.at_level(logging.ERROR):
        runner.run(lambda: 1, broken)
        pump_until(root, lambda: shown, what="the short message")
    assert str(tmp_path) in shown[0]
    assert "KeyError" in caplog.text and "Traceback" in caplog.text
    runner.close()


def test_a_screens_results_are_dropped_once_it_is_destroyed(root: Any,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """The desk, sign-in and capture screens get a ViewRunner: work started before the clerk
    closed the screen (or signed out) still runs, but its result is not drawn into destroyed
    widgets; a failure that arrives then is logged, not lost."""
    from ui.tasks import ViewRunner, widget_alive

    runner = TaskRunner(root)
    frame = tk.Frame(root)
    label = tk.Label(frame)
    view = ViewRunner(runner, widget_alive(frame), "the test screen")
    release = threading.Event()
    ran: list[str] = []
    drawn: list[str] = []

    def slow(tag: str) -> str:
        release.wait(10)
        ran.append(tag)
        return tag

    view.run(lambda: "early", lambda r: drawn.append(r))
    pump_until(root, lambda: drawn == ["early"], what="the result while the screen is open")
    view.run(lambda: slow("late"), lambda r: label.configure(text=r))
    view.run(lambda: slow("boom") and 1 / 0, None, lambda e: label.configure(text=str(e)))
    frame.destroy()
    release.set()
    pump_until(root, lambda: runner.in_flight == 0, what="both tasks")
    assert sorted(ran) == ["boom", "late"]  # the work itself was done
    assert not any("uncaught error" in r.getMessage() for r in caplog.records)
    warned = [r for r in caplog.records if "closed before its task failed" in r.getMessage()]
    assert warned and warned[0].exc_info is not None
    runner.close()
