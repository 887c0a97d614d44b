"""Updates that keep working (issue 13 item 4): `build/update_repo.py resign` renews the
short-lived signed metadata, and `doctor` warns 48 h before the repository's metadata expire,
read from a real tufup repository served over HTTP on loopback."""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from counter_app import doctor
from counter_app.config import load_settings
from counter_app.selftest import FAIL, OK, WARN
from counter_app.update_health import check_update_metadata

ROOT = Path(__file__).resolve().parents[1]


def update_repo(*args: str) -> str:
    r = subprocess.run([sys.executable, str(ROOT / "build" / "update_repo.py"), *args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[tuple[Path, Path, str]]:
    repo_dir, keys = tmp_path / "rel" / "repository", tmp_path / "rel" / "keystore"
    update_repo("init", "--repo", str(repo_dir), "--keys", str(keys))
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(repo_dir))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield repo_dir, keys, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def settings_for(tmp_path: Path, url: str):  # type: ignore[no-untyped-def]
    cfg = tmp_path / "machine.toml"
    cfg.write_text(f'server_url = "http://127.0.0.1:9"\nwindow_no = 1\nupdate_url = "{url}"\n'
                   f'data_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    return load_settings(cfg, tmp_path / "prefs.toml").settings


def meta(repo_dir: Path, role: str) -> tuple[int, datetime]:
    from tuf.api.metadata import Metadata

    m = Metadata.from_file(str(repo_dir / "metadata" / f"{role}.json"))
    return m.signed.version, m.signed.expires


def test_doctor_warns_48h_before_expiry_and_fails_after(repo: tuple[Path, Path, str],
                                                        tmp_path: Path) -> None:
    repo_dir, _keys, url = repo
    s = settings_for(tmp_path, url)
    # A fresh repository: timestamp.json lives 1 day, so it is inside the 48 h warning.
    [r] = check_update_metadata(s, now=time.time)
    assert r.status == WARN and "timestamp.json expires in" in r.detail, r
    assert "resign" in r.remedy_en
    _v, ts_exp = meta(repo_dir, "timestamp")
    [late] = check_update_metadata(s, now=lambda: ts_exp.timestamp() + 60)
    assert late.status == FAIL and "expired" in late.detail
    [early] = check_update_metadata(s, now=lambda: ts_exp.timestamp() - 3 * 86400)
    assert early.status == OK
    # doctor runs this check (bounded like the others).
    assert "updates" in doctor.TIMEOUTS


def test_doctor_update_check_unreachable_is_a_warning(tmp_path: Path) -> None:
    s = settings_for(tmp_path, "http://127.0.0.1:9")
    [r] = check_update_metadata(s, now=time.time)
    assert r.status == WARN and "cannot read" in r.detail


def test_resign_renews_timestamp_and_snapshot_with_valid_signatures(
        repo: tuple[Path, Path, str]) -> None:
    from tuf.api.metadata import Metadata, Root

    repo_dir, keys, _url = repo
    before = {r: meta(repo_dir, r) for r in ("timestamp", "snapshot", "targets")}
    time.sleep(1.1)
    out = update_repo("resign", "--repo", str(repo_dir), "--keys", str(keys))
    assert "timestamp: expires" in out and "snapshot: expires" in out
    after = {r: meta(repo_dir, r) for r in ("timestamp", "snapshot", "targets")}
    for role in ("timestamp", "snapshot"):
        assert after[role][0] == before[role][0] + 1
        assert after[role][1] > before[role][1]
    assert after["targets"] == before["targets"], "targets untouched"
    root = Metadata[Root].from_file(str(repo_dir / "metadata" / "root.json"))
    for role in ("timestamp", "snapshot"):
        root.verify_delegate(role, Metadata.from_file(str(repo_dir / "metadata" / f"{role}.json")))
    ts = Metadata.from_file(str(repo_dir / "metadata" / "timestamp.json"))
    assert ts.signed.snapshot_meta.version == after["snapshot"][0]
