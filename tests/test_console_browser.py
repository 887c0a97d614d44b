"""The console in a real headless Chromium (Debian chromium via Playwright): an EMPTY hall made
only by `hall-server init --from` a minimal toml (the IT admin, one category, one window) is
built into a working hall through the console alone (categories, windows, pause reasons,
staff with a photo, calendar, rules, catalog import with a dry run and a bad file, an enrollment
code); a clerk (plain requests) serves citizens; the live page follows the calls (figure: p95
of the time from a call's answer to the number on the supervisor's screen, printed as a JSON
line); ratings (bad first), figures and the audit log show what happened. Every page: no
request leaves the server's origin, axe-core 0 serious/critical, screenshots at 1920x1080 and
1366x768 in test-artifacts/screenshots/console_*.png."""

from __future__ import annotations

import io
import json
import os
import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.pad_helpers import CHROMIUM, CHROMIUM_ARGS
from tests.support.server_fixtures import (
    REPO_ROOT,
    Api,
    ServerProcess,
    drop_pg_db,
    fresh_pg_url,
    signed_in,
    start_server_process,
)
from tests.test_console import IT_PW, PAGES, init_empty_hall

pytest.importorskip("playwright")
if not Path(CHROMIUM).exists():  # pragma: no cover - CI installs chromium
    pytest.skip("chromium is not installed", allow_module_level=True)

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
GBK_CSV = (
    "事项编码,事项名称,实施部门,业务类别,承诺时限,即办件,跨省通办,材料编码,材料名称,材料要求,份数,需要原件,电子证照\n"
    "TST-A-1,个体工商户设立登记,市场监管局,A,3,否,是,id,身份证,必需,1,是,是\n"
    "TST-A-1,个体工商户设立登记,市场监管局,A,3,否,是,lease,租赁合同,容缺,1,否,否\n"
    "TST-B-1,失业保险金申领,人社局,B,0,是,否,,,,,,\n"
)
BAD_CSV = ("事项编码,事项名称,业务类别,承诺时限,即办件\n"
           "OK-1,好事项,A,1,否\n"
           "BAD-1,坏事项,Z,1,否\n"
           "BAD-2,坏事项二,A,三天,也许\n")


def artifacts() -> Path:
    d = Path(os.environ.get("COUNTER_ARTIFACTS", "test-artifacts")) / "screenshots"
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    db_url = None
    if request.param == "postgresql":
        base = os.environ.get("HALL_TEST_PG_URL")
        if not base:
            pytest.skip("HALL_TEST_PG_URL not set")
        db_url = fresh_pg_url(base)
    data = tmp_path / "hall"
    init_empty_hall(data, db_url)
    srv = start_server_process(data, demo=False, db_url=db_url)
    srv.db = request.param  # type: ignore[attr-defined]
    try:
        yield srv
    finally:
        srv.terminate()
        if db_url:
            drop_pg_db(db_url)


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def axe_serious(page: Page) -> list[str]:
    """axe-core in the page (the page's CSP blocks an injected script tag, so it is evaluated
    as the test's own code, as DevTools would)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    res = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])}) {v['nodes'][0]['target']}"
            for v in res["violations"] if v.get("impact") in ("serious", "critical")]


def submit(page: Page, form: str, fields: dict[str, str], files: dict[str, tuple[str, bytes, str]] | None = None) -> None:
    for name, value in fields.items():
        el = page.locator(f"{form} [name='{name}']")
        if el.evaluate("e => e.tagName") == "SELECT":
            el.select_option(value)
        elif el.get_attribute("type") == "checkbox":
            el.check()
        else:
            el.fill(value)
    for name, (fname, data, mime) in (files or {}).items():
        page.locator(f"{form} [name='{name}']").set_input_files({"name": fname, "mimeType": mime, "buffer": data})
    with page.expect_navigation():
        page.locator(f"{form} button[type='submit']").click()


def sign_in(page: Page, url: str, staff_no: str, password: str) -> None:
    page.goto(url + "/console/")
    assert "/console/login" in page.url
    page.fill("#staff_no", staff_no)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("button[type='submit']")


def wait_js(page: Page, expr: str, timeout: float = 5.0) -> None:
    """Poll `expr` from the test (CDP evaluate): Playwright's wait_for_function evaluates its
    predicate with eval() inside the page, which the console's CSP rightly forbids."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expr):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expr}")
        time.sleep(0.005)


def make_xlsx(rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def serve_one(url: str, clerk: Api, category: str, matter: str | None = None) -> dict[str, Any]:
    t = Api(url).post("/tickets", json={"category": category, "matter_code": matter})
    assert t.status_code == 201, t.text
    called = clerk.post("/windows/1/call-next").json()["ticket"]
    started = clerk.post(f"/tickets/{called['id']}/start")
    assert started.status_code == 200, started.text
    case_id = clerk.get(f"/tickets/{called['id']}").json()["case_id"]
    done = clerk.post(f"/tickets/{called['id']}/complete", json={"outcome": "completed"})
    assert done.status_code == 200, done.text
    return {"ticket": called, "case_id": case_id}


def test_a_real_hall_built_only_through_the_console(server: ServerProcess, browser: Browser) -> None:
    url = server.url
    outside: list[str] = []

    def watch(r: Any) -> None:
        if not (r.url.startswith(url) or r.url.startswith("data:")):
            outside.append(r.url)

    # Two browsers' worth of cookies: the IT admin's and the supervisor's.
    it_ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    sup_ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    it_ctx.on("request", watch)
    sup_ctx.on("request", watch)
    page = it_ctx.new_page()
    resp = page.goto(url + "/console/")
    assert resp is not None and "default-src 'none'" in resp.headers["content-security-policy"]
    # the sign-in page itself: accessible, photographed
    for w, h in ((1920, 1080), (1366, 768)):
        page.set_viewport_size({"width": w, "height": h})
        page.screenshot(path=str(artifacts() / f"console_login_{w}x{h}.png"), full_page=True)
    assert not axe_serious(page)
    page.set_viewport_size({"width": 1920, "height": 1080})
    sign_in(page, url, "9001", IT_PW)
    assert page.url == url + "/console/"

    # -- windows and categories
    page.goto(url + "/console/windows")
    submit(page, "#category-add", {"code": "B", "name_zh": "社保医保", "name_en": "Social insurance"})
    submit(page, "#window-add", {"no": "2", "name_zh": "2号窗口", "name_en": "Window 2", "categories": "B"})
    submit(page, "#window-add", {"no": "3", "name_zh": "3号窗口 综合", "name_en": "Window 3 General", "categories": "A,B"})
    submit(page, "#window-add", {"no": "4", "name_zh": "临时窗口", "categories": "A"})
    # retiring asks first: "cancel" keeps the window, "OK" retires it
    answers = ["dismiss"]
    page.on("dialog", lambda d: d.dismiss() if answers and answers.pop() == "dismiss" else d.accept())
    page.click("tr[data-window='4'] form[action$='/retire'] button")
    page.wait_for_timeout(300)
    assert page.locator("tr[data-window='4']").count() == 1
    submit(page, "tr[data-window='4'] form[action$='/retire']", {})
    assert page.locator("tr[data-window='4']").count() == 0
    submit(page, "tr[data-window='1'] form[action$='/rename']", {"name_zh": "1号窗口 登记", "name_en": "Window 1 Registration"})
    submit(page, "tr[data-window='1'] form[action$='/categories']", {"categories": "A,B"})
    # a bad one: an unknown category is refused with a clear message, nothing added
    page.fill("#window-add [name='no']", "5")
    page.fill("#window-add [name='name_zh']", "5号窗口")
    page.fill("#window-add [name='categories']", "Z")
    with page.expect_navigation():
        page.click("#window-add button[type='submit']")
    assert "unknown_category" in page.inner_text("[role='alert']")
    assert page.locator("tr[data-window='5']").count() == 0
    assert page.locator("#windows-table tbody tr").count() == 3

    # -- pause reasons
    page.goto(url + "/console/reasons")
    submit(page, "#pause-add", {"code": "break", "name_zh": "暂时休息", "name_en": "Short break",
                                "public_zh": "窗口暂停服务，请稍候", "public_en": "Paused, please wait"})
    assert page.locator("tr[data-reason='break']").count() == 1

    # -- staff: a clerk with a photo, a supervisor
    page.goto(url + "/console/staff")
    submit(page, "#staff-create", {"staff_no": "2001", "name_zh": "李四", "name_en": "Li Si", "role": "staff",
                                   "password": "clerk-pass-1"})
    submit(page, "#staff-create", {"staff_no": "8001", "name_zh": "赵主管", "name_en": "Zhao", "role": "supervisor",
                                   "password": "super-pass-1"})
    jpg = io.BytesIO()
    Image.new("RGB", (900, 600), (200, 30, 30)).save(jpg, "JPEG")
    submit(page, "tr[data-staff='2001'] form[action$='/photo']", {}, {"photo": ("li.jpg", jpg.getvalue(), "image/jpeg")})
    assert page.evaluate("document.querySelector(\"tr[data-staff='2001'] img\").naturalWidth") == 295

    # -- catalog: a bad file names its rows and imports nothing; a GBK CSV dry run, then real; an XLSX
    page.goto(url + "/console/catalog")
    submit(page, "#catalog-form", {}, {"file": ("bad.csv", BAD_CSV.encode("gbk"), "text/csv")})
    page.screenshot(path=str(artifacts() / "console_it_catalog_errors_1920x1080.png"), full_page=True)
    errors = page.inner_text("#import-errors")
    assert "4\ttime_limit_days" in errors and "4\tinstant" in errors and page.inner_text("#matter-count") == "0"
    submit(page, "#catalog-form", {}, {"file": ("bad2.csv", "code,name_zh,category\nOK-2,好,A\nBAD-3,坏,Z\n".encode("utf-8-sig"),
                                                "text/csv")})
    errors = page.inner_text("#import-errors")
    assert "3\tcategory" in errors and "Z" in errors and page.inner_text("#matter-count") == "0"
    submit(page, "#catalog-form", {"dry_run": "1"}, {"file": ("m.csv", GBK_CSV.encode("gbk"), "text/csv")})
    assert "2" in page.inner_text("#import-result") and page.inner_text("#matter-count") == "0"
    submit(page, "#catalog-form", {}, {"file": ("m.csv", GBK_CSV.encode("gbk"), "text/csv")})
    assert page.inner_text("#matter-count") == "2"
    xlsx = make_xlsx([["事项编码", "事项名称", "业务类别", "承诺时限", "即办件", "材料编码", "材料名称"],
                      ["TST-A-2", "证明开具", "A", 5, "否", "id", "身份证"]])
    submit(page, "#catalog-form", {}, {"file": ("m.xlsx", xlsx, "application/octet-stream")})
    assert page.inner_text("#matter-count") == "3"  # added to the two from the CSV

    # -- calendar, rules, an enrollment code
    page.goto(url + "/console/calendar")
    cal = (REPO_ROOT / "hall_server" / "data" / "calendar" / "cn-2026.json").read_bytes()
    submit(page, "form[action='/console/calendar'][method='post']", {}, {"file": ("cn-2026.json", cal, "application/json")})
    assert page.locator("#calendar-table tbody tr").count() > 5
    page.goto(url + "/console/rules")
    submit(page, "#rules-form", {"recall_limit": "2"})
    assert page.input_value("#r-recall_limit") == "2"
    page.goto(url + "/console/devices")
    submit(page, "form[action$='/enroll']", {"window_no": "2"})
    code = page.inner_text("#enroll-code")
    dev = Api(url).post("/devices/enroll", json={"enrollment_code": code, "window_no": 2, "hostname": "pc2"})
    assert dev.status_code == 200, dev.text

    # -- the clerk's password reset: one-time password shown once, then a forced change
    page.goto(url + "/console/staff")
    submit(page, "tr[data-staff='2001'] form[action$='/reset']", {})
    otp = page.inner_text("#otp").strip()
    page.screenshot(path=str(artifacts() / "console_it_staff_otp_1920x1080.png"), full_page=True)
    r = Api(url).post("/auth/login", json={"staff_no": "2001", "password": otp, "window_no": 1})
    assert r.status_code == 403 and r.json()["error"]["code"] == "password_change_required"
    r = Api(url).post("/auth/password", json={"staff_no": "2001", "password": otp, "new_password": "clerk-own-pw"})
    assert r.status_code == 204, r.text

    # -- a clerk serves citizens at window 1 while the supervisor watches the live page
    clerk = signed_in(url, "2001", 1, password="clerk-own-pw")
    hall = clerk.get("/hall").json()
    assert hall["rules"]["recall_limit"] == 2 and [w["no"] for w in hall["windows"]] == [1, 2, 3]
    photo = clerk.s.get(url + "/api/v1/staff/2001/photo", headers=clerk.headers())
    assert photo.status_code == 200 and Image.open(io.BytesIO(photo.content)).size == (295, 413)
    sup = sup_ctx.new_page()
    sign_in(sup, url, "8001", "super-pass-1")
    assert sup.locator("tr[data-window='1'] .badge").inner_text() == "服务中"
    serve_one(url, clerk, "A", "TST-A-2")
    wait_js(sup, "document.getElementById('live').dataset.updated !== undefined")  # the stream is live

    # the figure: a call's answer -> its number on the live page, 20 calls
    times: list[float] = []
    for _ in range(20):
        Api(url).post("/tickets", json={"category": "A"})
        wait_js(sup, "document.querySelector(\"tr[data-category='A'] td.waiting\").textContent.trim() === '1'")
        t0 = time.time()
        r = clerk.post("/windows/1/call-next")
        assert r.status_code == 200, r.text
        called = r.json()["ticket"]
        wait_js(sup, f"document.querySelector(\"tr[data-window='1'] td.current\").textContent.trim() === {called['number']!r}")
        # when the page swapped the new fragment in (the browser's clock is this machine's)
        times.append(sup.evaluate("Number(document.getElementById('live').dataset.updated)") / 1000 - t0)
        assert clerk.post(f"/tickets/{called['id']}/start").status_code == 200
        assert clerk.post(f"/tickets/{called['id']}/complete", json={"outcome": "completed"}).status_code == 200
    p95 = statistics.quantiles(times, n=20)[18]
    print(json.dumps({"figure": "console_live_update_after_call", "db": getattr(server, "db", ""), "unit": "ms", "p95": round(p95 * 1000, 1),
                      "median": round(statistics.median(times) * 1000, 1), "n": len(times), "target_ms": 500}))
    assert p95 < 2.0  # the target is 500 ms (reported above); this only catches a broken stream

    # a pause shows its reason live
    assert clerk.post("/windows/1/pause", json={"reason_code": "break"}).status_code == 200
    wait_js(sup, "document.querySelector(\"tr[data-window='1']\").textContent.includes('暂时休息')")
    for _ in range(3):
        Api(url).post("/tickets", json={"category": "A"})
    Api(url).post("/tickets", json={"category": "B"})
    wait_js(sup, "document.querySelector(\"tr[data-category='A'] td.waiting\").textContent.trim() === '3'")
    sup.screenshot(path=str(artifacts() / "console_supervisor_live_paused_1920x1080.png"), full_page=True)
    assert clerk.post("/windows/1/resume").status_code == 200

    # -- ratings: a bad one and a good one; the bad one is listed first
    bad = serve_one(url, clerk, "B")
    good = serve_one(url, clerk, "A")
    reasons = clerk.get("/rating-reasons").json()
    now = datetime.now(UTC).isoformat()
    for case, level, why in ((good, "very_satisfied", []), (bad, "very_dissatisfied", [reasons["reasons"][0]["code"]])):
        r = clerk.post("/ratings", json={"id": uuid.uuid4().hex, "case_id": case["case_id"], "window_no": 1,
                                         "level": level, "reasons": why, "reasons_version": reasons["version"],
                                         "comment": "等太久" if why else "", "rated_at": now})
        assert r.status_code == 201, r.text
    sup.goto(url + "/console/ratings")
    rows = sup.locator("#ratings tbody tr")
    assert rows.count() == 2 and rows.nth(0).get_attribute("data-level") == "very_dissatisfied"
    sup.select_option("#f-level", "very_satisfied")
    with sup.expect_navigation():
        sup.click("form[action='/console/ratings'] button")
    assert sup.locator("#ratings tbody tr").count() == 1
    sup.goto(url + "/console/figures")
    assert int(sup.inner_text("#fig-served")) >= 3
    assert sup.locator("svg[role='img'] rect").count() >= 3
    sup.goto(url + "/console/staff")
    assert sup.locator("h1").inner_text() == "无法完成"  # a supervisor has no staff page

    # -- the audit log: who, what, before/after
    page.goto(url + "/console/audit")
    actions = [a for a in page.locator("#audit-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.action)")]
    for want in ("hall.init", "window.add", "window.retire", "window.rename", "category.add", "staff.create",
                 "staff.photo", "staff.reset_password", "staff.change_password", "catalog.import", "rules.set",
                 "calendar.import", "device.enrollment_code", "pause_reason.add"):
        assert want in actions, want
    row = page.locator("#audit-table tbody tr[data-action='rules.set']").first
    assert "\t9001\t" in row.inner_text() and "recall_limit\t3\t→\t2" in row.inner_text()
    assert otp not in page.content()

    # -- every page: axe-core, screenshots at both sizes, in both roles; nothing from outside
    shots = artifacts()
    for who, pg in (("it", page), ("supervisor", sup)):
        for path in PAGES:
            if who == "supervisor" and path in ("/console/staff", "/console/devices", "/console/catalog"):
                continue
            name = path.strip("/").split("/")[-1] or "live"
            if name == "console":
                name = "live"
            for w, h in ((1920, 1080), (1366, 768)):
                pg.set_viewport_size({"width": w, "height": h})
                pg.goto(url + path)
                if who == "it" or w == 1920:
                    pg.screenshot(path=str(shots / f"console_{who}_{name}_{w}x{h}.png"), full_page=True)
            bad_axe = axe_serious(pg)
            assert not bad_axe, (who, path, bad_axe)
    page.goto(url + "/console/lang/en?next=/console/figures")
    assert page.locator("h1").inner_text().startswith("Figures")
    page.screenshot(path=str(shots / "console_it_figures_en_1366x768.png"), full_page=True)
    assert not axe_serious(page)
    page.goto(url + "/console/login")
    assert not outside, outside
    it_ctx.close()
    sup_ctx.close()
