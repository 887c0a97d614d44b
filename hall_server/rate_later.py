"""The citizen's "rate later" page (好差评 评价补评): a QR code or link, a phone, no sign-in.

A citizen who does not rate at the window may rate later, within the hall's window of
`rules.rate_later_days` working days after the case was completed (Shandong: 5).

- The link is `{base}/rate-later?c=<case id>-<mac>`. The mac is an HMAC-SHA256 of the case id
  under a key derived from the server's secret (`secret.key`, `hall.server_secret`), cut to 128 bits: nobody can
  rate a case by guessing numbers, and nothing has to be stored per case. It leaves the server
  on two paths only, each recorded in `rate_later_issues` and each closing the on-the-spot
  rating of the case: to the proven pad on its "not rated" screen (pad_site.py), and through
  `GET /api/v1/cases/{id}/rate-later-link` for a printed notice (the case's own window where no
  pad is paired, or a supervisor/IT), only for a completed, unrated case.
- `GET /rate-later?c=…` is a plain HTML page (zh by default, `&lang=en`): the hall, the matter,
  the window, the clerk (name and staff number), and the five levels as big submit buttons. It
  works without JavaScript: a bad level posted without a reason comes back as the reason page.
- `POST /rate-later` stores the rating (`source: "later"`, `assurance: "later"`, one per case
  through the ratings table's unique constraint) and redirects (303) to the thank-you page, so a
  reload never posts twice. The form is the only credential: the token travels in it, the body
  is small and url-encoded only, and a cross-site Origin is refused; there is no cookie to ride.

Working days follow the hall's working calendar (hall_server/workdays.py: Monday to Friday,
minus public holidays, plus make-up working days). A case without a completion
time (still open, or abandoned) counts from its start. A case still being served, or whose
rating on the pad is open, cannot be rated here yet (409 page). `clock` is the time seam tests
replace. The rating shows up in `/stats` (counted apart as `later`) and `/windows/{no}/ratings`;
a `rating.stored` event (no level) tells the window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import logging
import re
import string
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from hall_server import followups, workdays
from hall_server import schema as t
from hall_server.core import Hall, get_meta, hall_of, json_response
from hall_server.db import Tx, now_ms
from hall_server.deps import Auth, IdPath
from hall_server.errors import ApiError
from hall_server.queue import acting_window
from hall_server.rating_check import _err, challenge_state, close_challenge, paired_pad

log = logging.getLogger("hall_server")

router = APIRouter(prefix="/api/v1", tags=["ratings"])
page_router = APIRouter(include_in_schema=False)

#: The time seam: epoch milliseconds now. Tests put a later time here to end the window.
clock: Callable[[], int] = now_ms

PATH = "/rate-later"
MAX_FORM_BYTES = 16 * 1024  # five levels, a few dozen reason codes and a 500-character comment
MAX_FIELDS = 100
MAX_COMMENT = 500
_TOKEN = re.compile(r"^([0-9]{1,19})-([A-Za-z0-9_-]{22})$")

LEVELS: tuple[tuple[str, str, str, str], ...] = (
    ("very_satisfied", "非常满意", "Very satisfied", "M27 58 Q50 88 73 58"),
    ("satisfied", "满意", "Satisfied", "M31 62 Q50 78 69 62"),
    ("basic", "基本满意", "Basically satisfied", "M31 66 L69 66"),
    ("dissatisfied", "不满意", "Dissatisfied", "M31 72 Q50 58 69 72"),
    ("very_dissatisfied", "非常不满意", "Very dissatisfied", "M27 76 Q50 48 73 76"),
)
BAD = frozenset({"dissatisfied", "very_dissatisfied"})

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "服务评价", "rate_h": "请您为本次服务评价", "matter": "办理事项",
        "window": "窗口", "clerk": "工作人员", "staff_no": "工号", "date": "办理日期",
        "until": "请在 {d} 前评价（办结后 {n} 个工作日内）。", "levels": "评价等级",
        "chosen": "您的评价：", "reasons_h": "请告诉我们哪里不满意",
        "reasons_legend": "请选择原因（可多选）", "comment": "其他意见（可不填）",
        "need_reason": "请至少选择一项原因，或填写意见。",
        "reasons_changed": "原因选项已更新，请重新选择。",
        "too_long": "意见最多 {n} 个字，请删减后再提交。", "submit": "提交评价",
        "change": "重新选择评价", "thanks_h": "感谢您的评价！",
        "thanks_p": "您的评价已提交。现在可以关闭此页面。",
        "already_h": "本次服务已经评价过了", "already_p": "感谢您！每次服务只能评价一次。",
        "ended_h": "评价期限已结束",
        "ended_p": "本次服务的评价期限为办结后 {n} 个工作日（至 {d}），现在已不能评价。",
        "hotline": "如有意见或建议，可拨打 12345 政务服务便民热线。",
        "notfound_h": "评价链接无效", "bad_h": "无法处理您的请求",
        "notfound_p": "此评价链接无效或不完整。请重新扫描二维码，或向大厅工作人员咨询。",
        "bad_p": "提交的内容有误。请返回评价页面重试。", "other_lang": "English",
        "window_no": "{n} 号窗口", "none": "—",
        "notyet_h": "现在还不能评价",
        "notyet_p": "本次服务尚未办结。办结后请再打开此链接评价。",
        "open_p": "请在窗口的评价器上评价；若未评价，稍后可再打开此链接。",
    },
    "en": {
        "title": "Rate our service", "rate_h": "Please rate our service", "matter": "Matter",
        "window": "Window", "clerk": "Served by", "staff_no": "Staff no.", "date": "Date",
        "until": "Please rate by {d} (within {n} working days of completion).",
        "levels": "Rating", "chosen": "Your rating: ",
        "reasons_h": "Please tell us what was wrong",
        "reasons_legend": "Choose the reasons (one or more)", "comment": "Anything else (optional)",
        "need_reason": "Please choose at least one reason, or write a comment.",
        "reasons_changed": "The list of reasons has changed; please choose again.",
        "too_long": "A comment may have at most {n} characters; please shorten it.",
        "submit": "Send rating", "change": "Choose another rating", "thanks_h": "Thank you!",
        "thanks_p": "Your rating has been sent. You may close this page now.",
        "already_h": "This service has already been rated",
        "already_p": "Thank you! Each service can be rated once.",
        "ended_h": "The rating period has ended",
        "ended_p": "This service could be rated for {n} working days after completion (until {d}); "
                   "it can no longer be rated.",
        "hotline": "For comments or suggestions, call the 12345 government service hotline.",
        "notfound_h": "This rating link is not valid", "bad_h": "We could not process this",
        "notfound_p": "This rating link is not valid or is incomplete. Please scan the QR code "
                      "again, or ask the hall staff.",
        "bad_p": "Something in the form was wrong. Please go back to the rating page and try again.",
        "other_lang": "中文", "window_no": "Window {n}", "none": "—",
        "notyet_h": "This service cannot be rated yet",
        "notyet_p": "The service is not completed yet. Please open this link again once it is.",
        "open_p": "Please rate on the pad at the window; if you do not, you can open this link later.",
    },
}


# ---- the token ---------------------------------------------------------------------------------
def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def derive_key(server_secret: bytes) -> bytes:
    """A key for rate-later links only, so a link mac can never pass for anything else."""
    return hmac.new(server_secret, b"hall-rate-later-v1", hashlib.sha256).digest()


def make_token(key: bytes, case_id: int) -> str:
    mac = hmac.new(key, f"case:{case_id}".encode(), hashlib.sha256).digest()[:16]
    return f"{case_id}-{_b64u(mac)}"


def parse_token(key: bytes, token: str) -> int | None:
    """The case id a token was made for, or None for anything forged, cut or garbled."""
    m = _TOKEN.match(token or "")
    if m is None:
        return None
    case_id = int(m.group(1))
    if case_id > 2**63 - 1:
        return None
    return case_id if hmac.compare_digest(make_token(key, case_id), token) else None


async def _key(hall: Hall) -> bytes:
    # Derived once from the server secret by create_app (hall.rate_later_key). The secret left
    # `meta` for its own file (app._server_secret moves an old one); no second source here.
    if not hall.rate_later_key:
        raise RuntimeError("the rate-later key was not derived from the server secret at start")
    return hall.rate_later_key


# ---- the window of working days ----------------------------------------------------------------
def last_rating_day(done: date, days: int) -> date:
    """The last day a case finished on `done` may be rated: `days` working days later, by the
    hall's working calendar (holidays and make-up working days: hall_server/workdays.py)."""
    return workdays.working_days_after(done, days)


def window_end_ms(hall: Hall, from_ms: int) -> tuple[int, date]:
    """(the first millisecond after the window, its last day) for a case finished at `from_ms`."""
    done = datetime.fromtimestamp(from_ms / 1000, hall.tz).date()
    last = last_rating_day(done, hall.rules.rate_later_days)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=hall.tz)
    return int(end.timestamp() * 1000), last


# ---- the staff side: the link for the QR code --------------------------------------------------
def link_base(request: Request) -> str:
    public = hall_of(request).settings.public_url
    return (public or str(request.base_url)).rstrip("/") + PATH


async def link_for(request: Request, case_id: int) -> str:
    """The citizen's link for `case_id` (the caller decided it may be handed out)."""
    return f"{link_base(request)}?c={make_token(await _key(hall_of(request)), case_id)}"


def rating_window_state(conn: Connection, hall: Hall, case: Any, now: int) -> str:
    """"open" while the pad may still answer on the spot, else rating_check.challenge_state."""
    ch = conn.execute(select(t.rating_challenges)
                      .where(t.rating_challenges.c.case_id == case["id"])).mappings().first()
    rated = conn.execute(select(t.ratings.c.id).where(t.ratings.c.case_id == case["id"])).first()
    return challenge_state(ch, rated is not None, now, hall.settings.pad_rating_seconds * 1000)


@router.get("/cases/{case_id}/rate-later-link")
async def rate_later_link(request: Request, case_id: IdPath, p: Auth) -> Response:
    """The link for the printed notice (or a second screen's QR): the one path on which a desk
    sees a link. Only for a completed, unrated case of the caller's own window (supervisors
    and IT: any window), never while its on-the-spot rating is open on a pad and, for window
    staff, never where a pad is paired (the pad shows the QR itself, pad_site.py). Handing it
    out ends the on-the-spot rating and is recorded (rate_later_issues: who, when)."""
    hall = hall_of(request)

    def fn(tx: Tx) -> None:
        conn, now = tx.conn, clock()
        case = conn.execute(select(t.cases).where(t.cases.c.id == case_id)).mappings().first()
        if case is None:
            raise ApiError(404, "not_found", {"case_id": case_id})
        acting_window(p, int(case["window_no"]))
        if case["completed_ms"] is None:
            raise _err(409, "case_not_completed", {"case_id": case_id})
        state = rating_window_state(conn, hall, case, now)
        if state == "rated":
            raise _err(409, "case_already_rated", {"case_id": case_id})
        pad = paired_pad(conn, int(case["window_no"]))
        if pad is not None and p.role == "staff":
            raise _err(403, "pad_paired", {"window_no": int(case["window_no"])})
        if pad is not None and state == "open":
            raise _err(409, "rating_open", {"case_id": case_id})
        close_challenge(conn, case_id, now)
        tx.conn.execute(t.rate_later_issues.insert().values(
            case_id=case_id, issued_to="desk" if p.role == "staff" else "supervisor",
            staff_no=p.staff_no, pad_id=None, at_ms=now))

    await hall.store.write(fn)
    log.info("rate-later link for case %s handed to %s (%s)", case_id, p.staff_no, p.role)
    return json_response({"case_id": case_id, "url": await link_for(request, case_id)})


# ---- reading the case ---------------------------------------------------------------------------
def _case_view(conn: Connection, case_id: int) -> dict[str, Any] | None:
    c = conn.execute(select(t.cases).where(t.cases.c.id == case_id)).mappings().first()
    if c is None:
        return None
    out: dict[str, Any] = dict(c)
    out["matter"] = None
    if c["matter_code"]:
        m = conn.execute(select(t.matters.c.name_zh, t.matters.c.name_en)
                         .where(t.matters.c.code == c["matter_code"])).first()
        out["matter"] = tuple(m) if m else None
    w = conn.execute(select(t.windows.c.name_zh, t.windows.c.name_en)
                     .where(t.windows.c.no == c["window_no"])).first()
    out["window"] = tuple(w) if w else None
    s = conn.execute(select(t.staff.c.name_zh, t.staff.c.name_en)
                     .where(t.staff.c.staff_no == c["staff_no"])).first()
    out["staff"] = tuple(s) if s else None
    out["hall"] = (get_meta(conn, "hall_name_zh") or "", get_meta(conn, "hall_name_en") or "")
    r = conn.execute(select(t.ratings.c.id).where(t.ratings.c.case_id == case_id)).first()
    out["rating_id"] = None if r is None else r[0]
    rows = conn.execute(select(t.rating_reasons).order_by(t.rating_reasons.c.position)).mappings().all()
    out["reasons"] = [(r["code"], r["text_zh"], r["text_en"]) for r in rows]
    out["reasons_version"] = rows[0]["version"] if rows else ""
    return out


# ---- rendering ----------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _assets() -> tuple[string.Template, str]:
    web = resources.files("hall_server") / "web"
    frame = string.Template((web / "rate_later.html").read_text(encoding="utf-8"))
    return frame, (web / "rate_later.css").read_text(encoding="utf-8")


def _csp(style: str) -> str:
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    # No script at all; the one inline style is allowed by its hash; forms post only here.
    return (f"default-src 'none'; style-src 'sha256-{digest}'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _face(path: str) -> str:
    return ('<svg viewBox="0 0 100 100" aria-hidden="true" focusable="false">'
            '<circle cx="50" cy="50" r="44" fill="none" stroke="currentColor" stroke-width="6"/>'
            '<circle cx="35" cy="40" r="6" fill="currentColor"/>'
            '<circle cx="65" cy="40" r="6" fill="currentColor"/>'
            f'<path d="{path}" fill="none" stroke="currentColor" stroke-width="6" '
            'stroke-linecap="round"/></svg>')


class Page:
    """One response of the page in one language."""

    def __init__(self, lang: str, token: str) -> None:
        self.lang = "en" if lang == "en" else "zh"
        self.token = token
        self.tx = TEXT[self.lang]

    def t(self, key: str, **kw: object) -> str:
        text = self.tx[key]
        return e(text.format(**kw) if kw else text)

    def pick(self, pair: tuple[str, str] | None) -> str:
        if pair is None:
            return self.tx["none"]
        zh, en = pair
        return (en or zh) if self.lang == "en" else (zh or en)

    def href(self, lang: str, **extra: str) -> str:
        q: dict[str, str] = {}
        if self.token:
            q["c"] = self.token
        if lang == "en":
            q["lang"] = "en"
        q.update(extra)
        return PATH + ("?" + urlencode(q) if q else "")

    def render(self, screen: str, body: str, *, status: int = 200, hall: tuple[str, str] | None = None,
               title: str | None = None) -> HTMLResponse:
        frame, style = _assets()
        other = "zh" if self.lang == "en" else "en"
        doc = frame.substitute(
            html_lang="en" if self.lang == "en" else "zh-CN", title=e(title or self.tx["title"]),
            style=style, screen=e(screen), hall_name=e(self.pick(hall) if hall else ""),
            lang_href=e(self.href(other)), other_lang_code="en" if other == "en" else "zh-CN",
            other_lang=self.t("other_lang"), body=body,
        )
        return HTMLResponse(doc, status_code=status, headers=_headers(style))


def _headers(style: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": _csp(style),
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",  # the token is in the address: never pass it on
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
    }


def _card(pg: Page, hall: Hall, case: dict[str, Any]) -> str:
    staff = pg.pick(case["staff"])
    window = pg.pick(case["window"]) if case["window"] else pg.t("window_no", n=case["window_no"])
    day = datetime.fromtimestamp((case["completed_ms"] or case["started_ms"]) / 1000, hall.tz).date()
    rows = [
        *([("matter", e(pg.pick(case["matter"])))] if case["matter"] else []),
        ("window", e(window)),
        ("clerk", f'{e(staff)} <span class="hint">（{pg.t("staff_no")} {e(case["staff_no"])}）</span>'
                  if pg.lang == "zh" else
                  f'{e(staff)} <span class="hint">({pg.t("staff_no")} {e(case["staff_no"])})</span>'),
        ("date", e(_fmt_day(pg, day))),
    ]
    items = "".join(f'<div><dt>{pg.t(k)}</dt><dd id="case-{k}">{v}</dd></div>' for k, v in rows)
    return f'<section class="card"><dl>{items}</dl></section>'


def _fmt_day(pg: Page, d: date) -> str:
    if pg.lang == "en":
        return f"{d.day} {d.strftime('%B')} {d.year}"
    return f"{d.year}年{d.month}月{d.day}日"


def _hidden(pg: Page, rid: str, step: str) -> str:
    fields = {"c": pg.token, "lang": pg.lang, "rid": rid, "step": step}
    return "".join(f'<input type="hidden" name="{k}" value="{e(v)}">' for k, v in fields.items())


def _rate_screen(pg: Page, hall: Hall, case: dict[str, Any], last_day: date) -> HTMLResponse:
    buttons = "".join(
        f'<button type="submit" class="level" name="level" value="{code}">{_face(path)}'
        f'<span>{e(en if pg.lang == "en" else zh)}</span></button>'
        for code, zh, en, path in LEVELS
    )
    body = (
        f'<h1 id="h-rate">{pg.t("rate_h")}</h1>{_card(pg, hall, case)}'
        f'<form method="post" action="{PATH}" accept-charset="utf-8">{_hidden(pg, uuid.uuid4().hex, "level")}'
        f'<div class="levels" role="group" aria-labelledby="h-rate">{buttons}</div></form>'
        # After the buttons: on a 390x844 phone all five fit on the first screen.
        f'<p class="until">{pg.t("until", d=_fmt_day(pg, last_day), n=hall.rules.rate_later_days)}</p>'
    )
    return pg.render("rate", body, hall=case["hall"])


def _reasons_screen(pg: Page, case: dict[str, Any], level: str, rid: str, *,
                    chosen: Sequence[str] = (), comment: str = "", msg: str = "",
                    status: int = 200) -> HTMLResponse:
    name = next(en if pg.lang == "en" else zh for c, zh, en, _ in LEVELS if c == level)
    boxes = "".join(
        f'<label class="reason"><input type="checkbox" name="reasons" value="{e(code)}"'
        f'{" checked" if code in chosen else ""}><span>{e(en if pg.lang == "en" else zh)}</span></label>'
        for code, zh, en in case["reasons"]
    )
    alert = f'<p class="msg" id="msg" role="alert">{msg}</p>' if msg else ""
    body = (
        f'<h1>{pg.t("reasons_h")}</h1>'
        f'<p class="chosen">{pg.t("chosen")}<strong id="chosen-level">{e(name)}</strong></p>{alert}'
        f'<form method="post" action="{PATH}" accept-charset="utf-8">{_hidden(pg, rid, "reasons")}'
        f'<input type="hidden" name="level" value="{e(level)}">'
        f'<fieldset><legend>{pg.t("reasons_legend")}</legend>{boxes}</fieldset>'
        f'<label class="comment" for="comment">{pg.t("comment")}</label>'
        f'<textarea id="comment" name="comment" maxlength="{MAX_COMMENT}" rows="3">{e(comment)}</textarea>'
        f'<button type="submit" class="big-btn" id="btn-submit">{pg.t("submit")}</button></form>'
        f'<a class="big-btn secondary" href="{e(pg.href(pg.lang))}">{pg.t("change")}</a>'
    )
    return pg.render("reasons", body, status=status, hall=case["hall"])


_CHECK = ('<svg class="mark" viewBox="0 0 100 100" aria-hidden="true" focusable="false">'
          '<circle cx="50" cy="50" r="44" fill="#1b5e20"/><path d="M28 52 L44 68 L73 36" fill="none" '
          'stroke="#fff" stroke-width="9" stroke-linecap="round" stroke-linejoin="round"/></svg>')
_INFO = ('<svg class="mark" viewBox="0 0 100 100" aria-hidden="true" focusable="false">'
         '<circle cx="50" cy="50" r="44" fill="#0b4fa3"/><rect x="44" y="44" width="12" height="32" '
         'rx="4" fill="#fff"/><circle cx="50" cy="29" r="7" fill="#fff"/></svg>')


def _message(pg: Page, screen: str, heading: str, text: str, *, status: int = 200,
             hall: tuple[str, str] | None = None, mark: str = _INFO, extra: str = "") -> HTMLResponse:
    body = f'{mark}<h1 class="big">{heading}</h1><p class="lead center">{text}</p>{extra}'
    return pg.render(screen, body, status=status, hall=hall, title=html.unescape(heading))


def _not_found(pg: Page) -> HTMLResponse:
    return _message(pg, "not_found", pg.t("notfound_h"), pg.t("notfound_p"), status=404)


def _ended(pg: Page, hall: Hall, case: dict[str, Any], last_day: date) -> HTMLResponse:
    text = pg.t("ended_p", n=hall.rules.rate_later_days, d=_fmt_day(pg, last_day))
    return _message(pg, "ended", pg.t("ended_h"), text, hall=case["hall"],
                    extra=f'<p class="center hint">{pg.t("hotline")}</p>')


def _already(pg: Page, case: dict[str, Any]) -> HTMLResponse:
    return _message(pg, "already", pg.t("already_h"), pg.t("already_p"), hall=case["hall"], mark=_CHECK)


def _thanks(pg: Page, case: dict[str, Any]) -> HTMLResponse:
    return _message(pg, "thanks", pg.t("thanks_h"), pg.t("thanks_p"), hall=case["hall"], mark=_CHECK)


# ---- the citizen side ---------------------------------------------------------------------------
async def _resolve(request: Request, token: str) -> tuple[Hall, int | None]:
    hall = hall_of(request)
    return hall, parse_token(await _key(hall), token)


@page_router.get(PATH, response_class=HTMLResponse)
async def rate_later_page(request: Request) -> Response:
    q = request.query_params
    token = (q.get("c") or "")[:64]
    pg = Page(q.get("lang") or "zh", token)
    hall, case_id = await _resolve(request, token)
    if case_id is None:  # includes the old guessable `?case=<case_no>` form
        pg.token = ""
        return _not_found(pg)
    case = await hall.store.read(lambda c: _case_view(c, case_id))
    if case is None:
        pg.token = ""
        return _not_found(pg)
    if case["rating_id"] is not None:
        return _thanks(pg, case) if q.get("done") == "1" else _already(pg, case)
    if not_yet := await _not_yet(hall, pg, case):
        return not_yet
    end_ms, last_day = window_end_ms(hall, case["completed_ms"])
    if clock() >= end_ms:
        return _ended(pg, hall, case, last_day)
    return _rate_screen(pg, hall, case, last_day)


async def _not_yet(hall: Hall, pg: Page, case: dict[str, Any]) -> HTMLResponse | None:
    """A case still being served, or whose rating on the pad is open, cannot be rated later
    (a clerk holding a link must not pre-empt the citizen's own rating on the pad)."""
    if case["completed_ms"] is None:
        return _message(pg, "not_yet", pg.t("notyet_h"), pg.t("notyet_p"), status=409, hall=case["hall"])
    state = await hall.store.read(lambda c: rating_window_state(c, hall, case, clock()))
    if state == "open":
        return _message(pg, "not_yet", pg.t("notyet_h"), pg.t("open_p"), status=409, hall=case["hall"])
    return None


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # Old browsers send none; "null" comes from privacy settings. The token is the guard.
        return True
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


async def _read_form(request: Request) -> dict[str, list[str]] | None:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                        max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return None


@page_router.post(PATH, response_class=HTMLResponse)
async def rate_later_submit(request: Request) -> Response:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_FORM_BYTES):
        return _message(Page("zh", ""), "bad", TEXT["zh"]["bad_h"], TEXT["zh"]["bad_p"], status=413)
    form = await _read_form(request)

    def one(name: str) -> str:
        return (form or {}).get(name, [""])[0]

    pg = Page(one("lang") or "zh", one("c")[:64])
    if form is None or not _same_origin(request):
        pg.token = ""
        return _message(pg, "bad", pg.t("bad_h"), pg.t("bad_p"), status=400 if form is None else 403)
    hall, case_id = await _resolve(request, pg.token)
    if case_id is None:
        pg.token = ""
        return _not_found(pg)
    case = await hall.store.read(lambda c: _case_view(c, case_id))
    if case is None:
        pg.token = ""
        return _not_found(pg)
    rid = one("rid")
    if not re.fullmatch(r"[0-9a-f]{32}", rid):
        rid = uuid.uuid4().hex
    if case["rating_id"] is not None:
        # The same form sent twice (a double tap) is thanked again; anything else is a second rating.
        return _done(pg) if case["rating_id"] == rid else _already(pg, case)
    if not_yet := await _not_yet(hall, pg, case):
        return not_yet
    end_ms, last_day = window_end_ms(hall, case["completed_ms"])
    if clock() >= end_ms:
        return _ended(pg, hall, case, last_day)
    level = one("level")
    if level not in {lv[0] for lv in LEVELS}:
        return _rate_screen(pg, hall, case, last_day)
    reasons = list(dict.fromkeys(r for r in (form.get("reasons") or []) if r))
    comment = one("comment").replace("\r\n", "\n").strip()
    if level in BAD:
        known = {code for code, _, _ in case["reasons"]}
        msg = ""
        if len(comment) > MAX_COMMENT:
            msg = pg.t("too_long", n=MAX_COMMENT)
        elif any(r not in known for r in reasons):
            msg, reasons = pg.t("reasons_changed"), [r for r in reasons if r in known]
        elif not reasons and not comment:
            msg = pg.t("need_reason") if one("step") == "reasons" else ""
            if not msg:  # first visit after tapping a bad level: ask, no error yet
                return _reasons_screen(pg, case, level, rid)
        if msg:
            return _reasons_screen(pg, case, level, rid, chosen=reasons, comment=comment[:MAX_COMMENT * 2],
                                   msg=msg, status=422)
    else:
        reasons, comment = [], ""  # the good levels are sent straight from the first page

    def store(tx: Tx) -> str:
        now = clock()
        if now >= end_ms:
            return "ended"
        existing = tx.conn.execute(select(t.ratings.c.id).where(t.ratings.c.case_id == case_id)).scalar()
        if existing is not None:
            return "thanks" if existing == rid else "already"
        if rating_window_state(tx.conn, hall, case, now) == "open":
            return "open"  # re-checked in the writing transaction
        tx.conn.execute(t.ratings.insert().values(
            id=rid, case_id=case_id, window_no=case["window_no"], level=level,
            reasons=json.dumps(reasons), reasons_version=case["reasons_version"], comment=comment,
            source="later", rated_ms=now, received_ms=now, pad_id=None, pad_counter=None,
            challenge=None, signature=None, assurance="later", bad=level in BAD,
            followed_up=False, day=hall.day_of(now),
        ))
        followups.open_for_rating(tx.conn, rid)  # a bad rating opens its follow-up
        tx.emit("rating.stored", {"case_id": case_id, "rating_id": rid, "source": "later",
                                  "assurance": "later"}, window_no=case["window_no"])
        return "stored"

    try:
        outcome = await hall.store.write(store)
    except IntegrityError:  # a rating for the case came in between: one per case (一次一评)
        latest = await hall.store.read(lambda c: _case_view(c, case_id))
        outcome = "thanks" if latest is not None and latest["rating_id"] == rid else "already"
    if outcome == "ended":
        return _ended(pg, hall, case, last_day)
    if outcome == "already":
        return _already(pg, case)
    if outcome == "open":
        return _message(pg, "not_yet", pg.t("notyet_h"), pg.t("open_p"), status=409, hall=case["hall"])
    if outcome == "stored":
        log.info("rate-later rating stored for case %s (window %s)", case_id, case["window_no"])
    return _done(pg)


def _done(pg: Page) -> Response:
    # Post/redirect/get: a reload of the thank-you page never posts the form again.
    return RedirectResponse(pg.href(pg.lang, done="1"), status_code=303, headers=_headers(_assets()[1]))
