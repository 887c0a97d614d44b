"""Live attacks on the rating trust chain (issue 10, findings 1, 2, 5, 6): run by
`python -m tests.security.attack URL` against a DEMO hall server (demo credentials: staff
1001..1012 / demo1234 at windows 1..12, supervisor 8001).

Each plays someone who must not be able to make a rating count as the citizen's: the window PC
(a window staff's session, or no session at all on the hall LAN), staff of another window, a
visitor's browser. An attempt is *blocked* when the server refused it. Serving cases are made
at windows 1 and 3 (signing in there takes those windows over on a demo server).
"""

from __future__ import annotations

import base64
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.security.attack_base import AttackContext, AttackResult

PASSWORD = "demo1234"


def _answer(resp: requests.Response) -> str:
    try:
        body: Any = resp.json()
    except ValueError:
        return resp.text[:100]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code", ""))
    return str(body)[:100]


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _key() -> tuple[Ed25519PrivateKey, str]:
    k = Ed25519PrivateKey.generate()
    return k, _b64u(k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def _case(ctx: AttackContext, token: str, window_no: int, *, complete: bool = True) -> int:
    cats = ctx.request("GET", f"/windows/{window_no}", token=token).json()["categories"]
    tk = ctx.request("POST", "/tickets", token=token, json={"category": cats[0]}).json()
    ctx.request("POST", f"/tickets/{tk['id']}/call", token=token, json={"window_no": window_no})
    case_id = int(ctx.request("POST", f"/tickets/{tk['id']}/start", token=token).json()["case"]["id"])
    if complete:
        ctx.request("POST", f"/tickets/{tk['id']}/complete", token=token, json={"outcome": "completed"})
    return case_id


def attack_desk_relays_its_own_pad_key(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """Finding 2: the desk (a window staff's session) tries to pair a key it holds."""
    token = ctx.login("1001", PASSWORD, 1)
    _k, pub = _key()
    out = []
    r = ctx.request("POST", "/windows/1/pads/pairings", token=token)
    out.append(AttackResult("pad.desk_starts_pairing", "POST /windows/1/pads/pairings as window staff",
                            r.status_code, _answer(r), r.status_code == 403))
    body = {"token": _b64u(uuid.uuid4().bytes), "pad_id": "pad_" + uuid.uuid4().hex[:12],
            "public_key": pub, "alg": "Ed25519"}
    r = ctx.request("POST", "/pads/register", token=token, json=body)
    out.append(AttackResult("pad.desk_relays_registration", "POST /api/v1/pads/register (old relay)",
                            r.status_code, _answer(r), r.status_code in (403, 404, 405)))
    r = ctx.request("POST", f"/pads/pairings/pp_{uuid.uuid4().hex[:12]}/confirm", token=token,
                    json={"fingerprint": "0000-0000-0000-0000"})
    out.append(AttackResult("pad.desk_confirms_pairing", "POST /pads/pairings/{id}/confirm as window staff",
                            r.status_code, _answer(r), r.status_code == 403))
    return out


def attack_swapped_key_confirmed_against_the_pad(base_url: str, ctx: AttackContext) -> AttackResult:
    """Finding 2: a key slipped in with the one-time token is not the one the pad shows."""
    sup = ctx.login("8001", PASSWORD)
    offer = ctx.request("POST", "/windows/12/pads/pairings", token=sup).json()
    _k, attacker_pub = _key()
    _k2, pad_pub = _key()
    ctx.session.post(base_url.rstrip("/") + "/pad/api/pair", timeout=ctx.timeout, json={
        "token": offer["token"], "pad_id": "pad_" + uuid.uuid4().hex[:12], "public_key": attacker_pub,
        "alg": "Ed25519"})
    from hall_server.rating_check import fingerprint

    r = ctx.request("POST", f"/pads/pairings/{offer['pairing_id']}/confirm", token=sup,
                    json={"fingerprint": fingerprint(pad_pub)})
    pads = ctx.request("GET", "/windows/12/pads", token=sup).json()["pads"]
    bound = any(p["public_key"] == attacker_pub for p in pads)
    return AttackResult("pad.swapped_key", "register an attacker key, supervisor types the pad's fingerprint",
                        r.status_code, _answer(r), r.status_code == 409 and not bound)


def attack_rate_later_link_of_another_window(base_url: str, ctx: AttackContext) -> AttackResult:
    """Finding 1: staff of window 3 asks for window 1's rate-later link."""
    own = ctx.login("1001", PASSWORD, 1)
    case_id = _case(ctx, own, 1)
    other = AttackContext(base_url, verify=ctx.verify)
    try:
        token = other.login("1003", PASSWORD, 3)
        r = other.request("GET", f"/cases/{case_id}/rate-later-link", token=token)
    finally:
        other.close()
    return AttackResult("pad.other_window_link", f"GET /cases/{case_id}/rate-later-link as window 3",
                        r.status_code, _answer(r), r.status_code == 403)


def attack_rate_later_while_serving(base_url: str, ctx: AttackContext) -> AttackResult:
    """Finding 1: the clerk rates their own case from the rate-later page while serving it."""
    token = ctx.login("1001", PASSWORD, 1)
    case_id = _case(ctx, token, 1, complete=False)
    r = ctx.request("GET", f"/cases/{case_id}/rate-later-link", token=token)
    return AttackResult("pad.link_while_serving", f"GET /cases/{case_id}/rate-later-link (case open)",
                        r.status_code, _answer(r), r.status_code == 409)


def attack_pad_screen_without_proof(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """Findings 5: a LAN visitor asks for the pad's screen and QR link without the pad's key."""
    base = base_url.rstrip("/")
    k, _pub = _key()
    t = int(time.time() * 1000)
    sig = _b64u(k.sign(f"hall-pad-heartbeat-v1\npad_visitor01\n{t}".encode()))
    out = []
    r = ctx.session.get(base + "/pad/api/state", timeout=ctx.timeout,
                        params={"since": 0, "pad_id": "pad_visitor01", "t": t, "sig": sig})
    out.append(AttackResult("pad.state_without_proof", "GET /pad/api/state signed by an unpaired key",
                            r.status_code, _answer(r), r.status_code in (403, 422)))
    r = ctx.session.post(base + "/pad/api/rate-later", timeout=ctx.timeout,
                         json={"case_id": 1, "pad_id": "pad_visitor01", "t": t + 1, "sig": sig})
    out.append(AttackResult("pad.link_without_proof", "POST /pad/api/rate-later without the pad's key",
                            r.status_code, _answer(r), r.status_code in (400, 403)))
    r = ctx.session.get(base + "/pad/api/qr.png", timeout=ctx.timeout)
    out.append(AttackResult("pad.old_qr_png", "GET /pad/api/qr.png (the desk's old leak)",
                            r.status_code, _answer(r), r.status_code == 404))
    return out


def attack_dns_rebinding_host(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """Finding 5: a page on another name that resolves to the server."""
    base = base_url.rstrip("/")
    out = []
    for path in ("/pad/", "/pad/pad.js"):
        r = ctx.session.get(base + path, headers={"Host": "rebind.attacker.test"}, timeout=ctx.timeout)
        out.append(AttackResult("pad.foreign_host", f"GET {path} with Host: rebind.attacker.test",
                                r.status_code, _answer(r), r.status_code == 421))
    r = ctx.session.post(base + "/pad/api/pair", timeout=ctx.timeout, headers={"Origin": "http://evil.test"},
                         json={"code": "000000", "window_no": 1, "pad_id": "pad_evil00001",
                               "public_key": _key()[1], "alg": "Ed25519"})
    out.append(AttackResult("pad.cross_site_pairing", "POST /pad/api/pair from Origin http://evil.test",
                            r.status_code, _answer(r), r.status_code == 403))
    return out


def attack_idle_sockets_lock_out_the_pad(base_url: str, ctx: AttackContext) -> AttackResult:
    """Finding 6: 64 idle TCP connections, then the pad page must still load at once."""
    parts = urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    socks: list[socket.socket] = []
    try:
        for _ in range(64):
            socks.append(socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=5))
        t0 = time.monotonic()
        r = ctx.session.get(base_url.rstrip("/") + "/pad/", timeout=ctx.timeout)
        took = time.monotonic() - t0
    finally:
        for s in socks:
            s.close()
    return AttackResult("pad.idle_sockets", "64 idle TCP connections, then GET /pad/",
                        r.status_code, f"{_answer(r)} in {took:.2f} s", r.status_code == 200 and took < 5)
