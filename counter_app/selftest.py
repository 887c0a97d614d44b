"""The headless half of `counter-app --self-test`, and the CheckResult that doctor shares.

Checks what the installer is responsible for that the core can see without the UI: the keyring
backend, SQLite with WAL and synchronous=FULL, the TLS CA bundle, the pad server's port and the
optional scanner backends. The whole self-test (these, plus the UI's theme and catalogs and every
service the wiring builds) is `counter_desk.selftest`, in the composition root.
"""

from __future__ import annotations

import importlib.util
import platform
import sqlite3
import ssl
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from counter_app import __version__
from counter_app.config import Settings

OK, INFO, WARN, FAIL = "ok", "info", "warn", "FAIL"


@dataclass(frozen=True)
class CheckResult:
    """One line of a self-test or doctor report; `remedy_*` says what IT can do about a failure."""

    name: str
    status: str  # ok | info | warn | FAIL
    detail: str
    remedy_zh: str = ""
    remedy_en: str = ""

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def render(self) -> str:
        line = f"[{self.status}] {self.name}: {self.detail}"
        if self.status in (FAIL, WARN) and (self.remedy_en or self.remedy_zh):
            line += f"\n       -> {self.remedy_en}\n       -> {self.remedy_zh}"
        return line


def frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def package_dir(name: str) -> Path | None:
    """The folder of an importable package, frozen or not, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        return None
    for loc in spec.submodule_search_locations or []:
        if Path(loc).is_dir():
            return Path(loc)
    meipass = getattr(sys, "_MEIPASS", None)
    if meipass and (Path(meipass) / name).is_dir():
        return Path(meipass) / name
    return Path(spec.origin).parent if spec.origin else None


def check_keyring() -> list[CheckResult]:
    from counter_app.credentials import backend_status, select_os_backend_if_frozen

    select_os_backend_if_frozen()
    try:
        st = backend_status()
    except Exception as exc:  # a broken backend module is a build problem
        return [CheckResult("keyring", FAIL, f"{type(exc).__name__}: {exc}",
                            "重新安装本程序（密钥环模块缺失）",
                            "Reinstall the application (the keyring module is missing)")]
    if st.safe:
        return [CheckResult("keyring", OK, f"{st.name} (safe)")]
    # Not a build fault: the desktop session has no keyring service. doctor turns this into FAIL.
    return [CheckResult("keyring", WARN, f"{st.name} (not safe: {st.reason})",
                        "登录桌面会话后再运行；Linux 需运行 gnome-keyring（Secret Service）",
                        "Run inside a desktop session; on Linux a Secret Service "
                        "(gnome-keyring) must be running")]


def check_sqlite() -> list[CheckResult]:
    tmp = Path(tempfile.mkdtemp(prefix="counter-selftest-"))
    try:
        db = sqlite3.connect(tmp / "t.sqlite3", isolation_level=None)
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            db.execute("PRAGMA synchronous=FULL")
            sync = db.execute("PRAGMA synchronous").fetchone()[0]
            db.execute("CREATE TABLE t (x TEXT)")
            db.execute("BEGIN")
            db.execute("INSERT INTO t VALUES ('ok')")
            db.execute("COMMIT")
            row = db.execute("SELECT x FROM t").fetchone()
            integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            db.close()
        good = mode == "wal" and sync == 2 and row == ("ok",) and integrity == "ok"
        return [CheckResult("sqlite", OK if good else FAIL,
                            f"{sqlite3.sqlite_version}, journal {mode}, synchronous {sync}, "
                            f"integrity {integrity}",
                            "数据目录所在磁盘需支持文件锁（不要放在网络共享上）",
                            "The data folder's disk must support file locking (not a network "
                            "share)")]
    except sqlite3.Error as exc:
        return [CheckResult("sqlite", FAIL, f"{type(exc).__name__}: {exc}",
                            "重新安装本程序", "Reinstall the application")]
    finally:
        for p in tmp.glob("*"):
            p.unlink(missing_ok=True)
        tmp.rmdir()


def check_tls(settings: Settings | None) -> list[CheckResult]:
    out: list[CheckResult] = []
    try:
        import certifi

        where = certifi.where()
        ctx = ssl.create_default_context(cafile=where)
        n = len(ctx.get_ca_certs())
        out.append(CheckResult("CA bundle (certifi)", OK if n else FAIL, f"{n} CAs in {where}",
                               "重新安装本程序", "Reinstall the application"))
    except (ImportError, OSError, ssl.SSLError) as exc:
        out.append(CheckResult("CA bundle (certifi)", FAIL, f"{type(exc).__name__}: {exc}",
                               "重新安装本程序", "Reinstall the application"))
    configured = settings.ca_bundle if settings else None
    if configured:
        try:
            ctx = ssl.create_default_context(cafile=configured)
            out.append(CheckResult("CA bundle (configured)", OK,
                                   f"{len(ctx.get_ca_certs())} CAs in {configured}"))
        except (OSError, ssl.SSLError) as exc:
            out.append(CheckResult("CA bundle (configured)", FAIL, f"{configured}: {exc}",
                                   "检查 config.toml 中的 ca_bundle 路径和 PEM 文件内容",
                                   "Check the ca_bundle path in config.toml and that the file "
                                   "is a PEM certificate"))
    return out


def check_pad_port(settings: Settings | None) -> list[CheckResult]:
    s = settings or Settings()
    if s.pad_transport in ("lan", "web"):
        # The tablet pad talks to the hall server itself (hall_server/pad_site.py): the desk
        # opens no port for it any more (issue 10).
        return [CheckResult("pad port", INFO,
                            f"pad transport {s.pad_transport}: the pad uses {s.server_url}/pad/; "
                            "no port on this PC")]
    return [CheckResult("pad port", INFO, f"pad transport {s.pad_transport}: no port")]


def check_scanners() -> list[CheckResult]:
    out = []
    for module, what in (("sane", "SANE (Linux scanners)"), ("twain", "TWAIN (Windows)")):
        found = importlib.util.find_spec(module) is not None
        out.append(CheckResult(f"scanner {module}", INFO,
                               f"{what} {'importable' if found else 'absent'}"))
    return out


def run_checks(settings: Settings | None = None) -> list[CheckResult]:
    """The headless checks (see the module docstring)."""
    checks: list[Callable[[], Iterable[CheckResult]]] = [
        check_keyring, check_sqlite,
        lambda: check_tls(settings), lambda: check_pad_port(settings), check_scanners,
    ]
    results: list[CheckResult] = []
    for check in checks:
        try:
            results.extend(check())
        except Exception as exc:  # one broken check must not hide the others
            results.append(CheckResult(getattr(check, "__name__", "check"), FAIL,
                                       f"{type(exc).__name__}: {exc}"))
    return results


def report(results: list[CheckResult], stream: TextIO) -> int:
    """Print a header, one line per check and the total; 0 if nothing failed, 1 otherwise."""
    print(f"counter-app {__version__} self-test ({'frozen' if frozen() else 'source'}, "
          f"Python {platform.python_version()}, {platform.platform()})", file=stream)
    for r in results:
        print(r.render(), file=stream)
    failed = [r for r in results if r.failed]
    print(f"self-test: {len(results) - len(failed)} passed, {len(failed)} failed", file=stream)
    return 1 if failed else 0


def main(settings: Settings | None = None, out: TextIO | None = None) -> int:
    """Print the headless checks' report; 0 if nothing failed, 1 otherwise."""
    return report(run_checks(settings), out or sys.stdout)
