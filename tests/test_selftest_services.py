"""`counter-app --self-test` lists every service the wiring builds, and fails when one is missing
or degraded (the frozen desk once ran without catalog, outbox and documents, and passed)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from counter_app.config import Settings
from counter_desk import selftest
from tests.support.server_fixtures import free_port

SERVICES = ("catalog", "search", "outbox", "documents store", "documents upload",
            "documents service", "pad", "updates", "keyring", "sqlite", "CA bundle (certifi)",
            "desk theme", "translations zh", "translations en")


def _run(settings: Settings) -> tuple[int, str]:
    out = io.StringIO()
    rc = selftest.main(settings, out)
    return rc, out.getvalue()


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(server_url="http://127.0.0.1:9", data_dir=tmp_path / "data",
                    log_dir=tmp_path / "logs", **kw)  # type: ignore[arg-type]


def test_every_service_is_listed_with_its_state(tmp_path: Path) -> None:
    rc, out = _run(_settings(tmp_path, pad_transport="lan", pad_listen_host="127.0.0.1",
                             pad_listen_port=free_port()))
    for name in SERVICES:
        assert f"] {name}:" in out, name
    for name in ("catalog", "search", "outbox", "documents store", "documents upload",
                 "documents service"):
        assert f"[ok] {name}:" in out, out
    assert "[ok] pad: lan (ServerPadTransport)" in out
    assert "[info] updates: off (no update_url)" in out
    assert rc == 0, out
    # The scratch folder is the self-test's own: the desk's data folder is never touched.
    assert not (tmp_path / "data").exists()


def test_a_missing_service_module_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As in a bundle that lost counter_app.search: importing it raises ImportError.
    monkeypatch.setitem(sys.modules, "counter_app.search", None)
    rc, out = _run(_settings(tmp_path))
    assert rc == 1
    assert "[FAIL] services: a service module is missing" in out and "counter_app.search" in out


def test_updates_configured_but_not_runnable_fails(tmp_path: Path) -> None:
    # update_url set, but this source tree is no versioned install: the service is degraded.
    rc, out = _run(_settings(tmp_path, update_url="http://127.0.0.1:9/updates/"))
    assert rc == 1
    assert "[FAIL] updates:" in out


def test_documents_that_cannot_be_built_fail(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from counter_app.documents.service import DocumentService

    def broken(*_a: object, **_k: object) -> DocumentService:
        raise OSError("documents folder not writable")

    monkeypatch.setattr(DocumentService, "for_core", broken)
    rc, out = _run(_settings(tmp_path))
    assert rc == 1
    assert "[FAIL] documents service:" in out


def test_headless_commands_load_no_tk_and_need_no_display(tmp_path: Path) -> None:
    """`--version`, `doctor` and `--self-test` run on a PC without a display: the composition
    root imports the UI only inside the commands that open a window."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env.update(COUNTER_MACHINE_CONFIG=str(tmp_path / "m.toml"),
               COUNTER_USER_CONFIG=str(tmp_path / "u.toml"),
               COUNTER_DATA_DIR=str(tmp_path / "data"), COUNTER_LOG_DIR=str(tmp_path / "logs"))
    probe = ("import sys\nfrom counter_desk.cli import main\n"
             "rc = main(sys.argv[1:])\n"
             "print('GUI-LOADED' if {'tkinter', 'customtkinter'} & set(sys.modules) else 'NO-GUI')\n"
             "sys.exit(rc)\n")
    root = Path(__file__).resolve().parents[1]
    for args, want_rc in ((["doctor"], 1), (["--self-test"], 0)):
        r = subprocess.run([sys.executable, "-c", probe, *args], cwd=root, env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == want_rc, r.stdout + r.stderr
        assert r.stdout.strip().endswith("NO-GUI"), (args, r.stdout[-500:])
