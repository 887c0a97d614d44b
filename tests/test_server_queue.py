"""The queue state machine of the reference server, over HTTP on loopback: call order, every
transition and every 409 a desk can meet."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.server_fixtures import Api, RunningServer, signed_in, start_server_thread


@pytest.fixture
def hall(tmp_path: Any) -> Iterator[RunningServer]:
    # no_show_min_seconds high so only the recall rule can allow a no-show here
    srv = start_server_thread(data_dir=tmp_path, demo=True)
    yield srv
    srv.stop()


def issue(api: Api, category: str = "A", **kw: Any) -> dict[str, Any]:
    r = api.post("/tickets", json={"category": category, **kw})
    assert r.status_code == 201, r.text
    return r.json()


def err(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    e = r.json()["error"]
    assert e["message_zh"] and e["message_en"] and e["request_id"] == r.headers["X-Request-ID"]
    return e


def test_call_order_green_then_due_appointment_then_rest(hall: RunningServer) -> None:
    kiosk = Api(hall.url)
    w1 = signed_in(hall.url, "1001", 1)
    n1 = issue(kiosk)
    n2 = issue(kiosk)
    far = issue(kiosk, priority="appointment", appointment_at="2099-01-01T00:00:00Z")
    due = issue(kiosk, priority="appointment", appointment_at="2000-01-01T00:00:00Z")
    green = issue(kiosk, priority="green")
    other_cat = issue(kiosk, "B")
    q = w1.get("/windows/1/queue").json()
    order = [t["id"] for t in q["waiting"]]
    assert order == [green["id"], due["id"], n1["id"], n2["id"], far["id"]]
    assert other_cat["id"] not in order
    called = []
    for _ in range(5):
        r = w1.post("/windows/1/call-next")
        assert r.status_code == 200, r.text
        tk = r.json()["ticket"]
        called.append(tk["id"])
        assert tk["state"] == "called" and tk["window_no"] == 1
        assert w1.post(f"/tickets/{tk['id']}/complete", json={"outcome": "completed"}).status_code == 200
    assert called == order
    # nobody eligible: null, not an error
    r = w1.post("/windows/1/call-next")
    assert r.status_code == 200 and r.json() == {"ticket": None}


def test_window_state_errors(hall: RunningServer) -> None:
    kiosk = Api(hall.url)
    w1 = signed_in(hall.url, "1001", 1)
    issue(kiosk)
    issue(kiosk)
    assert err(w1.post("/windows/1/pause", json={"reason_code": "nope"}), 422)["code"] == "unknown_reason"
    r = w1.post("/windows/1/pause", json={"reason_code": "break"})
    assert r.status_code == 200 and r.json()["state"] == "paused" and r.json()["pause_reason_code"] == "break"
    assert err(w1.post("/windows/1/call-next"), 409)["code"] == "window_paused"
    assert w1.post("/windows/1/resume").json()["state"] == "open"
    first = w1.post("/windows/1/call-next").json()["ticket"]
    assert err(w1.post("/windows/1/call-next"), 409)["code"] == "window_busy"
    assert w1.post(f"/tickets/{first['id']}/complete", json={"outcome": "completed"}).status_code == 200
    assert w1.post("/windows/1/close").json()["state"] == "closed"
    assert err(w1.post("/windows/1/call-next"), 409)["code"] == "window_closed"
    # another staff member may not drive window 1
    w2 = signed_in(hall.url, "1002", 2)
    assert err(w2.post("/windows/1/call-next"), 403)["code"] == "forbidden"


def test_window_in_use_and_logout_closes(hall: RunningServer) -> None:
    w1 = signed_in(hall.url, "1001", 1)
    r = Api(hall.url).post("/auth/login", json={"staff_no": "1002", "password": "demo1234", "window_no": 1})
    assert err(r, 409)["code"] == "window_in_use"
    assert w1.get("/windows/1").json()["staff"]["staff_no"] == "1001"
    assert w1.post("/auth/logout").status_code == 204
    assert err(w1.get("/me"), 401)["code"] == "unauthorized"
    w = signed_in(hall.url, "1002", 1)
    assert w.get("/windows/1").json()["state"] == "open"


def test_recall_limit_and_no_show_rule(hall: RunningServer) -> None:
    kiosk = Api(hall.url)
    w1 = signed_in(hall.url, "1001", 1)
    issue(kiosk)
    tk = w1.post("/windows/1/call-next").json()["ticket"]
    e = err(w1.post(f"/tickets/{tk['id']}/no-show"), 409)
    assert e["code"] == "no_show_too_early"
    assert e["details"]["recalls_needed"] == 2 and 0 < e["details"]["seconds_left"] <= 120
    for n in (1, 2, 3):
        r = w1.post(f"/tickets/{tk['id']}/recall")
        assert r.status_code == 200 and r.json()["recalls"] == n
    assert err(w1.post(f"/tickets/{tk['id']}/recall"), 409)["code"] == "recall_limit"
    r = w1.post(f"/tickets/{tk['id']}/no-show")
    assert r.status_code == 200 and r.json()["state"] == "no_show"
    assert w1.get("/windows/1").json()["current_ticket_id"] is None
    assert err(w1.post(f"/tickets/{tk['id']}/recall"), 409)["code"] == "illegal_transition"


def test_named_call_taken_and_not_your_ticket(hall: RunningServer) -> None:
    kiosk = Api(hall.url)
    w1 = signed_in(hall.url, "1001", 1)
    w2 = signed_in(hall.url, "1002", 2)
    a = issue(kiosk)
    b = issue(kiosk)
    r = w2.post(f"/tickets/{b['id']}/call", json={"window_no": 2})
    assert r.status_code == 200 and r.json()["window_no"] == 2
    assert err(w1.post(f"/tickets/{b['id']}/call", json={"window_no": 1}), 409)["code"] == "ticket_taken"
    assert err(w1.post(f"/tickets/{b['id']}/start"), 409)["code"] == "not_your_ticket"
    assert err(w1.post(f"/tickets/{b['id']}/complete", json={"outcome": "completed"}), 409)["code"] == "not_your_ticket"
    # the named call skipped ahead: window 1 still gets `a` next
    assert w1.post("/windows/1/call-next").json()["ticket"]["id"] == a["id"]
    e = err(w2.post(f"/tickets/{a['id']}/start"), 409)
    assert e["code"] == "not_your_ticket"
    assert err(w1.get("/tickets/999999"), 404)["code"] == "not_found"


def test_illegal_transitions_have_state(hall: RunningServer) -> None:
    kiosk = Api(hall.url)
    w1 = signed_in(hall.url, "1001", 1)
    tk = issue(kiosk)
    for action, body in [("start", None), ("recall", None), ("no-show", None), ("suspend", {}),
                         ("return", None), ("complete", {"outcome": "completed"}),
                         ("resume", {"window_no": 1})]:
        e = err(w1.post(f"/tickets/{tk['id']}/{action}", json=body), 409)
        assert e["code"] == "illegal_transition", action
        assert e["details"]["state"] == "waiting"
    called = w1.post("/windows/1/call-next").json()["ticket"]
    e = err(w1.post(f"/tickets/{called['id']}/suspend", json={}), 409)
    assert e["details"]["state"] == "called"
    r = w1.post(f"/tickets/{called['id']}/complete", json={"outcome": "rejected"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    # completing a called ticket starts it implicitly and opens the case
    r = w1.post(f"/tickets/{called['id']}/complete", json={"outcome": "rejected", "reason": "材料不全"})
    assert r.status_code == 200, r.text
    assert r.json()["ticket"]["state"] == "completed" and r.json()["case"]["outcome"] == "rejected"
    e = err(w1.post(f"/tickets/{called['id']}/complete", json={"outcome": "completed"}), 409)
    assert e["details"]["state"] == "completed"


def test_transfer_keeps_place_and_targets_window(hall: RunningServer) -> None:
    kiosk = Api(hall.url)
    w1 = signed_in(hall.url, "1001", 1)
    w2 = signed_in(hall.url, "1002", 2)
    w4 = signed_in(hall.url, "1004", 4)
    first = issue(kiosk)
    later = issue(kiosk)
    tk = w1.post("/windows/1/call-next").json()["ticket"]
    assert tk["id"] == first["id"]
    w1.post(f"/tickets/{tk['id']}/start")
    r = w1.post(f"/tickets/{tk['id']}/transfer", json={"to_window_no": 2})
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["state"] == "waiting" and moved["target_window_no"] == 2
    assert moved["queued_at"] == first["queued_at"]
    # window 3 serves A too but the ticket is for window 2 only
    w3 = signed_in(hall.url, "1003", 3)
    assert w3.post("/windows/3/call-next").json()["ticket"]["id"] == later["id"]
    got = w2.post("/windows/2/call-next").json()["ticket"]
    assert got["id"] == first["id"]
    # transfer to another category: window 4 (B) serves it, with the same case
    started = w2.post(f"/tickets/{got['id']}/start").json()
    case_id = started["case"]["id"]
    assert w2.post(f"/tickets/{got['id']}/transfer", json={"to_category": "B"}).json()["category"] == "B"
    got4 = w4.post("/windows/4/call-next").json()["ticket"]
    assert got4["id"] == first["id"] and got4["queued_at"] == first["queued_at"]
    assert w4.post(f"/tickets/{got4['id']}/start").json()["case"]["id"] == case_id
    r = w4.post(f"/tickets/{got4['id']}/transfer", json={})
    assert r.status_code == 422


def test_suspend_resume_elsewhere_and_return(hall: RunningServer) -> None:
    kiosk = Api(hall.url)
    w1 = signed_in(hall.url, "1001", 1)
    w3 = signed_in(hall.url, "1003", 3)
    w4 = signed_in(hall.url, "1004", 4)
    tk = issue(kiosk, matter_code=None)
    tk = w1.post("/windows/1/call-next").json()["ticket"]
    case = w1.post(f"/tickets/{tk['id']}/start").json()["case"]
    r = w1.post(f"/tickets/{tk['id']}/suspend", json={"note": "回家取户口本"})
    assert r.status_code == 200 and r.json()["state"] == "suspended"
    assert w1.get("/windows/1").json()["current_ticket_id"] is None
    assert [t["id"] for t in w3.get("/windows/3/queue").json()["suspended"]] == [tk["id"]]
    # window 4 serves B only: cannot resume an A ticket
    assert err(w4.post(f"/tickets/{tk['id']}/resume", json={"window_no": 4}), 409)["code"] == "window_not_serving_category"
    r = w3.post(f"/tickets/{tk['id']}/resume", json={"window_no": 3})
    assert r.status_code == 200 and r.json()["state"] == "serving" and r.json()["window_no"] == 3
    assert r.json()["case_id"] == case["id"]
    assert "户口本" in w3.get(f"/cases/{case['id']}").json()["notes"]
    r = w3.post(f"/tickets/{tk['id']}/return")
    assert r.status_code == 200 and r.json()["state"] == "waiting" and r.json()["queued_at"] == tk["queued_at"]
    assert w3.get("/windows/3").json()["current_ticket_id"] is None


def test_cases_materials_and_stats(hall: RunningServer) -> None:
    kiosk = Api(hall.url)
    w1 = signed_in(hall.url, "1001", 1)
    matters = w1.get("/matters?limit=5").json()["items"]
    m = next(x for x in matters if x["category"] == "A" and x["checklist"])
    issue(kiosk, matter_code=m["code"])
    tk = w1.post("/windows/1/call-next").json()["ticket"]
    case = w1.post(f"/tickets/{tk['id']}/start").json()["case"]
    assert [x["item_id"] for x in case["materials"]] == [i["id"] for i in m["checklist"]]
    assert all(x["status"] == "unchecked" for x in case["materials"])  # 未核对 until marked
    item = m["checklist"][0]["id"]
    r = w1.put(f"/cases/{case['id']}/materials/{item}", json={"status": "received", "note": "原件已核"})
    assert r.status_code == 200 and r.json()["materials"][0] == {"item_id": item, "status": "received", "note": "原件已核"}
    assert err(w1.put(f"/cases/{case['id']}/materials/nope", json={"status": "received"}), 422)["code"] == "unknown_item"
    assert w1.put(f"/cases/{case['id']}/notes", json={"notes": "备注"}).json()["notes"] == "备注"
    other = next(x for x in matters if x["code"] != m["code"] and x["checklist"])
    r = w1.put(f"/cases/{case['id']}/matter", json={"matter_code": other["code"]})
    assert r.status_code == 200 and r.json()["matter_code"] == other["code"]
    kept = {x["item_id"]: x["status"] for x in r.json()["materials"]}
    assert set(kept) == {i["id"] for i in other["checklist"]}
    if item in kept:
        assert kept[item] == "received"
    w1.post(f"/tickets/{tk['id']}/complete", json={"outcome": "completed"})
    st = w1.get("/stats?window_no=1").json()
    assert st["served"] == 1 and st["on_the_spot_rate"] == 1.0 and sum(st["tickets_per_hour"]) == 1
    assert w1.get("/stats").json()["served"] >= 1
    assert w1.get("/stats?date=2001-01-01").json()["served"] == 0


def test_hall_catalog_and_auth(hall: RunningServer) -> None:
    assert err(Api(hall.url).get("/hall"), 401)["code"] == "unauthorized"
    bad = Api(hall.url, token="v1.abc.def")
    assert err(bad.get("/hall"), 401)["code"] == "unauthorized"
    r = Api(hall.url).post("/auth/login", json={"staff_no": "1005", "password": "wrong"})
    assert err(r, 401)["code"] == "bad_credentials"
    api = signed_in(hall.url, "8001")
    h = api.get("/hall").json()
    assert h["code"] == "GXQ" and len(h["windows"]) >= 12 and h["rules"]["recall_limit"] == 3
    assert {c["code"] for c in h["categories"]} >= set("ABCDEFG") and h["pause_reasons"]
    # full catalog sync by pages
    items, after = [], None
    while True:
        q = "/matters?limit=300" + (f"&after={after}" if after else "")
        page = api.get(q).json()
        items += page["items"]
        after = page["next_after"]
        if after is None:
            break
    assert len(items) == 823 and len({m["code"] for m in items}) == 823
    version = page["catalog_version"]
    assert api.get(f"/matters?updated_since={version}").json()["items"] == []
    assert api.get(f"/matters/{items[0]['code']}").json() == items[0]
    photo = api.get("/staff/1001/photo")
    assert photo.status_code == 200 and photo.content[:8] == b"\x89PNG\r\n\x1a\n"
    r = api.post("/auth/refresh", json={"refresh_token": api.login_body["refresh_token"]})  # type: ignore[index]
    assert r.status_code == 200 and r.json()["staff"]["staff_no"] == "8001"
    assert api.post("/auth/refresh", json={"refresh_token": "nope"}).status_code == 401


def test_login_failure_limit(hall: RunningServer) -> None:
    api = Api(hall.url)
    for _ in range(5):
        assert api.post("/auth/login", json={"staff_no": "1006", "password": "x"}).status_code == 401
    r = api.post("/auth/login", json={"staff_no": "1006", "password": "demo1234"})
    assert err(r, 429)["code"] == "too_many_attempts" and int(r.headers["Retry-After"]) > 0
    signed_in(hall.url, "1007")  # others are not locked out


def test_admin_and_enrollment(hall: RunningServer) -> None:
    it = signed_in(hall.url, "9001")
    staff = signed_in(hall.url, "1001")
    assert err(staff.post("/admin/staff", json={"staff_no": "2001", "name_zh": "新人", "password": "longpassword"}), 403)["code"] == "forbidden"
    r = it.post("/admin/staff", json={"staff_no": "2001", "name_zh": "新人", "name_en": "New", "role": "staff", "password": "longpassword"})
    assert r.status_code == 201 and r.json()["staff_no"] == "2001"
    new = signed_in(hall.url, "2001", 5, password="longpassword")
    assert it.patch("/admin/staff/2001", json={"disabled": True}).json()["disabled"] is True
    assert new.get("/me").status_code == 401
    assert Api(hall.url).post("/auth/login", json={"staff_no": "2001", "password": "longpassword"}).status_code == 403
    r = it.put("/admin/windows/5/categories", json={"categories": ["A", "C"]})
    assert r.json()["categories"] == ["A", "C"]
    assert err(it.put("/admin/windows/5/categories", json={"categories": ["Z"]}), 422)["code"] == "unknown_category"
    code = it.post("/admin/enrollment-codes", json={"window_no": 6}).json()
    kiosk = Api(hall.url)
    body = {"enrollment_code": code["code"], "window_no": 6, "hostname": "pc-6"}
    dev = kiosk.post("/devices/enroll", json=body)
    assert dev.status_code == 200 and dev.json()["window_no"] == 6 and dev.json()["device_secret"]
    assert kiosk.post("/devices/enroll", json=body).status_code == 403  # single use
    code2 = it.post("/admin/enrollment-codes", json={"window_no": 6}).json()
    body2 = {"enrollment_code": code2["code"], "window_no": 6, "hostname": "pc-6b"}
    assert err(kiosk.post("/devices/enroll", json=body2), 409)["code"] == "window_has_device"
    assert kiosk.post("/devices/enroll", json={**body2, "replace": True}).status_code == 200
    # import: one bad row, nothing imported
    before = it.get("/matters?limit=1").json()["catalog_version"]
    rows = [{"code": f"T-{uuid.uuid4().hex[:6]}", "name_zh": "测试", "category": "A", "time_limit_days": 1},
            {"code": "T-bad", "name_zh": "坏", "category": "Q"}]
    e = err(it.post("/admin/matters/import", json=rows), 422)
    assert e["code"] == "import_invalid" and e["details"]["errors"][0]["row"] == 2
    assert it.get("/matters?limit=1").json()["catalog_version"] == before
    r = it.post("/admin/matters/import", json=rows[:1])
    assert r.status_code == 200 and r.json() == {"imported": 1, "catalog_version": before + 1}
    changed = it.get(f"/matters?updated_since={before}").json()
    assert [m["code"] for m in changed["items"]] == [rows[0]["code"]]


def test_require_device(tmp_path: Any) -> None:
    srv = start_server_thread(data_dir=tmp_path, demo=True, require_device=True)
    try:
        api = Api(srv.url)
        r = api.post("/auth/login", json={"staff_no": "1001", "password": "demo1234", "window_no": 1})
        assert err(r, 403)["code"] == "device_required"
        it = signed_in(srv.url, "9001")  # no window: no device needed
        code = it.post("/admin/enrollment-codes", json={"window_no": 1}).json()["code"]
        dev = api.post("/devices/enroll", json={"enrollment_code": code, "window_no": 1, "hostname": "pc1"}).json()
        hdr = {"X-Device-Id": dev["device_id"], "X-Device-Secret": dev["device_secret"]}
        r = api.post("/auth/login", json={"staff_no": "1001", "password": "demo1234", "window_no": 1}, headers=hdr)
        assert r.status_code == 200, r.text
        r = api.post("/auth/login", json={"staff_no": "1002", "password": "demo1234", "window_no": 2}, headers=hdr)
        assert err(r, 403)["code"] == "device_required"
    finally:
        srv.stop()


def test_demo_arrival_simulator(tmp_path: Any) -> None:
    """`hall-server --demo --arrival-rate N` issues tickets by itself, some green channel and
    some appointments (run as a real process through the CLI)."""
    import time

    from tests.support.server_fixtures import start_server_process

    srv = start_server_process(tmp_path, extra_args=("--arrival-rate", "3000"))
    try:
        sup = signed_in(srv.url, "8001")
        deadline = time.monotonic() + 60
        waiting: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            waiting = sup.get("/windows/13/queue").json()["waiting"]  # window 13 serves A-G
            if len(waiting) >= 150:
                break
            time.sleep(0.2)
        assert len(waiting) >= 150
        priorities = {t["priority"] for t in waiting}
        assert priorities == {"normal", "green", "appointment"}
        assert len({t["category"] for t in waiting}) >= 5
        assert any(t["matter_code"] for t in waiting)
        assert all(t["appointment_at"] for t in waiting if t["priority"] == "appointment")
    finally:
        srv.terminate()


def test_expired_session_frees_the_window(tmp_path: Any) -> None:
    srv = start_server_thread(data_dir=tmp_path, demo=True, refresh_token_seconds=1)
    try:
        import time

        first = signed_in(srv.url, "1001", 1)
        r = Api(srv.url).post("/auth/login", json={"staff_no": "1002", "password": "demo1234", "window_no": 1})
        assert err(r, 409)["code"] == "window_in_use"
        time.sleep(1.2)  # the only way to let a 1 s session lapse; no timing is asserted
        assert err(first.post("/auth/refresh", json={"refresh_token": first.login_body["refresh_token"]}), 401)["code"] == "unauthorized"  # type: ignore[index]
        second = signed_in(srv.url, "1002", 1)
        assert second.get("/windows/1").json()["staff"]["staff_no"] == "1002"
    finally:
        srv.stop()
