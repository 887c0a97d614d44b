"""The lifecycle attacks (tests/security/attacks_lifecycle.py) against the real server on
loopback: nobody but a supervisor concludes a case or enters a paper/phone rating, and no
window reads the hall's report or another window's deadlines."""

from __future__ import annotations

from tests.security import attacks_lifecycle
from tests.security.attack_base import AttackContext, AttackResult
from tests.support.server_fixtures import RunningServer

ATTACKS = (attacks_lifecycle.attack_conclude_without_back_office_role,
           attacks_lifecycle.attack_enter_ratings_as_clerk,
           attacks_lifecycle.attack_read_reports_and_deadlines)


def test_every_lifecycle_attack_is_blocked(fresh_hall_server: RunningServer) -> None:
    results: list[AttackResult] = []
    for attack in ATTACKS:
        ctx = AttackContext(fresh_hall_server.url)
        try:
            got = attack(fresh_hall_server.url, ctx)
        finally:
            ctx.close()
        results += got if isinstance(got, list) else [got]
    assert len(results) == 4 + 2 + 7
    assert all(r.blocked for r in results), "\n".join(r.render() for r in results)
