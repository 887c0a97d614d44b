"""`counter-app doctor` finds what is wrong on a window PC and says what to do (zh + en).

Against the real reference server (healthy), and small real servers on loopback for the rest:
an HTTPS `/health` whose certificate comes from another CA than the configured one (trustme), a
port nobody listens on, a `/health` whose clock is ten minutes ahead; plus the keyring's `fail`
backend and an outbox database with old pending items (read read-only).
"""

from __future__ import annotations

import argparse
import io
import json
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import keyring
import pytest
import trustme
from keyring.backends import fail

from counter_app import doctor
from counter_app.config import load_settings
from counter_app.localdb import open_db
from counter_app.selftest import FAIL, OK, WARN, CheckResult
from counter_desk import cli
from tests.support.deploy_fixtures import MemoryKeyring
from tests.support.server_fixtures import RunningServer, free_port


class HealthServer:
    """`GET /api/v1/health` on loopback, optionally over TLS, answering with a chosen clock."""

    def __init__(self, *, skew_s: float = 0.0, tls: ssl.SSLContext | None = None) -> None:
        skew = skew_s

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                now = datetime.now(UTC) + timedelta(seconds=skew)
                body = json.dumps({"status": "ok", "version": "test", "database": "sqlite",
                                   "time": now.isoformat().replace("+00:00", "Z")}).encode()
                self.send_response(200 if self.path == "/api/v1/health" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        port = self.httpd.server_address[1]
        self.url = f"{'https' if tls else 'http'}://{'localhost' if tls else '127.0.0.1'}:{port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def tls_server() -> Iterator[tuple[HealthServer, trustme.CA]]:
    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    srv = HealthServer(tls=ctx)
    yield srv, ca
    srv.close()


def write_config(tmp: Path, **values: object) -> Path:
    lines = []
    for k, v in values.items():
        lines.append(f"{k} = {json.dumps(v)}")
    cfg = tmp / "config.toml"
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cfg


def run(tmp: Path, cfg: Path) -> tuple[int, list[CheckResult], str]:
    loaded = load_settings(cfg, tmp / "prefs.toml")
    results = doctor.run_checks(loaded, cfg)
    out = io.StringIO()
    return doctor.report(results, out), results, out.getvalue()


def by_name(results: list[CheckResult], name: str) -> CheckResult:
    return next(r for r in results if r.name == name)


@pytest.fixture(autouse=True)
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COUNTER_LOG_DIR", str(tmp_path / "log"))


def test_healthy_pc_passes(fresh_hall_server: RunningServer, memory_keyring: MemoryKeyring,
                           tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, server_url=fresh_hall_server.url, window_no=1)
    rc = cli.main(["--config", str(cfg), "--prefs", str(tmp_path / "p.toml"), "doctor"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "[ok] server: ok" in out and "[ok] clock:" in out and "[ok] keyring:" in out
    assert "[warn] device credential: none stored" in out  # not enrolled yet: a hint, not a fail
    assert "0 failed" in out


def test_wrong_ca_is_reported_with_a_remedy(tls_server: tuple[HealthServer, trustme.CA],
                                            memory_keyring: MemoryKeyring,
                                            tmp_path: Path) -> None:
    srv, right_ca = tls_server
    wrong = tmp_path / "wrong-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(wrong))
    rc, results, text = run(tmp_path, write_config(tmp_path, server_url=srv.url,
                                                   ca_bundle=str(wrong)))
    assert rc == 1
    tls = by_name(results, "TLS")
    assert tls.status == FAIL and "ca_bundle" in tls.remedy_en and "ca_bundle" in tls.remedy_zh
    assert by_name(results, "server").status == FAIL
    # With the CA that really issued the certificate the same checks pass.
    right = tmp_path / "right-ca.pem"
    right_ca.cert_pem.write_to_path(str(right))
    rc, results, text = run(tmp_path, write_config(tmp_path, server_url=srv.url,
                                                   ca_bundle=str(right)))
    assert by_name(results, "TLS").status == OK, text
    assert by_name(results, "server").status == OK


def test_dead_server(memory_keyring: MemoryKeyring, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    rc, results, text = run(tmp_path, write_config(tmp_path, server_url=url))
    assert rc == 1
    server = by_name(results, "server")
    assert server.status == FAIL and url in server.detail
    assert "server_url" in server.remedy_en and "检查网线" in server.remedy_zh
    assert "-> Check the cable" in text


@pytest.mark.parametrize("skew", [600.0, -600.0])
def test_skewed_clock(skew: float, memory_keyring: MemoryKeyring, tmp_path: Path) -> None:
    srv = HealthServer(skew_s=skew)
    try:
        rc, results, _text = run(tmp_path, write_config(tmp_path, server_url=srv.url))
    finally:
        srv.close()
    clock = by_name(results, "clock")
    assert rc == 1 and clock.status == FAIL
    assert ("ahead of" if skew > 0 else "behind") in clock.detail
    seconds = float(clock.detail.split()[1])
    assert abs(seconds - abs(skew)) < 5
    assert "w32tm /resync" in clock.remedy_en and "同步" in clock.remedy_zh


def test_small_skew_is_fine(memory_keyring: MemoryKeyring, tmp_path: Path) -> None:
    srv = HealthServer(skew_s=2.0)
    try:
        _rc, results, _t = run(tmp_path, write_config(tmp_path, server_url=srv.url))
    finally:
        srv.close()
    assert by_name(results, "clock").status == OK


def test_missing_keyring_backend(fresh_hall_server: RunningServer, tmp_path: Path) -> None:
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        rc, results, _t = run(tmp_path, write_config(tmp_path,
                                                      server_url=fresh_hall_server.url))
    finally:
        keyring.set_keyring(before)
    kr = by_name(results, "keyring")
    assert rc == 1 and kr.status == FAIL
    assert "gnome-keyring" in kr.remedy_en and "凭据管理器" in kr.remedy_zh


def test_outbox_depth_and_oldest_read_only(memory_keyring: MemoryKeyring, tmp_path: Path) -> None:
    db = tmp_path / "data" / "outbox.sqlite3"
    conn, _report = open_db(db)
    now = time.time()
    for i, (state, age) in enumerate([("pending", 7200), ("pending", 60), ("dead", 10),
                                      ("done", 5)]):
        conn.execute("INSERT INTO outbox (id, kind, payload, payload_sha256, created, state, "
                     "next_attempt_at) VALUES (?, 'rating', '{}', '', ?, ?, 0)",
                     (f"k{i}", now - age, state))
    conn.close()
    before = db.stat().st_mtime_ns
    rc, results, _t = run(tmp_path, write_config(tmp_path, server_url="http://127.0.0.1:9"))
    ob = by_name(results, "outbox")
    assert ob.status == WARN
    assert ob.detail.startswith("2 waiting, oldest 120 min") and "1 refused" in ob.detail
    assert db.stat().st_mtime_ns == before


def test_unwritable_log_folder(memory_keyring: MemoryKeyring, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("COUNTER_LOG_DIR", str(blocker / "log"))
    rc, results, _t = run(tmp_path, write_config(tmp_path, server_url="http://127.0.0.1:9"))
    log_line = by_name(results, "log folder")
    assert rc == 1 and log_line.status == FAIL and "write access" in log_line.remedy_en


def test_namespace_without_config(memory_keyring: MemoryKeyring, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # `doctor.main` also works with the bare namespace the CLI gives it.
    monkeypatch.setenv("COUNTER_MACHINE_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("COUNTER_USER_CONFIG", str(tmp_path / "absent-prefs.toml"))
    out = io.StringIO()
    rc = doctor.main(argparse.Namespace(config=None, prefs=None), out)
    assert rc == 1  # nothing listens on the default server address here
    assert "[warn] machine config:" in out.getvalue() and "counter-app setup" in out.getvalue()
