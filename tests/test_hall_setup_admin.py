"""Hall administration through the admin API (the same operations as the CLI), the attacks a
dishonest caller would try on it, and the working calendar: a property test of the calendar
arithmetic against a day-by-day count, year files, and the rate-later window across a holiday."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from hall_server import workdays
from hall_server.rate_later import last_rating_day
from hall_server.workdays import WorkCalendar, parse_year_file
from tests.support.server_fixtures import Api, RunningServer, signed_in

# ---- the calendar ------------------------------------------------------------------------------
days_2026 = st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31))


@settings(max_examples=300, deadline=None)
@given(holidays=st.frozensets(days_2026, max_size=40), makeup=st.frozensets(days_2026, max_size=10),
       start=days_2026, n=st.integers(min_value=0, max_value=40))
def test_working_days_after_matches_a_day_by_day_count(holidays: frozenset[date], makeup: frozenset[date],
                                                       start: date, n: int) -> None:
    cal = WorkCalendar(holidays=holidays, workdays=makeup)

    def working(d: date) -> bool:  # the reference: the rule as the State Council states it
        return d in makeup or (d.weekday() < 5 and d not in holidays)

    got = cal.working_days_after(start, n)
    assert got >= start
    span = [start + timedelta(days=i) for i in range(1, (got - start).days + 1)]
    assert sum(working(d) for d in span) == n  # exactly n working days after start, up to got
    if n:
        assert working(got)  # and it lands on a working day (never on the weekend after)
    for d in span:
        assert cal.is_working_day(d) == working(d)


def test_the_shipped_2026_year_file_and_a_gbk_csv_year_file() -> None:
    year, entries = parse_year_file((workdays.DATA_DIR / "cn-2026.json").read_bytes(), "cn-2026.json")
    cal = WorkCalendar(frozenset(e.day for e in entries if e.kind == "holiday"),
                       frozenset(e.day for e in entries if e.kind == "workday"))
    assert year == 2026
    assert not cal.is_working_day(date(2026, 10, 1)) and cal.is_working_day(date(2026, 10, 10))  # Sat, 调休
    csv_gbk = "date,kind,name_zh\n2027-01-01,放假,元旦\n2027-02-06,上班,春节调休\n".encode("gbk")
    year, entries = parse_year_file(csv_gbk, "2027.csv")
    assert year == 2027 and [e.kind for e in entries] == ["holiday", "workday"]
    with pytest.raises(ValueError) as e:
        parse_year_file(b"date,kind\n2027-13-01,holiday\n2027-01-02,maybe\n2028-01-01,holiday\n", "x.csv")
    assert "line 2: date" in str(e.value) and "line 3: kind" in str(e.value)


def test_rate_later_window_counts_the_hall_calendar() -> None:
    """A case finished the day before the 2026 National Day holiday: 5 working days skip the
    holiday and count the make-up Saturday (10 Oct); Mon-Fri alone would say 7 Oct."""
    _, entries = parse_year_file((workdays.DATA_DIR / "cn-2026.json").read_bytes(), "cn-2026.json")
    before = workdays.current()
    workdays.set_current(WorkCalendar(frozenset(e.day for e in entries if e.kind == "holiday"),
                                      frozenset(e.day for e in entries if e.kind == "workday")))
    try:
        assert last_rating_day(date(2026, 9, 30), 5) == date(2026, 10, 13)
        # Without the calendar (Monday to Friday only; set explicitly: an in-process server of an
        # earlier test may have left its hall's calendar as the current one).
        workdays.set_current(WorkCalendar(frozenset(), frozenset()))
        assert last_rating_day(date(2026, 9, 30), 5) == date(2026, 10, 7)
    finally:
        workdays.set_current(before)


# ---- the admin API -----------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def srv(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """A fresh demo hall on SQLite and on PostgreSQL (the operations are the same SQL Core)."""
    name = "fresh_hall_server" if request.param == "sqlite" else "pg_hall_server"
    yield request.getfixturevalue(name)


def delete(api: Api, path: str) -> Any:
    return api.s.delete(api.url + "/api/v1" + path, headers=api.headers(), timeout=30)


def _png(size: tuple[int, int], colour: tuple[int, int, int] = (10, 120, 200), fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, fmt)
    return out.getvalue()


def test_admin_api_is_it_admin_only(srv: RunningServer) -> None:
    clerk = signed_in(srv.url, "1001", 1)
    boss = signed_in(srv.url, "8001")
    for api in (clerk, boss):
        assert api.post("/admin/staff", json={"staff_no": "x1", "name_zh": "x", "password": "p" * 8}).status_code == 403
        assert api.patch("/admin/rules", json={"recall_limit": 9}).status_code == 403
        assert api.post("/admin/staff/1001/reset-password").status_code == 403
        assert api.post("/admin/windows", json={"no": 40, "name_zh": "x"}).status_code == 403
        assert api.put("/admin/staff/1001/photo", data=_png((300, 400)),
                       headers={**api.headers(), "Content-Type": "image/png"}).status_code == 403
    assert Api(srv.url).get("/admin/audit").status_code == 401
    assert clerk.get("/admin/audit").status_code == 403
    assert boss.get("/admin/audit").status_code == 200  # supervisors may read the log


def test_admin_operations_take_effect_and_are_audited(srv: RunningServer) -> None:
    it = signed_in(srv.url, "9001")
    # rules: applied at once, bounds checked, unknown names refused
    assert it.patch("/admin/rules", json={"recall_limit": 1}).json()["recall_limit"] == 1
    assert it.get("/hall").json()["rules"]["recall_limit"] == 1
    r = it.patch("/admin/rules", json={"recall_limit": 500})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_settings"
    assert it.patch("/admin/rules", json={"no_such_rule": 1}).status_code == 422
    # windows: add, rename, retire (not while someone is signed in)
    assert it.post("/admin/windows", json={"no": 20, "name_zh": "20号窗口", "categories": ["A"]}).status_code == 201
    assert it.post("/admin/windows", json={"no": 20, "name_zh": "again"}).status_code == 409
    assert it.patch("/admin/windows/20", json={"name_zh": "20号 帮办代办"}).json()["name_zh"] == "20号 帮办代办"
    signed_in(srv.url, "1014", 20)
    r = delete(it, "/admin/windows/20")
    assert r.status_code == 409 and r.json()["error"]["code"] == "window_in_use"
    assert delete(it, "/admin/windows/13").json() == {"retired": 13}
    r = Api(srv.url).post("/auth/login", json={"staff_no": "1013", "password": "demo1234", "window_no": 13})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_window"
    # categories and pause reasons: in-use ones stay
    r = delete(it, "/admin/categories/A")
    assert r.status_code == 409 and r.json()["error"]["code"] == "in_use"
    assert it.put("/admin/categories/H", json={"name_zh": "公积金"}).json()["code"] == "H"
    assert delete(it, "/admin/categories/H").json() == {"removed": "H"}
    assert it.put("/admin/pause-reasons/drill", json={"name_zh": "消防演练", "public_zh": "暂停服务"}).status_code == 200
    assert "drill" in [p["code"] for p in it.get("/hall").json()["pause_reasons"]]
    # rating reasons: a new versioned list
    rr = {"version": "LCX-2027", "reasons": [{"code": "X1", "text_zh": "等候太久", "text_en": "Waited too long"}]}
    assert it.put("/admin/rating-reasons", json=rr).json()["version"] == "LCX-2027"
    assert it.put("/admin/rating-reasons", json={"version": "v", "reasons": []}).status_code == 422
    # the calendar for a year, from CSV
    csv_body = "date,kind,name_zh\n2027-01-01,holiday,元旦\n".encode()
    r = it.put("/admin/calendar/2027", data=csv_body, headers={**it.headers(), "Content-Type": "text/csv"})
    assert r.status_code == 200 and r.json()["holidays"] == 1
    r = it.put("/admin/calendar/2028", data=csv_body, headers={**it.headers(), "Content-Type": "text/csv"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_calendar"
    # staff: role change and disable end the sessions at once
    clerk = signed_in(srv.url, "1002", 2)
    assert it.patch("/admin/staff/1002", json={"role": "supervisor"}).json()["role"] == "supervisor"
    assert clerk.get("/me").status_code == 401
    audit = it.get("/admin/audit?limit=500").json()
    actions = [a["action"] for a in audit]
    for a in ("rules.set", "window.add", "window.rename", "window.retire", "category.add", "category.remove",
              "pause_reason.add", "rating_reasons.set", "calendar.import", "staff.update"):
        assert a in actions, a
    assert all(a["actor"] == "9001" for a in audit if a["action"] != "hall.init")
    retired = next(a for a in audit if a["action"] == "window.retire")
    assert retired["before"]["no"] == 13 and retired["after"] is None


def test_photo_upload_limits_and_re_encoding(srv: RunningServer, tmp_path: Path) -> None:
    it = signed_in(srv.url, "9001")
    url = "/admin/staff/1001/photo"

    def put(body: bytes, ctype: str = "image/jpeg") -> tuple[int, dict[str, object]]:
        r = it.put(url, data=body, headers={**it.headers(), "Content-Type": ctype})
        return r.status_code, (r.json() if r.content else {})

    for body, reason in ((b"not an image at all", "not_an_image"),
                         (_png((300, 400), fmt="GIF"), "unsupported_type"),
                         (_png((60, 80)), "bad_dimensions"),
                         (b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024 + 10), "too_large")):
        status, answer = put(body)
        err = answer["error"]
        assert status == 422 and err["code"] == "bad_photo" and err["details"]["reason"] == reason  # type: ignore[index]
        assert err["message_zh"].startswith("照片不符合要求") and err["message_en"]  # type: ignore[index]
    # a big JPEG with EXIF and trailing bytes comes back clean, 295x413
    img = Image.new("RGB", (3000, 2000), (20, 160, 60))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, quality=95)
    status, answer = put(buf.getvalue() + b"TRAILING-PAYLOAD")
    assert status == 200, answer
    clerk = signed_in(srv.url, "1001", 1)
    served = clerk.get("/staff/1001/photo").content
    out = Image.open(io.BytesIO(served))
    assert out.format == "PNG" and out.size == (295, 413)
    assert b"SecretCam" not in served and b"TRAILING-PAYLOAD" not in served
    assert out.getpixel((10, 10))[1] > 120


def test_password_change_is_no_side_door_for_guessing(srv: RunningServer) -> None:
    for _ in range(5):
        r = Api(srv.url).post("/auth/password", json={"staff_no": "1005", "password": "guess-xxx",
                                                       "new_password": "whatever-1"})
        assert r.status_code == 401
    r = Api(srv.url).post("/auth/password", json={"staff_no": "1005", "password": "demo1234",
                                                   "new_password": "whatever-1"})
    assert r.status_code == 429  # the same failure limit as sign-in, even with the right password
    same = Api(srv.url).post("/auth/password", json={"staff_no": "1006", "password": "demo1234",
                                                      "new_password": "demo1234"})
    assert same.status_code == 422 and same.json()["error"]["code"] == "weak_password"


def test_catalog_import_by_api_content_types(srv: RunningServer, tmp_path: Path) -> None:
    it = signed_in(srv.url, "9001")

    def post(body: bytes, ctype: str, query: str = "") -> Any:
        return it.post("/admin/matters/import" + query, data=body, headers={"Content-Type": ctype})

    gbk = "事项编码,事项名称,业务类别,即办件\nAPI-1,接口事项,A,是\n".encode("gbk")
    r = post(gbk, "text/csv", "?dry_run=true")
    assert r.status_code == 200 and r.json() == {"dry_run": True, "would_import": 1}
    assert it.get("/matters/API-1").status_code == 404  # the dry run wrote nothing
    r = post(gbk, "text/csv")
    assert r.status_code == 200 and r.json()["imported"] == 1
    assert it.get("/matters/API-1").json()["instant"] is True
    for body, ctype in ((b"", "text/csv"), (b"PK\x03\x04garbage",
                                            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")):
        r = post(body, ctype)
        assert r.status_code == 422 and r.json()["error"]["code"] == "import_invalid", r.text
    r = post("code,name_zh,category\nX-1,甲,A\nX-2,乙,Q\n".encode(), "text/csv")
    assert r.status_code == 422
    assert r.json()["error"]["details"]["errors"] == [
        {"row": 2, "line": 3, "field": "category", "message": "unknown category Q"}]
    assert it.get("/matters/X-1").status_code == 404  # nothing of the bad file


def test_a_hall_made_by_hand_before_init_still_counts_as_set_up(tmp_path: Path) -> None:
    """Halls that were set up with SQL before `init` existed must keep starting after the
    upgrade; an empty database must not."""
    from hall_server import hallsetup
    from hall_server import schema as t
    from hall_server.db import Store

    store = Store(f"sqlite:///{tmp_path / 'h.sqlite3'}")
    try:
        store.migrate()
        assert hallsetup.runtime(store).initialised is False
        store.write_sync(lambda tx: tx.conn.execute(t.windows.insert().values(
            no=1, name_zh="1号窗口", name_en="", categories="", state="closed")))
        assert hallsetup.runtime(store).initialised is True
    finally:
        store.close()
