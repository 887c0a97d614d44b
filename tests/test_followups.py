"""The bad-rating follow-up and appeals (hall_server/followups.py) against the real server.

A bad rating opens a follow-up due on the 5th working day (the hall's calendar); every step in
order, each timed, in the timeline and the audit log; every step out of order refused; overdue;
the real-name call-back number revealed only with a purpose and audited; appeals that exclude a
rating from /stats without deleting it. Hostile callers: tests/security/test_followup_hostile.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine

from hall_server import workdays
from tests.followup_helpers import evidence, followup_of, mine, rate, sql
from tests.support.server_fixtures import Api, RunningServer, signed_in


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


def _code(r: object) -> str:
    return str(r.json()["error"]["code"])  # type: ignore[attr-defined]


def test_bad_rating_opens_followup_due_in_working_days(srv: RunningServer, desk: Api, sup: Api) -> None:
    before = sup.get("/stats", params={"window_no": 1}).json()
    good = rate(desk, 1, "satisfied")
    bad = rate(desk, 1, "dissatisfied")
    items = mine(sup.get("/followups").json()["items"], good, bad)
    assert [f["rating_id"] for f in items] == [bad["rating_id"]]  # the good one opened nothing
    fu = items[0]
    assert fu["state"] == "open" and fu["window_no"] == 1 and fu["case_id"] == bad["case_id"]
    eng = create_engine(srv.db_url)
    with eng.connect() as c:
        cal = workdays.load(c)
    eng.dispose()
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    assert fu["due_day"] == cal.working_days_after(today, 5).isoformat()  # hall rule default 5
    assert not fu["overdue"]
    assert good["rating_id"] not in {r["rating_id"] for r in sql(srv, "SELECT rating_id FROM followups")}
    # /stats: one more bad rating, open
    st = sup.get("/stats", params={"window_no": 1}).json()
    assert st["bad_open"] == before["bad_open"] + 1 and st["bad_followed_up"] == before["bad_followed_up"]


def test_full_lifecycle_timeline_audit_and_stats(srv: RunningServer, desk: Api, sup: Api) -> None:
    bad = rate(desk, 1)
    before = sup.get("/stats", params={"window_no": 1}).json()
    fid = followup_of(sup, bad["rating_id"])["id"]
    steps = [
        ("assign", sup, {"assignee": "1001"}, "assigned"),
        ("callback", desk, {"reached": False, "said": ""}, "called_back"),
        ("callback", desk, {"reached": True, "said": "等了一个小时"}, "called_back"),
        ("verify", desk, {"valid": True, "finding": "高峰时段只开一个窗口"}, "verified"),
        ("rectify", desk, {"action": "高峰时段增开窗口"}, "rectified"),
        ("answer", desk, {"answer": "已电话告知整改措施"}, "answered"),
        ("review", sup, {"decision": "send_back", "note": "答复不够具体"}, "assigned"),
        ("callback", desk, {"reached": True, "said": "满意"}, "called_back"),
        ("verify", desk, {"valid": True, "finding": "属实"}, "verified"),
        ("rectify", desk, {"action": "增开窗口，已排班"}, "rectified"),
        ("answer", desk, {"answer": "已告知排班表"}, "answered"),
        ("review", sup, {"decision": "accept", "note": "同意办结"}, "closed"),
    ]
    for step, who, body, state in steps:
        r = who.post(f"/followups/{fid}/{step}", json=body)
        assert r.status_code == 200, (step, r.text)
        assert r.json()["state"] == state, step
    view = sup.get(f"/followups/{fid}").json()
    assert view["state"] == "closed" and view["closed_at"] and view["callback_attempts"] == 3
    assert [s["step"] for s in view["timeline"]] == ["open"] + [s[0] for s in steps]
    assert all(s["at"] for s in view["timeline"])
    ats = [datetime.fromisoformat(s["at"].replace("Z", "+00:00")) for s in view["timeline"]]
    assert ats == sorted(ats)
    assert view["timeline"][-1]["actor"] == "8001" and view["timeline"][2]["actor"] == "1001"
    audit = sql(srv, "SELECT actor, action FROM audit_log WHERE target = :t ORDER BY id", t=f"followup {fid}")
    assert [a["action"] for a in audit] == ["followup." + s for s in ["open"] + [s[0] for s in steps]]
    assert sql(srv, "SELECT followed_up FROM ratings WHERE id = :i", i=bad["rating_id"])[0]["followed_up"]
    st = sup.get("/stats", params={"window_no": 1}).json()
    assert st["bad_open"] == before["bad_open"] - 1 and st["bad_followed_up"] == before["bad_followed_up"] + 1


def _at(sup: Api, desk: Api, desk_rating: dict[str, str], state: str, valid: bool = True) -> int:
    """A follow-up brought to `state` by the legal steps."""
    fid = int(followup_of(sup, desk_rating["rating_id"])["id"])
    path = {"open": [], "assigned": ["assign"], "called_back": ["assign", "callback"],
            "verified": ["assign", "callback", "verify"], "rectified": ["assign", "callback", "verify", "rectify"],
            "answered": ["assign", "callback", "verify", "rectify", "answer"],
            "closed": ["assign", "callback", "verify", "rectify", "answer", "review"]}[state]
    if not valid:
        path = [s for s in path if s != "rectify"]
    bodies = {"assign": {"assignee": "1001"}, "callback": {"reached": True, "said": "x"},
              "verify": {"valid": valid, "finding": "f"}, "rectify": {"action": "a"}, "answer": {"answer": "a"},
              "review": {"decision": "accept", "note": ""}}
    for s in path:
        who = sup if s in ("assign", "review") else desk
        r = who.post(f"/followups/{fid}/{s}", json=bodies[s])
        assert r.status_code == 200, (s, r.text)
    return fid


ALL_STEPS = {"callback": {"reached": True, "said": "x"}, "verify": {"valid": True, "finding": "f"},
             "rectify": {"action": "a"}, "answer": {"answer": "a"}, "review": {"decision": "accept", "note": ""}}
LEGAL = {"open": set(), "assigned": {"callback"}, "called_back": {"callback", "verify"},
         "verified": {"rectify"}, "rectified": {"answer"}, "answered": {"review"}, "closed": set()}


@pytest.mark.parametrize("state", list(LEGAL))
def test_every_out_of_order_step_is_refused(srv: RunningServer, desk: Api, sup: Api, state: str) -> None:
    fid = _at(sup, desk, rate(desk, 1), state)
    before = sup.get(f"/followups/{fid}").json()
    for step, body in ALL_STEPS.items():
        if step in LEGAL[state]:
            continue
        who = sup  # the supervisor may do every step: only the order refuses these
        r = who.post(f"/followups/{fid}/{step}", json=body)
        assert r.status_code == 409, (state, step, r.text)
        assert _code(r) == "illegal_transition" and r.json()["error"]["details"]["state"] == state
    if state == "closed":
        r = sup.post(f"/followups/{fid}/assign", json={"assignee": "1002"})
        assert r.status_code == 409 and _code(r) == "illegal_transition"
    after = sup.get(f"/followups/{fid}").json()
    assert after["state"] == state and len(after["timeline"]) == len(before["timeline"])  # nothing written


def test_not_valid_finding_skips_rectification(srv: RunningServer, desk: Api, sup: Api) -> None:
    fid = _at(sup, desk, rate(desk, 1), "verified", valid=False)
    r = desk.post(f"/followups/{fid}/rectify", json={"action": "a"})
    assert r.status_code == 409 and _code(r) == "rectify_not_needed"
    assert desk.post(f"/followups/{fid}/answer", json={"answer": "经核实不属实，已解释"}).json()["state"] == "answered"
    assert sup.post(f"/followups/{fid}/review", json={"decision": "accept"}).json()["state"] == "closed"


def test_verify_evidence_must_be_a_document_of_the_case(srv: RunningServer, desk: Api, sup: Api) -> None:
    bad = rate(desk, 1)
    other = rate(desk, 1, "satisfied")
    fid = _at(sup, desk, bad, "called_back")
    foreign = evidence(desk, other["case_id"])
    for ids in (["nope"], [foreign]):
        r = desk.post(f"/followups/{fid}/verify", json={"valid": True, "finding": "f", "evidence_document_ids": ids})
        assert r.status_code == 422 and _code(r) == "unknown_evidence", ids
        msg = r.json()["error"]
        assert msg["message_zh"] and msg["message_en"]
    doc = evidence(desk, bad["case_id"])
    r = desk.post(f"/followups/{fid}/verify", json={"valid": True, "finding": "监控录像", "evidence_document_ids": [doc]})
    assert r.status_code == 200, r.text
    assert sup.get(f"/followups/{fid}").json()["timeline"][-1]["data"]["evidence"] == [doc]
    # an appeal carries its evidence the same way
    r = desk.post(f"/ratings/{bad['rating_id']}/appeal", json={"reason": "误触", "evidence_document_ids": [foreign]})
    assert r.status_code == 422 and _code(r) == "unknown_evidence"
    r = desk.post(f"/ratings/{bad['rating_id']}/appeal", json={"reason": "误触", "evidence_document_ids": [doc]})
    assert r.status_code == 201 and r.json()["evidence"] == [doc]


def test_overdue_is_past_the_due_day_and_not_reviewed(srv: RunningServer, desk: Api, sup: Api) -> None:
    late = rate(desk, 1)
    done_late = rate(desk, 1)
    fresh = rate(desk, 1)
    f_late = followup_of(sup, late["rating_id"])["id"]
    f_done = _at(sup, desk, done_late, "closed")
    # The clock seam: the deadline moved into the past (as if opened two weeks ago).
    sql(srv, "UPDATE followups SET due_day = '2020-01-06' WHERE id IN (:a, :b)", a=f_late, b=f_done)
    over = mine(sup.get("/followups", params={"overdue": "true"}).json()["items"], late, done_late, fresh)
    assert [f["id"] for f in over] == [f_late]
    assert over[0]["overdue"] is True
    assert followup_of(sup, fresh["rating_id"])["overdue"] is False
    assert sup.get(f"/followups/{f_done}").json()["overdue"] is False  # reviewed in time or not: closed


def test_filters_state_and_window(srv: RunningServer, desk: Api, sup: Api) -> None:
    d2 = signed_in(srv.url, "1002", 2)
    a = rate(desk, 1)
    b = rate(d2, 2)
    fa = _at(sup, desk, a, "assigned")
    assert [f["id"] for f in mine(sup.get("/followups", params={"state": "assigned"}).json()["items"], a, b)] == [fa]
    assert [f["rating_id"] for f in mine(sup.get("/followups", params={"window_no": 2}).json()["items"], a, b)] == [
        b["rating_id"]]
    # The clerk sees their own window's only, without asking.
    seen = d2.get("/followups").json()["items"]
    assert {f["window_no"] for f in seen} == {2} and [f["rating_id"] for f in mine(seen, a, b)] == [b["rating_id"]]
    panel = d2.get("/windows/2/followups").json()
    assert [f["rating_id"] for f in mine(panel["followups"], a, b)] == [b["rating_id"]]
    assert {f["window_no"] for f in panel["followups"]} == {2} and all(x["window_no"] == 2 for x in panel["appeals"])
    d2.close()


def test_callback_number_of_a_real_name_case_is_revealed_with_purpose_and_audited(
        srv: RunningServer, desk: Api, sup: Api) -> None:
    bad = rate(desk, 1)
    r = desk.put(f"/cases/{bad['case_id']}/applicant", json={
        "name": "张三明", "doc_type": "resident_id", "doc_number": "11010519491231002X", "phone": "13800138000"})
    assert r.status_code == 200, r.text
    fid = _at(sup, desk, bad, "assigned")
    assert sup.get(f"/followups/{fid}").json()["real_name"] is True
    assert desk.post(f"/followups/{fid}/callback-number", json={}).status_code == 422  # no purpose
    r = desk.post(f"/followups/{fid}/callback-number", json={"purpose": "差评回访"})
    assert r.status_code == 200, r.text
    assert r.json()["phone"] == "13800138000" and r.headers["Cache-Control"] == "no-store"
    rows = sql(srv, "SELECT action, staff_no, purpose FROM applicant_audit WHERE case_id = :c AND action = 'reveal'",
               c=bad["case_id"])
    assert rows == [{"action": "reveal", "staff_no": "1001", "purpose": f"followup {fid}: 差评回访"}]
    # not stored in the idempotency table, nor in the audit log
    assert not sql(srv, "SELECT key FROM idempotency_keys WHERE body LIKE '%13800138000%'")
    assert not sql(srv, "SELECT id FROM audit_log WHERE after LIKE '%13800138000%'")


def test_upheld_appeal_excludes_the_rating_from_stats_but_keeps_it(srv: RunningServer, desk: Api, sup: Api) -> None:
    good = rate(desk, 1, "very_satisfied")
    bad = rate(desk, 1, "very_dissatisfied")
    before = sup.get("/stats", params={"window_no": 1}).json()
    hall_before = sup.get("/stats").json()
    r = desk.post(f"/ratings/{bad['rating_id']}/appeal", json={"reason": "评价人误触，当场已表示满意"})
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    assert r.json()["state"] == "pending"
    assert sup.get("/stats", params={"window_no": 1}).json() == before  # pending: still counted
    r = sup.post(f"/appeals/{aid}/decision", json={"decision": "upheld", "note": "监控录像证实误触"})
    assert r.status_code == 200 and r.json()["state"] == "upheld" and r.json()["decided_by"] == "8001"
    after = sup.get("/stats", params={"window_no": 1}).json()
    assert after["ratings"] == before["ratings"] - 1 and after["bad_open"] == before["bad_open"] - 1
    assert after["ratings_by_level"]["very_dissatisfied"] == before["ratings_by_level"]["very_dissatisfied"] - 1
    assert after["ratings_by_level"]["very_satisfied"] == before["ratings_by_level"]["very_satisfied"]
    assert sup.get("/stats").json()["ratings"] == hall_before["ratings"] - 1
    row = sql(srv, "SELECT level, excluded_from_figures FROM ratings WHERE id = :i", i=bad["rating_id"])
    assert row == [{"level": "very_dissatisfied", "excluded_from_figures": True}]  # never deleted
    assert good["rating_id"]
    # decided once
    r = sup.post(f"/appeals/{aid}/decision", json={"decision": "rejected", "note": "x"})
    assert r.status_code == 409 and _code(r) == "appeal_decided"
    audit = sql(srv, "SELECT actor, action, after FROM audit_log WHERE target = :t ORDER BY id",
                t=f"rating {bad['rating_id']}")
    assert [(a["actor"], a["action"]) for a in audit] == [("1001", "appeal.file"), ("8001", "appeal.decide")]
    assert json.loads(audit[1]["after"])["state"] == "upheld"
    panel = desk.get("/windows/1/followups").json()
    assert [a["state"] for a in panel["appeals"] if a["id"] == aid] == ["upheld"]


def test_rejected_appeal_keeps_the_rating_in_the_figures(srv: RunningServer, desk: Api, sup: Api) -> None:
    bad = rate(desk, 1, "dissatisfied")
    before = sup.get("/stats", params={"window_no": 1}).json()
    aid = desk.post(f"/ratings/{bad['rating_id']}/appeal", json={"reason": "不认可"}).json()["id"]
    r = sup.post(f"/appeals/{aid}/decision", json={"decision": "rejected", "note": "证据不足"})
    assert r.status_code == 200 and r.json()["state"] == "rejected"
    assert sup.get("/stats", params={"window_no": 1}).json() == before
    rejected = sup.get("/appeals", params={"state": "rejected"}).json()["items"]
    assert [a["decision_note"] for a in rejected if a["id"] == aid] == ["证据不足"]


def test_today_is_the_hall_day(srv: RunningServer, sup: Api) -> None:
    assert sup.get("/followups").json()["today"] == datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    assert date.fromisoformat(sup.get("/followups").json()["today"])


def test_sweep_opens_the_follow_up_a_path_missed(srv: RunningServer, desk: Api, sup: Api) -> None:
    """A bad rating stored without its follow-up (an older path, a rating from before 0009) gets
    one at the next sweep (run by every push pass), due by the hall's calendar."""
    from hall_server import followups
    from hall_server.db import Store

    bad = rate(desk, 1)
    sql(srv, "DELETE FROM followup_steps WHERE followup_id IN (SELECT id FROM followups WHERE rating_id = :r)",
        r=bad["rating_id"])
    sql(srv, "DELETE FROM followups WHERE rating_id = :r", r=bad["rating_id"])
    assert not mine(sup.get("/followups").json()["items"], bad)
    store = Store(srv.db_url)
    try:
        assert store.write_sync(lambda tx: followups.sweep(tx.conn)) >= 1
        assert store.write_sync(lambda tx: followups.sweep(tx.conn)) == 0
    finally:
        store.close()
    fu = followup_of(sup, bad["rating_id"])
    eng = create_engine(srv.db_url)
    with eng.connect() as c:
        cal = workdays.load(c)
    eng.dispose()
    day = sql(srv, "SELECT day FROM ratings WHERE id = :i", i=bad["rating_id"])[0]["day"]
    assert fu["state"] == "open" and fu["due_day"] == cal.working_days_after(date.fromisoformat(day), 5).isoformat()


def test_concurrent_appeals_and_decisions_have_one_winner(srv: RunningServer, desk: Api, sup: Api) -> None:
    """Eight simultaneous appeals of one rating: one is filed, seven are 409; eight simultaneous
    decisions of it (two supervisor sessions): one decides, the rest are 409 (one state change)."""
    from concurrent.futures import ThreadPoolExecutor

    bad = rate(desk, 1)
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: desk.post(f"/ratings/{bad['rating_id']}/appeal",
                                                  json={"reason": f"r{i}"}).status_code, range(8)))
    assert sorted(codes) == [201] + [409] * 7, codes
    aid = desk.get("/windows/1/followups").json()["appeals"][0]["id"]
    sup2 = signed_in(srv.url, "8001")
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: (sup if i % 2 else sup2).post(
            f"/appeals/{aid}/decision", json={"decision": "upheld" if i % 2 else "rejected", "note": f"n{i}"}),
            range(8)))
    assert sorted(r.status_code for r in replies) == [200] + [409] * 7
    winner = next(r.json() for r in replies if r.status_code == 200)
    assert sql(srv, "SELECT state, decision_note FROM appeals WHERE id = :i", i=aid) == [
        {"state": winner["state"], "decision_note": winner["decision_note"]}]
    assert len(sql(srv, "SELECT id FROM audit_log WHERE action = 'appeal.decide' AND target = :t",
                   t=f"rating {bad['rating_id']}")) == 1
    sup2.close()


def test_every_rating_path_opens_the_follow_up(srv: RunningServer, desk: Api, sup: Api) -> None:
    """The pad's own route (/pad/api/rating, signed), the desk relaying a signed pad rating and the
    citizen's rate-later page each open the follow-up of a bad rating in the same transaction."""
    import requests

    from tests.pad_helpers import SoftPad, challenge, open_cases, pad_post, pair
    from tests.test_rate_later import link, token_of

    later_case, pad_case, relay_case = open_cases(desk, 1, 3)
    # rate later (before a pad is paired: with a pad the link goes to the pad only)
    tok = token_of(link(desk, later_case))
    reasons = desk.get("/rating-reasons").json()
    with requests.Session() as s:
        s.trust_env = False
        r = s.post(srv.url + "/rate-later", data={"c": tok, "rid": "c" * 32, "step": "reasons",
                                                  "level": "dissatisfied", "reasons": reasons["reasons"][0]["code"]},
                   allow_redirects=False, timeout=30)
    assert r.status_code == 303, r.text
    pad = SoftPad()
    pair(sup, desk, 1, pad)
    m = pad.rating(case_id=pad_case, window_no=1, challenge=challenge(desk, pad_case), level="very_dissatisfied",
                   comment="太慢")
    assert pad_post(srv.url, "/pad/api/rating", pad.pad_body(m)).status_code == 200
    m2 = pad.rating(case_id=relay_case, window_no=1, challenge=challenge(desk, relay_case), level="dissatisfied",
                    comment="态度")
    assert desk.post("/ratings", json=m2, key=m2["id"]).status_code == 201
    by_case = {f["case_id"]: f for f in sup.get("/followups").json()["items"]}
    assert {later_case, pad_case, relay_case} <= set(by_case)
    assert {by_case[c]["source"] for c in (later_case, pad_case, relay_case)} == {"later", "pad"}
    assert all(by_case[c]["state"] == "open" for c in (later_case, pad_case, relay_case))
