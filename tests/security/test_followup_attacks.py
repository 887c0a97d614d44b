"""The follow-up and appeal attacks (tests/security/attacks_followup.py) against the real server
on loopback: a clerk appealing another window's rating, a clerk deciding their own appeal, a
second appeal on one rating, another window reading or working a follow-up or taking the
citizen's phone, a supervisor reviewing their own work, IT and anonymous callers: all blocked."""

from __future__ import annotations

from tests.security import attack, attacks_followup
from tests.security.attack_base import AttackContext, AttackResult
from tests.support.server_fixtures import RunningServer

ATTACKS = (attacks_followup.attack_other_window_staff, attacks_followup.attack_clerk_decides_own_appeal,
           attacks_followup.attack_supervisor_reviews_own_work, attacks_followup.attack_it_admin_and_anonymous)


def test_every_followup_attack_is_blocked(fresh_hall_server: RunningServer) -> None:
    results: list[AttackResult] = []
    for fn in ATTACKS:
        ctx = AttackContext(fresh_hall_server.url)
        try:
            got = fn(fresh_hall_server.url, ctx)
        finally:
            ctx.close()
        results += got if isinstance(got, list) else [got]
    assert len(results) == 17
    assert all(r.blocked for r in results), "\n".join(r.render() for r in results)


def test_the_runner_knows_the_module() -> None:
    assert attacks_followup in attack.MODULES
    assert [fn for _, fn in attack.collect([attacks_followup])] == list(ATTACKS)  # every attack is tested here
