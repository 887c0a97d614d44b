"""Live attacks on the supervisor and IT console (/console/, issue 14 item 3): run by
`tests.security.attack`.

A forged cross-site form (no CSRF token, a foreign Origin), a clerk signing in to the console,
a supervisor posting a change with their own valid token, and the console cookie replayed as an
API refresh token. Accounts are the demo hall's (clerk 1001, supervisor 8001, IT 9001, password
demo1234). Nothing is changed when an attack is blocked.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tests.security.attack_base import AttackContext, AttackResult, short_answer

if TYPE_CHECKING:
    import requests

PASSWORD = "demo1234"
CLERK, SUPERVISOR, IT = "1001", "8001", "9001"


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    return m.group(1) if m else ""


def _console_login(ctx: AttackContext, staff_no: str) -> requests.Response:
    page = ctx.session.get(ctx.base_url + "/console/login")
    return ctx.session.post(ctx.base_url + "/console/login", allow_redirects=False,
                            data={"csrf": _csrf(page.text), "staff_no": staff_no, "password": PASSWORD})


def _result(name: str, attempt: str, resp: requests.Response, blocked_if: tuple[int, ...]) -> AttackResult:
    return AttackResult(name, attempt, resp.status_code, short_answer(resp), resp.status_code in blocked_if)


def attack_console_forged_form(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """A page on another site makes the signed-in IT admin's browser post a new IT admin account:
    without the token, with a made-up one, and with the token but from a foreign Origin."""
    _console_login(ctx, IT)
    token = _csrf(ctx.session.get(base_url + "/console/staff").text)
    body = {"staff_no": "6667", "name_zh": "x", "role": "it_admin", "password": "p" * 10}
    url = base_url + "/console/staff/create"
    return [
        _result("console_forged_form", "POST /console/staff/create without a CSRF token",
                ctx.session.post(url, data=body, allow_redirects=False), (403,)),
        _result("console_forged_form", "POST /console/staff/create with a made-up token",
                ctx.session.post(url, data={**body, "csrf": "a" * 64}, allow_redirects=False), (403,)),
        _result("console_forged_form", "POST /console/staff/create, Origin: http://evil.example",
                ctx.session.post(url, data={**body, "csrf": token}, allow_redirects=False,
                                 headers={"Origin": "http://evil.example"}), (403,)),
    ]


def attack_console_clerk_signs_in(base_url: str, ctx: AttackContext) -> AttackResult:
    """A clerk's own password at the console's sign-in: refused, no session cookie."""
    r = _console_login(ctx, CLERK)
    blocked = r.status_code == 403 and "hall_console=" not in r.headers.get("set-cookie", "")
    return AttackResult("console_clerk_signs_in", f"POST /console/login staff_no={CLERK}", r.status_code,
                        short_answer(r), blocked)


def attack_console_supervisor_changes_rules(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """A supervisor with their own valid CSRF token posts IT's changes."""
    _console_login(ctx, SUPERVISOR)
    token = _csrf(ctx.session.get(base_url + "/console/rules").text)
    return [
        _result("console_supervisor_changes_rules", "POST /console/rules recall_limit=20",
                ctx.session.post(base_url + "/console/rules", data={"csrf": token, "recall_limit": "20"},
                                 allow_redirects=False), (403,)),
        _result("console_supervisor_changes_rules", f"POST /console/staff/reset staff_no={CLERK}",
                ctx.session.post(base_url + "/console/staff/reset", data={"csrf": token, "staff_no": CLERK},
                                 allow_redirects=False), (403,)),
    ]


def attack_console_cookie_as_api_token(base_url: str, ctx: AttackContext) -> AttackResult:
    """The console cookie's secret offered to the API as a refresh token."""
    _console_login(ctx, IT)
    secret = ctx.session.cookies.get("hall_console", path="/console") or ""
    with type(ctx.session)() as fresh:  # a client holding only the stolen secret
        fresh.trust_env = False
        r = fresh.post(base_url + "/api/v1/auth/refresh", json={"refresh_token": secret}, timeout=10)
    return _result("console_cookie_as_api_token", "POST /api/v1/auth/refresh with the console cookie", r, (401,))
