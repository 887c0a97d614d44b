"""The `counter-app` command line: run the desk, the demo, the headless check, the self-test
and the IT subcommands (setup, doctor, support-bundle, update: their parsers live in their
counter_app modules).

This module is part of the composition root, so it imports `ui` and (for the demo) `hall_server`
with plain import statements. Those imports sit inside the commands that need them: `--version`,
`doctor`, `setup`, `update` and `support-bundle` never load Tk and need no display.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from counter_app import __version__
from counter_app.config import (
    LoadedSettings,
    Settings,
    clerk_warnings,
    load_settings,
    with_overrides,
)
from counter_app.errors import CounterError

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="counter-app",
                                description="Counter desk for a government service hall window")
    p.add_argument("--version", action="version", version=f"counter-app {__version__}")
    p.add_argument("--config", type=Path, help="machine config file (default: platform folder)")
    p.add_argument("--prefs", type=Path, help="user preference file (default: platform folder)")
    p.add_argument("--debug", action="store_true", help="log at DEBUG and to stderr")
    sub = p.add_subparsers(dest="command")
    d = sub.add_parser("demo", help="run the desk against an in-process demo hall server")
    d.add_argument("--headless-check", action="store_true",
                   help="no window: start everything, sign in, call one ticket, print OK")
    d.add_argument("--arrival-rate", type=float, default=6.0, help="tickets per minute")
    d.add_argument("--no-second-window", action="store_true",
                   help="do not run the simulated window 2")
    d.add_argument("--lang", choices=("zh", "en"), help="language of the desk")
    d.add_argument("--pad-port", type=int, default=8765,
                   help="port of the demo's evaluator pad page on 127.0.0.1 (default 8765)")
    p.add_argument("--self-test", action="store_true",
                   help="check this installation (theme, translations, keyring, SQLite, TLS)")
    p.add_argument("--first-frame-exit", action="store_true", help=argparse.SUPPRESS)
    # Packaging and IT subcommands (setup, doctor, support-bundle, update) live in their modules.
    from counter_app import doctor, provisioning, support, updates

    for mod in (provisioning, doctor, support, updates):
        mod.add_parser(sub)
    return p


def _load(args: argparse.Namespace) -> LoadedSettings:
    return load_settings(args.config, args.prefs)


def _setup_logs(settings: Settings, debug: bool) -> Path | None:
    from counter_app.logging_setup import setup_logging

    try:
        return setup_logging(settings.log_dir, level=logging.DEBUG if debug else logging.INFO,
                             console=debug)
    except OSError as exc:
        print(f"cannot write logs to {settings.log_dir}: {exc}", file=sys.stderr)
        return None


def _run_ui(settings: Settings, demo_credentials: tuple[str, str] | None = None,
            warnings: Sequence[tuple[str, str]] = ()) -> int:
    from counter_desk.wiring import build_app
    from ui.app import DeskApp, show_startup_error

    try:
        app: DeskApp = build_app(settings, warnings=warnings)
    except CounterError as exc:
        # A desk that cannot open its local data (another desk holds it, a newer version wrote
        # it) says so in both languages and exits; anything else is a bug and propagates.
        log.error("desk cannot start: %s", exc)
        show_startup_error(exc.message_zh, exc.message_en, settings.log_dir)
        return 2
    if demo_credentials is not None:
        app.sign_in(*demo_credentials)
    from counter_desk import shutdown

    shutdown.install(app)  # SIGTERM / logoff: sign out and close the window (PC shutdown)
    from ui import clerk_script  # test-only input (frozen-build suite), off unless its env is set

    clerk_script.attach(app)
    return app.mainloop()


def cmd_desk(args: argparse.Namespace) -> int:
    loaded = _load(args)
    _setup_logs(loaded.settings, args.debug)
    for w in loaded.warnings:
        log.warning("config: %s", w)
    return _run_ui(loaded.settings, warnings=clerk_warnings(loaded))


def _demo_settings(args: argparse.Namespace, url: str, root: Path) -> Settings:
    base = _load(args).settings
    s = with_overrides(base, server_url=url, window_no=1, ca_bundle=None, proxy=None,
                       data_dir=root / "desk", log_dir=base.log_dir, idle_lock_minutes=0,
                       # the tablet pad is the demo hall server's client: <server>/pad/
                       pad_transport="lan", pad_listen_host="127.0.0.1",
                       pad_listen_port=args.pad_port)
    if args.lang:
        s = with_overrides(s, language=args.lang)
    return s


def cmd_demo(args: argparse.Namespace) -> int:
    from counter_desk import demo

    root = Path(tempfile.mkdtemp(prefix="counter-demo-"))
    settings: Settings | None = None
    server = demo.start_demo_server(root / "server", arrival_rate=args.arrival_rate)
    sim: demo.SimulatedWindow | None = None
    try:
        settings = _demo_settings(args, server.url, root)
        _setup_logs(settings, args.debug)
        demo.seed_queue(server.url)
        if not args.no_second_window:
            sim = demo.SimulatedWindow(server.url)
            sim.start()
        if args.headless_check:
            return headless_check(settings)
        print(f"demo hall server at {server.url}; desk at window {demo.DEMO_WINDOW} "
              f"as staff {demo.DEMO_STAFF[0]}")
        print(f"evaluator pad page: {server.url}/pad/ (pair it at {server.url}/pair/ as "
              "supervisor 8001 / demo1234, then type the fingerprint the pad shows)")
        return _run_ui(settings, demo_credentials=demo.DEMO_STAFF)
    finally:
        if sim is not None:
            sim.stop()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def headless_check(settings: Settings) -> int:
    """Sign in at window 1, make sure a ticket waits, call it; print OK. For CI without a display."""
    from counter_desk import demo
    from counter_desk.wiring import build_core

    core = build_core(settings)
    try:
        me = core.session.sign_in(*demo.DEMO_STAFF)
        window = me.window
        if window is None or not window.categories:
            print("FAIL: signed in without a window", file=sys.stderr)
            return 1
        # Issue one ticket ourselves so the check does not depend on the simulator's timing.
        core.client.issue_ticket(window.categories[0])
        ticket = core.desk.call_next()
        if ticket is None:
            print("FAIL: no ticket to call", file=sys.stderr)
            return 1
        ok = core.live.wait_for(lambda s: s.current is not None and s.current.id == ticket.id)
        if not ok:
            print("FAIL: the live queue never showed the called ticket", file=sys.stderr)
            return 1
        print(f"OK signed in {me.staff.staff_no} at window {window.no}, called {ticket.number}, "
              f"desk {core.desk.state}, connection {core.live.connection_state or 'starting'}")
        core.session.sign_out()
        return 0
    except CounterError as err:
        print(f"FAIL: {err.message_en} [{err.code}]", file=sys.stderr)
        return 1
    finally:
        core.close()


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print what IT needs to diagnose a desk without a developer; exit 1 on any problem."""
    from counter_app import doctor

    return doctor.main(args)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.self_test:
            from counter_desk import selftest

            return selftest.main(_load(args).settings)
        if args.first_frame_exit:
            from counter_desk import selftest

            return selftest.first_frame_exit(_load(args).settings)
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "doctor":
            return cmd_doctor(args)
        if args.command == "support-bundle":
            from counter_app import support
            from counter_desk import selftest

            # The bundle carries the whole self-test (services, theme, translations), which
            # only the composition root can run.
            return support.main(args, self_test=selftest.main)
        handler = getattr(args, "handler", None)
        if handler is not None:
            return int(handler(args))
        return cmd_desk(args)
    except CounterError as err:
        print(err.message("en"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
