"""PC shutdown / logoff: the desk (source tree, real Tk window under the test's Xvfb display,
real server on loopback) gets SIGTERM as logind sends it, signs out and exits, and the server
shows the window closed at once (not left "open" until the stale-window rule would catch it)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.server_fixtures import REPO_ROOT, signed_in, start_server_thread


def wait_for(pred: Callable[[], Any], what: str, proc: subprocess.Popen[bytes],
             timeout: float = 45) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the desk exited ({proc.returncode}) waiting for {what}")
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def tk_windows() -> set[str]:
    r = subprocess.run(["xdotool", "search", "--class", "Tk"], capture_output=True, text=True,
                       timeout=30)
    return set(r.stdout.split())


def xdo(*args: str) -> None:
    subprocess.run(["xdotool", *args], capture_output=True, text=True, check=True, timeout=30)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_desk_signs_out_and_closes_its_window_on_sigterm(sig: signal.Signals, tmp_path: Path) -> None:
    if not os.environ.get("DISPLAY") or not shutil.which("xdotool"):
        pytest.skip("needs the test display and xdotool (run through scripts/run.sh test)")
    srv = start_server_thread(data_dir=tmp_path / "hall", demo=True)
    desk: subprocess.Popen[bytes] | None = None
    try:
        sup = signed_in(srv.url, "8001")
        (tmp_path / "machine.toml").write_text(
            f'server_url = "{srv.url}"\nwindow_no = 1\nidle_lock_minutes = 0\n'
            'pad_transport = "none"\nscanner_source = "none"\n', encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT),
               "COUNTER_DATA_DIR": str(tmp_path / "data"), "COUNTER_LOG_DIR": str(tmp_path / "log"),
               "COUNTER_MACHINE_CONFIG": str(tmp_path / "machine.toml"),
               "COUNTER_USER_CONFIG": str(tmp_path / "prefs.toml")}
        before = tk_windows()
        log = (tmp_path / "desk.log").open("wb")
        desk = subprocess.Popen([sys.executable, "-m", "counter_desk"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, cwd=str(REPO_ROOT))
        (win, *_) = wait_for(lambda: tk_windows() - before, "the desk window", desk)
        time.sleep(1.0)  # the sign-in screen's server check

        def window_1() -> dict[str, Any]:
            return dict(sup.get("/windows/1").json())

        for _attempt in range(3):  # type as a clerk would: again if the focus was not there yet
            xdo("windowfocus", "--sync", win)
            xdo("type", "--delay", "40", "1001")
            xdo("key", "Tab")
            xdo("type", "--delay", "40", "demo1234")
            xdo("key", "Return")
            try:
                wait_for(lambda: (window_1().get("staff") or {}).get("staff_no") == "1001",
                         "signed in at window 1", desk, timeout=15)
                break
            except AssertionError as exc:
                if "exited" in str(exc):
                    raise
        assert window_1()["state"] == "open"
        desk.send_signal(sig)  # what logind sends the session's processes at shutdown/logoff
        assert desk.wait(30) == 0, (tmp_path / "desk.log").read_text(errors="replace")
        w = window_1()
        assert w["state"] == "closed" and not w.get("staff"), w
        desk_log = "".join(p.read_text(errors="replace") for p in (tmp_path / "log").glob("*.log*"))
        assert sig.name in desk_log and "signing out" in desk_log
    finally:
        if desk is not None and desk.poll() is None:
            desk.kill()
            desk.wait(10)
        srv.stop()
