"""`counter-app support-bundle [--out PATH]`: one zip IT can send to support.

Holds the log files (already masked when written; masked again here in case an old file predates
the filter), the machine config and the user preferences with any secret-looking value removed,
the versions (the app, Python, every installed distribution, the OS), the self-test and the
doctor report. Never the keyring's content, never the local databases (they hold citizens' data).
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time
import tomllib
import zipfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from counter_app import __version__
from counter_app.config import Settings, load_settings, machine_config_path, user_config_path
from counter_app.doctor import redact_url
from counter_app.logging_setup import mask_text

#: Writes a self-test report for these settings to the stream; returns its exit code.
SelfTest = Callable[[Settings, TextIO], int]

SECRET_WORDS = ("secret", "password", "passwd", "token", "code", "key")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("support-bundle", help="zip logs, config (no secrets), versions, doctor")
    p.add_argument("--out", type=Path, help="zip file to write (default: in the current folder)")
    p.set_defaults(handler=main)


def redact_config(path: Path) -> str:
    """The TOML file's text with secret-looking keys and any userinfo in URLs removed."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return f"# unreadable: {exc}\n"
    except tomllib.TOMLDecodeError as exc:
        return f"# not valid TOML ({exc}); content withheld\n"
    out: dict[str, Any] = {}
    for key, value in data.items():
        if any(w in key.lower() for w in SECRET_WORDS):
            out[key] = "<removed>"
        elif isinstance(value, str):
            out[key] = redact_url(value)
        else:
            out[key] = value
    return mask_text(json.dumps(out, ensure_ascii=False, indent=2, default=str)) + "\n"


def _scrub(text: str, proxy: str | None) -> str:
    # A library message might quote the proxy URL with its password: never in the bundle.
    if proxy and proxy != redact_url(proxy):
        text = text.replace(proxy, str(redact_url(proxy)))
    return mask_text(text)


def versions() -> dict[str, Any]:
    dists = sorted({(d.metadata["Name"] or "?", d.version) for d in metadata.distributions()})
    return {
        "counter_app": __version__,
        "python": sys.version,
        "executable": sys.executable,
        "frozen": bool(getattr(sys, "frozen", False)),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": {name: version for name, version in dists},
    }


def make_bundle(out_path: Path, *, config: Path | None = None, prefs: Path | None = None,
                self_test: SelfTest | None = None) -> Path:
    """Write the zip; returns its path. `self_test` writes the self-test report (the
    composition root passes the whole one; by default the headless checks of this package)."""
    from counter_app import doctor, selftest

    loaded = load_settings(config, prefs)
    s = loaded.settings
    mpath = config or machine_config_path()
    upath = prefs or user_config_path()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("versions.json", json.dumps(versions(), indent=2, ensure_ascii=False))
        for name, path in (("config/machine-config.json", mpath),
                           ("config/user-prefs.json", upath)):
            zf.writestr(name, redact_config(path) if path.exists() else "# absent\n")
        buf = io.StringIO()
        (self_test or selftest.main)(s, buf)
        zf.writestr("self-test.txt", _scrub(buf.getvalue(), s.proxy))
        buf = io.StringIO()
        doctor.report(doctor.run_checks(loaded, mpath), buf)
        zf.writestr("doctor.txt", _scrub(buf.getvalue(), s.proxy))
        if s.log_dir.is_dir():
            for f in sorted(s.log_dir.iterdir()):
                if f.is_file() and ".log" in f.name:
                    text = f.read_text(encoding="utf-8", errors="replace")
                    zf.writestr(f"logs/{f.name}", mask_text(text))
    return out_path


def main(args: argparse.Namespace, self_test: SelfTest | None = None) -> int:
    out: Path = args.out or Path.cwd() / time.strftime("counter-app-support-%Y%m%d-%H%M%S.zip")
    try:
        path = make_bundle(out, config=getattr(args, "config", None),
                           prefs=getattr(args, "prefs", None), self_test=self_test)
    except OSError as exc:
        print(f"cannot write {out}: {exc} / 无法写入 {out}", file=sys.stderr)
        return 1
    print(f"support bundle written / 支持包已生成: {path}")
    return 0
