"""build/windows/installer.iss, parsed (Inno Setup cannot run here): the install fails visibly
when `--self-test` or `setup` fails, and enrolment runs as the clerk, not the installing admin.
Honest limit: this checks the script's text, not its behaviour on Windows."""

from __future__ import annotations

import re
from pathlib import Path

ISS = (Path(__file__).resolve().parents[1] / "build" / "windows" / "installer.iss").read_text(
    encoding="utf-8")


def section(name: str) -> str:
    m = re.search(rf"^\[{name}\]\n(.*?)(?=^\[\w+\]\n|\Z)", ISS, re.M | re.S)
    return m.group(1) if m else ""


def test_no_hidden_unchecked_run_entries() -> None:
    # [Run] entries cannot see exit codes: every tool runs from [Code] through RunChecked.
    run = [ln for ln in section("Run").splitlines() if ln.strip() and not ln.startswith(";")]
    assert run == []
    code = section("Code")
    assert "ResultCode = 0" in code and "MsgBox(" in code and "mbCriticalError" in code
    assert re.search(r"RunChecked\('self-test', '--self-test'\)", code)
    assert re.search(r"RunChecked\('setup', 'setup --no-input", code)
    # A failure sets the installer's exit code.
    assert "function GetCustomSetupExitCode" in code and "InstallFailed := True" in code


def test_admin_never_enrols_the_clerk_enrols_at_first_logon() -> None:
    code = section("Code")
    admin_setup = re.search(r"RunChecked\('setup', (.*?)\) then", code, re.S)
    assert admin_setup and "enrollment-code" not in admin_setup.group(1)
    assert "Active Setup" in section("Registry") and "enrol-as-clerk.cmd" in section("Registry")
    assert "--enrollment-code" in code and "%LOCALAPPDATA%" in code


def test_states_it_is_untested_here() -> None:
    assert "untested" in ISS.lower()
