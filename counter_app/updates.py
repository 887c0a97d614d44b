"""Signed updates (TUF, through tufup): check, download in the background, apply between shifts.

- **Trust**: the client starts from a `root.json` shipped with the app (or named in
  `updates.toml`) and only accepts metadata signed by its keys; every downloaded archive is
  checked against the length and hashes in the signed targets metadata (tampered: refused,
  nothing unpacked).
- **When**: `UpdateService` checks at start and then every `interval_s` while the desk is idle,
  and downloads in the background. Installing (switching the `current` link) only happens when
  `busy()` is false: a signed-in desk is serving, so updates wait for the end of the shift.
  `core_busy(core)` is the guard to give it; `apply_pending()` is what the desk calls after
  sign-out or at start.
- **Linux layout** (our own `install=` callable; tufup's default supports Windows/macOS only):

      <install_root>/counter-app-0.2.0/   unpacked new version
      <install_root>/counter-app-0.1.0/   kept for rollback
      <install_root>/current  -> counter-app-0.2.0   (switched atomically with a rename)
      <install_root>/previous -> counter-app-0.1.0

  `rollback()` swaps them back. An optional `verify(folder) -> bool` (e.g. run the new
  version's `--self-test`) runs after the switch; False rolls back at once.
- **Windows**: tufup's own installer (a batch script that replaces the install folder after the
  app exits); it cannot be run here.

Config: `updates.toml` beside the machine config: `url` (repository root serving `metadata/`
and `targets/`), `install_root`, optional `root_json`, `interval_minutes`.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import sys
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from counter_app import __version__
from counter_app.config import load_settings, machine_config_path

log = logging.getLogger(__name__)

APP_NAME = "counter-app"
CURRENT_LINK = "current"
PREVIOUS_LINK = "previous"


class UpdateError(Exception):
    """An update could not be checked, downloaded, verified or installed (nothing changed)."""


class UpdateDeferred(UpdateError):
    """The desk is serving: installing waits for the end of the shift."""


def pep440(version: str) -> str:
    """A PEP 440 version from ours (`git describe` output or a release like 1.2.3)."""
    from packaging.version import InvalidVersion, Version

    try:
        return str(Version(version))
    except InvalidVersion:
        pass
    m = re.fullmatch(r"v?(\d+(?:\.\d+)*)-(\d+)-g([0-9a-f]+)(-dirty)?", version)
    if m:
        local = m.group(3) + (".dirty" if m.group(4) else "")
        return f"{m.group(1)}.post{m.group(2)}+g{local}"
    m = re.fullmatch(r"([0-9a-f]{4,40})(-dirty)?", version)
    if m:  # a bare hash (no tag yet): a local version of 0
        return f"0+g{m.group(1)}" + (".dirty" if m.group(2) else "")
    raise UpdateError(f"not a version tufup can order: {version!r}")


def core_busy(core: Any) -> Callable[[], bool]:
    """The guard for a CounterCore: busy while someone is signed in or a ticket is open."""

    def busy() -> bool:
        session = getattr(core, "session", None)
        desk = getattr(core, "desk", None)
        if getattr(session, "signed_in", False):
            return True
        return getattr(desk, "state", "idle") in ("calling", "serving")

    return busy


# ---- Linux installation: versioned folders and a `current` symlink ----------------------------

def _switch_link(link: Path, target_name: str) -> None:
    """Point `link` at `target_name` (relative) atomically: a new link renamed over the old."""
    tmp = link.with_name(f".{link.name}.new")
    tmp.unlink(missing_ok=True)
    os.symlink(target_name, tmp)
    os.replace(tmp, link)


def current_folder(install_root: Path) -> Path | None:
    link = install_root / CURRENT_LINK
    return link.resolve() if link.is_symlink() else None


def install_linux(src_dir: str | Path, dst_dir: str | Path, *, version: str,
                  activate: bool = True, **_: Any) -> Path:
    """tufup `install=` callable: move the unpacked update to `<root>/counter-app-<version>`.

    `dst_dir` is the install root (the folder holding the versions and the links). With
    `activate`, `current` is switched to the new folder and `previous` keeps the old one.
    """
    root = Path(dst_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{APP_NAME}-{version}"
    staging = root / f".{final.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    # Copy then rename: a crash half-way leaves a .partial folder, never a half version.
    shutil.copytree(src_dir, staging, symlinks=True)
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)
    if activate:
        activate_version(root, final.name)
    return final


def activate_version(root: Path, folder_name: str) -> None:
    old = root / CURRENT_LINK
    if old.is_symlink():
        previous = os.readlink(old)
        if previous != folder_name:
            _switch_link(root / PREVIOUS_LINK, previous)
    _switch_link(old, folder_name)
    _fsync_dir(root)


def rollback(install_root: Path) -> str:
    """Point `current` back at `previous` (and vice versa); returns the folder now current."""
    prev = install_root / PREVIOUS_LINK
    cur = install_root / CURRENT_LINK
    if not prev.is_symlink() or not (install_root / os.readlink(prev)).is_dir():
        raise UpdateError("no previous version to roll back to")
    back_to = os.readlink(prev)
    bad = os.readlink(cur) if cur.is_symlink() else None
    _switch_link(cur, back_to)
    if bad:
        _switch_link(prev, bad)
    _fsync_dir(install_root)
    log.warning("rolled back from %s to %s", bad, back_to)
    return back_to


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- the client ----------------------------------------------------------------------------

@dataclass(frozen=True)
class UpdateSettings:
    url: str
    install_root: Path
    cache_dir: Path
    root_json: Path
    interval_s: float = 6 * 3600.0


class Updater:
    """One tufup client for this app. Blocking; run from a worker thread."""

    def __init__(self, cfg: UpdateSettings, current_version: str, *,
                 busy: Callable[[], bool] = lambda: False,
                 verify: Callable[[Path], bool] | None = None) -> None:
        self.cfg = cfg
        self.current_version = pep440(current_version)
        self.busy = busy
        self.verify = verify
        self.available: str | None = None
        self.staged: Path | None = None
        self._lock = threading.Lock()

    def _client(self) -> Any:
        from tufup.client import Client  # type: ignore[import-untyped]

        meta = self.cfg.cache_dir / "metadata"
        targets = self.cfg.cache_dir / "targets"
        meta.mkdir(parents=True, exist_ok=True)
        targets.mkdir(parents=True, exist_ok=True)
        if not (meta / "root.json").exists():
            # The trust anchor: only the root shipped with the app, never one from the network.
            if not self.cfg.root_json.is_file():
                raise UpdateError(f"no trusted root metadata at {self.cfg.root_json}")
            shutil.copy2(self.cfg.root_json, meta / "root.json")
        base = self.cfg.url.rstrip("/")
        return Client(app_name=APP_NAME, app_install_dir=self.cfg.install_root,
                      current_version=self.current_version, metadata_dir=meta,
                      metadata_base_url=f"{base}/metadata/", target_dir=targets,
                      target_base_url=f"{base}/targets/",
                      extract_dir=self.cfg.cache_dir / "extract", refresh_required=False)

    def check_and_stage(self) -> str | None:
        """Check for a newer signed version; download, verify and unpack it (not activated).

        Returns the staged version or None. Raises UpdateError on a refused download.
        """
        from tuf.api import exceptions as tuf_errors

        with self._lock:
            try:
                client = self._client()
                meta = client.check_for_updates()
            except (tuf_errors.RepositoryError, tuf_errors.DownloadError, OSError) as exc:
                raise UpdateError(f"update check failed: {type(exc).__name__}: {exc}") from exc
            if meta is None:
                self.available = None
                return None
            version = str(meta.version)
            self.available = version
            extract = self.cfg.cache_dir / "extract"
            shutil.rmtree(extract, ignore_errors=True)
            extract.mkdir(parents=True)
            staged: list[Path] = []

            def stage(src_dir: Any, dst_dir: Any, **kw: Any) -> None:
                staged.append(install_linux(src_dir, dst_dir, version=version, activate=False))

            try:
                # tufup verifies length and hashes against the signed targets before unpacking.
                client.download_and_apply_update(skip_confirmation=True, install=stage)
            except (tuf_errors.RepositoryError, tuf_errors.DownloadError, OSError) as exc:
                raise UpdateError(f"update {version} refused: {type(exc).__name__}: {exc}"
                                  ) from exc
            finally:
                shutil.rmtree(extract, ignore_errors=True)
            if not staged:
                raise UpdateError(f"update {version} was not installed (see the log)")
            self.staged = staged[0]
            log.info("update %s staged in %s", version, self.staged)
            return version

    def apply_pending(self) -> Path | None:
        """Switch `current` to the staged version if the desk is not serving.

        Raises UpdateDeferred while busy. With `verify`, a new version that fails it is rolled
        back at once (UpdateError).
        """
        with self._lock:
            if self.staged is None:
                return None
            if self.busy():
                raise UpdateDeferred("the desk is serving; the update waits for the shift's end")
            staged = self.staged
            activate_version(self.cfg.install_root, staged.name)
            self.staged = None
            if self.verify is not None and not self.verify(staged):
                rollback(self.cfg.install_root)
                raise UpdateError(f"{staged.name} failed its check and was rolled back")
            log.info("update activated: %s", staged.name)
            return staged


class UpdateService:
    """Background checks at start and every `interval_s` while idle; never installs by itself."""

    def __init__(self, updater: Updater) -> None:
        self.updater = updater
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="updates", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        first = True
        while not self._stop.is_set():
            if first or not self.updater.busy():
                try:
                    self.updater.check_and_stage()
                    self.last_error = None
                except UpdateError as exc:
                    self.last_error = str(exc)
                    log.warning("%s", exc)
                first = False
            self._stop.wait(self.updater.cfg.interval_s)


# ---- config and CLI --------------------------------------------------------------------------

def update_config_path() -> Path:
    return machine_config_path().with_name("updates.toml")


def load_update_settings(path: Path | None = None, *, data_dir: Path | None = None
                         ) -> UpdateSettings:
    p = path or update_config_path()
    try:
        with p.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise UpdateError(f"updates are not configured ({p} is absent)") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UpdateError(f"cannot read {p}: {exc}") from exc
    if not isinstance(raw.get("url"), str) or not isinstance(raw.get("install_root"), str):
        raise UpdateError(f"{p}: `url` and `install_root` are required")
    data = data_dir or load_settings().settings.data_dir
    app_dir = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parent))
    return UpdateSettings(
        url=raw["url"], install_root=Path(raw["install_root"]),
        cache_dir=Path(raw.get("cache_dir", data / "updates")),
        root_json=Path(raw.get("root_json", app_dir / "update-root.json")),
        interval_s=float(raw.get("interval_minutes", 360)) * 60.0)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("update", help="check, stage, apply or roll back a signed update (IT)")
    p.add_argument("action", choices=("check", "apply", "rollback", "status"))
    p.add_argument("--updates-config", type=Path, help="updates.toml (default: beside config)")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    try:
        cfg = load_update_settings(args.updates_config)
        if args.action == "rollback":
            print(f"current is now {rollback(cfg.install_root)}")
            return 0
        if args.action == "status":
            print(f"running {__version__}; current {current_folder(cfg.install_root)}; "
                  f"repository {cfg.url}")
            return 0
        updater = Updater(cfg, __version__)
        version = updater.check_and_stage()
        if version is None:
            print("no newer version / 已是最新版本")
            return 0
        print(f"version {version} downloaded and verified / 新版本已下载并校验")
        if args.action == "apply":
            print(f"activated {updater.apply_pending()}; restart the desk / 请重启柜台程序")
        return 0
    except UpdateError as exc:
        print(f"update: {exc}", file=sys.stderr)
        return 1
