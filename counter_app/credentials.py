"""The window PC's device credential, kept only in the OS keyring; staff tokens never leave memory.

Only keyrings known to keep secrets encrypted under the user's login are used (an allow-list,
finding 12 of issue 10): the Secret Service (gnome-keyring, KWallet 5.97+ or KeePassXC over
D-Bus, through `SecretService` or `libsecret`), KWallet itself, the Windows Credential Manager
and the macOS Keychain. Anything else (keyring's `fail` and `null` backends, `keyrings.alt`'s file
backends, a plaintext backend, a third-party backend nobody vetted, a chain holding any of those)
is refused: nothing is persisted, the caller gets a warning to show and the credential is asked
for again next time.

The credential is stored under the hall server's identity (hall code and server id from
`GET /api/v1/identity`, recorded in the machine config by `counter-app setup`), not under the
server address: moving the hall from http to https or to a new host name keeps every PC's
enrolment. A config without `server_id` (set up before identities) uses the address as before. In a frozen build (PyInstaller) backend discovery through entry points can
fail, so the OS backend is selected explicitly.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from typing import Any

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

log = logging.getLogger(__name__)

SERVICE = "counter-app"
# Windows caps a secret at 2,560 bytes: we store only the small device pair, never token bundles.
MAX_SECRET_BYTES = 2560

UNSAFE_WARNING_ZH = "系统密钥环不可用，设备凭据不会被保存，下次启动需要重新登记"
UNSAFE_WARNING_EN = (
    "No safe system keyring is available; the device credential will not be stored and must "
    "be entered again next time"
)


@dataclass(frozen=True)
class BackendStatus:
    name: str
    safe: bool
    reason: str


@dataclass(frozen=True)
class DeviceCredential:
    device_id: str
    device_secret: str


# `module.Class` of every backend allowed to hold the device secret.
ALLOWED_BACKENDS: frozenset[str] = frozenset({
    "keyring.backends.SecretService.Keyring",  # Linux: gnome-keyring, KWallet, KeePassXC
    "keyring.backends.libsecret.Keyring",  # the same Secret Service through libsecret
    "keyring.backends.kwallet.DBusKeyring",  # KDE's wallet
    "keyring.backends.kwallet.DBusKeyringKWallet4",
    "keyring.backends.Windows.WinVaultKeyring",  # Windows Credential Manager
    "keyring.backends.macOS.Keyring",  # macOS Keychain
})


def backend_name(backend: Any) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def _unsafe_reason(backend: Any) -> str | None:
    """Why this backend must not hold secrets, or None if it is on the allow-list."""
    cls = type(backend)
    module = cls.__module__
    # The known-bad get a precise reason; everything else must be on the allow-list.
    if module == "keyring.backends.fail":
        return "no keyring backend (fail)"
    if module == "keyring.backends.null":
        return "null backend discards secrets"
    if module.startswith("keyrings.alt"):
        return f"{cls.__name__} from keyrings.alt stores secrets in a file"
    if "plaintext" in cls.__name__.lower():
        return f"{cls.__name__} stores secrets in plain text"
    if module == "keyring.backends.chainer":
        inner = list(getattr(backend, "backends", []))
        if not inner:
            return "no keyring backend (empty chain)"
        # A chain may read from and write to any of its members: every one must be allowed.
        for member in inner:
            reason = _unsafe_reason(member)
            if reason is not None:
                return f"the keyring chain holds {backend_name(member)}: {reason}"
        return None
    if backend_name(backend) not in ALLOWED_BACKENDS:
        return (f"{backend_name(backend)} is not a known safe keyring (allowed: Secret Service, "
                "KWallet, Windows Credential Manager, macOS Keychain)")
    return None


def backend_status(backend: KeyringBackend | None = None) -> BackendStatus:
    """Describe the active (or given) keyring backend and whether secrets may be stored in it."""
    b = backend if backend is not None else keyring.get_keyring()
    name = backend_name(b)
    reason = _unsafe_reason(b)
    return BackendStatus(name=name, safe=reason is None, reason=reason or "ok")


def select_os_backend_if_frozen() -> None:
    """In a frozen build, pick the platform's keyring explicitly (entry points may be missing)."""
    if not getattr(sys, "frozen", False):
        return
    try:
        backend: KeyringBackend
        if sys.platform == "win32":
            from keyring.backends import Windows

            backend = Windows.WinVaultKeyring()
        elif sys.platform == "darwin":
            from keyring.backends import macOS

            backend = macOS.Keyring()
        else:
            from keyring.backends import SecretService

            backend = SecretService.Keyring()  # type: ignore[no-untyped-call]
        if not type(backend).viable:
            # e.g. no D-Bus session or no Secret Service: say so (the `fail` backend is refused
            # by backend_status) rather than pretend a backend that cannot store anything works.
            from keyring.backends import fail

            log.warning("OS keyring %s is not available in this session", type(backend).__name__)
            backend = fail.Keyring()  # type: ignore[no-untyped-call]
        keyring.set_keyring(backend)
    except Exception:
        log.exception("could not select the OS keyring backend in the frozen build")


class CredentialStore:
    """Reads and writes the device credential for one server in the OS keyring.

    Every method may block on the keyring daemon: call from a worker thread.
    """

    def __init__(self, server_url: str, *, service: str = SERVICE, hall_code: str = "",
                 server_id: str = "") -> None:
        self._service = service
        legacy = f"device@{server_url.rstrip('/')}"
        if server_id:
            self._username = f"device@{hall_code}/{server_id}"
            self._fallback: str | None = legacy  # enrolled before identities: still found
        else:
            self._username, self._fallback = legacy, None
        self.warning: tuple[str, str] | None = None

    @classmethod
    def for_settings(cls, settings: Any) -> CredentialStore:
        """The store for the hall of a counter_app.config.Settings (keyed by its identity)."""
        return cls(str(settings.server_url), hall_code=str(settings.hall_code),
                   server_id=str(getattr(settings, "server_id", "") or ""))

    @property
    def key(self) -> str:
        """The keyring user name the credential is stored under."""
        return self._username

    def probe(self) -> None:
        """Write, read back and delete a probe entry: raises KeyringError when the keyring is
        locked, unreachable or loses what it is given (setup checks this before spending an
        enrollment code). May block on an unlock prompt: call with a deadline."""
        user = "probe@counter-app-setup"
        keyring.set_password(self._service, user, "probe")
        try:
            if keyring.get_password(self._service, user) != "probe":
                raise keyring.errors.KeyringError("the keyring did not keep a test entry")
        finally:
            try:
                keyring.delete_password(self._service, user)
            except keyring.errors.PasswordDeleteError:
                pass

    def status(self) -> BackendStatus:
        return backend_status()

    def load(self) -> DeviceCredential | None:
        """The stored credential, or None (nothing stored, unsafe backend, or unreadable)."""
        try:
            return self.load_or_raise()
        except keyring.errors.KeyringError as exc:
            log.warning("keyring read failed: %s", type(exc).__name__)
            return None

    def load_or_raise(self) -> DeviceCredential | None:
        """Like `load`, but a keyring failure (locked, no daemon) raises `KeyringError`.

        `doctor` needs the difference between "nothing stored" and "the keyring is locked".
        """
        st = self.status()
        if not st.safe:
            self.warning = (UNSAFE_WARNING_ZH, UNSAFE_WARNING_EN)
            log.warning("keyring backend %s refused: %s", st.name, st.reason)
            return None
        raw = keyring.get_password(self._service, self._username)
        if not raw and self._fallback is not None:
            raw = keyring.get_password(self._service, self._fallback)
        if not raw:
            return None
        try:
            obj = json.loads(raw)
            return DeviceCredential(str(obj["device_id"]), str(obj["device_secret"]))
        except (ValueError, KeyError, TypeError):
            log.warning("stored device credential unreadable; ignoring it")
            return None

    def save(self, cred: DeviceCredential) -> bool:
        """Store the credential; False (and `.warning` set) if it was not persisted."""
        st = self.status()
        if not st.safe:
            self.warning = (UNSAFE_WARNING_ZH, UNSAFE_WARNING_EN)
            log.warning("not storing the device credential: %s (%s)", st.reason, st.name)
            return False
        raw = json.dumps({"device_id": cred.device_id, "device_secret": cred.device_secret})
        if len(raw.encode()) > MAX_SECRET_BYTES:
            raise ValueError("device credential too large for the OS keyring")
        try:
            keyring.set_password(self._service, self._username, raw)
        except keyring.errors.KeyringError as exc:
            self.warning = (UNSAFE_WARNING_ZH, UNSAFE_WARNING_EN)
            log.warning("keyring write failed: %s", type(exc).__name__)
            return False
        self.warning = None
        return True

    def clear(self) -> None:
        try:
            keyring.delete_password(self._service, self._username)
        except keyring.errors.PasswordDeleteError:
            pass
        except keyring.errors.KeyringError as exc:
            log.warning("keyring delete failed: %s", type(exc).__name__)
