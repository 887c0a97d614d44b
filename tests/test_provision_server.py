"""Hall server operations for rollout (issue 13 items 2 and 5), against the real server:
bulk enrollment codes as a 0600 CSV and the device list/revoke with them, unenrolled desks
refused by default in production, TLS served by uvicorn and trusted through `ca_bundle`, backup
and restore (consistent under writes), the bounded `/health/db`, and stale windows closed."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme

from api_client import HallClient, errors
from tests.support.server_fixtures import (
    REPO_ROOT,
    Api,
    RunningServer,
    drop_pg_db,
    free_port,
    fresh_pg_url,
    signed_in,
    start_server_thread,
    wait_healthy,
)


def hall_cli(data: Path, *args: str, db: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("HALL_DB_URL", None)
    extra = ["--db", db] if db else []
    return subprocess.run([sys.executable, "-m", "hall_server", *args, "--data-dir", str(data), *extra],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=str(REPO_ROOT))


def ok(r: subprocess.CompletedProcess[str]) -> Any:
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def serve(data: Path, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("HALL_DB_URL", None)
    log = open(data.parent / f"serve-{port}.log", "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "-m", "hall_server", "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--data-dir", str(data), *args],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO_ROOT))
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


# ---- bulk enrollment codes and the device list ----------------------------------------------
def test_bulk_enrollment_codes_csv_enrol_list_and_revoke(tmp_path: Path) -> None:
    srv = start_server_thread(data_dir=tmp_path / "hall", demo=True)
    try:
        out = tmp_path / "codes.csv"
        report = ok(hall_cli(srv.data_dir, "enrollment-codes", "--windows", "1-10,12", "--out", str(out)))
        assert report["windows"] == 11
        assert stat.S_IMODE(out.stat().st_mode) == 0o600  # the codes are secrets until used
        rows = list(csv.DictReader(out.open(encoding="utf-8")))
        assert [int(r["window"]) for r in rows] == [*range(1, 11), 12]
        assert len({r["code"] for r in rows}) == 11 and all(r["expires_at"] for r in rows)
        # Every code enrols its own window (and no other).
        api = Api(srv.url)
        wrong = api.post("/devices/enroll", json={"enrollment_code": rows[0]["code"], "window_no": 2,
                                                  "hostname": "pc-x"})
        assert wrong.status_code == 403
        devices: dict[int, dict[str, Any]] = {}
        for r in rows:
            res = api.post("/devices/enroll", json={"enrollment_code": r["code"],
                                                    "window_no": int(r["window"]),
                                                    "hostname": f"pc-{r['window']}"})
            assert res.status_code == 200, res.text
            devices[int(r["window"])] = res.json()
        listed = ok(hall_cli(srv.data_dir, "device", "list"))
        assert {d["window_no"] for d in listed if not d["revoked"]} == {*range(1, 11), 12}
        # Revoke the PC of window 4: it opens no window any more; window 5's still does.
        ok(hall_cli(srv.data_dir, "device", "revoke", devices[4]["device_id"]))

        def login(no: int) -> Any:
            d = devices[no]
            return api.post("/auth/login", json={"staff_no": f"10{no:02d}", "password": "demo1234",
                                                 "window_no": no},
                            headers={"X-Device-Id": d["device_id"], "X-Device-Secret": d["device_secret"],
                                     "Idempotency-Key": os.urandom(8).hex()})
        assert login(4).status_code == 403 and login(4).json()["error"]["code"] == "device_revoked"
        assert login(5).status_code == 200
        # An unknown window makes no codes at all and leaves no file.
        bad = hall_cli(srv.data_dir, "enrollment-codes", "--windows", "11-99", "--out", str(tmp_path / "b.csv"))
        assert bad.returncode == 1 and ("unknown" in bad.stderr.lower() or "not_found" in bad.stderr)
        assert not (tmp_path / "b.csv").exists()
        assert hall_cli(srv.data_dir, "enrollment-codes", "--windows", "3-x", "--out",
                        str(tmp_path / "c.csv")).returncode == 1
    finally:
        srv.stop()


# ---- --require-device is the production default ------------------------------------------------
def test_production_refuses_unenrolled_desks_unless_allowed(tmp_path: Path) -> None:
    data = tmp_path / "hall"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("HALL_DB_URL", None)
    r = subprocess.run([sys.executable, "-m", "hall_server", "init", "--from", str(REPO_ROOT / "hall.example.toml"),
                        "--admin-password-stdin", "--data-dir", str(data)], input="it-admin-pw\n",
                       capture_output=True, text=True, timeout=180, env=env, cwd=str(REPO_ROOT))
    assert r.returncode == 0, r.stderr
    ok(subprocess.run([sys.executable, "-m", "hall_server", "staff", "add", "2001", "--name-zh", "李四",
                       "--password-stdin", "--data-dir", str(data)], input="clerk-pass-1\n",
                      capture_output=True, text=True, timeout=180, env=env, cwd=str(REPO_ROOT)))
    for args, expected in (((), 403), (("--allow-unenrolled",), 200)):
        proc, port = serve(data, *args)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, proc=proc)  # type: ignore[arg-type]
            r2 = Api(url).post("/auth/login", json={"staff_no": "2001", "password": "clerk-pass-1",
                                                    "window_no": 3})
            assert r2.status_code == expected, r2.text
            if expected == 403:
                assert r2.json()["error"]["code"] == "device_required"
        finally:
            stop(proc)
    proc, port = serve(data, "--allow-unenrolled", "--require-device")
    assert proc.wait(60) == 2


# ---- TLS -----------------------------------------------------------------------------------
def test_tls_served_by_uvicorn_and_trusted_through_ca_bundle(tmp_path: Path) -> None:
    ca = trustme.CA(organization_name="Hall IT test CA")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    pem_ca, pem_cert, pem_key = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    ca.cert_pem.write_to_path(str(pem_ca))
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem_cert))
    cert.private_key_pem.write_to_path(str(pem_key))
    proc, port = serve(tmp_path / "hall", "--demo", "--tls-cert", str(pem_cert), "--tls-key", str(pem_key))
    try:
        url = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        client = HallClient(url, ca_bundle=str(pem_ca), max_retries=0)
        while True:
            try:
                assert client.health().status == "ok"
                break
            except errors.ApiError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert client.login("1001", "demo1234", window_no=1).window is not None
        client.close()
        # Without the hall's CA the same server is refused (no silent fallback to trust-all).
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url + "/api/v1/health", timeout=10)
        with pytest.raises(requests.exceptions.ConnectionError):  # plain http to the TLS port
            s = requests.Session()
            s.trust_env = False
            s.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=10).raise_for_status()
    finally:
        stop(proc)
    bad = subprocess.run([sys.executable, "-m", "hall_server", "serve", "--demo", "--tls-cert", str(pem_cert),
                          "--data-dir", str(tmp_path / "h2")], capture_output=True, text=True, timeout=60,
                         cwd=str(REPO_ROOT), env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert bad.returncode == 2 and "--tls-key" in bad.stderr


# ---- backup / restore ------------------------------------------------------------------------
def _dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    c = sqlite3.connect(db)
    try:
        names = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {n: sorted(map(tuple, c.execute(f'SELECT * FROM "{n}"')), key=repr) for n in names}  # noqa: S608
    finally:
        c.close()


def test_sqlite_backup_under_writes_and_restore_compares_equal(tmp_path: Path) -> None:
    srv = start_server_thread(data_dir=tmp_path / "hall", demo=True)
    stop_writing = threading.Event()
    issued: list[int] = []

    def writer() -> None:
        api = Api(srv.url)
        while not stop_writing.is_set():
            r = api.post("/tickets", json={"category": "A"})
            if r.status_code == 201:
                issued.append(int(r.json()["id"]))

    t = threading.Thread(target=writer, daemon=True)
    try:
        t.start()
        time.sleep(1.0)
        hot = tmp_path / "hot.sqlite3"
        report = ok(hall_cli(srv.data_dir, "backup", "--out", str(hot)))
        assert report["database"] == "sqlite" and stat.S_IMODE(hot.stat().st_mode) == 0o600
        stop_writing.set()
        t.join(30)
        # The copy taken under writes is one consistent snapshot: sound, with a dense event log.
        restored = tmp_path / "restored-hot"
        ok(hall_cli(restored, "restore", "--from", str(hot)))
        check = hall_cli(restored, "check-db", "--keep-hours", "48")
        assert check.returncode == 0, check.stdout + check.stderr
        c = sqlite3.connect(restored / "hall.sqlite3")
        ids = [r[0] for r in c.execute("SELECT id FROM tickets WHERE category = 'A' ORDER BY id")]
        c.close()
        # The writer's tickets in the snapshot are exactly the first k it was answered for
        # (plus at most the one in flight when the copy was taken): no torn middle.
        mine = [i for i in ids if i >= issued[0]]
        assert mine[:len(mine) - 1] == issued[:len(mine) - 1] and len(mine) >= 1
        assert len(mine) < len(issued)  # the server kept writing after the backup
        # A backup after the writes, restored elsewhere, holds exactly the same data.
        cold = tmp_path / "cold.sqlite3"
        ok(hall_cli(srv.data_dir, "backup", "--out", str(cold)))
        srv.stop()
        again = tmp_path / "restored-cold"
        ok(hall_cli(again, "restore", "--from", str(cold)))
        assert _dump(again / "hall.sqlite3") == _dump(srv.data_dir / "hall.sqlite3")
        assert set(issued) <= {r[0] for r in _dump(again / "hall.sqlite3")["tickets"]}
        # Not a backup: refused, nothing touched.
        junk = tmp_path / "junk.sqlite3"
        junk.write_bytes(b"not a database" * 100)
        before = _dump(again / "hall.sqlite3")
        bad = hall_cli(again, "restore", "--from", str(junk))
        assert bad.returncode == 1 and "hall backup" in bad.stderr
        assert _dump(again / "hall.sqlite3") == before
    finally:
        stop_writing.set()
        srv.stop()


@pytest.mark.postgres
def test_postgresql_backup_and_restore_with_pg_tools(tmp_path: Path) -> None:
    base = os.environ.get("HALL_TEST_PG_URL")
    if not base:
        pytest.skip("HALL_TEST_PG_URL not set")
    import shutil

    if not shutil.which("pg_dump"):
        pytest.skip("pg_dump not installed")
    src, dst = fresh_pg_url(base), fresh_pg_url(base)
    try:
        srv = start_server_thread(db_url=src, data_dir=tmp_path / "hall", demo=True)
        try:
            api = Api(srv.url)
            ids = [api.post("/tickets", json={"category": "A"}).json()["id"] for _ in range(5)]
            ok(hall_cli(srv.data_dir, "backup", "--out", str(tmp_path / "pg.dump"), db=src))
        finally:
            srv.stop()
        ok(hall_cli(tmp_path / "h2", "restore", "--from", str(tmp_path / "pg.dump"), db=dst))
        from sqlalchemy import create_engine, text

        def rows(url: str) -> list[Any]:
            eng = create_engine(url)
            try:
                with eng.connect() as c:
                    return [tuple(r) for r in c.execute(text("SELECT id, category, state FROM tickets ORDER BY id"))]
            finally:
                eng.dispose()
        assert rows(dst) == rows(src) and set(ids) <= {r[0] for r in rows(dst)}
    finally:
        drop_pg_db(src)
        drop_pg_db(dst)


# ---- /health/db --------------------------------------------------------------------------------
def test_health_db_is_bounded_for_unauthenticated_floods(hall_server: RunningServer) -> None:
    answers: list[dict[str, Any]] = []

    def hit() -> None:
        s = requests.Session()
        s.trust_env = False
        for _ in range(25):
            r = s.get(hall_server.url + "/api/v1/health/db", timeout=30)
            assert r.status_code == 200
            answers.append(r.json())

    threads = [threading.Thread(target=hit) for _ in range(8)]
    started = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    elapsed = time.monotonic() - started
    assert len(answers) == 200
    probes = {a["checked_at"] for a in answers}
    # 200 calls cost at most one database probe per 0.25 s (plus the one in flight at the start).
    assert len(probes) <= elapsed / 0.25 + 2, (len(probes), elapsed)
    assert len(probes) < 50
    assert all(a["status"] == "ok" and a["database"] for a in answers)


# ---- stale windows -------------------------------------------------------------------------------
def test_server_closes_windows_of_silent_desks_and_says_so(tmp_path: Path) -> None:
    srv = start_server_thread(data_dir=tmp_path / "hall", demo=True, stale_window_seconds=2,
                              stale_check_seconds=0.3)
    try:
        silent = signed_in(srv.url, "1001", 1)
        talking = signed_in(srv.url, "1002", 2)
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:  # the second desk's ordinary traffic is its heartbeat
            assert talking.get("/me").status_code == 200
            time.sleep(0.3)
        it = signed_in(srv.url, "9001")
        windows = {w["no"]: w for w in it.get("/windows").json()}
        assert windows[1]["state"] == "closed" and windows[1].get("staff_no") is None
        assert windows[2]["state"] == "open"
        assert silent.get("/me").status_code == 401  # its session ended like a sign-out
        c = sqlite3.connect(srv.data_dir / "hall.sqlite3")
        payloads = [json.loads(r[0]) for r in c.execute(
            "SELECT data FROM events WHERE type = 'window.closed' AND window_no = 1")]
        c.close()
        assert any(p.get("reason") == "desk_silent" and p["silent_seconds"] >= 2 for p in payloads)
    finally:
        srv.stop()
