"""`counter-app setup`: write the machine config and enrol this PC at its window.

Unattended (every value as a flag, for a deployment script) or interactive (prompts for what is
missing when stdin is a terminal). Order matters so nothing is wasted or half-done:

1. the values are checked with the same rules the desk reads them with (config.load_settings on
   the would-be file), and a CA bundle must load as PEM;
2. the keyring is checked *before* the one-time enrollment code is spent: on a `fail`, `null` or
   plaintext backend nothing is persisted and the code stays usable;
3. the PC is enrolled (`POST /devices/enroll`); another PC already at the window is a 409
   `window_has_device`, reported with the `--replace` hint;
4. the device credential goes to the OS keyring, then the config file is replaced atomically.
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from counter_app.config import dumps_flat_toml, load_settings, machine_config_path

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
    p = sub.add_parser("setup", help="write the machine config and enrol this PC (IT)")
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
           inp: TextIO, out: TextIO) -> tuple[dict[str, Any], str | None]:
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
        if code is None:
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


def validate(values: dict[str, Any]) -> None:
    """Check the values with the desk's own config rules; raise SetupError listing problems."""
    problems_zh: list[str] = []
    problems_en: list[str] = []
    with tempfile.TemporaryDirectory(prefix="counter-setup-") as tmp:
        probe = Path(tmp) / "config.toml"
        probe.write_text(dumps_flat_toml(values), encoding="utf-8")
        loaded = load_settings(probe, Path(tmp) / "no-prefs.toml")
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


def enroll(values: dict[str, Any], code: str, *, replace: bool, hostname: str) -> str:
    """Enrol and store the credential in the keyring; returns the device id."""
    from api_client import HallClient, errors
    from counter_app.credentials import (
        CredentialStore,
        DeviceCredential,
        backend_status,
        select_os_backend_if_frozen,
    )

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
    proxy = values.get("proxy")
    client = HallClient(str(values["server_url"]), ca_bundle=values.get("ca_bundle"),
                        proxies={"http": proxy, "https": proxy} if proxy else None,
                        max_retries=1)
    try:
        cred = client.enroll(code, int(values["window_no"]), hostname, replace=replace)
    except errors.ConflictError as exc:
        if exc.code == "window_has_device":
            raise SetupError(
                f"窗口 {values['window_no']} 已登记了另一台电脑。若本机替换那台电脑，"
                "请加 --replace 重新运行（需要新的登记码）；否则请检查窗口号",
                f"another PC is already enrolled at window {values['window_no']}. If this PC "
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
    store = CredentialStore(str(values["server_url"]))
    if not store.save(DeviceCredential(cred.device_id, cred.device_secret)):
        raise SetupError(
            "已登记但设备凭据无法写入密钥环；请修复密钥环后用新的登记码加 --replace 重新登记",
            "enrolled, but the device credential could not be written to the keyring; fix the "
            "keyring and enrol again with a new code and --replace", EXIT_KEYRING)
    return cred.device_id


def run_setup(args: argparse.Namespace, *, inp: TextIO | None = None,
              out: TextIO | None = None) -> SetupResult:
    inp = inp or sys.stdin
    out = out or sys.stdout
    path: Path = (getattr(args, "config_path", None) or getattr(args, "config", None)
                  or machine_config_path())
    interactive = (not getattr(args, "no_input", False)) and inp.isatty()
    values, code = gather(args, _existing(path), interactive=interactive, inp=inp, out=out)
    validate(values)
    device_id = None
    if code:
        device_id = enroll(values, code, replace=bool(getattr(args, "replace", False)),
                           hostname=socket.gethostname())
    try:
        write_config(path, values)
    except OSError as exc:
        raise SetupError(f"无法写入 {path}：{exc.strerror}（请以管理员身份运行）",
                         f"cannot write {path}: {exc.strerror} (run as administrator)") from exc
    return SetupResult(path, values, device_id, device_id is not None)


def main(args: argparse.Namespace) -> int:
    try:
        result = run_setup(args)
    except SetupError as err:
        print(f"setup failed / 设置失败:\n  {err.message_en}\n  {err.message_zh}", file=sys.stderr)
        return err.exit_code
    print(f"config written: {result.config_path}")
    if result.enrolled:
        print(f"enrolled at window {result.values['window_no']} as device {result.device_id}; "
              "the credential is in the OS keyring / 已登记，设备凭据保存在系统密钥环中")
    else:
        print("not enrolled (no enrollment code given) / 未登记（没有登记码）")
    return EXIT_OK
