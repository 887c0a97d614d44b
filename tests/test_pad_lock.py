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

from tests.pad_helpers import make_desk
from tests.support.server_fixtures import RunningServer


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
