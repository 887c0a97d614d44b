"""`counter-app setup` against the real reference server: config written, PC enrolled, the
device credential in the keyring; a second PC at the same window refused clearly (and `--replace`
takes over); an unsafe keyring refuses before the one-time code is spent; prompts on a terminal.
"""

from __future__ import annotations

import argparse
import io
import tomllib
from pathlib import Path
from typing import Any

import keyring
import pytest
import trustme
from keyring.backends import fail

from counter_app import provisioning
from counter_app.config import load_settings
from counter_app.credentials import CredentialStore
from counter_desk import cli
from tests.support.deploy_fixtures import MemoryKeyring
from tests.support.server_fixtures import RunningServer, signed_in


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


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_unattended_setup_writes_config_and_enrols(fresh_hall_server: RunningServer,
                                                    memory_keyring: MemoryKeyring,
                                                    tmp_path: Path) -> None:
    url = fresh_hall_server.url
    cfg = tmp_path / "etc" / "config.toml"
    code = enrollment_code(url, 3)
    rc = cli.main(["--config", str(cfg), "setup", "--server-url", url, "--hall", "GXQ",
                   "--window", "3", "--pad-transport", "none", "--scanner-source", "folder",
                   "--enrollment-code", code, "--no-input"])
    assert rc == 0
    loaded = load_settings(cfg, tmp_path / "no-prefs.toml")
    assert loaded.warnings == []
    s = loaded.settings
    assert (s.server_url, s.hall_code, s.window_no, s.pad_transport, s.scanner_source) == (
        url, "GXQ", 3, "none", "folder")
    cred = CredentialStore.for_settings(s).load()
    assert cred is not None and cred.device_id
    text = cfg.read_text(encoding="utf-8")
    assert cred.device_secret not in text and code not in text  # secrets only in the keyring
    # The code is single use: a second setup with it is refused by the server.
    with pytest.raises(provisioning.SetupError) as err:
        provisioning.run_setup(args(server_url=url, window=4, enrollment_code=code,
                                    config_path=tmp_path / "other.toml"))
    assert err.value.exit_code == provisioning.EXIT_REFUSED


def test_second_pc_same_window_refused_then_replace(fresh_hall_server: RunningServer,
                                                    memory_keyring: MemoryKeyring,
                                                    tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    url = fresh_hall_server.url
    first = provisioning.run_setup(args(server_url=url, window=5,
                                        enrollment_code=enrollment_code(url, 5),
                                        config_path=tmp_path / "pc1.toml"))
    assert first.enrolled
    pc2 = tmp_path / "pc2.toml"
    rc = cli.main(["setup", "--config-path", str(pc2), "--server-url", url, "--window", "5",
                   "--enrollment-code", enrollment_code(url, 5), "--no-input"])
    err = capsys.readouterr().err
    assert rc == provisioning.EXIT_REFUSED
    assert "another PC is already enrolled at window 5" in err and "--replace" in err
    assert "窗口 5 已登记了另一台电脑" in err
    assert not pc2.exists()  # nothing half-done
    second = provisioning.run_setup(args(server_url=url, window=5, replace=True,
                                         enrollment_code=enrollment_code(url, 5),
                                         config_path=pc2))
    assert second.enrolled and second.device_id != first.device_id
    stored = CredentialStore.for_settings(load_settings(pc2, tmp_path / "np.toml").settings).load()
    assert stored is not None and stored.device_id == second.device_id


def test_unsafe_keyring_refuses_before_spending_the_code(fresh_hall_server: RunningServer,
                                                         tmp_path: Path) -> None:
    url = fresh_hall_server.url
    code = enrollment_code(url, 6)
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        with pytest.raises(provisioning.SetupError) as err:
            provisioning.run_setup(args(server_url=url, window=6, enrollment_code=code,
                                        config_path=tmp_path / "c.toml"))
        assert err.value.exit_code == provisioning.EXIT_KEYRING
        assert "not safe" in err.value.message_en and "不安全" in err.value.message_zh
        assert not (tmp_path / "c.toml").exists()
    finally:
        keyring.set_keyring(before)
    # The same code still works once a safe keyring is there.
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    try:
        result = provisioning.run_setup(args(server_url=url, window=6, enrollment_code=code,
                                             config_path=tmp_path / "c.toml"))
        assert result.enrolled and kr.store
    finally:
        keyring.set_keyring(before)


def test_interactive_prompts_fill_what_flags_do_not(fresh_hall_server: RunningServer,
                                                    memory_keyring: MemoryKeyring,
                                                    tmp_path: Path) -> None:
    url = fresh_hall_server.url
    code = enrollment_code(url, 7)
    # Prompts in order: server, hall, window, CA, proxy, pad, scanner, code (--hall given).
    answers = Tty("\n".join([url, "7", "", "", "second_screen", "none", code]) + "\n")
    out = io.StringIO()
    a = args(hall="GXQ", no_input=False, config_path=tmp_path / "c.toml")
    result = provisioning.run_setup(a, inp=answers, out=out)
    assert result.enrolled
    assert "窗口号 / Window number" in out.getvalue()
    with (tmp_path / "c.toml").open("rb") as fh:
        written = tomllib.load(fh)
    assert written.pop("server_id")  # the hall identity the credential is keyed by
    assert written == {"server_url": url, "hall_code": "GXQ", "window_no": 7,
                       "pad_transport": "second_screen", "scanner_source": "none"}


def test_bad_input_is_refused_with_both_languages(tmp_path: Path, memory_keyring: MemoryKeyring
                                                  ) -> None:
    with pytest.raises(provisioning.SetupError) as err:
        provisioning.run_setup(args(hall="GXQ", config_path=tmp_path / "c.toml"))
    assert err.value.exit_code == provisioning.EXIT_BAD_INPUT
    assert "server_url" in err.value.message_en and "缺少必填项" in err.value.message_zh
    with pytest.raises(provisioning.SetupError) as err:
        provisioning.run_setup(args(server_url="ftp://x", window=99999,
                                    config_path=tmp_path / "c.toml"))
    assert "server_url" in err.value.message_en and "window_no" in err.value.message_en
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate")
    with pytest.raises(provisioning.SetupError) as err:
        provisioning.run_setup(args(server_url="https://h", window=1, ca_bundle=str(not_pem),
                                    config_path=tmp_path / "c.toml"))
    assert "not a PEM certificate" in err.value.message_en
    assert not (tmp_path / "c.toml").exists()


def test_setup_with_a_ca_bundle_keeps_it(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    ca = trustme.CA()
    pem = tmp_path / "intranet-ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    result = provisioning.run_setup(args(server_url="https://hall.test:8443", window=2,
                                         ca_bundle=str(pem), proxy="http://proxy.test:3128",
                                         config_path=tmp_path / "c.toml"))
    assert not result.enrolled
    s = load_settings(tmp_path / "c.toml", tmp_path / "p.toml").settings
    assert s.ca_bundle == str(pem) and s.proxies == {"http": "http://proxy.test:3128",
                                                     "https": "http://proxy.test:3128"}
