"""kill -9 while capturing ratings: nothing whose capture returned is lost, the file stays sound,
and afterwards every rating reaches the real server exactly once.

A child process (tests/outbox_child.py capture) enqueues ratings with the delivery worker off and
prints each id only after ``enqueue_rating`` returned; we SIGKILL it at random moments (during
open, between commits, in the middle of one). Rounds: 40 in CI, ``OUTBOX_KILL_ROUNDS`` (default
200) for the ``heavy`` variant.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.outbox_child import skip_unless_heavy_selected

ROOT = Path(__file__).resolve().parent.parent
CASES_PER_ROUND = 15


def spawn_capture(db: Path, cases: Path) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.outbox_child", "capture", str(db), str(cases)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())

    threading.Thread(target=reader, daemon=True).start()
    return proc, lines


def kill_rounds(
    db: Path, cases: list[dict[str, int]], rounds: int, rng: random.Random
) -> list[str]:
    """Run ``rounds`` capture children, each SIGKILLed at a random moment; check after each.

    Each round offers the child the next CASES_PER_ROUND cases (plus any left unrated), so
    most kills land while it is still writing.
    """
    printed: list[str] = []
    killed = 0
    cases_file = db.with_name("round-cases.json")
    for k in range(rounds):
        cases_file.write_text(json.dumps(cases[: (k + 1) * CASES_PER_ROUND]))
        proc, lines = spawn_capture(db, cases_file)
        if rng.random() < 0.15:
            time.sleep(rng.uniform(0, 0.25))  # anywhere, including while opening/migrating
        else:
            want = rng.randint(0, 10)  # right in the middle of the writes
            while proc.poll() is None and sum(1 for x in lines if len(x) == 36) < want:
                time.sleep(0.0005)
            time.sleep(rng.uniform(0, 0.002))
        if "finished" not in lines:
            killed += 1
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.01)  # let the reader thread take the last lines
        ids = [x for x in lines if len(x) == 36]
        printed += ids
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if "ratings" in tables:
                stored = {r[0] for r in conn.execute("SELECT id FROM outbox")}
                stored_ratings = {r[0] for r in conn.execute("SELECT id FROM ratings")}
            else:  # killed before the first migration committed: nothing may have been printed
                stored = stored_ratings = set()
        finally:
            conn.close()
        lost = [i for i in printed if i not in stored]
        assert not lost, f"{len(lost)} ratings whose capture returned are missing"
        assert stored == stored_ratings  # item and outbox row: one transaction
    assert killed >= rounds * 0.5, f"only {killed} of {rounds} rounds were killed mid-way"
    return printed


def test_kill9_capture_loses_nothing(tmp_path: Path) -> None:
    """The same, without a server (case ids made up): the capture side alone."""
    rounds = 40
    cases = [{"case_id": 10_000 + i, "window_no": 1} for i in range(rounds * CASES_PER_ROUND)]
    printed = kill_rounds(tmp_path / "outbox.db", cases, rounds, random.Random(1))
    assert len(printed) == len(set(printed)) and printed


def _kill9_then_deliver(server_url: str, tmp_path: Path, rounds: int) -> None:
    from api_client import HallClient
    from counter_app.outbox import HallSender, Outbox
    from tests.outbox_child import PASSWORD, make_cases, server_rating_ids, staff_for_window

    client = HallClient(server_url)
    client.login(staff_for_window(1), PASSWORD, 1)
    cases = make_cases(client, 1, rounds * CASES_PER_ROUND)
    db = tmp_path / "outbox.db"
    printed = kill_rounds(db, cases, rounds, random.Random(rounds))

    ob = Outbox(db, HallSender(client))
    try:
        stored = [i.id for i in ob.items()]
        assert set(printed) <= set(stored)
        while ob.deliver_due(limit=500):
            pass
        assert ob.stats().depth == 0 and ob.stats().dead == 0
        # Deliver everything once more, as if every answer had been lost: all replays.
        ob._call(lambda c: c.execute("UPDATE outbox SET state = 'pending'"))
        while ob.deliver_due(limit=500):
            pass
        assert ob.stats().dead == 0
        rated_cases = ob._call(lambda c: [r[0] for r in c.execute("SELECT case_id FROM ratings")])
        assert len(rated_cases) == len(set(rated_cases))  # one rating per case, client side
    finally:
        ob.close()
    server_ids = server_rating_ids(client, [1])
    assert sorted(server_ids) == sorted(stored), "server set must equal client set"
    assert len(server_ids) == len(set(server_ids))


def test_kill9_then_delivered_exactly_once(fresh_hall_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _kill9_then_deliver(fresh_hall_server.url, tmp_path, 40)


@pytest.mark.heavy
@pytest.mark.timeout(4 * 3600)  # thousands of real cases are made through the API first
def test_kill9_heavy(  # type: ignore[no-untyped-def]
    request: pytest.FixtureRequest, fresh_hall_server, tmp_path: Path
) -> None:
    skip_unless_heavy_selected(request)
    _kill9_then_deliver(
        fresh_hall_server.url, tmp_path, int(os.environ.get("OUTBOX_KILL_ROUNDS", "200"))
    )
