"""The packaged desk: PyInstaller builds it, and the built app passes its own self-test.

One real build per module (~30 s) into a temp folder through `build/build.py`, then the frozen
executable is run: `--version` carries the git version, `--self-test` passes (and fails when a
shipped file is removed), `--first-frame-exit` opens the real window under the test display, and
the archive matches SHA256SUMS.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support.server_fixtures import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    base = tmp_path_factory.mktemp("build")
    version = "1.2.3-4-gabcdef0"
    out = subprocess.run([sys.executable, str(ROOT / "build" / "build.py"), "--out",
                          str(base / "out"), "--work", str(base / "work"), "--version", version],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    archive, app_dir = (Path(p) for p in out.stdout.strip().splitlines()[-2:])
    return archive, app_dir, version


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(COUNTER_DATA_DIR=str(tmp / "data"), COUNTER_LOG_DIR=str(tmp / "log"),
               COUNTER_MACHINE_CONFIG=str(tmp / "machine.toml"),
               COUNTER_USER_CONFIG=str(tmp / "prefs.toml"))
    # The machine config must not pick a pad port another test holds.
    (tmp / "machine.toml").write_text(
        f"pad_listen_host = \"127.0.0.1\"\npad_listen_port = {free_port()}\n", encoding="utf-8")
    return env


def _exe(app_dir: Path) -> Path:
    return app_dir / ("counter-app.exe" if sys.platform == "win32" else "counter-app")


def test_archive_and_checksums(built: tuple[Path, Path, str]) -> None:
    archive, app_dir, version = built
    assert archive.name == f"counter-app-{version}-linux-{os.uname().machine.lower()}.tar.gz"
    sums = (archive.parent / "SHA256SUMS").read_text().splitlines()
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert f"{digest}  {archive.name}" in sums
    with tarfile.open(archive) as tf:
        names = tf.getnames()
    assert "counter-app/counter-app" in names
    assert any(n.endswith("ui/locale/zh_CN/LC_MESSAGES/counter.mo") for n in names)
    assert not any(n.endswith(".po") for n in names)  # sources stay out
    assert not any("/hall_server/" in n for n in names)  # the reference server is not shipped


def test_version_is_stamped(built: tuple[Path, Path, str], tmp_path: Path) -> None:
    _archive, app_dir, version = built
    r = subprocess.run([str(_exe(app_dir)), "--version"], capture_output=True, text=True,
                       env=_env(tmp_path), timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"counter-app {version}"


@pytest.mark.gui
def test_built_app_self_test_passes(built: tuple[Path, Path, str], tmp_path: Path) -> None:
    _archive, app_dir, _v = built
    r = subprocess.run([str(_exe(app_dir)), "--self-test"], capture_output=True, text=True,
                       env=_env(tmp_path), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "(frozen," in r.stdout
    for name in ("customtkinter themes", "customtkinter fonts", "desk theme", "translations zh",
                 "translations en", "sqlite", "CA bundle (certifi)"):
        assert f"[ok] {name}:" in r.stdout, name
    assert "journal wal, synchronous 2" in r.stdout


def test_self_test_fails_when_catalogs_are_missing(built: tuple[Path, Path, str],
                                                   tmp_path: Path) -> None:
    _archive, app_dir, _v = built
    broken = tmp_path / "broken"
    shutil.copytree(app_dir, broken, symlinks=True)
    shutil.rmtree(broken / "_internal" / "ui" / "locale")
    r = subprocess.run([str(_exe(broken)), "--self-test"], capture_output=True, text=True,
                       env=_env(tmp_path), timeout=120)
    assert r.returncode == 1
    assert "[FAIL] translations zh:" in r.stdout
    assert "Reinstall the application" in r.stdout


@pytest.mark.gui
def test_built_app_opens_its_window(built: tuple[Path, Path, str], tmp_path: Path) -> None:
    assert os.environ.get("DISPLAY"), "pytest-xvfb provides a display"
    _archive, app_dir, _v = built
    r = subprocess.run([str(_exe(app_dir)), "--first-frame-exit"], capture_output=True,
                       text=True, env=_env(tmp_path), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("first-frame ")]
    assert line and float(line[0].split()[1]) > 0
