"""Provisioning a window PC that cannot half-succeed (issue 13 item 2), against the real server:
the machine step (IT, writes the config, records the hall identity) and the enrol step (the
clerk's keyring) are separate commands; every precondition (config writable, keyring usable and
unlocked — a real locked gnome-keyring —, server reachable with the right scheme) is checked
before the one-time code is spent, so the same code works on the retry; the device credential
is keyed by the hall's identity, so moving the hall from http to https under a new host name
keeps every PC's enrolment."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import keyring
import pytest
import trustme

from counter_app import provisioning
from counter_app.config import load_settings
from counter_app.credentials import CredentialStore
from counter_desk import cli, wiring
from tests.support.deploy_fixtures import MemoryKeyring
from tests.support.server_fixtures import (
    REPO_ROOT,
    RunningServer,
    free_port,
    signed_in,
    start_server_thread,
)


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder`, with what is in it, read-only for this process: a read-only bind mount of
    itself as root (root ignores modes), mode 0555 otherwise."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    r = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"root without mount rights here: {r.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def enrollment_code(url: str, window_no: int) -> str:
    it = signed_in(url, "9001")
    try:
        r = it.post("/admin/enrollment-codes", json={"window_no": window_no})
        assert r.status_code in (200, 201), r.text
        return str(r.json()["code"])
    finally:
        it.close()


def args(**kw: Any) -> argparse.Namespace:
    base: dict[str, Any] = dict(server_url=None, hall=None, window=None, ca_bundle=None,
                                proxy=None, pad_transport=None, scanner_source=None,
                                enrollment_code=None, config_path=None, replace=False,
                                no_input=True, config=None, machine=False)
    base.update(kw)
    return argparse.Namespace(**base)


def code_still_works(url: str, code: str, window: int, tmp_path: Path) -> None:
    """The code the failed attempt was given enrols now (it was not spent)."""
    before = keyring.get_keyring()
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    try:
        r = provisioning.run_setup(args(server_url=url, window=window, enrollment_code=code,
                                        config_path=tmp_path / "retry" / "config.toml"))
        assert r.enrolled and kr.store
    finally:
        keyring.set_keyring(before)


def test_machine_step_then_clerk_enrols_without_touching_the_config(
        fresh_hall_server: RunningServer, memory_keyring: MemoryKeyring, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = fresh_hall_server.url
    etc = tmp_path / "etc" / "counter-app"
    cfg = etc / "config.toml"
    rc = cli.main(["setup", "--machine", "--config-path", str(cfg), "--server-url", url,
                   "--window", "3", "--no-input"])
    assert rc == 0, capsys.readouterr().err
    written = tomllib.loads(cfg.read_text(encoding="utf-8"))
    ident = signed_in(url, "9001").get("/identity").json()
    assert written["hall_code"] == "GXQ" == ident["hall_code"]
    assert written["server_id"] == ident["server_id"] and len(ident["server_id"]) == 32
    assert memory_keyring.store == {}  # the machine step never touches a keyring
    assert "counter-app enroll" in capsys.readouterr().out
    # --machine with a code: refused (the clerk's keyring is not root's).
    code = enrollment_code(url, 3)
    assert cli.main(["setup", "--machine", "--config-path", str(cfg), "--enrollment-code", code,
                     "--no-input"]) == provisioning.EXIT_BAD_INPUT
    # The clerk's step cannot write the machine config (read-only here) and need not.
    before = cfg.read_bytes()
    with read_only(etc):
        rc = cli.main(["enroll", "--config-path", str(cfg), "--enrollment-code", code])
    assert rc == 0, capsys.readouterr().err
    assert cfg.read_bytes() == before
    (key,), = [list(memory_keyring.store)]
    assert key == ("counter-app", f"device@GXQ/{ident['server_id']}")  # keyed by the hall, not the URL
    # A config without the hall identity (no machine step yet) is refused before anything.
    bare = tmp_path / "bare.toml"
    bare.write_text(f'server_url = "{url}"\nwindow_no = 4\n', encoding="utf-8")
    assert cli.main(["enroll", "--config-path", str(bare), "--enrollment-code", "X"]) == \
        provisioning.EXIT_BAD_INPUT
    # The machine step for another hall's code: refused, nothing written.
    other = tmp_path / "other.toml"
    with pytest.raises(provisioning.SetupError) as err:
        provisioning.run_setup(args(machine=True, server_url=url, window=2, hall="QZ",
                                    config_path=other))
    assert err.value.exit_code == provisioning.EXIT_REFUSED and "not QZ" in err.value.message_en
    assert not other.exists()


def test_unwritable_machine_config_refuses_before_spending_the_code(
        fresh_hall_server: RunningServer, memory_keyring: MemoryKeyring, tmp_path: Path) -> None:
    url = fresh_hall_server.url
    code = enrollment_code(url, 6)
    etc = tmp_path / "etc"
    with read_only(etc):
        with pytest.raises(provisioning.SetupError) as err:
            provisioning.run_setup(args(server_url=url, window=6, enrollment_code=code,
                                        config_path=etc / "config.toml"))
    assert err.value.exit_code == provisioning.EXIT_FAILED
    assert "enrollment code was not used" in err.value.message_en
    assert "setup --machine" in err.value.message_en and "counter-app enroll" in err.value.message_en
    assert "登记码未使用" in err.value.message_zh
    assert memory_keyring.store == {}
    code_still_works(url, code, 6, tmp_path)


def test_https_to_a_plain_http_server_refuses_before_spending_the_code(
        fresh_hall_server: RunningServer, memory_keyring: MemoryKeyring, tmp_path: Path) -> None:
    url = fresh_hall_server.url
    code = enrollment_code(url, 7)
    with pytest.raises(provisioning.SetupError) as err:
        provisioning.run_setup(args(server_url=url.replace("http://", "https://"), window=7,
                                    enrollment_code=code, config_path=tmp_path / "c.toml"))
    assert err.value.exit_code == provisioning.EXIT_FAILED
    assert "speaks plain http" in err.value.message_en and "not used" in err.value.message_en
    assert not (tmp_path / "c.toml").exists() and memory_keyring.store == {}
    code_still_works(url, code, 7, tmp_path)


LOCKED_KEYRING_SETUP = textwrap.dedent("""
    import sys
    import secretstorage
    from keyring.backends import SecretService
    import keyring
    kr = SecretService.Keyring()
    keyring.set_keyring(kr)
    kr.set_password("counter-app", "warm-up", "x")
    conn = secretstorage.dbus_init()
    collection = secretstorage.get_default_collection(conn)
    collection.lock()
    assert collection.is_locked()
    print("LOCKED", flush=True)
    from counter_desk import cli
    sys.exit(cli.main(["setup", "--config-path", sys.argv[1], "--server-url", sys.argv[2],
                       "--window", "8", "--enrollment-code", sys.argv[3], "--no-input"]))
""")


@pytest.mark.parametrize("prompt", [True, False], ids=["unlock-prompt-waits", "no-prompt"])
def test_locked_gnome_keyring_refuses_before_spending_the_code(
        prompt: bool, fresh_hall_server: RunningServer, tmp_path: Path) -> None:
    if not (shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon")):
        pytest.skip("dbus-run-session / gnome-keyring not installed")
    if prompt and not os.environ.get("DISPLAY"):
        pytest.skip("no display for the unlock prompt (run through scripts/run.sh test)")
    url = fresh_hall_server.url
    code = enrollment_code(url, 8)
    home = tmp_path / "home"
    (home / ".local" / "share").mkdir(parents=True)
    script = tmp_path / "locked.py"
    script.write_text(LOCKED_KEYRING_SETUP, encoding="utf-8")
    cfg = tmp_path / "c.toml"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DBUS_", "GNOME_KEYRING", "XDG_RUNTIME"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / ".local" / "share"),
               PYTHONPATH=str(REPO_ROOT), COUNTER_DATA_DIR=str(tmp_path / "data"),
               COUNTER_LOG_DIR=str(tmp_path / "log"))
    if not prompt:
        env.pop("DISPLAY", None)
        env.pop("WAYLAND_DISPLAY", None)
    inner = ('eval "$(printf pw | gnome-keyring-daemon --unlock --components=secrets)" >/dev/null;'
             f' exec "{sys.executable}" "{script}" "{cfg}" "{url}" "{code}"')
    t0 = time.monotonic()
    proc = subprocess.run(["dbus-run-session", "--", "bash", "-c", inner], env=env,
                          capture_output=True, text=True, timeout=120)
    assert "LOCKED" in proc.stdout, proc.stdout + proc.stderr
    assert proc.returncode == provisioning.EXIT_KEYRING, proc.stdout + proc.stderr
    assert "locked" in proc.stderr and "enrollment code was not used" in proc.stderr
    assert time.monotonic() - t0 < provisioning.KEYRING_TIMEOUT_S + 60
    assert not cfg.exists()
    code_still_works(url, code, 8, tmp_path)


def test_credential_survives_http_to_https_and_a_new_host_name(
        memory_keyring: MemoryKeyring, tmp_path: Path) -> None:
    data = tmp_path / "hall"
    srv = start_server_thread(data_dir=data, demo=True, require_device=True)
    cfg = tmp_path / "etc" / "config.toml"
    try:
        code = enrollment_code(srv.url, 3)
        assert cli.main(["setup", "--config-path", str(cfg), "--server-url", srv.url,
                         "--window", "3", "--enrollment-code", code, "--no-input"]) == 0
    finally:
        srv.stop()
    # The hall moves to https (uvicorn's own TLS, the hall's CA) and is reached by name.
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca_pem, cert_pem, key_pem = tmp_path / "ca.pem", tmp_path / "s.pem", tmp_path / "s.key"
    ca.cert_pem.write_to_path(str(ca_pem))
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_pem))
    cert.private_key_pem.write_to_path(str(key_pem))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("HALL_DB_URL", None)
    log = (tmp_path / "tls.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "hall_server", "serve", "--demo", "--require-device",
                             "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data),
                             "--tls-cert", str(cert_pem), "--tls-key", str(key_pem)],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO_ROOT))
    try:
        new_url = f"https://localhost:{port}"
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:  # wait until TLS answers
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        # First with the wrong CA: refused with the true cause, the config left as it was.
        wrong = tmp_path / "wrong-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(wrong))
        before = cfg.read_bytes()
        with pytest.raises(provisioning.SetupError) as err:
            provisioning.run_setup(args(machine=True, server_url=new_url, ca_bundle=str(wrong),
                                        window=3, config_path=cfg))
        assert err.value.exit_code == provisioning.EXIT_FAILED and "TLS" in err.value.message_en
        assert cfg.read_bytes() == before
        while True:  # IT re-runs only the machine step with the new address
            rc = cli.main(["setup", "--machine", "--config-path", str(cfg), "--server-url", new_url,
                           "--ca-bundle", str(ca_pem), "--window", "3", "--no-input"])
            if rc == 0 or time.monotonic() > deadline or proc.poll() is not None:
                break
            time.sleep(0.5)
        assert rc == 0, (tmp_path / "tls.log").read_text(errors="replace")
        settings = load_settings(cfg, tmp_path / "prefs.toml").settings
        assert settings.server_url == new_url
        client = wiring.make_client(settings, CredentialStore.for_settings(settings), [])
        try:
            # The server refuses unenrolled desks: this login proves the old credential is found.
            assert client.login("1003", "demo1234", window_no=3).window is not None
        finally:
            client.close()
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


def test_no_secret_service_refuses_before_spending_the_code(fresh_hall_server: RunningServer,
                                                            tmp_path: Path) -> None:
    """A session without D-Bus / Secret Service (setup run over ssh, or as root by mistake)."""
    url = fresh_hall_server.url
    code = enrollment_code(url, 9)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DBUS_", "GNOME_KEYRING", "XDG_RUNTIME", "PYTHON_KEYRING"))}
    env.update(HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO_ROOT),
               DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp_path / 'no-bus'}",
               COUNTER_DATA_DIR=str(tmp_path / "data"), COUNTER_LOG_DIR=str(tmp_path / "log"))
    cfg = tmp_path / "c.toml"
    proc = subprocess.run([sys.executable, "-m", "counter_desk", "setup", "--config-path", str(cfg),
                           "--server-url", url, "--window", "9", "--enrollment-code", code,
                           "--no-input"], env=env, capture_output=True, text=True, timeout=120,
                          cwd=str(REPO_ROOT))
    assert proc.returncode == provisioning.EXIT_KEYRING, proc.stdout + proc.stderr
    assert "enrollment code was not used" in proc.stderr and "登记码未使用" in proc.stderr
    assert not cfg.exists()
    code_still_works(url, code, 9, tmp_path)
