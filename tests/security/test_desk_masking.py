"""Finding 10: log masking, as property tests over generated variants of each secret.

Each test writes the secret into a real log record (in the message or in its `%` args, inside a
template of the kind the code logs: JSON, a dict repr, a query string, free text in English or
Chinese), formats it through the desk's handler filter (`PIIFilter`) and through the server's
record factory (hall_server/logmask.py), and checks that the secret's digits or characters never
appear in the line. The contexts around the secret never hold digits, so the number of digits
left in a masked line is exactly what the masking kept on purpose (2 of an ID: the province; 5 of
a mobile number: 138******78). Every variant listed in the finding failed on the old rules
(`test_old_rules_missed_these` keeps the list).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from counter_app import logging_setup
from counter_app.logging_setup import PIIFilter, id_check_digit
from hall_server import logmask

FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

SEPARATORS = [" ", "-", ".", "\u3000", "\uff0d", "\u2014", "  ", " - "[:2]]
FULL = {str(i): chr(0xFF10 + i) for i in range(10)}
X_FORMS = ["X", "x", "Ｘ"]

# Text around a secret: letters, Chinese, punctuation, but no digit and no separator at its
# edges (an edge separator would only join the secret to nothing).
_context_chars = st.sampled_from(list("abcXYZ身份证号码手机：，。（）[]{}:;=\"'/") + [" "])
context = st.text(_context_chars, max_size=12)


def ascii_digits(text: str) -> str:
    """Every decimal digit of `text` (any script) as ASCII, in order."""
    return "".join(str(unicodedata.digit(c)) for c in text if unicodedata.digit(c, -1) >= 0)


def via_desk(template: str, value: str, in_args: bool) -> str:
    rec = logging.LogRecord("counter_app.x", logging.WARNING, __file__, 1,
                            template if in_args else template % (value,),
                            (value,) if in_args else None, None)
    PIIFilter().filter(rec)
    return rec.getMessage()


def via_server(template: str, value: str, in_args: bool) -> str:
    rec = logging.LogRecord("hall_server", logging.WARNING, __file__, 1,
                            template if in_args else template % (value,),
                            (value,) if in_args else None, None)
    logmask._mask_record(rec)
    return rec.getMessage()


SINKS: list[Callable[[str, str, bool], str]] = [via_desk, via_server]


@st.composite
def written(draw: st.DrawFn, digits: str) -> str:
    """`digits` written as people and programs write it: separators anywhere, full-width."""
    out = []
    width = draw(st.sampled_from(["ascii", "full", "mixed"]))
    cuts = set(draw(st.lists(st.integers(1, len(digits) - 1), max_size=4)))
    for i, d in enumerate(digits):
        if i in cuts:
            out.append(draw(st.sampled_from(SEPARATORS)))
        if d in "Xx":
            out.append(draw(st.sampled_from(X_FORMS)))
        elif width == "full" or (width == "mixed" and draw(st.booleans())):
            out.append(FULL[d])
        else:
            out.append(d)
    return "".join(out)


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["18", "18X", "15", "18-bad-check"]))
    region = draw(st.sampled_from(["110105", "370102", "440305", "510104", "650102"]))
    birth = f"{draw(st.integers(1930, 2020))}{draw(st.integers(1, 12)):02d}{draw(st.integers(1, 28)):02d}"
    seq = f"{draw(st.integers(0, 999)):03d}"
    if kind == "15":
        return region + birth[2:] + seq
    first17 = region + birth + seq
    if kind == "18X":
        return first17[:16] + draw(st.sampled_from("0123456789")) + "X"
    check = id_check_digit(first17)
    if kind == "18-bad-check":
        check = next(c for c in "0123456789" if c != check)
    return first17 + check


mobiles = st.builds(lambda a, b: f"1{a}{b:09d}", st.sampled_from("3456789"),
                    st.integers(0, 999_999_999))


@pytest.mark.parametrize("sink", SINKS, ids=["desk", "server"])
@FAST
@given(number=id_numbers().flatmap(written), before=context, after=context,
       in_args=st.booleans(), tpl=st.sampled_from(["%s", "citizen id %s", "身份证号%s，",
                                                   "payload={'id_no': '%s'}", '{"id": "%s"}']))
def test_id_numbers_never_reach_the_log(sink: Callable[[str, str, bool], str], number: str,
                                         before: str, after: str, in_args: bool,
                                         tpl: str) -> None:
    line = sink(before.replace("%", "") + tpl + after.replace("%", ""), number, in_args)
    kept = ascii_digits(line)
    assert len(kept) <= 2, (number, line)  # only the province code
    assert not any(x in line for x in X_FORMS[:1] if number.endswith(("X", "x", "Ｘ"))
                   and line.count("X") > (before + tpl + after).count("X"))


@pytest.mark.parametrize("sink", SINKS, ids=["desk", "server"])
@FAST
@given(number=mobiles.flatmap(written), before=context, after=context, in_args=st.booleans(),
       prefix=st.sampled_from(["", "+86 ", "+86-", "86 "]))
def test_mobile_numbers_never_reach_the_log(sink: Callable[[str, str, bool], str], number: str,
                                             before: str, after: str, in_args: bool,
                                             prefix: str) -> None:
    line = sink(before.replace("%", "") + "tel %s" + after.replace("%", ""), prefix + number,
                in_args)
    kept = ascii_digits(line)
    plain = ascii_digits(number)
    assert plain not in kept
    assert len(kept) <= 5 + len(ascii_digits(prefix)), (number, line)


@pytest.mark.parametrize("sink", SINKS, ids=["desk", "server"])
@FAST
@given(ident=id_numbers().flatmap(written), phone=mobiles.flatmap(written),
       sep=st.sampled_from([" ", "-", ".", "\u3000"]))
def test_an_id_beside_a_phone_number(sink: Callable[[str, str, bool], str], ident: str,
                                     phone: str, sep: str) -> None:
    line = sink("%s", phone + sep + ident, True)
    assert len(ascii_digits(line)) <= 7, line


_pw_chars = st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"],
                          exclude_characters="\r\n\x85\u2028\u2029")
passwords = st.text(_pw_chars, min_size=6, max_size=30).filter(lambda p: p.strip() == p)


@pytest.mark.parametrize("sink", SINKS, ids=["desk", "server"])
@FAST
@given(pw=passwords, in_args=st.booleans(), form=st.sampled_from(
    ["password=%s", "login password: %s", "new_password = %s", "X-Device-Secret: %s",
     "json", "repr", "query"]))
def test_passwords_with_spaces_are_masked_whole(sink: Callable[[str, str, bool], str], pw: str,
                                                 in_args: bool, form: str) -> None:
    if form == "json":
        tpl, value = '{"staff_no": "1001", "password": %s}', json.dumps(pw, ensure_ascii=False)
    elif form == "repr":
        tpl, value = "{'staff_no': '1001', 'password': %s}", repr(pw)
    elif form == "query":
        tpl, value = "POST /login?staff=1001&password=%s", pw
    else:
        tpl, value = form, pw
    line = sink(tpl, value, in_args)
    pieces = [p for p in pw.split() if len(p) >= 3 and p not in tpl % ("",)]
    for piece in pieces:
        assert piece not in line, (pw, line)
    assert "1001" in line or form not in ("json", "repr", "query")  # the rest is kept


b64u = st.binary(min_size=16, max_size=16).map(
    lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode())
enrol_codes = st.lists(st.binary(min_size=3, max_size=3).map(lambda b: b.hex().upper()),
                       min_size=3, max_size=3).map("-".join)
pair_codes = st.integers(0, 999_999).map(lambda n: f"{n:06d}")


@pytest.mark.parametrize("sink", SINKS, ids=["desk", "server"])
@FAST
@given(code=enrol_codes, in_args=st.booleans(), tpl=st.sampled_from(
    ["enrollment_code=%s", '{"code": "%s", "window_no": 3}', "enrol with code %s now",
     "setup --enrollment-code %s", "登记码：%s", "enrolment code %s"]))
def test_enrolment_codes(sink: Callable[[str, str, bool], str], code: str, in_args: bool,
                         tpl: str) -> None:
    line = sink(tpl, code, in_args)
    assert not any(group in line for group in code.split("-")), line


@pytest.mark.parametrize("sink", SINKS, ids=["desk", "server"])
@FAST
@given(token=b64u, code=pair_codes, in_args=st.booleans(), tpl=st.sampled_from(
    ['{"pairing_token": "%s", "code": "%s"}', "pair_token=%s code=%s",
     "pairing token: %s, pairing code %s", "{'token': '%s', 'pairing_code': '%s'}",
     "token: %s 配对码 %s", "pad page http://10.0.0.7:8765/pad/#pair=%s (code=%s)"]))
def test_pairing_tokens_and_codes(sink: Callable[[str, str, bool], str], token: str, code: str,
                                  in_args: bool, tpl: str) -> None:
    text = tpl % (token, code)
    line = sink("%s", text, True) if in_args else sink(text.replace("%", "%%") + "%s", "", False)
    assert token not in line and code not in line, line


@pytest.mark.parametrize("sink", SINKS, ids=["desk", "server"])
@FAST
@given(case_id=st.integers(1, 10**9), mac=b64u, tpl=st.sampled_from(
    ["GET /rate-later?c=%s&lang=en", "url https://hall.example/rate-later?c=%s",
     '{"case_id": 1, "url": "http://h:8123/rate-later?c=%s"}', "token %s"]))
def test_rate_later_tokens(sink: Callable[[str, str, bool], str], case_id: int, mac: str,
                           tpl: str) -> None:
    line = sink(tpl, f"{case_id}-{mac}", True)
    assert mac not in line, line


def test_desk_and_server_use_the_one_copy_of_the_rules() -> None:
    """Issue 17 item 3: no second copy to drift (the rules were duplicated before)."""
    import pii_mask

    assert logging_setup.mask_text is pii_mask.mask_text
    assert logmask.mask_text is pii_mask.mask_text
    for mod in (logging_setup, logmask):
        assert "_RUN_RE" not in vars(mod) and "_SECRET_KEY_RE" not in vars(mod)


# -- every document format of issue 17 (passports, permits, residence cards, credit codes,
# -- phones, values under personal keys); each of these reached the log before

_LETTERS = "ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_SET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text(st.sampled_from("0123456789"), min_size=n, max_size=n)


passports = st.one_of(
    st.builds(lambda p, d: p + d, st.sampled_from("EGDSP"), _digits(8)),
    st.builds(lambda c, d: "E" + c + d, st.sampled_from(_LETTERS), _digits(7)))
hk_macao_permits = st.one_of(
    st.builds(lambda p, d: p + d, st.sampled_from("HM"), _digits(8)),
    st.builds(lambda p, d: p + d, st.sampled_from("HM"), _digits(10)),
    st.builds(lambda d: "C" + d, _digits(8)))
pr_cards_old = st.builds(lambda a, d: a + d,
                         st.text(st.sampled_from(_LETTERS), min_size=3, max_size=3), _digits(12))
credit_codes = st.builds(lambda a, b, r, rest: a + b + r + rest, st.sampled_from("9159"),
                         st.sampled_from("123"), _digits(6),
                         st.text(st.sampled_from(_CREDIT_SET), min_size=10, max_size=10))
landlines = st.builds(lambda area, sep, n: area + sep + n,
                      st.sampled_from(["010", "021", "0531", "0755"]),
                      st.sampled_from(["-", " ", ""]), _digits(8))
_doc_context = st.text(st.sampled_from(list("身份证号码手机：，。（）[]{};\"'/ ")), max_size=8)


def _hidden(value: str, line: str, keep: int) -> bool:
    """All but `keep` leading characters of `value` are gone from `line`."""
    return value[keep:] not in line and value not in line


@pytest.mark.parametrize("sink", SINKS, ids=["desk", "server"])
@FAST
@given(kind=st.sampled_from(["passport", "permit", "pr", "credit", "landline"]), data=st.data(),
       before=_doc_context, after=_doc_context, in_args=st.booleans(),
       tpl=st.sampled_from(["%s", "document %s read", "证件%s。", "{'ref': '%s'}", "no %s"]))
def test_every_document_format_is_masked(sink: Callable[[str, str, bool], str], kind: str,
                                          data: st.DataObject, before: str, after: str,
                                          in_args: bool, tpl: str) -> None:
    value = data.draw({"passport": passports, "permit": hk_macao_permits, "pr": pr_cards_old,
                       "credit": credit_codes, "landline": landlines}[kind])
    line = sink(before.replace("%", "") + tpl + after.replace("%", ""), value, in_args)
    assert _hidden(value, line, 1), (value, line)
    digits = ascii_digits(value)
    assert digits[-6:] not in ascii_digits(line), (value, line)


@pytest.mark.parametrize("sink", SINKS, ids=["desk", "server"])
@FAST
@given(value=st.one_of(_digits(8), passports, st.text(st.sampled_from("张王李明华"), min_size=2,
                                                       max_size=3)),
       in_args=st.booleans(), tpl=st.sampled_from(
    ["doc_number=%s", '{"doc_number": "%s"}', "台胞证 %s", "证件号码：%s", "姓名：%s，",
     "applicant_name='%s'", "phone: %s", "收件人 %s", "recipient=%s&x=1",
     '{"mail_address": "%s"}', "地址：%s。"]))
def test_values_under_personal_keys_are_masked(sink: Callable[[str, str, bool], str], value: str,
                                                in_args: bool, tpl: str) -> None:
    line = sink(tpl, value, in_args)
    assert value not in line, line


def test_what_stays_readable_for_it() -> None:
    m = pii_mask_text = logging_setup.mask_text
    assert pii_mask_text is logmask.mask_text
    for text in ("case 2026-12-03 opened", "window 3 matter_code=M0012",
                 "GET /api/v1/cases/1234 200", "took 0.25 s", "version 0.1.0",
                 "ticket A012 called", "order 12345678901234567890"):
        assert m(text) == text


def test_old_rules_missed_these() -> None:
    # Each of these leaked with the rules on main before this change (finding 10).
    m = logging_setup.mask_text
    assert "1949" not in m("id 110105 1949 1231 0021")
    assert "1949" not in m("id 110105-19491231-0021")
    assert "491231" not in m("old id 110105491231002")
    assert ascii_digits(m("１１０１０５１９４９１２３１００２Ｘ")) == "11"
    assert "1949" not in m("110105194912310021abc")
    assert "1234" not in m("138.1234.5678")
    assert "horse" not in m("password=correct horse battery")
    assert "AB12CD" not in m("code AB12CD-0F0F0F-123456")
    assert "482913" not in m('{"code": "482913"}')
    assert "abcdefghijklmnopqrstuv" not in m("?c=12-abcdefghijklmnopqrstuv")
    assert "QWERTYUIOPasdfghjklzxc" not in m("http://10.0.0.7:8765/pad/#pair=QWERTYUIOPasdfghjklzxc")
    # ... and what must stay readable for IT
    assert m('{"code": "bad_credentials"}') == '{"code": "bad_credentials"}'
    assert m("matter_code=M0012 window 3") == "matter_code=M0012 window 3"
    assert m("order 12345678901234567890") == "order 12345678901234567890"


def test_server_records_are_masked_whoever_formats_them() -> None:
    """After `install()` (create_app calls it) records of hall_server and uvicorn are masked."""
    logmask.install()
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    for name in ("hall_server", "hall_server.events", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.addHandler(handler)
        try:
            lg.error("enrol %s with password=%s", "AB12CD-0F0F0F-123456", "hunter two")
            try:
                raise ValueError("bad citizen 110105194912310021")
            except ValueError:
                lg.exception("failed")
        finally:
            lg.removeHandler(handler)
    access = logging.getLogger("uvicorn.access")
    level = access.level
    access.setLevel(logging.INFO)
    access.addHandler(handler)
    try:
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET",
                    "/rate-later?c=7-abcdefghijklmnopqrstuv", "1.1", 200)
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    text = buf.getvalue()
    for secret in ("AB12CD", "hunter", "two", "1949", "abcdefghijklmnopqrstuv"):
        assert secret not in text, text
    assert "ValueError: bad citizen 11****" in text and "GET /rate-later?c=*** HTTP/1.1" in text


def test_the_real_server_masks_its_records(tmp_path: Path) -> None:
    """Starting the real server (create_app) is what installs the masking."""
    from tests.support.server_fixtures import start_server_thread

    saved, was_installed = logging.getLogRecordFactory(), logmask._installed
    logging.setLogRecordFactory(logging.LogRecord)
    logmask._installed = False
    try:
        rec = logging.getLogger("hall_server").makeRecord(
            "hall_server", logging.ERROR, __file__, 1, "token=%s", ("abc def",), None)
        assert rec.getMessage() == "token=abc def"  # not installed: nothing masked
        srv = start_server_thread(data_dir=tmp_path / "hall", demo=True)
        try:
            rec = logging.getLogger("hall_server").makeRecord(
                "hall_server", logging.ERROR, __file__, 1, "token=%s", ("abc def",), None)
            assert rec.getMessage() == "token=***"
        finally:
            srv.stop()
    finally:
        logging.setLogRecordFactory(saved)
        logmask._installed = was_installed
