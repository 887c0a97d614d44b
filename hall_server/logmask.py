"""Masking of personal data and secrets in the hall server's log records (issue 10, finding 10).

The rules are a copy of the desk's (counter_app/logging_setup.py): hall_server may not import the
desk's packages, and the property tests in tests/security/test_desk_masking.py check that both
copies give the same text for every generated input. `install()` wraps the process's log record
factory, so every record, whoever's handler formats it (uvicorn's, the root's, a test's), is
masked when it is made: its message (after `%` formatting), its traceback and its stack. uvicorn's
access records keep their argument tuple (its formatter reads it): each argument is masked.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any

# ---- masking rules: keep this block identical in counter_app/logging_setup.py and
# ---- hall_server/logmask.py (tests/security/test_desk_masking.py checks both give the same text)

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
    """Mask ID numbers, mobile numbers, passwords, tokens and one-time codes in `text`."""
    if _SECRET_HINT_RE.search(text):  # the full pattern is costly; most lines hold no key
        text = _SECRET_KEY_RE.sub(lambda m: m.group(1) + _stars(m.group(2)), text)
    text = _CODE_KEY_RE.sub(r"\1***", text)
    text = _CODE_TEXT_RE.sub(r"\1***", text)
    text = _ENROL_SHAPE_RE.sub("******-******-******", text)
    text = _C_PARAM_RE.sub(r"\1***", text)
    text = _C_SHAPE_RE.sub("***", text)
    text = _AUTH_RE.sub(r"\1***", text)
    return _mask_numbers(text)


def _stars(value: str) -> str:
    """`***` in place of a secret value, keeping its quotes so JSON-looking text stays readable."""
    if value[:1] in ("'", '"'):
        q = value[0]
        return f"{q}***{q}" if len(value) > 1 and value.endswith(q) else f"{q}***"
    return "***" if value else value

# ---- end of the masking rules


_installed = False
_exc_formatter = logging.Formatter()


def _mask_record(record: logging.LogRecord) -> None:
    if record.name.startswith("uvicorn.access") and isinstance(record.args, tuple):
        record.args = tuple(mask_text(a) if isinstance(a, str) else a for a in record.args)
    else:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the record
            message = f"{record.msg!r} {record.args!r}"
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        record.exc_text = _exc_formatter.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = mask_text(record.exc_text)
    if record.stack_info:
        record.stack_info = mask_text(record.stack_info)


def install() -> None:
    """Mask every log record of this process from now on (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _mask_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
