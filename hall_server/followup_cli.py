"""`hall-server` subcommands of the bad-rating follow-up and the provincial hand-over:
`followups` (list, e.g. the overdue ones), `export-ratings` (a JSON-lines or CSV file) and
`push-ratings` (send the queue to the provincial endpoint once, or `--loop`). Rules in
docs/followup.md; the code in hall_server/followups.py and hall_server/rating_export.py."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

COMMANDS = {"followups", "export-ratings", "push-ratings"}


def add_commands(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    f = sub.add_parser("followups", help="list bad-rating follow-ups (--overdue: past their deadline)")
    common(f)
    f.add_argument("--overdue", action="store_true")
    f.add_argument("--state", default=None)
    f.add_argument("--window", type=int, default=None)
    e = sub.add_parser("export-ratings", help="ratings and follow-ups for the provincial platform (JSONL/CSV)")
    common(e)
    e.add_argument("--from", dest="from_day", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    e.add_argument("--to", dest="to_day", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    e.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    e.add_argument("--out", type=Path, default=None, help="file to write (default: standard output)")
    p = sub.add_parser("push-ratings", help="send queued ratings/follow-ups to the provincial endpoint")
    common(p)
    p.add_argument("--url", required=True, help="the provincial endpoint (https://...)")
    p.add_argument("--ca-file", default=None, help="CA bundle for the endpoint's certificate")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--loop", action="store_true", help="keep sending every --every seconds until SIGTERM")
    p.add_argument("--every", type=float, default=30.0)


def dispatch(ns: argparse.Namespace, open_store: Callable[[argparse.Namespace], Any]) -> int:
    import json

    from hall_server import followups, hallsetup, rating_export

    if ns.cmd == "export-ratings" and ns.from_day > ns.to_day:
        raise ValueError("--from is after --to / 开始日期晚于结束日期")
    if ns.cmd == "push-ratings":
        rating_export.check_url(ns.url)
    store = open_store(ns)
    try:
        tz = ZoneInfo(hallsetup.runtime(store).timezone or "Asia/Shanghai")
        if ns.cmd == "followups":
            today = datetime.now(tz).strftime("%Y-%m-%d")
            out: Any = store.read_sync(lambda c: followups.list_followups(
                c, today, state=ns.state, window_no=ns.window, overdue=ns.overdue or None))
        elif ns.cmd == "export-ratings":
            recs = store.read_sync(lambda c: rating_export.records(c, None, ns.from_day.isoformat(),
                                                                   ns.to_day.isoformat()))
            data = rating_export.to_csv(recs) if ns.format == "csv" else rating_export.to_jsonl(recs)
            if ns.out is None:
                sys.stdout.buffer.write(data)
            else:
                ns.out.write_bytes(data)
                print(json.dumps({"records": len(recs), "file": str(ns.out)}), file=sys.stderr)
            return 0
        else:
            cfg = rating_export.PushConfig(url=ns.url, timeout_s=ns.timeout, verify=ns.ca_file or True)
            if ns.loop:
                stop = threading.Event()
                signal.signal(signal.SIGTERM, lambda *_: stop.set())
                rating_export.run_worker(store, cfg, stop, ns.every)
                out = store.read_sync(rating_export.pending)
            else:
                out = {**rating_export.push_once(store, cfg), **store.read_sync(rating_export.pending)}
    finally:
        store.close()
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0
