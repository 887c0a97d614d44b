"""Live attacks on the bad-rating follow-up and appeals (issue 15): run by `tests.security.attack`.

The victim is window 8 (demo staff 1008): a bad rating on one of its cases, with the applicant
recorded (a real-name case), its follow-up and its appeal. The attackers: staff of another window
(1007 at window 7), the victim window's own clerk trying to decide their own appeal or to
assign/review, a supervisor reviewing a follow-up assigned to themselves, the IT administrator,
and anyone on the LAN without a token. Demo credentials only.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from tests.security.attack_base import AttackContext, AttackResult, short_answer

PASSWORD = "demo1234"
# Windows no other area's attack uses (see attacks_applicant.py for 9 and 10).
VICTIM_STAFF, VICTIM_WINDOW = "1008", 8
OTHER_STAFF, OTHER_WINDOW = "1007", 7
PHONE = "13700137000"


def _bad_rating(ctx: AttackContext, token: str) -> dict[str, Any]:
    """A completed real-name case at the victim window with a bad rating, made the honest way."""
    cat = ctx.request("GET", f"/windows/{VICTIM_WINDOW}", token=token).json()["categories"][0]
    tk = ctx.request("POST", "/tickets", token=token, json={"category": cat}).json()
    ctx.request("POST", f"/tickets/{tk['id']}/call", token=token, json={"window_no": VICTIM_WINDOW}).raise_for_status()
    r = ctx.request("POST", f"/tickets/{tk['id']}/start", token=token)
    r.raise_for_status()
    case_id = int(r.json()["case"]["id"])
    ctx.request("PUT", f"/cases/{case_id}/applicant", token=token, json={
        "name": "李四", "doc_type": "resident_id", "doc_number": "11010519491231002X", "phone": PHONE}).raise_for_status()
    ctx.request("POST", f"/tickets/{tk['id']}/complete", token=token, json={"outcome": "completed"}).raise_for_status()
    rid = uuid.uuid4().hex
    r = ctx.request("POST", "/ratings", token=token, json={
        "id": rid, "case_id": case_id, "window_no": VICTIM_WINDOW, "level": "very_dissatisfied",
        "comment": "态度差", "rated_at": datetime.now(UTC).isoformat()})
    r.raise_for_status()
    sup = ctx.login("8001", PASSWORD)
    items = ctx.request("GET", "/followups", token=sup, params={"window_no": VICTIM_WINDOW}).json()["items"]
    fid = next(f["id"] for f in items if f["rating_id"] == rid)
    return {"rating_id": rid, "case_id": case_id, "followup_id": fid, "sup": sup}


def _result(name: str, attempt: str, resp: Any, blocked: bool) -> AttackResult:
    return AttackResult(name, attempt, resp.status_code, short_answer(resp), blocked)


def attack_other_window_staff(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """Staff of window 7 appeal, read, work on and take the call-back number of window 8's rating."""
    victim = ctx.login(VICTIM_STAFF, PASSWORD, VICTIM_WINDOW)
    v = _bad_rating(ctx, victim)
    ctx.request("POST", f"/followups/{v['followup_id']}/assign", token=v["sup"], json={"assignee": VICTIM_STAFF})
    token = ctx.login(OTHER_STAFF, PASSWORD, OTHER_WINDOW)
    out = []
    r = ctx.request("POST", f"/ratings/{v['rating_id']}/appeal", token=token, json={"reason": "not mine but bad for figures"})
    out.append(_result("followup.appeal_other_window", "window 7 appeals window 8's rating", r, r.status_code == 403))
    r = ctx.request("GET", "/followups", token=token, params={"window_no": VICTIM_WINDOW})
    out.append(_result("followup.list_other_window", "window 7 lists window 8's follow-ups", r, r.status_code == 403))
    r = ctx.request("GET", f"/followups/{v['followup_id']}", token=token)
    out.append(_result("followup.read_other_window", "window 7 reads window 8's follow-up", r,
                       r.status_code == 404 and "态度差" not in r.text))
    r = ctx.request("GET", f"/windows/{VICTIM_WINDOW}/followups", token=token)
    out.append(_result("followup.panel_other_window", "window 7 opens window 8's desk panel", r, r.status_code == 403))
    r = ctx.request("POST", f"/followups/{v['followup_id']}/callback", token=token, json={"reached": True, "said": "x"})
    out.append(_result("followup.step_not_assignee", "window 7 records a call-back it was not given", r,
                       r.status_code == 403))
    r = ctx.request("POST", f"/followups/{v['followup_id']}/callback-number", token=token, json={"purpose": "回访"})
    out.append(_result("followup.callback_number_not_assignee", "window 7 asks for the citizen's phone", r,
                       r.status_code == 403 and PHONE not in r.text))
    return out


def attack_clerk_decides_own_appeal(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """The victim window's clerk appeals (allowed), then decides it, appeals again, assigns, reviews."""
    victim = ctx.login(VICTIM_STAFF, PASSWORD, VICTIM_WINDOW)
    v = _bad_rating(ctx, victim)
    out = []
    r = ctx.request("POST", f"/ratings/{v['rating_id']}/appeal", token=victim, json={"reason": "误触"})
    honest = r.status_code == 201
    aid = r.json().get("id") if honest else None
    r = ctx.request("POST", f"/appeals/{aid}/decision", token=victim, json={"decision": "upheld", "note": "I agree"})
    out.append(_result("followup.decide_own_appeal", "the clerk upholds their own appeal", r,
                       honest and r.status_code == 403))
    r = ctx.request("POST", f"/ratings/{v['rating_id']}/appeal", token=victim, json={"reason": "again"})
    out.append(_result("followup.second_appeal", "a second appeal on the same rating", r,
                       honest and r.status_code == 409))
    r = ctx.request("POST", f"/followups/{v['followup_id']}/assign", token=victim, json={"assignee": VICTIM_STAFF})
    out.append(_result("followup.clerk_assigns", "the clerk assigns their own follow-up", r, r.status_code == 403))
    r = ctx.request("POST", f"/followups/{v['followup_id']}/review", token=victim, json={"decision": "accept"})
    out.append(_result("followup.clerk_reviews", "the clerk reviews (closes) their own follow-up", r,
                       r.status_code in (403, 409)))
    return out


def attack_supervisor_reviews_own_work(base_url: str, ctx: AttackContext) -> AttackResult:
    """A supervisor assigns a follow-up to themselves, does it, and reviews it (four eyes)."""
    victim = ctx.login(VICTIM_STAFF, PASSWORD, VICTIM_WINDOW)
    v = _bad_rating(ctx, victim)
    sup, fid = v["sup"], v["followup_id"]
    for step, body in (("assign", {"assignee": "8001"}), ("callback", {"reached": True, "said": "x"}),
                       ("verify", {"valid": False, "finding": "no"}), ("answer", {"answer": "ok"})):
        ctx.request("POST", f"/followups/{fid}/{step}", token=sup, json=body).raise_for_status()
    r = ctx.request("POST", f"/followups/{fid}/review", token=sup, json={"decision": "accept"})
    return _result("followup.review_own_assignment", "supervisor reviews a follow-up assigned to themselves", r,
                   r.status_code == 403)


def attack_it_admin_and_anonymous(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """The IT administrator and a LAN caller without a token read or decide follow-ups and appeals."""
    victim = ctx.login(VICTIM_STAFF, PASSWORD, VICTIM_WINDOW)
    v = _bad_rating(ctx, victim)
    it = ctx.login("9001", PASSWORD)
    out = []
    for who, token in (("IT admin", it), ("no token", None)):
        want = 403 if token else 401
        r = ctx.request("GET", "/followups", token=token)
        out.append(_result("followup.list_" + ("it" if token else "anon"), f"{who} lists follow-ups", r,
                           r.status_code == want))
        r = ctx.request("POST", f"/followups/{v['followup_id']}/callback-number", token=token, json={"purpose": "x1"})
        out.append(_result("followup.phone_" + ("it" if token else "anon"), f"{who} asks for the phone", r,
                           r.status_code == want and PHONE not in r.text))
        r = ctx.request("POST", f"/ratings/{v['rating_id']}/appeal", token=token, json={"reason": "x"})
        out.append(_result("followup.appeal_" + ("it" if token else "anon"), f"{who} appeals a rating", r,
                           r.status_code == want))
    return out
