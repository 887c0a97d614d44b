"""Manual entry of the applicant (pure): document numbers, phone numbers, companies, masking and
the green-channel suggestion.

Check characters:
- 18-digit resident ID number (GB 11643): weights 2^(17-i) mod 11 over the first 17 digits, check
  ``"10X98765432"[sum % 11]``; digits 7-14 are the birth date, which must be a real date between
  1850 (the standard's own example is born 1880) and today. The new foreigner's permanent
  residence card number (18 digits, first digit 9) uses the same check and carries the birth date
  in the same place.
- Unified social credit code (GB 32100): 18 characters from "0123456789ABCDEFGHJKLMNPQRTUWXY"
  (no I O S V Z), weights 3^i mod 31, check ``31 - sum % 31`` (31 -> 0) as a character of the set.
Both are prime-modulus checks with weights prime to the modulus, so any single changed character
is caught (the property tests try every one).

Other documents are format-checked only (they carry no public check character): passports,
往来内地通行证 for Hong Kong/Macao residents (H or M + 8 or 10 digits), 台湾居民来往大陆通行证
(8 digits), the old foreigner's permanent residence card (3 letters + 12 digits).

Every refusal is an ``InvalidEntryError`` naming the field, with zh and en messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from counter_app.errors import CounterError

ID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
ID_CHECK = "10X98765432"
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))

DOC_TYPES: dict[str, tuple[str, str]] = {
    "resident_id": ("居民身份证", "Resident ID card"),
    "passport": ("护照", "Passport"),
    "hk_macao_permit": ("港澳居民来往内地通行证", "Mainland travel permit for HK/Macao residents"),
    "taiwan_permit": ("台湾居民来往大陆通行证", "Mainland travel permit for Taiwan residents"),
    "foreigner_pr": ("外国人永久居留身份证", "Foreigner's permanent residence ID card"),
    "hmt_residence_permit": ("港澳台居民居住证", "Residence permit for HK/Macao/Taiwan residents"),
}

GREEN_CHANNEL_AGE = 65  # the hall rule: 65 and over are offered the green channel


class InvalidEntryError(CounterError):
    """A typed value was refused; ``details["field"]`` names it."""

    default_zh = "输入有误，请核对"
    default_en = "The entry is not valid; please check it"


def _bad(field: str, zh: str, en: str) -> InvalidEntryError:
    return InvalidEntryError(message_zh=zh, message_en=en, code="invalid_" + field, details={"field": field})


def _clean(value: str) -> str:
    return re.sub(r"[\s\-]", "", value).upper()


# -- resident ID (GB 11643) ------------------------------------------------------------------------
def id_check_char(body17: str) -> str:
    """The GB 11643 check character of the first 17 digits."""
    return ID_CHECK[sum(int(c) * w for c, w in zip(body17, ID_WEIGHTS, strict=True)) % 11]


def _birth(digits8: str) -> date | None:
    try:
        return date(int(digits8[:4]), int(digits8[4:6]), int(digits8[6:8]))
    except ValueError:
        return None


def check_id_number(value: str, today: date | None = None) -> str:
    """The normalised 18-character ID number, or InvalidEntryError."""
    today = today or date.today()
    v = _clean(value)
    if not re.fullmatch(r"[1-9]\d{16}[\dX]", v):
        raise _bad("id_number", "身份证号码应为18位（最后一位可为X）",
                   "An ID number has 18 characters (the last may be X)")
    born = _birth(v[6:14])
    if born is None or born.year < 1850 or born > today:
        raise _bad("id_number", "身份证号码中的出生日期无效", "The birth date in the ID number is not valid")
    if id_check_char(v[:17]) != v[17]:
        raise _bad("id_number", "身份证号码校验位不正确，请核对", "The ID number's check digit is wrong")
    return v


def birth_date_of(id_number: str) -> date:
    """The birth date carried by an 18-digit ID (or new permanent residence card) number."""
    born = _birth(id_number[6:14])
    if born is None:
        raise _bad("id_number", "无法从证件号码读出出生日期", "No birth date in the document number")
    return born


# -- unified social credit code (GB 32100) ---------------------------------------------------------
def uscc_check_char(body17: str) -> str:
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(body17, USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


def check_credit_code(value: str) -> str:
    v = _clean(value)
    if len(v) != 18 or any(c not in USCC_CHARS for c in v) or not v[2:8].isdigit():
        raise _bad("credit_code", "统一社会信用代码应为18位数字或大写字母（不含I、O、S、V、Z）",
                   "A unified social credit code has 18 digits or capital letters (no I, O, S, V, Z)")
    if uscc_check_char(v[:17]) != v[17]:
        raise _bad("credit_code", "统一社会信用代码校验位不正确，请核对",
                   "The unified social credit code's check character is wrong")
    return v


# -- other documents -------------------------------------------------------------------------------
_FORMATS: dict[str, tuple[str, str, str]] = {
    # ICAO 9303 document numbers are up to 9 characters in the MRZ; a few states issue longer.
    "passport": (r"[A-Z0-9]{6,12}", "护照号码应为6至12位字母或数字",
                 "A passport number has 6 to 12 letters or digits"),
    "hk_macao_permit": (r"[HM](\d{8}|\d{10})", "港澳通行证号码应为H或M加8位或10位数字",
                        "A HK/Macao permit number is H or M and 8 or 10 digits"),
    "taiwan_permit": (r"\d{8}", "台胞证号码应为8位数字", "A Taiwan permit number has 8 digits"),
}


def check_document(doc_type: str, number: str, today: date | None = None) -> str:
    """The normalised document number for ``doc_type`` (a key of DOC_TYPES)."""
    v = _clean(number)
    if doc_type in ("resident_id", "hmt_residence_permit"):
        v = check_id_number(v, today)
        if doc_type == "hmt_residence_permit" and not v.startswith(("81", "82", "83")):
            raise _bad("doc_number", "港澳台居民居住证号码应以81、82或83开头",
                       "A HK/Macao/Taiwan residence permit number starts with 81, 82 or 83")
        return v
    if doc_type == "foreigner_pr":
        if re.fullmatch(r"[A-Z]{3}\d{12}", v):  # 2004 card: nationality letters + 12 digits
            return v
        if v.startswith("9"):
            return check_id_number(v, today)  # 2017 and 2023 cards: GB 11643 layout and check
        raise _bad("doc_number", "永久居留身份证号码应为15位（3个字母加12位数字）或以9开头的18位",
                   "A permanent residence card number is 3 letters + 12 digits, or 18 digits starting with 9")
    fmt = _FORMATS.get(doc_type)
    if fmt is None:
        raise _bad("doc_type", "不支持的证件类型", "Unsupported document type")
    pattern, zh, en = fmt
    if not re.fullmatch(pattern, v) or (doc_type == "passport" and not any(c.isdigit() for c in v)):
        raise _bad("doc_number", zh, en)
    return v


def check_phone(value: str) -> str:
    """A mainland mobile number, normalised to its 11 digits (+86 / 86 prefix dropped)."""
    v = re.sub(r"[\s\-()]", "", value)
    v = re.sub(r"^(\+?86)(?=1\d{10}$)", "", v)
    if not re.fullmatch(r"1[3-9]\d{9}", v):
        raise _bad("phone", "手机号码应为11位，以13至19开头", "A mobile number has 11 digits starting 13 to 19")
    return v


def check_name(value: str, field: str = "name") -> str:
    v = " ".join(value.split())
    if not 1 <= len(v) <= 50 or any(c.isdigit() or not c.isprintable() for c in v):
        raise _bad(field, "姓名应为1至50个字符，不含数字", "A name has 1 to 50 characters and no digits")
    return v


# -- the applicant ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Applicant:
    """The person who came, and for a company the company they came for."""

    name: str
    doc_type: str
    doc_number: str
    phone: str = ""
    birth_date: date | None = None
    address: str = ""
    disability_certificate: bool = False
    company_name: str = ""
    credit_code: str = ""
    source: str = "manual"  # "manual" or "card" (read from the ID card reader)


def validate_applicant(*, name: str, doc_type: str, doc_number: str, phone: str = "",
                       address: str = "", disability_certificate: bool = False,
                       company_name: str = "", credit_code: str = "", source: str = "manual",
                       today: date | None = None) -> Applicant:
    """Every field checked; the first bad one raises InvalidEntryError."""
    today = today or date.today()
    number = check_document(doc_type, doc_number, today)
    gb11643 = doc_type in ("resident_id", "hmt_residence_permit") or (
        doc_type == "foreigner_pr" and len(number) == 18)
    birth = birth_date_of(number) if gb11643 else None
    company = company_name.strip()
    code = ""
    if company or credit_code.strip():
        if not company:
            raise _bad("company_name", "请填写单位名称", "Enter the company name")
        code = check_credit_code(credit_code)
    return Applicant(name=check_name(name), doc_type=doc_type, doc_number=number,
                     phone=check_phone(phone) if phone.strip() else "", birth_date=birth,
                     address=address.strip()[:200], disability_certificate=disability_certificate,
                     company_name=company[:200], credit_code=code, source=source)


def age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def green_channel_suggested(applicant: Applicant, today: date, min_age: int = GREEN_CHANNEL_AGE) -> bool:
    """The hall rule: offer the green channel from ``min_age`` or with a disability certificate."""
    if applicant.disability_certificate:
        return True
    return applicant.birth_date is not None and age_on(applicant.birth_date, today) >= min_age


# -- masking (what screens, logs and printouts show by default) ------------------------------------
def mask_name(name: str) -> str:
    """张三明 -> 张*明, 张三 -> 张*, 欧阳娜娜 -> 欧**娜."""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_number(number: str) -> str:
    """370102195803121234 -> 3701**********1234; shorter numbers keep fewer characters."""
    n = len(number)
    if n >= 15:
        keep_head, keep_tail = 4, 4
    elif n >= 8:
        keep_head, keep_tail = 1, 3
    else:
        keep_head, keep_tail = 0, min(2, n // 3)
    return number[:keep_head] + "*" * (n - keep_head - keep_tail) + number[n - keep_tail:]


def mask_phone(phone: str) -> str:
    """13812345678 -> 138****5678."""
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:] if len(phone) >= 11 else mask_number(phone)
