"""The live queue of this window: Server-Sent Events with a polling fallback.

One daemon thread follows `client.events(window_no)` (the EventStream reconnects by itself with
`Last-Event-ID`); each event that concerns the queue marks the snapshot dirty and a second daemon
thread fetches a fresh one (`client.queue`, cheap), so the UI always draws the server's own list
rather than patching it. While the stream is not connected that thread polls every few seconds,
so the queue keeps moving through a proxy that kills long requests. Publishes QueueChanged, ConnectionChanged
("online" | "reconnecting" | "polling" | "offline") and TicketArrivedInEmptyQueue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from counter_app.errors import OfflineError, from_api
from counter_app.events import ConnectionChanged, EventBus, QueueChanged, TicketArrivedInEmptyQueue

if TYPE_CHECKING:
    from api_client import HallClient
    from api_client.models import QueueSnapshot

log = logging.getLogger(__name__)

# Window events change what the desk may do; catalog events do not touch the queue.
_IGNORED_TYPES = frozenset({"catalog.updated"})


class LiveQueue:
    """Keeps `.snapshot` current and tells the bus. `start()`/`stop()` from any thread."""

    def __init__(self, client: HallClient, bus: EventBus, window_no: int, *,
                 poll_interval_s: float = 3.0, retry_interval_s: float = 2.0) -> None:
        self._client = client
        self._bus = bus
        self.window_no = window_no
        self.poll_interval_s = poll_interval_s
        self.retry_interval_s = retry_interval_s
        self._snapshot: QueueSnapshot | None = None
        self._refresh_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._stream_connected = False
        self._conn_state = ""
        self._stop = threading.Event()
        self._dirty = threading.Event()
        self._stream: Any = None
        self._threads: list[threading.Thread] = []
        self.last_event_id: str | None = None
        self.events_seen = 0
        # Called with (snapshot, monotonic time the request was sent) before QueueChanged is
        # published: the desk adopts changes made elsewhere (a supervisor's pause, a restart).
        self.on_snapshot: list[Callable[[QueueSnapshot, float], None]] = []

    @property
    def snapshot(self) -> QueueSnapshot | None:
        return self._snapshot

    @property
    def connection_state(self) -> str:
        return self._conn_state

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self.running:
            return
        self._stop = threading.Event()
        self._dirty = threading.Event()
        self._threads = [
            threading.Thread(target=self._stream_loop, name="live-sse", daemon=True),
            threading.Thread(target=self._refresh_loop, name="live-refresh", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._dirty.set()
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception:
                log.debug("closing the event stream failed", exc_info=True)
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout)
        self._threads = []
        self._stream_connected = False

    # -- snapshot ----------------------------------------------------------------------------
    def refresh(self) -> QueueSnapshot:
        """Fetch the snapshot now and publish it (any thread; serialised so order is kept)."""
        with self._refresh_lock:
            requested_at = time.monotonic()
            try:
                snap = self._client.queue(self.window_no)
            except Exception as exc:
                raise from_api(exc) from exc
            prev = self._snapshot
            self._snapshot = snap
            for hook in list(self.on_snapshot):
                try:
                    hook(snap, requested_at)
                except Exception:
                    log.exception("snapshot hook failed")
        self._bus.publish(QueueChanged(snap))
        if prev is not None and not prev.waiting and snap.waiting:
            self._bus.publish(TicketArrivedInEmptyQueue(snap.waiting[0]))
        return snap

    def _set_connection(self, state: str, detail: str = "") -> None:
        with self._state_lock:
            if state == self._conn_state:
                return
            self._conn_state = state
        log.info("live queue connection: %s %s", state, detail)
        self._bus.publish(ConnectionChanged(state, detail))

    # -- threads -----------------------------------------------------------------------------
    def _on_stream_state(self, state: str) -> None:
        if state == "connected":
            self._stream_connected = True
            self._set_connection("online")
            # Catch whatever happened while we were away (cheaper than trusting replay alone).
            self._dirty.set()
        elif state in ("connecting", "disconnected"):
            was = self._stream_connected
            self._stream_connected = False
            if was or not self._conn_state:
                self._set_connection("reconnecting", state)

    def _refresh_quietly(self) -> bool:
        try:
            self.refresh()
            return True
        except OfflineError as err:
            self._set_connection("offline", err.message_en)
        except Exception as exc:
            log.warning("queue refresh failed: %s", from_api(exc))
        return False

    def _stream_loop(self) -> None:
        while not self._stop.is_set():
            try:
                stream = self._client.events(self.window_no, last_event_id=self.last_event_id)
                stream.on_state = self._on_stream_state
                self._stream = stream
                if self._stop.is_set():
                    stream.close()
                    break
                for ev in stream:
                    if self._stop.is_set():
                        break
                    self.last_event_id = ev.id
                    self.events_seen += 1
                    if not self._stream_connected:
                        # Getting an event proves the stream is up even if on_state was missed.
                        self._on_stream_state("connected")
                    if ev.type not in _IGNORED_TYPES:
                        self._dirty.set()
            except Exception as exc:
                log.warning("event stream failed: %s", from_api(exc))
            self._stream_connected = False
            if not self._stop.is_set():
                self._set_connection("reconnecting", "stream ended")
                self._stop.wait(self.retry_interval_s)

    def _refresh_loop(self) -> None:
        # Snapshots are fetched here, never on the SSE thread: the stream is read without pauses,
        # a burst of events costs one fetch, and (requests keeping one session per thread) the
        # stream's connections carry nothing but /events.
        self._refresh_quietly()
        while not self._stop.is_set():
            triggered = self._dirty.wait(self.poll_interval_s)
            if self._stop.is_set():
                break
            self._dirty.clear()
            if not triggered and self._stream_connected:
                continue
            ok = self._refresh_quietly()
            if ok and not triggered and not self._stream_connected:
                # Polling fallback: the stream is down but the server answers.
                self._set_connection("polling", "event stream unavailable")

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        """Block until predicate(snapshot) holds (helper for scripts and checks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            snap = self._snapshot
            if snap is not None and predicate(snap):
                return True
            time.sleep(0.05)
        return False
