"""Pure logic of the core with fakes: event bus, config files, PII masking, keyring detection."""

from __future__ import annotations

import logging
import random
import threading
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

from counter_app import config as cfg
from counter_app.credentials import CredentialStore, DeviceCredential, backend_status
from counter_app.errors import CounterError, DeskBusyError, OfflineError
from counter_app.events import DeskChanged, EventBus, Locked, QueueChanged, SignedOut
from counter_app.logging_setup import (
    PIIFilter,
    id_check_digit,
    is_valid_id_number,
    mask_text,
    setup_logging,
)

# -- event bus -----------------------------------------------------------------------------


def test_bus_delivers_by_type_and_to_catch_all() -> None:
    bus = EventBus()
    got: list[object] = []
    every: list[object] = []
    bus.subscribe(Locked, got.append)
    bus.subscribe(None, every.append)
    bus.publish(Locked())
    bus.publish(SignedOut())
    assert got == [Locked()]
    assert every == [Locked(), SignedOut()]


def test_bus_unsubscribe_and_failing_handler_does_not_stop_others(
        caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    got: list[object] = []

    def bad(_e: object) -> None:
        raise RuntimeError("boom")

    bus.subscribe(Locked, bad)
    unsub = bus.subscribe(Locked, got.append)
    bus.publish(Locked())
    assert got == [Locked()]
    assert "boom" in caplog.text
    unsub()
    unsub()  # twice is harmless
    bus.publish(Locked())
    assert got == [Locked()]


def test_bus_from_many_threads_loses_nothing_and_handler_may_publish() -> None:
    bus = EventBus()
    count = 0
    lock = threading.Lock()

    def h(_e: object) -> None:
        nonlocal count
        with lock:
            count += 1

    bus.subscribe(DeskChanged, h)
    # A handler that publishes again must not deadlock the bus.
    bus.subscribe(Locked, lambda _e: bus.publish(DeskChanged("idle", None, None)))
    threads = [threading.Thread(target=lambda: [bus.publish(Locked()) for _ in range(500)])
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert count == 4000


def test_events_are_frozen() -> None:
    ev = DeskChanged("idle", None, None)
    with pytest.raises(AttributeError):
        ev.state = "x"  # type: ignore[misc]
    assert QueueChanged.__dataclass_params__.frozen  # type: ignore[attr-defined]


# -- errors --------------------------------------------------------------------------------


def test_error_messages_in_both_languages() -> None:
    e = OfflineError()
    assert "服务器无法连接" in e.message("zh")
    assert "cannot be reached" in e.message("en")
    assert e.retryable
    assert isinstance(DeskBusyError(), CounterError)


# -- config --------------------------------------------------------------------------------


def test_defaults_when_no_files(tmp_path: Path) -> None:
    loaded = cfg.load_settings(tmp_path / "m.toml", tmp_path / "u.toml")
    assert loaded.warnings == []
    assert loaded.settings.window_no == 1 and loaded.settings.language == "zh"


def test_machine_and_user_files_are_read(tmp_path: Path) -> None:
    m = tmp_path / "m.toml"
    m.write_text('server_url = "https://hall.example:8443"\nwindow_no = 7\n'
                 'ca_bundle = "/etc/ca.pem"\nproxy = "http://proxy:3128"\n', encoding="utf-8")
    u = tmp_path / "u.toml"
    u.write_text('language = "en"\nscaling = 1.5\nalert_sound = false\n', encoding="utf-8")
    s = cfg.load_settings(m, u).settings
    assert (s.server_url, s.window_no, s.ca_bundle) == ("https://hall.example:8443", 7,
                                                         "/etc/ca.pem")
    assert s.proxies == {"http": "http://proxy:3128", "https": "http://proxy:3128"}
    assert (s.language, s.scaling, s.alert_sound) == ("en", 1.5, False)


def test_corrupt_file_is_renamed_defaults_used_and_user_warned(tmp_path: Path) -> None:
    m = tmp_path / "config.toml"
    m.write_text("window_no = = 3\n[[[", encoding="utf-8")
    loaded = cfg.load_settings(m, tmp_path / "u.toml")
    assert not m.exists()
    corrupt = tmp_path / "config.toml.corrupt"
    assert corrupt.read_text(encoding="utf-8").startswith("window_no = = 3")
    assert loaded.settings.window_no == 1
    assert len(loaded.warnings) == 1
    w = loaded.warnings[0]
    assert isinstance(w, cfg.ConfigWarning)
    assert "config.toml.corrupt" in w.message("zh") and "默认" in w.message("zh")
    assert "defaults" in w.message("en")


def test_undecodable_bytes_are_corrupt_too(tmp_path: Path) -> None:
    u = tmp_path / "prefs.toml"
    u.write_bytes(b"language = \"\xff\xfe\"\n")
    loaded = cfg.load_settings(tmp_path / "m.toml", u)
    assert (tmp_path / "prefs.toml.corrupt").exists()
    assert loaded.settings.language == "zh" and loaded.warnings


def test_bad_values_fall_back_per_field_with_a_warning(tmp_path: Path) -> None:
    m = tmp_path / "m.toml"
    m.write_text('window_no = "three"\nserver_url = "ftp://x"\nidle_lock_minutes = 5\n',
                 encoding="utf-8")
    u = tmp_path / "u.toml"
    u.write_text('language = "fr"\nserver_url = "http://evil"\n', encoding="utf-8")
    loaded = cfg.load_settings(m, u)
    s = loaded.settings
    assert s.window_no == 1 and s.server_url == cfg.Settings().server_url
    assert s.idle_lock_minutes == 5 and s.language == "zh"
    assert len(loaded.warnings) == 4  # window_no, server_url, language, user may not set server
    assert m.exists() and u.exists()  # a bad value is not a corrupt file


def test_env_overrides_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTER_MACHINE_CONFIG", str(tmp_path / "mc.toml"))
    monkeypatch.setenv("COUNTER_USER_CONFIG", str(tmp_path / "uc.toml"))
    monkeypatch.setenv("COUNTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COUNTER_LOG_DIR", str(tmp_path / "logs"))
    (tmp_path / "mc.toml").write_text("window_no = 4\n", encoding="utf-8")
    assert cfg.machine_config_path() == tmp_path / "mc.toml"
    assert cfg.user_config_path() == tmp_path / "uc.toml"
    s = cfg.load_settings().settings
    assert s.window_no == 4 and s.data_dir == tmp_path / "data" and s.log_dir == tmp_path / "logs"


def test_save_user_prefs_round_trips_and_refuses_machine_keys(tmp_path: Path) -> None:
    u = tmp_path / "sub" / "prefs.toml"
    cfg.save_user_prefs(u, language="en", scaling=1.25)
    cfg.save_user_prefs(u, appearance="dark", alert_flash=False)
    s = cfg.load_settings(tmp_path / "none.toml", u).settings
    assert (s.language, s.scaling, s.appearance, s.alert_flash) == ("en", 1.25, "dark", False)
    with pytest.raises(ValueError):
        cfg.save_user_prefs(u, server_url="http://x")
    with pytest.raises(ValueError):
        cfg.save_user_prefs(u, language="fr")


def test_toml_writer_escapes_strings() -> None:
    import tomllib

    text = cfg.dumps_flat_toml({"a": 'q"uo\\te\n\t中文', "b": True, "c": 3, "d": 0.5})
    assert tomllib.loads(text) == {"a": 'q"uo\\te\n\t中文', "b": True, "c": 3, "d": 0.5}


# -- PII masking ---------------------------------------------------------------------------


def _random_id(rng: random.Random) -> str:
    region = rng.choice(["110105", "370102", "440305", "510104", "370215"])
    birth = f"{rng.randint(1930, 2020)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    first17 = region + birth + f"{rng.randint(0, 999):03d}"
    return first17 + id_check_digit(first17)


def test_check_digit_known_example() -> None:
    # The standard's published example (GB 11643-1999).
    assert is_valid_id_number("11010519491231002X")
    assert not is_valid_id_number("110105194912310021")


def test_10000_valid_ids_and_phones_in_log_records_are_all_masked(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    log_path = setup_logging(tmp_path / "logs")
    logger = logging.getLogger("test.pii")
    ids = []
    phones = []
    templates = [
        "citizen id %s phone %s",
        "身份证号%s，手机%s。",
        "payload={'id_no': '%s', 'mobile': '%s'}",
    ]
    for i in range(10_000):
        ident = _random_id(rng)
        assert is_valid_id_number(ident)
        phone = f"1{rng.choice('3456789')}{rng.randint(0, 999_999_999):09d}"
        ids.append(ident)
        phones.append(phone)
        tpl = templates[i % 3]
        if i % 2:
            logger.warning(tpl, ident, phone)  # in the args
        else:
            logger.warning(tpl % (ident, phone))  # in the message itself
    try:
        raise ValueError(f"bad id {ids[0]}")
    except ValueError:
        logger.exception("failure for %s", phones[0])
    for h in logging.getLogger().handlers:
        h.flush()
    text = log_path.read_text(encoding="utf-8")
    assert text.count("citizen id") + text.count("身份证号") + text.count("payload=") >= 10_000
    unmasked = [x for x in ids if x in text] + [p for p in phones if p in text]
    assert unmasked == []
    assert "ValueError: bad id 11" in text  # the traceback is kept, masked


def test_masks_any_18_digits_even_with_a_wrong_check_digit_and_secrets() -> None:
    assert "110105194912310021" not in mask_text("id=110105194912310021")
    assert "hunter2" not in mask_text('login {"password": "hunter2"}')
    assert "eyJabc.def" not in mask_text("Authorization: Bearer eyJabc.def")
    # Longer digit runs (ids of other things) are left alone.
    assert mask_text("order 12345678901234567890") == "order 12345678901234567890"


def test_filter_masks_record_args() -> None:
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "call %s", ("13912345678",), None)
    PIIFilter().filter(rec)
    assert "13912345678" not in rec.getMessage()


# -- keyring backend detection -------------------------------------------------------------


class MemoryKeyring(KeyringBackend):
    """In-memory test backend; priority -1 so it never becomes anyone's default by itself."""

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


class PlaintextKeyring(MemoryKeyring):
    """Stands in for keyrings.alt's plaintext file backend (detected by its name)."""


@pytest.fixture
def memory_keyring():  # type: ignore[no-untyped-def]
    old = keyring.get_keyring()
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    yield kr
    keyring.set_keyring(old)


def test_credential_round_trip_in_a_safe_backend(memory_keyring: MemoryKeyring) -> None:
    store = CredentialStore("http://127.0.0.1:9")
    assert store.load() is None
    assert store.save(DeviceCredential("dev-1", "s3cret"))
    assert store.load() == DeviceCredential("dev-1", "s3cret")
    assert store.warning is None
    store.clear()
    assert store.load() is None


@pytest.mark.parametrize("factory", ["fail", "null", "plaintext"])
def test_unsafe_backends_are_never_written(factory: str) -> None:
    import keyring.backends.fail
    import keyring.backends.null

    backend: KeyringBackend = {
        "fail": keyring.backends.fail.Keyring,
        "null": keyring.backends.null.Keyring,
        "plaintext": PlaintextKeyring,
    }[factory]()
    old = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        assert not backend_status().safe
        store = CredentialStore("http://127.0.0.1:9")
        assert store.save(DeviceCredential("dev", "secret")) is False
        assert store.warning is not None and "密钥环" in store.warning[0]
        if isinstance(backend, PlaintextKeyring):
            assert backend.store == {}  # nothing persisted
        assert store.load() is None
    finally:
        keyring.set_keyring(old)


def test_memory_backend_counts_as_safe(memory_keyring: MemoryKeyring) -> None:
    st = backend_status()
    assert st.safe and st.name.endswith("MemoryKeyring")
