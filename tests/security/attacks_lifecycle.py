"""Live attacks on the case lifecycle and the published figures (issue 15): run by
`tests.security.attack`.

The victim is an accepted (受理) case at window 11 (demo staff 1011); the attackers are its own
clerk and a clerk of another window (1013 at window 13), who would like the case concluded
"on time", a paper or phone rating of their liking entered, or the hall's report read; the IT
administrator, who is not the back office; and anyone on the LAN without a token. Demo
credentials only.
"""

from __future__ import annotations

from typing import Any

from tests.security.attack_base import AttackContext, AttackResult, short_answer

PASSWORD = "demo1234"
# Windows no other area's attack uses, so one demo server can take every module.
VICTIM_STAFF, VICTIM_WINDOW = "1011", 11
OTHER_STAFF, OTHER_WINDOW = "1013", 13


def _accepted_case(ctx: AttackContext) -> dict[str, Any]:
    """An accepted case at the victim window, made the honest way by its clerk."""
    token = ctx.login(VICTIM_STAFF, PASSWORD, VICTIM_WINDOW)
    cat = ctx.request("GET", f"/windows/{VICTIM_WINDOW}", token=token).json()["categories"][0]
    items = ctx.request("GET", "/matters?limit=500", token=token).json()["items"]
    matter = next(m["code"] for m in items if m["time_limit_days"] >= 3)
    tk = ctx.request("POST", "/tickets", token=token, json={"category": cat, "matter_code": matter}).json()
    ctx.request("POST", f"/tickets/{tk['id']}/call", token=token, json={"window_no": VICTIM_WINDOW}).raise_for_status()
    r = ctx.request("POST", f"/tickets/{tk['id']}/complete", token=token, json={"outcome": "accepted"})
    r.raise_for_status()
    case: dict[str, Any] = r.json()["case"]
    return case


def _result(name: str, attempt: str, resp: Any, blocked: bool) -> AttackResult:
    return AttackResult(name, attempt, resp.status_code, short_answer(resp), blocked)


def attack_conclude_without_back_office_role(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """The case's own clerk, a clerk of another window, IT and an anonymous caller each try to
    conclude the victim case (办结) to make the on-time rate look better."""
    case = _accepted_case(ctx)
    out = []
    body = {"result": "approved"}
    for who, token in (("own clerk", ctx.login(VICTIM_STAFF, PASSWORD, VICTIM_WINDOW)),
                       ("window 13 clerk", ctx.login(OTHER_STAFF, PASSWORD, OTHER_WINDOW)),
                       ("IT admin", ctx.login("9001", PASSWORD)), ("no token", None)):
        r = ctx.request("POST", f"/cases/{case['id']}/conclusion", token=token, json=body)
        out.append(_result("lifecycle.conclude", f"{who} concludes case {case['case_no']}", r,
                           r.status_code in (401, 403)))
    return out


def attack_enter_ratings_as_clerk(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """A clerk enters a 'phone survey' 非常满意 for their own case, and one for another window's."""
    case = _accepted_case(ctx)
    out = []
    for who, token in (("own clerk", ctx.login(VICTIM_STAFF, PASSWORD, VICTIM_WINDOW)),
                       ("window 13 clerk", ctx.login(OTHER_STAFF, PASSWORD, OTHER_WINDOW))):
        r = ctx.request("POST", "/ratings/entered", token=token, json={
            "case_no": case["case_no"], "channel": "phone", "level": "very_satisfied",
            "rated_on": case["started_at"][:10]})
        out.append(_result("lifecycle.enter_rating", f"{who} enters a phone rating for {case['case_no']}", r,
                           r.status_code == 403))
    return out


def attack_read_reports_and_deadlines(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """A clerk reads the hall's report (every window's and colleague's figures) and the other
    windows' deadline list; anonymous callers try the exports."""
    _accepted_case(ctx)
    other = ctx.login(OTHER_STAFF, PASSWORD, OTHER_WINDOW)
    out = []
    for path in ("/reports", "/reports.xlsx", "/reports.pdf"):
        r = ctx.request("GET", path, token=other)
        out.append(_result("lifecycle.report", f"window 13 clerk GET {path}", r, r.status_code == 403))
        r = ctx.request("GET", path)
        out.append(_result("lifecycle.report", f"no token GET {path}", r, r.status_code == 401))
    r = ctx.request("GET", "/case-deadlines?within_days=60", token=other)
    seen = [i for i in (r.json().get("items", []) if r.status_code == 200 else []) if i["window_no"] != OTHER_WINDOW]
    out.append(_result("lifecycle.deadlines", "window 13 clerk lists window 11's cases", r, not seen))
    return out
