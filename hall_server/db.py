"""Database access: engines, the single SQLite writer, transactions with events, migrations.

SQLite (default): WAL, synchronous=FULL, and ONE writer thread that opens every write
transaction with BEGIN IMMEDIATE, so writes are serialised and call-next cannot race itself.
Readers use a small pool of their own connections (WAL lets them read while the writer writes).
PostgreSQL: every write runs on a worker thread in its own transaction; hot rows are taken with
`SELECT ... FOR UPDATE [SKIP LOCKED]`; events are published with NOTIFY and fanned out by a
LISTEN thread in every server process (see events.py).

Event ids are in COMMIT order on both engines, dense (1, 2, 3, ... with no holes) and never
reused: SQLite has one writer; on PostgreSQL a transaction's events are given their ids only at
COMMIT, by bumping the single `event_counter` row in a statement pipelined with the COMMIT (its
row lock held to the end of COMMIT), so a transaction that commits later always has higher ids,
and any snapshot holds a prefix of the log. A reader that remembers "the highest id sent" can therefore never pass over an event that
commits later (docs/architecture.md, "Events in commit order").
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, NoResultFound, OperationalError

try:  # psycopg's own errors escape `run` (statements sent on the DBAPI connection directly)
    from psycopg import OperationalError as _PG_OPERATIONAL
except ImportError:  # a SQLite-only install (the desk's in-process demo) has no driver to fail

    class _PG_OPERATIONAL(Exception):  # type: ignore[no-redef]  # noqa: N801
        """Never raised: stands in for psycopg's OperationalError."""
from sqlalchemy.pool import NullPool

from hall_server.errors import ApiError

T = TypeVar("T")
log = logging.getLogger("hall_server.db")

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
    raw: str | None = None  # `data` as stored (compact JSON), sent to SSE clients as is


@dataclass
class Tx:
    """One write transaction: the connection plus the events to publish after COMMIT.

    On PostgreSQL (`defer_events`) `emit` only buffers the event; the Store ends the
    transaction with `flush_and_commit`, which numbers the events from the `event_counter` row,
    inserts them and COMMITs in one pipelined round trip. That row lock is the last lock any
    transaction takes and is released by the COMMIT sent with it: no deadlock, no waiting on a
    client while holding it.
    """

    conn: Connection
    is_pg: bool
    events: list[PendingEvent] = field(default_factory=list)
    defer_events: bool = False
    _pending: list[tuple[str, int, int | None, str | None, int | None, dict[str, Any], str]] = field(
        default_factory=list
    )

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
        # orjson: the same compact UTF-8 JSON as json.dumps(ensure_ascii=False), for less CPU
        # on the single writer.
        body = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS).decode()
        if self.defer_events:
            self._pending.append((type_, at, window_no, category, target_window_no, payload, body))
            return
        params = {"type": type_, "at": at, "w": window_no, "c": category, "tw": target_window_no, "data": body}
        if self.is_pg:
            # Test-only naive control (HALL_TEST_NAIVE_EVENTS=1): the id comes from the table's
            # sequence when the row is inserted, so ids do NOT follow commit order; the NOTIFY
            # carries the id. Kept so tests/test_scale_failover.py can show its detector
            # catches the loss this design fixes.
            params["ch"] = NOTIFY_CHANNEL
            row = run(self.conn, _EMIT_PG_NAIVE_SQL, params).scalar_one()
        else:
            row = run(self.conn, _EMIT_SQL, params).scalar_one()
        self.events.append(PendingEvent(int(row), type_, at, window_no, category, target_window_no, payload, body))

    def flush_and_commit(self) -> None:
        """PostgreSQL: number and insert the buffered events AND commit, in one pipelined
        round trip. The counter row's lock is taken by the first statement and released by the
        COMMIT right behind it in the same network packet, so it is never held while this
        thread waits for the client side (a round trip, the GIL under load): that wait would
        serialise every process's commits behind one slow thread."""
        import psycopg

        pend = self._pending
        self._pending = []
        dbapi: Any = self.conn.connection.dbapi_connection
        try:
            if pend:
                n = len(pend)
                text_, _order = _driver_sql("postgresql", _EMIT_PG_SQL)
                # The NOTIFY carries the events themselves when they fit (PostgreSQL's limit is
                # 8000 bytes), so listeners need no read per commit; else only the last id.
                blob = orjson.dumps([[p[0], p[1], p[2], p[3], p[4], p[6]] for p in pend]).decode()
                params = {
                    "n": n, "ch": NOTIFY_CHANNEL, "blob": f"{n}:{blob}" if len(blob.encode()) < 7000 else "",
                    "types": [p[0] for p in pend], "ats": [p[1] for p in pend], "ws": [p[2] for p in pend],
                    "cs": [p[3] for p in pend], "tws": [p[4] for p in pend], "datas": [p[6] for p in pend],
                }
                with dbapi.pipeline(), dbapi.cursor() as cur:
                    cur.execute(text_, params)
                    dbapi.commit()
                # (ids exist now; PostgreSQL events are published by every process's LISTEN
                # thread from the table, events.py, not from this list)
                for type_, at, w, c, tw, payload, body in pend:
                    self.events.append(PendingEvent(0, type_, at, w, c, tw, payload, body))
            else:
                dbapi.commit()
        except psycopg.OperationalError as e:
            # The COMMIT may or may not have happened: the caller gets a 503 and retries under
            # its Idempotency-Key.
            self.conn.invalidate()
            raise _unavailable(e, "commit") from e


_EMIT_SQL = (
    "INSERT INTO events (type, at_ms, window_no, category, target_window_no, data) "
    "VALUES (:type, :at, :w, :c, :tw, :data) RETURNING id"
)
_EMIT_PG_NAIVE_SQL = f"WITH e AS ({_EMIT_SQL}) SELECT id, pg_notify(:ch, id::text) FROM e"  # noqa: S608
# Sent pipelined with the COMMIT (Tx.flush_and_commit): bump the counter (its row lock is the
# serialisation point), insert the events with the ids it gives, NOTIFY `last_id:n:[events]`
# (delivered at COMMIT, in commit order; see PgListener in events.py).
_EMIT_PG_SQL = (
    "WITH c AS (UPDATE event_counter SET last_id = last_id + :n WHERE id = 1 RETURNING last_id), "
    "e AS (INSERT INTO events (id, type, at_ms, window_no, category, target_window_no, data) "
    "SELECT c.last_id - :n + u.ord, u.type, u.at_ms, u.w, u.c, u.tw, u.data FROM c, "
    "unnest(CAST(:types AS text[]), CAST(:ats AS bigint[]), CAST(:ws AS int[]), CAST(:cs AS text[]), "
    "CAST(:tws AS int[]), CAST(:datas AS text[])) WITH ORDINALITY AS u(type, at_ms, w, c, tw, data, ord)) "
    "SELECT c.last_id, pg_notify(:ch, c.last_id::text || ':' || :blob) FROM c"
)


_SQL_CACHE: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {}
_PARAM = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")


def _driver_sql(dialect: str, sql: str) -> tuple[str, tuple[str, ...]]:
    hit = _SQL_CACHE.get((dialect, sql))
    if hit is None:
        order: list[str] = []

        def repl(m: re.Match[str]) -> str:
            order.append(m.group(1))
            return "?" if dialect == "sqlite" else f"%({m.group(1)})s"

        hit = (_PARAM.sub(repl, sql.replace("%", "%%") if dialect != "sqlite" else sql), tuple(order))
        _SQL_CACHE[(dialect, sql)] = hit
    return hit


def run(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> Any:
    """Execute hand-written SQL with `:name` parameters straight on the driver.

    The hot paths use this: building SQLAlchemy constructs per call cost more CPU than the
    query itself. The conversion to the driver's style is cached per statement. The statement
    runs on the DBAPI connection inside SQLAlchemy's open transaction: about half the CPU of
    exec_driver_sql per statement, which matters to SQLite's single writer and to the GIL
    that every PostgreSQL worker thread shares.
    """
    dialect = conn.dialect.name
    text_, order_ = _driver_sql(dialect, sql)
    p = params or {}
    dbapi: Any = conn.connection.dbapi_connection
    if dialect == "sqlite":
        return _Rows(dbapi.execute(text_, tuple(p[n] for n in order_)))
    if dialect == "postgresql":
        # psycopg 3: server-side parameters, and statements run often enough are prepared.
        with dbapi.cursor() as cur:
            cur.execute(text_, p)
            return _Rows(cur)
    return conn.exec_driver_sql(text_, p)


def run_many(conn: Connection, sql: str, rows: list[dict[str, Any]]) -> None:
    """`run()` for one statement over many parameter sets (executemany)."""
    if not rows:
        return
    dialect = conn.dialect.name
    text_, order_ = _driver_sql(dialect, sql)
    dbapi: Any = conn.connection.dbapi_connection
    if dialect == "sqlite":
        dbapi.executemany(text_, [tuple(r[n] for n in order_) for r in rows])
    elif dialect == "postgresql":
        with dbapi.cursor() as cur:
            cur.executemany(text_, rows)
    else:
        conn.exec_driver_sql(text_, rows)  # type: ignore[arg-type]


class _Rows:
    """The small part of SQLAlchemy's Result that `run()` callers use, over a sqlite3 cursor.
    Rows are fetched at once so no statement stays open (RETURNING) when the batch commits."""

    __slots__ = ("_rows", "_names", "rowcount")

    def __init__(self, cur: Any) -> None:
        desc = cur.description
        # psycopg refuses fetchall() after a statement without a result set.
        self._rows: list[Any] = cur.fetchall() if desc else []
        self._names = [d[0] for d in desc] if desc else []
        self.rowcount = cur.rowcount

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def all(self) -> list[Any]:
        return self._rows

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        if not self._rows:
            raise NoResultFound("no row")
        return self._rows[0][0]

    def mappings(self) -> _MappingRows:
        return _MappingRows(self._names, self._rows)


class _MappingRows:
    __slots__ = ("_names", "_rows")

    def __init__(self, names: list[str], rows: list[Any]) -> None:
        self._names = names
        self._rows = rows

    def first(self) -> dict[str, Any] | None:
        return dict(zip(self._names, self._rows[0], strict=True)) if self._rows else None

    def one(self) -> dict[str, Any]:
        if not self._rows:
            raise NoResultFound("no row")
        return dict(zip(self._names, self._rows[0], strict=True))

    def all(self) -> list[dict[str, Any]]:
        return [dict(zip(self._names, r, strict=True)) for r in self._rows]

    def __iter__(self) -> Any:
        return iter(self.all())


_DAY_PREFIX: dict[int, str] = {}


def iso_ms(ms: int | None) -> str | None:
    """UTC `YYYY-MM-DDTHH:MM:SS.mmmZ`. Every ticket in every reply and event carries several of
    these, so the date part is formatted once per day and the rest by arithmetic (a third of
    the CPU of gmtime + strftime)."""
    if ms is None:
        return None
    s, milli = divmod(ms, 1000)
    day, rest = divmod(s, 86400)
    prefix = _DAY_PREFIX.get(day)
    if prefix is None:
        if len(_DAY_PREFIX) > 1000:
            _DAY_PREFIX.clear()
        prefix = _DAY_PREFIX[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86400))
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    return f"{prefix}{h:02d}:{m:02d}:{sec:02d}.{milli:03d}Z"


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
            self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
            self._writer: threading.Thread | None = threading.Thread(
                target=self._writer_loop, name="sqlite-writer", daemon=True
            )
            self._writer.start()
        else:
            self.engine = create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)
            self.read_engine = self.engine
            self._writer = None
        # Test-only naive control of the event log (see Tx.emit); never set in production.
        self.naive_events = self.is_pg and os.environ.get("HALL_TEST_NAIVE_EVENTS") == "1"
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
            # busy_timeout first: switching to WAL needs a lock, and another connection (the
            # seeder, a reader opening at the same moment) may hold one for a few ms; without
            # the timeout that is an immediate "database is locked" and a server that never starts.
            cur.execute("PRAGMA busy_timeout=30000")
            for attempt in range(50):  # SQLite may answer BUSY at once here, not via the timeout
                try:
                    cur.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or attempt == 49:
                        raise
                    time.sleep(0.05)
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        begin_sql = "BEGIN IMMEDIATE" if immediate else "BEGIN"

        @event.listens_for(eng, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql(begin_sql)

        return eng

    # ---- writes ---------------------------------------------------------------------------
    # SQLite: ONE writer thread owns the only write connection. It takes every queued job
    # into one BEGIN IMMEDIATE transaction, each job in its own SAVEPOINT (a failing job
    # rolls back alone), and COMMITs once: group commit, one fsync for many requests, and
    # still strictly one writer, so call-next cannot race itself.
    MAX_BATCH = 64

    def _writer_loop(self) -> None:
        conn = self.engine.connect()
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                batch = [job]
                stop = False
                while len(batch) < self.MAX_BATCH:
                    try:
                        nxt = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    batch.append(nxt)
                self._run_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _run_batch(self, conn: Connection, batch: list[Any]) -> None:
        outcomes: list[tuple[Any, Any, BaseException | None]] = []
        events: list[PendingEvent] = []
        single = len(batch) == 1
        try:
            with conn.begin():
                # Savepoints straight on the sqlite3 connection: SQLAlchemy's begin_nested()
                # cost more CPU than the job itself. SQLAlchemy never sees them, and it needs
                # not: its own transaction is the outer one, and every job leaves the
                # savepoint it opened (released or rolled back) before the next begins.
                raw: Any = conn.connection.dbapi_connection
                for fn, fut in batch:
                    tx = Tx(conn, False)
                    if single:
                        # A lone job needs no savepoint: if it fails, the batch rolls back.
                        outcomes.append((fut, fn(tx), None))
                        events.extend(tx.events)
                        continue
                    raw.execute("SAVEPOINT job")
                    try:
                        result = fn(tx)
                    except BaseException as e:  # noqa: BLE001 - handed to the caller
                        raw.execute("ROLLBACK TO job")
                        raw.execute("RELEASE job")
                        outcomes.append((fut, None, e))
                    else:
                        raw.execute("RELEASE job")
                        outcomes.append((fut, result, None))
                        events.extend(tx.events)
        except BaseException as e:  # noqa: BLE001 - the whole batch failed (or a single job)
            outcomes = [(fut, None, e) for _fn, fut in batch]
            events = []
        if events and self.on_commit is not None:
            self.on_commit(events)
        # Callers on the event loop are woken with ONE call_soon_threadsafe per batch (each
        # costs a self-pipe write); threads waiting in write_sync get their futures directly.
        by_loop: dict[Any, list[tuple[Any, Any, BaseException | None]]] = {}
        for item in outcomes:
            fut = item[0]
            if isinstance(fut, concurrent.futures.Future):
                if item[2] is not None:
                    fut.set_exception(item[2])
                else:
                    fut.set_result(item[1])
            else:
                by_loop.setdefault(fut.get_loop(), []).append(item)
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, items)
            except RuntimeError:  # loop closed at shutdown
                pass

    def _submit(self, fn: Callable[[Tx], T]) -> concurrent.futures.Future[T]:
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((fn, fut))
        return fut

    # PostgreSQL restarted or unreachable: a new connection is retried for this long (nothing
    # has been sent yet, so that is always safe), then the caller gets a 503 with Retry-After.
    # A connection lost in the middle of a transaction is never retried here (the COMMIT may
    # have happened): 503, and the desk retries under the same Idempotency-Key.
    CONNECT_RETRY_SECONDS = 8.0

    def _connect(self, engine: Engine) -> Connection:
        deadline = time.monotonic() + self.CONNECT_RETRY_SECONDS
        delay = 0.05
        while True:
            try:
                return engine.connect()
            except DBAPIError as e:
                if time.monotonic() + delay > deadline:
                    raise _unavailable(e, "connect") from e
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def write_sync(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` in one write transaction and wait for its COMMIT (any thread but the writer)."""
        if self.is_sqlite:
            return self._submit(fn).result()
        try:
            with self._connect(self.engine) as conn:
                tx = Tx(conn, self.is_pg, defer_events=self.is_pg and not self.naive_events)
                with conn.begin():
                    result = fn(tx)
                    if tx.defer_events:
                        tx.flush_and_commit()  # SQLAlchemy's own COMMIT then finds nothing to do
                return result
        except (OperationalError, _PG_OPERATIONAL) as e:
            if not _connection_lost(e):
                raise
            raise _unavailable(e, "write") from e

    async def write(self, fn: Callable[[Tx], T]) -> T:
        if self.is_sqlite:
            afut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            self._jobs.put((fn, afut))
            return await afut
        return await anyio.to_thread.run_sync(self.write_sync, fn)

    # ---- reads ----------------------------------------------------------------------------
    def read_sync(self, fn: Callable[[Connection], T]) -> T:
        if self.is_sqlite:
            with self.read_engine.connect() as conn:
                # One snapshot for the whole read (WAL).
                with conn.begin():
                    return fn(conn)
        try:
            with self._connect(self.read_engine) as conn:
                return fn(conn)
        except (OperationalError, _PG_OPERATIONAL) as e:
            if not _connection_lost(e):
                raise
            # A read changes nothing: once more on a fresh connection (a pooled one may have
            # died with a restarted PostgreSQL), then 503.
            try:
                with self._connect(self.read_engine) as conn:
                    return fn(conn)
            except (OperationalError, _PG_OPERATIONAL) as e2:
                if not _connection_lost(e2):
                    raise
                raise _unavailable(e2, "read") from e2

    async def read(self, fn: Callable[[Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self.read_sync, fn)

    # ---- lifecycle ------------------------------------------------------------------------
    def migrate(self) -> None:
        upgrade(self.url)

    def close(self) -> None:
        if self._writer is not None:
            self._jobs.put(None)
            self._writer.join(10)
        self._readers.shutdown(wait=False)
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


def _connection_lost(e: BaseException) -> bool:
    """The server went away (restart, shutdown, network), not a fault of the statement. `e` is
    SQLAlchemy's wrapper, or psycopg's own error from a statement `run` sent on the DBAPI
    connection directly (the hot paths, e.g. every request's session check)."""
    if isinstance(e, DBAPIError) and e.connection_invalidated:
        return True
    import psycopg

    orig = e.orig if isinstance(e, DBAPIError) else e
    return isinstance(orig, psycopg.OperationalError) and not isinstance(
        orig, psycopg.errors.TransactionRollback  # deadlock / serialisation: a real answer
    )


def _unavailable(e: BaseException, what: str) -> ApiError:
    log.warning("database unavailable (%s): %s", what, str(e).splitlines()[0] if str(e) else type(e).__name__)
    return ApiError(
        503, "database_unavailable",
        message_zh="数据库暂时不可用，请稍后重试",
        message_en="The database is unavailable for a moment; try again",
        headers={"Retry-After": "2"},
    )


def _resolve(items: list[tuple[Any, Any, BaseException | None]]) -> None:
    for fut, result, exc in items:
        if fut.cancelled():
            continue
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)


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
            c.exec_driver_sql("PRAGMA busy_timeout=30000")
            for attempt in range(50):  # the writer thread may be switching the same file
                try:
                    c.exec_driver_sql("PRAGMA journal_mode=WAL")
                    break
                except OperationalError as exc:
                    if "locked" not in str(exc) or attempt == 49:
                        raise
                    time.sleep(0.05)
        eng.dispose()
        command.upgrade(alembic_config(url), revision)
        return
    if url.startswith("postgresql"):
        # Several hall-servers starting at once (systemd units on several hosts) each run the
        # migrations: one at a time, under a session advisory lock; the others then find the
        # schema at head and do nothing.
        eng = create_engine(url, poolclass=NullPool)
        try:
            with eng.connect() as c:
                c.exec_driver_sql("SELECT pg_advisory_lock(727001)")
                try:
                    command.upgrade(alembic_config(url), revision)
                finally:
                    c.exec_driver_sql("SELECT pg_advisory_unlock(727001)")
        finally:
            eng.dispose()
        return
    command.upgrade(alembic_config(url), revision)
