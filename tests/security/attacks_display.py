"""Live attacks on the call display (issue 14 item 4, docs/display.md): run by
`tests.security.attack`. Someone on the hall LAN, or a signed-in clerk, tries to read the
display's pages, its stream or its spoken clips without a display key IT made: with none, with
a forged one, with a staff token in its place. Every attempt must be a 401 that carries no board.
Only GET requests are sent; the demo staff's sign-in is the only write (a session).
"""

from __future__ import annotations

import json
import re

import requests

from tests.security.attack_base import AttackContext, AttackResult

DEMO_STAFF = ("1001", "demo1234")
COOKIE = "hall_display"  # hall_server.display.COOKIE
PATHS = ("/display", "/display/window/1", "/display/events", "/display/audio/1.wav",
         "/display/chime.wav")
FORGED = "d1.hall.0.AAAAAAAAAAAAAAAAAAAAAA"


def _get(ctx: AttackContext, path: str, **kw: object) -> requests.Response:
    # stream=True: a stream that wrongly opened must not hang the runner; only the head is read.
    return ctx.session.get(ctx.base_url + path, timeout=ctx.timeout, stream=True,
                           allow_redirects=False, **kw)  # type: ignore[arg-type]


def _result(name: str, attempt: str, r: requests.Response) -> AttackResult:
    ctype = r.headers.get("content-type", "")
    body = b""
    if "event-stream" not in ctype:  # a stream that opened is a leak already; do not wait on it
        for chunk in r.iter_content(8192):
            body += chunk
            if len(body) > 65536:
                break
    r.close()
    text = body.decode("utf-8", "replace")
    # Blocked: refused, and nothing of the board in the answer (no tiles, no stream, no cookie).
    leaked = "event-stream" in ctype or "data-no=" in text or bool(r.headers.get("set-cookie"))
    answer = text[:100]
    if "json" in ctype:
        try:
            answer = str(json.loads(text)["error"]["code"])
        except (ValueError, KeyError, TypeError):
            pass
    elif (m := re.search(r"<h2>(.*?)</h2>", text)) is not None:
        answer = "page: " + m.group(1)
    return AttackResult(name, attempt, r.status_code, answer, r.status_code == 401 and not leaked)


def attack_display_without_a_key(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """Anyone on the hall LAN opens the display's pages, stream and clips with no key."""
    return [_result("display.without_a_key", f"GET {p}", _get(ctx, p)) for p in PATHS]


def attack_display_with_a_forged_key(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """A made-up key, as the first-visit parameter and as the cookie."""
    out = [_result("display.forged_key", "GET /display?k=<forged>", _get(ctx, "/display", params={"k": FORGED}))]
    out += [_result("display.forged_key", f"GET {p} with a forged cookie",
                    _get(ctx, p, cookies={COOKIE: FORGED})) for p in PATHS[:3]]
    return out


def attack_display_with_a_staff_token(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """A signed-in clerk uses the staff token as the display key (cookie and bearer)."""
    try:
        token = ctx.login(*DEMO_STAFF)
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        return [AttackResult("display.staff_token", "sign in as demo staff 1001 (not a demo hall?)",
                             status, "no staff token to try", True)]
    return [
        _result("display.staff_token", "GET /display/events with the staff token as cookie",
                _get(ctx, "/display/events", cookies={COOKIE: token})),
        _result("display.staff_token", "GET /display/events with the staff token as bearer",
                _get(ctx, "/display/events", headers={"Authorization": f"Bearer {token}"})),
        _result("display.staff_token", "GET /display?k=<staff token>",
                _get(ctx, "/display", params={"k": token})),
    ]
