"""The applicant read from a card (pty-emulated GA 467 reader) is validated like a typed entry,
gets the green channel suggestion from age, and is named on the one-time notice PDF (pdftotext)."""

from __future__ import annotations

import os
import subprocess
from datetime import date
from pathlib import Path

from counter_app.applicant import green_channel_suggested, mask_name, validate_applicant
from counter_app.documents import notice
from counter_app.idcard.serial_reader import SerialIdCardReader
from tests.test_idcard_reader import Module, text_of


def test_card_to_applicant_to_notice(tmp_path: Path) -> None:
    master, slave = os.openpty()
    module = Module(master)
    module.text = text_of(name="欧阳娜娜", sex="2", birth="19580312", id_number="370102195803122234")
    reader = SerialIdCardReader(os.ttyname(slave), command_timeout_s=0.4)
    try:
        card = reader.read_card()
    finally:
        reader.close()
        module.close()
        os.close(slave)
        os.close(master)
    today = date(2026, 12, 3)
    who = validate_applicant(name=card.name, doc_type=card.doc_type, doc_number=card.id_number,
                             address=card.address, source="card", today=today)
    assert who.birth_date == date(1958, 3, 12) and green_channel_suggested(who, today)  # 68
    assert mask_name(who.name) == "欧**娜"
    data = notice.NoticeData("政务服务大厅", "1号窗口", "个体工商户设立登记", "GXQ-20261203-0001", "1001",
                             [notice.MissingItem("营业执照副本")], applicant=who.name)
    path = notice.save(data, tmp_path)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "申请人" in text and "欧阳娜娜" in text and "营业执照副本" in text
    # Without an applicant the notice still renders, with no applicant row.
    bare = subprocess.run(["pdftotext", "-layout", str(notice.save(
        notice.NoticeData("大厅", "1", "事项", "GXQ-2", "1001", [notice.MissingItem("a")]), tmp_path)), "-"],
        capture_output=True, text=True, check=True).stdout
    assert "欧阳娜娜" not in bare
