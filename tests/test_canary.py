"""No secret on disk: a scripted session with a canary password, then every file the app wrote is
searched for the password and for every access and refresh token the server handed out: 0 hits.

The session runs through CounterCore against the real reference server, with DEBUG logging to
the log folder, then `support-bundle` is made too (its members are searched unpacked). Data, log
and config folders are pointed at temp folders with COUNTER_DATA_DIR / COUNTER_LOG_DIR /
COUNTER_MACHINE_CONFIG / COUNTER_USER_CONFIG, so "every file the app wrote" is exactly those.
"""

from __future__ import annotations

import logging
import secrets
import zipfile
from pathlib import Path

import pytest

from api_client import HallClient
from api_client.models import LoginResult
from counter_app import support
from counter_app.config import load_settings, save_user_prefs
from counter_app.logging_setup import setup_logging
from counter_desk.wiring import build_core
from tests.support.deploy_fixtures import MemoryKeyring
from tests.support.server_fixtures import RunningServer, signed_in


class RecordingClient(HallClient):
    """The real client, remembering every token pair it was given (login and refreshes)."""

    def __init__(self, *a: object, **kw: object) -> None:
        super().__init__(*a, **kw)  # type: ignore[arg-type]
        self.seen: list[LoginResult] = []

    def _store_tokens(self, result: LoginResult) -> None:
        self.seen.append(result)
        super()._store_tokens(result)


def hits(folders: list[Path], needles: list[str]) -> list[str]:
    found = []
    for folder in folders:
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            blobs = [(str(f), f.read_bytes())]
            if f.suffix == ".zip":
                with zipfile.ZipFile(f) as zf:
                    blobs += [(f"{f}!{n}", zf.read(n)) for n in zf.namelist()]
            for where, data in blobs:
                for needle in needles:
                    if needle.encode() in data:
                        found.append(f"{where}: {needle[:6]}...")
    return found


def test_no_password_or_token_in_any_file(fresh_hall_server: RunningServer, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          memory_keyring: MemoryKeyring) -> None:
    app_dirs = {name: tmp_path / name for name in ("data", "log", "machine", "user", "bundle")}
    monkeypatch.setenv("COUNTER_DATA_DIR", str(app_dirs["data"]))
    monkeypatch.setenv("COUNTER_LOG_DIR", str(app_dirs["log"]))
    monkeypatch.setenv("COUNTER_MACHINE_CONFIG", str(app_dirs["machine"] / "config.toml"))
    monkeypatch.setenv("COUNTER_USER_CONFIG", str(app_dirs["user"] / "prefs.toml"))
    url = fresh_hall_server.url
    canary = "Canary-" + secrets.token_urlsafe(18)
    it = signed_in(url, "9001")
    r = it.post("/admin/staff", json={"staff_no": "4242", "name_zh": "金丝雀", "name_en": "Canary",
                                      "role": "staff", "password": canary})
    it.close()
    assert r.status_code in (200, 201), r.text
    (app_dirs["machine"]).mkdir()
    (app_dirs["machine"] / "config.toml").write_text(
        f'server_url = "{url}"\nwindow_no = 9\n', encoding="utf-8")
    save_user_prefs(language="en")
    settings = load_settings().settings
    root = logging.getLogger()
    old_level = root.level
    setup_logging(settings.log_dir, level=logging.DEBUG)
    client = RecordingClient(url)
    core = build_core(settings, client=client)
    try:
        me = core.session.sign_in("4242", canary)
        assert me.window is not None and me.window.categories
        logging.getLogger("canary").info("login password=%s body %s", canary,
                                         {"password": canary})  # a careless log line
        core.client.issue_ticket(me.window.categories[0])
        ticket = core.desk.call_next()
        assert ticket is not None
        core.desk.start()
        core.desk.complete("completed")
        core.client.refresh()  # a second token pair to look for
        core.session.sign_out()
    finally:
        core.close()
        for h in list(root.handlers):
            if getattr(h, "_counter_app", False):
                root.removeHandler(h)
                h.close()
        root.setLevel(old_level)
    support.make_bundle(app_dirs["bundle"] / "support.zip")
    tokens = [t for res in client.seen for t in (res.access_token, res.refresh_token)]
    assert len(tokens) >= 4 and all(len(t) > 16 for t in tokens)
    # The files exist and hold real content (the search is not over empty folders).
    assert (app_dirs["log"] / "counter-app.log").stat().st_size > 0
    assert any(app_dirs["data"].rglob("*.sqlite3"))
    needles = [canary, *tokens]
    assert hits(list(app_dirs.values()), needles) == []
    # The search itself finds a planted secret (it can fail).
    control = tmp_path / "control"
    control.mkdir()
    (control / "x.log").write_text(f"oops {tokens[0]}")
    assert hits([control], needles)
