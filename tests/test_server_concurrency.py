"""Nothing given twice, nothing done twice: concurrent call-next over thousands of tickets
(with a deliberately naive control the same detector must catch), idempotent replay, mismatch
and concurrent duplicates, and one rating per case — on SQLite, and on PostgreSQL when
HALL_TEST_PG_URL is set."""

from __future__ import annotations

import os
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import APIRouter, Request
from sqlalchemy import text

from hall_server.app import create_app
from hall_server.settings import Settings
from tests.support.server_fixtures import (
    Api,
    RunningServer,
    drop_pg_db,
    fresh_pg_url,
    signed_in,
    start_app_thread,
    start_server_thread,
)

WINDOWS = list(range(1, 9))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    db_url = None
    if request.param == "postgres":
        base = os.environ.get("HALL_TEST_PG_URL")
        if not base:
            pytest.skip("HALL_TEST_PG_URL not set")
        db_url = fresh_pg_url(base)
    srv = start_server_thread(db_url=db_url, data_dir=tmp_path / "hall", demo=True)
    yield srv
    srv.stop()
    if db_url:
        drop_pg_db(db_url)


def double_assigned(calls: dict[int, list[int]]) -> list[int]:
    """THE detector: ticket ids handed to more than one call (any window, any time)."""
    counts = Counter(tid for ids in calls.values() for tid in ids)
    return sorted(tid for tid, n in counts.items() if n > 1)


def prepare(url: str, n: int) -> list[Api]:
    it = signed_in(url, "9001")
    for no in WINDOWS:
        assert it.put(f"/admin/windows/{no}/categories", json={"categories": ["A"]}).status_code == 200
    kiosk = Api(url)
    with ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(lambda _: kiosk.post("/tickets", json={"category": "A"}).status_code, range(n)))
    assert codes == [201] * n
    return [signed_in(url, str(1000 + no), no) for no in WINDOWS]


def drain(desks: list[Api], call: Callable[[Api, int], Any]) -> dict[int, list[int]]:
    calls: dict[int, list[int]] = {no: [] for no in WINDOWS}
    errors: list[str] = []
    start = threading.Barrier(len(desks))

    def run(no: int, desk: Api) -> None:
        start.wait()
        while True:
            r = call(desk, no)
            if r.status_code != 200:
                errors.append(f"{no}: {r.status_code} {r.text}")
                return
            tk = r.json()["ticket"]
            if tk is None:
                return
            calls[no].append(tk["id"])
            # free the window for its next call (the real server refuses a busy window)
            r = desk.post(f"/tickets/{tk['id']}/complete", json={"outcome": "completed"})
            if r.status_code != 200:
                errors.append(f"complete {tk['id']} at {no}: {r.status_code} {r.text}")
                return

    threads = [threading.Thread(target=run, args=(no, d)) for no, d in zip(WINDOWS, desks, strict=True)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(300)
    assert not errors, errors[:5]
    return calls


def test_eight_windows_never_share_a_ticket(server: RunningServer) -> None:
    n = 2000
    desks = prepare(server.url, n)
    calls = drain(desks, lambda desk, no: desk.post(f"/windows/{no}/call-next"))
    assert double_assigned(calls) == []
    assert sum(len(v) for v in calls.values()) == n
    assert sum(1 for v in calls.values() if v) >= 4, "the windows really ran concurrently"


def test_naive_control_is_caught_by_the_detector(tmp_path: Path) -> None:
    """A read-then-write call-next (test-only route) on the same server and data: the
    detector must find tickets handed out twice, or it proves nothing about the real one."""
    app = create_app(Settings(data_dir=tmp_path, demo=True))
    naive = APIRouter()

    @naive.post("/api/v1/naive/{no}/call-next")
    async def naive_call_next(request: Request, no: int) -> Any:
        store = request.app.state.hall.store
        row = await store.read(lambda c: c.execute(text(
            "SELECT id FROM tickets WHERE state = 'waiting' ORDER BY sort_key, id LIMIT 1")).first())
        if row is None:
            return {"ticket": None}

        def write(tx: Any) -> None:
            tx.conn.execute(text("UPDATE tickets SET state = 'called', window_no = :w WHERE id = :i"),
                            {"w": no, "i": row[0]})
        await store.write(write)
        return {"ticket": {"id": row[0]}}

    app.include_router(naive)
    url, server, thread = start_app_thread(app)
    try:
        kiosk = Api(url)
        for _ in range(400):
            assert kiosk.post("/tickets", json={"category": "A"}).status_code == 201
        desks = [Api(url) for _ in WINDOWS]
        calls: dict[int, list[int]] = {no: [] for no in WINDOWS}
        barrier = threading.Barrier(len(WINDOWS))

        def run(no: int, desk: Api) -> None:
            barrier.wait()
            for _ in range(80):
                tk = desk.post(f"/naive/{no}/call-next").json()["ticket"]
                if tk is None:
                    return
                calls[no].append(tk["id"])

        threads = [threading.Thread(target=run, args=(no, d)) for no, d in zip(WINDOWS, desks, strict=True)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        assert len(double_assigned(calls)) > 0
    finally:
        server.should_exit = True
        thread.join(10)


def test_idempotent_replay_and_mismatch(server: RunningServer) -> None:
    kiosk = Api(server.url)
    key = str(uuid.uuid4())
    r1 = kiosk.post("/tickets", json={"category": "B"}, key=key)
    r2 = kiosk.post("/tickets", json={"category": "B"}, key=key)
    assert r1.status_code == r2.status_code == 201
    assert r2.json() == r1.json() and r2.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in r1.headers
    r3 = kiosk.post("/tickets", json={"category": "C"}, key=key)
    assert r3.status_code == 422 and r3.json()["error"]["code"] == "idempotency_mismatch"
    w4 = signed_in(server.url, "1004", 4)
    q = w4.get("/windows/4/queue").json()["waiting"]
    assert [t["id"] for t in q].count(r1.json()["id"]) == 1 and len(q) == 1
    # a replayed call-next does not call a second ticket
    kiosk.post("/tickets", json={"category": "B"})
    ck = str(uuid.uuid4())
    a = w4.post("/windows/4/call-next", key=ck)
    b = w4.post("/windows/4/call-next", key=ck)
    assert a.status_code == b.status_code == 200 and a.json() == b.json()
    assert b.headers["Idempotent-Replayed"] == "true"
    assert len(w4.get("/windows/4/queue").json()["waiting"]) == 1
    # an error is not stored: the same key may succeed once the cause is gone
    w4.post(f"/tickets/{a.json()['ticket']['id']}/complete", json={"outcome": "completed"})
    pk = str(uuid.uuid4())
    assert w4.post("/windows/4/pause", json={"reason_code": "nope"}, key=pk).status_code == 422
    assert w4.post("/windows/4/pause", json={"reason_code": "nope"}, key=pk).status_code == 422
    assert w4.post("/windows/4/pause", json={"reason_code": "break"}, key=str(uuid.uuid4())).status_code == 200
    assert kiosk.post("/tickets", json={"category": "B"}, key="x" * 201).status_code == 422


def test_concurrent_duplicates_do_the_work_once(server: RunningServer) -> None:
    kiosk = Api(server.url)
    key = str(uuid.uuid4())
    barrier = threading.Barrier(12)

    def send(_: int) -> Any:
        api = Api(server.url)
        barrier.wait()
        return api.post("/tickets", json={"category": "D"}, key=key)

    with ThreadPoolExecutor(12) as ex:
        results = list(ex.map(send, range(12)))
    ok = [r for r in results if r.status_code == 201]
    assert all(r.status_code in (201, 409) for r in results)
    for r in results:
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "idempotency_in_progress"
    assert len({r.json()["id"] for r in ok}) == 1
    w7 = signed_in(server.url, "1007", 7)
    assert len(w7.get("/windows/7/queue").json()["waiting"]) == 1
    assert kiosk.get("/health").status_code == 200


def _served_case(url: str, window: int, staff: str) -> tuple[Api, int]:
    desk = signed_in(url, staff, window)
    cat = desk.get(f"/windows/{window}").json()["categories"][0]
    Api(url).post("/tickets", json={"category": cat})
    tk = desk.post(f"/windows/{window}/call-next").json()["ticket"]
    done = desk.post(f"/tickets/{tk['id']}/complete", json={"outcome": "completed"}).json()
    return desk, done["case"]["id"]


def rating(case_id: int, window: int, level: str = "very_satisfied", **kw: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "case_id": case_id, "window_no": window, "level": level,
            "reasons": [], "reasons_version": "GB/T 39734-2020 附录A", "comment": "", "source": "desk",
            "rated_at": "2026-11-25T09:30:00Z", **kw}


def test_one_rating_per_case_and_reason_rule(server: RunningServer) -> None:
    desk, case_id = _served_case(server.url, 9, "1009")
    reasons = desk.get("/rating-reasons").json()
    assert reasons["version"] and reasons["reasons"]
    code = reasons["reasons"][0]["code"]
    bad = rating(case_id, 9, "dissatisfied")
    r = desk.post("/ratings", json=bad, key=bad["id"])
    assert r.status_code == 422 and r.json()["error"]["code"] == "reason_required"
    r = desk.post("/ratings", json={**bad, "reasons": ["nope"]}, key=bad["id"])
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_rating_reason"
    ok = {**bad, "reasons": [code]}
    r = desk.post("/ratings", json=ok, key=ok["id"])
    assert r.status_code == 201, r.text
    assert r.json()["rating_id"] == ok["id"] and r.json()["assurance"] == "unsigned"
    again = desk.post("/ratings", json=ok, key=ok["id"])
    assert again.status_code == 201 and again.json() == r.json() and again.headers["Idempotent-Replayed"] == "true"
    second = rating(case_id, 9, "satisfied")
    r = desk.post("/ratings", json=second, key=second["id"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "case_already_rated"
    # an unsigned rating is filed on the day the server received it; the reconciliation list
    # finds it on that day and on the day the desk captured it
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    for day in (today, "2026-11-25"):
        ids = desk.get(f"/windows/9/ratings?date={day}").json()
        assert ids == {"window_no": 9, "date": day, "ids": [ok["id"]]}
    assert desk.get("/windows/9/ratings?date=2026-11-24").json()["ids"] == []
    # a bad rating with only a comment is accepted
    desk2, case2 = _served_case(server.url, 10, "1010")
    # Asking again gives the same challenge (and restarts the pad's period: issued_at moves).
    ch1 = desk2.post(f"/cases/{case2}/rating-challenge").json()
    ch2 = desk2.post(f"/cases/{case2}/rating-challenge").json()
    assert ch1["challenge"] == ch2["challenge"] and len(ch1["challenge"]) >= 22
    c = rating(case2, 10, "very_dissatisfied", comment="等太久")
    assert desk2.post("/ratings", json=c, key=c["id"]).status_code == 201
    # A rated case is not asked again (the desk marks it rated on this code).
    r = desk2.post(f"/cases/{case2}/rating-challenge")
    assert r.status_code == 409 and r.json()["error"]["code"] == "case_already_rated"


def test_concurrent_ratings_for_one_case(server: RunningServer) -> None:
    desk, case_id = _served_case(server.url, 6, "1006")
    barrier = threading.Barrier(8)

    def send(_: int) -> int:
        body = rating(case_id, 6)
        api = Api(server.url, desk.token)
        barrier.wait()
        return int(api.post("/ratings", json=body, key=body["id"]).status_code)

    with ThreadPoolExecutor(8) as ex:
        codes = sorted(ex.map(send, range(8)))
    assert codes == [201] + [409] * 7
