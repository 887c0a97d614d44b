"""Signed pad ratings survive an outage: the outbox delivers ratings first-in-first-out.

The server refuses a pad rating whose ``pad_counter`` is not above the last one it accepted
(``409 counter_replayed``) and flags a jump as a counter gap. Ratings queued while the server is
down must therefore arrive in the order they were captured, however their retries were
scheduled. The real reference server is stopped (a real process, terminated) while ten signed
ratings (counters 1..10) are queued and retried on an injected clock, then started again on the
same port and data: all ten accepted, none dead, no counter-gap flag.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from counter_app.outbox import KIND_RATING, HallSender, Outbox, OutboxItem
from tests.outbox_child import PASSWORD, staff_for_window
from tests.pad_helpers import SoftPad, challenge, open_cases, pair
from tests.support.server_fixtures import free_port, signed_in, start_server_process

WINDOW = 4


class Clock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


def _pad_rows(data_dir: Path, pad_id: str) -> tuple[int, list[Any]]:
    eng = create_engine(f"sqlite:///{data_dir / 'hall.sqlite3'}")
    try:
        with eng.connect() as c:
            n = c.execute(text("SELECT COUNT(*) FROM ratings WHERE pad_id = :p"), {"p": pad_id}).scalar()
            flags = list(c.execute(text("SELECT kind FROM pad_flags WHERE pad_id = :p"), {"p": pad_id}))
        return int(n or 0), flags
    finally:
        eng.dispose()


def test_signed_ratings_queued_during_an_outage_all_arrive(tmp_path: Path) -> None:
    from api_client import HallClient

    data_dir, port = tmp_path / "server", free_port()
    server = start_server_process(data_dir, port=port)
    try:
        sup = signed_in(server.url, "8001")
        desk = signed_in(server.url, staff_for_window(WINDOW), WINDOW)
        pad = SoftPad()
        pair(sup, desk, WINDOW, pad)
        cases = open_cases(desk, WINDOW, 10)
        challenges = [challenge(desk, c) for c in cases]
        client = HallClient(server.url, timeout=(1.0, 5.0), max_retries=0)
        client.login(staff_for_window(WINDOW), PASSWORD, WINDOW)
    finally:
        server.terminate()

    clock = Clock()
    ob = Outbox(tmp_path / "outbox.db", HallSender(client), clock=clock, base_delay_s=1.0,
                max_delay_s=300.0, rng=random.Random(20261125))
    try:
        for case_id, ch in zip(cases, challenges, strict=True):
            ob.enqueue_rating(pad.rating(case_id=case_id, window_no=WINDOW, challenge=ch))
            clock.t += 1.0
        # Down for a while: every pass tries what is due and fails to connect.
        for _ in range(200):
            ob.deliver_due()
            clock.t += 7.0
        assert ob.stats().depth == 10
        assert ob.items(kind=KIND_RATING)[0].attempts >= 10  # the outage really was retried
        server = start_server_process(data_dir, port=port)
        try:
            # Back, and the retries run their own schedule (no kick: the rows' timers decide).
            for _ in range(500):
                ob.deliver_due()
                if ob.stats().depth == 0:
                    break
                clock.t += 5.0
            st = ob.stats()
            dead = [(d.payload_obj["pad_counter"], d.last_error) for d in ob.dead_items()]
            assert dead == [] and st.depth == 0, dead
            accepted, flags = _pad_rows(data_dir, pad.pad_id)
            assert accepted == 10
            assert flags == []
        finally:
            server.terminate()
    finally:
        ob.close()


def test_a_failing_rating_holds_back_younger_ratings_not_documents(tmp_path: Path) -> None:
    """Pure ordering logic: a retryable failure of the oldest rating keeps younger ratings
    waiting (their schedule follows it), a dead one does not block, documents are independent."""

    clock = Clock()
    sent: list[str] = []
    fail: set[str] = set()

    class Refused(Exception):
        def __init__(self, status: int, retryable: bool) -> None:
            super().__init__(f"{status}")
            self.status, self.retryable = status, retryable

    def send(item: OutboxItem) -> dict[str, Any]:
        if item.id in fail:
            raise Refused(503, True)
        if item.id == "dead-1":
            raise Refused(409, False)
        sent.append(item.id)
        return {"ok": True}

    ob = Outbox(tmp_path / "o.db", send, clock=clock, rng=random.Random(1))
    try:
        ob.enqueue(KIND_RATING, {"n": 0}, item_id="dead-1")
        clock.t += 1
        for n in range(1, 4):
            ob.enqueue(KIND_RATING, {"n": n}, item_id=f"r{n}")
            clock.t += 1
        ob.enqueue("document", {"d": 1}, item_id="doc-1")
        fail.add("r1")
        ob.deliver_due()
        assert sent == ["doc-1"]  # r1 failed: r2, r3 wait behind it; the dead one did not block
        r1 = ob.get("r1")
        assert r1 is not None and r1.state == "pending"
        assert ob.get("dead-1").state == "dead"  # type: ignore[union-attr]
        for later in ("r2", "r3"):
            item = ob.get(later)
            assert item is not None and item.next_attempt_at >= r1.next_attempt_at
        # A rating captured meanwhile also waits its turn.
        ob.enqueue(KIND_RATING, {"n": 4}, item_id="r4")
        assert ob.deliver_due() == 0 and sent == ["doc-1"]
        fail.clear()
        clock.t = r1.next_attempt_at
        while ob.deliver_due():
            pass
        assert sent == ["doc-1", "r1", "r2", "r3", "r4"]
    finally:
        ob.close()
