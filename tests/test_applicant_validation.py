"""Manual entry of the applicant: GB 11643 ID numbers, GB 32100 credit codes (property tests:
every generated valid value accepted, every single-character corruption refused), the other
document formats, phone numbers, masking and the green-channel rule."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from counter_app.applicant import (
    ID_CHECK,
    USCC_CHARS,
    InvalidEntryError,
    check_credit_code,
    check_document,
    check_id_number,
    check_phone,
    green_channel_suggested,
    id_check_char,
    mask_name,
    mask_number,
    mask_phone,
    uscc_check_char,
    validate_applicant,
)

TODAY = date(2026, 12, 3)


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    region = draw(st.integers(110000, 829999))
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=TODAY))
    seq = draw(st.integers(0, 999))
    body = f"{region}{born:%Y%m%d}{seq:03d}"
    return body + id_check_char(body)


@st.composite
def credit_codes(draw: st.DrawFn) -> str:
    head = draw(st.text(USCC_CHARS, min_size=2, max_size=2))
    area = f"{draw(st.integers(110000, 659999))}"
    org = draw(st.text(USCC_CHARS, min_size=9, max_size=9))
    body = head + area + org
    return body + uscc_check_char(body)


def test_known_values() -> None:
    assert check_id_number("11010519491231002x", TODAY) == "11010519491231002X"  # GB 11643's example
    assert check_id_number("440524 1880 0101 0014", TODAY) == "440524188001010014"
    assert check_credit_code("91350100M000100Y43") == "91350100M000100Y43"
    for bad, why in (("11010519491231002", "18"), ("110105194902300023", "出生日期"),
                     ("110105203001010011", "出生日期"), ("110105194912310021", "校验位")):
        with pytest.raises(InvalidEntryError) as err:
            check_id_number(bad, TODAY)
        assert why in err.value.message_zh and err.value.message_en
        assert err.value.details == {"field": "id_number"}
    with pytest.raises(InvalidEntryError):
        check_credit_code("91350100M000100Y4I")  # I is not in the set


@settings(max_examples=200, deadline=None)
@given(id_numbers())
def test_valid_ids_accepted_and_every_single_corruption_refused(number: str) -> None:
    assert check_id_number(number, TODAY) == number
    for i in range(18):
        for c in "0123456789X":
            if c == number[i]:
                continue
            corrupt = number[:i] + c + number[i + 1:]
            with pytest.raises(InvalidEntryError):
                check_id_number(corrupt, TODAY)


@settings(max_examples=200, deadline=None)
@given(credit_codes())
def test_valid_credit_codes_accepted_and_every_single_corruption_refused(code: str) -> None:
    assert check_credit_code(code) == code
    for i in range(18):
        for c in USCC_CHARS + "IOSVZ":
            if c == code[i]:
                continue
            with pytest.raises(InvalidEntryError):
                check_credit_code(code[:i] + c + code[i + 1:])


def test_check_tables_are_the_standard_ones() -> None:
    assert ID_CHECK == "10X98765432" and len(USCC_CHARS) == 31
    assert not set("IOSVZ") & set(USCC_CHARS)


@pytest.mark.parametrize(("doc_type", "good", "bad"), [
    ("passport", ["E12345678", "EA1234567", "G12345678", "X1234567"], ["E1234", "ABCDEFGH", "E1234567890123456789"]),
    ("hk_macao_permit", ["H12345678", "M1234567890", "h 1234 5678"], ["H1234567", "K12345678", "H123456789"]),
    ("taiwan_permit", ["12345678"], ["1234567", "A1234567", "123456789"]),
    ("foreigner_pr", ["USA110700081002", "911586198001010011"], ["US1107000810021", "111586198001010011",
                                                                  "911586198001010012"]),
    ("hmt_residence_permit", ["810000199001010014"], ["110105194912310029"]),
])
def test_other_documents(doc_type: str, good: list[str], bad: list[str]) -> None:
    for number in good:
        if doc_type in ("foreigner_pr", "hmt_residence_permit") and len(number) == 18:
            number = number[:17] + id_check_char(number[:17])  # noqa: PLW2901 - fix the example's check
        assert check_document(doc_type, number, TODAY)
    for number in bad:
        with pytest.raises(InvalidEntryError):
            check_document(doc_type, number, TODAY)
    with pytest.raises(InvalidEntryError) as err:
        check_document("library_card", "123", TODAY)
    assert err.value.details == {"field": "doc_type"}


def test_phone_numbers() -> None:
    assert check_phone("138 1234 5678") == check_phone("+86 13812345678") == "13812345678"
    assert check_phone("8619912345678") == "19912345678"
    for bad in ("12812345678", "1381234567", "0531-88888888", "138123456789", "abc"):
        with pytest.raises(InvalidEntryError) as err:
            check_phone(bad)
        assert err.value.details == {"field": "phone"}


def test_masking() -> None:
    assert mask_name("张三明") == "张*明" and mask_name("张三") == "张*" and mask_name("欧阳娜娜") == "欧**娜"
    assert mask_number("370102195803121234") == "3701**********1234"
    assert mask_number("H12345678") == "H*****678" and mask_number("USA110700081002").startswith("USA1")
    assert mask_phone("13812345678") == "138****5678"


def test_company_and_green_channel() -> None:
    born_65 = TODAY.replace(year=TODAY.year - 65)
    body = f"370102{born_65:%Y%m%d}123"
    elder = validate_applicant(name="张三明", doc_type="resident_id", doc_number=body + id_check_char(body),
                               phone="13812345678", today=TODAY)
    assert elder.birth_date == born_65 and green_channel_suggested(elder, TODAY)
    day_before = born_65 + timedelta(days=1)
    body = f"370102{day_before:%Y%m%d}123"
    young = validate_applicant(name="李四", doc_type="resident_id", doc_number=body + id_check_char(body), today=TODAY)
    assert not green_channel_suggested(young, TODAY)
    disabled = validate_applicant(name="李四", doc_type="passport", doc_number="E12345678",
                                  disability_certificate=True, today=TODAY)
    assert disabled.birth_date is None and green_channel_suggested(disabled, TODAY)
    company = validate_applicant(name="王五", doc_type="resident_id", doc_number="11010519491231002X",
                                 company_name="济南某某科技有限公司", credit_code="91350100M000100Y43", today=TODAY)
    assert company.credit_code == "91350100M000100Y43" and company.name == "王五"
    with pytest.raises(InvalidEntryError) as err:
        validate_applicant(name="王五", doc_type="resident_id", doc_number="11010519491231002X",
                           company_name="某公司", credit_code="91350100M000100Y44", today=TODAY)
    assert err.value.details == {"field": "credit_code"}
    with pytest.raises(InvalidEntryError) as err:
        validate_applicant(name="王5", doc_type="resident_id", doc_number="11010519491231002X", today=TODAY)
    assert err.value.details == {"field": "name"}
