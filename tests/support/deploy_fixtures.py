"""Fixtures for the packaging/IT tests: an in-memory keyring backend.

`MemoryKeyring` is a real `KeyringBackend` kept in memory. Its priority is -1: any subclass
registers itself with keyring, and a positive priority would make it the default everywhere
(see TOOLCHAIN.md). The `memory_keyring` fixture installs it with `keyring.set_keyring` and puts
the previous backend back afterwards.

The desk stores secrets only in keyrings on its allow-list (counter_app.credentials
.ALLOWED_BACKENDS); `_test_keyrings_allowed` adds the suite's in-memory stand-ins for the OS
keyring to it, by name, for the whole run (a `PlaintextKeyring` stand-in stays refused).
"""

from __future__ import annotations

from collections.abc import Iterator

import keyring
import pytest
from keyring.backend import KeyringBackend

TEST_KEYRINGS = frozenset({
    "tests.support.deploy_fixtures.MemoryKeyring",
    "tests.test_core_pure.MemoryKeyring",
    "tests.documents_helpers.MemoryKeyring",
})


@pytest.fixture(autouse=True, scope="session")
def _test_keyrings_allowed() -> Iterator[None]:
    from counter_app import credentials

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(credentials, "ALLOWED_BACKENDS", credentials.ALLOWED_BACKENDS | TEST_KEYRINGS)
        yield


class MemoryKeyring(KeyringBackend):
    """A real KeyringBackend kept in memory; priority -1 so it never becomes anyone's default."""

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


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    before = keyring.get_keyring()
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    yield kr
    keyring.set_keyring(before)
