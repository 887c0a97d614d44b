"""The live attack runner: `python -m tests.security.attack URL` against a real demo server.

The server is `python -m hall_server serve --demo` in its own process on loopback; the runner
is run as a reviewer would run it, in its own process, with every area's attacks together on one
server: it must finish with exit 0 (every attempt blocked, none crashed), each area present. Each
area alone on a fresh server: test_live_attacks.py. The exit-code contract is checked on small
attack modules in process.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security import attack, attacks_desk
from tests.security.attack_base import AttackContext, AttackResult
from tests.support.server_fixtures import REPO_ROOT, ServerProcess, start_server_process

DESK_ATTACKS = ["desk.login_over_plain_http", "desk.password_into_the_desk_log",
                "desk.device_secret_into_a_plaintext_keyring"]


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = start_server_process(tmp_path / "hall", demo=True)
    yield srv
    srv.terminate()


def _runner(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run([sys.executable, "-m", "tests.security.attack", url, *extra],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_runner_against_a_live_demo_server(demo_server: ServerProcess) -> None:
    proc = _runner(demo_server.url)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = lines[-1]
    assert summary.startswith("attacks: ") and "0 crashed" in summary, proc.stdout
    attempts = [ln for ln in lines if ln.startswith(("BLOCKED ", "ACCEPTED"))]
    assert len(attempts) == int(summary.split()[1]) >= len(DESK_ATTACKS)
    for name in DESK_ATTACKS:
        mine = [ln for ln in attempts if f" {name}: " in ln]
        assert len(mine) == 1 and mine[0].startswith("BLOCKED "), proc.stdout
        assert " -> " in mine[0]
    assert not any(ln.startswith("ACCEPTED") for ln in attempts), proc.stdout
    # Every area took part: at least the attempts each makes alone (test_live_attacks.py).
    from tests.security.test_live_attacks import MIN_ATTEMPTS

    assert len(attempts) >= sum(MIN_ATTEMPTS.values()), proc.stdout
    # The password-in-log attempt really reached the server (a status, not "nothing sent").
    log_line = next(ln for ln in attempts if "password_into_the_desk_log" in ln)
    assert "-> 401 server: bad_credentials" in log_line


def test_json_lines_and_only(demo_server: ServerProcess) -> None:
    proc = _runner(demo_server.url, "--json", "--only", "desk.device_secret")
    rows = [json.loads(ln) for ln in proc.stdout.splitlines()]
    assert rows[0]["name"] == "desk.device_secret_into_a_plaintext_keyring"
    assert rows[0]["blocked"] is True and rows[0]["status"] == 0
    assert rows[-1] == {"summary": "attacks: 1 attempts, 1 blocked, 0 accepted, 0 crashed"}
    assert proc.returncode == 0


def _module(**fns: object) -> types.ModuleType:
    mod = types.ModuleType("tests.security.attacks_fake")
    for name, fn in fns.items():
        fn.__module__ = mod.__name__  # type: ignore[attr-defined]
        setattr(mod, name, fn)
    return mod


def _result(blocked: bool) -> AttackResult:
    return AttackResult("fake.x", "tried", 200 if not blocked else 403, "answer", blocked)


def test_exit_codes() -> None:
    def attack_ok(base_url: str, ctx: AttackContext) -> AttackResult:
        assert isinstance(ctx.session.trust_env, bool) and not ctx.session.trust_env
        return _result(True)

    def attack_open(base_url: str, ctx: AttackContext) -> list[AttackResult]:
        return [_result(True), _result(False)]

    def attack_broken(base_url: str, ctx: AttackContext) -> AttackResult:
        raise RuntimeError("boom")

    out = io.StringIO()
    assert attack.run("http://127.0.0.1:9", [_module(attack_ok=attack_ok)], out) == 0
    assert attack.run("http://127.0.0.1:9", [_module(attack_ok=attack_ok,
                                                     attack_broken=attack_broken)], out) == 2
    out = io.StringIO()
    rc = attack.run("http://127.0.0.1:9", [_module(attack_open=attack_open,
                                                   attack_broken=attack_broken)], out)
    text = out.getvalue()
    assert rc == 1 and "ACCEPTED fake.x: tried -> 200 answer" in text
    assert "ERROR    fake.broken: the attack itself failed: RuntimeError: boom" in text
    assert text.splitlines()[-1] == "attacks: 2 attempts, 1 blocked, 1 accepted, 1 crashed"


def test_the_desk_module_is_on_the_explicit_list() -> None:
    assert attacks_desk in attack.MODULES
    names = [n for n, _fn in attack.collect([attacks_desk])]
    assert names == DESK_ATTACKS
