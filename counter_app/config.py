"""Typed settings with their defaults, read from TOML: machine config and user preferences.

Machine config (server, hall, window number, CA bundle, proxy, pad and scanner, folders) lives in
the platform's machine-wide config folder so IT can deploy it; user preferences (language,
scaling, appearance, alerts) live beside the user. Environment variables override the paths
(COUNTER_MACHINE_CONFIG, COUNTER_USER_CONFIG, COUNTER_DATA_DIR, COUNTER_LOG_DIR). A file that
cannot be read or parsed is renamed to `<name>.corrupt`, defaults are used, and a warning is
returned for the user; a bad single value falls back to its default with a warning.

The server address must be https (issue 10, finding 11: with http the staff passwords and the
device secret cross the hall LAN in clear). Plain `http://` is accepted only for a loopback host
(the demo, a server on the same PC) or when the machine config sets `allow_insecure_http = true`,
IT's explicit override, which is logged at every load. Otherwise the address is refused like any
invalid value (default used, a warning naming the remedy, `LoadedSettings.refused_server_url`
keeps it for `doctor`), and `Settings` itself refuses to be built with such an address, so no code
path can hand one to the client.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import tempfile
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from counter_app.errors import ConfigError

log = logging.getLogger(__name__)

APP_NAME = "counter-app"
CONFIG_FILE = "config.toml"
PREFS_FILE = "prefs.toml"

# Which keys each file may set: IT owns the machine file, the user only their preferences.
USER_KEYS = frozenset(
    {"language", "scaling", "appearance", "alert_sound", "alert_flash", "idle_lock_minutes"}
)


def _default_data_dir() -> Path:
    env = os.environ.get("COUNTER_DATA_DIR")
    return Path(env) if env else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def _default_log_dir() -> Path:
    env = os.environ.get("COUNTER_LOG_DIR")
    return Path(env) if env else Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


@dataclass(frozen=True)
class Settings:
    """Every setting of the desk, with its default."""

    # https by default (finding 11); the demo overrides this with its own loopback server.
    server_url: str = "https://127.0.0.1:8443"
    # IT's explicit override for plain http to a non-loopback server (lab only; logged; doctor
    # fails on it). Machine config only.
    allow_insecure_http: bool = False
    hall_code: str = "GXQ"
    # The hall server's identity (GET /api/v1/identity), recorded by `counter-app setup`: the
    # device credential is keyed by it, not by server_url (counter_app.credentials).
    server_id: str = ""
    window_no: int = 1
    ca_bundle: str | None = None
    proxy: str | None = None
    language: str = "zh"  # "zh" | "en"
    scaling: float = 1.0
    appearance: str = "light"  # "light" | "dark"
    idle_lock_minutes: int = 10
    alert_sound: bool = True
    alert_flash: bool = True
    # No pad until IT configures one: "lan" opens a port on the hall LAN, which is a decision.
    pad_transport: str = "none"  # "lan" | "serial" | "second_screen" | "none" ("web" = "lan")
    pad_listen_host: str = "0.0.0.0"
    pad_listen_port: int = 8765
    pad_screen_geometry: str = "+1280+0"  # where the second-screen pad window goes
    pad_serial_port: str = ""
    pad_serial_baud: int = 9600
    # The second-generation ID card reader (counter_app/idcard, docs/applicant.md): a serial or
    # USB-CDC port speaking the GA 467 frames; empty: no reader (the clerk types the details).
    idcard_port: str = ""
    idcard_baud: int = 115200
    # Or a vendor SDK library (SDT_* functions, loaded with ctypes) instead of the serial port;
    # `idcard_port` is then the SDK's port number (e.g. "1001" for the first USB reader).
    idcard_sdk: str = ""
    scanner_source: str = "folder"  # "sane" | "folder" | "none"
    scanner_device: str = ""
    scanner_folder: str = ""
    # Signed updates (counter_app/updates.py): an empty URL turns them off.
    update_url: str = ""
    update_check_minutes: int = 360
    update_install_root: str = ""  # empty: the folder holding the running app's version folders
    update_root_json: str = ""  # empty: the trust root shipped in the app (update-root.json)
    data_dir: Path = field(default_factory=_default_data_dir)
    log_dir: Path = field(default_factory=_default_log_dir)

    def __post_init__(self) -> None:
        reason = insecure_http_reason(self.server_url, self.allow_insecure_http)
        if reason is not None:
            raise InsecureServerUrlError(message_en=f"{self.server_url}: {reason}")

    @property
    def proxies(self) -> dict[str, str] | None:
        """The proxy as requests wants it (from config only; trust_env stays off)."""
        return {"http": self.proxy, "https": self.proxy} if self.proxy else None


class InsecureServerUrlError(ConfigError):
    """A plain-http server address to a host other than this PC, without IT's override."""

    default_zh = ("明文 http:// 服务器地址会让密码在网络上以明文传输，已拒绝；请改用服务器的 https:// 地址"
                  "（仅实验环境可在机器配置中设置 allow_insecure_http = true）")


def is_loopback_url(url: str) -> bool:
    """True if the URL's host is this PC (localhost, 127.0.0.0/8, ::1)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def insecure_http_reason(url: str, allow_insecure_http: bool = False) -> str | None:
    """Why `url` may not be used as the server address, or None if it may."""
    if not url.lower().startswith("http://") or is_loopback_url(url) or allow_insecure_http:
        return None
    return ("plain http:// to another machine sends passwords unencrypted; use the server's "
            "https:// address (or, in a lab only, set allow_insecure_http = true in the machine "
            "config)")


_CHOICES: dict[str, tuple[str, ...]] = {
    "language": ("zh", "en"),
    "appearance": ("light", "dark"),
    "pad_transport": ("lan", "web", "serial", "second_screen", "none"),
    "scanner_source": ("sane", "folder", "none"),
}
_RANGES: dict[str, tuple[float, float]] = {
    "window_no": (1, 9999),
    "scaling": (0.5, 4.0),
    "idle_lock_minutes": (0, 24 * 60),
    "pad_listen_port": (1, 65535),
    "pad_serial_baud": (300, 4_000_000),
    "idcard_baud": (300, 4_000_000),
    "update_check_minutes": (5, 7 * 24 * 60),
}


class ConfigWarning(str):
    """A warning for the user: a `str` (zh / en joined) that also knows both languages."""

    message_zh: str
    message_en: str

    def __new__(cls, message_zh: str, message_en: str) -> ConfigWarning:
        obj = super().__new__(cls, f"{message_zh} / {message_en}")
        obj.message_zh = message_zh
        obj.message_en = message_en
        return obj

    def message(self, lang: str) -> str:
        return self.message_en if lang.lower().startswith("en") else self.message_zh


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    warnings: list[str]
    # A plain-http server address the config asked for and that was refused (finding 11).
    refused_server_url: str | None = None


def machine_config_path() -> Path:
    """Where IT deploys the machine config (env COUNTER_MACHINE_CONFIG overrides)."""
    env = os.environ.get("COUNTER_MACHINE_CONFIG")
    if env:
        return Path(env)
    return Path(platformdirs.site_config_dir(APP_NAME, appauthor=False)) / CONFIG_FILE


def user_config_path() -> Path:
    """Where the user's preferences live (env COUNTER_USER_CONFIG overrides)."""
    env = os.environ.get("COUNTER_USER_CONFIG")
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / PREFS_FILE


def _quarantine(path: Path, why: str, warnings: list[str]) -> None:
    corrupt = path.with_name(path.name + ".corrupt")
    try:
        os.replace(path, corrupt)
        kept_zh, kept_en = f"已改名为 {corrupt.name}", f"it was renamed to {corrupt.name}"
    except OSError as exc:
        log.warning("could not rename %s: %s", path, exc)
        kept_zh, kept_en = "且无法改名", "and could not be renamed"
    log.warning("config file %s unreadable (%s); defaults used", path, why)
    warnings.append(ConfigWarning(
        f"配置文件 {path} 无法读取（{why}），{kept_zh}，已使用默认设置",
        f"The config file {path} could not be read ({why}); {kept_en} and defaults are used",
    ))


def _read_toml(path: Path, warnings: list[str]) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        _quarantine(path, f"TOML: {exc}", warnings)
    except OSError as exc:
        _quarantine(path, exc.strerror or type(exc).__name__, warnings)
    return {}


def _coerce(name: str, ftype: Any, value: Any) -> Any:
    """Check and convert one value; raises ValueError with a short reason."""
    t = str(ftype)
    if name in ("data_dir", "log_dir"):
        if not isinstance(value, str) or not value:
            raise ValueError("expected a folder path")
        return Path(value).expanduser()
    if t in ("str | None",):
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ValueError("expected text")
        return value
    if t == "bool":
        if not isinstance(value, bool):
            raise ValueError("expected true or false")
        return value
    if t == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("expected a whole number")
    elif t == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("expected a number")
        value = float(value)
    elif t == "str":
        if not isinstance(value, str):
            raise ValueError("expected text")
        if name == "server_url" and not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// address")
        if name == "update_url" and value and not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// address, or nothing (updates off)")
    if name == "pad_transport" and value == "web":
        value = "lan"  # the name used before the transports were settled
    if name in _CHOICES and value not in _CHOICES[name]:
        raise ValueError("expected one of " + ", ".join(_CHOICES[name]))
    if name in _RANGES:
        lo, hi = _RANGES[name]
        if not lo <= value <= hi:
            raise ValueError(f"expected {lo:g}..{hi:g}")
    return value


def _apply(values: dict[str, Any], allowed: frozenset[str] | None, path: Path,
           warnings: list[str]) -> dict[str, Any]:
    types = {f.name: f.type for f in fields(Settings)}
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in types or (allowed is not None and key not in allowed):
            log.warning("%s: unknown or not allowed setting %r ignored", path, key)
            warnings.append(ConfigWarning(
                f"{path}：设置项 {key} 未知或不允许在此文件中设置，已忽略",
                f"{path}: setting {key!r} is unknown or not allowed in this file; ignored",
            ))
            continue
        try:
            out[key] = _coerce(key, types[key], value)
        except ValueError as exc:
            warnings.append(ConfigWarning(
                f"{path}：设置项 {key} 的值无效（{exc}），已使用默认值",
                f"{path}: the value of {key!r} is invalid ({exc}); the default is used",
            ))
    return out


def load_settings(machine_path: Path | None = None,
                  user_path: Path | None = None) -> LoadedSettings:
    """Read the machine config then the user prefs; never raises for a bad file."""
    warnings: list[str] = []
    mpath = machine_path or machine_config_path()
    upath = user_path or user_config_path()
    values = _apply(_read_toml(mpath, warnings), None, mpath, warnings)
    values.update(_apply(_read_toml(upath, warnings), USER_KEYS, upath, warnings))
    # The folder environment variables win over files: tests and the demo isolate with them.
    if os.environ.get("COUNTER_DATA_DIR"):
        values["data_dir"] = Path(os.environ["COUNTER_DATA_DIR"])
    if os.environ.get("COUNTER_LOG_DIR"):
        values["log_dir"] = Path(os.environ["COUNTER_LOG_DIR"])
    refused = _check_http(values, mpath, warnings)
    return LoadedSettings(Settings(**values), warnings, refused)


def _check_http(values: dict[str, Any], path: Path, warnings: list[str]) -> str | None:
    """Apply the https rule to the merged values; returns the refused address, if any."""
    url = values.get("server_url")
    if not isinstance(url, str) or not url.lower().startswith("http://") or is_loopback_url(url):
        return None
    if values.get("allow_insecure_http"):
        log.warning("allow_insecure_http = true in %s: the server %s is reached over plain http; "
                    "staff passwords and the device secret cross the network unencrypted",
                    path, url)
        return None
    del values["server_url"]
    log.error("%s: server_url %s refused: plain http to another machine", path, url)
    warnings.append(ConfigWarning(
        f"{path}：服务器地址 {url} 使用明文 http，密码会在网络上以明文传输，已拒绝。请改用服务器的 "
        "https:// 地址（仅实验环境可在机器配置中设置 allow_insecure_http = true）",
        f"{path}: the server address {url} is plain http: passwords would cross the network "
        "unencrypted, so it was refused. Use the server's https:// address (in a lab only, set "
        "allow_insecure_http = true in the machine config)",
    ))
    return url


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, Path)):
        s = str(value)
        # A TOML basic string: escape backslash, quote and control characters.
        out = []
        for ch in s:
            if ch in ('"', "\\"):
                out.append("\\" + ch)
            elif ord(ch) < 0x20 or ord(ch) == 0x7F:
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dumps_flat_toml(values: dict[str, object]) -> str:
    """A tiny TOML writer for flat key = value files (str, bool, int, float, Path)."""
    lines = []
    for key, value in values.items():
        if value is None:
            continue  # TOML has no null: absence means the default
        if not key.replace("_", "").isalnum() or not key.isascii():
            raise ValueError(f"bad key {key!r}")
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def save_user_prefs(path: Path | None = None, **prefs: object) -> Path:
    """Merge `prefs` into the user's preference file, atomically; returns its path.

    Only user keys are accepted (ValueError otherwise, or for an invalid value), so the desk can
    never write machine settings into the user's file.
    """
    upath = path or user_config_path()
    types = {f.name: f.type for f in fields(Settings)}
    for key, value in prefs.items():
        if key not in USER_KEYS:
            raise ValueError(f"{key!r} is not a user preference")
        _coerce(key, types[key], value)
    current: dict[str, Any] = {}
    if upath.exists():
        try:
            with upath.open("rb") as fh:
                current = {k: v for k, v in tomllib.load(fh).items() if k in USER_KEYS}
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            current = {}  # already reported at load time; rewrite cleanly
    current.update(prefs)
    upath.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".prefs-", dir=upath.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(dumps_flat_toml(current))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, upath)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return upath


def with_overrides(settings: Settings, **changes: Any) -> Settings:
    """A copy of `settings` with some fields changed (the demo points at its own server)."""
    return dataclasses.replace(settings, **changes)


def clerk_warnings(loaded: LoadedSettings) -> list[tuple[str, str]]:
    """What the sign-in screen tells the clerk about this PC's config (zh, en): short, no paths
    or keys (those are for IT, in the log and in `counter-app doctor`)."""
    out: list[tuple[str, str]] = []
    if loaded.refused_server_url:
        out.append(("本机设置的服务器地址不安全（明文http），已拒绝，无法连接服务器。请联系信息科"
                    "（counter-app doctor 会说明处理办法）。",
                    "This PC's server address is not secure (plain http) and was refused, so the "
                    "server cannot be reached. Ask IT (counter-app doctor says how to fix it)."))
    others = len(loaded.warnings) - (1 if loaded.refused_server_url else 0)
    if others > 0:
        out.append((f"本机设置中有{others}项无效，已改用默认值。请联系信息科（counter-app doctor）。",
                    f"{others} setting(s) of this PC are invalid; defaults are used. Ask IT "
                    "(counter-app doctor)."))
    return out

