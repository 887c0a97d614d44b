"""The console's live attacks (tests/security/attacks_console.py) against a real demo server on
loopback: every attempt is blocked."""

from __future__ import annotations

import inspect

import pytest

from tests.support.server_fixtures import RunningServer

attack_base = pytest.importorskip("tests.security.attack_base")  # the desk helper's runner base
attacks_console = pytest.importorskip("tests.security.attacks_console")


def test_every_console_attack_is_blocked(fresh_hall_server: RunningServer) -> None:
    fns = [f for n, f in inspect.getmembers(attacks_console, inspect.isfunction) if n.startswith("attack_")]
    assert len(fns) == 4
    results = []
    for fn in fns:
        ctx = attack_base.AttackContext(fresh_hall_server.url)
        try:
            got = fn(fresh_hall_server.url, ctx)
        finally:
            ctx.close()
        results += got if isinstance(got, list) else [got]
    assert len(results) == 7
    accepted = [r.render() for r in results if not r.blocked]
    assert not accepted, accepted
