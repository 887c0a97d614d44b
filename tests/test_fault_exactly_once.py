"""Exactly-once delivery of ratings under faults, against the real server process.

Three windows, one outbox each (in one client process, tests/outbox_child.py run), each rating a
real case of its own. While they capture and deliver:
  * the server process is SIGKILLed and restarted every 2 s (same SQLite data dir);
  * the fault proxy between client and server resets 10% of connections after the server has
    answered (the server committed, the client sees a reset) and the client must resend;
  * the client process itself is SIGKILLed a few times and restarted.
After the faults stop everything drains, and the server's set of rating ids equals the client's:
0 lost, 0 duplicated. CI: ~600 ratings, 3 client kills. Heavy: OUTBOX_FAULT_RATINGS (10,000)
and OUTBOX_FAULT_CLIENT_KILLS (20).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.faultproxy import FaultProxy
from tests.outbox_child import (
    PASSWORD,
    make_cases,
    server_rating_ids,
    skip_unless_heavy_selected,
    staff_for_window,
)

ROOT = Path(__file__).resolve().parent.parent
WINDOWS = [1, 2, 3]


class Child:
    """The client process: 3 outboxes, capture + delivery; stdout lines collected."""

    def __init__(self, url: str, db_dir: Path, cases: Path, pace: float, drain: bool) -> None:
        args = [sys.executable, "-m", "tests.outbox_child", "run", url, str(db_dir), str(cases),
                "--pace", str(pace)]
        if drain:
            args.append("--exit-when-drained")
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        time.sleep(0.02)

    @property
    def ids(self) -> list[str]:
        return [x for x in self.lines if len(x) == 36]


def client_rows(db_dir: Path) -> list[tuple[str, str, int]]:
    rows: list[tuple[str, str, int]] = []
    for w in WINDOWS:
        conn = sqlite3.connect(db_dir / f"window-{w}.db")
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            rows += conn.execute(
                "SELECT o.id, o.state, r.case_id FROM outbox o JOIN ratings r ON r.id = o.id"
            ).fetchall()
        finally:
            conn.close()
    return rows


def create_cases(server_url: str, total: int) -> list[dict[str, int]]:
    from api_client import HallClient

    cases: list[dict[str, int]] = []
    per = -(-total // len(WINDOWS))
    for w in WINDOWS:
        c = HallClient(server_url)
        c.login(staff_for_window(w), PASSWORD, w)
        cases += make_cases(c, w, per)
        c.close()
    return cases


def run_exactly_once(start_server_process: Any, tmp_path: Path, total: int, client_kills: int) -> None:
    from api_client import HallClient

    data_dir = tmp_path / "server"
    data_dir.mkdir()
    server = start_server_process(data_dir)
    # `serve --demo` seeds a month of history (ratings up to yesterday): only new ids count.
    c0 = HallClient(server.url)
    c0.login("8001", PASSWORD)
    history = set(server_rating_ids(c0, WINDOWS))
    c0.close()
    cases = create_cases(server.url, total)
    cases_file = tmp_path / "cases.json"
    cases_file.write_text(json.dumps(cases))
    db_dir = tmp_path / "client"
    db_dir.mkdir()
    port = int(server.url.rsplit(":", 1)[1])
    proxy = FaultProxy(port, mode="reset_after_response", probability=0.10, seed=total).start()
    # Capture spread over roughly 12 s + 1 s per 100 ratings, so faults hit capture and delivery.
    pace = max(0.002, (12 + total / 100) / (total / len(WINDOWS)))
    printed: list[str] = []
    server_restarts = 0
    child = Child(proxy.url, db_dir, cases_file, pace, drain=False)
    kill_at = {int((i + 1) * (total / (client_kills + 1))) for i in range(client_kills)}
    kills_done = 0
    next_server_kill = time.monotonic() + 2.0
    try:
        while True:
            captured = "captured" in child.lines
            if not captured and child.proc.poll() is not None:
                raise AssertionError(f"client child died by itself: rc={child.proc.returncode}")
            n = len(printed) + len(child.ids)
            if kills_done < client_kills and any(k <= n for k in kill_at):
                kill_at = {k for k in kill_at if k > n}
                child.kill()
                printed += child.ids
                kills_done += 1
                child = Child(proxy.url, db_dir, cases_file, pace, drain=False)
                continue
            if time.monotonic() >= next_server_kill:
                server.kill()
                server = start_server_process(data_dir)
                proxy.upstream_port = int(server.url.rsplit(":", 1)[1])
                server_restarts += 1
                next_server_kill = time.monotonic() + 2.0
            if captured and kills_done >= client_kills and server_restarts >= 3:
                break
            time.sleep(0.02)
        # Faults stop: the link is clean, the server stays up; the client drains and exits.
        child.kill()
        printed += child.ids
        proxy.set_mode("pass")
        drainer = Child(proxy.url, db_dir, cases_file, 0.0, drain=True)
        assert drainer.proc.wait(timeout=600) == 0
        assert "drained" in drainer.lines
        printed += drainer.ids
    finally:
        for ch in (child,):
            if ch.proc.poll() is None:
                ch.kill()
        proxy.stop()

    rows = client_rows(db_dir)
    client_ids = [r[0] for r in rows]
    assert len(client_ids) == len(set(client_ids))
    assert set(printed) <= set(client_ids), "a rating whose capture returned was lost"
    assert {r[1] for r in rows} == {"done"}, "not drained"
    assert sorted(r[2] for r in rows) == sorted(c["case_id"] for c in cases)
    c = HallClient(server.url)
    c.login("8001", PASSWORD)
    server_ids = [i for i in server_rating_ids(c, WINDOWS) if i not in history]
    assert len(server_ids) == len(set(server_ids)), "duplicated on the server"
    lost = set(client_ids) - set(server_ids)
    extra = set(server_ids) - set(client_ids)
    assert not lost and not extra, f"lost {len(lost)}, unknown to the client {len(extra)}"
    assert len(server_ids) == len(cases)
    assert proxy.stats.faulted.get("reset_after_response", 0) > 0
    assert server_restarts >= 3 and kills_done == client_kills
    server.kill()
    print(json.dumps({"ratings": len(server_ids), "server_restarts": server_restarts,
                      "client_kills": kills_done, "proxy_resets": proxy.stats.faulted,
                      "connections": proxy.stats.connections}))


def test_exactly_once_under_faults(start_server_proc, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run_exactly_once(start_server_proc, tmp_path, total=600, client_kills=3)


@pytest.mark.heavy
@pytest.mark.timeout(4 * 3600)  # thousands of real cases are made through the API first
def test_exactly_once_under_faults_heavy(  # type: ignore[no-untyped-def]
    request: pytest.FixtureRequest, start_server_proc, tmp_path: Path
) -> None:
    skip_unless_heavy_selected(request)
    run_exactly_once(
        start_server_proc,
        tmp_path,
        total=int(os.environ.get("OUTBOX_FAULT_RATINGS", "10000")),
        client_kills=int(os.environ.get("OUTBOX_FAULT_CLIENT_KILLS", "20")),
    )


@pytest.fixture
def start_server_proc():  # type: ignore[no-untyped-def]
    """start_server_process, with every process started here killed at the end."""
    from tests.support.server_fixtures import start_server_process

    started: list[Any] = []

    def start(data_dir: Path) -> Any:
        proc = start_server_process(data_dir)
        started.append(proc)
        return proc

    yield start
    for p in started:
        try:
            p.kill()
        except Exception:
            pass
