"""The live attacks of attacks_server.py, run against a real `hall-server --demo` process on
loopback: every one must be refused. (The same functions are what a reviewer runs against
any server with `python -m tests.security.attack URL`.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.security.attack_base import AttackContext
from tests.security.attacks_server import ATTACKS
from tests.support.server_fixtures import ServerProcess, start_server_process


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server_process(tmp_path_factory.mktemp("live"), demo=True)
    yield srv
    srv.terminate()


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda f: f.__name__)
def test_attack_is_blocked(live: ServerProcess, attack: Any) -> None:
    result = attack(live.url, AttackContext(live.url))
    assert result.blocked, f"{result.name}: {result.attempt} -> {result.status} {result.answer}"
    assert result.attempt and result.answer


def test_every_finding_has_an_attack() -> None:
    names = {f.__name__ for f in ATTACKS}
    assert len(names) == len(ATTACKS) >= 12
    assert Path(__file__).with_name("attacks_server.py").exists()
