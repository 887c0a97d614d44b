"""Finding 11: the desk refuses a plain-http server address to another machine.

The hall LAN is untrusted: on `http://` the staff password and the device secret cross it in
clear. Proof against the real server: a recording HTTP proxy on loopback forwards to it, and the
machine config names the server `http://hall.test:<port>` (not loopback) with that proxy. Refused
by default, nothing carrying the password ever reaches the wire; with IT's explicit override
`allow_insecure_http = true` the same sign-in goes through and the proxy sees the password in
clear, which is what the refusal prevents (and shows the test can fail). Loopback http (the demo)
keeps working; the default address is https.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from counter_app.config import InsecureServerUrlError, Settings, load_settings
from counter_app.errors import CounterError
from counter_desk.wiring import build_core
from tests.security.attack_base import RecordingProxy
from tests.support.server_fixtures import DEMO_PASSWORD, RunningServer


@pytest.fixture
def proxy(fresh_hall_server: RunningServer) -> Iterator[RecordingProxy]:
    p = RecordingProxy(fresh_hall_server.url)
    yield p
    p.close()


def _config(tmp: Path, proxy: RecordingProxy, port: int, extra: str = "") -> Path:
    cfg = tmp / "config.toml"
    cfg.write_text(f'server_url = "http://hall.test:{port}"\nproxy = "{proxy.url}"\n'
                   f"window_no = 1\n{extra}", encoding="utf-8")
    return cfg


def _sign_in(tmp: Path, cfg: Path) -> None:
    loaded = load_settings(cfg, tmp / "prefs.toml")
    s = loaded.settings
    core = build_core(Settings(**{**s.__dict__, "data_dir": tmp / "data", "log_dir": tmp / "log"}),
                      start_updates=False)
    try:
        core.session.sign_in("1001", DEMO_PASSWORD)
    finally:
        core.close()


def test_plain_http_to_another_machine_never_carries_the_password(
        proxy: RecordingProxy, fresh_hall_server: RunningServer, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    port = int(fresh_hall_server.url.rsplit(":", 1)[1])
    cfg = _config(tmp_path, proxy, port)
    loaded = load_settings(cfg, tmp_path / "prefs.toml")
    assert loaded.refused_server_url == f"http://hall.test:{port}"
    assert loaded.settings.server_url.startswith("https://")
    assert any("allow_insecure_http" in w and "https://" in w for w in loaded.warnings)
    with pytest.raises(CounterError):
        _sign_in(tmp_path, cfg)
    assert not [s for s in proxy.seen if DEMO_PASSWORD.encode() in s[2]]
    assert not [s for s in proxy.seen if s[0] != "CONNECT"]  # no plain request at all

    # IT's override lets the same sign-in through, in clear, and it is logged.
    cfg = _config(tmp_path, proxy, port, "allow_insecure_http = true\n")
    with caplog.at_level(logging.WARNING, logger="counter_app.config"):
        _sign_in(tmp_path, cfg)
    assert any(DEMO_PASSWORD.encode() in body for _m, _p, body in proxy.seen)
    assert "allow_insecure_http = true" in caplog.text and "unencrypted" in caplog.text


def test_settings_cannot_be_built_with_plain_http_to_another_host() -> None:
    for url in ("http://hall.test:8123", "http://10.0.0.5", "HTTP://192.168.1.2:80"):
        with pytest.raises(InsecureServerUrlError) as err:
            Settings(server_url=url)
        assert "https://" in err.value.message_en and "https://" in err.value.message_zh
    assert Settings(server_url="http://hall.test", allow_insecure_http=True)
    for url in ("http://127.0.0.1:8123", "http://localhost:1", "http://[::1]:2", "http://127.9.9.9"):
        assert Settings(server_url=url).server_url == url


def test_the_default_address_is_https_and_the_override_is_machine_only(tmp_path: Path) -> None:
    assert Settings().server_url.startswith("https://")
    prefs = tmp_path / "prefs.toml"
    prefs.write_text("allow_insecure_http = true\n", encoding="utf-8")
    cfg = tmp_path / "config.toml"
    cfg.write_text('server_url = "http://10.0.0.5:8123"\n', encoding="utf-8")
    loaded = load_settings(cfg, prefs)
    assert loaded.refused_server_url == "http://10.0.0.5:8123"
    assert not loaded.settings.allow_insecure_http


def test_setup_refuses_plain_http_before_spending_the_code(tmp_path: Path) -> None:
    from counter_desk import cli

    rc = cli.main(["setup", "--no-input", "--config-path", str(tmp_path / "c.toml"),
                   "--server-url", "http://hall.test:8123", "--window", "2",
                   "--enrollment-code", "AAAAAA-BBBBBB-CCCCCC"])
    assert rc == 2 and not (tmp_path / "c.toml").exists()
