"""The packaged desk: PyInstaller builds it, and the built app passes its own self-test.

One real build per test session (tests/support/frozen_fixtures.py, shared with the clerk suite
in tests/test_frozen_clerk.py) through `build/build.py`, then the frozen executable is run:
`--version` carries the git version, `--self-test` passes (and fails when a shipped file is
removed), `--first-frame-exit` opens the real window under the test display, the archive
matches SHA256SUMS, every module of our packages is in it, and the bundle stays small. A second,
deliberately broken build (one module excluded from the spec's reach) must fail.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.frozen_fixtures import FrozenBuild, run_build
from tests.support.server_fixtures import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def built(frozen_build: FrozenBuild) -> tuple[Path, Path, str]:
    return frozen_build.archive, frozen_build.app_dir, frozen_build.version


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
                 "translations en", "sqlite", "CA bundle (certifi)",
                 # the services the frozen desk once lacked (string imports, issue 12)
                 "catalog", "search", "outbox", "documents store", "documents upload",
                 "documents service"):
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


def _build_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_tool", ROOT / "build" / "build.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_module_of_our_packages_is_in_the_bundle(frozen_build: FrozenBuild) -> None:
    tool = _build_tool()
    shipped = tool.bundled_modules(frozen_build.app_dir)
    source = tool.source_modules()
    # The modules that were left out while the core loaded them by string (issue 12).
    for name in ("counter_app.catalog", "counter_app.outbox", "counter_app.localdb",
                 "counter_app.search", "counter_app.documents.service",
                 "counter_app.documents.store", "counter_app.documents.upload",
                 "ui.app", "api_client.client", "tufup.repo"):
        assert name in shipped, name
    assert source and source <= shipped, sorted(source - shipped)
    assert "ui.locale.translate_zh" not in source  # a developer script, not a module


def test_build_fails_when_a_module_is_out_of_the_specs_reach(tmp_path: Path) -> None:
    env = dict(os.environ, COUNTER_BUILD_EXCLUDE="counter_app.search")
    out = run_build(tmp_path, env=env)
    assert out.returncode == 3, out.stdout[-2000:] + out.stderr[-2000:]
    assert "missing: counter_app.search" in out.stderr
    assert "not in the bundle" in out.stderr
    assert not list((tmp_path / "out").glob("counter-app-*")), "no archive for a broken build"


def test_bundle_size_is_reported_and_trimmed(frozen_build: FrozenBuild) -> None:
    line = [ln for ln in frozen_build.output.splitlines() if ln.startswith("bundle size: ")]
    assert line, frozen_build.output[-2000:]
    mb = float(line[0].split()[2])
    assert mb == pytest.approx(_build_tool().folder_size(frozen_build.app_dir) / 1e6, abs=0.1)
    assert mb <= 100, line[0]
    internal = frozen_build.app_dir / "_internal"
    # SANE and its XML/ICU chain are the system's (docs/performance.md "Bundle").
    for lib in ("libicudata", "libicuuc", "libxml2", "libsane"):
        assert not list(internal.glob(lib + ".so*")), lib
