"""Local SQLite for the desk: durable connection settings, ordered schema migrations, recovery.

Everything that must survive a crash or a power cut (the outbox, captured ratings) lives here.
The connection is set up the one way RELIABILITY.md allows: WAL, ``synchronous=FULL`` set
explicitly (NORMAL can roll back a committed rating on power loss), a busy timeout, and
transactions opened with ``BEGIN IMMEDIATE`` by the single writer thread (``isolation_level=None``
so the sqlite3 module never opens a deferred transaction behind our back).

Schema versions are kept in ``PRAGMA user_version``; ``MIGRATIONS`` is an ordered list and each
step runs in its own transaction together with the version bump, so an upgrade is all-or-nothing
per step and never drops a queued item. A file that is not a readable SQLite database (truncated,
garbage) is renamed aside to ``<name>.corrupt-<timestamp>`` (never deleted: it may hold items a
technician can still salvage), a fresh database is created, and the caller gets an
``OpenReport`` saying so, for the UI to show. Only SQLite's own verdicts of corruption
(SQLITE_CORRUPT "malformed", SQLITE_NOTADB "file is not a database", or ``quick_check``
reporting damage) count: a transient failure (SQLITE_BUSY "database is locked" after the busy
timeout, an I/O error) raises ``LocalDbBusyError`` and never moves a good file aside.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

BUSY_TIMEOUT_MS = 10_000
DEFAULT_TZ = "Asia/Shanghai"


class LocalDbError(Exception):
    """The local database cannot be used as it is (e.g. written by a newer version of the app)."""

    def __init__(self, message_zh: str, message_en: str) -> None:
        super().__init__(message_en)
        self.message_zh = message_zh
        self.message_en = message_en

    def message(self, lang: str) -> str:
        return self.message_zh if lang == "zh" else self.message_en


class LocalDbBusyError(LocalDbError):
    """The local database could not be opened right now (locked by another program, I/O error);
    nothing was moved or changed. Retrying later may work."""


# SQLite primary result codes that mean "this file is damaged" (sqlite3.h).
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26


def is_corruption(exc: BaseException) -> bool:
    """Does this sqlite3 error say the file itself is damaged (not merely busy or unreadable
    for now)?"""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return (code & 0xFF) in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc).lower()
    return "file is not a database" in text or "malformed" in text


def _busy_error(path: Path, exc: BaseException) -> LocalDbBusyError:
    return LocalDbBusyError(
        f"本地数据库暂时无法打开（{exc}），可能被其他程序占用；数据未改动，请稍后重试：{path}",
        f"The local database cannot be opened right now ({exc}); another program may be "
        f"using it. Nothing was changed; try again later: {path}",
    )


def _v1(conn: sqlite3.Connection) -> None:
    # The outbox row: its id is the Idempotency-Key, made at capture, stored before any send.
    conn.execute(
        """
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            payload_sha256 TEXT NOT NULL,
            created REAL NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            last_error TEXT,
            receipt TEXT,
            done_at REAL
        )
        """
    )
    conn.execute("CREATE INDEX outbox_due ON outbox (state, next_attempt_at)")


def _v2(conn: sqlite3.Connection) -> None:
    # The captured rating itself (what the desk shows and what reconciliation compares by window
    # and day), written in the same transaction as its outbox row. Backfilled from v1 outbox rows
    # so an upgrade keeps every rating that was queued before it.
    conn.execute(
        """
        CREATE TABLE ratings (
            id TEXT PRIMARY KEY REFERENCES outbox (id),
            case_id INTEGER NOT NULL,
            window_no INTEGER NOT NULL,
            level TEXT NOT NULL,
            rated_at TEXT NOT NULL,
            day TEXT NOT NULL
        )
        """
    )
    conn.execute("CREATE INDEX ratings_window_day ON ratings (window_no, day)")
    conn.execute("CREATE INDEX outbox_kind_created ON outbox (kind, created)")
    backfill_ratings(conn)


def hall_day(rated_at: str, tz: str = DEFAULT_TZ) -> str:
    """The hall's local day (YYYY-MM-DD) of an ISO 8601 UTC time, as the server counts days."""
    moment = datetime.fromisoformat(rated_at.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(tz)).date().isoformat()


def rating_row(row_id: str, obj: dict[str, Any], tz: str = DEFAULT_TZ) -> tuple[Any, ...]:
    """The ``ratings`` row of a rating payload (raises KeyError/ValueError on a bad payload)."""
    rated_at = str(obj["rated_at"])
    return (
        row_id,
        int(obj["case_id"]),
        int(obj["window_no"]),
        str(obj["level"]),
        rated_at,
        hall_day(rated_at, tz),
    )


def backfill_ratings(conn: sqlite3.Connection, tz: str = DEFAULT_TZ) -> None:
    """Give every rating outbox row its ``ratings`` row (after an upgrade or a salvage)."""
    rows = conn.execute(
        "SELECT id, payload FROM outbox WHERE kind = 'rating'"
        " AND id NOT IN (SELECT id FROM ratings)"
    ).fetchall()
    for row_id, payload in rows:
        try:
            values = rating_row(row_id, json.loads(payload), tz)
        except (KeyError, ValueError, TypeError):
            continue  # unreadable payload: the row stays in the outbox, visible, just not indexed
        conn.execute(
            "INSERT OR IGNORE INTO ratings (id, case_id, window_no, level, rated_at, day)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            values,
        )


Migration = Callable[[sqlite3.Connection], None]
# Ordered: index i upgrades user_version i -> i+1. Only ever append.
MIGRATIONS: list[Migration] = [_v1, _v2]


@dataclass(frozen=True)
class OpenReport:
    """What happened while opening: shown to staff when something had to be repaired."""

    path: Path
    created: bool = False
    migrated_from: int | None = None
    corrupt_moved_to: Path | None = None
    detail: str = ""
    salvaged: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def recovered(self) -> bool:
        return self.corrupt_moved_to is not None


def connect(path: Path, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """A connection with the durability settings. Used by one thread only (the writer)."""
    conn = sqlite3.connect(
        str(path), isolation_level=None, timeout=busy_timeout_ms / 1000, check_same_thread=False
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    except BaseException:
        conn.close()
        raise
    if str(mode).lower() != "wal":
        conn.close()
        raise sqlite3.OperationalError(f"cannot switch to WAL (journal_mode={mode})")
    # FULL, explicitly: in WAL mode NORMAL may lose the last commits on power loss.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _check(conn: sqlite3.Connection) -> str:
    """'ok' or the reason this file is damaged. A transient error (locked, I/O) is raised."""
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            raise
        return str(exc)
    result = "; ".join(str(r[0]) for r in rows)
    return "ok" if result == "ok" else result


def _newer_error(version: int, known: int) -> LocalDbError:
    return LocalDbError(
        f"本地数据库版本 {version} 高于本程序支持的 {known}，请升级程序；数据未改动。",
        f"Local database version {version} is newer than this app supports "
        f"({known}); please upgrade the app. Nothing was changed.",
    )


def _refuse_newer(path: Path, known: int, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
    """Before touching the file at all (not even switching it to WAL): is it from a newer app?"""
    try:
        ro = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                             timeout=busy_timeout_ms / 1000)
    except sqlite3.Error:
        return
    try:
        version = int(ro.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError:
        return  # unreadable: the corrupt-file path below deals with it
    finally:
        ro.close()
    if version > known:
        raise _newer_error(version, known)


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int | None:
    """Bring the schema up to date; returns the version it started from if anything ran."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(migrations):
        raise _newer_error(version, len(migrations))
    if version == len(migrations):
        return None
    start = version
    for step in range(version, len(migrations)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if current == step:
                migrations[step](conn)
                conn.execute(f"PRAGMA user_version = {step + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return start


def _move_aside(path: Path, stamp: str) -> Path:
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    os.replace(path, target)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, target.with_name(target.name + suffix))
    return target


def _salvage(corrupt: Path, conn: sqlite3.Connection) -> int:
    """Copy whatever outbox rows can still be read from a damaged file; best effort."""
    salvaged = 0
    try:
        src = sqlite3.connect(f"file:{corrupt}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error:
        return 0
    try:
        cur = src.execute(
            "SELECT id, kind, payload, payload_sha256, created, state, attempts,"
            " next_attempt_at, last_error, receipt, done_at FROM outbox ORDER BY seq"
        )
        conn.execute("BEGIN IMMEDIATE")
        try:
            while True:
                try:
                    row = cur.fetchone()
                except sqlite3.DatabaseError:
                    break
                if row is None:
                    break
                conn.execute(
                    "INSERT OR IGNORE INTO outbox (id, kind, payload, payload_sha256, created,"
                    " state, attempts, next_attempt_at, last_error, receipt, done_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
                salvaged += 1
            backfill_ratings(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.DatabaseError:
        return salvaged
    finally:
        src.close()
    return salvaged


def open_db(
    path: Path | str,
    *,
    clock: Callable[[], float] = time.time,
    migrations: Sequence[Migration] = MIGRATIONS,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
) -> tuple[sqlite3.Connection, OpenReport]:
    """Open (creating, migrating or recovering) the local database at ``path``.

    Raises ``LocalDbBusyError`` when the file is locked past the busy timeout (the retry is
    SQLite's own busy handler) or on an I/O error: such a file is left exactly where it is.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists() or path.stat().st_size == 0
    if not created:
        _refuse_newer(path, len(migrations), busy_timeout_ms)
    conn: sqlite3.Connection | None = None
    problem = ""
    try:
        conn = connect(path, busy_timeout_ms)
        problem = _check(conn)
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            if conn is not None:
                conn.close()
            raise _busy_error(path, exc) from exc
        problem = str(exc)
    if problem == "ok" and conn is not None:
        try:
            migrated_from = migrate(conn, migrations)
        except sqlite3.DatabaseError as exc:
            conn.close()
            if is_corruption(exc):
                raise
            raise _busy_error(path, exc) from exc
        return conn, OpenReport(path=path, created=created, migrated_from=migrated_from)

    if conn is not None:
        conn.close()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(clock())) + f"-{os.getpid()}"
    moved = _move_aside(path, stamp)
    conn = connect(path, busy_timeout_ms)
    migrate(conn, migrations)
    salvaged = _salvage(moved, conn)
    return conn, OpenReport(
        path=path,
        created=True,
        corrupt_moved_to=moved,
        detail=problem,
        salvaged=salvaged,
        warnings=[
            f"本地数据库已损坏（{problem}），已移至 {moved.name} 并新建；已找回 {salvaged} 条待发记录。",
            f"The local database was damaged ({problem}); it was moved to {moved.name} and a new "
            f"one was created; {salvaged} queued items were salvaged.",
        ],
    )


def fetch_dicts(conn: sqlite3.Connection, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Rows as dicts (column name -> value)."""
    cur = conn.execute(sql, args)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
