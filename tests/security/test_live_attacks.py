"""Every area's live attacks (the modules in `tests.security.attack.MODULES`) against a real
`hall-server --demo` process on loopback, one fresh server per area so one area's attempts (a
locked-out staff number, a used window) cannot make another's pass or fail: every attempt must
be refused, none may crash, and each area makes at least the attempts it was written with (an
attack that silently disappears fails here). `test_desk_attack_runner.py` runs all areas
together through the reviewer's command line.
"""

from __future__ import annotations

import io
from pathlib import Path
from types import ModuleType

import pytest

from tests.security import attack
from tests.support.server_fixtures import start_server_process

# Attempts each area makes today (an area may add more, never fewer).
MIN_ATTEMPTS = {
    "server": 12, "pad": 12, "desk": 3, "hall": 8, "console": 7, "display": 3, "applicant": 10,
    "provision": 3, "lifecycle": 13, "followup": 17, "padux": 4,
}


def _area(mod: ModuleType) -> str:
    return mod.__name__.rsplit(".", 1)[-1].removeprefix("attacks_")


def test_every_area_is_listed_with_its_attempts() -> None:
    assert sorted(_area(m) for m in attack.MODULES) == sorted(MIN_ATTEMPTS)
    files = {p.stem.removeprefix("attacks_") for p in Path(__file__).parent.glob("attacks_*.py")}
    assert files == set(MIN_ATTEMPTS), "an attacks_*.py file not in attack.MODULES (or gone)"


@pytest.mark.parametrize("module", attack.MODULES, ids=_area)
def test_every_attack_of_the_area_is_blocked(module: ModuleType, tmp_path: Path) -> None:
    srv = start_server_process(tmp_path / "hall", demo=True)
    try:
        out = io.StringIO()
        rc = attack.run(srv.url, [module], out)
    finally:
        srv.terminate()
    text = out.getvalue()
    lines = text.splitlines()
    assert rc == 0, text
    assert lines[-1].startswith("attacks: ") and "0 accepted, 0 crashed" in lines[-1], text
    attempts = [ln for ln in lines if ln.startswith(("BLOCKED ", "ACCEPTED"))]
    assert len(attempts) >= MIN_ATTEMPTS[_area(module)], text
