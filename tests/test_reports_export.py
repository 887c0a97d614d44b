"""The hall's published report (issue 15 items 3 and 4) on the demo hall's month of history:
the history itself (deterministic, every channel, some late, some overdue, deadlines from the
hall calendar), the JSON figures against an independent count from the database rows, and the
XLSX (opened with openpyxl) and PDF (pdftotext, pdffonts: the Chinese font is embedded)
exports carrying the same figures."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import create_engine, text

from hall_server import figures, lifecycle, reports, workdays
from tests.support.server_fixtures import (
    RunningServer,
    drop_pg_db,
    fresh_pg_url,
    signed_in,
    start_server_thread,
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hall(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    db_url = None
    if request.param == "postgresql":
        base = os.environ.get("HALL_TEST_PG_URL")
        if not base:
            pytest.skip("HALL_TEST_PG_URL not set")
        db_url = fresh_pg_url(base)
    srv = start_server_thread(db_url=db_url, data_dir=tmp_path_factory.mktemp("hist"), demo=True,
                              demo_history=True)
    try:
        yield srv
    finally:
        srv.stop()
        if db_url:
            drop_pg_db(db_url)


def rows(srv: RunningServer, sql: str, **params: Any) -> list[dict[str, Any]]:
    eng = create_engine(srv.db_url)
    with eng.connect() as c:
        out = [dict(r) for r in c.execute(text(sql), params).mappings()]
    eng.dispose()
    return out


def month(srv: RunningServer) -> tuple[str, str]:
    today = date.fromisoformat(signed_in(srv.url, "8001").get("/case-deadlines").json()["today"])
    return (today - timedelta(days=30)).isoformat(), (today - timedelta(days=1)).isoformat()


def test_history_is_true_to_the_rules(hall: RunningServer) -> None:
    start, end = month(hall)
    cases = rows(hall, "SELECT * FROM cases")
    assert len(cases) > 100
    eng = create_engine(hall.db_url)
    with eng.connect() as c:
        cal = workdays.load(c)
    eng.dispose()
    for c in cases:
        assert start <= c["day"] <= end and cal.is_working_day(date.fromisoformat(c["day"]))
        if c["outcome"] == "accepted":
            want = lifecycle.deadline_for(date.fromisoformat(c["day"]), c["time_limit_days"], cal)
            assert c["deadline_day"] == want.isoformat()
            if c["conclusion"] is not None:
                assert bool(c["on_time"]) == (c["concluded_day"] <= c["deadline_day"])
                assert c["concluded_day"] < date.fromisoformat(end).isoformat() or c["concluded_day"] == end
        elif c["outcome"] == "completed":
            assert c["on_the_spot"] and c["on_time"] and c["concluded_day"] == c["day"]
    late = [c for c in cases if c["conclusion"] and c["on_time"] is not None and not c["on_time"]]
    assert 0 < len(late) < len(cases) / 5
    sup = signed_in(hall.url, "8001")
    overdue = [i for i in sup.get("/case-deadlines").json()["items"] if i["state"] == "overdue"]
    assert overdue, "the demo shows overdue cases on first start"
    rep = sup.get(f"/reports?from={start}&to={end}&by=staff").json()
    h = rep["hall"]
    assert all(h["ratings_by_channel"][ch] > 0 for ch in figures.CHANNELS)
    assert h["bad"] > 0 and h["bad_open"] > 0 and h["bad_closed"] > 0
    assert 0 < h["on_time_rate"] < 1 and 0 < h["on_the_spot_rate"] < 1
    assert {r["key"] for r in rep["rows"]} <= {str(n) for n in range(1001, 1020)}
    # every paper-form rating has its scanned form: a document of its case, stored encrypted
    paper = rows(hall, "SELECT r.case_id, d.case_id AS doc_case, d.item_id, d.path, d.encryption FROM ratings r "
                       "LEFT JOIN documents d ON d.id = r.form_document_id WHERE r.source = 'paper'")
    assert paper and all(p["doc_case"] == p["case_id"] and p["item_id"] == "rating_form" for p in paper)
    assert all(p["encryption"] == "aesgcm-v1" and b"PNG" not in Path(p["path"]).read_bytes()[:64] for p in paper)


def test_report_figures_match_an_independent_count(hall: RunningServer) -> None:
    start, end = month(hall)
    cases = rows(hall, "SELECT * FROM cases")
    accepted = [c for c in cases if start <= c["day"] <= end and c["outcome"] in ("accepted", "completed")]
    concluded = [c for c in cases if c["concluded_day"] and start <= c["concluded_day"] <= end]
    on_time = [c for c in concluded if c["on_time"]]
    spot = [c for c in accepted if c["on_the_spot"]]
    # An upheld appeal (申诉复核) takes its rating out of every figure (the demo has one).
    ratings = rows(hall, "SELECT level, source FROM ratings WHERE day >= :s AND day <= :e"
                         " AND NOT excluded_from_figures", s=start, e=end)
    good = [r for r in ratings if r["level"] in ("very_satisfied", "satisfied", "basic")]
    sup = signed_in(hall.url, "8001")
    h = sup.get(f"/reports?from={start}&to={end}&by=window").json()["hall"]
    assert h["accepted"] == len(accepted) and h["concluded"] == len(concluded)
    assert h["on_time_rate"] == round(len(on_time) / len(concluded), 4)
    assert h["on_the_spot_rate"] == round(len(spot) / len(accepted), 4)
    assert h["ratings"] == len(ratings) and h["satisfaction_rate"] == round(len(good) / len(ratings), 4)
    assert h["ratings_by_channel"]["paper"] == sum(1 for r in ratings if r["source"] == "paper")
    # the month (period=YYYY-MM) and a single day give their own ranges
    one = sup.get(f"/reports?period={end}&by=hall").json()
    assert one["from"] == one["to"] == end
    m = sup.get(f"/reports?period={end[:7]}&by=hall").json()
    assert m["from"] == end[:7] + "-01" and m["to"][:7] == end[:7]


def test_xlsx_and_pdf_carry_the_same_figures(hall: RunningServer) -> None:
    start, end = month(hall)
    sup = signed_in(hall.url, "8001")
    rep = sup.get(f"/reports?from={start}&to={end}&by=window").json()
    h = rep["hall"]
    r = sup.get(f"/reports.xlsx?from={start}&to={end}&by=window")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxml")
    wb = load_workbook(io.BytesIO(r.content))
    ws = wb["指标"]
    head = [c.value for c in ws[2]]
    hall_row = [c.value for c in ws[3]]
    assert hall_row[0] == "全厅"
    col = {name: i for i, name in enumerate(head)}
    assert hall_row[col["受理"]] == h["accepted"] and hall_row[col["办结"]] == h["concluded"]
    assert hall_row[col["按时办结率"]] == h["on_time_rate"] and hall_row[col["现场办结率"]] == h["on_the_spot_rate"]
    assert hall_row[col["满意率"]] == h["satisfaction_rate"] and hall_row[col["差评"]] == h["bad"]
    assert ws.cell(row=3, column=col["按时办结率"] + 1).number_format == "0.0%"
    assert len(list(ws.iter_rows(min_row=4))) == len(rep["rows"])
    ch = {row[1]: row[2] for row in wb["渠道"].iter_rows(min_row=2, values_only=True)}
    assert ch == h["ratings_by_channel"]
    assert [row[0] for row in wb["每日"].iter_rows(min_row=2, values_only=True)] == figures.days(start, end)

    for lang, words in (("zh", ("按时办结率", "全厅", "纸质评价表")), ("en", ("On-time rate", "Whole hall", "Paper form"))):
        r = sup.get(f"/reports.pdf?from={start}&to={end}&by=window&lang={lang}")
        assert r.status_code == 200 and r.content.startswith(b"%PDF")
        txt = pdftotext(r.content)
        for w in words:
            assert w in txt, (w, txt[:500])
        for v in (reports.cell(h["on_time_rate"], "%"), reports.cell(h["on_the_spot_rate"], "%"),
                  reports.cell(h["satisfaction_rate"], "%"), str(h["accepted"])):
            assert v in txt, (v, txt[:800])
        fonts = subprocess.run(["pdffonts", "-"], input=r.content, capture_output=True, timeout=60).stdout.decode()
        cjk = [ln for ln in fonts.splitlines() if "HallCJK" in ln or "WenQuanYi" in ln]
        assert cjk and all(" yes " in ln for ln in cjk), fonts  # embedded (and subset)
    assert sup.get("/reports.pdf?from=2026-01-10&to=2026-01-01").status_code == 422


def pdftotext(data: bytes) -> str:
    assert shutil.which("pdftotext"), "poppler-utils (pdftotext) is needed"
    out = subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.decode("utf-8")


def test_history_is_deterministic(hall: RunningServer, tmp_path: Path) -> None:
    other = start_server_thread(data_dir=tmp_path, demo=True, demo_history=True)  # SQLite vs either
    try:
        start, end = month(hall)
        a = signed_in(hall.url, "8001").get(f"/reports?from={start}&to={end}&by=window").json()
        b = signed_in(other.url, "8001").get(f"/reports?from={start}&to={end}&by=window").json()
        assert a["hall"] == b["hall"] and a["rows"] == b["rows"]
    finally:
        other.stop()
