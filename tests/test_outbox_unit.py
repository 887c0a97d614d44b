"""Outbox logic on real SQLite files, with a scripted sender (the server-facing tests are in
test_outbox_server.py and test_fault_*.py).

Covers: saved only after commit, the retry schedule in the row (backoff with full jitter,
Retry-After), no attempt cap, permanent 4xx -> dead with the reason, payload checksum, retention
purge of done rows only, schema migration keeping queued items, a corrupt file moved aside,
disk full -> NotSavedError and nothing reported saved.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from counter_app import localdb
from counter_app.errors import NotSavedError
from counter_app.events import EventBus, OutboxChanged
from counter_app.outbox import Outbox, OutboxItem, PermanentSendError, classify


class FakeClock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


class StatusErr(Exception):
    """Shaped like api_client's ApiStatusError (the outbox classifies by these attributes)."""

    def __init__(self, status: int, code: str, retryable: bool, retry_after: float | None = None):
        super().__init__(code)
        self.status, self.code, self.retryable, self.retry_after = status, code, retryable, retry_after
        self.message_en = code


class ConnErr(Exception):
    retryable = True
    code = "connection_error"


class ScriptedSender:
    """Answers from a script: each entry is an exception to raise or None for success."""

    def __init__(self) -> None:
        self.script: list[BaseException | None] = []
        self.sent: list[str] = []
        self.keys: list[str] = []

    def send(self, item: OutboxItem) -> dict[str, Any]:
        self.keys.append(item.id)
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        self.sent.append(item.id)
        return {"rating_id": item.id, "received_at": "2026-11-25T10:00:00Z"}


def rating(case_id: int, window_no: int = 3, **kw: Any) -> dict[str, Any]:
    obj = {
        "id": str(uuid.uuid4()),
        "case_id": case_id,
        "window_no": window_no,
        "level": "satisfied",
        "reasons": [],
        "reasons_version": "GB/T 39734-2020 A.1",
        "comment": "",
        "source": "desk",
        "rated_at": "2026-11-25T02:00:00Z",
        "pad_id": None,
        "pad_counter": None,
        "challenge": None,
        "signature": None,
    }
    obj.update(kw)
    return obj


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sender() -> ScriptedSender:
    return ScriptedSender()


@pytest.fixture
def outbox(tmp_path: Path, sender: ScriptedSender, clock: FakeClock):  # type: ignore[no-untyped-def]
    ob = Outbox(tmp_path / "outbox.db", sender, clock=clock, rng=random.Random(7))
    yield ob
    ob.close()


def raw_rows(path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    try:
        return localdb.fetch_dicts(conn, "SELECT * FROM outbox ORDER BY seq")
    finally:
        conn.close()


def test_connection_is_wal_and_synchronous_full(outbox: Outbox) -> None:
    mode, sync = outbox._call(
        lambda c: (
            c.execute("PRAGMA journal_mode").fetchone()[0],
            c.execute("PRAGMA synchronous").fetchone()[0],
        )
    )
    assert mode == "wal"
    assert sync == 2  # FULL


def test_enqueue_is_committed_and_visible_to_another_connection(outbox: Outbox) -> None:
    r = rating(1)
    item_id = outbox.enqueue_rating(r)
    assert item_id == r["id"]
    rows = raw_rows(outbox.db_path)  # a separate connection sees it: it was committed
    assert [row["id"] for row in rows] == [item_id]
    row = rows[0]
    assert row["state"] == "pending" and row["attempts"] == 0
    assert json.loads(row["payload"])["case_id"] == 1
    # The hall's local day (Asia/Shanghai) of 02:00Z is the same date; 20:00Z is the next day.
    late = outbox.enqueue_rating(rating(2, rated_at="2026-11-25T20:00:00Z"))
    assert outbox.rating_ids(3, "2026-11-26") == {late: "pending"}


def test_delivery_sends_the_id_as_key_and_marks_done(outbox: Outbox, sender: ScriptedSender) -> None:
    ids = [outbox.enqueue_rating(rating(i)) for i in range(5)]
    assert outbox.deliver_due() == 5
    assert sender.sent == ids  # oldest first
    assert outbox.stats().depth == 0
    done = outbox.items(state="done")
    assert [d.id for d in done] == ids
    assert all(d.receipt and d.receipt["rating_id"] == d.id for d in done)


def test_transient_failures_back_off_with_jitter_and_never_give_up(
    outbox: Outbox, sender: ScriptedSender, clock: FakeClock
) -> None:
    item_id = outbox.enqueue_rating(rating(1))
    delays = []
    for n in range(1, 40):
        sender.script = [StatusErr(503, "unavailable", True)]
        assert outbox.deliver_due() == 0
        item = outbox.get(item_id)
        assert item is not None and item.state == "pending" and item.attempts == n
        delay = item.next_attempt_at - clock()
        cap = min(outbox.max_delay_s, outbox.base_delay_s * 2**n)
        assert 0 <= delay <= cap
        delays.append(delay)
        assert outbox.deliver_due() == 0 or delay == 0  # not due before its time
        clock.advance(delay + 0.001)
    assert len(set(delays)) > 30  # jittered, not a fixed schedule
    assert outbox.deliver_due() == 1
    assert outbox.get(item_id).state == "done"  # type: ignore[union-attr]
    assert len(sender.keys) == 40 and set(sender.keys) == {item_id}  # always the same key


def test_retry_after_is_honoured(outbox: Outbox, sender: ScriptedSender, clock: FakeClock) -> None:
    item_id = outbox.enqueue_rating(rating(1))
    sender.script = [StatusErr(429, "rate_limited", True, retry_after=120.0)]
    outbox.deliver_due()
    item = outbox.get(item_id)
    assert item is not None
    assert item.next_attempt_at - clock() >= 120.0
    assert "rate_limited" in (item.last_error or "")


def test_permanent_4xx_goes_dead_with_reason_and_stays(
    outbox: Outbox, sender: ScriptedSender, clock: FakeClock
) -> None:
    bus = EventBus()
    seen: list[OutboxChanged] = []
    bus.subscribe(OutboxChanged, seen.append)
    outbox.bus = bus
    a = outbox.enqueue_rating(rating(1))
    b = outbox.enqueue_rating(rating(2))
    sender.script = [StatusErr(409, "case_already_rated", False), None]
    assert outbox.deliver_due() == 1
    dead = outbox.dead_items()
    assert [d.id for d in dead] == [a]
    assert "case_already_rated" in (dead[0].last_error or "")
    assert outbox.stats().dead == 1 and outbox.get(b).state == "done"  # type: ignore[union-attr]
    assert seen and seen[-1] == OutboxChanged(depth=0, oldest_age_s=None, dead=1)
    clock.advance(400 * 86400)
    outbox.purge()
    assert [d.id for d in outbox.dead_items()] == [a]  # dead rows are never purged
    assert outbox.requeue_dead(a)
    assert outbox.deliver_due() == 1 and outbox.stats().dead == 0


def test_401_and_transport_errors_are_never_dead() -> None:
    assert not classify(StatusErr(401, "token_expired", False)).dead
    assert not classify(StatusErr(409, "idempotency_in_progress", True)).dead
    assert classify(StatusErr(422, "reason_required", False)).dead
    f = classify(ConnErr("refused"))
    assert not f.dead and f.transport
    assert classify(PermanentSendError("x")).dead


def test_transport_error_stops_the_pass(outbox: Outbox, sender: ScriptedSender) -> None:
    ids = [outbox.enqueue_rating(rating(i)) for i in range(10)]
    sender.script = [ConnErr("refused")]
    assert outbox.deliver_due() == 0
    assert len(sender.keys) == 1  # the other nine were not hammered against a dead link
    attempts = {i: outbox.get(i).attempts for i in ids}  # type: ignore[union-attr]
    assert attempts[ids[0]] == 1 and all(attempts[i] == 0 for i in ids[1:])


def test_corrupted_payload_is_dead_not_sent(outbox: Outbox, sender: ScriptedSender) -> None:
    item_id = outbox.enqueue_rating(rating(1))
    conn = sqlite3.connect(outbox.db_path)
    conn.execute("UPDATE outbox SET payload = replace(payload, 'satisfied', 'dissatisfied')")
    conn.commit()
    conn.close()
    assert outbox.deliver_due() == 0
    assert sender.keys == []
    assert "SHA-256" in (outbox.get(item_id).last_error or "")  # type: ignore[union-attr]


def test_purge_removes_only_done_rows_past_retention(
    outbox: Outbox, sender: ScriptedSender, clock: FakeClock
) -> None:
    old = outbox.enqueue_rating(rating(1))
    outbox.deliver_due()
    clock.advance(89 * 86400)
    assert outbox.purge() == 0
    recent = outbox.enqueue_rating(rating(2))
    outbox.deliver_due()
    waiting = outbox.enqueue_rating(rating(3))
    sender.script = [StatusErr(500, "boom", True)]
    outbox.deliver_due()
    clock.advance(2 * 86400)
    assert outbox.purge() == 1
    assert outbox.get(old) is None
    assert outbox.get(recent) is not None and outbox.get(waiting) is not None


def test_closed_outbox_refuses_with_not_saved(tmp_path: Path, sender: ScriptedSender) -> None:
    ob = Outbox(tmp_path / "o.db", sender)
    ob.close()
    with pytest.raises(NotSavedError):
        ob.enqueue_rating(rating(1))


def test_duplicate_id_is_not_saved_twice(outbox: Outbox) -> None:
    r = rating(1)
    outbox.enqueue_rating(r)
    with pytest.raises(NotSavedError):
        outbox.enqueue_rating(r)
    assert outbox.depth() == 1


def test_reopen_keeps_everything(tmp_path: Path, sender: ScriptedSender) -> None:
    ob = Outbox(tmp_path / "o.db", sender)
    ids = [ob.enqueue_rating(rating(i)) for i in range(20)]
    ob.close()
    ob = Outbox(tmp_path / "o.db", sender)
    assert ob.open_report.migrated_from is None and not ob.open_report.recovered
    assert [i.id for i in ob.items(state="pending")] == ids
    ob.close()


def test_upgrade_from_v1_keeps_queued_items(tmp_path: Path, sender: ScriptedSender) -> None:
    path = tmp_path / "old.db"
    conn = localdb.connect(path)
    localdb.migrate(conn, localdb.MIGRATIONS[:1])  # the schema an older release shipped
    ids = []
    for i in range(3):
        r = rating(i)
        text = json.dumps(r)
        conn.execute(
            "INSERT INTO outbox (id, kind, payload, payload_sha256, created, state, attempts,"
            " next_attempt_at) VALUES (?, 'rating', ?, ?, 1, 'pending', 2, 1)",
            (r["id"], text, __import__("hashlib").sha256(text.encode()).hexdigest()),
        )
        ids.append(r["id"])
    conn.close()
    ob = Outbox(path, sender)
    try:
        assert ob.open_report.migrated_from == 1
        assert [i.id for i in ob.items(state="pending")] == ids
        assert set(ob.rating_ids(3, "2026-11-25")) == set(ids)  # backfilled ratings rows
        assert ob.deliver_due() == 3 and sender.sent == ids
    finally:
        ob.close()


def test_newer_schema_is_refused_untouched(tmp_path: Path, sender: ScriptedSender) -> None:
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE future (x)")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(localdb.LocalDbError) as info:
        Outbox(path, sender)
    assert "99" in info.value.message("zh") and "newer" in info.value.message("en")
    assert path.read_bytes() == before


@pytest.mark.parametrize("damage", ["garbage", "truncated", "zeroed_page"])
def test_corrupt_file_is_moved_aside_and_reported(
    tmp_path: Path, sender: ScriptedSender, damage: str
) -> None:
    path = tmp_path / "o.db"
    ob = Outbox(path, sender)
    ids = [ob.enqueue_rating(rating(i, comment="x" * 2000)) for i in range(40)]
    ob._call(lambda c: c.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
    ob.close()
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(os.urandom(len(data)))
    elif damage == "truncated":
        path.write_bytes(data[:150])
    else:  # the second page (the schema's first table b-tree) overwritten
        page = int.from_bytes(data[16:18], "big")
        path.write_bytes(data[:page] + b"\xff" * page + data[2 * page :])
    ob = Outbox(path, sender)
    try:
        rep = ob.open_report
        assert rep.recovered and rep.corrupt_moved_to is not None
        assert rep.corrupt_moved_to.exists() and ".corrupt-" in rep.corrupt_moved_to.name
        assert rep.warnings and "损坏" in rep.warnings[0]
        # Usable at once; whatever could be read back was salvaged, nothing invented.
        salvaged = {i.id for i in ob.items()}
        assert salvaged <= set(ids) and len(salvaged) == rep.salvaged
        new_id = ob.enqueue_rating(rating(999))
        assert ob.get(new_id) is not None
        assert ob._call(lambda c: c.execute("PRAGMA integrity_check").fetchone()[0]) == "ok"
    finally:
        ob.close()


def test_database_full_raises_not_saved_and_keeps_the_rest(
    outbox: Outbox,
) -> None:
    saved = [outbox.enqueue_rating(rating(i)) for i in range(5)]
    pages = outbox._call(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
    outbox._call(lambda c: c.execute(f"PRAGMA max_page_count = {pages + 2}"))
    refused = 0
    for i in range(5, 200):
        try:
            saved.append(outbox.enqueue_rating(rating(i, comment="满" * 3000)))
        except NotSavedError as exc:
            refused += 1
            assert "disk" in exc.message("en") and "未保存" in exc.message("zh")
    assert refused > 0
    # Exactly the ids that were returned are stored; none of the refused ones half-exists.
    assert [r["id"] for r in raw_rows(outbox.db_path)] == saved
    assert set(outbox.rating_ids(3, "2026-11-25")) == set(saved)


def _can_mount_tmpfs(target: Path) -> bool:
    if os.geteuid() != 0:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(target)],
                       capture_output=True)
    return r.returncode == 0


def test_disk_full_on_a_tiny_filesystem(tmp_path: Path, sender: ScriptedSender) -> None:
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if not _can_mount_tmpfs(mnt):
        pytest.skip("needs root and tmpfs to make a really full disk")
    try:
        ob = Outbox(mnt / "o.db", sender)
        saved: list[str] = []
        errors: list[NotSavedError] = []
        for i in range(400):
            try:
                saved.append(ob.enqueue_rating(rating(i, comment="盘" * 1500)))
            except NotSavedError as exc:
                errors.append(exc)
                if len(errors) > 3:
                    break
        assert errors, "the filesystem never filled up"
        assert len(saved) > 5
        ob.close()
        # Read back from a copy (the full disk cannot take a -shm for a new reader).
        copy = tmp_path / "copy.db"
        for suffix in ("", "-wal"):
            src = mnt / f"o.db{suffix}"
            if src.exists():
                (tmp_path / f"copy.db{suffix}").write_bytes(src.read_bytes())
        rows = raw_rows(copy)
        assert [r["id"] for r in rows] == saved
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_worker_backs_off_as_a_whole_when_the_link_is_down(
    tmp_path: Path, sender: ScriptedSender
) -> None:
    calls = threading.Event()

    class Down(ScriptedSender):
        def send(self, item: OutboxItem) -> dict[str, Any]:
            self.keys.append(item.id)
            calls.set()
            raise ConnErr("refused")

    down = Down()
    ob = Outbox(tmp_path / "o.db", down, base_delay_s=30.0)
    try:
        for i in range(10):
            ob.enqueue_rating(rating(i))
        ob.start()
        assert calls.wait(30)
        time.sleep(0.5)
        # Nine rows are still due, but the worker waits for the link instead of trying each.
        assert len(down.keys) == 1
        ob.kick()
        deadline = time.monotonic() + 30
        while len(down.keys) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(down.keys) == 2  # kick() woke it at once, and again only one was tried
    finally:
        ob.close()


def test_a_kick_during_a_failing_attempt_is_not_lost(tmp_path: Path, clock: FakeClock) -> None:
    holder: list[Outbox] = []

    class BackMidway(ScriptedSender):
        def send(self, item: OutboxItem) -> dict[str, Any]:
            self.keys.append(item.id)
            if len(self.keys) == 1:
                holder[0].kick()  # the link comes back while this attempt is failing
                raise ConnErr("reset")
            return super().send(item)

    snd = BackMidway()
    ob = Outbox(tmp_path / "o.db", snd, clock=clock, base_delay_s=600.0)
    holder.append(ob)
    try:
        item_id = ob.enqueue_rating(rating(1))
        ob.deliver_due()
        item = ob.get(item_id)
        assert item is not None and item.attempts == 1
        assert item.next_attempt_at <= clock()  # due now, not in up to 20 minutes
        assert ob.deliver_due() == 1
    finally:
        ob.close()
