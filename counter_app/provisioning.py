"""`counter-app setup` and `counter-app enroll`: put a window PC into service, never half-way.

Two steps, for the two people who have the rights for them (docs/operations.md):

- **machine** (IT, as administrator/root): `counter-app setup --machine --server-url ... --window N`
  writes the system-wide machine config. It contacts the server (right scheme, CA, clock; the
  same diagnosis `doctor` gives) and records the hall's identity (`GET /api/v1/identity`: hall
  code and server id) in the config. No keyring and no enrollment code are involved.
- **enrol** (the clerk, in their own desktop session): `counter-app enroll --enrollment-code C`
  reads the machine config, spends the one-time code and stores the device credential in the
  clerk's keyring, keyed by the hall identity (not the address, so http->https or a new host
  name keeps it).

`counter-app setup` without `--machine` does both at once (one account owns config and keyring:
a lab, a single-user Windows PC). Whatever the mode, every precondition is checked BEFORE the
one-time code is spent, so a failure wastes nothing and the same code works on the retry:

1. the values pass the desk's own config rules (config.load_settings) and a CA bundle loads;
2. the config file can be written (a probe file in its folder) — when this step writes it;
3. the keyring is on the allow-list AND usable: a probe entry is written, read back and deleted
   under a deadline (a locked keyring waiting for an unlock prompt is reported, not waited for);
4. the server answers with the configured scheme and CA, its clock is sane, and its identity
   matches the hall in the machine config (enrol) or the hall code given (machine);
5. only then the PC is enrolled; a 409 `window_has_device` is reported with the `--replace`
   hint; the credential goes to the keyring, then the config file is replaced atomically.
"""

from __future__ import annotations

import argparse
import os
import queue
import socket
import ssl
import sys
import tempfile
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

from counter_app.config import Settings, dumps_flat_toml, load_settings, machine_config_path

T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_KEYRING = 0, 1, 2, 3, 4

# flag name -> config key
FIELDS = {
    "server_url": "server_url",
    "hall": "hall_code",
    "window": "window_no",
    "ca_bundle": "ca_bundle",
    "proxy": "proxy",
    "pad_transport": "pad_transport",
    "scanner_source": "scanner_source",
}
PROMPTS = {
    "server_url": ("服务器地址", "Server address (https://...)"),
    "hall_code": ("大厅代码", "Hall code"),
    "window_no": ("窗口号", "Window number"),
    "ca_bundle": ("CA 证书文件（PEM，可留空）", "CA bundle file (PEM, empty for system CAs)"),
    "proxy": ("代理（可留空）", "Proxy (empty for none)"),
    "pad_transport": ("评价器连接方式 lan/serial/second_screen/none",
                      "Pad transport lan/serial/second_screen/none"),
    "scanner_source": ("扫描仪 sane/folder/none", "Scanner source sane/folder/none"),
    "enrollment_code": ("一次性登记码（可留空，稍后登记）",
                        "One-time enrollment code (empty to enrol later)"),
}
REQUIRED = ("server_url", "window_no")


class SetupError(Exception):
    """A setup step failed; carries both languages and the exit code."""

    def __init__(self, message_zh: str, message_en: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message_en)
        self.message_zh = message_zh
        self.message_en = message_en
        self.exit_code = exit_code


@dataclass
class SetupResult:
    config_path: Path
    values: dict[str, Any]
    device_id: str | None
    enrolled: bool


def add_parser(sub: Any) -> None:
    p = sub.add_parser("setup", help="write the machine config (--machine: IT, as root) and/or "
                                     "enrol this PC")
    p.add_argument("--machine", action="store_true",
                   help="the IT step only: write the machine config (run as administrator/root); "
                        "the clerk enrols afterwards with `counter-app enroll`")
    p.add_argument("--server-url", help="hall server root, e.g. https://hall.example:8443")
    p.add_argument("--hall", help="hall code")
    p.add_argument("--window", type=int, help="window number of this PC")
    p.add_argument("--ca-bundle", help="PEM file of the intranet CA")
    p.add_argument("--proxy", help="proxy URL (from config only; environment is ignored)")
    p.add_argument("--pad-transport", choices=("lan", "web", "serial", "second_screen", "none"))
    p.add_argument("--scanner-source", choices=("sane", "folder", "none"))
    p.add_argument("--enrollment-code", help="one-time code from `hall-server enrollment-code`")
    p.add_argument("--config-path", type=Path, help="where to write (default: machine config)")
    p.add_argument("--replace", action="store_true",
                   help="take over the window from a PC enrolled there before")
    p.add_argument("--no-input", action="store_true", help="never prompt, even on a terminal")
    p.set_defaults(handler=main)
    e = sub.add_parser("enroll", help="the clerk's step: enrol this PC with a one-time code "
                                      "(stores the device credential in the clerk's keyring)")
    e.add_argument("--enrollment-code", required=True,
                   help="one-time code from `hall-server enrollment-codes` / `enrollment-code`")
    e.add_argument("--config-path", type=Path, help="machine config to read (default: system)")
    e.add_argument("--replace", action="store_true",
                   help="take over the window from a PC enrolled there before")
    e.set_defaults(handler=enroll_main)


def _existing(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return dict(tomllib.load(fh))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}


def _prompt(key: str, default: Any, inp: TextIO, out: TextIO) -> str:
    zh, en = PROMPTS[key]
    shown = f" [{default}]" if default not in (None, "") else ""
    print(f"{zh} / {en}{shown}: ", end="", file=out, flush=True)
    answer = inp.readline()
    if answer == "":
        raise SetupError("输入已结束", "input ended", EXIT_BAD_INPUT)
    return answer.strip() or ("" if default is None else str(default))


def gather(args: argparse.Namespace, current: dict[str, Any], *, interactive: bool,
           inp: TextIO, out: TextIO, ask_code: bool = True) -> tuple[dict[str, Any], str | None]:
    """The config values (existing file, then flags, then prompts) and the enrollment code."""
    values = dict(current)
    for flag, key in FIELDS.items():
        v = getattr(args, flag, None)
        if v is not None:
            values[key] = v
    code: str | None = getattr(args, "enrollment_code", None)
    if interactive:
        for key in ("server_url", "hall_code", "window_no", "ca_bundle", "proxy",
                    "pad_transport", "scanner_source"):
            flag = next(f for f, k in FIELDS.items() if k == key)
            if getattr(args, flag, None) is None:
                values[key] = _prompt(key, values.get(key), inp, out)
        if code is None and ask_code:
            code = _prompt("enrollment_code", None, inp, out) or None
    # Empty answers mean "not set" (TOML has no null: absent is the default).
    values = {k: v for k, v in values.items() if v not in ("", None)}
    if "window_no" in values and isinstance(values["window_no"], str):
        try:
            values["window_no"] = int(values["window_no"])
        except ValueError:
            raise SetupError(f"窗口号必须是整数：{values['window_no']!r}",
                             f"the window number must be a whole number: "
                             f"{values['window_no']!r}", EXIT_BAD_INPUT) from None
    missing = [k for k in REQUIRED if k not in values]
    if missing:
        raise SetupError("缺少必填项：" + "、".join(missing) + "（用参数给出，或在终端中交互运行）",
                         "missing required values: " + ", ".join(missing)
                         + " (give them as flags, or run interactively in a terminal)",
                         EXIT_BAD_INPUT)
    return values, code


def validate(values: dict[str, Any]) -> Settings:
    """Check the values with the desk's own config rules; raise SetupError listing problems."""
    problems_zh: list[str] = []
    problems_en: list[str] = []
    with tempfile.TemporaryDirectory(prefix="counter-setup-") as tmp:
        probe = Path(tmp) / "config.toml"
        probe.write_text(dumps_flat_toml(values), encoding="utf-8")
        loaded = load_settings(probe, Path(tmp) / "no-prefs.toml")
        settings = loaded.settings
        for w in loaded.warnings:
            problems_zh.append(getattr(w, "message_zh", str(w)).replace(str(probe), "setup"))
            problems_en.append(getattr(w, "message_en", str(w)).replace(str(probe), "setup"))
    ca = values.get("ca_bundle")
    if ca:
        try:
            ssl.create_default_context(cafile=str(ca))
        except (OSError, ssl.SSLError) as exc:
            problems_zh.append(f"CA 证书文件 {ca} 无法读取或不是 PEM 证书（{exc}）")
            problems_en.append(f"the CA bundle {ca} cannot be read or is not a PEM certificate "
                               f"({exc})")
    if problems_en:
        raise SetupError("；".join(problems_zh), "; ".join(problems_en), EXIT_BAD_INPUT)
    return settings


# ---- preconditions (nothing is spent before all of them hold) ------------------------------------
KEYRING_TIMEOUT_S = 10.0
SERVER_TIMEOUT_S = 25.0


def bounded(fn: Callable[[], T], timeout_s: float, what: str) -> T:
    """Run `fn` in a daemon thread; raise TimeoutError after `timeout_s` (a keyring unlock
    prompt nobody answers must not hang an unattended install)."""
    box: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

    def work() -> None:
        try:
            box.put((True, fn()))
        except BaseException as exc:  # handed to the caller
            box.put((False, exc))

    threading.Thread(target=work, name=f"setup-{what}", daemon=True).start()
    try:
        ok, value = box.get(timeout=timeout_s)
    except queue.Empty:
        raise TimeoutError(f"{what}: no answer in {timeout_s:.0f} s") from None
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


def check_writable(path: Path) -> None:
    """The config file's folder accepts a new file (the machine config needs admin/root)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".setup-probe-", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise SetupError(
            f"无法写入机器配置 {path}（{exc.strerror or exc}），登记码未使用。请由管理员执行："
            "sudo counter-app setup --machine …（Windows：以管理员身份运行），"
            "再由柜员在自己的会话中执行 counter-app enroll --enrollment-code …",
            f"cannot write the machine config {path} ({exc.strerror or exc}); the enrollment "
            "code was not used. IT runs the machine step as administrator: sudo counter-app "
            "setup --machine ... (Windows: run as administrator), then the clerk, in their own "
            "session: counter-app enroll --enrollment-code ...", EXIT_FAILED) from exc


def check_keyring(store: Any) -> None:
    """The keyring is on the allow-list, unlocked and keeps what it is given."""
    import keyring.errors

    from counter_app.credentials import backend_status, select_os_backend_if_frozen
    from counter_app.doctor import keyring_remedy, locked_keyring_remedy

    select_os_backend_if_frozen()
    st = backend_status()
    if not st.safe:
        # Checked before the code is spent, so IT can fix the keyring and use the same code.
        raise SetupError(
            f"密钥环 {st.name} 不安全（{st.reason}），设备凭据不会被保存，登记码未使用。"
            "Windows 请在正常登录的会话中运行；Linux 请启动 gnome-keyring 后重试",
            f"the keyring {st.name} is not safe ({st.reason}): the device credential will not "
            "be stored and the enrollment code was not used. On Windows run in a normal logon "
            "session; on Linux start gnome-keyring (Secret Service) and try again",
            EXIT_KEYRING)
    try:
        bounded(store.probe, KEYRING_TIMEOUT_S, "keyring")
    except (keyring.errors.KeyringLocked, TimeoutError) as exc:
        zh, en = locked_keyring_remedy()
        raise SetupError(f"密钥环已锁定或在等待解锁（{exc}），登记码未使用。{zh}",
                         f"the keyring is locked or waiting to be unlocked ({exc}); the "
                         f"enrollment code was not used. {en}", EXIT_KEYRING) from exc
    except Exception as exc:  # noqa: BLE001 - any backend failure: nothing spent, say which
        zh, en = keyring_remedy()
        raise SetupError(f"密钥环无法使用（{type(exc).__name__}: {exc}），登记码未使用。{zh}",
                         f"the keyring cannot be used ({type(exc).__name__}: {exc}); the "
                         f"enrollment code was not used. {en}", EXIT_KEYRING) from exc


def check_server(settings: Settings) -> Any:
    """The server answers with this scheme, CA and a sane clock; returns its HallIdentity."""
    from api_client import HallClient, errors
    from counter_app import doctor
    from counter_app.selftest import FAIL

    try:
        results = bounded(lambda: doctor.check_server(settings), SERVER_TIMEOUT_S, "server")
    except TimeoutError:
        results = doctor.server_timed_out(SERVER_TIMEOUT_S)
    failed = [r for r in results if r.status == FAIL]
    if failed:
        raise SetupError(
            "服务器检查未通过，登记码未使用：" + "；".join(
                f"{r.name}: {r.detail} → {r.remedy_zh}" for r in failed),
            "the server check failed; the enrollment code was not used: " + "; ".join(
                f"{r.name}: {r.detail} -> {r.remedy_en}" for r in failed), EXIT_FAILED)
    client = HallClient(settings.server_url, ca_bundle=settings.ca_bundle,
                        proxies=settings.proxies, max_retries=1)
    try:
        return client.identity()
    except errors.ApiError as exc:
        raise SetupError(f"无法读取服务器的大厅标识（{exc.message_zh}）；服务器版本是否过旧？",
                         f"cannot read the server's hall identity ({exc.message_en}); is the "
                         "hall server older than this desk?", EXIT_FAILED) from exc
    finally:
        client.close()


def write_config(path: Path, values: dict[str, Any]) -> None:
    """Replace the machine config atomically (a crash leaves the old or the new file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("# written by `counter-app setup`; secrets are never stored here\n")
            fh.write(dumps_flat_toml(values))
            fh.flush()
            os.fsync(fh.fileno())
        # Everyone reads the machine config; only its owner (IT) writes it.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def enroll(settings: Settings, store: Any, code: str, *, replace: bool, hostname: str) -> str:
    """Spend the code and store the credential in the keyring; returns the device id.

    Only called once every precondition held (run_setup / run_enroll)."""
    from api_client import HallClient, errors
    from counter_app.credentials import DeviceCredential

    window_no = settings.window_no
    client = HallClient(settings.server_url, ca_bundle=settings.ca_bundle,
                        proxies=settings.proxies, max_retries=1)
    try:
        cred = client.enroll(code, int(window_no), hostname, replace=replace)
    except errors.ConflictError as exc:
        if exc.code == "window_has_device":
            raise SetupError(
                f"窗口 {window_no} 已登记了另一台电脑。若本机替换那台电脑，"
                "请加 --replace 重新运行（需要新的登记码）；否则请检查窗口号",
                f"another PC is already enrolled at window {window_no}. If this PC "
                "replaces it, run again with --replace (with a new enrollment code); otherwise "
                "check the window number", EXIT_REFUSED) from exc
        raise SetupError(exc.message_zh, exc.message_en, EXIT_REFUSED) from exc
    except errors.ApiStatusError as exc:
        raise SetupError(f"服务器拒绝登记：{exc.message_zh}（登记码是否已用过或过期？）",
                         f"the server refused the enrollment: {exc.message_en} (was the code "
                         "already used, or has it expired?)", EXIT_REFUSED) from exc
    except errors.ApiError as exc:
        raise SetupError(f"无法登记：{exc.message_zh}", f"cannot enrol: {exc.message_en}",
                         EXIT_FAILED) from exc
    finally:
        client.close()
    if not store.save(DeviceCredential(cred.device_id, cred.device_secret)):
        raise SetupError(
            "已登记但设备凭据无法写入密钥环；请修复密钥环后用新的登记码加 --replace 重新登记",
            "enrolled, but the device credential could not be written to the keyring; fix the "
            "keyring and enrol again with a new code and --replace", EXIT_KEYRING)
    return str(cred.device_id)


def _same_hall(values: dict[str, Any], ident: Any, given_hall: str | None) -> None:
    """The server is the hall IT meant (a code typed for another hall is refused)."""
    if given_hall and given_hall != ident.hall_code:
        raise SetupError(
            f"服务器 {values['server_url']} 是大厅 {ident.hall_code}，不是 {given_hall}；请检查地址",
            f"the server {values['server_url']} is hall {ident.hall_code}, not {given_hall}: "
            "check the address", EXIT_REFUSED)
    old = values.get("server_id")
    if old and old != ident.server_id and not given_hall:
        raise SetupError(
            f"服务器 {values['server_url']} 不是本机配置的大厅（标识不同）；若大厅确实更换了服务器，"
            "请加 --hall 重新运行机器设置并重新登记",
            f"the server {values['server_url']} is not the hall this PC was set up for (another "
            "server id); if the hall really has a new server, run the machine step again with "
            "--hall and enrol again", EXIT_REFUSED)


def run_setup(args: argparse.Namespace, *, inp: TextIO | None = None,
              out: TextIO | None = None) -> SetupResult:
    inp = inp or sys.stdin
    out = out or sys.stdout
    path: Path = (getattr(args, "config_path", None) or getattr(args, "config", None)
                  or machine_config_path())
    machine = bool(getattr(args, "machine", False))
    interactive = (not getattr(args, "no_input", False)) and inp.isatty()
    values, code = gather(args, _existing(path), interactive=interactive, inp=inp, out=out,
                          ask_code=not machine)
    if machine and code:
        raise SetupError("--machine 只写机器配置；登记请由柜员在自己的会话中运行 "
                         "counter-app enroll --enrollment-code …",
                         "--machine writes the machine config only; the clerk enrols in their "
                         "own session with `counter-app enroll --enrollment-code ...`",
                         EXIT_BAD_INPUT)
    settings = validate(values)
    check_writable(path)
    from counter_app.credentials import CredentialStore

    if code:
        check_keyring(CredentialStore.for_settings(settings))
    if code or machine:
        ident = check_server(settings)
        _same_hall(values, ident, getattr(args, "hall", None))
        values["hall_code"], values["server_id"] = ident.hall_code, ident.server_id
        settings = validate(values)
    device_id = None
    if code:
        device_id = enroll(settings, CredentialStore.for_settings(settings), code,
                           replace=bool(getattr(args, "replace", False)),
                           hostname=socket.gethostname())
    try:
        write_config(path, values)
    except OSError as exc:
        raise SetupError(f"无法写入 {path}：{exc.strerror}（请以管理员身份运行 setup --machine；"
                         "本机已登记，无需新的登记码）",
                         f"cannot write {path}: {exc.strerror} (run `setup --machine` as "
                         "administrator; this PC is enrolled, no new code is needed)") from exc
    return SetupResult(path, values, device_id, device_id is not None)


def run_enroll(args: argparse.Namespace) -> SetupResult:
    """The clerk's step: enrol with the machine config IT wrote; writes no config."""
    from counter_app.credentials import CredentialStore

    path: Path = (getattr(args, "config_path", None) or getattr(args, "config", None)
                  or machine_config_path())
    values = _existing(path)
    if not values.get("server_url") or not values.get("server_id"):
        raise SetupError(
            f"机器配置 {path} 缺少服务器地址或大厅标识：请先由管理员运行 sudo counter-app setup "
            "--machine --server-url … --window …",
            f"the machine config {path} has no server address or hall identity: IT runs "
            "`sudo counter-app setup --machine --server-url ... --window ...` first",
            EXIT_BAD_INPUT)
    settings = validate(values)
    store = CredentialStore.for_settings(settings)
    check_keyring(store)
    ident = check_server(settings)
    _same_hall(values, ident, None)
    device_id = enroll(settings, store, str(args.enrollment_code),
                       replace=bool(getattr(args, "replace", False)),
                       hostname=socket.gethostname())
    return SetupResult(path, values, device_id, True)


def enroll_main(args: argparse.Namespace) -> int:
    try:
        result = run_enroll(args)
    except SetupError as err:
        print(f"enrolment failed / 登记失败:\n  {err.message_en}\n  {err.message_zh}",
              file=sys.stderr)
        return err.exit_code
    print(f"enrolled at window {result.values['window_no']} of hall {result.values['hall_code']}"
          f" as device {result.device_id}; the credential is in this user's keyring / "
          "已登记，设备凭据保存在本用户的系统密钥环中")
    return EXIT_OK


def main(args: argparse.Namespace) -> int:
    try:
        result = run_setup(args)
    except SetupError as err:
        print(f"setup failed / 设置失败:\n  {err.message_en}\n  {err.message_zh}", file=sys.stderr)
        return err.exit_code
    print(f"config written: {result.config_path}")
    if getattr(args, "machine", False):
        print(f"hall {result.values['hall_code']} (server id {result.values['server_id']}); "
              "now the clerk runs, in their own session: counter-app enroll --enrollment-code "
              "CODE / 机器配置已写入，请柜员在自己的会话中运行 counter-app enroll")
    elif result.enrolled:
        print(f"enrolled at window {result.values['window_no']} as device {result.device_id}; "
              "the credential is in the OS keyring / 已登记，设备凭据保存在系统密钥环中")
    else:
        print("not enrolled (no enrollment code given) / 未登记（没有登记码）")
    return EXIT_OK
