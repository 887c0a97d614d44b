"""PadService does no I/O while holding its lock, so the Tk thread (which reads ``rating_open``)
can never freeze behind a slow server or disk; and a rating is still stored exactly once.

Real desk (CounterCore with the LAN pad link), real reference server, a software pad posting to
the desk's LAN endpoint. The pad key lookup (an HTTP call) and the outbox COMMIT are wrapped:
while each runs, another thread must be able to take the service's lock. Deterministic: the
probe uses a non-blocking acquire, no timing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from api_client import HallClient
from counter_app.events import RatingStored
from tests.pad_helpers import SoftPad, make_desk, pair, serve_one_case
from tests.support.server_fixtures import DEMO_PASSWORD, RunningServer, signed_in


@pytest.fixture
def desk(fresh_hall_server: RunningServer, tmp_path: Path) -> Iterator[Any]:
    core = make_desk(fresh_hall_server.url, tmp_path)
    core.pad.thanks_s = 0.2
    try:
        yield core
    finally:
        core.close()


def lock_free_elsewhere(service: Any) -> bool:
    """Can another thread take the service's lock right now (without waiting)?"""
    got: list[bool] = []

    def probe() -> None:
        ok = service._lock.acquire(blocking=False)
        if ok:
            service._lock.release()
        got.append(ok)

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    return got[0]


def to_pad_msg(m: dict[str, Any]) -> dict[str, Any]:
    return {"rating_id": m["id"], **{k: m[k] for k in ("case_id", "window_no", "level", "reasons",
            "comment", "challenge", "rated_at", "pad_id", "pad_counter", "signature")}}


def test_no_lock_held_during_http_or_commit(desk: Any, fresh_hall_server: RunningServer) -> None:
    kiosk = HallClient(fresh_hall_server.url)
    kiosk.login("8001", DEMO_PASSWORD)
    pad = SoftPad()
    pair(signed_in(fresh_hall_server.url, "8001"), signed_in(fresh_hall_server.url, "8001"), 1, pad)
    service = desk.pad
    stored: list[RatingStored] = []
    desk.bus.subscribe(RatingStored, stored.append)
    case = serve_one_case(desk, kiosk)
    req = service.request_rating(case)
    # As right after a re-pairing: the desk does not know the key yet and must ask the server.
    service._pad_key = None
    seen: dict[str, Any] = {}
    real_pads, real_enqueue = desk.client.window_pads, desk.outbox.enqueue_rating

    def window_pads(*a: Any, **k: Any) -> Any:
        seen["pads_lock_free"] = lock_free_elsewhere(service)
        return real_pads(*a, **k)

    entered, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def enqueue_rating(sub: Any) -> str:
        calls.append(sub.id)
        seen["commit_lock_free"] = lock_free_elsewhere(service)
        seen["open_during_commit"] = service.rating_open
        entered.set()
        release.wait(30)
        return str(real_enqueue(sub))

    desk.client.window_pads = window_pads
    desk.outbox.enqueue_rating = enqueue_rating
    url = f"http://127.0.0.1:{service.transport.port}/pad/api/rating"
    good = pad.rating(case_id=case.id, window_no=1, challenge=req.challenge, level="satisfied")
    answers: list[int] = []

    def post() -> None:
        answers.append(requests.post(url, json=to_pad_msg(good), timeout=60).status_code)

    first = threading.Thread(target=post)
    first.start()
    assert entered.wait(30)
    # The pad re-sends while the first copy is being committed (its answer was lost).
    second = threading.Thread(target=post)
    second.start()
    release.set()
    first.join()
    second.join()
    assert seen == {"pads_lock_free": True, "commit_lock_free": True, "open_during_commit": True}
    assert answers == [200, 200]
    assert calls == [good["id"]] and [s.rating_id for s in stored] == [good["id"]]
    assert not service.rating_open and desk.outbox.get(good["id"]) is not None
    kiosk.close()


class Tripwire:
    """Stands in for the lock: any use of it fails the test."""

    def __enter__(self) -> None:
        raise AssertionError("rating_open took the lock")

    def __exit__(self, *exc: object) -> None:
        return None

    def acquire(self, *a: Any, **k: Any) -> bool:
        raise AssertionError("rating_open took the lock")


def test_rating_open_is_read_without_the_lock(desk: Any, fresh_hall_server: RunningServer) -> None:
    service = desk.pad
    real = service._lock
    service._lock = Tripwire()
    try:
        assert service.rating_open is False
    finally:
        service._lock = real
