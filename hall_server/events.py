"""Live events: an in-process broadcast to asyncio queues, SSE with ids and Last-Event-ID
replay from the `events` table, and PostgreSQL LISTEN/NOTIFY fan-out between processes.

Each event row is written in the same transaction as the change it reports. On SQLite the
single writer publishes right after COMMIT; on PostgreSQL the transaction NOTIFYs the event id
and a LISTEN thread in every server process loads and publishes it, so all workers see all
events whichever process committed them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
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
        r["target_window_no"], json.loads(r["data"]),
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
    data = json.dumps(ev.data, ensure_ascii=False, separators=(",", ":"))
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
                backlog = await store.read(lambda c, s=sent: load_events_after(c, s))
                for ev in backlog:
                    if sub.wants(ev):
                        yield format_event(ev)
                    sent = max(sent, ev.id)
                if len(backlog) < 5000:
                    break
        while True:
            try:
                ev = await asyncio.wait_for(sub.queue.get(), timeout=ping_seconds)
            except TimeoutError:
                if still_allowed is not None and not await still_allowed():
                    return
                yield b": ping\n\n"
                continue
            batch: list[PendingEvent | None] = [ev]
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


class PgListener:
    """LISTEN hall_events on its own connection; publish each notified event id."""

    def __init__(self, url: str, store: Store, broker: Broker) -> None:
        self.url = url
        self.store = store
        self.broker = broker
        self._stop = threading.Event()
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.ready.wait(10)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        import psycopg

        dsn = self.url.replace("postgresql+psycopg://", "postgresql://")
        while not self._stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.ready.set()
                    while not self._stop.is_set():
                        ids = [int(n.payload) for n in conn.notifies(timeout=0.5, stop_after=200)]
                        if not ids:
                            continue
                        evs = self.store.read_sync(lambda c, ids=ids: load_events_by_ids(c, ids))
                        if evs:
                            self.broker.publish_threadsafe(evs)
            except Exception:  # noqa: BLE001 - reconnect on any failure
                log.exception("LISTEN connection failed; retrying")
                self._stop.wait(1.0)
