"""`hall-server` command line: serve (with --demo and the arrival simulator) and the IT
subcommands that work directly on the database (create-staff, disable-staff,
set-window-categories, enrollment-code, import-matters, migrate, pad-pair)."""

from __future__ import annotations

import argparse
import csv
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
    s.add_argument("--require-device", action="store_true", help="window logins need an enrolled PC")
    s.add_argument("--tz", default="Asia/Shanghai")
    s.add_argument("--public-url", default=os.environ.get("HALL_PUBLIC_URL", ""),
                   help="base address citizens' phones reach, for rate-later links (e.g. https://hall.example.gov.cn)")
    s.add_argument("--pad-host", action="append", default=[], metavar="NAME",
                   help="another host name the pad page and /pair/ answer to (besides the "
                        "--public-url host and loopback); repeatable")
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

    i = sub.add_parser("import-matters", help="import matters from a .json array or .csv file")
    _common(i)
    i.add_argument("file", type=Path)

    pp = sub.add_parser("pad-pair", help="pair an evaluator pad at a window (IT, on the server box)")
    _common(pp)
    pp.add_argument("--window", type=int, required=True, dest="window_no")
    pp.add_argument("--public-url", default=os.environ.get("HALL_PUBLIC_URL", ""),
                    help="the hall server's address as the pad reaches it (for the QR code)")
    pp.add_argument("--wait", type=float, default=300.0, help="seconds to wait for the pad")
    pp.add_argument("--fingerprint-stdin", action="store_true",
                    help="read the fingerprint from stdin without a prompt (scripts, tests)")
    return ap


def _settings(ns: argparse.Namespace, **kw: Any) -> Settings:
    return Settings(data_dir=ns.data_dir, db_url=ns.db, **kw)


def _store(ns: argparse.Namespace) -> Any:
    from hall_server.db import Store

    settings = _settings(ns)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.database_url())
    store.migrate()
    return store


def read_matters_file(path: Path) -> list[dict[str, Any]]:
    """JSON: an array of Matter. CSV: one row per checklist item (matter columns repeated;
    `item_id` empty for a matter without items)."""
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValueError("expected a JSON array")
        return data
    if path.suffix.lower() != ".csv":
        raise ValueError("expected a .json or .csv file")
    by_code: dict[str, dict[str, Any]] = {}
    bools = ("instant", "cross_region", "deleted", "original_required", "e_licence")

    def b(v: str, line: int, f: str) -> bool:
        if v.strip().lower() in ("1", "true", "yes", "y"):
            return True
        if v.strip().lower() in ("", "0", "false", "no", "n"):
            return False
        raise ValueError(f"line {line}: {f}: expected true/false, got {v!r}")

    with open(path, encoding="utf-8-sig", newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            code = (row.get("code") or "").strip()
            if not code:
                raise ValueError(f"line {line}: code: required")
            try:
                tl = int(row.get("time_limit_days") or 0)
                copies = int(row.get("copies") or 1)
            except ValueError as e:
                raise ValueError(f"line {line}: {e}") from None
            m = by_code.setdefault(code, {
                "code": code, "name_zh": row.get("name_zh", ""), "name_en": row.get("name_en", ""),
                "department_zh": row.get("department_zh", ""), "department_en": row.get("department_en", ""),
                "category": row.get("category", ""), "time_limit_days": tl,
                **{k: b(row.get(k, ""), line, k) for k in bools[:3]}, "checklist": [],
            })
            if row.get("item_id"):
                m["checklist"].append({
                    "id": row["item_id"], "name_zh": row.get("item_name_zh", ""),
                    "name_en": row.get("item_name_en", ""), "requirement": row.get("requirement") or "required",
                    "copies": copies, "original_required": b(row.get("original_required", ""), line, "original_required"),
                    "e_licence": b(row.get("e_licence", ""), line, "e_licence"),
                    "notes_zh": row.get("notes_zh", ""), "notes_en": row.get("notes_en", ""),
                })
    return list(by_code.values())


def serve(ns: argparse.Namespace) -> int:
    import uvicorn

    from hall_server.app import create_app
    from hall_server.settings import Settings

    settings = Settings(
        data_dir=ns.data_dir, db_url=ns.db, demo=ns.demo, arrival_rate=ns.arrival_rate,
        require_device=ns.require_device, timezone=ns.tz, seed=ns.seed, public_url=ns.public_url,
        pad_hosts=tuple(ns.pad_host),
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    print(f"hall-server listening on http://{ns.host}:{ns.port}  (API docs: /docs)", flush=True)
    print(f"database: {_redact(settings.database_url())}", flush=True)
    if ns.demo:
        print("demo hall: staff 1001..1012, supervisor 8001, IT 9001, password demo1234", flush=True)
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
            "arrival_rate": 0.0, "require_device": ns.require_device, "timezone": ns.tz,
            "migrate_on_start": False, "seed": ns.seed, "public_url": ns.public_url,
            "pad_hosts": list(ns.pad_host),
        })
        uvicorn.run("hall_server.cli:app_from_env", factory=True, host=ns.host, port=ns.port,
                    workers=ns.workers, log_level="warning")
        return 0
    uvicorn.run(create_app(settings), host=ns.host, port=ns.port, log_level="warning")
    return 0


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


def app_from_env() -> Any:
    from hall_server.app import create_app

    raw = json.loads(os.environ["HALL_SERVER_SETTINGS"])
    raw["data_dir"] = Path(raw["data_dir"])
    raw["pad_hosts"] = tuple(raw.get("pad_hosts", ()))
    return create_app(Settings(**raw))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    known = {"serve", "migrate", "create-staff", "disable-staff", "set-window-categories",
             "enrollment-code", "import-matters", "pad-pair"}
    if not argv or (argv[0] not in known and argv[0] not in ("-h", "--help")):
        argv = ["serve", *argv]
    ns = build_parser().parse_args(argv)
    from hall_server.errors import ApiError

    try:
        return _dispatch(ns)
    except ApiError as e:
        print(f"error: {e.code}: {e.message_en} / {e.message_zh}", file=sys.stderr)
        for err in e.details.get("errors", [])[:50]:
            print(f"  row {err.get('row')}: {err.get('field')}: {err.get('message')}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _dispatch(ns: argparse.Namespace) -> int:
    if ns.cmd == "serve":
        return serve(ns)
    if ns.cmd == "migrate":
        _store(ns).close()
        print("database schema is up to date")
        return 0
    if ns.cmd == "pad-pair":
        return pad_pair(ns)
    from hall_server import admin, catalog
    from hall_server.security import hash_password

    if ns.cmd == "import-matters":
        items = read_matters_file(ns.file)
    store = _store(ns)
    try:
        if ns.cmd == "create-staff":
            pw = sys.stdin.readline().rstrip("\n") if ns.password_stdin else getpass.getpass("password: ")
            if len(pw) < 8:
                raise ValueError("the password needs at least 8 characters")
            h = hash_password(pw)
            out: Any = store.write_sync(lambda tx: admin.create_staff_op(tx, ns.staff_no, ns.name_zh, ns.name_en, ns.role, h))
        elif ns.cmd == "disable-staff":
            out = store.write_sync(lambda tx: admin.set_disabled_op(tx, ns.staff_no, not ns.enable))
        elif ns.cmd == "set-window-categories":
            out = store.write_sync(lambda tx: admin.set_window_categories_op(tx, ns.window_no, ns.categories))
        elif ns.cmd == "enrollment-code":
            out = store.write_sync(lambda tx: admin.enrollment_code_op(tx, ns.window_no, Settings().enrollment_code_seconds))
        elif ns.cmd == "import-matters":
            out = store.write_sync(lambda tx: catalog.import_matters(tx, items))
        else:
            build_parser().print_help()
            return 2
    finally:
        store.close()
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0
