"""Child process for the fault tests, and the helpers they share (making real cases to rate).

    python -m tests.outbox_child capture DB CASES_JSON
        opens an Outbox with the delivery worker OFF and enqueues a rating for every case of
        CASES_JSON not yet rated in DB, printing each id to stdout only after enqueue returned
        (i.e. after COMMIT). The kill -9 test kills it at random moments.

    python -m tests.outbox_child run URL DB_DIR CASES_JSON [--pace S] [--exit-when-drained]
        one Outbox per window (DB_DIR/window-<n>.db), each with its delivery worker on and its
        own HallClient signed in as that window's staff; enqueues the window's unrated cases
        (printing ids after commit) and delivers. The exactly-once test kills and restarts it.

CASES_JSON is a list of {"case_id", "window_no"}.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from counter_app.outbox import HallSender, Outbox, OutboxItem

PASSWORD = "demo1234"
LEVELS = ["very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied"]


SUPERVISOR = "8001"


def staff_for_window(window_no: int) -> str:
    """Demo hall: staff 1001 works at window 1, 1002 at window 2, ..."""
    return str(1000 + window_no)


def skip_unless_heavy_selected(request: Any) -> None:
    """Heavy fault tests run only when asked for (`pytest -m heavy`), never in a plain run:
    `scripts/run.sh test` runs every test, and these take many minutes."""
    import pytest

    if "heavy" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("heavy fault test: run with `pytest -m heavy` (counts via OUTBOX_* env)")


def rating_for(case_id: int, window_no: int, n: int = 0) -> dict[str, Any]:
    level = LEVELS[n % len(LEVELS)]
    bad = level in ("dissatisfied", "very_dissatisfied")
    return {
        "id": str(uuid.uuid4()),
        "case_id": case_id,
        "window_no": window_no,
        "level": level,
        "reasons": [],
        "reasons_version": "",
        "comment": "等候时间太长" if bad else "",
        "source": "desk",
        "rated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "pad_id": None,
        "pad_counter": None,
        "challenge": None,
        "signature": None,
    }


def make_cases(client: Any, window_no: int, n: int) -> list[dict[str, int]]:
    """Open ``n`` real cases at a window: issue a ticket, call it here, start, complete.

    ``client`` is a HallClient signed in at ``window_no``.
    """
    window = client.window(window_no)
    category = window.categories[0]
    out = []
    for _ in range(n):
        ticket = client.issue_ticket(category)
        client.call_ticket(ticket.id, window_no)
        started = client.start_service(ticket.id)
        client.complete(ticket.id, "completed")
        out.append({"case_id": int(started.case.id), "window_no": window_no})
    return out


def server_rating_ids(client: Any, windows: list[int]) -> list[str]:
    """Every rating id the server holds for these windows (yesterday..tomorrow, hall time)."""
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    ids: list[str] = []
    for w in windows:
        for d in (-1, 0, 1):
            ids += client.window_rating_ids(w, today + timedelta(days=d))
    return ids


def unrated(ob: Outbox, cases: list[dict[str, int]]) -> list[dict[str, int]]:
    used = ob._call(  # the ratings already captured (committed) in this outbox
        lambda c: {int(r[0]) for r in c.execute("SELECT case_id FROM ratings").fetchall()}
    )
    return [c for c in cases if c["case_id"] not in used]


def capture(db: Path, cases_file: Path) -> None:
    cases = json.loads(cases_file.read_text())
    ob = Outbox(db, None)
    print("ready", flush=True)
    for n, case in enumerate(unrated(ob, cases)):
        item_id = ob.enqueue_rating(rating_for(case["case_id"], case["window_no"], n))
        print(item_id, flush=True)
    print("finished", flush=True)
    ob.close()
    time.sleep(3600)  # wait to be killed, like the rest of the rounds


class ReloginSender(HallSender):
    """Signs in again when the server forgot our session (it was killed), then lets the outbox
    retry: a 401 is never a reason to drop an item. Signs in as the supervisor (no window), so
    the test's own window sessions stay as they are."""

    def __init__(self, client: Any, staff_no: str, window_no: int | None) -> None:
        super().__init__(client)
        self.staff_no, self.window_no = staff_no, window_no
        self._lock = threading.Lock()

    def send(self, item: OutboxItem) -> dict[str, Any]:
        try:
            return super().send(item)
        except Exception as exc:
            if getattr(exc, "status", None) == 401:
                with self._lock:
                    try:
                        self.client.login(self.staff_no, PASSWORD, self.window_no)
                    except Exception as again:  # the server may be down right now
                        print(f"relogin failed: {again}", file=sys.stderr, flush=True)
            raise


def run(url: str, db_dir: Path, cases_file: Path, pace: float, exit_when_drained: bool) -> None:
    from api_client import HallClient

    cases = json.loads(cases_file.read_text())
    windows = sorted({c["window_no"] for c in cases})
    boxes: dict[int, Outbox] = {}
    for w in windows:
        client = HallClient(url, timeout=(1.0, 3.0), max_retries=0)
        sender = ReloginSender(client, SUPERVISOR, None)
        ob = Outbox(db_dir / f"window-{w}.db", sender, base_delay_s=0.05, max_delay_s=1.0)
        boxes[w] = ob
        ob.start()
    print("ready", flush=True)
    todo = {w: unrated(boxes[w], [c for c in cases if c["window_no"] == w]) for w in windows}
    n = 0
    while any(todo.values()):
        for w in windows:
            if todo[w]:
                case = todo[w].pop(0)
                item_id = boxes[w].enqueue_rating(rating_for(case["case_id"], w, n))
                print(item_id, flush=True)
                n += 1
        if pace:
            time.sleep(pace)
    print("captured", flush=True)
    if exit_when_drained:
        while any(ob.stats().depth for ob in boxes.values()):
            for ob in boxes.values():
                ob.kick()
            time.sleep(0.2)
        print("drained", flush=True)
        for ob in boxes.values():
            ob.close()
        return
    while True:
        time.sleep(3600)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture")
    c.add_argument("db", type=Path)
    c.add_argument("cases", type=Path)
    r = sub.add_parser("run")
    r.add_argument("url")
    r.add_argument("db_dir", type=Path)
    r.add_argument("cases", type=Path)
    r.add_argument("--pace", type=float, default=0.0)
    r.add_argument("--exit-when-drained", action="store_true")
    a = p.parse_args(argv)
    if a.cmd == "capture":
        capture(a.db, a.cases)
    else:
        run(a.url, a.db_dir, a.cases, a.pace, a.exit_when_drained)


if __name__ == "__main__":
    main()
