"""The supervisor and IT console (`/console/`): server-rendered pages (Jinja2), zh/en, sign-in
with roles, CSRF-protected forms that call the audited admin operations (hall_server/admin.py),
a strict Content-Security-Policy and no external resource.

Who may do what follows the admin API: supervisors and IT admins read the live hall, figures,
ratings, windows, reasons, rules, calendar and audit log; only IT admins see staff, devices and
the catalog import, and only IT admins change anything. Staff (clerks) are refused.

Sessions: a console sign-in is a row of the `sessions` table (window_no NULL) like any API
sign-in, so logout, disabling an account, a role change or a password reset (which close the
staff member's sessions) end it too. The cookie holds a random secret; the row holds
sha256("console\\0" + secret) in `refresh_hash`, so the cookie is never usable as an API refresh
token. The CSRF token of a form is HMAC(server key, session id) (a synchronizer token bound to the
server session, nothing stored in the browser that JavaScript could read); before sign-in the
login form's token is bound to a random pre-session cookie.

Live hall: `/console/live/stream` is a server-sent-event stream for the console session; on
every hall event it re-renders the live fragment (windows, waiting per category, longest wait)
and sends it; the page's small script swaps it in.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import anyio.to_thread
import jinja2
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, func, select
from starlette.datastructures import UploadFile

from hall_server import admin, catalog, hallsetup, stats, workdays
from hall_server import schema as t
from hall_server.core import Hall, all_windows, get_meta, hall_of
from hall_server.db import Tx, now_ms
from hall_server.deps import MAX_INT, check_password
from hall_server.errors import ApiError
from hall_server.hallsetup import HallRules, RatingReasons
from hall_server.security import hash_password, sha256_hex

log = logging.getLogger("hall_server.console")

router = APIRouter(prefix="/console", include_in_schema=False)

WEB = Path(__file__).resolve().parent / "web" / "console"
COOKIE = "hall_console"
PRE_COOKIE = "hall_console_pre"
LANG_COOKIE = "hall_console_lang"
SESSION_SECONDS = 8 * 3600  # one working day; then sign in again
CONSOLE_ROLES = ("supervisor", "it_admin")
# The console's own scripts and styles only; inline SVG charts need no style attribute.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
MAX_UPLOAD = admin.PHOTO_MAX_BYTES + 64 * 1024

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(WEB / "templates")),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)
_STATIC = {
    "console.css": ("text/css; charset=utf-8", (WEB / "static" / "console.css")),
    "console.js": ("text/javascript; charset=utf-8", (WEB / "static" / "console.js")),
}

T = TypeVar("T")


# ---- session ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConsoleUser:
    staff_no: str
    name_zh: str
    name_en: str
    role: str
    session_id: str

    @property
    def is_it(self) -> bool:
        return self.role == "it_admin"


def _cookie_hash(secret: str) -> str:
    return sha256_hex("console\0" + secret)


def _mac(hall: Hall, label: str, value: str) -> str:
    key = hmac.new(hall.signer.fingerprint_key, b"console-csrf-v1", hashlib.sha256).digest()
    return hmac.new(key, f"{label}\0{value}".encode(), hashlib.sha256).hexdigest()


def csrf_token(hall: Hall, user: ConsoleUser) -> str:
    return _mac(hall, "session", user.session_id)


async def current_user(request: Request) -> ConsoleUser | None:
    secret = request.cookies.get(COOKIE)
    if not secret or len(secret) > 100:
        return None
    hall = hall_of(request)
    h = _cookie_hash(secret)

    def fn(conn: Connection) -> ConsoleUser | None:
        row = conn.execute(
            select(t.sessions.c.id, t.sessions.c.closed_ms, t.sessions.c.refresh_expires_ms,
                   t.staff.c.staff_no, t.staff.c.name_zh, t.staff.c.name_en, t.staff.c.role,
                   t.staff.c.disabled, t.staff.c.must_change_password)
            .join(t.staff, t.staff.c.staff_no == t.sessions.c.staff_no)
            .where(t.sessions.c.refresh_hash == h)
        ).mappings().first()
        if (row is None or row["closed_ms"] is not None or row["refresh_expires_ms"] <= now_ms()
                or row["disabled"] or row["must_change_password"] or row["role"] not in CONSOLE_ROLES):
            return None
        return ConsoleUser(row["staff_no"], row["name_zh"], row["name_en"], row["role"], row["id"])

    return await hall.store.read(fn)


class Refused(Exception):
    """Ends a console request with a page (sign-in redirect, 403 page)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def lang_of(request: Request) -> str:
    return "en" if request.cookies.get(LANG_COOKIE) == "en" else "zh"


def _headers(resp: Response) -> Response:
    for k, v in SECURITY_HEADERS.items():
        resp.headers[k] = v
    return resp


def render(request: Request, name: str, user: ConsoleUser | None, status: int = 200, **ctx: Any) -> Response:
    hall = hall_of(request)
    lang = lang_of(request)

    def tr(zh: str, en: str) -> str:
        return en if lang == "en" else zh

    def nm(obj: Any, field: str = "name") -> str:
        zh = obj.get(f"{field}_zh") if isinstance(obj, dict) else getattr(obj, f"{field}_zh")
        en = obj.get(f"{field}_en") if isinstance(obj, dict) else getattr(obj, f"{field}_en")
        return str(en or zh) if lang == "en" else str(zh)

    html = _env.get_template(name).render(
        request=request, user=user, lang=lang, _=tr, nm=nm, path=request.url.path,
        csrf=csrf_token(hall, user) if user else "", hall_name=ctx.pop("hall_name", ""),
        q=quote(str(request.url.path) + (("?" + request.url.query) if request.url.query else ""), safe=""),
        **ctx,
    )
    return _headers(Response(html, status_code=status, media_type="text/html; charset=utf-8"))


async def hall_name(request: Request) -> str:
    hall = hall_of(request)
    zh, en = await hall.store.read(lambda c: (get_meta(c, "hall_name_zh"), get_meta(c, "hall_name_en")))
    return str((en or zh) if lang_of(request) == "en" else zh) or hall.code


async def need(request: Request, *, it: bool = False) -> ConsoleUser:
    user = await current_user(request)
    if user is None:
        nxt = quote(request.url.path, safe="/")
        raise Refused(_headers(RedirectResponse(f"/console/login?next={nxt}", status_code=303)))
    if it and not user.is_it:
        raise Refused(render(request, "error.html", user, status=403, hall_name=await hall_name(request),
                             err_zh="此页面仅信息管理员可用。", err_en="Only an IT admin may use this page."))
    return user


async def form_of(request: Request, user: ConsoleUser | None, *, it: bool = True) -> dict[str, Any]:
    """The posted form after the CSRF check (and, for changes, the IT-admin check)."""
    hall = hall_of(request)
    origin = request.headers.get("origin")
    if origin and origin != "null" and origin.rstrip("/") != str(request.base_url).rstrip("/"):
        log.warning("console: POST %s refused: cross-origin %r", request.url.path, origin)
        raise _csrf_refused(request, user)
    form = await request.form(max_part_size=MAX_UPLOAD)
    sent = form.get("csrf")
    want = csrf_token(hall, user) if user else _mac(hall, "pre", request.cookies.get(PRE_COOKIE, ""))
    if not isinstance(sent, str) or not hmac.compare_digest(sent, want) or (
            user is None and not request.cookies.get(PRE_COOKIE)):
        log.warning("console: POST %s refused: missing or wrong CSRF token", request.url.path)
        raise _csrf_refused(request, user)
    if it and user is not None and not user.is_it:
        raise Refused(render(request, "error.html", user, status=403, hall_name=await hall_name(request),
                             err_zh="只有信息管理员可以修改设置。", err_en="Only an IT admin may change settings."))
    return dict(form)


def _csrf_refused(request: Request, user: ConsoleUser | None) -> Refused:
    return Refused(render(request, "error.html", user, status=403,
                          err_zh="表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试。",
                          err_en="The form expired or did not come from this console (CSRF check failed). "
                                 "Reload the page and try again."))


def _s(form: dict[str, Any], key: str) -> str:
    v = form.get(key, "")
    return v.strip() if isinstance(v, str) else ""


def _err_text(e: Exception, lang: str) -> str:
    if isinstance(e, ApiError):
        msg = e.message_en if lang == "en" else e.message_zh
        detail = e.details.get("errors") if isinstance(e.details, dict) else None
        extra = "" if not e.details or detail else " " + json.dumps(e.details, ensure_ascii=False, default=str)
        if isinstance(detail, list) and detail and isinstance(detail[0], str):
            extra = " — " + "; ".join(detail[:10])
        return f"{msg} ({e.code}){extra}"
    if isinstance(e, ValidationError):
        return ("输入有误：" if lang == "zh" else "Invalid input: ") + "; ".join(hallsetup.spec_errors(e))
    return str(e)


def _ok(path: str, msg: str) -> Response:
    return _headers(RedirectResponse(f"{path}?ok={quote(msg)}", status_code=303))


async def _write(request: Request, user: ConsoleUser, fn: Callable[[Tx], T]) -> T:
    return await hall_of(request).store.write(fn)


# ---- static, language, sign-in ---------------------------------------------------------------
@router.get("/static/{name}")
async def static(name: str) -> Response:
    hit = _STATIC.get(name)
    if hit is None:
        return _headers(Response("not found", status_code=404, media_type="text/plain"))
    resp = Response(hit[1].read_bytes(), media_type=hit[0])
    _headers(resp)
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@router.get("/lang/{lang}")
async def set_lang(request: Request, lang: str, next: str = "/console/") -> Response:
    target = next if next.startswith("/console/") and "//" not in next and "\\" not in next else "/console/"
    resp = _headers(RedirectResponse(target, status_code=303))
    resp.set_cookie(LANG_COOKIE, "en" if lang == "en" else "zh", max_age=365 * 86400, path="/console",
                    samesite="strict", httponly=True)
    return resp


def _safe_next(value: str) -> str:
    return value if value.startswith("/console/") and "//" not in value and "\\" not in value else "/console/"


@router.get("/login")
async def login_page(request: Request, next: str = "/console/") -> Response:
    return _login_form(request, await hall_name(request), _safe_next(next))


def _login_form(request: Request, name: str, nxt: str, error: str = "", status: int = 200,
                change_for: str = "") -> Response:
    pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
    resp = render(request, "login.html", None, status=status, hall_name=name, next=nxt, error=error,
                  login_csrf=_mac(hall_of(request), "pre", pre), change_for=change_for)
    resp.set_cookie(PRE_COOKIE, pre, path="/console", httponly=True, samesite="strict",
                    secure=request.url.scheme == "https")
    return resp


@router.post("/login")
async def login(request: Request) -> Response:
    hall = hall_of(request)
    name = await hall_name(request)
    lang = lang_of(request)
    try:
        form = await form_of(request, None)
    except Refused as r:
        return r.response
    staff_no, password, nxt = _s(form, "staff_no")[:32], str(form.get("password", ""))[:200], _safe_next(_s(form, "next"))
    new_password = str(form.get("new_password", ""))[:200]
    try:
        row = await check_password(request, staff_no, password)
    except ApiError as e:
        return _login_form(request, name, nxt, _err_text(e, lang), 429)
    if row is None:
        log.info("console: sign-in failed for %r", staff_no)
        return _login_form(request, name, nxt, _err_text(ApiError(401, "bad_credentials"), lang), 401)
    if row["disabled"]:
        return _login_form(request, name, nxt, _err_text(ApiError(403, "staff_disabled"), lang), 403)
    if row["role"] not in CONSOLE_ROLES:
        log.info("console: sign-in refused for %r (role %s)", staff_no, row["role"])
        return _login_form(request, name, nxt, tr_pair(lang, "控制台仅供主管和信息管理员使用。",
                                                      "The console is for supervisors and IT admins only."), 403)
    if row["must_change_password"]:
        if not new_password:
            return _login_form(request, name, nxt, tr_pair(
                lang, "这是一次性密码：请设置您自己的新密码（至少 8 个字符）。",
                "This is a one-time password: choose your own new password (at least 8 characters)."),
                403, change_for=staff_no)
        if len(new_password) < 8 or new_password == password:
            return _login_form(request, name, nxt, _err_text(ApiError(422, "weak_password"), lang), 422,
                               change_for=staff_no)
        new_hash = await anyio.to_thread.run_sync(hash_password, new_password)
        old_hash = row["password_hash"]
        try:
            await hall.store.write(lambda tx: admin.change_password_op(tx, staff_no, old_hash, new_hash))
        except ApiError as e:
            return _login_form(request, name, nxt, _err_text(e, lang), e.status)
    secret = secrets.token_urlsafe(32)
    sid = secrets.token_urlsafe(15)

    def fn(tx: Tx) -> None:
        now = now_ms()
        tx.conn.execute(t.sessions.insert().values(
            id=sid, staff_no=staff_no, window_no=None, refresh_hash=_cookie_hash(secret), created_ms=now,
            refresh_expires_ms=now + SESSION_SECONDS * 1000, device_id=None))

    await hall.store.write(fn)
    log.info("console: %s signed in (%s)", staff_no, row["role"])
    resp = _headers(RedirectResponse(nxt, status_code=303))
    resp.set_cookie(COOKIE, secret, max_age=SESSION_SECONDS, path="/console", httponly=True,
                    samesite="strict", secure=request.url.scheme == "https")
    resp.delete_cookie(PRE_COOKIE, path="/console")
    return resp


def tr_pair(lang: str, zh: str, en: str) -> str:
    return en if lang == "en" else zh


@router.post("/logout")
async def logout(request: Request) -> Response:
    try:
        user = await need(request)
        await form_of(request, user, it=False)
    except Refused as r:
        return r.response
    hall = hall_of(request)
    await hall.store.write(lambda tx: tx.conn.execute(
        t.sessions.update().where(t.sessions.c.id == user.session_id).values(closed_ms=now_ms())))
    resp = _headers(RedirectResponse("/console/login", status_code=303))
    resp.delete_cookie(COOKIE, path="/console")
    return resp


# ---- live hall -------------------------------------------------------------------------------
def live_snapshot(conn: Connection, hall: Hall) -> dict[str, Any]:
    now = now_ms()
    windows = all_windows(conn)
    cur_ids = [w["current_ticket_id"] for w in windows if w["current_ticket_id"] is not None]
    numbers: dict[int, tuple[str, str]] = {}
    if cur_ids:
        for r in conn.execute(select(t.tickets.c.id, t.tickets.c.number, t.tickets.c.state)
                              .where(t.tickets.c.id.in_(cur_ids))):
            numbers[int(r[0])] = (r[1], r[2])
    reasons = {r["code"]: r for r in conn.execute(select(t.pause_reasons)).mappings()}
    cats = conn.execute(select(t.categories).order_by(t.categories.c.code)).mappings().all()
    waiting = {
        r[0]: (int(r[1]), int(r[2]))
        for r in conn.execute(
            select(t.tickets.c.category, func.count(), func.min(t.tickets.c.queued_ms))
            .where(t.tickets.c.state == "waiting", t.tickets.c.day == hall.today())
            .group_by(t.tickets.c.category))
    }
    rows = []
    for w in windows:
        cur = numbers.get(w["current_ticket_id"]) if w["current_ticket_id"] is not None else None
        reason = reasons.get(w["pause_reason_code"]) if w["pause_reason_code"] else None
        rows.append({**w, "current_number": cur[0] if cur else "", "current_state": cur[1] if cur else "",
                     "reason": dict(reason) if reason else None})
    per_cat = []
    for c in cats:
        n, oldest = waiting.get(c["code"], (0, 0))
        per_cat.append({"code": c["code"], "name_zh": c["name_zh"], "name_en": c["name_en"], "waiting": n,
                        "longest_s": (now - oldest) // 1000 if n else None})
    longest = max((c["longest_s"] for c in per_cat if c["longest_s"] is not None), default=None)
    return {"windows": rows, "categories": per_cat, "total_waiting": sum(c["waiting"] for c in per_cat),
            "longest_s": longest, "at": datetime.fromtimestamp(now / 1000, hall.tz).strftime("%H:%M:%S")}


def mmss(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


_env.filters["mmss"] = mmss


def render_fragment(lang: str, snap: dict[str, Any]) -> str:
    def tr(zh: str, en: str) -> str:
        return en if lang == "en" else zh

    def nm(obj: Any, field: str = "name") -> str:
        zh, en = obj.get(f"{field}_zh"), obj.get(f"{field}_en")
        return str(en or zh) if lang == "en" else str(zh)

    return _env.get_template("live_fragment.html").render(lang=lang, _=tr, nm=nm, **snap)


@router.get("/")
async def live_page(request: Request) -> Response:
    try:
        user = await need(request)
    except Refused as r:
        return r.response
    hall = hall_of(request)
    snap = await hall.store.read(lambda c: live_snapshot(c, hall))
    return render(request, "live.html", user, hall_name=await hall_name(request),
                  fragment=render_fragment(lang_of(request), snap))


@router.get("/live/stream")
async def live_stream(request: Request) -> Response:
    """SSE for the live page: a `hall` event with the re-rendered fragment on every change
    (coalesced over 50 ms) and every 15 s (waits grow without events). Ends when the console
    session does."""
    user = await current_user(request)
    if user is None:
        return _headers(Response("unauthorized", status_code=401, media_type="text/plain"))
    hall = hall_of(request)
    lang = lang_of(request)
    sub = hall.broker.subscribe(None, set())

    async def gen() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 2000\n\n"
            while True:
                snap = await hall.store.read(lambda c: live_snapshot(c, hall))
                html = render_fragment(lang, snap)
                yield ("event: hall\n" + "".join(f"data: {line}\n" for line in html.splitlines()) + "\n").encode()
                try:
                    if await asyncio.wait_for(sub.queue.get(), timeout=15) is None:
                        return  # the server is stopping
                except TimeoutError:
                    pass  # no event for 15 s: send the fragment again (the waits have grown)
                await asyncio.sleep(0.05)
                while not sub.queue.empty():
                    if sub.queue.get_nowait() is None:
                        return
                if await current_user(request) is None:
                    return
        finally:
            hall.broker.unsubscribe(sub)

    resp = StreamingResponse(gen(), media_type="text/event-stream",
                             headers={"X-Accel-Buffering": "no"})
    _headers(resp)
    return resp


# ---- figures ---------------------------------------------------------------------------------
def _bars(values: list[tuple[str, float]], width: int = 720, height: int = 200,
          colors: list[str] | None = None) -> dict[str, Any]:
    """Geometry of a server-rendered SVG bar chart (labels under the bars, value on top)."""
    top = max((v for _, v in values), default=0) or 1
    n = max(len(values), 1)
    slot = width / n
    bars = []
    for i, (label, v) in enumerate(values):
        h = round((height - 40) * v / top, 1)
        bars.append({"x": round(i * slot + slot * 0.15, 1), "w": round(slot * 0.7, 1), "y": round(height - 20 - h, 1),
                     "h": h, "label": label, "value": v, "cx": round(i * slot + slot / 2, 1),
                     "color": colors[i] if colors else "#1f5fa8"})
    return {"width": width, "height": height, "bars": bars, "base": height - 20}


@router.get("/figures")
async def figures_page(request: Request, day: str = "") -> Response:
    try:
        user = await need(request)
    except Refused as r:
        return r.response
    hall = hall_of(request)
    try:
        chosen = date.fromisoformat(day).isoformat() if day else hall.today()
    except ValueError:
        chosen = hall.today()

    def fn(conn: Connection) -> dict[str, Any]:
        whole = stats.compute(conn, hall, chosen, None)
        nos = sorted(set(conn.execute(select(t.windows.c.no)).scalars())
                     | set(conn.execute(select(t.tickets.c.window_no).where(
                         t.tickets.c.day == chosen, t.tickets.c.window_no.is_not(None))).scalars()))
        return {"hall": whole, "windows": [stats.compute(conn, hall, chosen, n) for n in nos]}

    data = await hall.store.read(fn)
    h = data["hall"]
    level_names = dict(zip(stats.LEVELS, ("非常满意", "满意", "基本满意", "不满意", "非常不满意"), strict=True))
    level_en = dict(zip(stats.LEVELS, ("Very satisfied", "Satisfied", "Basic", "Dissatisfied", "Very dissatisfied"),
                        strict=True))
    lang = lang_of(request)
    charts = {
        "hours": _bars([(f"{i}", float(v)) for i, v in enumerate(h["tickets_per_hour"]) if 7 <= i <= 19]),
        "served": _bars([(str(w["window_no"]), float(w["served"])) for w in data["windows"]]),
        "levels": _bars(width=480, values=[((level_en if lang == "en" else level_names)[k], float(v))
                         for k, v in h["ratings_by_level"].items()],
                       colors=[LEVEL_COLORS[k] for k in h["ratings_by_level"]]),
    }
    return render(request, "figures.html", user, hall_name=await hall_name(request), day=chosen,
                  figs=data, charts=charts)


# ---- ratings ---------------------------------------------------------------------------------
LEVEL_COLORS = {"very_satisfied": "#156d3a", "satisfied": "#2f8a52", "basic": "#8a5300",
                "dissatisfied": "#b8463d", "very_dissatisfied": "#a3231b"}
LEVEL_ORDER = {"very_dissatisfied": 0, "dissatisfied": 1, "basic": 2, "satisfied": 3, "very_satisfied": 4}


@router.get("/ratings")
async def ratings_page(request: Request, day: str = "", level: str = "", window: str = "",
                       assurance: str = "") -> Response:
    try:
        user = await need(request)
    except Refused as r:
        return r.response
    hall = hall_of(request)
    try:
        chosen = date.fromisoformat(day).isoformat() if day else ""
    except ValueError:
        chosen = ""
    win = int(window) if window.isdigit() and len(window) < 6 else None

    def fn(conn: Connection) -> dict[str, Any]:
        q = select(t.ratings, t.cases.c.case_no, t.cases.c.staff_no).join(t.cases, t.cases.c.id == t.ratings.c.case_id)
        if chosen:
            q = q.where(t.ratings.c.day == chosen)
        if level in LEVEL_ORDER:
            q = q.where(t.ratings.c.level == level)
        if win is not None:
            q = q.where(t.ratings.c.window_no == win)
        if assurance:
            q = q.where(t.ratings.c.assurance == assurance[:16])
        q = q.order_by(t.ratings.c.bad.desc(), t.ratings.c.rated_ms.desc()).limit(500)
        reasons = {r["code"]: r for r in conn.execute(select(t.rating_reasons)).mappings()}
        rows = []
        for r in conn.execute(q).mappings():
            codes = json.loads(r["reasons"] or "[]")
            rows.append({**dict(r), "reason_rows": [reasons.get(c) or {"text_zh": c, "text_en": c} for c in codes],
                         "at": datetime.fromtimestamp(r["rated_ms"] / 1000, hall.tz).strftime("%Y-%m-%d %H:%M")})
        rows.sort(key=lambda r: (not r["bad"], LEVEL_ORDER.get(r["level"], 9), -r["rated_ms"]))
        assurances = sorted(set(conn.execute(select(t.ratings.c.assurance).distinct()).scalars()) | {"signed", "unsigned"})
        nos = list(conn.execute(select(t.windows.c.no).order_by(t.windows.c.no)).scalars())
        return {"rows": rows, "assurances": assurances, "window_nos": nos}

    data = await hall.store.read(fn)
    return render(request, "ratings.html", user, hall_name=await hall_name(request), day=chosen, level=level,
                  window=win, assurance=assurance, levels=list(LEVEL_ORDER), **data)


# ---- staff -----------------------------------------------------------------------------------
async def _staff_ctx(request: Request) -> dict[str, Any]:
    return {"staff": await hall_of(request).store.read(admin.list_staff), "hall_name": await hall_name(request)}


@router.get("/staff")
async def staff_page(request: Request) -> Response:
    try:
        user = await need(request, it=True)
    except Refused as r:
        return r.response
    return render(request, "staff.html", user, ok=request.query_params.get("ok", ""), **await _staff_ctx(request))


@router.get("/staff/{staff_no}/photo")
async def staff_photo(request: Request, staff_no: str) -> Response:
    user = await current_user(request)
    if user is None or not user.is_it:
        return _headers(Response("forbidden", status_code=403, media_type="text/plain"))
    photo = await hall_of(request).store.read(
        lambda c: c.execute(select(t.staff.c.photo).where(t.staff.c.staff_no == staff_no[:32])).scalar())
    if not photo:
        return _headers(Response("not found", status_code=404, media_type="text/plain"))
    return _headers(Response(bytes(photo), media_type="image/png"))


@router.post("/staff/{action}")
async def staff_post(request: Request, action: str) -> Response:
    hall = hall_of(request)
    try:
        user = await need(request, it=True)
        form = await form_of(request, user)
    except Refused as r:
        return r.response
    lang = lang_of(request)
    staff_no = _s(form, "staff_no")[:32]
    otp = ""
    try:
        if action == "create":
            body = admin.StaffIn.model_validate({
                "staff_no": staff_no, "name_zh": _s(form, "name_zh"), "name_en": _s(form, "name_en"),
                "role": _s(form, "role") or "staff", "password": str(form.get("password", ""))})
            pw = await anyio.to_thread.run_sync(hash_password, body.password)
            await _write(request, user, lambda tx: admin.create_staff_op(
                tx, body.staff_no, body.name_zh, body.name_en, body.role, pw, actor=user.staff_no))
        elif action == "update":
            if staff_no == user.staff_no:
                # An IT admin disabling or demoting themselves could leave the hall without one.
                raise ApiError(409, "own_account", message_zh="不能停用自己的账号或更改自己的角色。",
                               message_en="You cannot disable your own account or change your own role.")
            patch = admin.StaffPatch.model_validate({
                "role": _s(form, "role") or None, "disabled": {"1": True, "0": False}.get(_s(form, "disabled")),
                "name_zh": _s(form, "name_zh") or None, "name_en": _s(form, "name_en") or None})
            await _write(request, user, lambda tx: admin.update_staff_op(tx, user.staff_no, staff_no, patch.model_dump()))
        elif action == "reset":
            otp = admin.one_time_password()
            h = await anyio.to_thread.run_sync(hash_password, otp)
            await _write(request, user, lambda tx: admin.reset_password_op(tx, user.staff_no, staff_no, h))
        elif action == "photo":
            up = form.get("photo")
            data = await up.read() if isinstance(up, UploadFile) else b""
            png = await anyio.to_thread.run_sync(admin.process_photo, data)
            await _write(request, user, lambda tx: admin.set_photo_op(tx, user.staff_no, staff_no, png))
            hall.avatars.pop(staff_no, None)
        else:
            return render(request, "error.html", user, status=404, err_zh="没有此操作。", err_en="No such action.")
    except (ApiError, ValidationError) as e:
        log.info("console: staff %s %s refused: %s", action, staff_no, e)
        return render(request, "staff.html", user, status=getattr(e, "status", 422),
                      error=_err_text(e, lang), **await _staff_ctx(request))
    if otp:
        # Shown once, on this response only (not in a redirect URL, not stored, not cached).
        return render(request, "staff.html", user, otp=otp, otp_for=staff_no, **await _staff_ctx(request))
    return _ok("/console/staff", f"{action}:{staff_no}")


# ---- windows and categories ------------------------------------------------------------------
async def _windows_ctx(request: Request) -> dict[str, Any]:
    def fn(conn: Connection) -> dict[str, Any]:
        return {"windows": all_windows(conn),
                "cats": [dict(r) for r in conn.execute(select(t.categories).order_by(t.categories.c.code)).mappings()]}

    return {**await hall_of(request).store.read(fn), "hall_name": await hall_name(request)}


@router.get("/windows")
async def windows_page(request: Request) -> Response:
    try:
        user = await need(request)
    except Refused as r:
        return r.response
    return render(request, "windows.html", user, ok=request.query_params.get("ok", ""), **await _windows_ctx(request))


def _cats_of(form: dict[str, Any]) -> list[str]:
    raw = _s(form, "categories").replace("，", ",").replace(" ", ",")
    return [c.strip().upper() for c in raw.split(",") if c.strip()]


@router.post("/windows/{action}")
async def windows_post(request: Request, action: str) -> Response:
    try:
        user = await need(request)
        form = await form_of(request, user)
    except Refused as r:
        return r.response
    actor = user.staff_no
    try:
        if action == "add":
            w = admin.WindowIn.model_validate({"no": _s(form, "no"), "name_zh": _s(form, "name_zh"),
                                               "name_en": _s(form, "name_en"), "categories": _cats_of(form)})
            await _write(request, user, lambda tx: admin.add_window_op(tx, actor, w.no, w.name_zh, w.name_en,
                                                                       w.categories))
        elif action in ("rename", "categories", "retire"):
            no = admin.WindowIn.model_validate({"no": _s(form, "no"), "name_zh": "x"}).no
            if action == "rename":
                p = admin.WindowPatch.model_validate({"name_zh": _s(form, "name_zh"), "name_en": _s(form, "name_en")})
                await _write(request, user, lambda tx: admin.rename_window_op(tx, actor, no, p.name_zh, p.name_en))
            elif action == "categories":
                cats = admin.CategoriesIn.model_validate({"categories": _cats_of(form)}).categories
                await _write(request, user, lambda tx: admin.set_window_categories_op(tx, no, cats, actor=actor))
            else:
                await _write(request, user, lambda tx: admin.retire_window_op(tx, actor, no))
        elif action == "category":
            code = _s(form, "code").upper()
            c = admin.CategoryIn.model_validate({"name_zh": _s(form, "name_zh"), "name_en": _s(form, "name_en")})
            admin.WindowIn.model_validate({"no": 1, "name_zh": "x", "categories": [code]})  # the code's pattern
            await _write(request, user, lambda tx: admin.upsert_category_op(tx, actor, code, c.name_zh, c.name_en))
        elif action == "category-remove":
            code = _s(form, "code")[:8]
            await _write(request, user, lambda tx: admin.delete_category_op(tx, actor, code))
        else:
            return render(request, "error.html", user, status=404, err_zh="没有此操作。", err_en="No such action.")
    except (ApiError, ValidationError) as e:
        log.info("console: windows %s refused: %s", action, e)
        return render(request, "windows.html", user, status=getattr(e, "status", 422),
                      error=_err_text(e, lang_of(request)), **await _windows_ctx(request))
    return _ok("/console/windows", action)


# ---- reasons ---------------------------------------------------------------------------------
async def _reasons_ctx(request: Request) -> dict[str, Any]:
    def fn(conn: Connection) -> dict[str, Any]:
        return {"pause": [dict(r) for r in conn.execute(select(t.pause_reasons).order_by(t.pause_reasons.c.code)).mappings()],
                "rating": admin.rating_reasons_json(conn)}

    return {**await hall_of(request).store.read(fn), "hall_name": await hall_name(request)}


@router.get("/reasons")
async def reasons_page(request: Request) -> Response:
    try:
        user = await need(request)
    except Refused as r:
        return r.response
    return render(request, "reasons.html", user, ok=request.query_params.get("ok", ""), **await _reasons_ctx(request))


class _PauseCode(BaseModel):
    code: hallsetup.ReasonCode


@router.post("/reasons/{action}")
async def reasons_post(request: Request, action: str) -> Response:
    try:
        user = await need(request)
        form = await form_of(request, user)
    except Refused as r:
        return r.response
    actor = user.staff_no
    try:
        if action == "pause":
            code = _PauseCode.model_validate({"code": _s(form, "code")}).code
            body = admin.PauseReasonIn.model_validate({k: _s(form, k) for k in ("name_zh", "name_en", "public_zh", "public_en")})
            await _write(request, user, lambda tx: admin.upsert_pause_reason_op(tx, actor, code, body.model_dump()))
        elif action == "pause-remove":
            code = _s(form, "code")[:32]
            await _write(request, user, lambda tx: admin.delete_pause_reason_op(tx, actor, code))
        elif action == "rating":
            up = form.get("file")
            raw = await up.read() if isinstance(up, UploadFile) else b""
            rr = RatingReasons.model_validate_json(raw or b"{}")
            await _write(request, user, lambda tx: admin.set_rating_reasons_op(tx, actor, rr))
        else:
            return render(request, "error.html", user, status=404, err_zh="没有此操作。", err_en="No such action.")
    except (ApiError, ValidationError) as e:
        return render(request, "reasons.html", user, status=getattr(e, "status", 422),
                      error=_err_text(e, lang_of(request)), **await _reasons_ctx(request))
    return _ok("/console/reasons", action)


# ---- rules -----------------------------------------------------------------------------------
@router.get("/rules")
async def rules_page(request: Request) -> Response:
    try:
        user = await need(request)
    except Refused as r:
        return r.response
    rules = await hall_of(request).store.read(lambda c: hallsetup.get_rules(c).model_dump())
    return render(request, "rules.html", user, hall_name=await hall_name(request), rules=rules,
                  ok=request.query_params.get("ok", ""))


@router.post("/rules")
async def rules_post(request: Request) -> Response:
    hall = hall_of(request)
    try:
        user = await need(request)
        form = await form_of(request, user)
    except Refused as r:
        return r.response
    changes: dict[str, Any] = {k: _s(form, k) for k in HallRules.model_fields if _s(form, k)}
    try:
        rules = await _write(request, user, lambda tx: admin.set_rules_op(tx, user.staff_no, changes))
    except ApiError as e:
        current = await hall.store.read(lambda c: hallsetup.get_rules(c).model_dump())
        return render(request, "rules.html", user, status=e.status, hall_name=await hall_name(request),
                      rules={**current, **changes}, error=_err_text(e, lang_of(request)))
    hall.rules = HallRules.model_validate(rules).desk_rules()  # this process at once (see admin._reload_rules)
    return _ok("/console/rules", "saved")


# ---- calendar --------------------------------------------------------------------------------
async def _calendar_ctx(request: Request, year: int) -> dict[str, Any]:
    rows = await hall_of(request).store.read(lambda c: workdays.year_rows(c, year))
    return {"rows": rows, "year": year, "hall_name": await hall_name(request)}


@router.get("/calendar")
async def calendar_page(request: Request, year: Annotated[int, Query(ge=0, le=9999)] = 0) -> Response:
    try:
        user = await need(request)
    except Refused as r:
        return r.response
    y = year if 1900 <= year <= 2200 else int(hall_of(request).today()[:4])
    return render(request, "calendar.html", user, ok=request.query_params.get("ok", ""), **await _calendar_ctx(request, y))


@router.post("/calendar")
async def calendar_post(request: Request) -> Response:
    try:
        user = await need(request)
        form = await form_of(request, user)
    except Refused as r:
        return r.response
    up = form.get("file")
    raw = await up.read() if isinstance(up, UploadFile) else b""
    fname = (up.filename or "upload.json") if isinstance(up, UploadFile) else "upload.json"
    try:
        year, entries = workdays.parse_year_file(raw, fname if fname.lower().endswith((".csv", ".json")) else "upload.json")
    except ValueError as e:
        return render(request, "calendar.html", user, status=422,
                      error=_err_text(ApiError(422, "invalid_calendar", {"errors": str(e).split("; ")}), lang_of(request)),
                      **await _calendar_ctx(request, int(hall_of(request).today()[:4])))
    hall = hall_of(request)
    await _write(request, user, lambda tx: admin.import_calendar_op(tx, user.staff_no, year, entries))
    workdays.set_current(await hall.store.read(workdays.load))
    return _headers(RedirectResponse(f"/console/calendar?year={year}&ok=imported", status_code=303))


# ---- devices ---------------------------------------------------------------------------------
async def _devices_ctx(request: Request) -> dict[str, Any]:
    hall = hall_of(request)
    return {"devices": await hall.store.read(admin.list_devices),
            "window_nos": await hall.store.read(lambda c: list(c.execute(select(t.windows.c.no).order_by(t.windows.c.no)).scalars())),
            "hall_name": await hall_name(request)}


@router.get("/devices")
async def devices_page(request: Request) -> Response:
    try:
        user = await need(request, it=True)
    except Refused as r:
        return r.response
    return render(request, "devices.html", user, ok=request.query_params.get("ok", ""), **await _devices_ctx(request))


@router.post("/devices/{action}")
async def devices_post(request: Request, action: str) -> Response:
    hall = hall_of(request)
    try:
        user = await need(request, it=True)
        form = await form_of(request, user)
    except Refused as r:
        return r.response
    code: dict[str, Any] | None = None
    try:
        if action == "revoke":
            dev = _s(form, "device_id")[:40]
            await _write(request, user, lambda tx: admin.revoke_device_op(tx, user.staff_no, dev))
        elif action == "enroll":
            no = admin.EnrollmentIn.model_validate({"window_no": _s(form, "window_no")}).window_no
            life = hall.settings.enrollment_code_seconds
            code = await _write(request, user, lambda tx: admin.enrollment_code_op(tx, no, life, actor=user.staff_no))
        else:
            return render(request, "error.html", user, status=404, err_zh="没有此操作。", err_en="No such action.")
    except (ApiError, ValidationError) as e:
        return render(request, "devices.html", user, status=getattr(e, "status", 422),
                      error=_err_text(e, lang_of(request)), **await _devices_ctx(request))
    if code is not None:
        return render(request, "devices.html", user, code=code, **await _devices_ctx(request))
    return _ok("/console/devices", action)


# ---- catalog import --------------------------------------------------------------------------
@router.get("/catalog")
async def catalog_page(request: Request) -> Response:
    try:
        user = await need(request, it=True)
    except Refused as r:
        return r.response
    n = await hall_of(request).store.read(lambda c: c.execute(
        select(func.count()).select_from(t.matters).where(t.matters.c.deleted.is_(False))).scalar_one())
    return render(request, "catalog.html", user, hall_name=await hall_name(request), count=int(n))


@router.post("/catalog")
async def catalog_post(request: Request) -> Response:
    try:
        user = await need(request, it=True)
        form = await form_of(request, user)
    except Refused as r:
        return r.response
    hall = hall_of(request)
    up = form.get("file")
    raw = await up.read() if isinstance(up, UploadFile) else b""
    fname = (up.filename or "") if isinstance(up, UploadFile) else ""
    dry = _s(form, "dry_run") == "1"
    ext = Path(fname.lower()).suffix
    result: dict[str, Any] | None = None
    errors: list[Any] = []
    message = ""
    try:
        if ext == ".json":
            items: Any = json.loads(raw)
        elif ext in (".csv", ".xlsx"):
            items = await anyio.to_thread.run_sync(catalog.read_matters_bytes, raw, ext)
        else:
            raise ApiError(422, "import_invalid", {"errors": [{"row": 0, "field": "file",
                                                               "message": "CSV, XLSX or JSON"}], "count": 1})
        result = await _write(request, user, lambda tx: admin.import_matters_op(tx, user.staff_no, items, dry_run=dry))
    except ApiError as e:
        errors = list(e.details.get("errors", [])) if isinstance(e.details, dict) else []
        message = _err_text(ApiError(e.status, e.code), lang_of(request))
    except (ValueError, UnicodeDecodeError) as e:
        errors = [{"row": 0, "field": "file", "message": str(e)}]
        message = _err_text(ApiError(422, "import_invalid"), lang_of(request))
    n = await hall.store.read(lambda c: c.execute(
        select(func.count()).select_from(t.matters).where(t.matters.c.deleted.is_(False))).scalar_one())
    return render(request, "catalog.html", user, status=422 if errors or message else 200,
                  hall_name=await hall_name(request), count=int(n), result=result, errors=errors,
                  error=message, filename=fname, dry=dry)


# ---- audit log -------------------------------------------------------------------------------
def _short(v: Any, limit: int = 140) -> str:
    if v is None:
        return "—"
    if isinstance(v, list) and len(v) > 3:
        return f"[{len(v)} items]"
    text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def audit_changes(before: Any, after: Any) -> list[tuple[str, str, str]]:
    """(field, before, after) for what changed: a supervisor reads "recall_limit 3 → 2", not two
    JSON documents (the full rows stay one click away)."""
    if isinstance(before, dict) or isinstance(after, dict):
        b = before if isinstance(before, dict) else {}
        a = after if isinstance(after, dict) else {}
        keys = [k for k in dict.fromkeys([*b, *a]) if b.get(k) != a.get(k) or before is None or after is None]
        return [(str(k), _short(b.get(k)) if before is not None else "", _short(a.get(k)) if after is not None else "")
                for k in keys]
    if before == after:
        return []
    return [("", _short(before), _short(after))]


@router.get("/audit")
async def audit_page(request: Request, action: str = "",
                     before_id: Annotated[int, Query(ge=0, le=MAX_INT)] = 0) -> Response:
    try:
        user = await need(request)
    except Refused as r:
        return r.response
    hall = hall_of(request)
    act = action[:64] or None
    rows = await hall.store.read(lambda c: admin.audit_rows(c, 100, before_id or None, act))
    actions = await hall.store.read(lambda c: sorted(c.execute(select(t.audit_log.c.action).distinct()).scalars()))
    for row in rows:
        row["at_local"] = datetime.fromisoformat(row["at"].replace("Z", "+00:00")).astimezone(hall.tz).strftime(
            "%Y-%m-%d %H:%M:%S")
        row["changes"] = audit_changes(row["before"], row["after"])
        row["full"] = json.dumps({"before": row["before"], "after": row["after"]}, ensure_ascii=False, indent=1,
                                 default=str)
    return render(request, "audit.html", user, hall_name=await hall_name(request), rows=rows, action=action,
                  actions=actions, next_before=rows[-1]["id"] if len(rows) == 100 else 0)


