"""Finding 12 (desk part): the keyring check is an allow-list, not a deny-list.

A backend nobody vetted (here a real `KeyringBackend` that announces itself as a vendor's, the
way a third-party plugin would appear) was accepted by the old deny-list, which only knew `fail`,
`null`, `keyrings.alt` and names with "plaintext": the device secret would have gone wherever that
backend puts it. Now only the OS keyrings on `ALLOWED_BACKENDS` hold it; a chain is allowed only
if every member is.
"""

from __future__ import annotations

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import chainer

from counter_app import credentials
from counter_app.credentials import CredentialStore, DeviceCredential, backend_status


class VendorKeyring(KeyringBackend):
    """Stores in a dict; stands for an unknown third-party backend (module renamed below)."""

    priority = -1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


VendorKeyring.__module__ = "acme_keyring.backends"


def test_an_unknown_backend_is_refused_and_nothing_is_stored() -> None:
    kr = VendorKeyring()
    before = keyring.get_keyring()
    keyring.set_keyring(kr)
    try:
        st = backend_status()
        assert not st.safe and "acme_keyring.backends.VendorKeyring" in st.reason
        assert "Secret Service" in st.reason and "Windows Credential Manager" in st.reason
        store = CredentialStore("https://hall.test")
        assert store.save(DeviceCredential("dev", "s3cret")) is False
        assert kr.store == {} and store.warning is not None
    finally:
        keyring.set_keyring(before)


@pytest.mark.parametrize("name", sorted(credentials.ALLOWED_BACKENDS))
def test_the_os_keyrings_are_allowed(name: str) -> None:
    module, cls = name.rsplit(".", 1)
    fake = type(cls, (VendorKeyring,), {"__module__": module})()
    assert backend_status(fake).safe


def test_a_chain_is_only_as_safe_as_its_weakest_member(monkeypatch: pytest.MonkeyPatch) -> None:
    good = type("Keyring", (VendorKeyring,), {"__module__": "keyring.backends.SecretService"})()
    chain = chainer.ChainerBackend()
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [good, VendorKeyring()])
    st = backend_status(chain)
    assert not st.safe and "acme_keyring" in st.reason
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [good])
    assert backend_status(chain).safe
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [])
    assert not backend_status(chain).safe


def test_the_real_secret_service_of_the_test_session_is_allowed() -> None:
    # scripts/run.sh starts gnome-keyring on a private D-Bus session for the test run.
    from keyring.backends import SecretService

    if not SecretService.Keyring.viable:
        pytest.skip("no Secret Service on this session (run through scripts/run.sh test)")
    assert backend_status(SecretService.Keyring()).safe  # type: ignore[no-untyped-call]
