"""Database access: engines, the single SQLite writer, transactions with events, migrations.

SQLite (default): WAL, synchronous=FULL, and ONE writer thread that opens every write
transaction with BEGIN IMMEDIATE, so writes are serialised and call-next cannot race itself.
Readers use a small pool of their own connections (WAL lets them read while the writer writes).
PostgreSQL: every write runs on a worker thread in its own transaction; hot rows are taken with
`SELECT ... FOR UPDATE [SKIP LOCKED]`; events are published with NOTIFY and fanned out by a
LISTEN thread in every server process (see events.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.pool import NullPool

from hall_server import schema

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
NOTIFY_CHANNEL = "hall_events"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class PendingEvent:
    id: int
    type: str
    at_ms: int
    window_no: int | None
    category: str | None
    target_window_no: int | None
    data: dict[str, Any]


@dataclass
class Tx:
    """One write transaction: the connection plus the events to publish after COMMIT."""

    conn: Connection
    is_pg: bool
    events: list[PendingEvent] = field(default_factory=list)

    def emit(
        self,
        type_: str,
        data: dict[str, Any],
        *,
        window_no: int | None = None,
        category: str | None = None,
        target_window_no: int | None = None,
    ) -> None:
        at = now_ms()
        payload = {"type": type_, "at": iso_ms(at), **data}
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        row = self.conn.execute(
            schema.events.insert()
            .values(
                type=type_,
                at_ms=at,
                window_no=window_no,
                category=category,
                target_window_no=target_window_no,
                data=body,
            )
            .returning(schema.events.c.id)
        ).scalar_one()
        ev = PendingEvent(int(row), type_, at, window_no, category, target_window_no, payload)
        self.events.append(ev)
        if self.is_pg:
            # Delivered to every LISTENing process at COMMIT, never if we roll back.
            self.conn.execute(
                text("SELECT pg_notify(:ch, :p)"), {"ch": NOTIFY_CHANNEL, "p": str(ev.id)}
            )


def iso_ms(ms: int | None) -> str | None:
    if ms is None:
        return None
    t = time.gmtime(ms / 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{ms % 1000:03d}Z"


class Store:
    """Owns the engines and runs reads and writes off the event loop."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.is_pg = url.startswith("postgresql")
        self.kind = "sqlite" if self.is_sqlite else ("postgresql" if self.is_pg else "other")
        self.on_commit: Callable[[list[PendingEvent]], None] | None = None
        if self.is_sqlite:
            self.engine = self._sqlite_engine(url, immediate=True, pool_size=1)
            self.read_engine = self._sqlite_engine(url, immediate=False, pool_size=8)
            self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
            self._wconn: Connection | None = None
        else:
            self.engine = create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)
            self.read_engine = self.engine
            self._writer = None
        self._readers = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="db-reader")

    @staticmethod
    def _sqlite_engine(url: str, *, immediate: bool, pool_size: int) -> Engine:
        eng = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=0 if immediate else 8,
            connect_args={"check_same_thread": False, "timeout": 30},
        )

        @event.listens_for(eng, "connect")
        def _connect(dbapi_conn: Any, _rec: Any) -> None:
            # Let us issue BEGIN ourselves (pysqlite's implicit BEGIN is DEFERRED).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        begin_sql = "BEGIN IMMEDIATE" if immediate else "BEGIN"

        @event.listens_for(eng, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql(begin_sql)

        return eng

    # ---- writes ---------------------------------------------------------------------------
    def write_sync(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` in one write transaction on the calling thread (CLI, seeding, writer)."""
        if self.is_sqlite and threading.current_thread().name.startswith("sqlite-writer"):
            if self._wconn is None:
                self._wconn = self.engine.connect()
            return self._run(self._wconn, fn)
        with self.engine.connect() as conn:
            return self._run(conn, fn)

    def _run(self, conn: Connection, fn: Callable[[Tx], T]) -> T:
        tx = Tx(conn, self.is_pg)
        with conn.begin():
            result = fn(tx)
        if tx.events and self.on_commit is not None and not self.is_pg:
            self.on_commit(tx.events)
        return result

    async def write(self, fn: Callable[[Tx], T]) -> T:
        if self._writer is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._writer, self.write_sync, fn)
        return await anyio.to_thread.run_sync(self.write_sync, fn)

    # ---- reads ----------------------------------------------------------------------------
    def read_sync(self, fn: Callable[[Connection], T]) -> T:
        with self.read_engine.connect() as conn:
            if self.is_sqlite:
                # One snapshot for the whole read (WAL).
                with conn.begin():
                    return fn(conn)
            return fn(conn)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self.read_sync, fn)

    # ---- lifecycle ------------------------------------------------------------------------
    def migrate(self) -> None:
        upgrade(self.url)

    def close(self) -> None:
        if self._writer is not None:
            def _close() -> None:
                if self._wconn is not None:
                    self._wconn.close()
                    self._wconn = None
            self._writer.submit(_close).result()
            self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=False)
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Alembic `upgrade head` on `url` (creates the schema on an empty database)."""
    from alembic import command

    if url.startswith("sqlite"):
        # WAL is a property of the file: set it once before Alembic's own engine touches it.
        eng = create_engine(url, poolclass=NullPool)
        with eng.connect() as c:
            c.exec_driver_sql("PRAGMA journal_mode=WAL")
        eng.dispose()
    command.upgrade(alembic_config(url), revision)
