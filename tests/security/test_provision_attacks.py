"""The provisioning/operations live attacks (tests/security/attacks_provision.py) against a real
demo server on loopback: every attempt is blocked (the flood one failed on the old server: every
call was its own database probe, and the answer had no probe time)."""

from __future__ import annotations

import inspect

from tests.security import attack_base, attacks_provision
from tests.support.server_fixtures import RunningServer


def test_every_provision_attack_is_blocked(fresh_hall_server: RunningServer) -> None:
    fns = [f for n, f in inspect.getmembers(attacks_provision, inspect.isfunction)
           if n.startswith("attack_")]
    assert len(fns) == 3
    results = []
    for fn in fns:
        ctx = attack_base.AttackContext(fresh_hall_server.url)
        try:
            got = fn(fresh_hall_server.url, ctx)
        finally:
            ctx.close()
        results += got if isinstance(got, list) else [got]
    accepted = [r.render() for r in results if not r.blocked]
    assert not accepted, accepted
