"""The provincial hand-over (hall_server/rating_export.py): export files and the durable push.

The receiver is a real HTTP server on loopback that answers 500, stalls past the client's
timeout after storing, drops the connection after storing, drops before storing, then
recovers. It applies a record once per Idempotency-Key and counts the repeats it was sent: the
test shows delivery is at-least-once (repeats happen) and the effect is exactly once (each key
applied once, every record applied). Ratings come from the real server; the push runs on its
database as `hall-server push-ratings` would.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hall_server import cli, rating_export
from hall_server.db import Store
from tests.followup_helpers import followup_of, rate, sql
from tests.support.server_fixtures import Api, RunningServer, signed_in


class Receiver:
    """The provincial endpoint: idempotent by key, with a script of failures."""

    def __init__(self, script: list[str], stall_s: float = 1.0) -> None:
        self.script = list(script)
        self.stall_s = stall_s
        self.lock = threading.Lock()
        self.applied: dict[str, dict[str, Any]] = {}
        self.applied_times: dict[str, int] = {}
        self.requests = 0
        self.repeats = 0  # requests for a key already applied
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = self.headers["Idempotency-Key"]
                with outer.lock:
                    outer.requests += 1
                    mode = outer.script.pop(0) if outer.script else "ok"
                    if mode == "drop_before":
                        self.close_connection = True
                        self.connection.close()
                        return
                    if mode == "500":
                        pass
                    elif key in outer.applied:
                        outer.repeats += 1
                    else:
                        doc = json.loads(body)
                        assert doc["key"] == key
                        outer.applied[key] = doc
                        outer.applied_times[key] = outer.applied_times.get(key, 0) + 1
                if mode == "500":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode == "drop_after":  # stored, then the answer is lost
                    self.close_connection = True
                    self.connection.close()
                    return
                if mode == "timeout":  # stored, answered too late
                    time.sleep(outer.stall_s)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/evaluations"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(params=["sqlite", "postgresql"])
def srv(request: pytest.FixtureRequest) -> RunningServer:
    """The real server on SQLite and on PostgreSQL (HALL_TEST_PG_URL; skipped without it)."""
    name = "fresh_hall_server" if request.param == "sqlite" else "pg_hall_server"
    server: RunningServer = request.getfixturevalue(name)
    return server


@pytest.fixture
def desk(srv: RunningServer) -> Iterator[Api]:
    d = signed_in(srv.url, "1001", 1)
    yield d
    d.close()


@pytest.fixture
def sup(srv: RunningServer) -> Iterator[Api]:
    s = signed_in(srv.url, "8001")
    yield s
    s.close()


def _close(sup: Api, desk: Api, rating_id: str) -> int:
    fid = int(followup_of(sup, rating_id)["id"])
    for who, step, body in ((sup, "assign", {"assignee": "1001"}), (desk, "callback", {"reached": True, "said": "x"}),
                            (desk, "verify", {"valid": True, "finding": "属实"}),
                            (desk, "rectify", {"action": "增开窗口"}), (desk, "answer", {"answer": "已告知"}),
                            (sup, "review", {"decision": "accept"})):
        assert who.post(f"/followups/{fid}/{step}", json=body).status_code == 200
    return fid


def _drain(store: Store, cfg: rating_export.PushConfig, passes: int = 60) -> list[dict[str, int]]:
    outs = []
    for _ in range(passes):
        outs.append(rating_export.push_once(store, cfg))
        if store.read_sync(rating_export.pending)["waiting"] == 0:
            break
        time.sleep(0.1)
    return outs


def test_push_is_exactly_once_in_effect_through_receiver_failures(srv: RunningServer, desk: Api, sup: Api) -> None:
    bad = [rate(desk, 1) for _ in range(3)]
    good = [rate(desk, 1, "satisfied") for _ in range(2)]
    fid = _close(sup, desk, bad[0]["rating_id"])
    mine = {f"rating:{r['rating_id']}" for r in bad + good} | {f"followup:{fid}"}
    rx = Receiver(["500", "timeout", "drop_after", "drop_before", "500", "drop_after", "timeout"], stall_s=1.0)
    store = Store(srv.db_url)
    try:
        cfg = rating_export.PushConfig(url=rx.url, timeout_s=0.4, backoff_base_s=0.05, backoff_cap_s=0.2)
        outs = _drain(store, cfg)
        # everything in the hall is queued (a demo hall may hold seeded history too)
        expected = {r["key"] for r in sql(srv, "SELECT key FROM rating_push_outbox")}
        assert mine <= expected and outs[0]["queued"] == len(expected)
        n = len(expected)
        assert store.read_sync(rating_export.pending) == {"total": n, "sent": n, "waiting": 0, "retrying": 0}
        assert set(rx.applied) == expected  # every record arrived
        assert all(n == 1 for n in rx.applied_times.values())  # ... and took effect once
        assert rx.repeats >= 3  # timeouts and drops after storing were sent again: at-least-once
        assert sum(o["failed"] for o in outs) == 7
        rec = rx.applied[f"followup:{fid}"]["record"]
        assert rec["followup_state"] == "closed" and rec["rectification"] == "增开窗口" and rec["level_score"] == 1
        rows = sql(srv, "SELECT key, attempts, last_error FROM rating_push_outbox WHERE attempts > 1")
        assert rows and all(r["last_error"] == "" for r in rows)
        # A later pass queues only what is new and sends only that.
        newer = rate(desk, 1, "basic")
        before = rx.requests
        out = rating_export.push_once(store, cfg)
        assert out == {"queued": 1, "sent": 1, "failed": 0} and rx.requests == before + 1
        assert f"rating:{newer['rating_id']}" in rx.applied
        assert rating_export.push_once(store, cfg) == {"queued": 0, "sent": 0, "failed": 0}
    finally:
        store.close()
        rx.close()


def test_two_workers_never_send_the_same_record_at_once(srv: RunningServer, desk: Api) -> None:
    for _ in range(8):
        rate(desk, 1, "satisfied")
    rx = Receiver([])
    stores = [Store(srv.db_url), Store(srv.db_url)]
    try:
        cfgs = [rating_export.PushConfig(url=rx.url, batch=3) for _ in stores]
        n = stores[0].write_sync(rating_export.enqueue)
        assert n >= 8
        threads = [threading.Thread(target=_drain, args=(s, c)) for s, c in zip(stores, cfgs, strict=True)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        assert len(rx.applied) == n and rx.repeats == 0 and rx.requests == n  # the leases kept them apart
    finally:
        for s in stores:
            s.close()
        rx.close()


def test_push_refuses_plain_http_off_this_machine() -> None:
    with pytest.raises(ValueError, match="https"):
        rating_export.check_url("http://province.example.cn/api")
    assert rating_export.check_url("https://province.example.cn/api")
    assert cli.main(["push-ratings", "--db", "sqlite://", "--url", "http://10.0.0.1/x"]) == 1


def test_export_ratings_jsonl_and_csv(srv: RunningServer, desk: Api, sup: Api, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = rate(desk, 1)
    good = rate(desk, 1, "very_satisfied")
    _close(sup, desk, bad["rating_id"])
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    out = tmp_path / "r.csv"
    args = ["--db", srv.db_url, "--data-dir", str(srv.data_dir), "--from", today, "--to", today]
    assert cli.main(["export-ratings", *args, "--format", "csv", "--out", str(out)]) == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel on Chinese Windows reads it as UTF-8
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert tuple(rows[0]) == rating_export.FIELDS
    by_id = {r["record_id"]: r for r in rows}
    assert {bad["rating_id"], good["rating_id"]} <= set(by_id)
    b = by_id[bad["rating_id"]]
    assert (b["level_zh"], b["level_score"], b["followup_state"], b["rectification"], b["channel"]) == (
        "非常不满意", "1", "closed", "增开窗口", "window_device")
    assert by_id[good["rating_id"]]["followup_state"] == ""
    j = tmp_path / "r.jsonl"
    assert cli.main(["export-ratings", *args, "--format", "jsonl", "--out", str(j)]) == 0
    recs = [json.loads(line) for line in j.read_text(encoding="utf-8").splitlines()]
    assert {r["record_id"] for r in recs} == set(by_id) and all(set(r) == set(rating_export.FIELDS) for r in recs)
    assert cli.main(["export-ratings", *args[:4], "--from", "2026-12-31", "--to", "2026-01-01"]) == 1
    capsys.readouterr()
    open_one = rate(desk, 1)
    sql(srv, "UPDATE followups SET due_day = '2020-01-06' WHERE rating_id = :r", r=open_one["rating_id"])
    assert cli.main(["followups", *args[:4], "--overdue"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert open_one["rating_id"] in {f["rating_id"] for f in listed} and all(f["overdue"] for f in listed)
