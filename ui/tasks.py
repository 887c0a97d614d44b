"""THE way the desk runs I/O: ``TaskRunner.run(op, on_success, on_error)``, and the dispatcher
that brings the core's events onto the Tk thread.

Why it looks like this:
- Two executors, as Anki's task manager has: one worker for SQLite writes (one writer only) and
  a small pool for HTTP. ``op`` runs there and returns data; widgets change only in the callbacks.
- The callbacks never leave the Tk thread. Workers put ``(task id, outcome)`` into one thread-safe
  queue; the callbacks wait in a dict owned by the Tk thread. So the last reference to a view's
  bound method is never dropped on a worker, where freeing a Tk object (a font's ``__del__``) can
  hang that worker.
- The hand-off: ``after(10)`` polling of that queue, measured in bench/bench_ui.py against a
  cross-thread ``event_generate("<<CounterWake>>", when="tail")`` wake-up. The wake-up is faster
  (sub-millisecond) but tkinter makes a worker wait up to a second, then raise, whenever the Tk
  thread is not inside ``mainloop()`` (tests pumping ``update()``, a modal ``wait_window``), and it
  is not reliable on every Tk build (Thonny polls for that reason). Polling every 10 ms keeps the
  p99 under 20 ms everywhere; "wake" mode stays available with a 50 ms safety poll.
- Draining is bounded per tick (time budget) so a burst of results cannot stall the event loop.
"""

from __future__ import annotations

import itertools
import logging
import queue
import sys
import threading
import time
import tkinter as tk
import traceback
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from counter_app.events import EventBus

log = logging.getLogger(__name__)

T = TypeVar("T")
E = TypeVar("E")  # an event type of counter_app.events
SuccessCallback = Callable[[Any], None]
ErrorCallback = Callable[[BaseException], None]

WAKE_EVENT = "<<CounterWake>>"


class TaskRunner:
    """Runs blocking operations off the Tk thread and their callbacks on it.

    ``run`` and ``post`` are Tk thread only (they register callbacks); ``call_soon`` may be used
    from any thread. Create it on the Tk thread after the root window exists.
    """

    def __init__(
        self,
        root: tk.Misc,
        *,
        mode: str = "poll",
        poll_ms: int = 10,
        http_workers: int = 4,
        drain_budget_ms: float = 8.0,
        default_error: ErrorCallback | None = None,
    ) -> None:
        if mode not in ("poll", "wake"):
            raise ValueError("mode must be 'poll' or 'wake'")
        self._root = root
        self._mode = mode
        self._poll_ms = poll_ms if mode == "poll" else 50
        self._budget_s = drain_budget_ms / 1000.0
        self._queue: queue.SimpleQueue[tuple[str, int, bool, Any]] = queue.SimpleQueue()
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ui-db")
        self._http = ThreadPoolExecutor(max_workers=http_workers, thread_name_prefix="ui-http")
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[SuccessCallback | None, ErrorCallback | None]] = {}
        self._calls: dict[int, Callable[[], None]] = {}
        self._after_id: str | None = None
        self._closed = False
        self._tk_thread = threading.get_ident()
        self.default_error = default_error
        self._waker: Callable[[], None] | None = _make_waker(root) if mode == "wake" else None
        if mode == "wake":
            root.bind(WAKE_EVENT, lambda _e: self._drain(reschedule=False), add="+")
        self._schedule()

    # -- Tk thread ---------------------------------------------------------------------------
    def run(
        self,
        op: Callable[[], T],
        on_success: Callable[[T], None] | None = None,
        on_error: ErrorCallback | None = None,
        *,
        kind: str = "http",
    ) -> int:
        """Run ``op()`` on a worker (``kind`` "http" pool or "db" single writer). Tk thread only.

        ``on_success(result)`` or ``on_error(exc)`` then runs on the Tk thread. ``op`` must not
        touch or capture widgets. Returns a task id.
        """
        if self._closed:
            raise RuntimeError("task runner is closed")
        task_id = next(self._ids)
        self._pending[task_id] = (on_success, on_error)
        executor = self._db if kind == "db" else self._http
        # The worker gets the queue and a weak wake-up, never ``self``: a worker holding the
        # last reference to the runner would free the Tk root on that thread.
        executor.submit(_work, self._queue, self._waker, task_id, op)
        return task_id

    @property
    def in_flight(self) -> int:
        """How many operations have not delivered their result yet."""
        return len(self._pending)

    def close(self, wait: bool = False) -> None:
        """Stop polling; ``wait`` joins the workers (tests), else HTTP timeouts are not awaited."""
        self._closed = True
        if self._after_id is not None:
            try:
                self._root.after_cancel(self._after_id)
            except tk.TclError:
                pass
            self._after_id = None
        self._db.shutdown(wait=wait, cancel_futures=True)
        self._http.shutdown(wait=wait, cancel_futures=True)
        self._pending.clear()

    def drain_now(self) -> None:
        """Deliver whatever is waiting now (used by tests and at shutdown). Tk thread only."""
        self._drain(reschedule=False)

    # -- any thread ----------------------------------------------------------------------------
    def call_soon(self, key: int, fn: Callable[[], None]) -> None:
        """Run ``fn()`` on the Tk thread soon (any thread). Used by the dispatcher."""
        self._queue.put(("call", key, True, fn))
        if self._waker is not None:
            self._waker()

    # -- Tk thread internals --------------------------------------------------------------------
    def _schedule(self) -> None:
        if not self._closed:
            self._after_id = self._root.after(self._poll_ms, self._tick)

    def _tick(self) -> None:
        self._after_id = None
        self._drain(reschedule=True)

    def _drain(self, *, reschedule: bool) -> None:
        deadline = time.perf_counter() + self._budget_s
        more = False
        while True:
            try:
                kind, key, ok, payload = self._queue.get_nowait()
            except queue.Empty:
                break
            if kind == "call":
                self._invoke(payload)
            else:
                callbacks = self._pending.pop(key, None)
                if callbacks is not None:
                    on_success, on_error = callbacks
                    if ok:
                        if on_success is not None:
                            self._invoke(on_success, payload)
                    else:
                        handler = on_error or self.default_error
                        if handler is not None:
                            self._invoke(handler, payload)
                        else:
                            log.error("unhandled task error", exc_info=payload)
            if time.perf_counter() > deadline:
                more = True
                break
        if self._closed:
            return
        if more:
            # Leave the rest for the next turn so drawing and input are not starved.
            if self._after_id is not None:
                self._root.after_cancel(self._after_id)
            self._after_id = self._root.after(1, self._tick)
        elif reschedule:
            self._schedule()

    def _invoke(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - one bad callback must not stop the dispatcher
            report = getattr(self._root, "report_callback_exception", None)
            if report is not None:
                report(*sys.exc_info())
            else:
                log.exception("callback failed")


class ViewRunner:
    """A runner for one screen: results reach its presenter only while the screen is open.

    A clerk may close a panel, or sign out, while its requests are still on a worker (a PDF being
    made, a queue refresh). The work itself finishes either way (a queued document stays queued);
    only drawing into the destroyed widgets would raise TclError ("invalid command name"), so
    callbacks that arrive after ``alive()`` turns false are dropped with a log line (an error
    that arrives then is logged in full, never lost).
    """

    def __init__(self, runner: TaskRunner, alive: Callable[[], bool], name: str) -> None:
        self._runner, self._alive, self._name = runner, alive, name

    def run(
        self,
        op: Callable[[], T],
        on_success: Callable[[T], None] | None = None,
        on_error: ErrorCallback | None = None,
        *,
        kind: str = "http",
    ) -> int:
        def ok(result: T) -> None:
            if self._alive():
                if on_success is not None:
                    on_success(result)
            else:
                log.info("%s closed before its task finished; result not drawn", self._name)

        def failed(exc: BaseException) -> None:
            if self._alive():
                if on_error is not None:
                    on_error(exc)
                elif self._runner.default_error is not None:
                    self._runner.default_error(exc)
                else:
                    log.error("unhandled task error", exc_info=exc)
            else:
                log.warning("%s closed before its task failed: %s", self._name, exc,
                            exc_info=(type(exc), exc, exc.__traceback__))

        return self._runner.run(op, ok, failed, kind=kind)


def widget_alive(widget: tk.Misc) -> Callable[[], bool]:
    """True while ``widget`` exists (a destroyed Tk widget answers winfo_exists() == 0)."""
    ref = weakref.ref(widget)

    def alive() -> bool:
        w = ref()
        try:
            return bool(w is not None and w.winfo_exists())
        except tk.TclError:  # the interpreter itself is gone
            return False

    return alive


def _make_waker(root: tk.Misc) -> Callable[[], None]:
    ref = weakref.ref(root)

    def wake() -> None:
        target = ref()
        if target is None:
            return
        try:
            target.event_generate(WAKE_EVENT, when="tail")
        except (RuntimeError, tk.TclError):
            pass  # not in mainloop, or closing: the safety poll delivers it
        finally:
            del target

    return wake


def _work(out: queue.SimpleQueue[tuple[str, int, bool, Any]], wake: Callable[[], None] | None,
          task_id: int, op: Callable[[], Any]) -> None:
    """Worker side (any thread): run ``op`` and hand the outcome to the Tk thread."""
    try:
        result = op()
    except BaseException as exc:  # noqa: BLE001 - delivered to on_error on the Tk thread
        out.put(("task", task_id, False, exc))
    else:
        out.put(("task", task_id, True, result))
    del op
    if wake is not None:
        wake()


class UiDispatcher:
    """Subscribes to the core's EventBus and runs UI handlers for its events on the Tk thread.

    ``subscribe`` (Tk thread) returns an unsubscribe function; views call it when destroyed
    (``bind_to_widget`` does that for them). Handlers live only on the Tk thread.
    """

    def __init__(self, runner: TaskRunner, bus: EventBus) -> None:
        self._runner = runner
        # Handlers of different event types share this table; `subscribe` keeps each typed.
        self._handlers: dict[type, list[Callable[[Any], None]]] = {}
        self._bus_unsubscribe: Callable[[], None] = bus.subscribe(None, self._on_bus_event)
        self.delivered = 0

    def _on_bus_event(self, event: object) -> None:  # any thread
        self._runner.call_soon(0, lambda: self._deliver(event))

    def _deliver(self, event: object) -> None:  # Tk thread
        self.delivered += 1
        for event_type, handlers in list(self._handlers.items()):
            if isinstance(event, event_type):
                for handler in list(handlers):
                    handler(event)

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> Callable[[], None]:
        """Run ``handler(event)`` on the Tk thread for every event of that type. Tk thread."""
        self._handlers.setdefault(event_type, []).append(handler)

        def unsubscribe() -> None:
            handlers = self._handlers.get(event_type, [])
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    def bind_to_widget(self, widget: tk.Misc, event_type: type[E],
                       handler: Callable[[E], None]) -> None:
        """Subscribe for as long as ``widget`` lives."""
        on_destroy(widget, self.subscribe(event_type, handler))

    def handler_count(self) -> int:
        return sum(len(h) for h in self._handlers.values())

    def close(self) -> None:
        self._bus_unsubscribe()
        self._handlers.clear()


def on_destroy(widget: tk.Misc, fn: Callable[[], None]) -> None:
    """Call ``fn()`` once when ``widget`` itself is destroyed. Tk thread only.

    Binds through ``tk.Misc.bind``: a CTk widget's own ``bind`` goes to its inner canvas, whose
    Destroy event would not name the widget.
    """
    done = False

    def handler(e: tk.Event[tk.Misc]) -> None:
        nonlocal done
        if not done and str(e.widget) == str(widget):
            done = True
            fn()

    tk.Misc.bind(widget, "<Destroy>", handler, "+")


def install_error_handler(
    root: tk.Tk, log_dir: Path | str | None, show: Callable[[str], None]
) -> None:
    """Route uncaught Tk callback errors to the log (with traceback) and a short message."""

    def report(exc: type[BaseException], val: BaseException, tb: TracebackType | None) -> None:
        log.error("uncaught error in a Tk callback:\n%s", "".join(traceback.format_exception(exc, val, tb)))
        from ui.i18n import _

        where = str(log_dir) if log_dir else "-"
        try:
            show(_("Something went wrong. The details are in the log: {where}").format(where=where))
        except Exception:  # noqa: BLE001 - the reporter itself must never raise
            log.exception("could not show the error message")

    root.report_callback_exception = report
