"""The `counter-app` command line as a user or CI runs it: version, doctor, demo headless check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from counter_app import __version__
from counter_desk.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        COUNTER_MACHINE_CONFIG=str(tmp_path / "machine.toml"),
        COUNTER_USER_CONFIG=str(tmp_path / "prefs.toml"),
        COUNTER_DATA_DIR=str(tmp_path / "data"),
        COUNTER_LOG_DIR=str(tmp_path / "logs"),
        **extra,
    )
    return env


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ei:
        main(["--version"])
    assert ei.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_doctor_reports_an_unreachable_server_and_a_corrupt_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for k, v in _env(tmp_path).items():
        monkeypatch.setenv(k, v)
    # A port nothing listens on (bound then closed) on loopback.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "machine.toml").write_text(f'server_url = "http://127.0.0.1:{port}"\n',
                                           encoding="utf-8")
    (tmp_path / "prefs.toml").write_text("language = [\n", encoding="utf-8")
    rc = main(["doctor"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "[FAIL] server" in out and "cannot be reached" in out
    assert "[FAIL] config" in out and "prefs.toml.corrupt" in out
    assert "[ok] log folder" in out and "[ok] data folder" in out
    assert "keyring" in out


def test_doctor_passes_against_a_running_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        hall_server: Any) -> None:
    for k, v in _env(tmp_path).items():
        monkeypatch.setenv(k, v)
    (tmp_path / "machine.toml").write_text(f'server_url = "{hall_server.url}"\n',
                                           encoding="utf-8")
    main(["doctor"])
    out = capsys.readouterr().out
    assert "[ok] server: ok" in out


def test_demo_headless_check_runs_everything_and_prints_ok(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "counter_desk", "demo", "--headless-check"],
        cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("OK signed in 1001 at window 1, called ")
    log_text = (tmp_path / "logs" / "counter-app.log").read_text(encoding="utf-8")
    assert "demo1234" not in log_text  # the password never reaches the log
