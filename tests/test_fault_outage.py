"""A 72-hour outage with an injected clock: every rating queued meanwhile is delivered after.

The outbox talks to the real server through the fault proxy. During the outage the proxy points
at a port where nothing listens (connections are refused/reset); the clock is advanced in steps
to 72 hours with a delivery pass at each, so the retry schedule really runs its course. Then the
link comes back, ``kick()`` wakes delivery, and every rating arrives once: none dropped by age or
count, none dead. CI: 1,000 ratings; heavy: OUTBOX_OUTAGE_RATINGS (5,000).
"""

from __future__ import annotations

import os
import random
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from counter_app.outbox import HallSender, Outbox
from tests.faultproxy import FaultProxy
from tests.outbox_child import (
    PASSWORD,
    make_cases,
    rating_for,
    server_rating_ids,
    skip_unless_heavy_selected,
    staff_for_window,
)


class Clock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


def dead_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()  # nothing listens there now
    return port


def run_outage(server_url: str, tmp_path: Path, n: int) -> None:
    from api_client import HallClient

    window = 5
    setup = HallClient(server_url)
    setup.login(staff_for_window(window), PASSWORD, window)
    cases = make_cases(setup, window, n)
    real_port = int(server_url.rsplit(":", 1)[1])
    with FaultProxy(dead_port()) as proxy:
        client = HallClient(proxy.url, timeout=(1.0, 5.0), max_retries=0)
        clock = Clock()
        ob = Outbox(tmp_path / "outbox.db", HallSender(client), clock=clock,
                    rng=random.Random(3))
        try:
            ids = [ob.enqueue_rating(rating_for(c["case_id"], window, i))
                   for i, c in enumerate(cases)]
            start = clock.t
            passes = 0
            while clock.t - start < 72 * 3600:
                ob.deliver_due()
                passes += 1
                clock.t += 600  # ten minutes between passes
            st = ob.stats()
            assert st.depth == n and st.dead == 0
            assert st.oldest_age_s is not None and st.oldest_age_s >= 72 * 3600
            tried = ob.items(state="pending")
            assert sum(i.attempts for i in tried) >= passes // 2  # it kept trying all along
            assert all("connection" in (i.last_error or "").lower() or i.attempts == 0
                       for i in tried)
            proxy.upstream_port = real_port  # the link is back
            # Sign in (the session service does this when the link returns).
            client.login("8001", PASSWORD)
            ob.kick()
            while ob.deliver_due(limit=500):
                pass
            st = ob.stats()
            assert st.depth == 0 and st.dead == 0
            assert {i.id for i in ob.items(state="done")} == set(ids)
        finally:
            ob.close()
    server_ids = server_rating_ids(setup, [window])
    assert sorted(server_ids) == sorted(ids)


def test_72_hour_outage(fresh_hall_server: Any, tmp_path: Path) -> None:
    run_outage(fresh_hall_server.url, tmp_path, 1000)


@pytest.mark.heavy
@pytest.mark.timeout(4 * 3600)  # thousands of real cases are made through the API first
def test_72_hour_outage_heavy(
    request: pytest.FixtureRequest, fresh_hall_server: Any, tmp_path: Path
) -> None:
    skip_unless_heavy_selected(request)
    run_outage(fresh_hall_server.url, tmp_path, int(os.environ.get("OUTBOX_OUTAGE_RATINGS", "5000")))
