"""The one-time notification PDF from a real case of the reference server: rendered with fpdf2,
turned into PNG with pdftoppm (kept under $COUNTER_ARTIFACTS/screenshots to look at), its text
extracted with pdftotext, its QR code decoded with zbarimg."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from counter_app.documents import DocumentError, notice
from tests.documents_helpers import open_case
from tests.support.gui_fixtures import artifacts_dir


def _matter_with_checklist(client: Any, required_at_least: int = 2) -> Any:
    page = client.sync_matters()
    for m in page.items:
        if sum(1 for i in m.checklist if i.requirement == "required") >= required_at_least \
                and any(i.notes_zh for i in m.checklist):
            return m
    raise AssertionError("no demo matter with a checklist")


def test_notice_lists_every_missing_required_item(fresh_hall_server: Any, tmp_path: Path) -> None:
    client, case = open_case(fresh_hall_server.url)
    matter = _matter_with_checklist(client)
    case = client.set_case_matter(case.id, matter.code)
    required = [i for i in matter.checklist if i.requirement == "required"]
    # The first required item was received; the others are missing or not checked yet.
    case = client.set_material(case.id, required[0].id, "received")
    if len(required) > 2:
        case = client.set_material(case.id, required[1].id, "missing")
    items = notice.missing_items(matter, case)
    assert [i.name for i in items] == [i.name_zh for i in required[1:]]
    data = notice.NoticeData(hall=client.hall().name_zh,
                             window="1号窗口", matter=matter.name_zh, case_no=case.case_no,
                             clerk="1001", items=items, day=date(2026, 11, 25),
                             department=matter.department_zh)
    path = notice.save(data, tmp_path / "notices")
    assert path.read_bytes().startswith(b"%PDF")
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          check=True, text=True).stdout
    compact = "".join(text.split())
    for item in items:
        assert "".join(item.name.split()) in compact
        if item.notes:
            assert "".join(item.notes.split())[:12] in compact
    for must in ("一次性告知书", "第三十二条第一款第（四）项", matter.name_zh, case.case_no,
                 "经办人", "申请人签收", "2026年11月25日"):
        assert "".join(must.split()) in compact, must
    assert "".join(required[0].name_zh.split()) not in compact  # received: not asked again
    # The page as the citizen takes it home; and the QR code says the case number.
    out = artifacts_dir() / "capture_notice"
    subprocess.run(["pdftoppm", "-png", "-r", "110", "-singlefile", str(path), str(out)], check=True)
    png = Path(str(out) + ".png")
    assert png.exists()
    if shutil.which("zbarimg"):
        qr = subprocess.run(["zbarimg", "-q", "--raw", str(png)], capture_output=True, text=True)
        assert qr.stdout.strip() == case.case_no
    client.close()


def test_print_goes_through_the_swappable_printer(tmp_path: Path) -> None:
    printed: list[Path] = []
    notice.set_printer(printed.append)
    try:
        data = notice.NoticeData("大厅", "1号窗口", "事项", "GXQ-1", "1001",
                                 [notice.MissingItem("身份证")])
        p = notice.save(data, tmp_path)
        notice.print_pdf(p)
        assert printed == [p]
    finally:
        notice.set_printer(None)


def test_nothing_missing_needs_no_notice() -> None:
    with pytest.raises(DocumentError) as e:
        notice.render(notice.NoticeData("大厅", "1", "事项", "X", "1001", []))
    assert e.value.code == "nothing_missing"


def test_old_notices_are_purged(tmp_path: Path) -> None:
    data = notice.NoticeData("大厅", "1", "事项", "GXQ-2", "1001", [notice.MissingItem("a")])
    p = notice.save(data, tmp_path)
    assert notice.purge_old(tmp_path, now=p.stat().st_mtime + 10) == 0
    assert notice.purge_old(tmp_path, now=p.stat().st_mtime + 90000) == 1
