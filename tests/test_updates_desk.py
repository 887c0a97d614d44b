"""Signed updates wired into the desk: the core's UpdateService against a real TUF repository on
127.0.0.1 and the real reference server. A serving desk downloads but does not install; sign-out
installs; a tampered archive is refused and the desk works on with the old version; periodic
checks wait while a ticket is served; `counter-app update` for IT; the status-bar note (GUI).

The repository (1.0.0 and 2.0.0 of a small fake app) is built once for the module.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from api_client import HallClient
from counter_app.config import Settings
from counter_app.core import CounterCore
from counter_app.events import UpdateInstalled, UpdateReady
from counter_app.updates import (
    DeskLock,
    Updater,
    UpdateService,
    UpdateSettings,
    install_linux,
    installed_version,
)
from counter_desk import cli
from counter_desk.wiring import build_core
from tests.test_updates import StaticServer, fake_app, repo_tool

PASSWORD = "demo1234"


@dataclass
class Release:
    repo_dir: Path
    root_json: Path
    server: StaticServer
    bundles: Path

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    base = tmp_path_factory.mktemp("release")
    repo_dir, keys = base / "repo", base / "keys"
    root_json = repo_tool.init(repo_dir, keys)
    for v in ("1.0.0", "2.0.0"):
        repo_tool.publish(repo_dir, keys, fake_app(base / "bundles", v), v)
    srv = StaticServer(repo_dir)
    yield Release(repo_dir, root_json, srv, base / "bundles")
    srv.close()


@pytest.fixture
def tampered(release: Release, tmp_path: Path) -> Iterator[str]:
    """A copy of the release whose 2.0.0 archive has one byte flipped (same length)."""
    copy = tmp_path / "tampered-repo"
    shutil.copytree(release.repo_dir, copy)
    archive = copy / "targets" / "counter-app-2.0.0.tar.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    srv = StaticServer(copy)
    yield srv.url
    srv.close()


def installed_v1(tmp_path: Path) -> Path:
    root = tmp_path / "opt" / "counter-app"
    install_linux(release_bundle(tmp_path, "1.0.0"), root, version="1.0.0")
    return root


def release_bundle(tmp_path: Path, version: str) -> Path:
    return fake_app(tmp_path / f"first-install-{time.monotonic_ns()}", version)


def current(root: Path) -> str:
    return (root / "current" / "VERSION").read_text()


def desk_settings(tmp_path: Path, server_url: str, update_url: str, root: Path,
                  root_json: Path) -> Settings:
    d = tmp_path / f"desk-{time.monotonic_ns()}"
    return Settings(server_url=server_url, window_no=1, data_dir=d / "data", log_dir=d / "logs",
                    idle_lock_minutes=0, update_url=update_url, update_install_root=str(root),
                    update_root_json=str(root_json))


def wait_until(pred: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Wait on a condition; the timeout only bounds a hung test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Recorder:
    def __init__(self) -> None:
        self.events: list[object] = []
        self._lock = threading.Lock()

    def __call__(self, ev: object) -> None:
        with self._lock:
            self.events.append(ev)

    def of(self, cls: type) -> list[Any]:
        with self._lock:
            return [e for e in self.events if isinstance(e, cls)]


@pytest.fixture
def cores() -> Iterator[list[CounterCore]]:
    made: list[CounterCore] = []
    yield made
    for c in made:
        c.close()


@pytest.fixture
def kiosk(fresh_hall_server: Any) -> Iterator[HallClient]:
    c = HallClient(fresh_hall_server.url)
    yield c
    c.close()


def serve_one(core: CounterCore, kiosk: HallClient) -> None:
    window = core.desk.window
    assert window is not None and window.categories
    kiosk.issue_ticket(window.categories[0])
    assert core.desk.call_next() is not None
    core.desk.start()
    assert core.desk.state == "serving"


# -- the core --------------------------------------------------------------------------------


def test_serving_desk_downloads_but_installs_only_after_sign_out(
        fresh_hall_server: Any, release: Release, kiosk: HallClient, tmp_path: Path,
        cores: list[CounterCore]) -> None:
    root = installed_v1(tmp_path)
    core = build_core(desk_settings(tmp_path, fresh_hall_server.url, release.url, root,
                                     release.root_json))
    cores.append(core)
    assert isinstance(core.updates, UpdateService)
    rec = Recorder()
    core.bus.subscribe(None, rec)
    core.session.sign_in("1001", PASSWORD)
    serve_one(core, kiosk)
    # The check at start runs whatever the desk does; it downloads and verifies.
    assert core.updates.wait_checks(1, 60)
    assert core.updates.ready == "2.0.0" and core.updates.last_error is None
    assert (root / "counter-app-2.0.0" / "VERSION").read_text() == "2.0.0"
    assert current(root) == "1.0.0"
    # Even asked outright, nothing is switched under a citizen being served.
    assert core.updates.apply_now() is None
    assert current(root) == "1.0.0" and installed_version(root) == "1.0.0"
    # IT's command sees the signed-in desk through the lock and refuses too.
    with DeskLock(root) as other:
        assert not other.acquired
    core.desk.complete("completed")
    assert core.desk.state == "idle"
    assert core.updates.apply_now() is None  # still signed in: the shift is not over
    assert current(root) == "1.0.0"
    core.session.sign_out()
    wait_until(lambda: rec.of(UpdateInstalled), what="the update installed after sign-out")
    assert [e.version for e in rec.of(UpdateInstalled)] == ["2.0.0"]
    assert current(root) == "2.0.0" and installed_version(root) == "2.0.0"
    assert (root / "previous").resolve().name == "counter-app-1.0.0"
    assert core.updates.ready is None and core.updates.installed == "2.0.0"
    with DeskLock(root) as other:
        assert other.acquired  # released at sign-out


def test_tampered_archive_is_refused_and_the_desk_works_on(
        fresh_hall_server: Any, release: Release, tampered: str, kiosk: HallClient,
        tmp_path: Path, cores: list[CounterCore]) -> None:
    root = installed_v1(tmp_path)
    core = build_core(desk_settings(tmp_path, fresh_hall_server.url, tampered, root,
                                     release.root_json))
    cores.append(core)
    rec = Recorder()
    core.bus.subscribe(None, rec)
    assert core.updates is not None and core.updates.wait_checks(1, 60)
    assert core.updates.last_error is not None and "refused" in core.updates.last_error
    assert core.updates.ready is None and not rec.of(UpdateReady)
    assert not (root / "counter-app-2.0.0").exists()
    # The desk is unaffected: a whole service, sign-out (which would install), still 1.0.0.
    core.session.sign_in("1001", PASSWORD)
    serve_one(core, kiosk)
    core.desk.complete("completed")
    core.session.sign_out()
    core.close()
    assert not rec.of(UpdateInstalled)
    assert current(root) == "1.0.0" and not (root / "previous").exists()


def test_update_installed_when_the_window_closes(fresh_hall_server: Any, release: Release,
                                                 tmp_path: Path) -> None:
    root = installed_v1(tmp_path)
    core = build_core(desk_settings(tmp_path, fresh_hall_server.url, release.url, root,
                                     release.root_json))
    try:
        assert core.updates is not None and core.updates.wait_checks(1, 60)
        assert core.updates.ready == "2.0.0" and current(root) == "1.0.0"
    finally:
        core.close()  # nobody signed in: the shift is over
    assert current(root) == "2.0.0"


def test_close_while_signed_in_does_not_install(fresh_hall_server: Any, release: Release,
                                                tmp_path: Path) -> None:
    root = installed_v1(tmp_path)
    core = build_core(desk_settings(tmp_path, fresh_hall_server.url, release.url, root,
                                     release.root_json))
    try:
        core.session.sign_in("1001", PASSWORD)
        assert core.updates is not None and core.updates.wait_checks(1, 60)
        assert core.updates.ready == "2.0.0"
        core.close()  # e.g. the process is ended mid-shift without signing out
        assert current(root) == "1.0.0"
    finally:
        core.close()


def test_periodic_checks_wait_while_a_ticket_is_served(release: Release, tmp_path: Path) -> None:
    # Installed is already the newest, so every check is a full round trip that finds nothing.
    root = tmp_path / "opt"
    install_linux(release_bundle(tmp_path, "2.0.0"), root, version="2.0.0")
    cfg = UpdateSettings(url=release.url, install_root=root, cache_dir=tmp_path / "cache",
                         root_json=release.root_json, interval_s=0.01)
    serving = [True]
    asked = [0]

    def may_check() -> bool:
        asked[0] += 1
        return not serving[0]

    service = UpdateService(Updater(cfg, "2.0.0"), may_check=may_check)
    service.RETRY_BUSY_S = 0.01
    service.start()
    try:
        assert service.wait_checks(1, 60)  # the check at start, whatever the desk does
        wait_until(lambda: asked[0] >= 5, what="the service to ask again while serving")
        assert service.checks == 1
        serving[0] = False
        assert service.wait_checks(3, 60)
        assert service.last_error is None and service.ready is None
    finally:
        assert service.stop()


def test_updates_off_or_not_installed(fresh_hall_server: Any, release: Release,
                                      tmp_path: Path) -> None:
    d = tmp_path / "d"
    off = build_core(Settings(server_url=fresh_hall_server.url, data_dir=d / "a",
                               log_dir=d / "l"))
    try:
        assert off.updates is None
    finally:
        off.close()
    # A URL but no install folder (this is a source checkout): off, with a log line, desk fine.
    no_root = build_core(Settings(server_url=fresh_hall_server.url, data_dir=d / "b",
                                   log_dir=d / "l", update_url=release.url))
    try:
        assert no_root.updates is None
        no_root.session.sign_in("1001", PASSWORD)
        no_root.session.sign_out()
    finally:
        no_root.close()


# -- the IT command ----------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str]:
    rc = cli.main(["--config", str(config), "--prefs", str(config.with_name("prefs.toml")),
                   "update", *args])
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_update_command(release: Release, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    root = installed_v1(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text(f'update_url = "{release.url}"\nupdate_install_root = "{root}"\n'
                      f'update_root_json = "{release.root_json}"\n'
                      f'data_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    rc, out = run_cli(capsys, config, "--status")
    assert rc == 0 and "installed 1.0.0" in out
    rc, out = run_cli(capsys, config, "--check")
    assert rc == 0 and "2.0.0" in out and current(root) == "1.0.0"
    with DeskLock(root):  # a clerk is signed in at this PC
        rc, out = run_cli(capsys, config, "--apply")
    assert rc == 3 and "sign-out" in out and current(root) == "1.0.0"
    rc, out = run_cli(capsys, config, "--apply")
    assert rc == 0 and current(root) == "2.0.0"
    rc, out = run_cli(capsys, config, "--check")
    assert rc == 0 and "no newer version" in out
    rc, out = run_cli(capsys, config, "--rollback")
    assert rc == 0 and current(root) == "1.0.0"
    rc, out = run_cli(capsys, config, "--check")  # rolled back: not offered again
    assert rc == 0 and "no newer version" in out and current(root) == "1.0.0"
    off = tmp_path / "off.toml"
    off.write_text("", encoding="utf-8")
    rc, out = run_cli(capsys, off, "--check")
    assert rc == 2 and "update_url" in out
    with pytest.raises(SystemExit):
        cli.main(["update"])  # one of the actions is required


# -- the window ------------------------------------------------------------------------------


@pytest.mark.gui
def test_status_bar_says_update_waits_for_sign_out(fresh_hall_server: Any, release: Release,
                                                   desk_app_factory: Any, tmp_path: Path) -> None:
    from tests.support.gui_fixtures import pump_until, screenshot
    from ui import i18n

    root = installed_v1(tmp_path)
    app = desk_app_factory(fresh_hall_server.url, update_url=release.url,
                           update_install_root=str(root), update_root_json=str(release.root_json))
    app.sign_in("1001", PASSWORD)
    pump_until(app.root, lambda: app.desk_view is not None, what="the desk after sign-in")
    note = pump_until(app.root, lambda: app._update_note is not None
                      and app._update_note.cget("text") and app._update_note, what="the note")
    assert note.cget("text") == "新版本已下载，将在下班签退后安装"
    assert note.winfo_ismapped() and note.master is app.desk_view.status
    screenshot(app.root, "update-note-zh")
    i18n.set_language("en")
    pump_until(app.root, lambda: note.cget("text") == "Update downloaded; installs after sign-out",
               what="the English note")
    assert current(root) == "1.0.0"  # signed in: waits
    app.close()
    pump_until(app.root, lambda: app.closed, what="the window closed")
    assert current(root) == "2.0.0"  # signed out on close, then installed
