"""The supervisor and IT console (/console/, hall_server/console.py), against the real server.

Requests-level tests: sign-in by role (staff refused), the session cookie's flags, CSRF on every
POST (none, wrong, cross-origin, another session's), supervisors read but never write, the
Content-Security-Policy on every page, logout ending the server session, and the cookie being
no API refresh token. The Chromium tests (a real hall built only through the console, the live
page's update figure, axe-core and screenshots) are in tests/test_console_browser.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.server_fixtures import (
    REPO_ROOT,
    Api,
    ServerProcess,
    drop_pg_db,
    fresh_pg_url,
    signed_in,
    start_server_process,
)

IT_PW = "it-admin-pass"
MINIMAL_TOML = """
[hall]
code = "TST"
name_zh = "测试政务服务中心"
name_en = "Test Service Centre"

[admin]
staff_no = "9001"
name_zh = "信息管理员"
name_en = "IT admin"

[[categories]]
code = "A"
name_zh = "综合受理"
name_en = "General intake"

[[windows]]
no = 1
name_zh = "1号窗口"
name_en = "Window 1"
categories = ["A"]
"""

PAGES = ["/console/", "/console/figures", "/console/ratings", "/console/staff", "/console/windows",
         "/console/reasons", "/console/rules", "/console/calendar", "/console/devices", "/console/catalog",
         "/console/audit", "/console/reports", "/console/cases", "/console/rating-entry"]
IT_ONLY = {"/console/staff", "/console/devices", "/console/catalog"}


def init_empty_hall(data: Path, db_url: str | None = None) -> None:
    """`hall-server init --from` a toml with only what init requires (hall, one category, one
    window) and the first IT admin."""
    data.mkdir(parents=True, exist_ok=True)
    spec = data / "hall.toml"
    spec.write_text(MINIMAL_TOML, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("HALL_DB_URL", None)
    db = ["--db", db_url] if db_url else []
    r = subprocess.run([sys.executable, "-m", "hall_server", "init", "--from", str(spec), "--admin-password-stdin",
                        "--data-dir", str(data), *db], input=IT_PW + "\n", capture_output=True, text=True,
                       timeout=180, env=env, cwd=str(REPO_ROOT))
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db_url = None
    if request.param == "postgresql":
        base = os.environ.get("HALL_TEST_PG_URL")
        if not base:
            pytest.skip("HALL_TEST_PG_URL not set")
        db_url = fresh_pg_url(base)
    data = tmp_path_factory.mktemp("console") / "hall"
    init_empty_hall(data, db_url)
    srv = start_server_process(data, demo=False, db_url=db_url)
    try:
        yield srv
    finally:
        srv.terminate()
        if db_url:
            drop_pg_db(db_url)


def browser_session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field in the page"
    return m.group(1)


def console_login(url: str, staff_no: str, password: str) -> tuple[requests.Session, requests.Response]:
    s = browser_session()
    page = s.get(url + "/console/login")
    r = s.post(url + "/console/login", data={"csrf": csrf_of(page.text), "staff_no": staff_no,
                                             "password": password, "next": "/console/"}, allow_redirects=False)
    return s, r


def it_session(url: str) -> requests.Session:
    s, r = console_login(url, "9001", IT_PW)
    assert r.status_code == 303, r.text
    return s


def test_sign_in_sets_a_strict_httponly_cookie_tied_to_a_server_session(server: ServerProcess) -> None:
    url = server.url
    assert browser_session().get(url + "/console/", allow_redirects=False).headers["location"].startswith(
        "/console/login")
    s, r = console_login(url, "9001", IT_PW)
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    cookie = r.headers["set-cookie"]
    assert "hall_console=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Path=/console" in cookie
    page = s.get(url + "/console/")
    assert page.status_code == 200 and "1号窗口" in page.text
    # The cookie's secret is no API refresh token.
    r = Api(url).post("/auth/refresh", json={"refresh_token": s.cookies["hall_console"]})
    assert r.status_code == 401
    # Logout (a CSRF-protected POST) closes the server session: the same cookie opens nothing.
    secret = s.cookies["hall_console"]
    assert s.post(url + "/console/logout", data={"csrf": csrf_of(page.text)}, allow_redirects=False).status_code == 303
    replay = browser_session()
    replay.cookies.set("hall_console", secret, path="/console")
    assert replay.get(url + "/console/", allow_redirects=False).status_code == 303


def test_wrong_password_and_staff_role_are_refused(server: ServerProcess) -> None:
    url = server.url
    _, r = console_login(url, "9001", "not-the-password")
    assert r.status_code == 401 and "hall_console=" not in r.headers.get("set-cookie", "")
    it = it_session(url)
    page = it.get(url + "/console/staff").text
    r = it.post(url + "/console/staff/create", data={"csrf": csrf_of(page), "staff_no": "3001", "name_zh": "王五",
                                                     "role": "staff", "password": "clerk-pass-3"}, allow_redirects=False)
    assert r.status_code == 303, r.text
    _, r = console_login(url, "3001", "clerk-pass-3")
    assert r.status_code == 403 and "hall_console=" not in r.headers.get("set-cookie", "")
    assert "主管和信息管理员" in r.text
    # ... while the same clerk signs in to the API as before.
    assert signed_in(url, "3001", password="clerk-pass-3").token


def test_every_post_needs_the_sessions_csrf_token(server: ServerProcess) -> None:
    url = server.url
    it = it_session(url)
    good = csrf_of(it.get(url + "/console/windows").text)
    body = {"name_zh": "9号窗口", "name_en": "Window 9", "no": "9", "categories": "A"}
    # none, wrong, another session's token, a cross-origin form
    assert it.post(url + "/console/windows/add", data=body, allow_redirects=False).status_code == 403
    assert it.post(url + "/console/windows/add", data={**body, "csrf": "0" * 64}, allow_redirects=False).status_code == 403
    other = csrf_of(it_session(url).get(url + "/console/windows").text)
    assert other != good
    assert it.post(url + "/console/windows/add", data={**body, "csrf": other}, allow_redirects=False).status_code == 403
    r = it.post(url + "/console/windows/add", data={**body, "csrf": good}, allow_redirects=False,
                headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "CSRF" in r.text
    # the login form too (login CSRF): no token, or no pre-session cookie
    fresh = browser_session()
    assert fresh.post(url + "/console/login", data={"staff_no": "9001", "password": IT_PW},
                      allow_redirects=False).status_code == 403
    # nothing above reached the database
    windows = signed_in(url, "9001", password=IT_PW).get("/windows").json()
    assert 9 not in [w["no"] for w in windows]
    # and with the right token it works
    assert it.post(url + "/console/windows/add", data={**body, "csrf": good}, allow_redirects=False).status_code == 303
    windows = signed_in(url, "9001", password=IT_PW).get("/windows").json()
    assert 9 in [w["no"] for w in windows]
    r = it.post(url + "/console/windows/retire", data={"no": "9", "csrf": good}, allow_redirects=False)
    assert r.status_code == 303


def test_supervisor_reads_but_cannot_change_anything(server: ServerProcess) -> None:
    url = server.url
    it = it_session(url)
    page = it.get(url + "/console/staff").text
    r = it.post(url + "/console/staff/create", data={"csrf": csrf_of(page), "staff_no": "8101", "name_zh": "主管甲",
                                                     "role": "supervisor", "password": "super-pass-1"},
                allow_redirects=False)
    assert r.status_code == 303, r.text
    sup, r = console_login(url, "8101", "super-pass-1")
    assert r.status_code == 303
    for p in PAGES:
        got = sup.get(url + p, allow_redirects=False)
        assert got.status_code == (403 if p in IT_ONLY else 200), p
    token = csrf_of(sup.get(url + "/console/rules").text)
    for path, data in (("/console/rules", {"recall_limit": "9"}),
                       ("/console/windows/add", {"no": "7", "name_zh": "七"}),
                       ("/console/staff/reset", {"staff_no": "9001"}),
                       ("/console/staff/update", {"staff_no": "8101", "role": "it_admin"}),
                       ("/console/reasons/pause", {"code": "x", "name_zh": "x", "public_zh": "x"})):
        r = sup.post(url + path, data={**data, "csrf": token}, allow_redirects=False)
        assert r.status_code == 403, path
    # an IT admin cannot lock themselves out either
    it_token = csrf_of(it.get(url + "/console/staff").text)
    r = it.post(url + "/console/staff/update", data={"csrf": it_token, "staff_no": "9001", "disabled": "1"})
    assert r.status_code == 409 and "不能停用自己的账号" in r.text
    rules = signed_in(url, "9001", password=IT_PW).get("/admin/rules").json()
    assert rules["recall_limit"] != 9
    audit = signed_in(url, "9001", password=IT_PW).get("/admin/audit?limit=500").json()
    assert not [a for a in audit if a["actor"] == "8101"]


def test_every_page_has_a_strict_csp_and_no_external_reference(server: ServerProcess) -> None:
    url = server.url
    it = it_session(url)
    for p in [*PAGES, "/console/login"]:
        r = it.get(url + p)
        assert r.status_code == 200, p
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in r.text and " style=" not in r.text and "onclick" not in r.text
        for ref in re.findall(r'(?<![-\w])(?:src|href|action)="([^"]*)"', r.text):
            assert ref.startswith("/console/") or ref.startswith("#"), (p, ref)


def test_password_reset_from_the_console_forces_a_change(server: ServerProcess) -> None:
    url = server.url
    it = it_session(url)
    page = it.get(url + "/console/staff").text
    it.post(url + "/console/staff/create", data={"csrf": csrf_of(page), "staff_no": "8102", "name_zh": "主管乙",
                                                 "role": "supervisor", "password": "super-pass-2"})
    r = it.post(url + "/console/staff/reset", data={"csrf": csrf_of(page), "staff_no": "8102"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    otp = re.search(r'id="otp">([^<]+)<', r.text)
    assert otp
    one_time = otp.group(1)
    assert one_time not in it.get(url + "/console/staff").text  # shown once
    assert one_time not in it.get(url + "/console/audit").text
    _, r = console_login(url, "8102", "super-pass-2")
    assert r.status_code == 401  # the old password is gone
    s, r = console_login(url, "8102", one_time)
    assert r.status_code == 403 and 'name="new_password"' in r.text
    assert "hall_console=" not in r.headers.get("set-cookie", "")
    r = s.post(url + "/console/login", data={"csrf": csrf_of(r.text), "staff_no": "8102", "password": one_time,
                                             "new_password": "my-own-supervisor-pw", "next": "/console/"},
               allow_redirects=False)
    assert r.status_code == 303 and s.get(url + "/console/ratings").status_code == 200
    _, r = console_login(url, "8102", "my-own-supervisor-pw")
    assert r.status_code == 303


def test_live_stream_sends_the_fragment_on_a_call_and_ends_with_the_session(server: ServerProcess) -> None:
    """The live page's event stream for a console session (on PostgreSQL the events come through
    LISTEN/NOTIFY): a clerk's call shows in the next fragment; without a session there is none."""
    url = server.url
    assert browser_session().get(url + "/console/live/stream", timeout=5).status_code == 401
    it = it_session(url)
    page = it.get(url + "/console/staff").text
    it.post(url + "/console/staff/create", data={"csrf": csrf_of(page), "staff_no": "2101", "name_zh": "钱七",
                                                 "role": "staff", "password": "clerk-pass-7"})
    clerk = signed_in(url, "2101", 1, password="clerk-pass-7")
    with it.get(url + "/console/live/stream", stream=True, timeout=10) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert "default-src 'none'" in r.headers["content-security-policy"]
        lines = r.iter_lines(decode_unicode=True)

        def next_fragment() -> str:
            data: list[str] = []
            for line in lines:
                if line.startswith("data: "):
                    data.append(line[6:])
                elif line == "" and data:
                    return "\n".join(data)
            raise AssertionError("stream ended")

        first = next_fragment()
        assert 'data-window="1"' in first
        t = Api(url).post("/tickets", json={"category": "A"}).json()
        assert clerk.post("/windows/1/call-next").status_code == 200
        for _ in range(10):
            frag = next_fragment()
            if t["number"] in frag:
                break
        else:
            raise AssertionError("the call never showed")
        assert "钱七" in frag
        # logout closes the server session: the stream ends at the next event
        token = csrf_of(it.get(url + "/console/").text)
        assert it.post(url + "/console/logout", data={"csrf": token}, allow_redirects=False).status_code == 303
        Api(url).post("/tickets", json={"category": "A"})
        ended = False
        for _ in range(5):
            try:
                next_fragment()
            except AssertionError:
                ended = True
                break
        assert ended
