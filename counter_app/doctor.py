"""`counter-app doctor`: what hall IT needs to diagnose a window PC without a developer.

Checks, in order: the config files (and the https rule: a plain-http address to another machine
FAILS, with or without IT's override), the data and log folders (writable, read-only, free disk
space), the keyring (on the allow-list, unlocked) and the stored device credential, the server
(the CA bundle file, reachable, the right scheme for the port, TLS valid with the configured CA,
clock skew against `/health`'s time), the scanner and the pad (information), and the outbox
(depth, oldest item, dead items; the database is opened read-only so a running desk is not
disturbed). Every failure names its true cause and a remedy in Chinese and English, for the
platform doctor runs on.

Every check runs in a daemon worker thread with a deadline: a locked keyring that waits for an
unlock prompt, or a server that accepts and never answers, becomes a FAIL line after the
deadline instead of a doctor that hangs with no output. Exit code 1 on any FAIL.
"""

from __future__ import annotations

import argparse
import errno
import importlib.util
import os
import platform
import queue
import shutil
import socket
import sqlite3
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from counter_app import __version__
from counter_app.config import (
    LoadedSettings,
    Settings,
    is_loopback_url,
    load_settings,
    machine_config_path,
)
from counter_app.selftest import FAIL, INFO, OK, WARN, CheckResult
from counter_app.update_health import check_update_metadata

# Tokens live 15 minutes and TUF metadata has expiry dates: a minute off is already trouble.
SKEW_FAIL_S = 60.0
SKEW_WARN_S = 10.0
DISK_FAIL_MB = 200
DISK_WARN_MB = 1000
OUTBOX_OLD_WARN_S = 3600.0
# Deadlines per check (seconds). The server check makes at most a health call (3 s connect,
# 5 s read) and two short probes; a keyring that answers at all answers in well under a second.
TIMEOUTS = {"config": 10.0, "folders": 10.0, "keyring": 8.0, "server": 20.0, "devices": 5.0,
            "outbox": 10.0, "updates": 25.0}
PROBE_TIMEOUT_S = 3.0


def redact_url(url: str | None) -> str | None:
    """The URL without user:password (a proxy URL may carry them; reports must not)."""
    if not url or "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://<removed>@{rest.rsplit('@', 1)[1]}"


def _platform() -> str:
    return sys.platform


# ---- platform remedies -------------------------------------------------------------------------


def clock_remedy(plat: str | None = None) -> tuple[str, str]:
    """How to synchronise this PC's clock, for the platform doctor runs on (zh, en)."""
    plat = plat or _platform()
    if plat == "win32":
        return ("将本机时间与大厅时间服务器同步：设置 > 时间和语言 > 立即同步，或以管理员身份运行 "
                "w32tm /resync",
                "Synchronise this PC's clock with the hall's time server: Settings > Time & "
                "language > Sync now, or run `w32tm /resync` as administrator")
    if plat == "darwin":
        return ("将本机时间与大厅时间服务器同步：系统设置 > 通用 > 日期与时间，或运行 "
                "sudo sntp -sS <时间服务器>",
                "Synchronise this PC's clock with the hall's time server: System Settings > "
                "General > Date & Time, or `sudo sntp -sS <time server>`")
    return ("将本机时间与大厅时间服务器同步：运行 timedatectl 查看状态，sudo timedatectl set-ntp true "
            "开启同步；使用 chrony 时在 /etc/chrony/chrony.conf 中配置大厅时间服务器后运行 "
            "sudo chronyc makestep",
            "Synchronise this PC's clock with the hall's time server: `timedatectl` shows the "
            "state, `sudo timedatectl set-ntp true` turns sync on; with chrony, put the hall's "
            "time server in /etc/chrony/chrony.conf and run `sudo chronyc makestep`")


def keyring_remedy(plat: str | None = None) -> tuple[str, str]:
    plat = plat or _platform()
    if plat == "win32":
        return ("以柜员本人的账户正常登录 Windows（凭据管理器随登录可用），然后重新运行 setup",
                "Sign in to Windows normally as the clerk (the Credential Manager comes with the "
                "logon session), then run setup again")
    if plat == "darwin":
        return ("以柜员本人的账户登录，确认“钥匙串访问”中的登录钥匙串已解锁",
                "Sign in as the clerk and check in Keychain Access that the login keychain is "
                "unlocked")
    return ("在柜员的桌面会话中安装并运行 gnome-keyring（Secret Service，统信/麒麟自带），"
            "然后重新运行 setup",
            "Install and run gnome-keyring (Secret Service; UOS and Kylin ship it) in the "
            "clerk's desktop session, then run setup again")


def locked_keyring_remedy(plat: str | None = None) -> tuple[str, str]:
    plat = plat or _platform()
    if plat == "win32":
        return ("以柜员本人的账户正常登录（不要用“运行方式”或远程服务会话）后再运行 doctor",
                "Sign in normally as the clerk (not `runas` or a service session) and run "
                "doctor again")
    if plat == "darwin":
        return ("在“钥匙串访问”中解锁登录钥匙串后再运行 doctor",
                "Unlock the login keychain in Keychain Access and run doctor again")
    return ("密钥环已锁定：以柜员身份登录桌面会话（登录密码与密钥环密码一致时会自动解锁），或在"
            "“密码和密钥”(seahorse) 中解锁“登录”密钥环，然后重新运行 doctor",
            "The keyring is locked: sign in to the desktop session as the clerk (it unlocks by "
            "itself when the login and keyring passwords match), or unlock the 'Login' keyring "
            "in Passwords and Keys (seahorse), then run doctor again")


# ---- bounded checks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    key: str  # a TIMEOUTS key
    run: Callable[[], list[CheckResult]]
    on_timeout: Callable[[float], list[CheckResult]]


def run_bounded(step: Step, timeout_s: float) -> list[CheckResult]:
    """Run one check in a daemon thread; after `timeout_s` report it as hung and move on.

    A daemon thread, not an executor: a check stuck in a keyring prompt must not keep the
    process alive at exit (concurrent.futures joins its workers).
    """
    box: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

    def work() -> None:
        try:
            box.put((True, step.run()))
        except Exception as exc:  # one broken check must not hide the rest
            box.put((False, exc))

    threading.Thread(target=work, name=f"doctor-{step.key}", daemon=True).start()
    try:
        ok, value = box.get(timeout=timeout_s)
    except queue.Empty:
        return step.on_timeout(timeout_s)
    if ok:
        return list(value)
    return [CheckResult("doctor", FAIL, f"{step.key}: {type(value).__name__}: {value}")]


# ---- config ------------------------------------------------------------------------------------


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


# ---- folders -----------------------------------------------------------------------------------


def _folder_problem(folder: Path, exc: OSError) -> tuple[str, str, str]:
    """(detail, remedy_zh, remedy_en) for a folder the desk cannot write."""
    code = exc.errno
    if code == errno.EROFS:
        return (f"{folder} is on a read-only file system",
                f"{folder} 所在的文件系统是只读的：请在 config.toml 中把该目录改到可写的磁盘上，"
                "或让管理员以读写方式挂载",
                f"{folder} is on a read-only file system: set another folder on a writable disk "
                "in config.toml, or have it mounted read-write")
    if code in (errno.EACCES, errno.EPERM):
        try:
            st = (folder if folder.exists() else folder.parent).stat()
            who = f" (owner uid {st.st_uid}, mode {st.st_mode & 0o777:o})"
        except OSError:
            who = ""
        return (f"{folder} is read-only for this user{who}",
                f"给当前用户（柜员）授予 {folder} 的写权限，或在 config.toml 中改用其他目录",
                f"Give this user (the clerk) write access to {folder}, or set another folder "
                "in config.toml")
    if code in (errno.ENOTDIR, errno.EEXIST):
        return (f"{folder} is not a folder (a file is in the way)",
                f"{folder} 的路径上有同名文件：删除或改名该文件，或在 config.toml 中改用其他目录",
                f"A file is in the way of {folder}: remove or rename it, or set another folder "
                "in config.toml")
    if code == errno.ENOSPC:
        return (f"{folder}: the disk is full", "清理磁盘空间（至少保留 1 GB）",
                "Free disk space (keep at least 1 GB)")
    return (f"{folder}: {exc.strerror or exc}",
            f"给当前用户授予 {folder} 的写权限，或在 config.toml 中改用其他目录",
            f"Give this user write access to {folder}, or set another folder in config.toml")


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
            detail, zh, en = _folder_problem(folder, exc)
            if label == "data folder":
                en += "; until then ratings cannot be saved on this PC"
                zh += "；修复前本机无法保存评价"
            out.append(CheckResult(label, FAIL, detail, zh, en))
            continue
        free_mb = shutil.disk_usage(folder).free / 1e6
        status = FAIL if free_mb < DISK_FAIL_MB else WARN if free_mb < DISK_WARN_MB else OK
        out.append(CheckResult(f"disk space ({label})", status, f"{free_mb:,.0f} MB free",
                               "清理磁盘空间（至少保留 1 GB）",
                               "Free disk space (keep at least 1 GB)"))
    return out


# ---- keyring -----------------------------------------------------------------------------------


def check_keyring(s: Settings) -> list[CheckResult]:
    import keyring.errors

    from counter_app.credentials import CredentialStore, backend_status, select_os_backend_if_frozen

    select_os_backend_if_frozen()
    st = backend_status()
    if not st.safe:
        zh, en = keyring_remedy()
        return [CheckResult("keyring", FAIL, f"{st.name}: {st.reason}", zh, en)]
    out = [CheckResult("keyring", OK, f"{st.name} (on the allow-list)")]
    try:
        cred = CredentialStore.for_settings(s).load_or_raise()
    except keyring.errors.KeyringLocked as exc:
        zh, en = locked_keyring_remedy()
        return [CheckResult("keyring", FAIL, f"{st.name} is locked ({exc})", zh, en)]
    except keyring.errors.KeyringError as exc:
        zh, en = keyring_remedy()
        return [CheckResult("keyring", FAIL, f"{st.name}: {type(exc).__name__}: {exc}", zh, en)]
    if cred is None:
        out.append(CheckResult("device credential", WARN, "none stored for this server",
                               "由柜员在自己的会话中用一次性登记码运行 counter-app enroll "
                               "--enrollment-code …",
                               "As the clerk, in their own session: `counter-app enroll "
                               "--enrollment-code ...` with a one-time "
                               "code"))
    else:
        out.append(CheckResult("device credential", OK, f"device {cred.device_id}"))
    return out


def keyring_timed_out(timeout_s: float) -> list[CheckResult]:
    zh, en = locked_keyring_remedy()
    return [CheckResult("keyring", FAIL,
                        f"no answer from the keyring in {timeout_s:.0f} s: it is most likely "
                        "locked and waiting for an unlock prompt nobody sees", zh, en)]


# ---- server ------------------------------------------------------------------------------------


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def speaks_plain_http(host: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True if whatever listens on host:port answers a plain HTTP request (no TLS)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"HEAD /api/v1/health HTTP/1.0\r\nHost: " + host.encode("idna")
                         + b"\r\n\r\n")
            return sock.recv(16).startswith(b"HTTP/")
    except (OSError, UnicodeError):
        return False


def speaks_tls(host: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True if host:port completes a TLS handshake (certificate not checked: only the scheme)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock, \
                ctx.wrap_socket(sock, server_hostname=host or None):
            return True
    except (OSError, ssl.SSLError):
        return False


def tls_verdict(host: str, port: int, ca_bundle: str | None,
                timeout: float = PROBE_TIMEOUT_S) -> tuple[str, str] | None:
    """Why the certificate of host:port is refused with this CA, in words (en, zh), or None."""
    try:
        ctx = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else \
            ssl.create_default_context()
        with socket.create_connection((host, port), timeout=timeout) as sock, \
                ctx.wrap_socket(sock, server_hostname=host):
            return None
    except ssl.SSLCertVerificationError as exc:
        code = exc.verify_code
        if code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
            return (f"the certificate is not for the host name {host!r} in server_url",
                    f"服务器证书不是签发给 server_url 中的主机名 {host} 的")
        if code in (9, 10):  # not yet valid / expired
            return (f"the server's certificate is outside its validity dates ({exc.verify_message});"
                    " check this PC's clock and the certificate's dates",
                    f"服务器证书不在有效期内（{exc.verify_message}），请检查本机时间和证书有效期")
        return (f"the certificate was not issued by the CA in ca_bundle "
                f"({ca_bundle or 'system CAs'}): {exc.verify_message}",
                f"服务器证书不是由 ca_bundle（{ca_bundle or '系统默认'}）中的 CA 签发的："
                f"{exc.verify_message}")
    except (OSError, ssl.SSLError) as exc:
        return (f"TLS failed: {exc}", f"TLS 握手失败：{exc}")


def _ca_problem(ca: str) -> CheckResult | None:
    path = Path(ca)
    if not path.exists():
        return CheckResult(
            "CA bundle", FAIL, f"the file {path} does not exist",
            f"ca_bundle 指向的文件 {path} 不存在：把大厅 CA 证书（PEM）复制到该路径，或在 config.toml "
            "中改正 ca_bundle",
            f"The ca_bundle file {path} is missing: copy the hall CA certificate (PEM) there, or "
            "correct ca_bundle in config.toml")
    try:
        ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError, ValueError) as exc:
        return CheckResult(
            "CA bundle", FAIL, f"{path} cannot be read as a PEM certificate ({exc})",
            f"{path} 无法读取或不是 PEM 格式的 CA 证书：检查文件权限（柜员需可读）和内容",
            f"{path} is unreadable or not a PEM CA certificate: check the file's permissions "
            "(the clerk must read it) and its content")
    return None


def _unreachable(s: Settings, host: str, port: int, exc_en: str) -> CheckResult:
    """The true reason nothing usable answered at host:port, probed at the socket level."""
    where = f"{host}:{port}"
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
        reached = True
    except socket.gaierror:
        return CheckResult(
            "server", FAIL, f"{s.server_url}: the name {host!r} does not resolve",
            f"主机名 {host} 无法解析：检查 config.toml 中的 server_url 拼写和本机 DNS 设置，或改用 IP 地址",
            f"The name {host} does not resolve: check the spelling of server_url in config.toml "
            "and this PC's DNS settings, or use the server's IP address")
    except ConnectionRefusedError:
        return CheckResult(
            "server", FAIL, f"{s.server_url}: nothing listens on {where} (connection refused)",
            f"{where} 上没有服务在监听：确认大厅服务器已启动，并核对 server_url 中的端口",
            f"Nothing listens on {where}: check the hall server is running and the port in "
            "server_url is right")
    except OSError:
        reached = False
    if reached:
        return CheckResult(
            "server", FAIL, f"{s.server_url}: {where} accepts connections but {exc_en}",
            f"{where} 可以连接，但没有正常应答：确认该端口上运行的是大厅服务器，并查看服务器日志",
            f"{where} accepts connections but does not answer as the hall server: check what "
            "runs on that port and the server's log")
    return CheckResult(
        "server", FAIL, f"{s.server_url}: no answer from {where} ({exc_en})",
        "检查网线和网络；确认服务器地址和端口（config.toml 的 server_url）以及代理设置；"
        "在本机浏览器打开 <server_url>/api/v1/health 试试",
        "Check the cable and network; check server_url and proxy in config.toml; try "
        "<server_url>/api/v1/health in a browser on this PC")


def check_server(s: Settings, *, now: Callable[[], float] = time.time,
                 refused_url: str | None = None) -> list[CheckResult]:
    from api_client import HallClient, errors

    out: list[CheckResult] = []
    if refused_url is not None:
        return [CheckResult(
            "server address", FAIL,
            f"{refused_url} refused: plain http to another machine carries passwords in clear; "
            "the server was not contacted",
            "把 config.toml 中的 server_url 改为服务器的 https:// 地址（并在 ca_bundle 中配置大厅 CA）",
            "Set server_url in config.toml to the server's https:// address (with the hall CA "
            "in ca_bundle)")]
    https = s.server_url.lower().startswith("https://")
    host, port = _host_port(s.server_url)
    if https and s.ca_bundle:
        problem = _ca_problem(s.ca_bundle)
        if problem is not None:
            return [problem, CheckResult("server", INFO, "not contacted: fix the CA bundle first")]
    client = HallClient(s.server_url, ca_bundle=s.ca_bundle, proxies=s.proxies,
                        max_retries=0, timeout=(3.05, 5.0))
    try:
        t0 = now()
        health = client.health()
        t1 = now()
    except errors.ApiTLSError as exc:
        if s.proxy is None and speaks_plain_http(host, port):
            return [CheckResult(
                "server", FAIL,
                f"{s.server_url}: the server speaks plain http on that port, not https",
                f"{host}:{port} 上的服务器使用明文 http：请为服务器启用 TLS（nginx 或 uvicorn 证书，见 "
                "docs/deploy.md），或在 server_url 中填写服务器的 https 端口；不要改用 http://",
                f"The server on {host}:{port} speaks plain http: turn TLS on at the server "
                "(nginx or uvicorn with a certificate, see docs/deploy.md), or put the server's "
                "https port in server_url; do not switch the desk to http://")]
        verdict = tls_verdict(host, port, s.ca_bundle) if s.proxy is None else None
        en, zh = verdict or (exc.message_en, exc.message_zh)
        return [
            CheckResult("server", FAIL, f"{s.server_url}: TLS refused", "见下一行 TLS",
                        "See the TLS line below"),
            CheckResult(
                "TLS", FAIL, en,
                f"{zh}。在 config.toml 的 ca_bundle 中配置签发服务器证书的 CA（PEM 文件，当前："
                f"{s.ca_bundle or '系统默认'}），并确认服务器地址与证书中的主机名一致",
                f"Set ca_bundle in config.toml to the PEM file of the CA that issued the server's "
                f"certificate (now: {s.ca_bundle or 'system default'}), and check the server "
                "address matches the certificate's host name")]
    except errors.ApiError as exc:
        if not https and s.proxy is None and speaks_tls(host, port):
            return [CheckResult(
                "server", FAIL, f"{s.server_url}: the server expects https on that port",
                f"{host}:{port} 上的服务器要求 https：把 config.toml 中的 server_url 改为 "
                f"https://{host}:{port}，并在 ca_bundle 中配置大厅 CA",
                f"The server on {host}:{port} expects https: set server_url in config.toml to "
                f"https://{host}:{port} with the hall CA in ca_bundle")]
        if s.proxy is not None:
            return [CheckResult(
                "server", FAIL, f"{s.server_url} through proxy {redact_url(s.proxy)}: "
                f"{exc.message_en}",
                "检查代理（config.toml 的 proxy）及其到服务器的连接",
                "Check the proxy (proxy in config.toml) and its route to the server")]
        return [_unreachable(s, host, port, exc.message_en)]
    finally:
        client.close()
    out.append(CheckResult("server", OK, f"{health.status}, version {health.version}, "
                           f"database {health.database}, {(t1 - t0) * 1000:.0f} ms"))
    if https:
        out.append(CheckResult("TLS", OK, f"certificate verified with {s.ca_bundle or 'system CAs'}"))
    elif is_loopback_url(s.server_url):
        out.append(CheckResult("TLS", INFO, "plain http to this PC (loopback): nothing crosses "
                                            "the network"))
    else:
        # Only reachable with IT's override; the desk runs, but doctor does not call it healthy.
        out.append(CheckResult(
            "TLS", FAIL, "plain http to another machine (allow_insecure_http = true): staff "
                         "passwords and the device secret cross the network unencrypted",
            "为服务器启用 https，把 server_url 改为 https:// 地址，并删除 allow_insecure_http",
            "Turn https on at the server, set server_url to its https:// address and remove "
            "allow_insecure_http"))
    # The server's clock read at the middle of the round trip.
    local_mid = (t0 + t1) / 2
    skew = health.time.timestamp() - local_mid
    status = FAIL if abs(skew) > SKEW_FAIL_S else WARN if abs(skew) > SKEW_WARN_S else OK
    ahead = "ahead of" if skew > 0 else "behind"
    zh, en = clock_remedy()
    out.append(CheckResult(
        "clock", status,
        f"server {abs(skew):.1f} s {ahead} this PC (server {health.time.isoformat()}, "
        f"local {datetime.fromtimestamp(local_mid, UTC).isoformat(timespec='seconds')})",
        zh, en))
    out.append(_check_identity(s))
    return out


def _check_identity(s: Settings) -> CheckResult:
    """The server answering at server_url is the one this PC was set up for (setup --machine
    records its hall code and server id): an address that now points to another hall's server,
    or to a rebuilt one with a new secret, is said here, not discovered by a failing sign-in."""
    from api_client import HallClient, errors

    client = HallClient(s.server_url, ca_bundle=s.ca_bundle, proxies=s.proxies,
                        max_retries=0, timeout=(3.05, 5.0))
    try:
        ident = client.identity()
    except errors.ApiError as exc:
        return CheckResult("server identity", INFO, f"not available: {exc.message_en}")
    finally:
        client.close()
    seen = f"hall {ident.hall_code}, server id {ident.server_id}"
    if not s.server_id:
        return CheckResult(
            "server identity", WARN, f"{seen}; this PC has none recorded (set up before it existed)",
            "以管理员身份重新运行 counter-app setup --machine，记录服务器身份",
            "Run counter-app setup --machine again as administrator to record the server identity")
    if ident.server_id != s.server_id or ident.hall_code != s.hall_code:
        return CheckResult(
            "server identity", FAIL,
            f"{s.server_url} answers as {seen}; this PC was set up for hall {s.hall_code}, "
            f"server id {s.server_id}",
            "服务器地址现在指向另一台服务器（或重建后密钥已变）：核对 config.toml 的 server_url；"
            "确属新服务器时以管理员身份重新运行 counter-app setup --machine 并重新登记",
            "The server address now reaches another server (or one rebuilt with a new secret): "
            "check server_url in config.toml; if it is the hall's new server, run counter-app "
            "setup --machine again as administrator and enrol again")
    return CheckResult("server identity", OK, f"{seen}, as set up")


def server_timed_out(timeout_s: float) -> list[CheckResult]:
    return [CheckResult("server", FAIL, f"no complete answer in {timeout_s:.0f} s",
                        "检查网络、代理和服务器负载；查看服务器日志",
                        "Check the network, the proxy and the server's load; see its log")]


# ---- devices, outbox ---------------------------------------------------------------------------


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
        # No promise about "saved ratings" here: there is nothing saved on this PC.
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
    if not os.access(db, os.W_OK) or not os.access(db.parent, os.W_OK):
        return [CheckResult("outbox", FAIL, f"{db} is read-only for this user: {depth} waiting "
                                            "items cannot be marked as sent",
                            f"给当前用户授予 {db.parent} 及其中文件的写权限",
                            f"Give this user write access to {db.parent} and its files")]
    age = None if oldest is None else max(0.0, now() - float(oldest))
    detail = f"{depth} waiting" + (f", oldest {age / 60:.0f} min" if age is not None else "")
    detail += f", {dead} refused by the server"
    status = OK
    if dead:
        status = WARN
    if age is not None and age > OUTBOX_OLD_WARN_S:
        status = WARN
    return [CheckResult("outbox", status, detail,
                        f"本机已保存的 {depth} 条待发送评价会在联网后自动上传；若长时间不减少，先检查"
                        "服务器连接；被拒绝的项请运行 support-bundle 交技术支持",
                        f"The {depth} ratings saved on this PC are uploaded automatically once "
                        "the server is reachable; if they do not go down, check the server line "
                        "above; refused items: make a support bundle for support")]


def _timed_out(name: str) -> Callable[[float], list[CheckResult]]:
    def report_it(timeout_s: float) -> list[CheckResult]:
        return [CheckResult(name, FAIL, f"no answer in {timeout_s:.0f} s",
                            "该检查超时：运行 support-bundle 并联系技术支持",
                            "This check hung: make a support bundle and contact support")]
    return report_it


def run_checks(loaded: LoadedSettings, machine_path: Path,
               *, now: Callable[[], float] = time.time,
               timeouts: dict[str, float] | None = None) -> list[CheckResult]:
    s = loaded.settings
    limits = {**TIMEOUTS, **(timeouts or {})}
    steps = [
        Step("config", lambda: check_config(loaded, machine_path), _timed_out("config")),
        Step("folders", lambda: check_folders(s), _timed_out("folders")),
        Step("keyring", lambda: check_keyring(s), keyring_timed_out),
        Step("server", lambda: check_server(s, now=now, refused_url=loaded.refused_server_url),
             server_timed_out),
        Step("devices", lambda: check_devices(s), _timed_out("devices")),
        Step("outbox", lambda: check_outbox(s, now=now), _timed_out("outbox")),
        # The signed update metadata expire (issue 13): warn 48 h ahead (counter_app.update_health).
        Step("updates", lambda: check_update_metadata(s, now=now), _timed_out("update metadata")),
    ]
    results: list[CheckResult] = []
    for step in steps:
        results.extend(run_bounded(step, limits[step.key]))
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
    config: Path | None = getattr(args, "config", None)
    loaded = load_settings(config, getattr(args, "prefs", None))
    stream = out or sys.stdout
    rc = report(run_checks(loaded, config or machine_config_path()), stream)
    stream.flush()
    return rc


def add_parser(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check config, folders, keyring, server, TLS, clock, outbox")
    p.set_defaults(handler=main)
