"""Live attacks on the applicant records (issue 17): run by `tests.security.attack`.

The victim is a case at window 10 (demo staff 1010) with an applicant recorded on it; the attackers
are signed-in staff of another window (1009 at window 9), the IT administrator, and anyone on the
LAN without a token. Each attack says what it tried and whether the server refused it. Demo
credentials only; the ID number is GB 11643's own example, not a real person's.
"""

from __future__ import annotations

from typing import Any

from tests.security.attack_base import AttackContext, AttackResult, short_answer

PASSWORD = "demo1234"
# Windows no other area's attack uses, so the runner can play every module against one demo
# server (window 1 may be left serving by another attack; staff 1012 locked by the login race).
VICTIM_STAFF, VICTIM_WINDOW = "1010", 10
OTHER_STAFF, OTHER_WINDOW = "1009", 9
VICTIM_ID = "11010519491231002X"  # GB 11643's own example number
VICTIM = {"name": "张三明", "doc_type": "resident_id", "doc_number": VICTIM_ID, "phone": "13912345678"}


def _victim_case(ctx: AttackContext) -> int:
    """A case at the victim window with the applicant on it, made the honest way by its clerk."""
    token = ctx.login(VICTIM_STAFF, PASSWORD, VICTIM_WINDOW)
    cat = ctx.request("GET", f"/windows/{VICTIM_WINDOW}", token=token).json()["categories"][0]
    tk = ctx.request("POST", "/tickets", token=token, json={"category": cat}).json()
    ctx.request("POST", f"/tickets/{tk['id']}/call", token=token, json={"window_no": VICTIM_WINDOW}).raise_for_status()
    r = ctx.request("POST", f"/tickets/{tk['id']}/start", token=token)
    r.raise_for_status()
    case_id = int(r.json()["case"]["id"])
    ctx.request("PUT", f"/cases/{case_id}/applicant", token=token, json=VICTIM).raise_for_status()
    ctx.request("POST", f"/tickets/{tk['id']}/complete", token=token, json={"outcome": "completed"})
    return case_id


def _result(name: str, attempt: str, resp: Any, blocked: bool) -> AttackResult:
    return AttackResult(name, attempt, resp.status_code, short_answer(resp), blocked)


def attack_reveal_from_another_window(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """Staff of another window read, reveal and overwrite the victim window's applicant."""
    case_id = _victim_case(ctx)
    token = ctx.login(OTHER_STAFF, PASSWORD, OTHER_WINDOW)
    out = []
    r = ctx.request("POST", f"/cases/{case_id}/applicant/reveal", token=token, json={"purpose": "curious"})
    out.append(_result("applicant.reveal_other_window", f"window 9 reveals case {case_id}", r,
                       r.status_code == 403 and VICTIM_ID not in r.text))
    r = ctx.request("GET", f"/cases/{case_id}/applicant", token=token)
    out.append(_result("applicant.read_other_window", f"window 9 reads case {case_id}", r, r.status_code == 403))
    r = ctx.request("PUT", f"/cases/{case_id}/applicant", token=token, json={**VICTIM, "phone": "13800000000"})
    out.append(_result("applicant.overwrite_other_window",
                       f"window 9 changes the call-back phone of case {case_id}", r, r.status_code == 403))
    return out


def attack_enumerate_by_id_number(base_url: str, ctx: AttackContext) -> AttackResult:
    """Window 2 asks whether this person has cases anywhere in the hall."""
    _victim_case(ctx)
    token = ctx.login(OTHER_STAFF, PASSWORD, OTHER_WINDOW)
    r = ctx.request("GET", "/applicants/search", token=token, params={"id_number": VICTIM_ID})
    hits = r.json().get("cases", []) if r.status_code == 200 else []
    return _result("applicant.enumerate_by_id", "window 9 searches the hall by a full ID number", r,
                   not [h for h in hits if h.get("window_no") != OTHER_WINDOW])


def attack_reveal_without_purpose(base_url: str, ctx: AttackContext) -> AttackResult:
    """The case's own clerk reveals with no purpose (an unlogged look)."""
    case_id = _victim_case(ctx)
    token = ctx.login(VICTIM_STAFF, PASSWORD, VICTIM_WINDOW)
    r = ctx.request("POST", f"/cases/{case_id}/applicant/reveal", token=token, json={})
    return _result("applicant.reveal_without_purpose", "reveal with an empty body", r, r.status_code == 422)


def attack_it_admin_and_anonymous(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """The IT administrator (runs the machine, not the cases) and a LAN caller with no token."""
    case_id = _victim_case(ctx)
    token = ctx.login("9001", PASSWORD)
    r1 = ctx.request("POST", f"/cases/{case_id}/applicant/reveal", token=token, json={"purpose": "maintenance"})
    r2 = ctx.request("GET", f"/cases/{case_id}/applicant")
    return [_result("applicant.it_admin_reveal", "IT administrator reveals", r1, r1.status_code == 403),
            _result("applicant.anonymous_read", "no token reads the applicant", r2, r2.status_code == 401)]


def attack_redirect_mailing(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """Another window's staff and a LAN caller redirect the victim's result to their own address
    (or read where it goes)."""
    case_id = _victim_case(ctx)
    honest = ctx.login(VICTIM_STAFF, PASSWORD, VICTIM_WINDOW)
    ctx.request("PUT", f"/cases/{case_id}/mailing", token=honest,
                json={"recipient": "张三明", "phone": "13912345678",
                      "address": "山东省济南市历下区泉城路188号"}).raise_for_status()
    token = ctx.login(OTHER_STAFF, PASSWORD, OTHER_WINDOW)
    thief = {"recipient": "李四", "phone": "13800000000", "address": "某市某区某路1号"}
    r1 = ctx.request("PUT", f"/cases/{case_id}/mailing", token=token, json=thief)
    r2 = ctx.request("GET", f"/cases/{case_id}/mailing", token=token)
    r3 = ctx.request("PUT", f"/cases/{case_id}/mailing", json=thief)
    return [_result("mailing.redirect_other_window", f"window 9 re-addresses case {case_id}", r1,
                    r1.status_code == 403),
            _result("mailing.read_other_window", f"window 9 reads where case {case_id} goes", r2,
                    r2.status_code == 403 and "泉城路" not in r2.text),
            _result("mailing.anonymous_redirect", "no token re-addresses the result", r3,
                    r3.status_code == 401)]
