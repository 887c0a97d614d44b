"""Live attacks on the desk side (issue 10, findings 10, 11, 12): run by `tests.security.attack`.

Each drives the real desk code (counter_app) against the server under attack, the way a window PC
would: a machine config that points at the server by a LAN name over plain http, a sign-in whose
password holds spaces with the desk logging at DEBUG, a device secret offered to a plaintext
keyring. Only loopback helpers are started (a recording proxy); nothing is sent anywhere but the
server under attack. Staff numbers used for failed sign-ins do not exist, so no real account's
login limit is touched.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from tests.security.attack_base import AttackContext, AttackResult, RecordingProxy, short_answer

DEMO_STAFF = ("1001", "demo1234")
NO_SUCH_STAFF = "7777"


def _port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def attack_login_over_plain_http(base_url: str, ctx: AttackContext) -> AttackResult:
    """A desk configured with `http://<LAN name>` must not send the password at all (finding 11).

    The LAN name reaches the server through a recording proxy on loopback, so whatever the desk
    sends is seen; the desk signs in with the demo staff's real password.
    """
    from counter_app.config import load_settings, with_overrides
    from counter_app.errors import CounterError
    from counter_desk.wiring import build_core

    proxy = RecordingProxy(base_url, verify=ctx.verify)
    lan_url = f"http://hall-lan.invalid:{_port(base_url)}"
    try:
        with tempfile.TemporaryDirectory(prefix="attack-desk-") as tmp:
            cfg = Path(tmp) / "config.toml"
            cfg.write_text(f'server_url = "{lan_url}"\nproxy = "{proxy.url}"\nwindow_no = 1\n',
                           encoding="utf-8")
            loaded = load_settings(cfg, Path(tmp) / "prefs.toml")
            settings = with_overrides(loaded.settings, data_dir=Path(tmp) / "data",
                                      log_dir=Path(tmp) / "log")
            core = build_core(settings, start_updates=False)
            try:
                core.session.sign_in(*DEMO_STAFF)
                outcome = "signed in"
            except CounterError as exc:
                outcome = exc.message_en
            finally:
                core.close()
    finally:
        proxy.close()
    leaked = [path for _m, path, body in proxy.seen if DEMO_STAFF[1].encode() in body]
    plain = [f"{m} {path}" for m, path, _b in proxy.seen if m != "CONNECT"]
    answer = (f"password sent in clear to {leaked[0]}" if leaked else
              f"refused by the desk ({loaded.refused_server_url or 'not refused'}); "
              f"{len(plain)} plain requests; desk said: {outcome}")
    return AttackResult("desk.login_over_plain_http",
                        f"sign in as {DEMO_STAFF[0]} with server_url = {lan_url}",
                        0 if not plain else 200, answer, blocked=not leaked and not plain)


def attack_password_into_the_desk_log(base_url: str, ctx: AttackContext) -> AttackResult:
    """A failed sign-in at DEBUG, plus the payload logged as a careless debug line would: no part
    of the password (it holds spaces) and no ID number may reach counter-app.log (finding 10)."""
    from counter_app.config import Settings
    from counter_app.errors import CounterError
    from counter_app.logging_setup import setup_logging
    from counter_desk.wiring import build_core

    password = "correct horse battery staple"
    id_number = "110105 19491231 002X"
    resp = ctx.request("POST", "/auth/login",
                       json={"staff_no": NO_SUCH_STAFF, "password": password})
    root = logging.getLogger()
    level = root.level
    with tempfile.TemporaryDirectory(prefix="attack-desk-") as tmp:
        log_path = setup_logging(Path(tmp) / "log", level=logging.DEBUG)
        try:
            # Not an https check here: this attack is about the log, whatever the transport.
            core = build_core(Settings(server_url=base_url, allow_insecure_http=True,
                                        ca_bundle=ctx.verify if isinstance(ctx.verify, str)
                                        else None,
                                        data_dir=Path(tmp) / "data", log_dir=Path(tmp) / "log"),
                              start_updates=False)
            try:
                core.session.sign_in(NO_SUCH_STAFF, password)
            except CounterError:
                pass
            finally:
                core.close()
            logging.getLogger("counter_app.attack").debug(
                "login payload %s citizen %s", {"staff_no": NO_SUCH_STAFF, "password": password},
                id_number)
            for h in root.handlers:
                h.flush()
            text = log_path.read_text(encoding="utf-8")
        finally:
            for h in list(root.handlers):
                if getattr(h, "_counter_app", False):
                    root.removeHandler(h)
                    h.close()
            root.setLevel(level)
    found = [w for w in password.split() + ["19491231"] if w in text]
    return AttackResult("desk.password_into_the_desk_log",
                        "wrong sign-in at DEBUG with a password holding spaces, payload and an "
                        "ID number logged", resp.status_code,
                        f"server: {short_answer(resp)}; log "
                        + (f"holds {found}" if found else "holds no part of either"),
                        blocked=not found)


def attack_device_secret_into_a_plaintext_keyring(base_url: str,
                                                  ctx: AttackContext) -> AttackResult:
    """The device secret offered to a keyring off the allow-list is not stored (finding 12)."""
    import keyring
    from keyring.backend import KeyringBackend

    from counter_app.credentials import CredentialStore, DeviceCredential

    class UnvettedKeyring(KeyringBackend):
        """A backend nobody vetted: keeps what it is given, in memory."""

        priority = -1  # type: ignore[assignment]

        def __init__(self) -> None:
            super().__init__()
            self.kept: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.kept.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.kept[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            self.kept.pop((service, username), None)

    UnvettedKeyring.__module__ = "unvetted_keyring"
    backend = UnvettedKeyring()
    before = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        saved = CredentialStore(base_url).save(DeviceCredential("dev-attack", "device-secret"))
    finally:
        keyring.set_keyring(before)
    return AttackResult("desk.device_secret_into_a_plaintext_keyring",
                        "store the device credential in an unvetted keyring backend", 0,
                        "stored" if backend.kept else f"refused (save returned {saved})",
                        blocked=not backend.kept and not saved)
