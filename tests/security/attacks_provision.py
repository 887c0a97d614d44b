"""Live attacks on the provisioning and operations endpoints (issue 13 items 2 and 5): run by
`tests.security.attack`. Someone on the hall LAN reads the server's identity hoping for a
secret, floods the unauthenticated `/health/db` to load the database, and spends an enrollment
code made for one window at another window (a code from the bulk CSV that leaked). Writes: the
IT admin's sign-in and one enrollment code for window 11 (it enrols nothing: it is refused)."""

from __future__ import annotations

import threading

from tests.security.attack_base import AttackContext, AttackResult, short_answer

IT_ADMIN = ("9001", "demo1234")


def attack_identity_reveals_no_secret(base_url: str, ctx: AttackContext) -> AttackResult:
    """GET /identity without signing in: only the hall code and the public server id."""
    r = ctx.request("GET", "/identity")
    body = r.json() if r.status_code == 200 else {}
    only_public = (set(body) == {"hall_code", "server_id"} and len(str(body["server_id"])) == 32
                   and "sqlite" not in r.text and "/" not in r.text)
    return AttackResult("provision.identity", "GET /identity (no sign-in)", r.status_code,
                        short_answer(r), r.status_code == 200 and only_public)


def attack_health_db_flood(base_url: str, ctx: AttackContext) -> AttackResult:
    """160 unauthenticated /health/db calls at once: the database must see only a few probes."""
    stamps: list[str] = []
    statuses: list[int] = []
    lock = threading.Lock()

    def hit() -> None:
        for _ in range(20):
            r = ctx.session.get(ctx.url("/health/db"), timeout=ctx.timeout)
            with lock:
                statuses.append(r.status_code)
                if r.status_code == 200 and r.json().get("checked_at"):
                    stamps.append(str(r.json()["checked_at"]))

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    probes = len(set(stamps))
    return AttackResult("provision.health_db_flood", f"{len(statuses)} x GET /health/db",
                        200 if statuses and set(statuses) == {200} else 0,
                        f"{probes} database probes",
                        len(stamps) == len(statuses) > 0 and probes < len(stamps) / 4)


def attack_enrollment_code_at_another_window(base_url: str, ctx: AttackContext) -> AttackResult:
    """A code IT made for window 11 (a leaked CSV row) used to enrol a PC at window 12."""
    token = ctx.login(*IT_ADMIN)
    made = ctx.request("POST", "/admin/enrollment-codes", token=token, json={"window_no": 11})
    made.raise_for_status()
    code = made.json()["code"]
    r = ctx.request("POST", "/devices/enroll", json={"enrollment_code": code, "window_no": 12,
                                                     "hostname": "attacker-pc"})
    return AttackResult("provision.code_other_window", "POST /devices/enroll window 12 with "
                        "window 11's code", r.status_code, short_answer(r), r.status_code == 403)
