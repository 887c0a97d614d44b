"""A clerk's day on the FROZEN desk (the bundle build/build.py makes, built once per session),
against the real reference server run as its own process on loopback, checked through the
server's API.

Keys are real X events sent with xdotool into the real window under the test display: sign in
(staff number, Tab, password, Enter), F1 call, F7 start, F8 and the pinyin initials `gtgshsl`
then Enter (the matter is set on the server and the checklist is drawn from the bundled
catalog), F9 and Enter to complete. Two inputs have no key path from outside the process and go
through the desk's test-only scripted clerk (ui/clerk_script.py, the same Tk bindings and button
commands as the clerk's key and click): the checklist's "1" (received) and the capture panel's
buttons (scan with the SANE `test` backend, finish and upload).

The rating comes from the serial button box (a pty in this test): the server is killed before
the citizen presses a key, so the rating waits in the bundled outbox; the server comes back on
the same port and database and has it exactly once. Then `update --check` and `update --apply`
of the same frozen binary against a local signed repository (build/update_repo.py) served on
loopback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import importlib.util
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.frozen_fixtures import FrozenBuild, frozen_env
from tests.support.server_fixtures import (
    ServerProcess,
    drop_pg_db,
    free_port,
    fresh_pg_url,
    signed_in,
    start_server_process,
)
from tests.test_pad_serial import Box

pytestmark = pytest.mark.gui

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("COUNTER_ARTIFACTS", ROOT / "test-artifacts")) / "screenshots"


def wait_for(pred: Callable[[], Any], what: str, timeout: float = 30.0,
             proc: subprocess.Popen[str] | None = None) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the frozen desk exited ({proc.returncode}) waiting for {what}")
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def xdo(*args: str) -> str:
    return subprocess.run(["xdotool", *args], capture_output=True, text=True, check=True,
                          timeout=30).stdout


def tk_windows() -> set[str]:
    r = subprocess.run(["xdotool", "search", "--class", "Tk"], capture_output=True, text=True,
                       timeout=30)
    return set(r.stdout.split())


def top_windows() -> set[str]:
    """Visible top-level X windows: a dialog of the desk is a new one while it is open."""
    r = subprocess.run(["xdotool", "search", "--onlyvisible", "--maxdepth", "1", "--name", ""],
                       capture_output=True, text=True, timeout=30)
    return set(r.stdout.split())


def screenshot(name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(["import", "-window", "root", str(ARTIFACTS / f"{name}.png")],
                   capture_output=True, timeout=30)


class Clerk:
    """The clerk's hands: X keys (xdotool) and, for the two inputs without a key path, the
    desk's test-only scripted clerk FIFO."""

    def __init__(self, fifo: Path) -> None:
        self.fifo = fifo

    def keys(self, *keys: str) -> None:
        for k in keys:
            xdo("key", "--clearmodifiers", k)
            time.sleep(0.15)

    def type(self, text: str) -> None:
        xdo("type", "--delay", "40", text)

    def press_until(self, key: str, done: Callable[[], Any], what: str,
                    proc: subprocess.Popen[str]) -> Any:
        """Press `key` and wait for the server to show `done`; press again if the desk was
        still busy with the previous answer (as a clerk does when nothing happened)."""
        time.sleep(0.5)  # the desk takes the previous answer at about when the server shows it
        for _attempt in range(3):
            self.keys(key)
            try:
                return wait_for(done, what, timeout=6, proc=proc)
            except AssertionError as exc:
                if "exited" in str(exc):
                    raise
        return wait_for(done, what, timeout=10, proc=proc)

    def open_dialog(self, key: str, proc: subprocess.Popen[str]) -> None:
        """Press `key` and wait until its dialog is on screen (keys typed go to it)."""
        before = top_windows()
        self.keys(key)
        wait_for(lambda: top_windows() - before, f"the dialog of {key}", timeout=15, proc=proc)
        time.sleep(0.3)

    def script(self, command: str) -> None:
        with open(self.fifo, "w", encoding="utf-8") as f:
            f.write(command + "\n")


@pytest.fixture
def hall(tmp_path: Path) -> Iterator[tuple[ServerProcess, Callable[[], ServerProcess]]]:
    """The reference server as its own process (PostgreSQL when the run provides it), and a
    function that starts it again on the same port and database."""
    base = os.environ.get("HALL_TEST_PG_URL")
    db = fresh_pg_url(base) if base else f"sqlite:///{tmp_path / 'hall.sqlite3'}"
    port = free_port()
    servers = [start_server_process(tmp_path / "hall", port=port, db_url=db)]

    def restart() -> ServerProcess:
        servers.append(start_server_process(tmp_path / "hall", port=port, db_url=db))
        return servers[-1]

    yield servers[0], restart
    for s in servers:
        if s.poll() is None:
            s.terminate()
    if base:
        drop_pg_db(db)


class StaticServer:
    def __init__(self, folder: Path) -> None:
        handler = functools.partial(_Quiet, directory=str(folder))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *a: object) -> None:
        pass


def _repo_tool() -> Any:
    spec = importlib.util.spec_from_file_location("update_repo", ROOT / "build" / "update_repo.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_clerks_day_on_the_frozen_desk(frozen_build: FrozenBuild, hall: Any,
                                         tmp_path: Path) -> None:
    assert os.environ.get("DISPLAY"), "pytest-xvfb provides a display"
    assert shutil.which("xdotool"), "xdotool (Debian xdotool) drives the real window"
    server, restart = hall
    url = server.url
    sup = signed_in(url, "8001")  # the supervisor reads what the desk did, through the API
    sane_dir = tmp_path / "sane"
    sane_dir.mkdir()
    (sane_dir / "dll.conf").write_text("test\n")
    (sane_dir / "test.conf").write_text("number_of_devices 2\n")
    fifo = tmp_path / "clerk.fifo"
    os.mkfifo(fifo)
    master, slave = os.openpty()
    box = Box(master)
    env = frozen_env(tmp_path / "desk", f"""
server_url = "{url}"
window_no = 1
idle_lock_minutes = 0
pad_transport = "serial"
pad_serial_port = "{os.ttyname(slave)}"
scanner_source = "sane"
scanner_device = "test:0"
""")
    env.update(SANE_CONFIG_DIR=str(sane_dir), COUNTER_TEST_CLERK=str(fifo))
    before = tk_windows()
    beating = threading.Event()
    log = (tmp_path / "desk-stdout.log").open("w")
    desk = subprocess.Popen([str(frozen_build.exe)], env=env, stdout=log,
                            stderr=subprocess.STDOUT, text=True)
    clerk = Clerk(fifo)
    try:
        (win,) = wait_for(lambda: tk_windows() - before, "the desk window", proc=desk)
        time.sleep(1.0)  # the sign-in screen's server check
        xdo("windowfocus", "--sync", win)
        clerk.type("1001")
        clerk.keys("Tab")
        clerk.type("demo1234")
        clerk.keys("Return")
        wait_for(lambda: (sup.get("/windows/1").json().get("staff") or {}).get("staff_no")
                 == "1001", "signed in",
                 proc=desk)
        # A real box sends a heartbeat every second; the desk calls it offline after 3 s of none.

        def beat() -> None:
            while not beating.wait(1.0):
                with contextlib.suppress(OSError):
                    box.heartbeat()

        threading.Thread(target=beat, daemon=True).start()
        box.heartbeat()

        ticket = sup.post("/tickets", json={"category": "A"}).json()
        time.sleep(0.5)
        clerk.press_until("F1", lambda: sup.get(f"/tickets/{ticket['id']}").json()["state"]
                          == "called", "F1 called the ticket", desk)
        started = clerk.press_until(
            "F7", lambda: (t := sup.get(f"/tickets/{ticket['id']}").json())["state"] == "serving"
            and t, "F7 started the service", desk)
        case_id = started["case_id"]
        assert started["window_no"] == 1 and case_id

        # F8: the matter by its pinyin initials, from the catalog in the bundle.
        matter = next(m for m in sup.get("/matters").json()["items"]
                      if m["name_zh"] == "个体工商户设立登记")
        time.sleep(0.5)
        clerk.open_dialog("F8", desk)
        clerk.type("gtgshsl")
        time.sleep(1.0)  # the results come from a worker after the last key
        clerk.keys("Return")
        wait_for(lambda: sup.get(f"/cases/{case_id}").json()["matter_code"] == matter["code"],
                 "F8 set the matter", proc=desk)
        time.sleep(1.0)
        screenshot("frozen_desk_checklist_zh")

        # The checklist's first row (selected when drawn) marked received with the "1" key.
        first = matter["checklist"][0]["id"]
        clerk.script("key checklist 1")

        def status_of(item: str) -> str | None:
            for m in sup.get(f"/cases/{case_id}").json().get("materials") or []:
                if m["item_id"] == item:
                    return str(m["status"])
            return None

        wait_for(lambda: status_of(first) == "received", "material marked received", proc=desk)

        # Capture: open the panel on that item, scan from SANE's test:0, finish and upload.
        before = top_windows()
        clerk.script("click capture")
        wait_for(lambda: top_windows() - before, "the capture panel", proc=desk)
        time.sleep(0.5)
        clerk.script("click scan")
        time.sleep(4.0)  # a test:0 page at the panel's resolution
        screenshot("frozen_capture_scanned_zh")
        docs = tmp_path / "hall" / "documents"
        # The demo's month of history has stored its paper forms there: only a new file counts.
        before = set(docs.iterdir()) if docs.is_dir() else set()

        def uploaded() -> bool:
            return docs.is_dir() and bool(set(docs.iterdir()) - before)

        for _attempt in range(12):  # "finish" stays disabled until the scanned page is in
            clerk.script("click finish")
            try:
                wait_for(uploaded, "the scan uploaded", timeout=5, proc=desk)
                break
            except AssertionError as exc:
                if "exited" in str(exc):
                    raise
        assert uploaded(), "the scan was never uploaded"
        clerk.script("click close")
        time.sleep(0.5)

        # F9, Enter: completed (the first outcome). The box lights up for the rating.
        from counter_app.pad.serial_box import T_MODE

        clerk.open_dialog("F9", desk)
        clerk.keys("Return")
        wait_for(lambda: sup.get(f"/tickets/{ticket['id']}").json()["state"] == "completed",
                 "F9 completed", proc=desk)
        box.wait_for(lambda f: f.type == T_MODE and f.payload == b"\x01", timeout=20)

        # The server goes down; the citizen rates; the outbox keeps it until the server is back.
        today = dt.date.today().isoformat()
        server.kill()
        box.key(1, 1)  # "very satisfied"
        time.sleep(3.0)
        assert desk.poll() is None
        server2 = restart()
        sup = signed_in(server2.url, "8001")

        def rated() -> list[str]:
            r = sup.get(f"/windows/1/ratings?date={today}")
            return list(r.json()["ids"]) if r.status_code == 200 else []

        ids = wait_for(rated, "the rating delivered after the outage", timeout=90, proc=desk)
        time.sleep(3.0)  # any duplicate would have arrived by now
        assert len(rated()) == 1 == len(ids)
        stats = sup.get(f"/stats?window_no=1&date={today}")
        assert stats.status_code == 200, stats.text
        screenshot("frozen_desk_after_rating_zh")
        # Nothing failed quietly inside the frozen desk: no service "not available", no
        # uncaught error in a Tk callback (e.g. a module PyInstaller left out), no traceback.
        text = "".join(f.read_text(errors="replace")
                       for f in (tmp_path / "desk" / "log").glob("*.log"))
        for bad in ("not available", "uncaught error", "Traceback", "ModuleNotFoundError"):
            assert bad not in text, [ln for ln in text.splitlines() if bad in ln][:5]
    except BaseException:
        screenshot("frozen_clerk_failed")
        raise
    finally:
        beating.set()
        box.close()
        os.close(slave)
        os.close(master)
        if desk.poll() is None:
            desk.terminate()
            try:
                desk.wait(20)
            except subprocess.TimeoutExpired:
                desk.kill()
        log.close()
        logs = tmp_path / "desk" / "log"
        if logs.is_dir():
            for f in logs.glob("*.log"):
                shutil.copy2(f, ARTIFACTS.parent / f"frozen-clerk-{f.name}") \
                    if ARTIFACTS.parent.is_dir() else None


def test_update_check_and_apply_in_the_frozen_build(frozen_build: FrozenBuild,
                                                    tmp_path: Path) -> None:
    tool = _repo_tool()
    repo_dir, keys = tmp_path / "repo", tmp_path / "keys"
    root_json = tool.init(repo_dir, keys)
    # Installed as IT installs it: a versioned folder behind `current`.
    install = tmp_path / "opt" / "counter-app"
    install.mkdir(parents=True)
    shutil.copytree(frozen_build.app_dir, install / "counter-app-1.0.0", symlinks=True)
    (install / "current").symlink_to("counter-app-1.0.0")
    tool.publish(repo_dir, keys, frozen_build.app_dir, "9.9.9")
    srv = StaticServer(repo_dir)
    try:
        env = frozen_env(tmp_path / "desk", f"""
server_url = "http://127.0.0.1:9"
update_url = "{srv.url}"
update_install_root = "{install}"
update_root_json = "{root_json}"
""")
        exe = install / "current" / "counter-app"
        check = subprocess.run([str(exe), "update", "--check"], env=env, capture_output=True,
                               text=True, timeout=300)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "9.9.9" in check.stdout and "No module named" not in check.stderr
        assert os.readlink(install / "current") == "counter-app-1.0.0"  # check does not install
        apply = subprocess.run([str(exe), "update", "--apply"], env=env, capture_output=True,
                               text=True, timeout=300)
        assert apply.returncode == 0, apply.stdout + apply.stderr
        assert os.readlink(install / "current") == "counter-app-9.9.9"
        assert os.readlink(install / "previous") == "counter-app-1.0.0"
        new = subprocess.run([str(install / "current" / "counter-app"), "--version"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert new.returncode == 0 and new.stdout.strip() == f"counter-app {frozen_build.version}"
        again = subprocess.run([str(exe), "update", "--check"], env=env, capture_output=True,
                               text=True, timeout=300)
        assert again.returncode == 0 and "no newer version" in again.stdout, again.stdout
    finally:
        srv.close()
