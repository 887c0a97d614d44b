"""Live events: an in-process broadcast to asyncio queues, SSE with ids and Last-Event-ID
replay from the `events` table, and PostgreSQL LISTEN/NOTIFY fan-out between processes.

Each event row is written in the same transaction as the change it reports, and event ids
follow COMMIT order with no holes on both engines (hall_server/db.py): any snapshot of the
table holds a prefix of the log. So "send what is after the highest id sent" never passes over
an event that commits later, and `Last-Event-ID: N` replays exactly the events after N.

On SQLite the single writer publishes right after COMMIT. On PostgreSQL each transaction
NOTIFYs at COMMIT; the NOTIFY is only a wake-up: the LISTEN thread of every server process
reads `id > last published` and publishes that, so a lost notification (LISTEN connection
dropped, PostgreSQL restarted) delays events but never loses them; it also polls every
`POLL_SECONDS` as a safety net.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from hall_server import schema as t
from hall_server.db import NOTIFY_CHANNEL, PendingEvent, Store

log = logging.getLogger("hall_server.events")


@dataclass(eq=False)  # identity hash: kept in a set
class Subscriber:
    queue: asyncio.Queue[PendingEvent | None]
    window_no: int | None
    categories: set[str]

    def wants(self, ev: PendingEvent) -> bool:
        w = self.window_no
        if w is None:
            return True
        if ev.window_no == w or ev.target_window_no == w:
            if ev.type.startswith("window.") and "window" in ev.data:
                self.categories = set(ev.data["window"].get("categories", []))
            return True
        if ev.type.startswith("window."):
            return False
        return ev.category is not None and ev.category in self.categories and ev.target_window_no is None


class Broker:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.subscribers: set[Subscriber] = set()

    def publish_threadsafe(self, events: list[PendingEvent]) -> None:
        try:
            self.loop.call_soon_threadsafe(self._publish, events)
        except RuntimeError:  # loop closed at shutdown
            pass

    def _publish(self, events: list[PendingEvent]) -> None:
        for sub in list(self.subscribers):
            for ev in events:
                if sub.wants(ev):
                    if sub.queue.qsize() > 10000:
                        # A stuck client: end its stream; it reconnects with Last-Event-ID.
                        sub.queue.put_nowait(None)
                        self.subscribers.discard(sub)
                        break
                    sub.queue.put_nowait(ev)

    def subscribe(self, window_no: int | None, categories: set[str]) -> Subscriber:
        sub = Subscriber(asyncio.Queue(), window_no, categories)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)


def row_to_event(r: Any) -> PendingEvent:
    return PendingEvent(
        int(r["id"]), r["type"], int(r["at_ms"]), r["window_no"], r["category"],
        r["target_window_no"], json.loads(r["data"]), raw=r["data"],
    )


def load_events_after(conn: Connection, after: int, limit: int = 5000) -> list[PendingEvent]:
    rows = conn.execute(
        select(t.events).where(t.events.c.id > after).order_by(t.events.c.id).limit(limit)
    ).mappings()
    return [row_to_event(r) for r in rows]


def load_events_by_ids(conn: Connection, ids: list[int]) -> list[PendingEvent]:
    rows = conn.execute(
        select(t.events).where(t.events.c.id.in_(ids)).order_by(t.events.c.id)
    ).mappings()
    return [row_to_event(r) for r in rows]


def format_event(ev: PendingEvent) -> bytes:
    # The stored JSON text when we have it (the same compact UTF-8 JSON): not one json.dumps
    # per event per subscriber.
    data = ev.raw if ev.raw is not None else json.dumps(ev.data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {ev.id}\nevent: {ev.type}\ndata: {data}\n\n".encode()


async def stream(
    store: Store,
    broker: Broker,
    window_no: int | None,
    categories: set[str],
    last_event_id: int | None,
    ping_seconds: float,
    still_allowed: Callable[[], Awaitable[bool]] | None = None,
) -> AsyncIterator[bytes]:
    """`still_allowed` is asked on every batch of events and every ping: when it answers False
    (the session was signed out or disabled) the stream ends."""
    # Subscribe before reading the backlog so nothing falls between the two; duplicates are
    # dropped by id.
    sub = broker.subscribe(window_no, categories)
    try:
        sent = last_event_id if last_event_id is not None else -1
        yield b"retry: 2000\n\n"
        if last_event_id is not None:
            while True:
                backlog = await store.read(functools.partial(load_events_after, after=sent))
                for ev in backlog:
                    if sub.wants(ev):
                        yield format_event(ev)
                    sent = max(sent, ev.id)
                if len(backlog) < 5000:
                    break
        while True:
            try:
                live = await asyncio.wait_for(sub.queue.get(), timeout=ping_seconds)
            except TimeoutError:
                if still_allowed is not None and not await still_allowed():
                    return
                yield b": ping\n\n"
                continue
            batch: list[PendingEvent | None] = [live]
            while not sub.queue.empty() and batch[-1] is not None:
                batch.append(sub.queue.get_nowait())
            if still_allowed is not None and not await still_allowed():
                return
            for item in batch:
                if item is None:
                    return
                if item.id <= sent:
                    continue
                sent = item.id
                yield format_event(item)
    finally:
        broker.unsubscribe(sub)


def parse_notify(payload: str) -> tuple[int, list[PendingEvent] | None]:
    """`last_id` or `last_id:n:[[type, at_ms, window_no, category, target_window_no, data], ...]`
    -> (last id, the events with their ids, or None when they were too big to carry)."""
    head, _, rest = payload.partition(":")
    try:
        last = int(head)
        if not rest:
            return last, None
        n_s, _, blob = rest.partition(":")
        n = int(n_s)
        rows = json.loads(blob)
    except ValueError:  # not ours: read the table to be safe
        return 1 << 62, None
    first = last - n + 1
    return last, [PendingEvent(first + i, r[0], int(r[1]), r[2], r[3], r[4], json.loads(r[5]), raw=r[5])
                  for i, r in enumerate(rows)]


class PgListener:
    """LISTEN hall_events on its own connection; publish every committed event in id order."""

    POLL_SECONDS = 2.0

    def __init__(self, url: str, store: Store, broker: Broker) -> None:
        self.url = url
        self.store = store
        self.broker = broker
        self.naive = store.naive_events
        self._stop = threading.Event()
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)
        self.last_published = -1  # unknown until the first read of the counter

    def start(self) -> None:
        self._thread.start()
        self.ready.wait(10)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    # Under load, one read per this many seconds at most: each read covers every event
    # committed since the last one (the first NOTIFY after a quiet spell is read at once).
    MIN_READ_INTERVAL = 0.01
    _CATCH_UP_SQL = (
        "SELECT id, type, at_ms, window_no, category, target_window_no, data FROM events "
        "WHERE id > %s ORDER BY id LIMIT 5000"
    )

    def _catch_up(self, conn: Any) -> None:
        """Publish every event after the last one published (a prefix of the log, in order).
        Read on the LISTEN connection itself: no pool checkout, no pre-ping round trip."""
        while True:
            after = self.last_published
            rows = conn.execute(self._CATCH_UP_SQL, (after,)).fetchall()
            if not rows:
                return
            evs = [PendingEvent(int(r[0]), r[1], int(r[2]), r[3], r[4], r[5], json.loads(r[6]), raw=r[6])
                   for r in rows]
            if evs[0].id != after + 1:
                # Only pruning (24 h) can remove ids after one we published: worth a line.
                log.warning("event log: ids %d..%d missing (pruned?)", after + 1, evs[0].id - 1)
            self.last_published = evs[-1].id
            self.broker.publish_threadsafe(evs)
            if len(rows) < 5000:
                return

    def _run(self) -> None:
        import psycopg

        dsn = self.url.replace("postgresql+psycopg://", "postgresql://")
        while not self._stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    if self.last_published < 0:
                        row = conn.execute("SELECT last_id FROM event_counter WHERE id = 1").fetchone()
                        self.last_published = int(row[0]) if row else 0
                    if not self.naive:
                        # Listening again after a failure: whatever committed meanwhile.
                        self._catch_up(conn)
                    self.ready.set()
                    idle = 0.0
                    last_read = 0.0
                    while not self._stop.is_set():
                        if self.naive:
                            # (the old loop: collects for up to 0.5 s before publishing)
                            self._naive_publish([int(n.payload.partition(":")[0])
                                                 for n in conn.notifies(timeout=0.5, stop_after=200)])
                            continue
                        # Wake on the FIRST notification (collecting a batch for 0.5 s held
                        # every event back that long), then take what else arrives within
                        # MIN_READ_INTERVAL of the previous read: one read of `id > last
                        # published` covers them all.
                        notes = [n.payload for n in conn.notifies(timeout=0.5, stop_after=1)]
                        if notes:
                            idle = 0.0
                            if self._publish_notified(notes):
                                continue
                            # A gap (a NOTIFY too big to carry its events, or one lost): read.
                            wait = last_read + self.MIN_READ_INTERVAL - time.monotonic()
                            notes = [n.payload for n in conn.notifies(timeout=max(0.0, wait))]
                            self._publish_notified(notes)  # (what it covers is skipped below)
                            last_read = time.monotonic()
                            self._catch_up(conn)
                            continue
                        idle += 0.5
                        if idle >= self.POLL_SECONDS:
                            idle = 0.0
                            self._catch_up(conn)  # also shows a dead LISTEN connection
            except Exception:  # noqa: BLE001 - reconnect on any failure
                log.exception("LISTEN connection failed; retrying")
                self._stop.wait(1.0)

    def _publish_notified(self, notes: list[str]) -> bool:
        """Publish events carried by NOTIFYs (they arrive in commit order, which is id order)
        while they continue the published prefix exactly. False when a read is needed."""
        for payload in notes:
            last, evs = parse_notify(payload)
            if last <= self.last_published:
                continue  # already published (by a read that covered it)
            if evs is None or evs[0].id != self.last_published + 1:
                return False
            self.last_published = last
            self.broker.publish_threadsafe(evs)
        return True

    def _naive_publish(self, ids: list[int]) -> None:
        """The old reader, kept only as the tests' naive control (HALL_TEST_NAIVE_EVENTS=1):
        publish the notified ids as they arrive, which is not id order."""
        if not ids:
            return
        evs = self.store.read_sync(functools.partial(load_events_by_ids, ids=ids))
        if evs:
            self.broker.publish_threadsafe(evs)
