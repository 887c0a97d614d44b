"""HallClient through the fault proxy (tests/faultproxy.py) in front of the real hall server.

What a desk sees on a bad network: an answer lost after the server committed (the retry with the
same Idempotency-Key gets the first result, nothing is done twice), an answer cut in half, a
link that swallows everything (timeout), and an event stream whose connection dies (it
reconnects with Last-Event-ID and delivers what happened meanwhile).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from api_client import HallClient, ServerEvent, errors
from tests.faultproxy import FaultProxy
from tests.support.server_fixtures import DEMO_PASSWORD, RunningServer


@pytest.fixture
def proxy(fresh_hall_server: RunningServer) -> Iterator[FaultProxy]:
    port = int(fresh_hall_server.url.rsplit(":", 1)[1])
    p = FaultProxy(port).start()
    yield p
    p.stop()


def switch_to_pass_on_retry(client: HallClient, proxy: FaultProxy, waits: list[float]) -> None:
    """Heal the network exactly between the client's first attempt and its retry."""

    def heal(delay: float) -> None:
        waits.append(delay)
        proxy.set_mode("pass")

    client._transport._sleep = heal  # type: ignore[assignment]


def test_answer_lost_after_commit_is_retried_as_a_replay(
    proxy: FaultProxy, fresh_hall_server: RunningServer
) -> None:
    with HallClient(proxy.url, backoff_base=0.01) as c, HallClient(fresh_hall_server.url) as direct:
        direct.login("1001", DEMO_PASSWORD, 1)
        waits: list[float] = []
        switch_to_pass_on_retry(c, proxy, waits)
        proxy.set_mode("reset_after_response")
        t = c.issue_ticket("A")
        assert len(waits) == 1 and proxy.stats.faulted == {"reset_after_response": 1}
        # The server did the work once: one ticket, the one the retry reported.
        assert [x.id for x in direct.queue(1).waiting] == [t.id]


def test_lost_answer_then_caller_retry_with_the_same_key(
    proxy: FaultProxy, fresh_hall_server: RunningServer
) -> None:
    # What the outbox does: no in-process retry, the row id as key, delivered again later.
    with HallClient(proxy.url, max_retries=0) as c, HallClient(fresh_hall_server.url) as direct:
        direct.login("1001", DEMO_PASSWORD, 1)
        proxy.set_mode("reset_after_response")
        with pytest.raises(errors.ApiConnectionError) as ei:
            c.issue_ticket("A", idempotency_key="outbox-row-1")
        assert ei.value.retryable
        proxy.set_mode("pass")
        t = c.issue_ticket("A", idempotency_key="outbox-row-1")
        assert [x.id for x in direct.queue(1).waiting] == [t.id]


def test_answer_cut_mid_body(proxy: FaultProxy) -> None:
    with HallClient(proxy.url, max_retries=0) as c:
        proxy.set_mode("cut_mid_body")
        with pytest.raises(errors.ApiConnectionError) as ei:
            c.health()
        assert ei.value.retryable
    with HallClient(proxy.url, backoff_base=0.01) as c:
        waits: list[float] = []
        switch_to_pass_on_retry(c, proxy, waits)
        proxy.set_mode("cut_mid_body")
        assert c.health().status == "ok" and len(waits) == 1


def test_black_hole_is_a_timeout(proxy: FaultProxy) -> None:
    proxy.blackhole_s = 5.0
    proxy.set_mode("blackhole")
    with HallClient(proxy.url, timeout=(2.0, 0.3), max_retries=0) as c:
        with pytest.raises(errors.ApiTimeoutError):
            c.health()


def test_event_stream_survives_a_dead_connection(
    proxy: FaultProxy, fresh_hall_server: RunningServer
) -> None:
    port = proxy.port
    with HallClient(proxy.url) as c, HallClient(fresh_hall_server.url) as kiosk:
        c.login("1001", DEMO_PASSWORD, 1)
        stream = c.events(window_no=1)
        states: list[str] = []
        stream.on_state = states.append
        got: list[ServerEvent] = []
        cond = threading.Condition()

        def consume() -> None:
            for e in stream:
                with cond:
                    got.append(e)
                    cond.notify_all()

        def wait_for(pred, what: str) -> None:  # type: ignore[no-untyped-def]
            with cond:
                if not cond.wait_for(pred, timeout=30):  # a hang guard only
                    pytest.fail(f"timed out waiting for {what}; states={states}")

        reader = threading.Thread(target=consume, daemon=True)
        reader.start()
        deadline = time.monotonic() + 30
        while "connected" not in states and time.monotonic() < deadline:
            time.sleep(0.01)
        t1 = kiosk.issue_ticket("A")
        wait_for(lambda: any(e.ticket and e.ticket.id == t1.id for e in got), "the first ticket")
        # The link dies: every connection through the proxy is torn down, and while it is down
        # a second ticket is issued.
        proxy.stop()
        t2 = kiosk.issue_ticket("A")
        new_proxy = FaultProxy(int(fresh_hall_server.url.rsplit(":", 1)[1]), listen_port=port)
        new_proxy.start()
        try:
            wait_for(
                lambda: any(e.ticket and e.ticket.id == t2.id for e in got), "the missed ticket"
            )
        finally:
            stream.close()
            reader.join(10)
            new_proxy.stop()
    assert not reader.is_alive()
    issued = [e.ticket.id for e in got if e.type == "ticket.issued" and e.ticket]
    assert issued == [t1.id, t2.id]  # each exactly once, in order
    i = states.index("connected")
    assert "disconnected" in states[i:] and states.count("connected") >= 2
