"""The desk's applicant flow against the real server and a pty-emulated card reader: read the
card, record it on the case (masked reply, green channel at 70), reveal with a purpose, find the
case by the full ID number; a refused value comes back as a CounterError with zh + en."""

from __future__ import annotations

import os
from datetime import date
from typing import Any

import pytest

from counter_app.applicant import id_check_char, validate_applicant
from counter_app.applicant_desk import ApplicantDesk
from counter_app.errors import CounterError
from counter_app.idcard.base import ReaderOfflineError
from counter_app.idcard.serial_reader import SerialIdCardReader
from tests.documents_helpers import open_case
from tests.test_idcard_reader import Module, text_of


def test_card_to_case_to_reveal_and_find(fresh_hall_server: Any) -> None:
    client, case = open_case(fresh_hall_server.url)
    born = date.today().replace(year=date.today().year - 70, day=1)
    body = f"370102{born:%Y%m%d}456"
    number = body + id_check_char(body)
    master, slave = os.openpty()
    module = Module(master)
    module.text = text_of(name="张三明", birth=f"{born:%Y%m%d}", id_number=number, valid_until="20200101")
    reader = SerialIdCardReader(os.ttyname(slave), command_timeout_s=0.4)
    desk = ApplicantDesk(client, reader)
    try:
        read = desk.read_card()
    finally:
        reader.close()
        module.close()
        os.close(slave)
        os.close(master)
    assert read.expired and read.green_channel and read.applicant.source == "card"
    shown = desk.record(case.id, read.applicant)
    assert (shown.name, shown.doc_number, shown.masked) == ("张*明", number[:4] + "*" * 10 + number[-4:], True)
    assert shown.green_channel_suggested and desk.shown(case.id).name == "张*明"
    full = desk.reveal(case.id, "打印受理回执")
    assert (full.name, full.doc_number, full.masked, full.birth_date) == ("张三明", number, False, born.isoformat())
    hits = desk.find(id_number=number)
    assert [h.case_no for h in hits] == [case.case_no] and hits[0].applicant.name == "张*明"

    # A value only the server refuses (phone checked on the desk is skipped here on purpose).
    raw = validate_applicant(name="李四", doc_type="passport", doc_number="E12345678")
    bad = raw.__class__(**{**raw.__dict__, "doc_number": "E1"})
    with pytest.raises(CounterError) as err:
        desk.record(case.id, bad)
    assert err.value.message_zh and err.value.message_en and err.value.code == "invalid_applicant"
    with pytest.raises(CounterError) as err:
        ApplicantDesk(client, None).read_card()
    assert err.value.code == "no_reader"
    with pytest.raises(ReaderOfflineError):
        ApplicantDesk(client, SerialIdCardReader("/dev/nonexistent-reader")).read_card()
