"""The outbox against the real reference server: the delivery worker thread, kick(), the bus
event, the server's permanent refusals going to dead (visible, kept), 401 never dead, and
reconciliation re-queuing a done rating the server does not have."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from counter_app.events import EventBus, OutboxChanged
from counter_app.outbox import HallSender, Outbox
from tests.faultproxy import FaultProxy
from tests.outbox_child import PASSWORD, make_cases, rating_for, server_rating_ids, staff_for_window
from tests.test_fault_outage import dead_port

WINDOW = 7


def desk_and_sender(url: str) -> tuple[Any, HallSender]:
    from api_client import HallClient

    desk = HallClient(url)
    desk.login(staff_for_window(WINDOW), PASSWORD, WINDOW)
    client = HallClient(url, max_retries=0)
    client.login("8001", PASSWORD)
    return desk, HallSender(client)


def wait_for(cond: Any, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


def test_worker_delivers_and_kick_wakes_it(fresh_hall_server: Any, tmp_path: Path) -> None:
    desk, sender = desk_and_sender(fresh_hall_server.url)
    cases = make_cases(desk, WINDOW, 6)
    bus = EventBus()
    seen: list[OutboxChanged] = []
    got = threading.Event()

    def on(e: OutboxChanged) -> None:
        seen.append(e)
        got.set()

    bus.subscribe(OutboxChanged, on)
    with FaultProxy(dead_port()) as proxy:
        from api_client import HallClient

        sender.client = HallClient(proxy.url, max_retries=0)
        ob = Outbox(tmp_path / "o.db", sender, bus=bus, base_delay_s=600, max_delay_s=3600)
        try:
            ob.start()
            ids = [ob.enqueue_rating(rating_for(c["case_id"], WINDOW, i))
                   for i, c in enumerate(cases)]
            wait_for(lambda: (it := ob.get(ids[0])) is not None and it.attempts >= 1)
            assert ob.stats().depth == 6 and seen[-1].depth >= 1
            # The link is back, but every row waits out a long backoff: kick() must not wait.
            proxy.upstream_port = int(fresh_hall_server.url.rsplit(":", 1)[1])
            sender.client.login("8001", PASSWORD)
            ob.kick()
            wait_for(lambda: ob.stats().depth == 0)
            wait_for(lambda: seen[-1] == OutboxChanged(depth=0, oldest_age_s=None, dead=0))
        finally:
            ob.close()
    assert sorted(server_rating_ids(desk, [WINDOW])) == sorted(ids)


def test_permanent_refusals_go_dead_and_stay_visible(fresh_hall_server: Any, tmp_path: Path) -> None:
    desk, sender = desk_and_sender(fresh_hall_server.url)
    (case,) = make_cases(desk, WINDOW, 1)
    ob = Outbox(tmp_path / "o.db", sender)
    try:
        first = ob.enqueue_rating(rating_for(case["case_id"], WINDOW, 0))
        # A second, different rating for the same case (another key): 409 case_already_rated.
        second = ob.enqueue_rating(rating_for(case["case_id"], WINDOW, 1))
        # A bad rating without reason or comment: 422 reason_required.
        (case2,) = make_cases(desk, WINDOW, 1)
        bad = rating_for(case2["case_id"], WINDOW, 3)
        bad["comment"] = ""
        third = ob.enqueue_rating(bad)
        while ob.deliver_due():
            pass
        assert ob.get(first).state == "done"  # type: ignore[union-attr]
        dead = {d.id: d.last_error or "" for d in ob.dead_items()}
        assert set(dead) == {second, third}
        assert "case_already_rated" in dead[second] and "reason_required" in dead[third]
        assert ob.stats().dead == 2
    finally:
        ob.close()
    ob = Outbox(tmp_path / "o.db", sender)  # still there after a restart
    try:
        assert {d.id for d in ob.dead_items()} == {second, third}
    finally:
        ob.close()


def test_unauthenticated_is_retried_not_dead(fresh_hall_server: Any, tmp_path: Path) -> None:
    from api_client import HallClient

    desk, _ = desk_and_sender(fresh_hall_server.url)
    (case,) = make_cases(desk, WINDOW, 1)
    client = HallClient(fresh_hall_server.url, max_retries=0)  # never signed in
    ob = Outbox(tmp_path / "o.db", HallSender(client))
    try:
        item_id = ob.enqueue_rating(rating_for(case["case_id"], WINDOW))
        ob.deliver_due()
        item = ob.get(item_id)
        assert item is not None and item.state == "pending" and item.attempts == 1
        assert "401" in (item.last_error or "")
        client.login("8001", PASSWORD)
        ob.kick()
        assert ob.deliver_due() == 1
    finally:
        ob.close()


def test_reconcile_requeues_what_the_server_lacks(fresh_hall_server: Any, tmp_path: Path) -> None:
    desk, sender = desk_and_sender(fresh_hall_server.url)
    cases = make_cases(desk, WINDOW, 4)
    ob = Outbox(tmp_path / "o.db", sender)
    try:
        ids = [ob.enqueue_rating(rating_for(c["case_id"], WINDOW)) for c in cases]
        ob.deliver_due(limit=3)
        # The fourth is marked done without ever reaching the server, as if the server had
        # lost it (restored from an older backup) after sending its receipt.
        ob._call(lambda c: c.execute("UPDATE outbox SET state = 'done', done_at = 0 WHERE id = ?",
                                     (ids[3],)))
        day = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
        report = ob.reconcile(WINDOW, day)
        assert report.requeued == [ids[3]]
        assert report.client_ids == 4 and report.server_ids == 3 and report.pending == 0
        assert ob.get(ids[3]).state == "pending"  # type: ignore[union-attr]
        assert ob.deliver_due() == 1
        again = ob.reconcile(WINDOW, day)
        assert again.requeued == [] and again.server_ids == 4 and again.unknown_on_server == []
    finally:
        ob.close()
