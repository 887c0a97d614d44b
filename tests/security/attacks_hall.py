"""Live attacks on hall administration (issue 14): run by `tests.security.attack`.

A clerk or a supervisor reaching for IT's admin operations, password guessing through the
password-change door, and a decompression-bomb photo. Accounts are the demo hall's (clerk 1001,
supervisor 8001, IT 9001, password demo1234); failed passwords go to a staff number that does not
exist, so no real account's login limit is touched. Nothing is changed when an attack is blocked.
"""

from __future__ import annotations

import struct
import zlib

from tests.security.attack_base import AttackContext, AttackResult, short_answer

PASSWORD = "demo1234"
CLERK, SUPERVISOR, IT = "1001", "8001", "9001"
NO_SUCH_STAFF = "7790"


def _result(name: str, attempt: str, resp: object, blocked_if: tuple[int, ...]) -> AttackResult:
    status = int(resp.status_code)  # type: ignore[attr-defined]
    return AttackResult(name, attempt, status, short_answer(resp), status in blocked_if)  # type: ignore[arg-type]


def attack_clerk_makes_himself_it_admin(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """A clerk's token on the admin API: role change, new account, catalog import, audit log."""
    token = ctx.login(CLERK, PASSWORD)
    out = [
        _result("clerk_makes_himself_it_admin", f"PATCH /admin/staff/{CLERK} role=it_admin",
                ctx.request("PATCH", f"/admin/staff/{CLERK}", token=token, json={"role": "it_admin"}), (403,)),
        _result("clerk_makes_himself_it_admin", "POST /admin/staff role=it_admin",
                ctx.request("POST", "/admin/staff", token=token, json={
                    "staff_no": "6666", "name_zh": "x", "role": "it_admin", "password": "p" * 10}), (403,)),
        _result("clerk_makes_himself_it_admin", "POST /admin/matters/import (text/csv)",
                ctx.request("POST", "/admin/matters/import", token=token, data=b"code,name_zh,category\n",
                            headers={"Content-Type": "text/csv"}), (403,)),
        _result("clerk_makes_himself_it_admin", "GET /admin/audit",
                ctx.request("GET", "/admin/audit", token=token), (403,)),
    ]
    return out


def attack_supervisor_resets_a_clerks_password(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """A supervisor may read rules and the audit log, but not take over an account or change rules."""
    token = ctx.login(SUPERVISOR, PASSWORD)
    return [
        _result("supervisor_resets_a_clerks_password", f"POST /admin/staff/{CLERK}/reset-password",
                ctx.request("POST", f"/admin/staff/{CLERK}/reset-password", token=token), (403,)),
        _result("supervisor_resets_a_clerks_password", "PATCH /admin/rules recall_limit=20",
                ctx.request("PATCH", "/admin/rules", token=token, json={"recall_limit": 20}), (403,)),
    ]


def attack_password_change_as_a_guessing_door(base_url: str, ctx: AttackContext) -> AttackResult:
    """Failed sign-ins and failed password changes share one limit: after 3 + 2 failures the
    next guess through POST /auth/password is 429, whatever it is."""
    for _ in range(3):
        ctx.request("POST", "/auth/login", json={"staff_no": NO_SUCH_STAFF, "password": "guess-1234"})
    for _ in range(2):
        ctx.request("POST", "/auth/password", json={"staff_no": NO_SUCH_STAFF, "password": "guess-5678",
                                                    "new_password": "new-pass-1"})
    resp = ctx.request("POST", "/auth/password", json={"staff_no": NO_SUCH_STAFF, "password": "guess-9999",
                                                       "new_password": "new-pass-1"})
    return _result("password_change_as_a_guessing_door", "6th guess via POST /auth/password", resp, (429,))


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims a huge picture: decoding it would need width*height*3 bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


def attack_photo_decompression_bomb(base_url: str, ctx: AttackContext) -> AttackResult:
    """A 40,000 x 40,000 px "photo" in a few hundred bytes: refused from its header, undecoded."""
    token = ctx.login(IT, PASSWORD)
    resp = ctx.request("PUT", f"/admin/staff/{IT}/photo", token=token, data=_png_header_only(40_000, 40_000),
                       headers={"Content-Type": "image/png"})
    return _result("photo_decompression_bomb", "PUT /admin/staff/9001/photo 40000x40000 PNG", resp, (422,))
