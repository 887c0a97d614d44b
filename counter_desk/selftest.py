"""`counter-app --self-test`: does this build (frozen or from source) have what the desk needs?

Checks what the installer is responsible for, not the hall's network (that is `doctor`):
customtkinter's themes and fonts and our own theme, the gettext catalogs, the keyring backend,
SQLite with WAL and synchronous=FULL, the TLS CA bundle, the pad port, the scanner backends (the
headless ones are `counter_app.selftest`'s), and then every service the desk runs, built by the
real wiring in a scratch data folder: catalog, matter search (pypinyin's data), outbox,
documents store/service/upload (with a real PDF assembly), the pad and the update service. One
line per check; exit 1 if any check failed, so a build that lost a module or a data file fails
here instead of degrading quietly at the counter.

The desk's first-frame timing hook (`--first-frame-exit`, used by bench/bench_startup.py) lives
here too.
"""

from __future__ import annotations

import gettext
import io
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from counter_app import selftest as headless
from counter_app.config import Settings, with_overrides
from counter_app.selftest import FAIL, INFO, OK, CheckResult

REINSTALL_ZH = "重新安装本程序（安装包不完整）"
REINSTALL_EN = "Reinstall the application (the bundle is incomplete)"


def check_theme() -> list[CheckResult]:
    from ui.resources import resource_path

    out: list[CheckResult] = []
    ctk = headless.package_dir("customtkinter")
    if ctk is None:
        return [CheckResult("customtkinter", FAIL, "not importable", REINSTALL_ZH, REINSTALL_EN)]
    assets = ctk / "assets"
    themes = sorted(p.name for p in (assets / "themes").glob("*.json"))
    fonts = sorted(p.name for p in (assets / "fonts").rglob("*") if p.suffix in (".ttf", ".otf"))
    out.append(CheckResult(
        "customtkinter themes", OK if "blue.json" in themes else FAIL,
        f"{len(themes)} in {assets / 'themes'}", "重新安装本程序（缺少界面主题文件）",
        "Reinstall the application (theme files are missing)"))
    out.append(CheckResult(
        "customtkinter fonts", OK if any("Roboto" in f for f in fonts) else FAIL,
        f"{len(fonts)} font files", "重新安装本程序（缺少字体文件）",
        "Reinstall the application (font files are missing)"))
    try:
        theme = Path(resource_path("theme", "counter.json"))
        json.loads(theme.read_text(encoding="utf-8"))
        out.append(CheckResult("desk theme", OK, str(theme)))
    except (OSError, ValueError) as exc:
        out.append(CheckResult("desk theme", FAIL, f"{type(exc).__name__}: {exc}",
                               "重新安装本程序（缺少 ui/theme）",
                               "Reinstall the application (ui/theme is missing)"))
    return out


def check_translations() -> list[CheckResult]:
    from ui.resources import resource_path

    localedir = Path(resource_path("locale"))
    out = []
    for lang, locale in (("zh", "zh_CN"), ("en", "en")):
        try:
            t = gettext.translation("counter", localedir=str(localedir), languages=[locale])
            # A catalog that loads but holds nothing is as bad as none: count its messages.
            n = len(getattr(t, "_catalog", {}))
            out.append(CheckResult(f"translations {lang}", OK if n > 1 else FAIL,
                                   f"{n} messages ({localedir / locale})",
                                   "重新安装本程序（翻译目录为空）",
                                   "Reinstall the application (the catalog is empty)"))
        except OSError as exc:
            out.append(CheckResult(f"translations {lang}", FAIL, f"{locale}: {exc}",
                                   "重新安装本程序（缺少 .mo 翻译文件）",
                                   "Reinstall the application (.mo catalogs are missing)"))
    return out


class _Collect(logging.Handler):
    """Keeps the warnings the wiring logs while building (they say why a service is off)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _tiny_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buf, "PNG")
    return buf.getvalue()


def check_services(settings: Settings | None = None) -> list[CheckResult]:
    """Build every service with the real wiring (scratch data folder, no network, nothing
    started) and say for each whether it is there and works."""
    s = settings or Settings()
    try:
        from counter_app.catalog import Catalog
        from counter_app.documents import pdf
        from counter_app.documents.page import Page
        from counter_app.documents.service import DocumentService
        from counter_app.documents.store import DocumentStore
        from counter_app.documents.upload import DocumentUploader
        from counter_app.outbox import Outbox
        from counter_app.search import compute_keys
        from counter_desk import wiring
    except ImportError as exc:
        return [CheckResult("services", FAIL, f"a service module is missing: {exc}",
                            REINSTALL_ZH, REINSTALL_EN)]
    tmp = Path(tempfile.mkdtemp(prefix="counter-selftest-services-"))
    collect = _Collect()
    logging.getLogger().addHandler(collect)
    out: list[CheckResult] = []
    try:
        probe = with_overrides(s, data_dir=tmp / "data")
        try:
            core = wiring.build_core(probe, start_updates=False)
        except Exception as exc:  # the desk would not start either
            return [CheckResult("services", FAIL, f"{type(exc).__name__}: {exc}",
                                REINSTALL_ZH, REINSTALL_EN)]
        try:
            def fail(name: str, why: str) -> CheckResult:
                return CheckResult(name, FAIL, why, REINSTALL_ZH, REINSTALL_EN)

            cat = core.catalog
            out.append(CheckResult("catalog", OK, f"{cat.count()} matters cached")
                       if isinstance(cat, Catalog) else fail("catalog", "not built"))
            keys = compute_keys("社保")
            found = cat.search("sb") if isinstance(cat, Catalog) else None
            out.append(CheckResult("search", OK, "pinyin keys and index work")
                       if keys == ("she bao", "sb") and found == [] else
                       fail("search", f"pinyin keys {keys!r}, search {found!r}"))
            box = core.outbox
            out.append(CheckResult("outbox", OK, f"depth {box.depth()}")
                       if isinstance(box, Outbox) else fail("outbox", "not built"))
            docs = core.documents
            if isinstance(docs, DocumentService):
                out.append(CheckResult("documents store", OK, str(docs.store.root))
                           if isinstance(docs.store, DocumentStore)
                           else fail("documents store", "not built"))
                out.append(CheckResult("documents upload", OK, "registered on the outbox")
                           if isinstance(docs.uploader, DocumentUploader)
                           else fail("documents upload", "not built"))
                made = pdf.assemble([Page(_tiny_png(), pdf.MIME_PNG, "probe.png")])
                out.append(CheckResult("documents service", OK, f"PDF assembly {len(made)} B")
                           if made.startswith(b"%PDF") else
                           fail("documents service", "PDF assembly gave no PDF"))
            else:
                why = "; ".join(collect.lines) or "not built"
                out.append(fail("documents service", why))
            kind = wiring.pad_kind(probe)
            if kind == "none":
                out.append(CheckResult("pad", INFO, "no pad configured"))
            elif kind == "second_screen":
                from ui.pad_window import SecondScreenPad

                out.append(CheckResult("pad", OK, f"second screen ({SecondScreenPad.__name__}, "
                                                  "built with the window)"))
            elif core.pad is not None:
                out.append(CheckResult("pad", OK, f"{kind} ({type(core.pad.transport).__name__})"))
            else:
                out.append(CheckResult("pad", FAIL, f"{kind}: " + ("; ".join(collect.lines)
                                                                   or "not built"),
                                       "检查 config.toml 中的评价器设置",
                                       "Check the pad settings in config.toml"))
            if not probe.update_url:
                out.append(CheckResult("updates", INFO, "off (no update_url)"))
            elif core.updates is not None:
                out.append(CheckResult("updates", OK, f"from {probe.update_url}"))
            else:
                out.append(CheckResult("updates", FAIL, "; ".join(collect.lines) or "not built",
                                       "检查 update_url 和安装目录（update_install_root）",
                                       "Check update_url and the install folder "
                                       "(update_install_root)"))
        finally:
            core.close()
    finally:
        logging.getLogger().removeHandler(collect)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def run_checks(settings: Settings | None = None) -> list[CheckResult]:
    """Every check: the UI's files, the headless checks, then the services."""
    results: list[CheckResult] = []
    checks: list[tuple[str, Callable[[], Iterable[CheckResult]]]] = [
        ("theme", check_theme), ("translations", check_translations),
        ("headless", lambda: headless.run_checks(settings)),
        ("services", lambda: check_services(settings)),
    ]
    for name, check in checks:
        try:
            results.extend(check())
        except Exception as exc:  # one broken check must not hide the others
            results.append(CheckResult(name, FAIL, f"{type(exc).__name__}: {exc}",
                                       REINSTALL_ZH, REINSTALL_EN))
    return results


def main(settings: Settings | None = None, out: TextIO | None = None) -> int:
    """Print the report; 0 if nothing failed, 1 otherwise."""
    return headless.report(run_checks(settings), out or sys.stdout)


def _seconds_since_start() -> float | None:
    """Seconds since this process started (for the first-frame figure), if knowable."""
    if sys.platform.startswith("linux"):
        # Start time in clock ticks since boot vs. now since boot: both on the same clock
        # (psutil's create_time adds the boot time, which /proc only gives in whole seconds).
        try:
            fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
            started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
            return time.clock_gettime(time.CLOCK_BOOTTIME) - started
        except (OSError, ValueError, IndexError):
            return None
    try:
        import psutil  # type: ignore[import-untyped,unused-ignore]

        return time.time() - float(psutil.Process().create_time())
    except ImportError:
        return None


def first_frame_exit(settings: Settings) -> int:
    """Open the desk's root window, wait for its first <Map>, print the time, exit.

    Prints `first-frame <seconds since process start>`; the benchmark also times the process
    from outside, which does not depend on how the start time is read.
    """
    import tkinter as tk

    from counter_desk.wiring import build_app

    app = build_app(settings)
    mapped: list[float] = []

    def on_map(_e: tk.Event[tk.Misc]) -> None:
        if not mapped:
            mapped.append(_seconds_since_start() or -1.0)

    app.root.bind("<Map>", on_map, add="+")
    while not mapped:
        app.root.update()
        time.sleep(0.001)
    app.root.update_idletasks()
    print(f"first-frame {mapped[0]:.4f}", flush=True)
    app.destroy()
    try:
        app.core.close()
    except Exception:  # the process is about to end; nothing to keep
        pass
    return 0
