"""Issue 13 item 3: `doctor` names the true cause of each misconfiguration, against the real server.

Each test sets a window PC up wrong the way IT does in the field and runs doctor against the real
reference hall server on loopback (plain http, or uvicorn's own TLS with a trustme certificate):
https to the plain-http port, http to the TLS port, a CA bundle from another CA, a CA bundle file
that is missing, a locked gnome-keyring (a real one on a private D-Bus session, locked through the
Secret Service API; with a display its unlock prompt waits forever, which made the old doctor
hang), a clock ten minutes off (a small test server whose `/health` time and Date header are
off: the real server's clock cannot be moved), read-only data and log folders (a read-only tmpfs
mount when run as root, where permissions do not stop writes; a 0500 folder otherwise), a
plain-http address to another machine, and the outbox promise. The old doctor said "certificate
refused, set ca_bundle", "check the cable" (three times), Windows-only clock advice, hung, and
promised uploads of ratings that did not exist: each test below failed on it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from counter_app import doctor
from counter_app.config import load_settings
from counter_app.localdb import open_db
from counter_app.selftest import FAIL, INFO, OK, WARN, CheckResult
from tests.security.attack_base import RecordingProxy
from tests.support.deploy_fixtures import MemoryKeyring
from tests.support.server_fixtures import REPO_ROOT, RunningServer, free_port
from tests.test_doctor import HealthServer


def write_config(tmp: Path, **values: object) -> Path:
    cfg = tmp / "config.toml"
    cfg.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()),
                   encoding="utf-8")
    return cfg


def run(tmp: Path, cfg: Path, **timeouts: float) -> tuple[int, list[CheckResult], str]:
    loaded = load_settings(cfg, tmp / "prefs.toml")
    results = doctor.run_checks(loaded, cfg, timeouts=timeouts or None)
    out = io.StringIO()
    return doctor.report(results, out), results, out.getvalue()


def line(results: list[CheckResult], name: str) -> CheckResult:
    return next(r for r in results if r.name == name)


@pytest.fixture(autouse=True)
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COUNTER_LOG_DIR", str(tmp_path / "log"))


@dataclass
class TlsHall:
    url: str
    port: int
    ca: trustme.CA
    ca_file: Path


@pytest.fixture
def tls_hall(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TlsHall]:
    """The real hall server behind uvicorn's own TLS, certificate for localhost/127.0.0.1
    (or for the names given by indirect parametrisation)."""
    import uvicorn

    from hall_server.app import create_app
    from hall_server.settings import Settings

    ca = trustme.CA()
    pem = tmp_path / "server.pem"
    names = getattr(request, "param", ("localhost", "127.0.0.1"))
    ca.issue_cert(*names).private_key_and_cert_chain_pem.write_to_path(str(pem))
    ca_file = tmp_path / "hall-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    app = create_app(Settings(data_dir=tmp_path / "hall", demo=True))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
        ssl_certfile=str(pem), ssl_keyfile=str(pem), timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "TLS hall server did not start"
        time.sleep(0.02)
    yield TlsHall(f"https://localhost:{port}", port, ca, ca_file)
    server.should_exit = True
    thread.join(15)


def test_https_to_the_plain_http_port(fresh_hall_server: RunningServer,
                                      memory_keyring: MemoryKeyring, tmp_path: Path) -> None:
    port = fresh_hall_server.url.rsplit(":", 1)[1]
    url = f"https://127.0.0.1:{port}"
    rc, results, text = run(tmp_path, write_config(tmp_path, server_url=url))
    server = line(results, "server")
    assert rc == 1 and server.status == FAIL
    assert "the server speaks plain http on that port" in server.detail
    assert "turn TLS on at the server" in server.remedy_en and "do not switch" in server.remedy_en
    assert "TLS refused" not in text and "certificate was refused" not in text
    assert not [r for r in results if r.name == "TLS"]


def test_http_to_the_tls_port(tls_hall: TlsHall, memory_keyring: MemoryKeyring,
                              tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{tls_hall.port}"
    rc, results, text = run(tmp_path, write_config(tmp_path, server_url=url))
    server = line(results, "server")
    assert rc == 1 and server.status == FAIL
    assert "the server expects https on that port" in server.detail
    assert f"https://127.0.0.1:{tls_hall.port}" in server.remedy_en
    assert "cable" not in text and "网线" not in text


def test_wrong_ca_then_the_right_one(tls_hall: TlsHall, memory_keyring: MemoryKeyring,
                                     tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    rc, results, _t = run(tmp_path, write_config(tmp_path, server_url=tls_hall.url,
                                                 ca_bundle=str(other)))
    tls = line(results, "TLS")
    assert rc == 1 and tls.status == FAIL
    assert "not issued by the CA in ca_bundle" in tls.detail and str(other) in tls.detail
    assert "ca_bundle" in tls.remedy_en and "ca_bundle" in tls.remedy_zh
    # The CA that issued the certificate: the same real server passes every check.
    rc, results, text = run(tmp_path, write_config(tmp_path, server_url=tls_hall.url,
                                                   ca_bundle=str(tls_hall.ca_file)))
    assert rc == 0, text
    assert line(results, "server").status == OK and line(results, "TLS").status == OK


@pytest.mark.parametrize("tls_hall", [("hall.example",)], indirect=True)
def test_certificate_for_another_name(tls_hall: TlsHall, memory_keyring: MemoryKeyring,
                                      tmp_path: Path) -> None:
    url = f"https://localhost:{tls_hall.port}"
    rc, results, _t = run(tmp_path, write_config(tmp_path, server_url=url,
                                                 ca_bundle=str(tls_hall.ca_file)))
    tls = line(results, "TLS")
    assert rc == 1 and tls.status == FAIL
    assert "the certificate is not for the host name 'localhost'" in tls.detail


def test_missing_ca_file(tls_hall: TlsHall, memory_keyring: MemoryKeyring,
                         tmp_path: Path) -> None:
    missing = tmp_path / "certs" / "hall-ca.pem"
    rc, results, text = run(tmp_path, write_config(tmp_path, server_url=tls_hall.url,
                                                   ca_bundle=str(missing)))
    ca = line(results, "CA bundle")
    assert rc == 1 and ca.status == FAIL
    assert f"the file {missing} does not exist" == ca.detail
    assert str(missing) in ca.remedy_en and str(missing) in ca.remedy_zh
    assert line(results, "server").status == INFO  # not contacted with a CA it cannot load
    assert "cable" not in text and "网线" not in text


LOCKED_KEYRING_DOCTOR = textwrap.dedent("""
    import argparse, sys
    from pathlib import Path
    import keyring, secretstorage
    from keyring.backends import SecretService
    kr = SecretService.Keyring()
    keyring.set_keyring(kr)
    kr.set_password("counter-app", "device@{url}", '{{"device_id": "d", "device_secret": "s"}}')
    conn = secretstorage.dbus_init()
    collection = secretstorage.get_default_collection(conn)
    collection.lock()
    assert collection.is_locked()
    print("LOCKED", flush=True)
    from counter_app import doctor
    sys.exit(doctor.main(argparse.Namespace(config=Path(sys.argv[1]), prefs=Path(sys.argv[2]))))
""")


@pytest.mark.parametrize("prompt", [True, False], ids=["unlock-prompt-waits", "no-prompt"])
def test_locked_keyring_does_not_hang(prompt: bool, fresh_hall_server: RunningServer,
                                      tmp_path: Path) -> None:
    """A real gnome-keyring, login collection locked; doctor must finish and say so.

    With a display (pytest-xvfb's) the Secret Service shows an unlock prompt nobody answers and
    `get_password` blocks forever: the old doctor hung here. Without one, the unlock fails at
    once with KeyringLocked.
    """
    if not (shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon")):
        pytest.skip("dbus-run-session / gnome-keyring not installed")
    if prompt and not os.environ.get("DISPLAY"):
        pytest.skip("no display for the unlock prompt (run through scripts/run.sh test)")
    home = tmp_path / "home"
    (home / ".local" / "share").mkdir(parents=True)
    cfg = write_config(tmp_path, server_url=fresh_hall_server.url)
    script = tmp_path / "locked.py"
    script.write_text(LOCKED_KEYRING_DOCTOR.format(url=fresh_hall_server.url), encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DBUS_", "GNOME_KEYRING", "XDG_RUNTIME"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / ".local" / "share"),
               PYTHONPATH=str(REPO_ROOT), COUNTER_DATA_DIR=str(tmp_path / "data"),
               COUNTER_LOG_DIR=str(tmp_path / "log"))
    if not prompt:
        env.pop("DISPLAY", None)
        env.pop("WAYLAND_DISPLAY", None)
    inner = ('eval "$(printf pw | gnome-keyring-daemon --unlock --components=secrets)" >/dev/null;'
             f' exec "{sys.executable}" "{script}" "{cfg}" "{tmp_path / "prefs.toml"}"')
    t0 = time.monotonic()
    proc = subprocess.run(["dbus-run-session", "--", "bash", "-c", inner], env=env,
                          capture_output=True, text=True, timeout=90)
    took = time.monotonic() - t0
    assert "LOCKED" in proc.stdout, proc.stdout + proc.stderr
    assert proc.returncode == 1, proc.stdout + proc.stderr
    keyring_line = next(x for x in proc.stdout.splitlines() if x.startswith("[FAIL] keyring:"))
    assert "locked" in keyring_line
    assert "seahorse" in proc.stdout and "[ok] server:" in proc.stdout  # the rest still ran
    assert took < doctor.TIMEOUTS["keyring"] + 40


def test_a_hung_check_is_cut_at_its_deadline() -> None:
    never = threading.Event()
    step = doctor.Step("keyring", lambda: (never.wait(), [])[1], doctor.keyring_timed_out)
    t0 = time.monotonic()
    out = doctor.run_bounded(step, 0.5)
    assert time.monotonic() - t0 < 3
    assert out[0].status == FAIL and "locked" in out[0].detail and "0 s" not in out[0].detail[:0]
    never.set()


@pytest.mark.parametrize("skew", [600.0, -600.0])
def test_clock_skew_advice_is_for_this_platform(skew: float, memory_keyring: MemoryKeyring,
                                                tmp_path: Path) -> None:
    srv = HealthServer(skew_s=skew)
    try:
        rc, results, _t = run(tmp_path, write_config(tmp_path, server_url=srv.url))
    finally:
        srv.close()
    clock = line(results, "clock")
    assert rc == 1 and clock.status == FAIL
    zh, en = doctor.clock_remedy()
    assert (clock.remedy_zh, clock.remedy_en) == (zh, en)
    if sys.platform.startswith("linux"):
        assert "timedatectl" in en and "chronyc" in en and "w32tm" not in en
    assert "w32tm /resync" in doctor.clock_remedy("win32")[1]
    assert "timedatectl" in doctor.clock_remedy("linux")[1]


@contextmanager
def read_only(folder: Path) -> Iterator[str]:
    """`folder` made read-only for this process: a read-only tmpfs as root, mode 0500 otherwise."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            yield "read-only for this user"
        finally:
            folder.chmod(0o700)
        return
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"root without mount rights here: {r.stderr.strip()}")
    try:
        yield "read-only file system"
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_read_only_folders(fresh_hall_server: RunningServer, memory_keyring: MemoryKeyring,
                           tmp_path: Path) -> None:
    with read_only(tmp_path / "data") as why_data, read_only(tmp_path / "log") as why_log:
        rc, results, _t = run(tmp_path, write_config(tmp_path, server_url=fresh_hall_server.url))
    data, logs = line(results, "data folder"), line(results, "log folder")
    assert rc == 1 and data.status == FAIL and logs.status == FAIL
    assert why_data in data.detail and why_log in logs.detail
    assert "ratings cannot be saved" in data.remedy_en
    assert line(results, "server").status == OK  # one broken thing, named; the rest checked


def test_uploads_are_promised_only_for_a_real_outbox(memory_keyring: MemoryKeyring,
                                                     tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    rc, results, text = run(tmp_path, write_config(tmp_path, server_url=dead))
    assert rc == 1 and "uploaded automatically" not in text and "自动上传" not in text
    assert line(results, "outbox").detail.startswith("no outbox yet")
    conn, _report = open_db(tmp_path / "data" / "outbox.sqlite3")
    for i in range(2):
        conn.execute("INSERT INTO outbox (id, kind, payload, payload_sha256, created, state, "
                     "next_attempt_at) VALUES (?, 'rating', '{}', '', ?, 'pending', 0)",
                     (f"k{i}", time.time()))
    conn.close()
    rc, results, text = run(tmp_path, write_config(tmp_path, server_url=dead))
    outbox = line(results, "outbox")
    assert outbox.detail.startswith("2 waiting")
    assert "The 2 ratings saved on this PC are uploaded automatically" in outbox.remedy_en


def test_plain_http_to_another_machine_fails(fresh_hall_server: RunningServer,
                                             memory_keyring: MemoryKeyring,
                                             tmp_path: Path) -> None:
    port = fresh_hall_server.url.rsplit(":", 1)[1]
    proxy = RecordingProxy(fresh_hall_server.url)
    try:
        rc, results, _t = run(tmp_path, write_config(
            tmp_path, server_url=f"http://hall.test:{port}", proxy=proxy.url))
        address = line(results, "server address")
        assert rc == 1 and address.status == FAIL and "not contacted" in address.detail
        assert proxy.seen == []
        # IT's override: the desk may run, doctor still FAILS (not warns) and says why.
        rc, results, _t = run(tmp_path, write_config(
            tmp_path, server_url=f"http://hall.test:{port}", proxy=proxy.url,
            allow_insecure_http=True))
        assert line(results, "server").status == OK
        tls = line(results, "TLS")
        assert rc == 1 and tls.status == FAIL and "unencrypted" in tls.detail
    finally:
        proxy.close()


def test_https_and_loopback_http_are_not_failed_for_the_scheme(
        fresh_hall_server: RunningServer, memory_keyring: MemoryKeyring, tmp_path: Path) -> None:
    _rc, results, _t = run(tmp_path, write_config(tmp_path, server_url=fresh_hall_server.url))
    assert line(results, "TLS").status == INFO  # the demo: loopback http is fine
    assert ssl.OPENSSL_VERSION  # (TLS itself is covered by test_wrong_ca_then_the_right_one)


def test_an_address_that_reaches_another_server_is_said(fresh_hall_server: RunningServer,
                                                        memory_keyring: MemoryKeyring,
                                                        tmp_path: Path) -> None:
    """setup --machine records the hall code and server id (GET /identity); when server_url
    later reaches another server (a DNS change, a rebuilt server with a new secret), doctor says
    so instead of leaving IT to guess from failing sign-ins."""
    from api_client import HallClient

    c = HallClient(fresh_hall_server.url)
    ident = c.identity()
    c.close()
    url = fresh_hall_server.url
    rc, results, _ = run(tmp_path, write_config(tmp_path, server_url=url, hall_code=ident.hall_code,
                                                 server_id=ident.server_id))
    assert line(results, "server identity").status == OK
    rc, results, text = run(tmp_path, write_config(tmp_path, server_url=url, hall_code=ident.hall_code,
                                                   server_id="0123456789abcdef"))
    bad = line(results, "server identity")
    assert rc == 1 and bad.status == FAIL, text
    assert ident.server_id in bad.detail and "0123456789abcdef" in bad.detail
    assert "setup --machine" in bad.remedy_en and "server_url" in bad.remedy_en
    rc, results, _ = run(tmp_path, write_config(tmp_path, server_url=url))
    assert line(results, "server identity").status == WARN  # set up before identities existed
