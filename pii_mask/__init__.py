"""Masking of personal data and secrets in log text, shared by the desk and the hall server.

The one copy of the rules (issue 17 item 3): `counter_app.logging_setup` (the desk's handler
filter, the support bundle) and `hall_server.logmask` (the server's record factory) both call
`mask_text`. This package imports nothing of ours and no GUI, so every layer may import it
without breaking the import flow (tests/test_layering.py gives it its own rule).

What is masked: resident ID numbers (18 digits or 17 + X, and the old 15-digit form, with
separators, full-width digits), the new 18-digit foreigner's permanent residence card (same
shape), 11-digit mainland mobile numbers and fixed-line numbers with an area code, passports
(Chinese E/G/D/S/P shapes), Hong Kong/Macao permits (H/M + 8 or 10 digits, C + 8), the old
foreigner's permanent residence card (3 letters + 12 digits), unified social credit codes
(18 characters), and the value of any key that names a document number, phone, name or address
(`doc_number=`, `"phone": "..."`, `证件号码：...`, 台胞证 8 digits only by such a key);
`Bearer`/`Basic` credentials, the value of any password/secret/token/cookie/enrolment- or
pairing-code key, numeric `code=` values, enrolment codes by their shape, rate-later tokens.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["mask_text"]


# Characters that may sit between the digit groups of one number: space, tab, hyphen, dot,
# ideographic space, full-width hyphen and full stop, the Unicode dashes.
_SEP = "[ \\t\\-.\\u3000\\uff0d\\uff0e\\u2010-\\u2015]"
# A run of digit groups (ASCII, full-width or any Unicode decimal digit) joined by at most two
# separator characters, with an optional ID check character X at the end.
_RUN_RE = re.compile(r"\d+(?:" + _SEP + r"{1,2}\d+)*(?:" + _SEP + r"{0,2}[XxＸｘ])?")
_GROUP_RE = re.compile(r"\d+")
# key = value secrets: any key containing one of these words (device_secret, pairing_token,
# enrollment_code, new_password ...), then ':' or '=' (JSON, repr, query strings, headers).
_SECRET_KEY_RE = re.compile(
    r"(?i)(?<![a-z0-9])([a-z_-]*?"
    r"(?:password|passwd|pwd|secret|token|cookie|otp|api[_-]?key|private[_-]?key|session[_-]?id"
    r"|enrol{1,2}ment[_-]?code|pairing[_-]?code|pair[_-]?code|one[_-]?time[_-]?code)"
    r"(?:[_-][a-z_-]*)?[\"']?[ \t]*[:=][ \t]*)"
    # the value: a quoted string to its closing quote (escapes honoured), else the rest of the
    # line (a password may hold spaces: cutting at the first one leaked its second half)
    r"(\"(?:[^\"\\\r\n]|\\.)*\"?|'(?:[^'\\\r\n]|\\.)*'?|[^\r\n]*)"
)
_SECRET_HINT_RE = re.compile(
    r"(?i)pass|pwd|secret|token|cookie|otp|key|session|enrol|pair|one.?time")
# A bare `code` key is an error code ("bad_credentials") unless its value holds a digit: then it
# is a pairing or enrolment code.
_CODE_KEY_RE = re.compile(
    r"(?i)(?<![a-z0-9_])(code[\"']?[ \t]*[:=][ \t]*[\"']?)([^\s\"'&,;}]*\d[^\s\"'&,;}]*)")
# Free text: "pairing code 123456", "enrolment code: AB12..", "配对码 123456", "登记码：...".
_CODE_TEXT_RE = re.compile(
    r"(?i)((?:pairing|enrol{1,2}(?:ment|ing)?|配对|登记)\s*(?:code|码)\s*[:=：]?\s*)"
    r"([^\s\"'&,;}]+)")
# The shape of an enrolment code (hall-server enrollment-code): three groups of six hex digits.
_ENROL_SHAPE_RE = re.compile(r"(?i)(?<![0-9a-z])[0-9a-f]{6}-[0-9a-f]{6}-[0-9a-f]{6}(?![0-9a-z])")
# A rate-later link's `c=` token (<case id>-<mac>) and the pad page's `#pair=<token>`, in a URL,
# and the rate-later token on its own.
_C_PARAM_RE = re.compile(r"([#?&;](?:c|pair)=)[^&#\s\"'<>]+")
_C_SHAPE_RE = re.compile(r"(?<![\w-])\d+-[A-Za-z0-9_-]{22}(?![\w-])")
_AUTH_RE = re.compile(r"(?i)((?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+")
_CHINA_MOBILE_2ND = "3456789"


# A key that names a document number, a phone, a person's name or address (issue 17): its value
# is hidden whole, whatever its shape (a Taiwan permit is 8 bare digits: only its key tells).
_PERSONAL_KEY_RE = re.compile(
    r"(?i)(?<![a-z0-9])((?:[a-z]+[_-])*"
    r"(?:doc(?:ument)?[_-]?(?:no|num|number)|id[_-]?(?:no|num|number|card)|passport"
    r"|permit[_-]?(?:no|num|number)|credit[_-]?code|phone|mobile|tel|telephone"
    r"|applicant[_-]?name|full[_-]?name|recipient|(?:applicant|home|postal|mail|mailing)[_-]?address)"
    r"(?:[_-][a-z_-]*)?[\"']?[ \t]*[:=][ \t]*)"
    r"(\"(?:[^\"\\\r\n]|\\.)*\"?|'(?:[^'\\\r\n]|\\.)*'?|[^\s\"',;&}]+)")
_PERSONAL_HINT_RE = re.compile(r"(?i)doc|id|passport|permit|credit|phone|mobile|tel|name|recipient"
                               r"|address")
# The same in Chinese: 证件号码：…, 台胞证 12345678, 姓名：张三, 收件地址：… (to the next
# punctuation or space).
_PERSONAL_ZH_RE = re.compile(
    r"((?:证件号码|证件号|身份证号码|身份证号|身份证|护照号码|护照号|护照|通行证号码|通行证"
    r"|台胞证|居留证|居住证|信用代码|手机号码|手机号|手机|联系电话|电话|姓名|申请人|收件人"
    r"|收件地址|邮寄地址|住址|地址)[ \t\u3000]*[:=：]?[ \t\u3000]*)"
    r"([^\s\"',;&}，。；、（）()]+)")
# Shapes that need no key. Word edges are any non letter/digit (a log line glues words to
# Chinese text). Chinese passports (E/G/D/S/P + 8 digits, E + letter + 7), Hong Kong/Macao
# permits of residents (H/M + 8 or 10 digits) and mainland residents' (C + 8, C + letter + 7),
# the old foreigner's permanent residence card (3 letters + 12 digits): the first letter stays.
_DOC_SHAPE_RE = re.compile(
    r"(?<![A-Za-z0-9])([EGDSPHMCegdsphmc])((?<=[HMhm])\d{10}|\d{8}|[A-HJ-NP-Za-hj-np-z]\d{7})"
    r"(?![A-Za-z0-9])")
_PR_OLD_RE = re.compile(r"(?<![A-Za-z0-9])([A-Za-z])([A-Za-z]{2}\d{12})(?![A-Za-z0-9])")
# A unified social credit code (an all-digit one is also an 18-digit number: the same two stay):
# the registration authority and kind stay, the rest is hidden.
_CREDIT_RE = re.compile(
    r"(?i)(?<![a-z0-9])([0-9A-HJ-NP-RTUW-Y][1-9])(\d{6}[0-9A-HJ-NP-RTUW-Y]{10})(?![a-z0-9])")
# A fixed-line number with its area code (0531-88886666, (010) 12345678, 053188886666): the
# area code and the last two digits stay.
_LANDLINE_RE = re.compile(r"(?<!\d)(\(?0\d{2,3}\)?[ \t-]?)(\d{5,6})(\d{2})(?!\d)")


def _mask_documents(text: str) -> str:
    """Mask personal values by their key and document numbers by their shape."""
    if _PERSONAL_HINT_RE.search(text):
        text = _PERSONAL_KEY_RE.sub(lambda m: m.group(1) + _stars(m.group(2)), text)
    text = _PERSONAL_ZH_RE.sub(r"\1***", text)
    text = _DOC_SHAPE_RE.sub(lambda m: m.group(1) + "*" * len(m.group(2)), text)
    text = _PR_OLD_RE.sub(lambda m: m.group(1) + "*" * len(m.group(2)), text)
    text = _CREDIT_RE.sub(lambda m: m.group(1) + "*" * len(m.group(2)), text)
    return _LANDLINE_RE.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)


def _digit(ch: str) -> int:
    return unicodedata.digit(ch, -1)


def _mask_numbers(text: str) -> str:
    """Mask 18/15-digit ID numbers and 11-digit mobile numbers, separators and all.

    Every span of whole digit groups inside a run is tried, so an ID beside a phone number
    ("138 1234 5678 110105...") is still found; a single unbroken group longer than 18 digits
    (an order id, a timestamp in ms) is left alone.
    """
    out: list[str] | None = None
    for run in _RUN_RE.finditer(text):
        s = run.group(0)
        if len(s) < 11:  # fewer than 11 digits: neither a phone nor an ID number
            continue
        groups = [(g.start(), g.end()) for g in _GROUP_RE.finditer(s)]
        if sum(e - b for b, e in groups) < 11:
            continue
        has_x = not s[-1].isdigit()
        hide: set[int] = set()
        for i in range(len(groups)):
            total = 0
            for j in range(i, len(groups)):
                total += groups[j][1] - groups[j][0]
                if total > 18:
                    break
                last = j == len(groups) - 1
                digits = [k for g in groups[i:j + 1] for k in range(*g)]
                if total in (15, 18) or (total == 17 and last and has_x):
                    # keep the two-digit province code, hide the rest (and the X)
                    hide.update(digits[2:])
                    if total == 17:
                        hide.add(len(s) - 1)
                elif (total == 11 and _digit(s[digits[0]]) == 1
                      and str(_digit(s[digits[1]])) in _CHINA_MOBILE_2ND):
                    hide.update(digits[3:-2])  # 138******78
        if hide:
            if out is None:
                out = list(text)
            for k in hide:
                out[run.start() + k] = "*"
    return text if out is None else "".join(out)


def mask_text(text: str) -> str:
    """Mask document numbers, phone numbers, names and addresses by key, passwords, tokens and
    one-time codes in `text`."""
    if _SECRET_HINT_RE.search(text):  # the full pattern is costly; most lines hold no key
        text = _SECRET_KEY_RE.sub(lambda m: m.group(1) + _stars(m.group(2)), text)
    text = _CODE_KEY_RE.sub(r"\1***", text)
    text = _CODE_TEXT_RE.sub(r"\1***", text)
    text = _ENROL_SHAPE_RE.sub("******-******-******", text)
    text = _C_PARAM_RE.sub(r"\1***", text)
    text = _C_SHAPE_RE.sub("***", text)
    text = _AUTH_RE.sub(r"\1***", text)
    # Numbers first: a document rule that hid part of a digit run would leave the rest of an
    # ID or phone number too short for the number rules.
    return _mask_documents(_mask_numbers(text))


def _stars(value: str) -> str:
    """`***` in place of a secret value, keeping its quotes so JSON-looking text stays readable."""
    if value[:1] in ("'", '"'):
        q = value[0]
        return f"{q}***{q}" if len(value) > 1 and value.endswith(q) else f"{q}***"
    return "***" if value else value

