"""The citizen's rate-later page (hall_server/rate_later.py) against the real reference server.

Pure parts first (working days, the link token), then the HTTP contract with `requests` (staff
link, forged and old-style links, reasons for bad levels, one rating per case, form limits,
cross-site posts, the ended window through the `clock` seam). The phone flow in real Chromium
is in tests/test_rate_later_browser.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, select

from hall_server import rate_later
from hall_server import schema as t
from hall_server.rate_later import derive_key, last_rating_day, make_token, parse_token
from tests.pad_helpers import open_cases
from tests.support.server_fixtures import Api, RunningServer, signed_in

# ---- pure ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("done", "days", "last"), [
    (date(2026, 11, 27), 5, date(2026, 12, 4)),   # Friday -> next Friday
    (date(2026, 11, 25), 5, date(2026, 12, 2)),   # Wednesday -> next Wednesday
    (date(2026, 11, 28), 1, date(2026, 11, 30)),  # Saturday -> Monday
    (date(2026, 11, 27), 1, date(2026, 11, 30)),  # Friday -> Monday
    (date(2026, 11, 23), 10, date(2026, 12, 7)),  # two whole weeks
    (date(2026, 11, 23), 0, date(2026, 11, 23)),  # no window: the day itself
])
def test_last_rating_day_counts_monday_to_friday(done: date, days: int, last: date) -> None:
    assert last_rating_day(done, days) == last


def test_token_round_trip_and_forgeries() -> None:
    key = derive_key(b"k" * 32)
    tok = make_token(key, 42)
    assert parse_token(key, tok) == 42
    assert len(tok) <= 3 + 1 + 22  # short: the QR stays small
    case, mac = tok.split("-")
    assert parse_token(key, f"43-{mac}") is None  # another case's number with this mac
    assert parse_token(derive_key(b"x" * 32), tok) is None  # another server's key
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    for bad in (f"{case}-{flipped}", tok[:-1], tok + "A", "", "42", "-" + mac, f"{case}-{mac}=",
                f"{case}-{mac}".upper(), f"99999999999999999999-{mac}", f"{case} -{mac}"):
        assert parse_token(key, bad) is None, bad


# ---- against the server ------------------------------------------------------------------------
@pytest.fixture
def srv(fresh_hall_server: RunningServer) -> RunningServer:
    return fresh_hall_server


@pytest.fixture
def desk(srv: RunningServer) -> Iterator[Api]:
    d = signed_in(srv.url, "1001", 1)
    yield d
    d.close()


def web() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


def link(desk: Api, case_id: int) -> str:
    r = desk.get(f"/cases/{case_id}/rate-later-link")
    assert r.status_code == 200, r.text
    assert r.json()["case_id"] == case_id
    return str(r.json()["url"])


def token_of(url: str) -> str:
    return url.split("?c=", 1)[1]


def ratings_of(srv: RunningServer, case_id: int) -> list[dict[str, Any]]:
    eng = create_engine(srv.db_url)
    try:
        with eng.connect() as c:
            return [dict(r) for r in c.execute(select(t.ratings).where(t.ratings.c.case_id == case_id)).mappings()]
    finally:
        eng.dispose()


def screen(resp: requests.Response) -> str:
    marker = 'data-screen="'
    i = resp.text.index(marker) + len(marker)
    return resp.text[i:resp.text.index('"', i)]


def post(srv: RunningServer, s: requests.Session, **form: Any) -> requests.Response:
    return s.post(srv.url + "/rate-later", data=form, allow_redirects=False, timeout=30)


def test_link_needs_staff_and_a_real_case(srv: RunningServer, desk: Api) -> None:
    (cid,) = open_cases(desk, 1, 1)
    assert Api(srv.url).get(f"/cases/{cid}/rate-later-link").status_code == 401
    r = desk.get("/cases/999999/rate-later-link")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    url = link(desk, cid)
    assert url.startswith(srv.url + "/rate-later?c=") and len(url) < 80
    assert link(desk, cid) == url  # stable: the same QR whenever it is asked for


def test_page_shows_case_and_levels_with_strict_headers(srv: RunningServer, desk: Api) -> None:
    (cid,) = open_cases(desk, 1, 1)
    me = desk.get("/me").json()
    r = web().get(link(desk, cid), timeout=30)
    assert r.status_code == 200 and screen(r) == "rate"
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp
    for text in ("高新区政务服务大厅", me["window"]["name_zh"], me["staff"]["name_zh"], "1001", "非常满意", "满意", "基本满意",
                 "不满意", "非常不满意", "5 个工作日"):
        assert text in r.text, text
    assert "<script" not in r.text and "http://" not in r.text.split("</head>")[1].replace(srv.url, "")
    en = web().get(link(desk, cid) + "&lang=en", timeout=30)
    assert 'lang="en"' in en.text and "Very dissatisfied" in en.text
    assert me["staff"]["name_en"] in en.text and me["window"]["name_en"] in en.text and "5 working days" in en.text


def test_bad_level_needs_a_reason_then_one_rating_later(srv: RunningServer, desk: Api) -> None:
    (cid,) = open_cases(desk, 1, 1)
    tok = token_of(link(desk, cid))
    s = web()
    reasons = desk.get("/rating-reasons").json()
    first = post(srv, s, c=tok, rid="a" * 32, step="level", level="very_dissatisfied")
    assert first.status_code == 200 and screen(first) == "reasons"
    assert first.text.count('name="reasons"') == len(reasons["reasons"]) > 0
    assert "请至少" not in first.text  # asked, not scolded, on the first visit
    nothing = post(srv, s, c=tok, rid="a" * 32, step="reasons", level="very_dissatisfied", comment="  ")
    assert nothing.status_code == 422 and "请至少选择一项原因" in nothing.text
    unknown = post(srv, s, c=tok, rid="a" * 32, step="reasons", level="very_dissatisfied", reasons="ZZ9")
    assert unknown.status_code == 422 and screen(unknown) == "reasons"
    assert ratings_of(srv, cid) == []
    code = reasons["reasons"][0]["code"]
    ok = post(srv, s, c=tok, rid="a" * 32, step="reasons", level="very_dissatisfied",
              reasons=code, comment="等了很久")
    assert ok.status_code == 303 and ok.headers["location"].endswith("&done=1")
    thanks = s.get(srv.url + ok.headers["location"], timeout=30)
    assert screen(thanks) == "thanks" and "感谢您的评价" in thanks.text
    (row,) = ratings_of(srv, cid)
    assert (row["source"], row["assurance"], row["level"], row["bad"]) == ("later", "later", "very_dissatisfied", True)
    assert json.loads(row["reasons"]) == [code] and row["comment"] == "等了很久"
    assert row["reasons_version"] == reasons["version"] and row["window_no"] == 1
    # The same form again (a double tap) is thanked, not stored twice.
    again = post(srv, s, c=tok, rid="a" * 32, step="reasons", level="very_dissatisfied", reasons=code)
    assert again.status_code == 303 and len(ratings_of(srv, cid)) == 1
    # A fresh visit, or another form, is told it is already rated.
    assert screen(s.get(srv.url + "/rate-later?c=" + tok, timeout=30)) == "already"
    other = post(srv, s, c=tok, rid="b" * 32, level="very_satisfied")
    assert screen(other) == "already" and len(ratings_of(srv, cid)) == 1
    # The desk's figures and reconciliation see it like any rating.
    day = row["day"]
    stats = desk.get(f"/stats?date={day}&window_no=1").json()
    assert stats["ratings_by_level"]["very_dissatisfied"] >= 1 and stats["bad_open"] >= 1
    assert row["id"] in desk.get(f"/windows/1/ratings?date={day}").json()["ids"]


def test_good_level_is_stored_directly_and_desk_cannot_rate_twice(srv: RunningServer, desk: Api) -> None:
    (cid,) = open_cases(desk, 1, 1)
    r = post(srv, web(), c=token_of(link(desk, cid)), rid="c" * 32, level="satisfied",
             reasons="A1", comment="ignored for good levels")
    assert r.status_code == 303
    (row,) = ratings_of(srv, cid)
    assert row["level"] == "satisfied" and json.loads(row["reasons"]) == [] and row["comment"] == ""
    desk_try = desk.post("/ratings", key="k-" + row["id"], json={
        "id": "desk-second", "case_id": cid, "window_no": 1, "level": "satisfied",
        "source": "desk", "rated_at": "2026-11-25T10:00:00Z"})
    assert desk_try.status_code == 409 and desk_try.json()["error"]["code"] == "case_already_rated"


def test_forged_old_style_and_unknown_links_are_a_friendly_404(srv: RunningServer, desk: Api) -> None:
    (cid,) = open_cases(desk, 1, 1)
    tok = token_of(link(desk, cid))
    case_no = desk.get(f"/cases/{cid}").json()["case_no"]
    s = web()
    mac = tok.split("-")[1]
    for q in (f"case={case_no}", f"c={cid + 1}-{mac}", f"c={tok[:-3]}", "c=", "", f"c={tok}%00",
              "c=" + "9" * 19 + "-" + mac):
        r = s.get(f"{srv.url}/rate-later?{q}", timeout=30)
        assert r.status_code == 404 and screen(r) == "not_found", q
        assert "评价链接无效" in r.text and r.headers["content-type"].startswith("text/html")
        assert tok not in r.text
    en = s.get(f"{srv.url}/rate-later?c=zz&lang=en", timeout=30)
    assert en.status_code == 404 and "not valid" in en.text
    forged = post(srv, s, c=f"{cid + 1}-{mac}", level="satisfied")
    assert forged.status_code == 404 and ratings_of(srv, cid + 1) == [] and ratings_of(srv, cid) == []


def test_form_limits_and_cross_site_posts(srv: RunningServer, desk: Api) -> None:
    (cid,) = open_cases(desk, 1, 1)
    tok = token_of(link(desk, cid))
    s = web()
    cross = s.post(srv.url + "/rate-later", data={"c": tok, "level": "satisfied"},
                   headers={"Origin": "http://evil.example"}, allow_redirects=False, timeout=30)
    assert cross.status_code == 403 and screen(cross) == "bad"
    as_json = s.post(srv.url + "/rate-later", json={"c": tok, "level": "satisfied"}, timeout=30)
    assert as_json.status_code == 400
    big = s.post(srv.url + "/rate-later", data={"c": tok, "level": "satisfied", "x": "y" * 20_000},
                 timeout=30)
    assert big.status_code == 413
    long_comment = post(srv, s, c=tok, step="reasons", level="dissatisfied", comment="长" * 501)
    assert long_comment.status_code == 422 and "最多 500" in long_comment.text
    assert s.get(srv.url + "/rate-later", params={"c": tok}, timeout=30).status_code == 200
    assert s.put(srv.url + "/rate-later", data={"c": tok}, timeout=30).status_code == 405
    assert ratings_of(srv, cid) == []
    same = s.post(srv.url + "/rate-later", data={"c": tok, "level": "basic"},
                  headers={"Origin": srv.url}, allow_redirects=False, timeout=30)
    assert same.status_code == 303 and ratings_of(srv, cid)[0]["level"] == "basic"


def test_window_ends_after_the_working_days(srv: RunningServer, desk: Api,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (cid,) = open_cases(desk, 1, 1)
    url = link(desk, cid)
    real = rate_later.clock
    # Eight calendar days always hold more than five working days, whatever today is.
    monkeypatch.setattr(rate_later, "clock", lambda: real() + 8 * 86_400_000)
    r = web().get(url, timeout=30)
    assert r.status_code == 200 and screen(r) == "ended" and "评价期限已结束" in r.text
    assert "12345" in r.text
    p = post(srv, web(), c=token_of(url), level="very_satisfied")
    assert screen(p) == "ended" and ratings_of(srv, cid) == []
    # One day later is still inside the window.
    monkeypatch.setattr(rate_later, "clock", lambda: real() + 86_400_000)
    assert screen(web().get(url, timeout=30)) == "rate"


def test_links_use_the_public_address_when_the_hall_sets_one(tmp_path: Any) -> None:
    """The desk reaches the server on an intranet address a citizen's phone cannot: IT sets
    `--public-url`, and the QR then points there."""
    from tests.support.server_fixtures import start_server_thread

    srv = start_server_thread(data_dir=tmp_path / "hall", demo=True,
                              public_url="https://rate.hall.example/")
    try:
        desk = signed_in(srv.url, "1001", 1)
        (cid,) = open_cases(desk, 1, 1)
        assert link(desk, cid).startswith("https://rate.hall.example/rate-later?c=")
        desk.close()
    finally:
        srv.stop()
