"""Server-Sent Events: a new ticket reaches a subscriber; a dropped connection resumes with
Last-Event-ID without missing an event; the window filter; LISTEN/NOTIFY fan-out between two
server instances on one PostgreSQL database."""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.server_fixtures import (
    Api,
    RunningServer,
    drop_pg_db,
    fresh_pg_url,
    signed_in,
    start_server_thread,
)


class Subscription:
    """Reads an SSE stream on a thread; parsed events land in `.events` (a queue)."""

    def __init__(self, url: str, token: str, path: str = "/events", last_event_id: str | None = None) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.session = requests.Session()
        self.session.trust_env = False
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.resp = self.session.get(url + "/api/v1" + path, headers=headers, stream=True, timeout=(5, 30))
        assert self.resp.status_code == 200, self.resp.text
        assert self.resp.headers["content-type"].startswith("text/event-stream")
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        ev: dict[str, Any] = {}
        try:
            for raw in self.resp.iter_lines(decode_unicode=True):
                if raw is None:
                    continue
                if raw == "":
                    if "data" in ev:
                        self.events.put(ev)
                    ev = {}
                elif raw.startswith(":"):
                    continue
                else:
                    k, _, v = raw.partition(":")
                    v = v[1:] if v.startswith(" ") else v
                    if k == "data":
                        ev["data"] = json.loads(v)
                    elif k in ("id", "event"):
                        ev[k] = v
        except (requests.RequestException, AttributeError, ValueError):
            pass

    def next(self, timeout: float = 10) -> dict[str, Any]:
        return self.events.get(timeout=timeout)

    def until(self, pred: Any, timeout: float = 10) -> dict[str, Any]:
        while True:
            ev = self.next(timeout)
            if pred(ev):
                return ev

    def close(self) -> None:
        # Drop the TCP connection the way a network failure would; resp.close() alone
        # would wait for the reader thread's blocked recv (up to the next ping).
        conn = getattr(self.resp.raw, "_connection", None)
        sock = getattr(conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(5)
        self.resp.close()
        self.session.close()


def test_new_ticket_and_resume_with_last_event_id(hall_server: RunningServer) -> None:
    desk = signed_in(hall_server.url, "1005", 5)
    kiosk = Api(hall_server.url)
    sub = Subscription(hall_server.url, desk.token or "", "/events?window_no=5")
    tk = kiosk.post("/tickets", json={"category": "B"}).json()
    ev = sub.until(lambda e: e["event"] == "ticket.issued")
    assert ev["data"]["ticket"]["id"] == tk["id"] and ev["data"]["type"] == "ticket.issued"
    assert ev["data"]["at"].endswith("Z")
    last = ev["id"]
    sub.close()  # the connection drops
    missed = [kiosk.post("/tickets", json={"category": "B"}).json()["id"] for _ in range(3)]
    kiosk.post("/tickets", json={"category": "F"})  # not for window 5 (serves B)
    called = desk.post("/windows/5/call-next").json()["ticket"]
    again = Subscription(hall_server.url, desk.token or "", "/events?window_no=5", last_event_id=last)
    got = [again.next() for _ in range(4)]
    assert [e["data"]["ticket"]["id"] for e in got[:3]] == missed
    assert all(e["event"] == "ticket.issued" for e in got[:3])
    assert got[3]["event"] == "ticket.called" and got[3]["data"]["ticket"]["id"] == called["id"]
    ids = [int(last)] + [int(e["id"]) for e in got]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # live again after the replay
    desk.post("/windows/5/pause", json={"reason_code": "break"})
    ev = again.until(lambda e: e["event"] == "window.paused")
    assert ev["data"]["window"]["state"] == "paused" and ev["data"]["window"]["no"] == 5
    again.close()


def test_whole_hall_stream_and_auth(hall_server: RunningServer) -> None:
    r = requests.get(hall_server.url + "/api/v1/events", timeout=5)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    sup = signed_in(hall_server.url, "8001")
    sub = Subscription(hall_server.url, sup.token or "")
    kiosk = Api(hall_server.url)
    ids = [kiosk.post("/tickets", json={"category": c}).json()["id"] for c in "ACEG"]
    seen = [sub.until(lambda e: e["event"] == "ticket.issued")["data"]["ticket"]["id"] for _ in ids]
    assert seen == ids
    sub.close()


@pytest.mark.postgres
def test_listen_notify_fans_out_between_servers(tmp_path: Path) -> None:
    base = os.environ.get("HALL_TEST_PG_URL")
    if not base:
        pytest.skip("HALL_TEST_PG_URL not set")
    url = fresh_pg_url(base)
    # two servers of one hall share its secret (they refuse to start with different ones)
    a = start_server_thread(db_url=url, data_dir=tmp_path / "a", demo=True, secret_file=tmp_path / "secret.key")
    b = start_server_thread(db_url=url, data_dir=tmp_path / "b", demo=True, secret_file=tmp_path / "secret.key")
    try:
        desk_b = signed_in(b.url, "1001", 1)
        sub = Subscription(b.url, desk_b.token or "", "/events?window_no=1")
        tk = Api(a.url).post("/tickets", json={"category": "A"}).json()  # issued through server A
        ev = sub.until(lambda e: e["event"] == "ticket.issued")
        assert ev["data"]["ticket"]["id"] == tk["id"]
        # and the other way round: a call on B is seen by a subscriber of A
        sup_a = signed_in(a.url, "8001")
        sub_a = Subscription(a.url, sup_a.token or "")
        desk_b.post("/windows/1/call-next")
        ev = sub_a.until(lambda e: e["event"] == "ticket.called")
        assert ev["data"]["ticket"]["id"] == tk["id"] and ev["data"]["ticket"]["window_no"] == 1
        sub.close()
        sub_a.close()
    finally:
        a.stop()
        b.stop()
        drop_pg_db(url)
