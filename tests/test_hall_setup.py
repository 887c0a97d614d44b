"""A real hall from zero (issue 14 items 1-2), using only the documented `hall-server` CLI on an
empty database, then the real server on loopback: a clerk signs in at a window and serves a
citizen. Also: serve refuses an empty database, password reset forces a change, the photo comes
back re-encoded as the standard portrait, GBK CSV and XLSX imports, a bad file imports nothing
and names its rows, a revoked PC is refused, audit rows are written."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from api_client.client import HallClient
from api_client.errors import ApiError as ClientApiError
from tests.support.server_fixtures import (
    REPO_ROOT,
    Api,
    drop_pg_db,
    fresh_pg_url,
    signed_in,
    start_server_process,
)

EXAMPLE = REPO_ROOT / "hall.example.toml"


def cli(data: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("HALL_DB_URL", None)
    return subprocess.run([sys.executable, "-m", "hall_server", *args, "--data-dir", str(data)],
                          input=stdin, capture_output=True, text=True, timeout=180, env=env, cwd=str(REPO_ROOT))


def ok(r: subprocess.CompletedProcess[str]) -> object:
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


GBK_CSV = (
    "事项编码,事项名称,实施部门,业务类别,承诺时限,即办件,跨省通办,材料编码,材料名称,材料要求,份数,需要原件,电子证照\n"
    "LCX-A-1,个体工商户设立登记,市场监管局,A,3,否,是,id,身份证,必需,1,是,是\n"
    "LCX-A-1,个体工商户设立登记,市场监管局,A,3,否,是,lease,租赁合同,容缺,1,否,否\n"
    "LCX-B-1,失业保险金申领,人社局,B,0,是,否,,,,,,\n"
)


def make_xlsx(path: Path, rows: list[list[object]]) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    wb.save(path)


def test_serve_refuses_an_empty_database_and_says_what_to_run(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("HALL_DB_URL", None)
    r = subprocess.run([sys.executable, "-m", "hall_server", "serve", "--port", "1", "--data-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=120, env=env, cwd=str(REPO_ROOT))
    assert r.returncode == 2
    assert "hall-server init --from hall.toml" in r.stderr and "数据库中还没有大厅" in r.stderr


def test_a_real_hall_from_zero_with_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "hall"
    # 1. init from the shipped example (the admin password from stdin), once only
    summary = ok(cli(data, "init", "--from", str(EXAMPLE), "--admin-password-stdin", stdin="it-admin-pw\n"))
    assert summary["windows"] == 3 and summary["calendar_years"] == [2026]  # type: ignore[index]
    again = cli(data, "init", "--from", str(EXAMPLE), "--admin-password-stdin", stdin="it-admin-pw\n")
    assert again.returncode == 1 and "already_initialised" in again.stderr

    # 2. staff, photo, rules
    ok(cli(data, "staff", "add", "2001", "--name-zh", "李四", "--name-en", "Li Si", "--password-stdin",
           stdin="clerk-pass-1\n"))
    photo = tmp_path / "li.jpg"
    Image.new("RGB", (900, 600), (200, 30, 30)).save(photo, "JPEG")
    staff = ok(cli(data, "staff", "photo", "2001", str(photo)))
    assert staff["has_photo"] is True  # type: ignore[index]
    assert ok(cli(data, "rules", "set", "recall_limit=2"))["recall_limit"] == 2  # type: ignore[index]
    bad_rule = cli(data, "rules", "set", "recall_limit=99")
    assert bad_rule.returncode == 1 and "recall_limit" in bad_rule.stderr

    # 3. the catalog: a GBK CSV with Chinese headers and 是/否, then an XLSX; dry run first
    gbk = tmp_path / "matters-gbk.csv"
    gbk.write_bytes(GBK_CSV.encode("gbk"))
    dry = ok(cli(data, "import-matters", str(gbk), "--dry-run"))
    assert dry == {"dry_run": True, "would_import": 2}
    v1 = ok(cli(data, "import-matters", str(gbk)))["catalog_version"]  # type: ignore[index]
    xlsx = tmp_path / "matters.xlsx"
    make_xlsx(xlsx, [["事项编码", "事项名称", "业务类别", "承诺时限", "即办件", "材料编码", "材料名称"],
                     ["LCX-C-1", "综合咨询", "C", 0, "是", "id", "身份证"],
                     ["LCX-C-2", "证明开具", "C", 5, "否", None, None]])
    v2 = ok(cli(data, "import-matters", str(xlsx)))["catalog_version"]  # type: ignore[index]
    assert v2 == v1 + 1  # type: ignore[operator]
    # a bad file: every bad row named by its line, nothing imported
    bad = tmp_path / "bad.csv"
    bad.write_bytes(("事项编码,事项名称,业务类别,承诺时限,即办件\n"
                     "OK-1,好事项,A,1,否\n"
                     "BAD-1,坏事项,Z,1,否\n"
                     "BAD-2,坏事项二,A,三天,也许\n").encode("gbk"))
    r = cli(data, "import-matters", str(bad))
    assert r.returncode == 1
    assert "line 4: time_limit_days" in r.stderr and "line 4: instant" in r.stderr
    bad2 = tmp_path / "bad2.csv"
    bad2.write_text("code,name_zh,category\nOK-2,好,A\nBAD-3,坏,Z\n", encoding="utf-8-sig")
    r = cli(data, "import-matters", str(bad2))
    assert r.returncode == 1 and "line 3: category: unknown category Z" in r.stderr

    # 4. the clerk's password is reset by IT: a one-time password
    otp = ok(cli(data, "staff", "reset-password", "2001"))["one_time_password"]  # type: ignore[index]
    audit = ok(cli(data, "audit", "--limit", "100"))
    actions = {a["action"] for a in audit}  # type: ignore[union-attr,index]
    assert {"hall.init", "staff.create", "staff.photo", "rules.set", "catalog.import",
            "staff.reset_password"} <= actions
    assert otp not in json.dumps(audit)  # the audit log never holds a secret
    rules_row = next(a for a in audit if a["action"] == "rules.set")  # type: ignore[union-attr,index]
    assert rules_row["before"]["recall_limit"] == 3 and rules_row["after"]["recall_limit"] == 2
    assert rules_row["actor"].startswith("cli")

    srv = start_server_process(data, demo=False)
    try:
        url = srv.url
        # the one-time password opens nothing until changed
        r = Api(url).post("/auth/login", json={"staff_no": "2001", "password": otp, "window_no": 1})
        assert r.status_code == 403 and r.json()["error"]["code"] == "password_change_required"
        assert r.json()["error"]["message_zh"]
        r = Api(url).post("/auth/password", json={"staff_no": "2001", "password": "wrong-one-1", "new_password": "x" * 9})
        assert r.status_code == 401
        r = Api(url).post("/auth/password", json={"staff_no": "2001", "password": otp, "new_password": "my-own-pass"})
        assert r.status_code == 204, r.text
        assert Api(url).post("/auth/login", json={"staff_no": "2001", "password": otp}).status_code == 401

        # a window PC enrolled by IT, then revoked: it can no longer open a window
        it = signed_in(url, "9001", password="it-admin-pw")
        code = it.post("/admin/enrollment-codes", json={"window_no": 2}).json()["code"]
        dev = Api(url).post("/devices/enroll", json={"enrollment_code": code, "window_no": 2, "hostname": "pc2"}).json()
        hdr = {"X-Device-Id": dev["device_id"], "X-Device-Secret": dev["device_secret"]}
        r = Api(url).post("/auth/login", json={"staff_no": "2001", "password": "my-own-pass", "window_no": 2},
                          headers=hdr)
        assert r.status_code == 200, r.text
        assert [d["id"] for d in it.get("/admin/devices").json()] == [dev["device_id"]]
        assert it.post(f"/admin/devices/{dev['device_id']}/revoke").json()["revoked"] is True
        r = Api(url).post("/auth/login", json={"staff_no": "2001", "password": "my-own-pass", "window_no": 2},
                          headers=hdr)
        assert r.status_code == 403 and r.json()["error"]["code"] == "device_revoked"

        # the clerk serves a citizen at window 1
        clerk = signed_in(url, "2001", 1, password="my-own-pass")
        hall = clerk.get("/hall").json()
        assert hall["code"] == "LCX" and hall["rules"]["recall_limit"] == 2
        assert [w["no"] for w in hall["windows"]] == [1, 2, 3]
        ticket = Api(url).post("/tickets", json={"category": "A", "matter_code": "LCX-A-1"})
        assert ticket.status_code == 201, ticket.text
        called = clerk.post("/windows/1/call-next").json()["ticket"]
        assert called["id"] == ticket.json()["id"] and called["number"].startswith("A")
        assert clerk.post(f"/tickets/{called['id']}/start").status_code == 200
        done = clerk.post(f"/tickets/{called['id']}/complete", json={"outcome": "completed"})
        assert done.status_code == 200, done.text
        m = clerk.get("/matters/LCX-A-1").json()
        assert [i["requirement"] for i in m["checklist"]] == ["required", "accepted_pending"]
        assert m["cross_region"] is True and m["instant"] is False

        # the photo is served back re-encoded as the standard portrait (PNG 295x413), fetched
        # with the typed client exactly as the desk's pad service fetches it for the pad
        desk = HallClient(url)
        desk.login("2001", "my-own-pass", 3)
        png = desk.staff_photo("2001")
        img = Image.open(io.BytesIO(png))
        assert img.format == "PNG" and img.size == (295, 413)
        assert png != photo.read_bytes()
        assert img.getpixel((150, 200))[0] > 150  # the upload's red, not a placeholder
        # the typed client sees the forced change as its own error code, with both messages
        clerk_otp = ok(cli(data, "staff", "reset-password", "2001"))["one_time_password"]  # type: ignore[index]
        with pytest.raises(ClientApiError) as err:
            HallClient(url).login("2001", clerk_otp, 3)  # type: ignore[arg-type]
        assert err.value.code == "password_change_required" and "修改" in err.value.message_zh

        # the new password and the device revocation are in the audit log, with who did it
        audit_api = it.get("/admin/audit?limit=200").json()
        by_action = {a["action"]: a for a in audit_api}
        assert by_action["staff.change_password"]["actor"] == "2001"
        assert by_action["device.revoke"]["actor"] == "9001"
        assert by_action["device.revoke"]["before"] == {"revoked": False}
    finally:
        srv.terminate()


def test_import_of_5000_matters_figure(tmp_path: Path) -> None:
    """The figure for issue 14: seconds to import 5,000 matters (3 checklist items each) from
    an XLSX through the CLI, process start included; printed as a JSON line."""
    data = tmp_path / "hall"
    ok(cli(data, "init", "--from", str(EXAMPLE), "--admin-password-stdin", stdin="it-admin-pw\n"))
    header = ["事项编码", "事项名称", "业务类别", "承诺时限", "即办件", "材料编码", "材料名称", "材料要求"]
    rows: list[list[object]] = [header]
    for i in range(5000):
        for j, (iid, name, req) in enumerate((("id", "身份证", "必需"), ("form", "申请表", "必需"),
                                              ("extra", "其他材料", "容缺"))):
            rows.append([f"M-{i:05d}", f"事项{i}", "ABC"[i % 3], i % 20, "是" if i % 5 == 0 else "否",
                         iid if j < 3 else None, name, req])
    xlsx = tmp_path / "5000.xlsx"
    make_xlsx(xlsx, rows)
    t0 = time.perf_counter()
    out = ok(cli(data, "import-matters", str(xlsx)))
    seconds = time.perf_counter() - t0
    assert out["imported"] == 5000  # type: ignore[index]
    print(json.dumps({"figure": "catalog_import_5000_matters_xlsx_cli", "value": round(seconds, 2),
                      "unit": "s", "rows": len(rows) - 1}))


def test_interactive_init_asks_and_builds_the_same_hall(tmp_path: Path) -> None:
    """`hall-server init` without --from: the questions answered on stdin (as IT types them)."""
    data = tmp_path / "hall"
    answers = "\n".join([
        "QZ", "泉州政务服务中心", "Quanzhou Service Centre", "",  # code, names, time zone default
        "A 市场主体登记 Business registration", "B 社保医保", "",  # categories, empty line ends
        "1 A 1号窗口", "2 A,B", "",  # windows
        "9001", "信息管理员",  # the first IT admin
        "it-admin-pw",  # their password (--admin-password-stdin)
    ]) + "\n"
    out = ok(cli(data, "init", "--admin-password-stdin", stdin=answers))
    assert out["hall"]["code"] == "QZ" and out["hall"]["timezone"] == "Asia/Shanghai"  # type: ignore[index]
    assert out["categories"] == 2 and out["windows"] == 2 and out["admin"] == "9001"  # type: ignore[index]
    bad = cli(tmp_path / "other", "init", "--admin-password-stdin",
              stdin="QZ\n泉州\n\n\nA 甲\n\n1 Z\n\n9001\n管理员\nit-admin-pw\n")
    assert bad.returncode == 1 and "window 1: unknown categories ['Z']" in bad.stderr
    srv = start_server_process(data, demo=False)
    try:
        it = signed_in(srv.url, "9001", password="it-admin-pw")
        assert [w["categories"] for w in it.get("/hall").json()["windows"]] == [["A"], ["A", "B"]]
    finally:
        srv.terminate()


@pytest.mark.postgres
def test_a_real_hall_from_zero_on_postgresql(tmp_path: Path) -> None:
    base = os.environ.get("HALL_TEST_PG_URL")
    if not base:
        pytest.skip("HALL_TEST_PG_URL not set")
    url = fresh_pg_url(base)
    try:
        ok(cli(tmp_path, "init", "--from", str(EXAMPLE), "--admin-password-stdin", "--db", url,
               stdin="it-admin-pw\n"))
        ok(cli(tmp_path, "staff", "add", "2001", "--name-zh", "李四", "--password-stdin", "--db", url,
               stdin="clerk-pass-1\n"))
        srv = start_server_process(tmp_path, db_url=url, demo=False)
        try:
            clerk = signed_in(srv.url, "2001", 3, password="clerk-pass-1")
            issued = Api(srv.url).post("/tickets", json={"category": "C"}).json()
            assert clerk.post("/windows/3/call-next").json()["ticket"]["id"] == issued["id"]
            it = signed_in(srv.url, "9001", password="it-admin-pw")
            assert {a["action"] for a in it.get("/admin/audit").json()} >= {"hall.init", "staff.create"}
        finally:
            srv.terminate()
    finally:
        drop_pg_db(url)
