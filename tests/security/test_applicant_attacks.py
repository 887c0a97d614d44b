"""The applicant attacks (tests/security/attacks_applicant.py) against the real server on
loopback: every attempt is blocked."""

from __future__ import annotations

from tests.security import attacks_applicant
from tests.security.attacks_applicant import AttackContext, AttackResult
from tests.support.server_fixtures import RunningServer

ATTACKS = (attacks_applicant.attack_reveal_from_another_window, attacks_applicant.attack_enumerate_by_id_number,
           attacks_applicant.attack_reveal_without_purpose, attacks_applicant.attack_it_admin_and_anonymous,
           attacks_applicant.attack_redirect_mailing)


def test_every_applicant_attack_is_blocked(fresh_hall_server: RunningServer) -> None:
    results: list[AttackResult] = []
    for attack in ATTACKS:
        ctx = AttackContext(fresh_hall_server.url)
        try:
            got = attack(fresh_hall_server.url, ctx)
        finally:
            ctx.close()
        results += got if isinstance(got, list) else [got]
    assert len(results) == 10
    assert all(r.blocked for r in results), "\n".join(r.render() for r in results)
