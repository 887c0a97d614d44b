"""`counter-app support-bundle`: logs (masked again), config without secrets, versions, the
self-test and the doctor report, in one zip."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from counter_app.logging_setup import id_check_digit
from counter_desk import cli
from tests.support.deploy_fixtures import MemoryKeyring
from tests.support.server_fixtures import RunningServer


def test_support_bundle(fresh_hall_server: RunningServer, memory_keyring: MemoryKeyring,
                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    monkeypatch.setenv("COUNTER_LOG_DIR", str(log_dir))
    monkeypatch.setenv("COUNTER_DATA_DIR", str(tmp_path / "data"))
    id17 = "11010519491231002"
    id_number = id17 + id_check_digit(id17)
    # An old log file written before masking existed: the bundle must still not carry the ID.
    (log_dir / "counter-app.log.1").write_text(f"citizen {id_number} phone 13812345678\n",
                                               encoding="utf-8")
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'server_url = "{fresh_hall_server.url}"\nwindow_no = 2\n'
                   'proxy = "http://hallproxy:S3cretPass@proxy.test:3128"\n', encoding="utf-8")
    out = tmp_path / "bundle" / "support.zip"
    rc = cli.main(["--config", str(cfg), "--prefs", str(tmp_path / "p.toml"), "support-bundle",
                   "--out", str(out)])
    assert rc == 0 and str(out) in capsys.readouterr().out
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        assert {"versions.json", "config/machine-config.json", "config/user-prefs.json",
                "self-test.txt", "doctor.txt", "logs/counter-app.log.1"} <= names
        versions = json.loads(zf.read("versions.json"))
        machine = zf.read("config/machine-config.json").decode()
        log_text = zf.read("logs/counter-app.log.1").decode()
        doctor_text = zf.read("doctor.txt").decode()
        everything = b"".join(zf.read(n) for n in names)
    assert versions["python"] and "requests" in versions["packages"]
    assert "S3cretPass" not in machine and "proxy.test:3128" in machine
    assert id_number not in log_text and "13812345678" not in log_text
    assert "citizen 11****" in log_text
    # The proxy in the config does not exist: the doctor report in the bundle says so.
    assert "[FAIL] server:" in doctor_text and "check server_url and proxy" in doctor_text
    assert b"S3cretPass" not in everything and id_number.encode() not in everything
