"""Signed updates (TUF, through tufup): check, download in the background, apply between shifts.

- **Trust**: the client starts from a `root.json` shipped with the app (or named by
  `update_root_json`) and only accepts metadata signed by its keys; every downloaded archive is
  checked against the length and hashes in the signed targets metadata (tampered: refused,
  nothing unpacked).
- **When**: `UpdateService` (started by the core when `update_url` is set) checks at start and
  then every `update_check_minutes` while no ticket is called or served, and downloads in its
  own thread (`UpdateReady`). Installing (switching the `current` link) happens only at
  sign-out or when the window closes, and only while `core_busy(core)` is false: a signed-in
  desk is serving, so updates wait for the end of the shift (`UpdateInstalled`). The new
  version runs from the next start.
- **Other processes**: while a clerk is signed in the desk holds `DeskLock` (a lock file in the
  install folder), so `counter-app update --apply` refuses to switch under a working desk.
- **Linux layout** (our own `install=` callable; tufup's default supports Windows/macOS only):

      <install_root>/counter-app-0.2.0/   unpacked new version
      <install_root>/counter-app-0.1.0/   kept for rollback
      <install_root>/current  -> counter-app-0.2.0   (switched atomically with a rename)
      <install_root>/previous -> counter-app-0.1.0

  `rollback()` swaps them back. An optional `verify(folder) -> bool` (e.g. run the new
  version's `--self-test`) runs after the switch; False rolls back at once.
- **Windows**: not wired. The intended path is tufup's own installer (a batch script that
  replaces the install folder after the app exits); it cannot be run or tested here.

Config (machine config): `update_url` (repository root serving `metadata/` and `targets/`;
empty = off), `update_check_minutes`, optional `update_install_root` (default: the folder above
the running frozen app) and `update_root_json` (default: `update-root.json` shipped in the app).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from counter_app import __version__
from counter_app.config import Settings, load_settings
from counter_app.events import EventBus, SignedIn, SignedOut, UpdateInstalled, UpdateReady

log = logging.getLogger(__name__)

APP_NAME = "counter-app"
CURRENT_LINK = "current"
PREVIOUS_LINK = "previous"
ROLLED_BACK_FILE = "rolled-back.txt"


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


class _Session(Protocol):
    @property
    def signed_in(self) -> bool: ...


class _Desk(Protocol):
    @property
    def state(self) -> str: ...


class DeskActivity(Protocol):
    """What the update service reads of the desk (a CounterCore is one): who is signed in and
    whether a ticket is open. Nothing else of the core is reachable from here."""

    @property
    def session(self) -> _Session: ...

    @property
    def desk(self) -> _Desk: ...


def core_busy(core: DeskActivity) -> Callable[[], bool]:
    """The guard for a CounterCore: busy while someone is signed in or a ticket is open."""

    def busy() -> bool:
        if core.session.signed_in:
            return True
        return core.desk.state in ("calling", "serving")

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


def installed_version(install_root: Path) -> str | None:
    """The version of the folder `current` points at (`counter-app-<version>`), if any."""
    link = install_root / CURRENT_LINK
    if not link.is_symlink():
        return None
    name = Path(os.readlink(link)).name
    prefix = f"{APP_NAME}-"
    return name[len(prefix):] if name.startswith(prefix) and len(name) > len(prefix) else None


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


def prune_versions(install_root: Path) -> list[str]:
    """Remove version folders that are neither `current` nor `previous` (and half copies).

    Each bundle is large and a hall PC runs for years; two versions are all a rollback needs.
    """
    keep = {os.readlink(install_root / name) for name in (CURRENT_LINK, PREVIOUS_LINK)
            if (install_root / name).is_symlink()}
    removed: list[str] = []
    for entry in install_root.iterdir():
        if entry.is_symlink() or not entry.is_dir() or entry.name in keep:
            continue
        if entry.name.startswith(f"{APP_NAME}-") or (entry.name.startswith(f".{APP_NAME}-")
                                                     and entry.name.endswith(".partial")):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    if removed:
        log.info("removed old versions: %s", ", ".join(sorted(removed)))
    return removed


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
        # Remembered so the desk does not fetch and install the same version again.
        with (install_root / ROLLED_BACK_FILE).open("a", encoding="utf-8") as fh:
            fh.write(Path(bad).name.removeprefix(f"{APP_NAME}-") + "\n")
    _fsync_dir(install_root)
    log.warning("rolled back from %s to %s", bad, back_to)
    return back_to


def rolled_back_versions(install_root: Path) -> set[str]:
    """Versions rolled back on this PC: never installed again (a newer one is)."""
    try:
        text = (install_root / ROLLED_BACK_FILE).read_text(encoding="utf-8")
    except OSError:
        return set()
    return {pep440(v) for v in text.split() if v}


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DeskLock:
    """An advisory lock file in the install folder, held by the desk while a clerk is signed in.

    It lets `counter-app update --apply` (another process, maybe another user) see that this
    PC is serving and refuse, the same guard the desk applies to itself. Non-blocking.
    """

    NAME = ".desk-signed-in.lock"

    def __init__(self, install_root: Path) -> None:
        self.path = install_root / self.NAME
        self._fd: int | None = None

    @property
    def acquired(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            log.warning("cannot open %s: %s", self.path, exc)
            return False
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing drops the lock on every platform

    def __enter__(self) -> DeskLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


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
        self.running_version = pep440(current_version)
        self.busy = busy
        self.verify = verify
        self.available: str | None = None
        self.staged: Path | None = None
        self._lock = threading.Lock()

    @property
    def current_version(self) -> str:
        """The version `current` points at, else the running one.

        After a switch the process still runs the old code until restarted; comparing with
        the installed version keeps it from downloading the same update again.
        """
        installed = installed_version(self.cfg.install_root)
        return pep440(installed) if installed else self.running_version

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
        from counter_app.update_diff import TarBlockDiff

        # Patches are made by build/update_repo.py with the same block diff (publish in seconds).
        return Client(app_name=APP_NAME, app_install_dir=self.cfg.install_root,
                      binary_diff=TarBlockDiff,
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
            if pep440(version) in rolled_back_versions(self.cfg.install_root):
                log.info("update %s was rolled back on this PC; waiting for a newer one", version)
                self.available = None
                return None
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
            prune_versions(self.cfg.install_root)
            return staged


class UpdateService:
    """The desk's updates: check at start, then every `interval_s` while the desk is idle;
    download in this service's own thread; install only when `request_apply()` (sign-out) or
    `close()` finds the desk not serving.

    `may_check()` says whether a periodic check may run now (not while a ticket is called or
    served); the first check runs regardless, as the desk starts. Publishes `UpdateReady` once a
    version is staged and `UpdateInstalled` once it is switched in, on `bus` if given.
    """

    RETRY_BUSY_S = 60.0  # a periodic check that found the desk busy is tried again this soon

    def __init__(self, updater: Updater, *, bus: EventBus | None = None,
                 may_check: Callable[[], bool] = lambda: True) -> None:
        self.updater = updater
        self.bus = bus
        self.may_check = may_check
        self.last_error: str | None = None
        self.ready: str | None = None  # staged, waiting for the end of the shift
        self.installed: str | None = None  # switched in by this process
        self.checks = 0
        self._apply_wanted = False
        self._done = threading.Condition()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.desk_lock: DeskLock | None = None

    @classmethod
    def for_core(cls, settings: Settings, bus: EventBus, activity: DeskActivity) -> UpdateService:
        """The service for a desk: guards from its session and desk (`activity`), applies at
        sign-out. Raises UpdateError when `update_url` is set but the install cannot be found.
        """
        cfg = settings_from(settings)
        if cfg is None:
            raise UpdateError("updates are off (update_url is empty)")
        service = cls(Updater(cfg, __version__, busy=core_busy(activity)), bus=bus,
                      may_check=core_idle(activity))
        lock = DeskLock(cfg.install_root)

        def signed_in(_e: SignedIn) -> None:
            if not lock.acquire():
                log.warning("could not take %s: `update --apply` cannot see this shift",
                            lock.path)

        def signed_out(_e: SignedOut) -> None:
            lock.release()
            service.request_apply()

        bus.subscribe(SignedIn, signed_in)
        bus.subscribe(SignedOut, signed_out)
        service.desk_lock = lock
        return service

    # -- control ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="updates", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the thread; False if a download was still running after `timeout`."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def close(self) -> None:
        """Stop, then install what is staged if the desk is not serving (the window closes)."""
        if self.stop():
            self.apply_now()
        else:
            log.warning("an update download was still running at close; it resumes next start")
        if self.desk_lock is not None:
            self.desk_lock.release()

    def request_apply(self) -> None:
        """The shift ended (sign-out): install what is staged, in the service's thread."""
        self._apply_wanted = True
        self._wake.set()

    def wait_checks(self, count: int, timeout: float) -> bool:
        """Wait until `count` checks have finished (tests and the CLI)."""
        with self._done:
            return self._done.wait_for(lambda: self.checks >= count, timeout)

    # -- work --------------------------------------------------------------------------------------
    def check_now(self) -> str | None:
        """Check, download and stage (blocking); the staged version or None. Never raises."""
        version: str | None = None
        try:
            version = self.updater.check_and_stage()
            self.last_error = None
        except UpdateError as exc:
            self.last_error = str(exc)
            log.warning("%s", exc)
        except Exception as exc:  # a bug here must not end the desk's update thread
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("update check failed")
        if version is not None and version != self.ready:
            self.ready = version
            self._publish(UpdateReady(version))
        with self._done:
            self.checks += 1
            self._done.notify_all()
        return version

    def apply_now(self) -> str | None:
        """Install the staged version unless the desk is serving; the version or None."""
        try:
            staged = self.updater.apply_pending()
        except UpdateDeferred:
            log.info("update %s waits: the desk is serving", self.ready)
            return None
        except UpdateError as exc:
            self.last_error = str(exc)
            self.ready = None
            log.warning("%s", exc)
            return None
        if staged is None:
            return None
        version = self.ready or staged.name.removeprefix(f"{APP_NAME}-")
        self.ready, self.installed = None, version
        self._publish(UpdateInstalled(version))
        return version

    def _publish(self, event: UpdateReady | UpdateInstalled) -> None:
        if self.bus is not None:
            self.bus.publish(event)

    def _run(self) -> None:
        next_check = time.monotonic()
        first = True
        while not self._stop.is_set():
            if self._apply_wanted:
                self._apply_wanted = False
                self.apply_now()
            now = time.monotonic()
            if now >= next_check:
                # Something staged waits for the sign-out; checking again would only fetch it
                # again. The periodic check never runs while a citizen is being served.
                if first or (self.updater.staged is None and self.may_check()):
                    first = False
                    self.check_now()
                    next_check = time.monotonic() + self.updater.cfg.interval_s
                else:
                    next_check = now + min(self.RETRY_BUSY_S, self.updater.cfg.interval_s)
            self._wake.wait(max(0.0, next_check - time.monotonic()))
            self._wake.clear()


def core_idle(core: DeskActivity) -> Callable[[], bool]:
    """May a background check run: not while a ticket is called or served at this desk."""

    def idle() -> bool:
        return core.desk.state not in ("calling", "serving")

    return idle


# ---- config and CLI --------------------------------------------------------------------------

def _app_dir() -> Path:
    """Where the frozen app's data files are (PyInstaller), else this package's folder."""
    return Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parent))


def default_install_root() -> Path | None:
    """The folder holding the version folders, when running from `<root>/counter-app-<v>/`."""
    if not getattr(sys, "frozen", False):
        return None  # a source checkout is not an installation
    app = Path(sys.executable).resolve().parent
    root = app.parent
    if app.name.startswith(f"{APP_NAME}-") and (root / CURRENT_LINK).is_symlink():
        return root
    return None


def settings_from(settings: Any) -> UpdateSettings | None:
    """UpdateSettings from the desk's Settings; None when `update_url` is empty (updates off)."""
    url = str(getattr(settings, "update_url", "") or "")
    if not url:
        return None
    if os.name == "nt":
        # Versioned folders behind a symlink are the Linux layout; tufup's Windows installer
        # (replace the folder after exit) is the intended path and is not wired yet.
        raise UpdateError("signed updates are not wired for Windows yet; reinstall setup.exe")
    root_s = str(getattr(settings, "update_install_root", "") or "")
    root = Path(root_s) if root_s else default_install_root()
    if root is None:
        raise UpdateError("update_url is set but the install folder is unknown: set "
                          "update_install_root (the folder holding `current`)")
    root_json_s = str(getattr(settings, "update_root_json", "") or "")
    return UpdateSettings(
        url=url, install_root=root, cache_dir=Path(settings.data_dir) / "updates",
        root_json=Path(root_json_s) if root_json_s else _app_dir() / "update-root.json",
        interval_s=float(getattr(settings, "update_check_minutes", 360)) * 60.0)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("update", help="check, download, install or roll back a signed update "
                                      "(IT; the desk does this by itself between shifts)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--check", action="store_const", const="check", dest="action",
                   help="check and download a newer version (does not install it)")
    g.add_argument("--apply", action="store_const", const="apply", dest="action",
                   help="check, download and install it (the desk must not be serving)")
    g.add_argument("--rollback", action="store_const", const="rollback", dest="action",
                   help="switch back to the previous version")
    g.add_argument("--status", action="store_const", const="status", dest="action",
                   help="show the running and installed versions")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """`counter-app update`: 0 done, 1 failed (nothing changed), 2 not configured, 3 deferred."""
    loaded = load_settings(getattr(args, "config", None), getattr(args, "prefs", None))
    try:
        cfg = settings_from(loaded.settings)
    except UpdateError as exc:
        print(f"update: {exc}", file=sys.stderr)
        return 2
    if cfg is None:
        print("更新未配置（machine config 中 update_url 为空） / updates are not configured "
              "(update_url is empty in the machine config)", file=sys.stderr)
        return 2
    try:
        if args.action == "rollback":
            print(f"current is now {rollback(cfg.install_root)} / 已回退；请重启柜台程序")
            return 0
        if args.action == "status":
            print(f"running {__version__}; installed {installed_version(cfg.install_root)} "
                  f"({current_folder(cfg.install_root)}); repository {cfg.url}")
            return 0
        with DeskLock(cfg.install_root) as lock:
            if args.action == "apply" and not lock.acquired:
                print("柜台正在使用（有人登录），签退后将自动安装 / a clerk is signed in at this "
                      "desk; the update installs by itself after sign-out", file=sys.stderr)
                return 3
            updater = Updater(cfg, __version__)
            version = updater.check_and_stage()
            if version is None:
                print("已是最新版本 / no newer version")
                return 0
            print(f"新版本 {version} 已下载并校验 / version {version} downloaded and verified")
            if args.action == "apply":
                print(f"已安装 {updater.apply_pending()}；请重启柜台程序 / installed; "
                      "restart the desk")
        return 0
    except UpdateError as exc:
        print(f"update: {exc}", file=sys.stderr)
        return 1
