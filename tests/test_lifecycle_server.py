"""A case's life after the window over HTTP on loopback (issue 15 items 1 and 3): the deadline
stored at acceptance, the back office's conclusion (办结) by API and CLI, who may conclude, the
deadline list, on-time and on-the-spot rates computed from seeded cases with known answers,
ratings per channel (paper form with its scan, phone survey) and the reasons_version check.

Every test here failed on the code before migration 0008: there was no deadline, no
conclusion route and `on_time` was set true for every case closed at the window."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from hall_server import lifecycle, workdays
from tests.support.server_fixtures import (
    Api,
    RunningServer,
    drop_pg_db,
    fresh_pg_url,
    signed_in,
    start_server_thread,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def hall(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[RunningServer]:
    db_url = None
    if request.param == "postgresql":
        base = os.environ.get("HALL_TEST_PG_URL")
        if not base:
            pytest.skip("HALL_TEST_PG_URL not set")
        db_url = fresh_pg_url(base)
    srv = start_server_thread(db_url=db_url, data_dir=tmp_path, demo=True)
    try:
        yield srv
    finally:
        srv.stop()
        if db_url:
            drop_pg_db(db_url)


def err(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    e = r.json()["error"]
    assert e["message_zh"] and e["message_en"]
    return e


def matters(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    """A matter with a limit of some working days and an instant (即办) one."""
    items = api.get("/matters?limit=500").json()["items"]
    limited = next(m for m in items if m["time_limit_days"] >= 3 and not m["instant"])
    instant = next(m for m in items if m["instant"] or m["time_limit_days"] == 0)
    return limited, instant


def serve(desk: Api, window: int, matter: str, outcome: str) -> dict[str, Any]:
    assert Api(desk.url).post("/tickets", json={"category": "A", "matter_code": matter}).status_code == 201
    tk = desk.post(f"/windows/{window}/call-next").json()["ticket"]
    r = desk.post(f"/tickets/{tk['id']}/complete", json={"outcome": outcome})
    assert r.status_code == 200, r.text
    case: dict[str, Any] = r.json()["case"]
    return case


def case_row(srv: RunningServer, case_id: int) -> dict[str, Any]:
    eng = create_engine(srv.db_url)
    with eng.connect() as c:
        row = dict(c.execute(text("SELECT * FROM cases WHERE id = :i"), {"i": case_id}).mappings().one())
    eng.dispose()
    return row


def server_calendar(srv: RunningServer) -> workdays.WorkCalendar:
    eng = create_engine(srv.db_url)
    with eng.connect() as c:
        cal = workdays.load(c)
    eng.dispose()
    return cal


def today_of(api: Api) -> date:
    return date.fromisoformat(api.get("/case-deadlines").json()["today"])


def backdate(srv: RunningServer, case_id: int, accepted: date, limit: int) -> str:
    """Move a case's acceptance into the past (as if accepted then), its deadline recomputed
    with the server's own calendar: the seeded part of the known answers."""
    deadline = lifecycle.deadline_for(accepted, limit, server_calendar(srv)).isoformat()
    eng = create_engine(srv.db_url)
    with eng.begin() as c:
        c.execute(text("UPDATE cases SET day = :d, deadline_day = :dl, time_limit_days = :n WHERE id = :i"),
                  {"d": accepted.isoformat(), "dl": deadline, "n": limit, "i": case_id})
        c.execute(text("UPDATE tickets SET day = :d WHERE case_id = :i"), {"d": accepted.isoformat(), "i": case_id})
    eng.dispose()
    return deadline


def upload_scan(api: Api, case_id: int, data: bytes) -> str:
    r = api.post(f"/cases/{case_id}/documents", json={
        "item_id": "rating_form", "filename": "form.png", "content_type": "image/png", "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest()}, key=str(uuid.uuid4()))
    assert r.status_code == 201, r.text
    uid = r.json()["upload_id"]
    r = api.s.patch(f"{api.url}/api/v1/uploads/{uid}", data=data, timeout=30, headers=api.headers(extra={
        "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream", "Tus-Resumable": "1.0.0",
        "Upload-Checksum": "sha256 " + base64.b64encode(hashlib.sha256(data).digest()).decode()}))
    assert r.status_code == 204, r.text
    return str(api.get(f"/uploads/{uid}").json()["receipt"]["document_id"])


def test_accepted_case_gets_its_deadline_and_is_concluded_by_the_back_office(hall: RunningServer) -> None:
    w1 = signed_in(hall.url, "1001", 1)
    sup = signed_in(hall.url, "8001")
    limited, _ = matters(w1)
    case = serve(w1, 1, limited["code"], "accepted")
    row = case_row(hall, case["id"])
    today = date.fromisoformat(row["day"])
    want = lifecycle.deadline_for(today, limited["time_limit_days"], server_calendar(hall))
    assert row["deadline_day"] == want.isoformat() and row["time_limit_days"] == limited["time_limit_days"]
    assert row["on_time"] is None and row["conclusion"] is None  # not a constant any more
    assert not row["on_the_spot"]

    # hostile callers: the clerk of the case's window, a clerk of another window, IT
    assert err(w1.post(f"/cases/{case['id']}/conclusion", json={"result": "approved"}), 403)["code"] == "forbidden"
    w2 = signed_in(hall.url, "1002", 2)
    assert err(w2.post(f"/cases/{case['id']}/conclusion", json={"result": "approved"}), 403)["code"] == "forbidden"
    it = signed_in(hall.url, "9001")
    assert err(it.post(f"/cases/{case['id']}/conclusion", json={"result": "approved"}), 403)["code"] == "forbidden"
    assert case_row(hall, case["id"])["conclusion"] is None

    # bad input: a date before the acceptance, after today, an unknown result
    before = (today - timedelta(days=1)).isoformat()
    assert err(sup.post(f"/cases/{case['id']}/conclusion", json={"result": "approved", "date": before}),
               422)["code"] == "bad_conclusion_date"
    after = (today + timedelta(days=1)).isoformat()
    assert err(sup.post(f"/cases/{case['id']}/conclusion", json={"result": "approved", "date": after}),
               422)["code"] == "bad_conclusion_date"
    assert err(sup.post(f"/cases/{case['id']}/conclusion", json={"result": "maybe"}), 422)["code"] == "validation_error"

    r = sup.post(f"/cases/{case['id']}/conclusion", json={"result": "approved", "note": "审批通过"},
                 key=str(uuid.uuid4()))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["conclusion"] == "approved" and out["concluded_day"] == today.isoformat() and out["on_time"] is True
    assert err(sup.post(f"/cases/{case['id']}/conclusion", json={"result": "refused"}), 409)["code"] == "case_already_concluded"
    audit = sup.get("/admin/audit?action=case.conclude").json()
    rows = audit["items"] if isinstance(audit, dict) else audit
    assert any(a["target"] == case["case_no"] and a["actor"] == "8001" for a in rows)


def test_only_accepted_cases_are_concluded_and_completed_ones_are_on_the_spot(hall: RunningServer) -> None:
    w1 = signed_in(hall.url, "1001", 1)
    sup = signed_in(hall.url, "8001")
    _, instant = matters(w1)
    done = serve(w1, 1, instant["code"], "completed")
    row = case_row(hall, done["id"])
    assert row["conclusion"] == "approved" and row["on_the_spot"] and row["on_time"]
    assert row["concluded_day"] == row["day"] == row["deadline_day"]
    assert err(sup.post(f"/cases/{done['id']}/conclusion", json={"result": "approved"}), 409)["code"] == "case_not_accepted"
    fix = serve(w1, 1, instant["code"], "correction")  # 补正: nothing accepted, counts nowhere
    row = case_row(hall, fix["id"])
    assert row["deadline_day"] is None and row["on_time"] is None and row["on_the_spot"] is None
    assert err(sup.post(f"/cases/{fix['id']}/conclusion", json={"result": "approved"}), 409)["code"] == "case_not_accepted"


def test_rates_and_channels_from_seeded_cases_with_known_answers(hall: RunningServer) -> None:
    w1 = signed_in(hall.url, "1001", 1)
    sup = signed_in(hall.url, "8001")
    limited, instant = matters(w1)
    today = today_of(sup)
    a = serve(w1, 1, limited["code"], "accepted")   # concluded today: on time
    b = serve(w1, 1, limited["code"], "accepted")   # accepted 20 days ago with 2 days: late
    c = serve(w1, 1, instant["code"], "completed")  # at the window: on the spot, on time
    d = serve(w1, 1, limited["code"], "accepted")   # still with the back office
    back = today - timedelta(days=20)
    b_deadline = backdate(hall, b["id"], back, 2)
    assert b_deadline < today.isoformat()
    for case in (a, b):
        r = sup.post(f"/cases/{case['id']}/conclusion", json={"result": "approved", "date": today.isoformat()})
        assert r.status_code == 200, r.text
    late = case_row(hall, b["id"])["on_time"]
    assert late is not None and not late
    # the deadline list: d is due within its limit, b is no longer open; a past-due open case shows overdue
    e = serve(w1, 1, limited["code"], "accepted")
    backdate(hall, e["id"], back, 1)
    items = sup.get(f"/case-deadlines?within_days={limited['time_limit_days']}").json()["items"]
    by_no = {i["case_no"]: i for i in items}
    assert by_no[e["case_no"]]["state"] == "overdue" and by_no[e["case_no"]]["working_days_left"] < 0
    assert by_no[d["case_no"]]["state"] == "due_soon" and b["case_no"] not in by_no and a["case_no"] not in by_no
    assert items[0]["case_no"] == e["case_no"]  # the most urgent first
    # a clerk sees only their own window's list
    w2 = signed_in(hall.url, "1002", 2)
    assert w2.get("/case-deadlines?within_days=60").json()["items"] == []

    # ratings from four channels: desk, second screen (bad), phone survey, paper form with scan
    reasons = w1.get("/rating-reasons").json()
    base = {"reasons_version": reasons["version"], "rated_at": "2026-01-01T00:00:00Z", "comment": ""}
    r = w1.post("/ratings", json={**base, "id": str(uuid.uuid4()), "case_id": a["id"], "window_no": 1,
                                  "level": "very_satisfied", "reasons": [], "source": "desk"})
    assert r.status_code == 201, r.text
    r = w1.post("/ratings", json={**base, "id": str(uuid.uuid4()), "case_id": c["id"], "window_no": 1,
                                  "level": "dissatisfied", "reasons": [reasons["reasons"][0]["code"]],
                                  "source": "second_screen"})
    assert r.status_code == 201, r.text
    r = sup.post("/ratings/entered", json={"case_no": d["case_no"], "channel": "phone", "level": "satisfied",
                                            "rated_on": today.isoformat(), "reasons_version": reasons["version"]})
    assert r.status_code == 201, r.text
    assert r.json()["assurance"] == "entered"
    # paper without the scan: refused; with another case's document: refused; with its own: stored
    paper = {"case_no": b["case_no"], "channel": "paper", "level": "basic", "rated_on": today.isoformat()}
    assert err(sup.post("/ratings/entered", json=paper), 422)["code"] == "form_required"
    other_doc = upload_scan(sup, a["id"], b"%PNG-not-really-but-bytes-a")
    assert err(sup.post("/ratings/entered", json={**paper, "form_document_id": other_doc}), 422)["code"] == "bad_form_document"
    doc = upload_scan(sup, b["id"], b"%PNG-scanned-form-bytes-b")
    r = sup.post("/ratings/entered", json={**paper, "form_document_id": doc})
    assert r.status_code == 201, r.text
    assert err(sup.post("/ratings/entered", json={**paper, "form_document_id": doc}), 409)["code"] == "case_already_rated"
    # a clerk never enters a paper or phone rating
    assert err(w1.post("/ratings/entered", json={**paper, "channel": "phone", "case_no": e["case_no"]}),
               403)["code"] == "forbidden"

    rep = sup.get(f"/reports?from={today.isoformat()}&to={today.isoformat()}&by=window").json()
    h = rep["hall"]
    # accepted today: a, c, d (b and e were accepted 20 days ago); concluded today: a, b, c
    assert h["accepted"] == 3 and h["concluded"] == 3
    assert h["on_time"] == 2 and h["on_time_rate"] == round(2 / 3, 4)
    assert h["on_the_spot"] == 1 and h["on_the_spot_rate"] == round(1 / 3, 4)
    assert h["ratings"] == 4 and h["satisfaction_rate"] == 0.75 and h["bad"] == 1 and h["bad_open"] == 1
    assert {k: v for k, v in h["ratings_by_channel"].items() if v} == {"desk": 1, "second_screen": 1, "phone": 1, "paper": 1}
    assert h["satisfaction_by_channel"]["second_screen"] == 0.0 and h["satisfaction_by_channel"]["desk"] == 1.0
    assert h["ratings_by_assurance"]["entered"] == 2 and h["ratings_by_assurance"]["unsigned"] == 2
    assert [r["key"] for r in rep["rows"]] == [1]
    # the desk's /stats uses the same rules
    st = w1.get("/stats?window_no=1").json()
    assert st["on_time_rate"] == round(2 / 3, 4) and st["on_the_spot_rate"] == round(1 / 3, 4)
    # the 20-day range holds b's acceptance too
    wide = sup.get(f"/reports?from={back.isoformat()}&to={today.isoformat()}&by=hall").json()["hall"]
    assert wide["accepted"] == 5 and wide["concluded"] == 3 and wide["on_time_rate"] == round(2 / 3, 4)
    # reports are the supervisor's and IT's, never a window's
    assert err(w1.get("/reports"), 403)["code"] == "forbidden"
    assert err(sup.get("/reports?from=2026-02-01&to=2026-01-01"), 422)["code"] == "bad_range"


def test_reasons_version_is_checked_with_a_grace_period(hall: RunningServer) -> None:
    w1 = signed_in(hall.url, "1001", 1)
    _, instant = matters(w1)
    served = w1.get("/rating-reasons").json()

    def rate(version: str) -> Any:
        case = serve(w1, 1, instant["code"], "completed")
        return w1.post("/ratings", json={"id": str(uuid.uuid4()), "case_id": case["id"], "window_no": 1,
                                         "level": "satisfied", "reasons": [], "reasons_version": version,
                                         "comment": "", "source": "desk", "rated_at": "2026-01-01T00:00:00Z"})

    assert rate(served["version"]).status_code == 201
    e = err(rate("made-up v9"), 422)
    assert e["code"] == "unknown_reasons_version" and e["details"]["current"] == served["version"]
    it = signed_in(hall.url, "9001")  # the list and the rules are IT's to change
    new = {"version": "hall list 2026-12",
           "reasons": [{k: x[k] for k in ("code", "text_zh", "text_en")} for x in served["reasons"]]}
    r = it.put("/admin/rating-reasons", json=new)
    assert r.status_code == 200, r.text
    assert rate(served["version"]).status_code == 201  # the old list, within the grace period
    assert rate("hall list 2026-12").status_code == 201
    assert err(rate("made-up v9"), 422)["code"] == "unknown_reasons_version"
    r = it.patch("/admin/rules", json={"reasons_version_grace_days": 0})
    assert r.status_code == 200, r.text
    import time

    time.sleep(0.01)
    assert err(rate(served["version"]), 422)["code"] == "unknown_reasons_version"


def test_conclude_from_the_command_line(hall: RunningServer) -> None:
    w1 = signed_in(hall.url, "1001", 1)
    limited, _ = matters(w1)
    case = serve(w1, 1, limited["code"], "accepted")
    day = case_row(hall, case["id"])["day"]
    cmd = [sys.executable, "-m", "hall_server", "conclude", case["case_no"], "--result", "withdrawn",
           "--date", day, "--db", hall.db_url, "--data-dir", str(hall.data_dir)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    row = case_row(hall, case["id"])
    assert row["conclusion"] == "withdrawn" and row["on_time"] and row["concluded_by"].startswith("cli:")
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "case_already_concluded" in again.stderr
    bad = subprocess.run(cmd[:7] + ["--date", "2026-13-40"] + cmd[9:], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "error" in bad.stderr
