"""`hall-server` subcommands for setting up and administering a hall (issue 14): `init`, `staff`,
`device`, `window`, `category`, `pause-reason`, `rating-reasons`, `rules`, `calendar`, `hall`,
`audit`, `import-matters`. Each runs the same operation as the admin API (hall_server/admin.py)
in one transaction on the database, and writes the same audit row, with the actor
`cli:<os user>`. Results are printed as JSON; errors as `error: code: en / zh` with exit 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hall_server import admin, hallsetup, workdays

COMMANDS = {"init", "staff", "device", "window", "category", "pause-reason", "rating-reasons",
            "rules", "calendar", "hall", "audit", "import-matters"}

NOT_INITIALISED = (
    "error: this database holds no hall yet / 数据库中还没有大厅。\n"
    "  Set one up first:  hall-server init --from hall.toml   (see hall.example.toml, docs/hall-setup.md)\n"
    "  or interactively:  hall-server init\n"
    "  or try the demo:   hall-server serve --demo"
)


def actor() -> str:
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "cli"


def require_hall(db_url: str) -> int:
    """0 when the database holds a hall; else print what to run and answer 2.

    `serve` refuses to start on an empty database rather than serving 503s: a server that is
    up but answers nothing useful looks healthy to systemd and to a glance, while an exit with
    this message shows in `systemctl status` and the journal exactly what to do."""
    from sqlalchemy.exc import SQLAlchemyError

    from hall_server.db import Store

    try:
        store = Store(db_url)
    except SQLAlchemyError as e:
        print(f"error: cannot open the database: {e.__class__.__name__}", file=sys.stderr)
        return 1
    try:
        store.migrate()
        if not hallsetup.runtime(store).initialised:
            print(NOT_INITIALISED, file=sys.stderr)
            return 2
        return 0
    except SQLAlchemyError as e:
        print(f"error: cannot use the database: {e.__class__.__name__}: {str(e).splitlines()[0]}",
              file=sys.stderr)
        return 1
    finally:
        store.close()


# ---- the parser ----------------------------------------------------------------------------------
def add_commands(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    def leaf(parent: Any, name: str, help_: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_)
        common(p)
        return p

    def group(name: str, help_: str) -> Any:
        g = sub.add_parser(name, help=help_)
        return g.add_subparsers(dest="sub", required=True)

    p = leaf(sub, "init", "create the hall in an empty database (interactive, or --from hall.toml)")
    p.add_argument("--from", dest="from_file", type=Path, help="hall.toml (see hall.example.toml)")
    p.add_argument("--admin-password-stdin", action="store_true",
                   help="read the first IT admin's password from stdin instead of asking")

    g = group("staff", "staff accounts")
    leaf(g, "list", "list staff")
    p = leaf(g, "add", "add a staff account (asks for the password)")
    p.add_argument("staff_no")
    p.add_argument("--name-zh", required=True)
    p.add_argument("--name-en", default="")
    p.add_argument("--role", choices=["staff", "supervisor", "it_admin"], default="staff")
    p.add_argument("--password-stdin", action="store_true")
    p = leaf(g, "set", "change name or role")
    p.add_argument("staff_no")
    p.add_argument("--name-zh")
    p.add_argument("--name-en")
    p.add_argument("--role", choices=["staff", "supervisor", "it_admin"])
    p = leaf(g, "disable", "disable an account (ends its sessions)")
    p.add_argument("staff_no")
    p.add_argument("--enable", action="store_true", help="enable it again instead")
    p = leaf(g, "reset-password", "give a one-time password the staff must change at next sign-in")
    p.add_argument("staff_no")
    p = leaf(g, "passwd", "change a staff member's own password (asks current and new)")
    p.add_argument("staff_no")
    p.add_argument("--stdin", action="store_true", help="read current and new password, one a line")
    p = leaf(g, "photo", "set the staff photo (PNG/JPEG; cropped to a standard portrait)")
    p.add_argument("staff_no")
    p.add_argument("file", type=Path)

    g = group("device", "enrolled window PCs")
    leaf(g, "list", "list enrolled PCs")
    p = leaf(g, "revoke", "revoke a PC: it can no longer open a window")
    p.add_argument("device_id")

    g = group("window", "windows")
    p = leaf(g, "add", "add a window")
    p.add_argument("no", type=int)
    p.add_argument("--name-zh", required=True)
    p.add_argument("--name-en", default="")
    p.add_argument("--categories", default="", help="comma-separated category codes, e.g. A,B")
    p = leaf(g, "rename", "rename a window")
    p.add_argument("no", type=int)
    p.add_argument("--name-zh", required=True)
    p.add_argument("--name-en", default="")
    p = leaf(g, "retire", "remove a window from the hall (history keeps its number)")
    p.add_argument("no", type=int)
    p = leaf(g, "categories", "set the categories a window serves")
    p.add_argument("no", type=int)
    p.add_argument("categories", nargs="+")

    g = group("category", "ticket categories")
    p = leaf(g, "set", "add or rename a category")
    p.add_argument("code")
    p.add_argument("--name-zh", required=True)
    p.add_argument("--name-en", default="")
    p = leaf(g, "remove", "remove an unused category")
    p.add_argument("code")

    g = group("pause-reason", "pause reasons")
    p = leaf(g, "set", "add or change a pause reason")
    p.add_argument("code")
    p.add_argument("--name-zh", required=True)
    p.add_argument("--name-en", default="")
    p.add_argument("--public-zh", required=True, help="what the public display shows")
    p.add_argument("--public-en", default="")
    p = leaf(g, "remove", "remove a pause reason")
    p.add_argument("code")

    g = group("rating-reasons", "the bad-rating reason list")
    leaf(g, "show", "show the list in use")
    p = leaf(g, "import", "replace the list from a JSON file (see hall_server/data/rating_reasons.json)")
    p.add_argument("file", type=Path)

    g = group("rules", "hall rules")
    leaf(g, "show", "show the rules")
    p = leaf(g, "set", "change rules, e.g. rules set recall_limit=2 rate_later_days=5")
    p.add_argument("assignments", nargs="+", metavar="NAME=VALUE")

    g = group("calendar", "working calendar (public holidays, make-up working days)")
    p = leaf(g, "import", "import a year file (JSON or CSV), replacing that year")
    p.add_argument("files", nargs="+", type=Path)
    p = leaf(g, "show", "list the exceptions")
    p.add_argument("--year", type=int)

    g = group("hall", "the hall itself")
    p = leaf(g, "rename", "change the hall's names")
    p.add_argument("--name-zh", required=True)
    p.add_argument("--name-en", default="")

    p = leaf(sub, "audit", "the audit log, newest first")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--action")

    p = leaf(sub, "import-matters", "import the catalog from .csv (UTF-8 or GBK), .xlsx or .json")
    p.add_argument("file", type=Path)
    p.add_argument("--dry-run", action="store_true", help="check everything, import nothing")


# ---- running them --------------------------------------------------------------------------------
def _password(stdin: bool, prompt: str = "password: ") -> str:
    if stdin:
        pw = sys.stdin.readline().rstrip("\n")
    else:
        pw = getpass.getpass(prompt)
        if getpass.getpass("again: ") != pw:
            raise ValueError("the two passwords differ")
    if len(pw) < 8:
        raise ValueError("the password needs at least 8 characters")
    return pw


def _input(prompt: str) -> str:
    """Like input(), with the prompt on stderr: stdout carries only the JSON result."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:
        raise ValueError("init was cut short (end of input)")
    return line.rstrip("\n")


def _ask(prompt: str, default: str = "") -> str:
    got = _input(f"{prompt}{f' [{default}]' if default else ''}: ").strip()
    return got or default


def interactive_spec() -> hallsetup.HallSpec:
    """Ask for what hall.toml would hold (hall, categories, windows, admin); the rules, pause
    reasons, rating reasons and calendar take the shipped defaults (change them later)."""
    print("Setting up a new hall. Press Enter to accept [defaults]; an empty line ends a list.", file=sys.stderr)
    hall = {"code": _ask("hall code (letters/digits)"), "name_zh": _ask("hall name (zh)"),
            "name_en": _ask("hall name (en)"), "timezone": _ask("time zone", "Asia/Shanghai")}
    cats = []
    print("Categories, one a line: CODE 中文名 [English name]   e.g.  A 市场主体登记 Business registration",
          file=sys.stderr)
    while line := _input("category: ").strip():
        code, _, rest = line.partition(" ")
        zh, _, en = rest.strip().partition(" ")
        cats.append({"code": code.upper(), "name_zh": zh, "name_en": en.strip()})
    wins = []
    print("Windows, one a line: NO CATEGORIES [name]   e.g.  1 A,B 1号窗口", file=sys.stderr)
    while line := _input("window: ").strip():
        no, _, rest = line.partition(" ")
        codes, _, name = rest.strip().partition(" ")
        n = int(no) if no.isdigit() else 0
        wins.append({"no": n, "name_zh": name.strip() or f"{n}号窗口", "name_en": f"Window {n}",
                     "categories": [c.strip().upper() for c in codes.split(",") if c.strip()]})
    admin_ = {"staff_no": _ask("first IT admin's staff number"), "name_zh": _ask("their name (zh)")}
    shipped = sorted(p.name for p in workdays.DATA_DIR.glob("*.json"))
    raw = {"hall": hall, "categories": cats, "windows": wins, "admin": admin_,
           "pause_reasons": DEFAULT_PAUSE_REASONS,
           "calendar": [str(workdays.DATA_DIR / n) for n in shipped]}
    try:
        return hallsetup.HallSpec.model_validate(raw)
    except ValidationError as e:
        raise ValueError("\n  ".join(["the answers are not a valid hall:", *hallsetup.spec_errors(e)])) from None


DEFAULT_PAUSE_REASONS = [
    {"code": "break", "name_zh": "暂时休息", "name_en": "Short break",
     "public_zh": "窗口暂停服务，请稍候", "public_en": "This window is paused, please wait a moment"},
    {"code": "meal", "name_zh": "就餐", "name_en": "Meal break",
     "public_zh": "窗口暂停服务，请稍候或前往其他窗口", "public_en": "This window is paused; please wait or go to another window"},
    {"code": "meeting", "name_zh": "会议", "name_en": "Meeting",
     "public_zh": "窗口暂停服务，请稍候", "public_en": "This window is paused, please wait a moment"},
    {"code": "system_fault", "name_zh": "系统故障", "name_en": "System fault",
     "public_zh": "系统维护中，暂停服务，请稍候", "public_en": "System maintenance, service paused, please wait"},
]


def _rule_value(assignment: str) -> tuple[str, int]:
    name, sep, value = assignment.partition("=")
    if not sep:
        raise ValueError(f"expected NAME=VALUE, got {assignment!r}")
    if name not in hallsetup.HallRules.model_fields:
        raise ValueError(f"unknown rule {name!r}; known: {', '.join(hallsetup.HallRules.model_fields)}")
    try:
        return name, int(value)
    except ValueError:
        raise ValueError(f"{name}: expected a whole number, got {value!r}") from None


def dispatch(ns: argparse.Namespace, open_store: Callable[[argparse.Namespace], Any]) -> int:
    from hall_server.security import hash_password, verify_password

    who = actor()
    cmd, sub = ns.cmd, str(getattr(ns, "sub", "") or "")
    # Everything that reads files or asks questions happens before the database is opened.
    if cmd == "init":
        spec = hallsetup.load_spec(ns.from_file) if ns.from_file else interactive_spec()
        years = hallsetup.read_calendar_files(spec.calendar)
        pw_hash = None
        if spec.admin is not None:
            pw_hash = hash_password(_password(ns.admin_password_stdin, f"password for {spec.admin.staff_no}: "))
    store = open_store(ns)
    try:
        out: Any
        if cmd == "init":
            out = store.write_sync(lambda tx: hallsetup.init_hall(tx, spec, who, pw_hash, years))
        elif cmd == "staff":
            out = _staff(ns, sub, store, who, hash_password, verify_password)
        elif cmd == "device":
            out = (store.read_sync(admin.list_devices) if sub == "list"
                   else store.write_sync(lambda tx: admin.revoke_device_op(tx, who, ns.device_id)))
        elif cmd == "window":
            out = _window(ns, sub, store, who)
        elif cmd == "category":
            out = store.write_sync(
                (lambda tx: admin.upsert_category_op(tx, who, ns.code, ns.name_zh, ns.name_en)) if sub == "set"
                else (lambda tx: admin.delete_category_op(tx, who, ns.code)))
        elif cmd == "pause-reason":
            body = {"name_zh": getattr(ns, "name_zh", ""), "name_en": getattr(ns, "name_en", ""),
                    "public_zh": getattr(ns, "public_zh", ""), "public_en": getattr(ns, "public_en", "")}
            out = store.write_sync(
                (lambda tx: admin.upsert_pause_reason_op(tx, who, ns.code, body)) if sub == "set"
                else (lambda tx: admin.delete_pause_reason_op(tx, who, ns.code)))
        elif cmd == "rating-reasons":
            if sub == "show":
                out = store.read_sync(admin.rating_reasons_json)
            else:
                try:
                    rr = hallsetup.RatingReasons.model_validate_json(ns.file.read_bytes())
                except ValidationError as e:
                    raise ValueError("\n  ".join([f"{ns.file}:", *hallsetup.spec_errors(e)])) from None
                out = store.write_sync(lambda tx: admin.set_rating_reasons_op(tx, who, rr))
        elif cmd == "rules":
            if sub == "show":
                out = store.read_sync(lambda c: hallsetup.get_rules(c).model_dump())
            else:
                changes = dict(_rule_value(a) for a in ns.assignments)
                out = store.write_sync(lambda tx: admin.set_rules_op(tx, who, changes))
        elif cmd == "calendar":
            if sub == "show":
                out = store.read_sync(lambda c: workdays.year_rows(c, ns.year))
                gaps = workdays.missing_years(store.read_sync(workdays.load), dt.date.today())
                if gaps:
                    print(workdays.missing_years_message(gaps), file=sys.stderr)
            else:
                years = hallsetup.read_calendar_files([str(f) for f in ns.files])
                out = [store.write_sync(lambda tx, y=y, e=e: admin.import_calendar_op(tx, who, y, e))
                       for y, e in years]
        elif cmd == "hall":
            out = store.write_sync(lambda tx: admin.set_hall_names_op(tx, who, ns.name_zh, ns.name_en))
        elif cmd == "audit":
            out = store.read_sync(lambda c: admin.audit_rows(c, max(1, min(ns.limit, 1000)), None, ns.action))
        elif cmd == "import-matters":
            from hall_server.catalog import read_matters_file

            items = read_matters_file(ns.file)
            out = store.write_sync(lambda tx: admin.import_matters_op(tx, who, items, dry_run=ns.dry_run))
        else:
            return 2
    finally:
        store.close()
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


def _staff(ns: argparse.Namespace, sub: str, store: Any, who: str,
           hash_password: Callable[[str], str], verify_password: Callable[[str | None, str], bool]) -> Any:
    if sub == "list":
        return store.read_sync(admin.list_staff)
    if sub == "add":
        h = hash_password(_password(ns.password_stdin))
        return store.write_sync(lambda tx: admin.create_staff_op(tx, ns.staff_no, ns.name_zh, ns.name_en,
                                                                 ns.role, h, actor=who))
    if sub == "set":
        changes = {"name_zh": ns.name_zh, "name_en": ns.name_en, "role": ns.role}
        return store.write_sync(lambda tx: admin.update_staff_op(tx, who, ns.staff_no, changes))
    if sub == "disable":
        return store.write_sync(lambda tx: admin.set_disabled_op(tx, ns.staff_no, not ns.enable, actor=who))
    if sub == "reset-password":
        otp = admin.one_time_password()
        h = hash_password(otp)
        out = store.write_sync(lambda tx: admin.reset_password_op(tx, who, ns.staff_no, h))
        return {**out, "one_time_password": otp}
    if sub == "passwd":
        from sqlalchemy import select

        from hall_server import schema as t

        current = (sys.stdin.readline().rstrip("\n") if ns.stdin
                   else getpass.getpass(f"current password of {ns.staff_no}: "))
        old_hash = store.read_sync(lambda c: c.execute(
            select(t.staff.c.password_hash).where(t.staff.c.staff_no == ns.staff_no)).scalar())
        if not verify_password(old_hash, current):
            raise ValueError("wrong staff number or password")
        new = _password(ns.stdin, "new password: ")
        if new == current:
            raise ValueError("the new password must differ from the current one")
        new_hash = hash_password(new)
        store.write_sync(lambda tx: admin.change_password_op(tx, ns.staff_no, old_hash, new_hash))
        return {"staff_no": ns.staff_no, "password_changed": True}
    if sub == "photo":
        png = admin.process_photo(ns.file.read_bytes())
        return store.write_sync(lambda tx: admin.set_photo_op(tx, who, ns.staff_no, png))
    raise ValueError(f"unknown staff command {sub}")


def _window(ns: argparse.Namespace, sub: str, store: Any, who: str) -> Any:
    if sub == "add":
        cats = [c.strip() for c in ns.categories.split(",") if c.strip()]
        return store.write_sync(lambda tx: admin.add_window_op(tx, who, ns.no, ns.name_zh, ns.name_en, cats))
    if sub == "rename":
        return store.write_sync(lambda tx: admin.rename_window_op(tx, who, ns.no, ns.name_zh, ns.name_en))
    if sub == "retire":
        return store.write_sync(lambda tx: admin.retire_window_op(tx, who, ns.no))
    if sub == "categories":
        return store.write_sync(lambda tx: admin.set_window_categories_op(tx, ns.no, ns.categories, actor=who))
    raise ValueError(f"unknown window command {sub}")
