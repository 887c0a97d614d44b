"""Hypothesis stateful test of the outbox against the real server through the fault proxy.

Rules: capture a rating (for a fresh real case), run a delivery step, crash (close and reopen
the outbox on the same file), take the server link down / bring it up, make the proxy reset
connections after the server answered, and force a duplicate delivery (a done row sent again as
if its answer had been lost). Invariants, after every step: the server's ids are a subset of the
client's, every id ever returned by capture is in the client's database, nothing is dead; once
drained with the link up, the two sets are equal. ~50 examples.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from counter_app.outbox import HallSender, Outbox
from tests.faultproxy import FaultProxy
from tests.outbox_child import PASSWORD, make_cases, rating_for, server_rating_ids, staff_for_window
from tests.test_fault_outage import dead_port

WINDOW = 6


class World:
    """What lives across examples: the server, the proxy, the client database file."""

    def __init__(self, server_url: str, tmp: Path) -> None:
        from api_client import HallClient

        self.server_url = server_url
        self.real_port = int(server_url.rsplit(":", 1)[1])
        self.dead = dead_port()
        self.proxy = FaultProxy(self.real_port, seed=11).start()
        self.desk = HallClient(server_url)
        self.desk.login(staff_for_window(WINDOW), PASSWORD, WINDOW)
        self.viewer = HallClient(server_url)
        self.viewer.login("8001", PASSWORD)
        self.db = tmp / "outbox.db"
        self.captured: set[str] = set()

    def client(self) -> Any:
        from api_client import HallClient

        c = HallClient(self.proxy.url, timeout=(1.0, 3.0), max_retries=0)
        c.login("8001", PASSWORD)
        return c

    def server_ids(self) -> set[str]:
        return set(server_rating_ids(self.viewer, [WINDOW]))


WORLD: World | None = None


class OutboxMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        assert WORLD is not None
        self.w = WORLD
        self.w.proxy.upstream_port = self.w.real_port
        self.w.proxy.set_mode("pass")
        self.up = True
        self.sender = HallSender(self.w.client())
        self.ob = Outbox(self.w.db, self.sender, rng=random.Random(0), base_delay_s=0.0)

    def teardown(self) -> None:
        self.ob.close()

    @rule(n=st.integers(1, 3))
    def capture(self, n: int) -> None:
        for case in make_cases(self.w.desk, WINDOW, n):
            self.w.captured.add(self.ob.enqueue_rating(rating_for(case["case_id"], WINDOW)))

    @rule(limit=st.integers(1, 4))
    def deliver_step(self, limit: int) -> None:
        self.ob.kick()  # make everything due now (the backoff is tested elsewhere)
        self.ob.deliver_due(limit=limit)

    @rule()
    def crash(self) -> None:
        self.ob.close()
        self.ob = Outbox(self.w.db, self.sender, rng=random.Random(1), base_delay_s=0.0)

    @precondition(lambda self: self.up)
    @rule()
    def server_down(self) -> None:
        self.w.proxy.upstream_port = self.w.dead
        self.up = False

    @precondition(lambda self: not self.up)
    @rule()
    def server_up(self) -> None:
        self.w.proxy.upstream_port = self.w.real_port
        self.up = True

    @rule(on=st.booleans())
    def resets_after_commit(self, on: bool) -> None:
        self.w.proxy.set_mode("reset_after_response" if on else "pass", 0.5)

    @rule(pick=st.integers(0, 1_000_000))
    def duplicate_delivery(self, pick: int) -> None:
        # Drawn as a number, not from the rows: the database outlives an example, and
        # hypothesis needs its draws not to depend on such state.
        done = self.ob.items(state="done")
        if not done:
            return
        item = done[pick % len(done)]
        # As if the answer had been lost after the server committed: it goes again, same key.
        self.ob._call(lambda c: c.execute(
            "UPDATE outbox SET state = 'pending', next_attempt_at = 0 WHERE id = ?", (item.id,)))

    @invariant()
    def server_subset_of_client(self) -> None:
        client_ids = {i.id for i in self.ob.items()}
        assert self.w.captured <= client_ids
        assert self.w.server_ids() <= client_ids
        assert self.ob.stats().dead == 0

    def drain(self) -> None:
        self.w.proxy.upstream_port = self.w.real_port
        self.w.proxy.set_mode("pass")
        self.up = True
        for _ in range(1000):
            self.ob.kick()
            self.ob.deliver_due(limit=500)
            if self.ob.stats().depth == 0:
                break
        assert self.ob.stats().depth == 0
        assert self.w.server_ids() == {i.id for i in self.ob.items()}


class DrainingMachine(OutboxMachine):
    def teardown(self) -> None:
        try:
            self.drain()
        finally:
            super().teardown()


SETTINGS = settings(
    max_examples=50,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture(scope="module")
def world(hall_server: Any, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    global WORLD
    WORLD = World(hall_server.url, tmp_path_factory.mktemp("stateful"))
    yield WORLD
    WORLD.proxy.stop()
    WORLD = None


def test_outbox_state_machine(world: World) -> None:
    run_state_machine_as_test(DrainingMachine, settings=SETTINGS)
