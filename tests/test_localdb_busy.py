"""A locked local database is not a corrupt one: opening it while another connection holds an
exclusive lock raises LocalDbBusyError (zh/en) and leaves the file where it is, with every
queued item; once the lock is gone it opens normally. A damaged file is still moved aside."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from counter_app import localdb
from counter_app.outbox import Outbox


def _queued_db(path: Path) -> str:
    ob = Outbox(path, None)
    try:
        return ob.enqueue("rating", {"n": 1}, item_id="kept-1")
    finally:
        ob.close()


def _hold_exclusive(path: Path, mode: str) -> sqlite3.Connection:
    other = sqlite3.connect(str(path), isolation_level=None, timeout=0)
    if mode == "rollback-journal":
        # A file left in rollback-journal mode (as another tool may leave it): switching it to
        # WAL needs the lock we cannot get.
        assert other.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete"
        other.execute("BEGIN EXCLUSIVE")
    else:
        other.execute("PRAGMA locking_mode = EXCLUSIVE")
        other.execute("BEGIN EXCLUSIVE")
        other.execute("UPDATE outbox SET attempts = attempts")
    return other


@pytest.mark.parametrize("mode", ["rollback-journal", "wal-exclusive"])
def test_locked_database_is_raised_not_moved_aside(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "outbox.db"
    item = _queued_db(path)
    other = _hold_exclusive(path, mode)
    try:
        with pytest.raises(localdb.LocalDbBusyError) as info:
            localdb.open_db(path, busy_timeout_ms=100)
        assert "locked" in str(info.value) and "未改动" in info.value.message_zh
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert sorted(p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name) == []
    conn, report = localdb.open_db(path, busy_timeout_ms=100)
    try:
        assert not report.recovered and not report.created
        assert conn.execute("SELECT id FROM outbox").fetchall() == [(item,)]
    finally:
        conn.close()


def test_is_corruption_tells_damage_from_busy(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 200)
    with pytest.raises(sqlite3.DatabaseError) as bad:
        sqlite3.connect(str(junk)).execute("PRAGMA quick_check").fetchall()
    assert localdb.is_corruption(bad.value)
    path = tmp_path / "ok.db"
    _queued_db(path)
    other = _hold_exclusive(path, "wal-exclusive")
    try:
        with pytest.raises(sqlite3.OperationalError) as busy:
            sqlite3.connect(str(path), timeout=0).execute("SELECT * FROM outbox").fetchall()
        assert not localdb.is_corruption(busy.value)
    finally:
        other.close()
    # And a damaged file is still moved aside (the recovery path is unchanged).
    conn, report = localdb.open_db(junk, busy_timeout_ms=100)
    conn.close()
    assert report.recovered and report.corrupt_moved_to is not None
