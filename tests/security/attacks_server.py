"""Live attacks on the hall server (issue 10 findings 3, 4, 7, 8, 9 and the server parts of 12),
for the reviewer's runner (`python -m tests.security.attack URL`) against a demo hall
(`hall-server --demo`: staff 1001..1012 / demo1234 at windows 1..12, supervisor 8001, IT 9001).

Each `attack_*` makes the attempt a dishonest caller would and reports what the server answered
and whether it was refused. They sign in at windows 1..6 and 12 of the demo hall, and the first
one locks staff 1012 out of signing in for 10 minutes (that is the point of it).
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
import os
import threading
import time
import uuid
from collections import Counter
from typing import Any

import requests

from tests.security.attack_base import AttackContext, AttackResult

PASSWORD = "demo1234"


class _Api:
    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.url = base_url.rstrip("/") + "/api/v1"
        self.s = requests.Session()
        self.s.trust_env = False
        self.token = token

    def call(self, method: str, path: str, key: str | None = None, **kw: Any) -> requests.Response:
        headers = dict(kw.pop("headers", {}) or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if key:
            headers["Idempotency-Key"] = key
        return self.s.request(method, self.url + path, headers=headers, timeout=30, **kw)


def _short(r: requests.Response | None, limit: int = 160) -> str:
    if r is None:
        return ""
    return f"{r.status_code} {r.text[:limit]}"


def _free_window(desk: _Api, window_no: int) -> None:
    """Finish whatever the window is serving (an earlier attack may have called a ticket)."""
    current = desk.call("GET", f"/windows/{window_no}").json().get("current_ticket_id")
    if current is not None:
        desk.call("POST", f"/tickets/{current}/start")
        desk.call("POST", f"/tickets/{current}/complete", json={"outcome": "completed"})


def _served_case(desk: _Api, window_no: int) -> int:
    _free_window(desk, window_no)
    cat = desk.call("GET", f"/windows/{window_no}").json()["categories"][0]
    tk = desk.call("POST", "/tickets", json={"category": cat}).json()
    desk.call("POST", f"/tickets/{tk['id']}/call", json={"window_no": window_no}).raise_for_status()
    case = desk.call("POST", f"/tickets/{tk['id']}/start").json()["case"]["id"]
    desk.call("POST", f"/tickets/{tk['id']}/complete", json={"outcome": "completed"}).raise_for_status()
    return int(case)


# ---- finding 3 -----------------------------------------------------------------------------
def attack_login_race(base_url: str, ctx: AttackContext) -> AttackResult:
    def one(_: int) -> int:
        api = _Api(base_url)
        return api.call("POST", "/auth/login", json={"staff_no": "1012", "password": "wrong-guess"}).status_code

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(one, range(20)))
    counts = Counter(codes)
    return AttackResult("login_race", "20 parallel wrong passwords for staff 1012 (limit 5)",
                        429 if counts[429] else 401, json.dumps(dict(counts)), counts[401] <= 5)


# ---- finding 4 -----------------------------------------------------------------------------
def attack_idempotency_other_window(base_url: str, ctx: AttackContext) -> AttackResult:
    w1 = _Api(base_url, ctx.login("1001", PASSWORD, 1))
    w3 = _Api(base_url, ctx.login("1003", PASSWORD, 3))
    cat = w1.call("GET", "/windows/1").json()["categories"][0]
    w1.call("POST", "/tickets", json={"category": cat})
    key = str(uuid.uuid4())
    w1.call("POST", "/windows/1/call-next", key=key)
    r = w3.call("POST", "/windows/1/call-next", key=key)
    replayed = r.status_code == 200 and r.headers.get("Idempotent-Replayed") == "true"
    return AttackResult("idempotency_other_window", "staff of window 3 replays window 1's call-next key",
                        r.status_code, _short(r), not replayed)


def attack_idempotency_burn_rating_key(base_url: str, ctx: AttackContext) -> AttackResult:
    w2 = _Api(base_url, ctx.login("1002", PASSWORD, 2))
    case_id = _served_case(w2, 2)
    rating_id = str(uuid.uuid4())
    _Api(base_url).call("POST", "/tickets", key=rating_id, json={"category": "A"})
    r = w2.call("POST", "/ratings", key=rating_id, json={
        "id": rating_id, "case_id": case_id, "window_no": 2, "level": "satisfied", "source": "desk",
        "rated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return AttackResult("idempotency_burn_rating_key",
                        "anonymous POST /tickets reusing a rating's id as its key, then the desk's rating",
                        r.status_code, _short(r), r.status_code == 201)


def attack_refresh_replay(base_url: str, ctx: AttackContext) -> AttackResult:
    desk = _Api(base_url)
    login = desk.call("POST", "/auth/login", json={"staff_no": "1005", "password": PASSWORD, "window_no": 5})
    old = login.json()["refresh_token"]
    key = str(uuid.uuid4())
    r1 = desk.call("POST", "/auth/refresh", key=key, json={"refresh_token": old})
    desk.call("POST", "/auth/refresh", json={"refresh_token": r1.json()["refresh_token"]})
    r = _Api(base_url).call("POST", "/auth/refresh", key=key, json={"refresh_token": old})
    return AttackResult("refresh_replay", "a rotated refresh token with its old Idempotency-Key",
                        r.status_code, _short(r, 80), "access_token" not in r.text)


# ---- finding 7 -----------------------------------------------------------------------------
def _open_stream(base_url: str, token: str) -> tuple[requests.Response, threading.Event]:
    s = requests.Session()
    s.trust_env = False
    resp = s.get(base_url.rstrip("/") + "/api/v1/events", stream=True, timeout=(5, 60),
                 headers={"Authorization": f"Bearer {token}"})
    ended = threading.Event()

    def read() -> None:
        try:
            for _ in resp.iter_lines():
                pass
        except (requests.RequestException, AttributeError, ValueError):
            pass
        ended.set()

    if resp.status_code == 200:
        threading.Thread(target=read, daemon=True).start()
    else:
        ended.set()
    return resp, ended


def attack_stream_after_logout(base_url: str, ctx: AttackContext) -> AttackResult:
    token = ctx.login("1004", PASSWORD, 4)
    resp, ended = _open_stream(base_url, token)
    r = _Api(base_url, token).call("POST", "/auth/logout")
    closed = ended.wait(20)
    resp.close()
    return AttackResult("stream_after_logout", "keep an /events stream open after signing out",
                        resp.status_code, f"logout {r.status_code}; stream ended: {closed}", closed)


def attack_stream_flood(base_url: str, ctx: AttackContext) -> AttackResult:
    token = ctx.login("1006", PASSWORD, 6)
    streams = [_open_stream(base_url, token) for _ in range(12)]
    codes = [resp.status_code for resp, _ in streams]
    for resp, _ in streams:
        resp.close()
    return AttackResult("stream_flood", "12 /events streams on one session", 429 if 429 in codes else 200,
                        json.dumps(dict(Counter(codes))), 429 in codes)


# ---- finding 8 -----------------------------------------------------------------------------
def _chunk(api: _Api, uid: str, offset: int, data: bytes) -> requests.Response:
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    return api.call("PATCH", f"/uploads/{uid}", data=data, headers={
        "Upload-Offset": str(offset), "Upload-Checksum": f"sha256 {digest}",
        "Content-Type": "application/offset+octet-stream", "Tus-Resumable": "1.0.0"})


def attack_upload_other_window(base_url: str, ctx: AttackContext) -> AttackResult:
    w1 = _Api(base_url, ctx.login("1001", PASSWORD, 1))
    w3 = _Api(base_url, ctx.login("1003", PASSWORD, 3))
    _free_window(w1, 1)
    cat = w1.call("GET", "/windows/1").json()["categories"][0]
    tk = w1.call("POST", "/tickets", json={"category": cat}).json()
    w1.call("POST", f"/tickets/{tk['id']}/call", json={"window_no": 1}).raise_for_status()
    case_id = w1.call("POST", f"/tickets/{tk['id']}/start").json()["case"]["id"]
    data = os.urandom(1000)
    up = w1.call("POST", f"/cases/{case_id}/documents", json={
        "item_id": "x", "filename": "a.pdf", "content_type": "application/pdf", "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest()}).json()
    _chunk(w1, up["upload_id"], 0, data[:400])
    codes = [w3.call("HEAD", f"/uploads/{up['upload_id']}").status_code,
             w3.call("GET", f"/uploads/{up['upload_id']}").status_code,
             _chunk(w3, up["upload_id"], 400, data[400:]).status_code]
    w1.call("POST", f"/tickets/{tk['id']}/complete", json={"outcome": "completed"})
    return AttackResult("upload_other_window", "window 3: HEAD, GET, PATCH (complete) window 1's upload",
                        max(codes), f"HEAD {codes[0]}, GET {codes[1]}, PATCH {codes[2]}", codes == [403, 403, 403])


def attack_upload_unknown_ids(base_url: str, ctx: AttackContext) -> AttackResult:
    w1 = _Api(base_url, ctx.login("1001", PASSWORD, 1))
    codes = Counter(_chunk(w1, uuid.uuid4().hex, 0, b"x" * 1000).status_code for _ in range(300))
    return AttackResult("upload_unknown_ids",
                        "300 PATCHes to invented upload ids (each used to leave a lock in memory; "
                        "tests/security/test_server_uploads.py counts them)",
                        404, json.dumps(dict(codes)), set(codes) == {404})


# ---- finding 9 -----------------------------------------------------------------------------
def attack_token_role_tamper(base_url: str, ctx: AttackContext) -> AttackResult:
    token = ctx.login("1002", PASSWORD, 2)
    v, body, sig = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["r"], payload["s"] = "it_admin", "9001"
    forged_body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(b"=").decode()
    r = _Api(base_url, f"{v}.{forged_body}.{sig}").call("PATCH", "/admin/staff/1003", json={})
    return AttackResult("token_role_tamper", "a staff token edited to role it_admin, old signature",
                        r.status_code, _short(r), r.status_code == 401)


# ---- finding 12 (server) ---------------------------------------------------------------------
def attack_case_other_window(base_url: str, ctx: AttackContext) -> AttackResult:
    w1 = _Api(base_url, ctx.login("1001", PASSWORD, 1))
    case_id = _served_case(w1, 1)
    w1.call("PUT", f"/cases/{case_id}/notes", json={"notes": "citizen phone 13800000000"})
    r = _Api(base_url, ctx.login("1003", PASSWORD, 3)).call("GET", f"/cases/{case_id}")
    return AttackResult("case_other_window", "staff of window 3 reads window 1's case and notes",
                        r.status_code, _short(r), r.status_code == 403 and "13800000000" not in r.text)


def attack_rating_backdated(base_url: str, ctx: AttackContext) -> AttackResult:
    desk = _Api(base_url, ctx.login("1002", PASSWORD, 2))
    case_id = _served_case(desk, 2)
    rid = str(uuid.uuid4())
    r = desk.call("POST", "/ratings", key=rid, json={
        "id": rid, "case_id": case_id, "window_no": 2, "level": "very_dissatisfied", "comment": "slow",
        "source": "desk", "rated_at": "2020-01-01T03:00:00Z"})
    stats = desk.call("GET", "/stats", params={"date": "2020-01-01", "window_no": 2}).json()
    counted = stats.get("ratings")
    if not isinstance(counted, int):  # a figures shape that splits ratings by assurance
        counted = int((stats.get("ratings_by_level") or {}).get("very_dissatisfied", 0))
    return AttackResult("rating_backdated", "an unsigned bad rating dated 2020-01-01 by the desk",
                        r.status_code, f"{_short(r, 80)}; ratings counted on 2020-01-01: {counted}",
                        counted == 0)


def attack_docs_cdn(base_url: str, ctx: AttackContext) -> AttackResult:
    r = ctx.session.get(base_url.rstrip("/") + "/docs", timeout=10)
    loads_cdn = r.status_code == 200 and ("cdn." in r.text or "jsdelivr" in r.text)
    return AttackResult("docs_cdn", "GET /docs: does the API explorer load scripts from a CDN?",
                        r.status_code, _short(r, 80), not loads_cdn)


ATTACKS = [
    attack_login_race, attack_idempotency_other_window, attack_idempotency_burn_rating_key,
    attack_refresh_replay, attack_stream_after_logout, attack_stream_flood, attack_upload_other_window,
    attack_upload_unknown_ids, attack_token_role_tamper, attack_case_other_window,
    attack_rating_backdated, attack_docs_cdn,
]
