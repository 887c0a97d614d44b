"""`hall-server` command line: serve (with --demo and the arrival simulator) and the IT
subcommands that work directly on the database (create-staff, disable-staff,
set-window-categories, enrollment-code, migrate, check-db; hall set-up and administration — init,
staff, device, window, category, pause-reason, rating-reasons, rules, calendar, audit,
import-matters — are in hall_server/hallcli.py; pad-pair pairs an evaluator pad from the server box)."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from hall_server.settings import Settings


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - never print a password because the URL was odd
        return url.split("@")[-1]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="database URL (default: $HALL_DB_URL or a SQLite file in --data-dir)")
    p.add_argument("--data-dir", default=os.environ.get("HALL_DATA_DIR", "var"), type=Path)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="hall-server", description="Reference hall server (Hall API v1)")
    sub = ap.add_subparsers(dest="cmd")
    s = sub.add_parser("serve", help="run the server (the default)")
    _common(s)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8123)
    s.add_argument("--demo", action="store_true", help="seed the demo hall")
    s.add_argument("--arrival-rate", type=float, default=0.0, metavar="N", help="demo tickets per minute")
    s.add_argument("--require-device", action="store_true",
                   help="window logins need an enrolled PC (the default, except with --demo)")
    s.add_argument("--allow-unenrolled", action="store_true",
                   help="labs only: a PC that was never enrolled may open a window")
    s.add_argument("--tls-cert", type=Path, help="serve https with this PEM certificate (chain)")
    s.add_argument("--tls-key", type=Path, help="the certificate's PEM private key (0600)")
    s.add_argument("--stale-window-seconds", type=int, default=Settings().stale_window_seconds,
                   help="close a window whose desk was silent this long (0: never)")
    s.add_argument("--tz", default="Asia/Shanghai")
    s.add_argument("--public-url", default=os.environ.get("HALL_PUBLIC_URL", ""),
                   help="base address citizens' phones reach, for rate-later links (e.g. https://hall.example.gov.cn)")
    s.add_argument("--pad-host", action="append", default=[], metavar="NAME",
                   help="another host name the pad page and /pair/ answer to (besides the "
                        "--public-url host and loopback); repeatable")
    s.add_argument("--pad-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a pad setting for every citizen (docs/pad.md): pad_speak=on|off, "
                        "pad_high_contrast=on|off, pad_rating_seconds=N, pad_warn_seconds=N")
    s.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (PostgreSQL)")
    s.add_argument("--seed", type=int, default=1)

    m = sub.add_parser("migrate", help="create or upgrade the database schema")
    _common(m)

    c = sub.add_parser("create-staff", help="add a staff account (asks for the password)")
    _common(c)
    c.add_argument("staff_no")
    c.add_argument("--name-zh", required=True)
    c.add_argument("--name-en", default="")
    c.add_argument("--role", choices=["staff", "supervisor", "it_admin"], default="staff")
    c.add_argument("--password-stdin", action="store_true", help="read the password from stdin")

    d = sub.add_parser("disable-staff", help="disable a staff account (ends its sessions)")
    _common(d)
    d.add_argument("staff_no")
    d.add_argument("--enable", action="store_true", help="enable it again instead")

    w = sub.add_parser("set-window-categories", help="set the categories a window serves")
    _common(w)
    w.add_argument("window_no", type=int)
    w.add_argument("categories", nargs="+")

    e = sub.add_parser("enrollment-code", help="make a one-time enrollment code for a window PC")
    _common(e)
    e.add_argument("window_no", type=int)

    k = sub.add_parser("check-db", help="check the schema revision and the event log (exit 0 ok, 1 problem, 2 unreachable)")
    _common(k)
    k.add_argument("--keep-hours", type=float, default=24.0, help="event retention the servers use")

    from hall_server import hallcli, ops

    hallcli.add_commands(sub, _common)
    ops.add_parsers(sub, _common)
    from hall_server import followup_cli

    followup_cli.add_commands(sub, _common)  # followups, export-ratings, push-ratings
    _display_parser(sub)

    r = sub.add_parser("rotate-applicant-key", help="new applicant data key; re-encrypt every record")
    _common(r)
    pa = sub.add_parser("purge-applicants", help="delete applicant records past the retention")
    _common(pa)
    pa.add_argument("--days", type=int, default=Settings().applicant_retention_days,
                    help="retention in days after the case (default: %(default)s)")

    pp = sub.add_parser("pad-pair", help="pair an evaluator pad at a window (IT, on the server box)")
    _common(pp)
    pp.add_argument("--window", type=int, required=True, dest="window_no")
    pp.add_argument("--public-url", default=os.environ.get("HALL_PUBLIC_URL", ""),
                    help="the hall server's address as the pad reaches it (for the QR code)")
    pp.add_argument("--wait", type=float, default=300.0, help="seconds to wait for the pad")
    pp.add_argument("--fingerprint-stdin", action="store_true",
                    help="read the fingerprint from stdin without a prompt (scripts, tests)")
    return ap


def _display_parser(sub: Any) -> None:
    """`hall-server display token|revoke|english`: the call display's keys and announcement."""
    cc = sub.add_parser("conclude", help="办结: record the back office's conclusion of an accepted case")
    _common(cc)
    cc.add_argument("case_no")
    cc.add_argument("--result", required=True, choices=["approved", "refused", "withdrawn"])
    cc.add_argument("--date", help="YYYY-MM-DD (default: today in the hall's time zone)")
    cc.add_argument("--note", default="")

    dp = sub.add_parser("display", help="call display (叫号屏): keys for TVs, English announcements",
                        description="Make the address a hall TV or window display opens "
                                    "(docs/display.md), revoke every display key, or switch the "
                                    "English announcement on or off.")
    dsub = dp.add_subparsers(dest="display_cmd", required=True)
    tk = dsub.add_parser("token", help="print the address (with its key) a display opens once")
    _common(tk)
    tk.add_argument("--window", type=int, default=None, metavar="N",
                    help="a key for the small display above window N only (default: the hall TV)")
    tk.add_argument("--url", default=os.environ.get("HALL_PUBLIC_URL", ""),
                    help="the server's address as the TV reaches it, e.g. http://10.0.0.5:8123")
    rv = dsub.add_parser("revoke", help="end every display key now (then make new ones)")
    _common(rv)
    en = dsub.add_parser("english", help="announce calls in English too (on) or not (off)")
    _common(en)
    en.add_argument("state", choices=["on", "off", "show"])


def display_command(ns: argparse.Namespace, store: Any) -> dict[str, Any]:
    """Run `hall-server display …` on the database (own function: docs/display.md)."""
    from hall_server import display
    from hall_server.app import _server_secret

    if ns.display_cmd == "token":
        secret = _server_secret(store, _settings(ns))  # from its file; made now if never run
        out: dict[str, Any] = store.write_sync(lambda tx: display.key_op(tx, ns.window, secret))
        base = (ns.url or "http://<server>:8123").rstrip("/")
        out["url"] = base + out.pop("path")
        return out
    if ns.display_cmd == "revoke":
        return dict(store.write_sync(display.revoke_op))
    on = None if ns.state == "show" else ns.state == "on"
    return dict(store.write_sync(lambda tx: display.english_op(tx, on)))


def _settings(ns: argparse.Namespace, **kw: Any) -> Settings:
    return Settings(data_dir=ns.data_dir, db_url=ns.db, **kw)


def _store(ns: argparse.Namespace) -> Any:
    from hall_server.db import Store

    settings = _settings(ns)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.database_url())
    store.migrate()
    return store


def serve(ns: argparse.Namespace) -> int:
    import uvicorn

    from hall_server.app import create_app
    from hall_server.settings import Settings

    if ns.allow_unenrolled and ns.require_device:
        print("error: --require-device and --allow-unenrolled contradict each other", file=sys.stderr)
        return 2
    if bool(ns.tls_cert) != bool(ns.tls_key):
        print("error: --tls-cert and --tls-key go together / 证书与私钥须同时给出", file=sys.stderr)
        return 2
    # Production refuses unenrolled desks; the demo and labs say so explicitly (docs/operations.md).
    require_device = ns.require_device or not (ns.allow_unenrolled or ns.demo)
    tls: dict[str, Any] = ({"ssl_certfile": str(ns.tls_cert), "ssl_keyfile": str(ns.tls_key)}
                           if ns.tls_cert else {})
    settings = Settings(
        data_dir=ns.data_dir, db_url=ns.db, demo=ns.demo, demo_history=ns.demo, arrival_rate=ns.arrival_rate,
        require_device=require_device, stale_window_seconds=ns.stale_window_seconds, timezone=ns.tz, seed=ns.seed, public_url=ns.public_url,
        pad_hosts=tuple(ns.pad_host), **pad_options(ns.pad_option),
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if ns.workers > 1 and settings.database_url().startswith("sqlite"):
        # SQLite has ONE writer per process; several processes would each have their own and
        # no shared event fan-out. Refuse before anything starts.
        print("error: --workers > 1 needs PostgreSQL (--db postgresql+psycopg://...); SQLite runs"
              " one process / 多进程（--workers 大于 1）需要 PostgreSQL 数据库，SQLite 只能单进程运行",
              file=sys.stderr)
        return 2
    scheme = "https" if tls else "http"
    print(f"hall-server listening on {scheme}://{ns.host}:{ns.port}  (API docs: /docs)", flush=True)
    print("window PCs must be enrolled (--require-device)" if require_device else
          "WARNING: unenrolled PCs may open windows (demo / --allow-unenrolled)", flush=True)
    print(f"database: {_redact(settings.database_url())}", flush=True)
    if ns.demo:
        print("demo hall: staff 1001..1012, supervisor 8001, IT 9001, password demo1234", flush=True)
    if not ns.demo:
        from hall_server.hallcli import require_hall

        rc = require_hall(settings.database_url())
        if rc:
            return rc
    if ns.workers > 1:
        # Several processes: migrate and seed once here, so the workers do not race each other
        # creating tables or seeding; each worker runs the app factory from the environment.
        from hall_server.db import Store
        from hall_server.seed import seed_demo

        store = Store(settings.database_url())
        try:
            store.migrate()
            if ns.demo:
                seed_demo(store, ns.seed)
        finally:
            store.close()
        os.environ["HALL_SERVER_SETTINGS"] = json.dumps({
            "data_dir": str(settings.data_dir), "db_url": settings.database_url(), "demo": ns.demo,
            "arrival_rate": 0.0, "require_device": require_device, "timezone": ns.tz,
            "stale_window_seconds": ns.stale_window_seconds,
            "migrate_on_start": False, "seed": ns.seed, "public_url": ns.public_url,
            "pad_hosts": list(ns.pad_host), **pad_options(ns.pad_option),
        })
        uvicorn.run("hall_server.cli:app_from_env", factory=True, host=ns.host, port=ns.port,
                    workers=ns.workers, log_level="warning", **tls)
        return 0
    uvicorn.run(create_app(settings), host=ns.host, port=ns.port, log_level="warning", **tls)
    return 0


def check_db(ns: argparse.Namespace) -> int:
    """Monitoring check, read-only (never migrates): one JSON report on stdout; exit 0 when
    healthy, 1 when something needs IT (schema behind, holes in the event log, counter behind
    the log, events kept too long), 2 when the database cannot be reached."""
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    from hall_server.db import alembic_config, now_ms

    url = _settings(ns).database_url()
    report: dict[str, Any] = {"database": _redact(url), "problems": []}
    problems: list[str] = report["problems"]
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    eng = create_engine(url, poolclass=NullPool)
    try:
        with eng.connect() as c:
            try:
                rev = c.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            except SQLAlchemyError:
                rev = None
                c.rollback()
            report["schema"] = {"revision": rev, "expected": head}
            if rev != head:
                problems.append(f"schema revision {rev} is not {head}: run `hall-server migrate`")
                print(json.dumps(report, ensure_ascii=False, indent=2))
                return 1
            lo, hi, n, oldest = c.exec_driver_sql(
                "SELECT MIN(id), MAX(id), COUNT(*), MIN(at_ms) FROM events"
            ).one()
            counter = c.exec_driver_sql("SELECT last_id FROM event_counter WHERE id = 1").scalar()
    except SQLAlchemyError as e:
        report["problems"].append(f"database unreachable: {str(e).splitlines()[0]}")
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 2
    finally:
        eng.dispose()
    ev: dict[str, Any] = {"count": int(n), "first_id": lo, "last_id": hi, "counter": counter}
    report["events"] = ev
    # Event ids are dense (commit-ordered, no holes; pruning only removes the oldest), so the
    # rows kept must be exactly first..last. In-flight transactions hold no ids yet.
    if n and int(hi) - int(lo) + 1 != int(n):
        ev["missing_ids"] = int(hi) - int(lo) + 1 - int(n)
        problems.append(f"event log has {ev['missing_ids']} missing ids between {lo} and {hi}")
    if counter is None:
        problems.append("event_counter row missing: run `hall-server migrate`")
    elif url.startswith("postgresql") and hi is not None and int(counter) < int(hi):
        problems.append(f"event_counter {counter} is behind the log's last id {hi}")
    if oldest is not None:
        age_h = (now_ms() - int(oldest)) / 3_600_000
        ev["oldest_hours"] = round(age_h, 2)
        # Pruning runs hourly in every server: one hour of slack, and one more for a restart.
        if age_h > ns.keep_hours + 2:
            problems.append(f"oldest event is {age_h:.1f} h old (kept {ns.keep_hours:g} h): is any hall-server running?")
    report["ok"] = not problems
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0 if not problems else 1


def pad_pair(ns: argparse.Namespace) -> int:
    """Pair a pad at a window from the server box: no window PC and no network sign-in.

    Prints the pad page's address with the one-time token (and a QR code for the terminal) and
    the 6-digit code; waits until a pad registers a key; shows the fingerprint the server
    received and asks for the one the pad shows. Only a match binds the key (pads.confirm)."""
    import time

    from sqlalchemy import select

    from hall_server import pads
    from hall_server import schema as t

    store = _store(ns)
    try:
        settings = _settings(ns)
        offer = store.write_sync(lambda tx: pads.create_pairing(
            tx, ns.window_no, "cli", max(settings.pad_pairing_seconds, int(ns.wait))))
        base = (ns.public_url or "http://<hall-server>").rstrip("/")
        url = f"{base}/pad/#pair={offer['token']}"
        print(f"window {ns.window_no}: open on the pad: {url}", flush=True)
        print(f"or type on the pad: window {ns.window_no}, code {offer['code']}", flush=True)
        try:
            import segno

            segno.make(url, error="m").terminal(compact=True)
        except Exception:  # noqa: BLE001 - the address above is enough
            pass
        confirm_ms = settings.pad_confirm_seconds * 1000
        deadline = time.monotonic() + ns.wait
        row: Any = None
        while time.monotonic() < deadline:
            row = store.read_sync(lambda c: c.execute(select(t.pad_pairings).where(
                t.pad_pairings.c.id == offer["pairing_id"])).mappings().first())
            if row is not None and row["public_key"]:
                break
            time.sleep(0.5)
        if row is None or not row["public_key"]:
            print("error: no pad registered in time", file=sys.stderr)
            return 1
        from hall_server.rating_check import fingerprint

        print(f"the server received the key of pad {row['pad_id']}: {fingerprint(row['public_key'])}",
              flush=True)
        if not ns.fingerprint_stdin:
            print("type the fingerprint the PAD shows (not the line above): ", end="", flush=True)
        typed = sys.stdin.readline().strip()
        out, err = store.write_sync(
            lambda tx: pads.confirm(tx, offer["pairing_id"], typed, "cli", confirm_ms))
        if err is not None:
            raise err
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    finally:
        store.close()


def pad_options(items: list[str]) -> dict[str, Any]:
    """`--pad-option KEY=VALUE` as Settings fields (hall_server/pad_options.py checks them)."""
    from hall_server.pad_options import parse_pad_options

    return parse_pad_options(items)


def app_from_env() -> Any:
    from hall_server.app import create_app

    raw = json.loads(os.environ["HALL_SERVER_SETTINGS"])
    raw["data_dir"] = Path(raw["data_dir"])
    raw["pad_hosts"] = tuple(raw.get("pad_hosts", ()))
    return create_app(Settings(**raw))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from hall_server import ops
    from hall_server.hallcli import COMMANDS as hall_commands

    known = {"serve", "migrate", "create-staff", "disable-staff", "set-window-categories",
             "enrollment-code", "check-db", "display",
             "rotate-applicant-key", "purge-applicants", "pad-pair", "conclude"} | hall_commands | ops.COMMANDS
    from hall_server.followup_cli import COMMANDS as followup_commands

    known |= followup_commands
    if not argv or (argv[0] not in known and argv[0] not in ("-h", "--help")):
        argv = ["serve", *argv]
    ns = build_parser().parse_args(argv)
    from hall_server.errors import ApiError

    try:
        return _dispatch(ns)
    except ApiError as e:
        print(f"error: {e.code}: {e.message_en} / {e.message_zh}", file=sys.stderr)
        for err in e.details.get("errors", [])[:50]:
            if isinstance(err, str):
                print(f"  {err}", file=sys.stderr)
            elif "line" in err:  # from a CSV/XLSX file: the row number its editor shows
                print(f"  line {err['line']}: {err.get('field')}: {err.get('message')}", file=sys.stderr)
            else:
                print(f"  row {err.get('row')}: {err.get('field')}: {err.get('message')}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _dispatch(ns: argparse.Namespace) -> int:
    if ns.cmd == "serve":
        return serve(ns)
    from hall_server import hallcli

    if ns.cmd in hallcli.COMMANDS:
        return hallcli.dispatch(ns, _store)
    from hall_server import followup_cli

    if ns.cmd in followup_cli.COMMANDS:
        return followup_cli.dispatch(ns, _store)
    if ns.cmd == "migrate":
        _store(ns).close()
        print("database schema is up to date")
        return 0
    if ns.cmd == "check-db":
        return check_db(ns)
    if ns.cmd == "pad-pair":
        return pad_pair(ns)
    from hall_server import ops

    if ns.cmd in ops.COMMANDS:
        print(json.dumps(ops.dispatch(ns, _store, _settings(ns)), ensure_ascii=False, indent=2))
        return 0
    from hall_server import admin, applicants
    from hall_server.hallcli import actor
    from hall_server.security import hash_password

    store = _store(ns)
    try:
        if ns.cmd == "create-staff":
            pw = sys.stdin.readline().rstrip("\n") if ns.password_stdin else getpass.getpass("password: ")
            if len(pw) < 8:
                raise ValueError("the password needs at least 8 characters")
            h = hash_password(pw)
            out: Any = store.write_sync(lambda tx: admin.create_staff_op(
                tx, ns.staff_no, ns.name_zh, ns.name_en, ns.role, h, actor=actor()))
        elif ns.cmd == "disable-staff":
            out = store.write_sync(lambda tx: admin.set_disabled_op(tx, ns.staff_no, not ns.enable, actor=actor()))
        elif ns.cmd == "set-window-categories":
            out = store.write_sync(lambda tx: admin.set_window_categories_op(
                tx, ns.window_no, ns.categories, actor=actor()))
        elif ns.cmd == "enrollment-code":
            out = store.write_sync(lambda tx: admin.enrollment_code_op(
                tx, ns.window_no, Settings().enrollment_code_seconds, actor=actor()))
        elif ns.cmd == "display":
            out = display_command(ns, store)
        elif ns.cmd == "conclude":
            from hall_server.lifecycle import conclude_cli

            out = conclude_cli(store, ns.case_no, ns.result, ns.date, ns.note, actor())
        elif ns.cmd == "rotate-applicant-key":
            out = applicants.rotate(store, ns.data_dir)
        elif ns.cmd == "purge-applicants":
            out = applicants.purge(store, ns.days)
        else:
            build_parser().print_help()
            return 2
    finally:
        store.close()
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0
