"""`counter-app doctor`: what hall IT needs to diagnose a window PC without a developer.

Checks, in order: the config files, the data and log folders (writable, free disk space), the
keyring backend and the stored device credential, the server (reachable, TLS valid with the
configured CA, clock skew against `/health`'s time), the scanner and the pad (information), and
the outbox (depth, oldest item, dead items; the database is opened read-only so a running desk is
not disturbed). Every failure carries a remedy in Chinese and English. Exit code 1 on any FAIL.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import shutil
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from counter_app import __version__
from counter_app.config import LoadedSettings, Settings, load_settings, machine_config_path
from counter_app.selftest import FAIL, INFO, OK, WARN, CheckResult

# Tokens live 15 minutes and TUF metadata has expiry dates: a minute off is already trouble.
SKEW_FAIL_S = 60.0
SKEW_WARN_S = 10.0
DISK_FAIL_MB = 200
DISK_WARN_MB = 1000
OUTBOX_OLD_WARN_S = 3600.0


def redact_url(url: str | None) -> str | None:
    """The URL without user:password (a proxy URL may carry them; reports must not)."""
    if not url or "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://<removed>@{rest.rsplit('@', 1)[1]}"


def check_config(loaded: LoadedSettings, machine_path: Path) -> list[CheckResult]:
    out = []
    if machine_path.exists():
        out.append(CheckResult("machine config", OK, str(machine_path)))
    else:
        out.append(CheckResult("machine config", WARN, f"{machine_path} absent; defaults used",
                               "以管理员身份运行 counter-app setup 生成配置",
                               "Run `counter-app setup` as administrator to write it"))
    for w in loaded.warnings:
        out.append(CheckResult("config", FAIL, str(w), "按提示修改配置文件后重新运行 doctor",
                               "Fix the file as the message says, then run doctor again"))
    s = loaded.settings
    out.append(CheckResult("settings", INFO,
                           f"server {s.server_url}, hall {s.hall_code}, window {s.window_no}, "
                           f"CA bundle {s.ca_bundle or 'system'}, proxy {redact_url(s.proxy) or 'none'}"))
    return out


def check_folders(s: Settings) -> list[CheckResult]:
    out = []
    for label, folder in (("data folder", s.data_dir), ("log folder", s.log_dir)):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / ".doctor-probe"
            probe.write_text("ok", encoding="utf-8")
            probe.unlink()
            out.append(CheckResult(label, OK, f"{folder} writable"))
        except OSError as exc:
            out.append(CheckResult(label, FAIL, f"{folder}: {exc.strerror or exc}",
                                   f"给当前用户授予 {folder} 的写权限，或在 config.toml 中改用其他目录",
                                   f"Give this user write access to {folder}, or set another "
                                   "folder in config.toml"))
            continue
        free_mb = shutil.disk_usage(folder).free / 1e6
        status = FAIL if free_mb < DISK_FAIL_MB else WARN if free_mb < DISK_WARN_MB else OK
        out.append(CheckResult(f"disk space ({label})", status, f"{free_mb:,.0f} MB free",
                               "清理磁盘空间（至少保留 1 GB）",
                               "Free disk space (keep at least 1 GB)"))
    return out


def check_keyring(s: Settings) -> list[CheckResult]:
    from counter_app.credentials import CredentialStore, backend_status, select_os_backend_if_frozen

    select_os_backend_if_frozen()
    st = backend_status()
    if not st.safe:
        return [CheckResult("keyring", FAIL, f"{st.name}: {st.reason}",
                            "Windows：使用普通登录会话（凭据管理器）；Linux：安装并运行 "
                            "gnome-keyring（Secret Service），然后重新运行 setup",
                            "Windows: use a normal logon session (Credential Manager); Linux: "
                            "install and run gnome-keyring (Secret Service), then run setup "
                            "again")]
    out = [CheckResult("keyring", OK, f"{st.name} (safe)")]
    cred = CredentialStore(s.server_url).load()
    if cred is None:
        out.append(CheckResult("device credential", WARN, "none stored for this server",
                               "用一次性登记码运行 counter-app setup --enrollment-code …",
                               "Run `counter-app setup --enrollment-code ...` with a one-time "
                               "code"))
    else:
        out.append(CheckResult("device credential", OK, f"device {cred.device_id}"))
    return out


def check_server(s: Settings, *, now: Callable[[], float] = time.time) -> list[CheckResult]:
    from api_client import HallClient, errors

    out: list[CheckResult] = []
    https = s.server_url.startswith("https://")
    client = HallClient(s.server_url, ca_bundle=s.ca_bundle, proxies=s.proxies,
                        max_retries=0, timeout=(3.05, 5.0))
    try:
        t0 = now()
        health = client.health()
        t1 = now()
    except errors.ApiTLSError as exc:
        out.append(CheckResult("server", FAIL, f"{s.server_url}: TLS refused",
                               "见下一行 TLS", "See the TLS line below"))
        out.append(CheckResult(
            "TLS", FAIL, exc.message_en,
            f"在 config.toml 的 ca_bundle 中配置签发服务器证书的 CA（PEM 文件，当前："
            f"{s.ca_bundle or '系统默认'}），并确认服务器地址与证书中的主机名一致",
            f"Set ca_bundle in config.toml to the PEM file of the CA that issued the server's "
            f"certificate (now: {s.ca_bundle or 'system default'}), and check the server "
            "address matches the certificate's host name"))
        return out
    except errors.ApiError as exc:
        from counter_app.errors import from_api

        # The core's wording (the same the clerk sees), plus the server address.
        out.append(CheckResult(
            "server", FAIL, f"{s.server_url}: {from_api(exc).message_en}",
            "检查网线和网络；确认服务器地址和端口（config.toml 的 server_url）以及代理设置；"
            "在本机浏览器打开 <server_url>/api/v1/health 试试",
            "Check the cable and network; check server_url and proxy in config.toml; try "
            "<server_url>/api/v1/health in a browser on this PC"))
        return out
    finally:
        client.close()
    out.append(CheckResult("server", OK, f"{health.status}, version {health.version}, "
                           f"database {health.database}, {(t1 - t0) * 1000:.0f} ms"))
    if https:
        out.append(CheckResult("TLS", OK, f"certificate verified with {s.ca_bundle or 'system CAs'}"))
    else:
        out.append(CheckResult("TLS", WARN, "plain http: traffic is not encrypted",
                               "在生产环境中使用 https:// 地址和政务内网 CA",
                               "Use an https:// address and the intranet CA in production"))
    # The server's clock read at the middle of the round trip.
    local_mid = (t0 + t1) / 2
    skew = health.time.timestamp() - local_mid
    status = FAIL if abs(skew) > SKEW_FAIL_S else WARN if abs(skew) > SKEW_WARN_S else OK
    ahead = "ahead of" if skew > 0 else "behind"
    out.append(CheckResult(
        "clock", status,
        f"server {abs(skew):.1f} s {ahead} this PC (server {health.time.isoformat()}, "
        f"local {datetime.fromtimestamp(local_mid, UTC).isoformat(timespec='seconds')})",
        "将本机时间与大厅时间服务器同步（Windows：设置 > 时间和语言 > 立即同步，或 "
        "w32tm /resync）",
        "Synchronise this PC's clock with the hall's time server (Windows: Settings > Time & "
        "language > Sync now, or `w32tm /resync`)"))
    return out


def check_devices(s: Settings) -> list[CheckResult]:
    out = []
    if s.scanner_source == "sane":
        found = importlib.util.find_spec("sane") is not None
        out.append(CheckResult("scanner", INFO,
                               f"SANE {'importable' if found else 'not installed'}, device "
                               f"{s.scanner_device or 'auto'}"))
    elif s.scanner_source == "folder":
        folder = Path(s.scanner_folder) if s.scanner_folder else None
        exists = bool(folder and folder.is_dir())
        out.append(CheckResult("scanner", INFO,
                               f"watched folder {folder or '(not set)'} "
                               f"{'present' if exists else 'absent'}"))
    else:
        out.append(CheckResult("scanner", INFO, "no scanner configured"))
    paired = s.data_dir / "pad_pairing.json"
    out.append(CheckResult("pad", INFO, f"transport {s.pad_transport}; "
                           f"{'paired' if paired.exists() else 'not paired yet'}"))
    return out


def check_outbox(s: Settings, *, now: Callable[[], float] = time.time) -> list[CheckResult]:
    db = s.data_dir / "outbox.sqlite3"
    if not db.exists():
        return [CheckResult("outbox", INFO, "no outbox yet (nothing captured on this PC)")]
    try:
        # Read-only: the desk may be running and writing; we must not take a write lock.
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=2.0)
        try:
            depth, oldest = conn.execute(
                "SELECT COUNT(*), MIN(created) FROM outbox WHERE state = 'pending'").fetchone()
            dead = conn.execute("SELECT COUNT(*) FROM outbox WHERE state = 'dead'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return [CheckResult("outbox", FAIL, f"{db}: {exc}",
                            "不要删除该文件；运行 support-bundle 并联系技术支持",
                            "Do not delete the file; make a support bundle and contact support")]
    age = None if oldest is None else max(0.0, now() - float(oldest))
    detail = f"{depth} waiting" + (f", oldest {age / 60:.0f} min" if age is not None else "")
    detail += f", {dead} refused by the server"
    status = OK
    if dead:
        status = WARN
    if age is not None and age > OUTBOX_OLD_WARN_S:
        status = WARN
    return [CheckResult("outbox", status, detail,
                        "待发送的评价会在联网后自动发送；若长时间不减少，先检查服务器连接；"
                        "被拒绝的项请运行 support-bundle 交技术支持",
                        "Waiting ratings are sent by themselves once the server is reachable; "
                        "if they do not go down, check the server line above; refused items: "
                        "make a support bundle for support")]


def run_checks(loaded: LoadedSettings, machine_path: Path,
               *, now: Callable[[], float] = time.time) -> list[CheckResult]:
    s = loaded.settings
    results: list[CheckResult] = []
    steps: list[Callable[[], list[CheckResult]]] = [
        lambda: check_config(loaded, machine_path), lambda: check_folders(s),
        lambda: check_keyring(s), lambda: check_server(s, now=now),
        lambda: check_devices(s), lambda: check_outbox(s, now=now),
    ]
    for step in steps:
        try:
            results.extend(step())
        except Exception as exc:  # one broken check must not hide the rest
            results.append(CheckResult("doctor", FAIL, f"{type(exc).__name__}: {exc}"))
    return results


def report(results: list[CheckResult], out: TextIO) -> int:
    print(f"counter-app {__version__} doctor on Python {platform.python_version()} "
          f"({platform.platform()})", file=out)
    for r in results:
        print(r.render(), file=out)
    failed = sum(r.failed for r in results)
    print(f"doctor: {len(results) - failed} passed, {failed} failed"
          + ("" if not failed else " / 有问题，请按上面的提示处理"), file=out)
    return 1 if failed else 0


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    import sys

    config: Path | None = getattr(args, "config", None)
    loaded = load_settings(config, getattr(args, "prefs", None))
    return report(run_checks(loaded, config or machine_config_path()), out or sys.stdout)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check config, folders, keyring, server, TLS, clock, outbox")
    p.set_defaults(handler=main)
