"""Test-only scripted clerk: the few desk inputs the frozen-build suite cannot send as X keys.

The frozen-build suite (tests/test_frozen_clerk.py) drives the FROZEN desk with real X key
events (xdotool): sign-in, F1/F7/F8/F9, typing the pinyin, Enter. Two inputs have no reliable
key path from outside the process: the checklist's 1-5 keys need the materials list to hold the
keyboard focus (a clerk clicks a row; where Tab lands depends on the layout), and the capture
panel is mouse-only (its buttons). For those, with ``COUNTER_TEST_CLERK=<fifo path>`` set, the
desk reads one command per line from that FIFO and performs exactly what the click or key does
inside Tk, so the same bindings, presenters and core run as for the clerk's hand:

    key checklist <1-5>   focus the materials list, send the digit key (its <Key-n> binding)
    click capture         the desk's "Capture / scan" button (button.invoke(), as a click)
    click scan|finish|close   the capture panel's buttons

Unset (always, outside tests) nothing is read and nothing changes. The FIFO is read on a worker
thread (the Tk thread never waits on I/O); commands are run from a Tk ``after`` poll. An unknown
or impossible command is logged (``clerk script:``) and skipped.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from typing import Any

log = logging.getLogger(__name__)

ENV = "COUNTER_TEST_CLERK"
POLL_MS = 50


def _read(path: str, inbox: queue.Queue[str]) -> None:
    """Worker: every line written to the FIFO (re-opened after each writer closes it)."""
    while True:
        try:
            with open(path, encoding="utf-8") as fifo:
                for line in fifo:
                    if line.strip():
                        inbox.put(line.strip())
        except OSError as exc:
            log.error("clerk script: cannot read %s: %s", path, exc)
            return


def _button(app: Any, name: str) -> Any:
    if name == "capture":
        return app.desk_view.capture_button if app.desk_view is not None else None
    win = getattr(app, "capture_window", None)
    if win is None or win.closed:
        return None
    return {"scan": win.capture_button, "finish": win.finish_button,
            "close": win.close_button}.get(name)


def _run(app: Any, command: str) -> None:
    words = command.split()
    log.info("clerk script: %s", command)
    if words[:2] == ["key", "checklist"] and len(words) == 3 and words[2] in "12345":
        if app.desk_view is None:
            raise LookupError("no desk on screen")
        tree = app.desk_view.checklist.tree
        tree.focus_force()
        tree.event_generate(f"<Key-{words[2]}>", when="tail")
        return
    if words[0] == "click" and len(words) == 2:
        button = _button(app, words[1])
        if button is None:
            raise LookupError(f"no {words[1]} button on screen")
        button.invoke()
        return
    raise ValueError("unknown command")


def attach(app: Any) -> bool:
    """Start reading commands if COUNTER_TEST_CLERK names a FIFO; True when attached."""
    path = os.environ.get(ENV, "")
    if not path:
        return False
    inbox: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read, args=(path, inbox), name="clerk-script", daemon=True).start()
    log.warning("clerk script: test-only input from %s is ON", path)

    def poll() -> None:
        while True:
            try:
                command = inbox.get_nowait()
            except queue.Empty:
                break
            try:
                _run(app, command)
            except Exception as exc:  # a test's wrong command must not take the desk down
                log.error("clerk script: %r failed: %s", command, exc)
        app.root.after(POLL_MS, poll)

    app.root.after(POLL_MS, poll)
    return True
