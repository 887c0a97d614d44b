"""Signed updates end to end: a real TUF repository (tufup) served over http on 127.0.0.1, a
small fake app folder as the payload (the mechanism is what is tested), the Linux install
(versioned folders, `current`/`previous` links), the serving guard, rollback, and refusals: a
tampered archive and metadata signed by keys the client does not trust.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

from counter_app import updates
from counter_app.updates import (
    UpdateDeferred,
    UpdateError,
    Updater,
    UpdateSettings,
    install_linux,
)

ROOT = Path(__file__).resolve().parents[1]


def _load_repo_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("update_repo", ROOT / "build" / "update_repo.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


repo_tool = _load_repo_tool()


def fake_app(where: Path, version: str) -> Path:
    app = where / f"app-{version}"
    (app / "_internal").mkdir(parents=True)
    (app / "VERSION").write_text(version)
    (app / "_internal" / "payload.bin").write_bytes(os.urandom(4096) + version.encode())
    exe = app / "counter-app"
    exe.write_text(f"#!/bin/sh\necho counter-app {version}\n")
    exe.chmod(0o755)
    return app


class StaticServer:
    def __init__(self, folder: Path) -> None:
        handler = functools.partial(QuietHandler, directory=str(folder))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *a: object) -> None:
        pass


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[Path, Path, StaticServer, Path]]:
    """A signed repository holding 1.0.0 and 2.0.0, served on loopback; yields the trust root.

    Built once for the module: tests only read it (the tampered one works on a copy).
    """
    base = tmp_path_factory.mktemp("release")
    repo_dir, keys = base / "repo", base / "keys"
    root_json = repo_tool.init(repo_dir, keys)
    for v in ("1.0.0", "2.0.0"):
        repo_tool.publish(repo_dir, keys, fake_app(base / "bundles", v), v)
    srv = StaticServer(repo_dir)
    yield repo_dir, keys, srv, root_json
    srv.close()


def installed_v1(tmp_path: Path) -> Path:
    root = tmp_path / "opt" / "counter-app"
    install_linux(fake_app(tmp_path / "first-install", "1.0.0"), root, version="1.0.0")
    return root


def cfg(tmp_path: Path, url: str, root: Path, root_json: Path) -> UpdateSettings:
    return UpdateSettings(url=url, install_root=root, cache_dir=tmp_path / "cache",
                          root_json=root_json)


def current_version(root: Path) -> str:
    return (root / "current" / "VERSION").read_text()


def test_update_staged_applied_between_shifts_and_rolled_back(repo: tuple[Path, Path, StaticServer, Path],
                                                              tmp_path: Path) -> None:
    _repo_dir, _keys, srv, root_json = repo
    root = installed_v1(tmp_path)
    serving = [True]
    up = Updater(cfg(tmp_path, srv.url, root, root_json), "1.0.0", busy=lambda: serving[0])
    assert up.check_and_stage() == "2.0.0"
    assert up.staged is not None and (up.staged / "VERSION").read_text() == "2.0.0"
    assert current_version(root) == "1.0.0"  # downloaded, not switched
    with pytest.raises(UpdateDeferred):
        up.apply_pending()
    assert current_version(root) == "1.0.0"
    serving[0] = False  # the shift ended
    (root / "counter-app-0.9.0").mkdir()  # from an earlier update: only two versions are kept
    (root / ".counter-app-0.8.0.partial").mkdir()  # a copy cut short by a crash
    activated = up.apply_pending()
    assert activated is not None and current_version(root) == "2.0.0"
    assert os.readlink(root / "previous") == "counter-app-1.0.0"
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(("counter", ".counter"))
                  ) == ["counter-app-1.0.0", "counter-app-2.0.0"]
    assert os.access(root / "current" / "counter-app", os.X_OK)
    # The process still runs 1.0.0 until restarted, but 2.0.0 is installed: nothing to fetch.
    assert Updater(cfg(tmp_path, srv.url, root, root_json), "1.0.0").check_and_stage() is None
    assert updates.rollback(root) == "counter-app-1.0.0"
    assert current_version(root) == "1.0.0"
    assert os.readlink(root / "previous") == "counter-app-2.0.0"
    # Rolled back by IT: 2.0.0 is not fetched and installed again behind their back.
    again = Updater(cfg(tmp_path, srv.url, root, root_json), "1.0.0")
    assert again.check_and_stage() is None and again.staged is None
    assert current_version(root) == "1.0.0"


def test_failed_verification_rolls_back(repo: tuple[Path, Path, StaticServer, Path],
                                        tmp_path: Path) -> None:
    _r, _k, srv, root_json = repo
    root = installed_v1(tmp_path)
    checked: list[Path] = []

    def verify(folder: Path) -> bool:
        checked.append(folder)
        return False  # e.g. the new version's --self-test failed

    up = Updater(cfg(tmp_path, srv.url, root, root_json), "1.0.0", verify=verify)
    up.check_and_stage()
    with pytest.raises(UpdateError, match="rolled back"):
        up.apply_pending()
    assert checked and checked[0].name == "counter-app-2.0.0"
    assert current_version(root) == "1.0.0"


def test_tampered_archive_is_refused(repo: tuple[Path, Path, StaticServer, Path],
                                     tmp_path: Path) -> None:
    repo_dir, _k, _srv, root_json = repo
    copy = tmp_path / "repo-copy"
    shutil.copytree(repo_dir, copy)
    archive = copy / "targets" / "counter-app-2.0.0.tar.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same length, one byte flipped
    archive.write_bytes(bytes(data))
    root = installed_v1(tmp_path)
    srv = StaticServer(copy)
    up = Updater(cfg(tmp_path, srv.url, root, root_json), "1.0.0")
    try:
        with pytest.raises(UpdateError, match="refused"):
            up.check_and_stage()
    finally:
        srv.close()
    assert up.staged is None
    assert not (root / "counter-app-2.0.0").exists()
    assert current_version(root) == "1.0.0"


def test_metadata_from_untrusted_keys_is_not_used(repo: tuple[Path, Path, StaticServer, Path],
                                                  tmp_path: Path) -> None:
    _r, _k, srv, _trusted_root = repo
    # A second repository with its own keys: same names, same versions, different signer.
    other_repo, other_keys = tmp_path / "evil" / "repo", tmp_path / "evil" / "keys"
    repo_tool.init(other_repo, other_keys)
    repo_tool.publish(other_repo, other_keys, fake_app(tmp_path / "evil-bundles", "9.0.0"),
                      "9.0.0")
    evil = StaticServer(other_repo)
    try:
        root = installed_v1(tmp_path)
        # The client trusts the genuine root but is pointed at the forger's server.
        up = Updater(cfg(tmp_path, evil.url, root, _trusted_root), "1.0.0")
        assert up.check_and_stage() is None
        assert not (root / "counter-app-9.0.0").exists()
    finally:
        evil.close()
    assert current_version(root) == "1.0.0"


def test_no_trust_root_no_update(tmp_path: Path) -> None:
    up = Updater(UpdateSettings(url="http://127.0.0.1:9", install_root=tmp_path / "opt",
                                cache_dir=tmp_path / "c", root_json=tmp_path / "absent.json"),
                 "1.0.0")
    with pytest.raises(UpdateError, match="no trusted root"):
        up.check_and_stage()


@pytest.mark.parametrize(("given", "expected"), [
    ("1.2.3", "1.2.3"), ("v1.2.3-4-gabcdef0", "1.2.3.post4+gabcdef0"),
    ("v1.2.3-4-gabcdef0-dirty", "1.2.3.post4+gabcdef0.dirty"), ("ac2254a", "0+gac2254a"),
])
def test_versions_from_git_describe(given: str, expected: str) -> None:
    assert updates.pep440(given) == expected


def test_guard_follows_the_core() -> None:
    class S:
        signed_in = False

    class D:
        state = "idle"

    class Core:
        session, desk = S(), D()

    busy = updates.core_busy(Core())
    assert not busy()
    Core.session.signed_in = True
    assert busy()
    Core.session.signed_in = False
    Core.desk.state = "serving"
    assert busy()
