"""Issue 11 item 1 at the database: event ids follow COMMIT order with no holes on PostgreSQL,
so a poller that keeps "the highest id seen" never passes over an event that commits later —
and the naive design (ids from the sequence at INSERT) is caught by the same poller. Plus
`hall-server check-db` (schema revision, holes, retention, unreachable) on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hall_server.db import Store, Tx, now_ms, run
from tests.support.server_fixtures import REPO_ROOT, drop_pg_db, free_port, fresh_pg_url

WRITERS = 12
PER_WRITER = 25


@pytest.fixture
def pg_url() -> Iterator[str]:
    base = os.environ.get("HALL_TEST_PG_URL")
    if not base:
        pytest.skip("HALL_TEST_PG_URL not set")
    url = fresh_pg_url(base)
    yield url
    drop_pg_db(url)


def _race(store: Store) -> tuple[list[int], list[int]]:
    """WRITERS threads commit events while holding their transaction open a random few ms after
    the event was emitted (so commits interleave); a poller reads `id > highest seen` meanwhile.
    Returns (ids the poller saw, ids in the table)."""
    stop = threading.Event()
    seen: list[int] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(PER_WRITER):
            def fn(tx: Tx) -> None:
                tx.emit("test.event", {"n": 1})
                time.sleep(rng.random() * 0.01)  # more work after the event, before COMMIT
            store.write_sync(fn)

    def poller() -> None:
        last = 0
        while True:
            done = stop.is_set()
            rows = store.read_sync(lambda c, a=last: [r[0] for r in run(c, "SELECT id FROM events WHERE id > :a ORDER BY id", {"a": a}).all()])
            seen.extend(rows)
            if rows:
                last = rows[-1]
            if done:
                return
            time.sleep(0.001)

    p = threading.Thread(target=poller)
    p.start()
    ws = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for w in ws:
        w.start()
    for w in ws:
        w.join()
    stop.set()
    p.join()
    table = store.read_sync(lambda c: [r[0] for r in run(c, "SELECT id FROM events ORDER BY id").all()])
    return seen, table


@pytest.mark.postgres
def test_event_ids_follow_commit_order_and_the_naive_ids_do_not(pg_url: str) -> None:
    store = Store(pg_url)
    try:
        store.migrate()
        seen, table = _race(store)
        assert len(table) == WRITERS * PER_WRITER
        assert table == list(range(table[0], table[0] + len(table)))  # dense: no holes
        assert seen == table  # the poller passed over nothing, and saw each id once, in order

        # The naive control: the same race with ids from the sequence (today's design).
        store.naive_events = True
        run_ids = store.read_sync(lambda c: run(c, "SELECT setval(pg_get_serial_sequence('events', 'id'), "
                                                   "(SELECT last_id FROM event_counter))").scalar())
        assert run_ids
        seen2, table2 = _race(store)
        new = [i for i in table2 if i not in set(table)]
        skipped = sorted(set(new) - set(seen2))
        assert skipped, "the poller should have passed over late commits of the naive ids"
    finally:
        store.close()


def _check_db(*args: str) -> tuple[int, dict[str, object]]:
    r = subprocess.run([sys.executable, "-m", "hall_server", "check-db", *args], capture_output=True,
                       text=True, cwd=str(REPO_ROOT), timeout=120)
    return r.returncode, json.loads(r.stdout) if r.stdout.strip().startswith("{") else {"raw": r.stdout + r.stderr}


def _emit(store: Store, n: int, at: int | None = None) -> None:
    def fn(tx: Tx) -> None:
        for _ in range(n):
            tx.emit("test.event", {})
    store.write_sync(fn)
    if at is not None:  # after: on PostgreSQL the rows are only inserted right before COMMIT
        store.write_sync(lambda tx: run(tx.conn, "UPDATE events SET at_ms = :a", {"a": at}))


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_check_db_reports_schema_holes_retention_and_unreachable(engine: str, tmp_path: Path) -> None:
    if engine == "postgres":
        base = os.environ.get("HALL_TEST_PG_URL")
        if not base:
            pytest.skip("HALL_TEST_PG_URL not set")
        url = fresh_pg_url(base)
    else:
        url = f"sqlite:///{tmp_path / 'hall.sqlite3'}"
    store = Store(url)
    try:
        # Not migrated yet: a problem, exit 1, and check-db must not have migrated it.
        rc, rep = _check_db("--db", url)
        assert rc == 1 and "migrate" in " ".join(rep["problems"]), rep  # type: ignore[arg-type]
        store.migrate()
        rc, rep = _check_db("--db", url)
        assert rc == 0 and rep["ok"] is True, rep
        _emit(store, 10)
        rc, rep = _check_db("--db", url)
        assert rc == 0 and rep["events"]["count"] == 10, rep  # type: ignore[index]
        # A hole in the middle of the log (what the naive ids produced): exit 1.
        store.write_sync(lambda tx: run(tx.conn, "DELETE FROM events WHERE id = (SELECT MIN(id) + 4 FROM events)"))
        rc, rep = _check_db("--db", url)
        assert rc == 1 and rep["events"]["missing_ids"] == 1, rep  # type: ignore[index]
        store.write_sync(lambda tx: run(tx.conn, "DELETE FROM events"))
        # Events older than the retention: no server is pruning.
        _emit(store, 3, at=now_ms() - 30 * 3600 * 1000)
        rc, rep = _check_db("--db", url)
        assert rc == 1 and any("old" in p for p in rep["problems"]), rep  # type: ignore[union-attr]
        # Schema behind the code.
        store.write_sync(lambda tx: run(tx.conn, "UPDATE alembic_version SET version_num = '0002'"))
        rc, rep = _check_db("--db", url)
        assert rc == 1 and rep["schema"]["revision"] == "0002", rep  # type: ignore[index]
    finally:
        store.close()
        if engine == "postgres":
            drop_pg_db(url)
    # Unreachable: exit 2 (monitoring pages someone), and no password in the report.
    dead = f"postgresql+psycopg://hall:secret-pw@127.0.0.1:{free_port()}/hall"
    rc, rep = _check_db("--db", dead)
    assert rc == 2, rep
    assert "secret-pw" not in json.dumps(rep)


def test_sqlite_serve_refuses_several_workers(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "hall_server", "serve", "--workers", "2", "--data-dir",
                        str(tmp_path), "--port", str(free_port())], capture_output=True, text=True, timeout=60,
                       cwd=str(REPO_ROOT), env={**os.environ, "HALL_DB_URL": ""})
    assert r.returncode == 2
    assert "PostgreSQL" in r.stderr and "多进程" in r.stderr
    assert not (tmp_path / "hall.sqlite3").exists()  # refused before touching anything


@pytest.mark.postgres
def test_events_too_big_for_a_notify_are_read_from_the_table_in_order(pg_url: str, tmp_path: Path) -> None:
    """A NOTIFY carries a commit's events only under 7000 bytes; a bigger commit makes every
    listener read the table instead. Either way a subscriber gets every id, in order, once."""
    from tests.support.server_fixtures import signed_in, start_server_thread
    from tests.test_server_events import Subscription

    srv = start_server_thread(db_url=pg_url, data_dir=tmp_path / "a", demo=True)
    store = Store(pg_url)
    try:
        sup = signed_in(srv.url, "8001")
        sub = Subscription(srv.url, sup.token or "")
        store.write_sync(lambda tx: tx.emit("test.small", {"k": 0}))
        first = sub.until(lambda e: e["event"] == "test.small")

        def big(tx: Tx) -> None:  # 30 events of ~1 KB: far over one NOTIFY
            for i in range(30):
                tx.emit("test.big", {"i": i, "pad": "x" * 1000})

        store.write_sync(big)
        store.write_sync(lambda tx: tx.emit("test.small", {"k": 1}))  # fits: carried again
        got = [first]
        while not (got[-1]["event"] == "test.small" and got[-1]["data"]["k"] == 1):
            got.append(sub.until(lambda e: True))
        ids = [int(e["id"]) for e in got]
        assert ids == list(range(ids[0], ids[0] + 32))
        assert [e["data"].get("i") for e in got[1:31]] == list(range(30))
        sub.close()
    finally:
        store.close()
        srv.stop()


def test_health_db_needs_no_sign_in_and_tells_nothing_else(tmp_path: Path) -> None:
    """/health/db is for balancers and monitoring, so anyone on the hall LAN may call it: it
    answers only status, engine, timing and the last event id (no URL, host, user, path)."""
    import requests

    from tests.support.server_fixtures import start_server_thread

    srv = start_server_thread(data_dir=tmp_path / "h", demo=True)
    try:
        r = requests.get(srv.url + "/api/v1/health/db", timeout=10)
        assert r.status_code == 200
        body = r.json()
        assert set(body) == {"status", "database", "db_ms", "last_event_id", "checked_at"}
        assert body["status"] == "ok" and body["database"] == "sqlite"
        assert str(tmp_path) not in r.text and "sqlite:" not in r.text
    finally:
        srv.stop()


def test_events_older_than_24_hours_are_pruned_from_the_oldest_without_holes(tmp_path: Path) -> None:
    """Retention: a server prunes events older than 24 h (at start, then hourly) by id, so the
    kept log stays a hole-free suffix even where at_ms and commit order disagree."""
    from tests.support.server_fixtures import start_server_thread

    url = f"sqlite:///{tmp_path / 'hall.sqlite3'}"
    store = Store(url)
    store.migrate()
    old = now_ms() - 25 * 3600 * 1000
    _emit(store, 5)
    store.write_sync(lambda tx: run(tx.conn, "UPDATE events SET at_ms = :a", {"a": old}))
    _emit(store, 3)  # recent; the first of them made to look older than a later old one
    store.write_sync(lambda tx: run(tx.conn, "UPDATE events SET at_ms = :a WHERE id = 7", {"a": old}))
    store.close()
    srv = start_server_thread(db_url=url, data_dir=tmp_path, demo=False)
    try:
        deadline = time.monotonic() + 10
        while True:
            left = Store(url)
            ids = left.read_sync(lambda c: [r[0] for r in run(c, "SELECT id FROM events ORDER BY id").all()])
            left.close()
            if ids == [8] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert ids == [8]  # 1..7 gone (7 was old), 6 too although recent: no hole left before 8
    finally:
        srv.stop()
    rc, rep = _check_db("--db", url)
    assert rc == 0, rep
