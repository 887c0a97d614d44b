"""The live pad attacks (tests/security/attacks_pad.py) against a real demo server on loopback:
every attempt is blocked. Needs the runner's shared types (tests/security/attack_base.py, from
the desk helper's branch); skipped until they are merged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server_fixtures import RunningServer, start_server_thread

attack_base = pytest.importorskip("tests.security.attack_base")


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[RunningServer]:
    s = start_server_thread(data_dir=tmp_path / "hall", demo=True)
    yield s
    s.stop()


def test_every_pad_attack_is_blocked(srv: RunningServer) -> None:
    from tests.security import attacks_pad

    results = []
    for name in sorted(n for n in dir(attacks_pad) if n.startswith("attack_")):
        ctx = attack_base.AttackContext(srv.url)
        try:
            got = getattr(attacks_pad, name)(srv.url, ctx)
        finally:
            ctx.close()
        results += got if isinstance(got, list) else [got]
    assert len(results) >= 12
    accepted = [r.render() for r in results if not r.blocked]
    assert accepted == []
