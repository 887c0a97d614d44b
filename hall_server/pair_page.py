"""`/pair/`: the supervisor's own-device page for pairing an evaluator pad (no script at all).

The window PC is not in this path: the supervisor opens the hall server's page on their own
phone or PC, signs in (staff number, password, window), and gets the one-time QR code and
6-digit code for the pad. Once the pad has registered its key, the page shows the fingerprint
the server received and asks for the one the PAD shows; only a typed match binds the key
(pads.confirm). A mismatch voids the pairing.

No cookie: after the sign-in, every form carries a ticket, an HMAC (key derived from the server
secret) over the pairing id, the staff number and an expiry, so a follow-up form proves the
same supervisor started this pairing. Cross-site posts are refused (Origin), the Host must be
one the hall configured (pad_guard.check_host), failed passwords count in the login limiter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import io
import logging
from typing import Any
from urllib.parse import parse_qs

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from hall_server import pads
from hall_server import schema as t
from hall_server.core import Hall, hall_of
from hall_server.db import now_ms
from hall_server.deps import check_password
from hall_server.errors import ApiError
from hall_server.pad_guard import check_host

log = logging.getLogger("hall_server")
router = APIRouter(include_in_schema=False)
PATH = "/pair/"
MAX_FORM = 4096

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "配对评价器", "sign_in": "值班主任或信息管理员登录", "staff_no": "工号",
        "password": "密码", "window": "窗口号", "start": "开始配对",
        "scan": "用评价器扫描此二维码，或在评价器上输入窗口号和配对码：", "code": "配对码",
        "expires": "二维码和配对码 {s} 秒内有效，只能使用一次。",
        "check": "评价器已扫描，刷新", "waiting": "尚未有评价器登记。评价器扫描后请点“刷新”。",
        "received": "服务器收到的评价器密钥指纹：", "type_fp": "请输入评价器屏幕上显示的指纹",
        "confirm": "确认配对", "reject": "不是这台评价器，作废",
        "done": "配对完成：评价器 {pad} 已与 {n} 号窗口配对。",
        "void": "此次配对已作废（指纹不符、已拒绝或已过期）。请重新开始。",
        "mismatch": "指纹不符：此次配对已作废。有人可能替换了密钥，请检查窗口电脑和网络后重新配对。",
        "bad_login": "工号或密码错误，或无权配对评价器。", "bad": "请求无效，请重新开始。",
        "again": "重新开始",
    },
    "en": {
        "title": "Pair an evaluator pad", "sign_in": "Supervisor or IT sign-in", "staff_no": "Staff no.",
        "password": "Password", "window": "Window no.", "start": "Start pairing",
        "scan": "Scan this QR code with the pad, or type the window number and code on it:",
        "code": "Code", "expires": "The QR code and the code are valid for {s} s, once.",
        "check": "The pad has scanned: refresh",
        "waiting": "No pad has registered yet. Press refresh once the pad has scanned.",
        "received": "Fingerprint of the key the server received:",
        "type_fp": "Type the fingerprint shown ON THE PAD", "confirm": "Confirm pairing",
        "reject": "Not this pad: void", "done": "Paired: pad {pad} now rates for window {n}.",
        "void": "This pairing is void (fingerprint mismatch, rejected or expired). Start again.",
        "mismatch": "The fingerprints differ: this pairing is void. Someone may have swapped the "
                    "key; check the window PC and the network, then pair again.",
        "bad_login": "Wrong staff number or password, or no right to pair pads.",
        "bad": "This request is not valid. Please start again.", "again": "Start again",
    },
}

STYLE = ("body{font:18px/1.5 system-ui,sans-serif;margin:0 auto;max-width:40em;padding:1em;"
         "color:#111;background:#fff}label{display:block;margin-top:.8em}input{font-size:1.2em;"
         "padding:.3em;width:100%;box-sizing:border-box}button{font-size:1.1em;padding:.5em 1em;"
         "margin-top:1em;min-height:48px}.fp{font:700 1.8em monospace;letter-spacing:.08em}"
         ".code{font:700 2.4em monospace}.msg{color:#a00000;font-weight:700}img{max-width:100%}")


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    return (f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")


def e(v: object) -> str:
    return html.escape(str(v), quote=True)


def _page(lang: str, body: str, status: int = 200) -> HTMLResponse:
    tx = TEXT[lang]
    doc = (f'<!doctype html><html lang="{"en" if lang == "en" else "zh-CN"}"><head><meta charset="utf-8">'
           f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{e(tx["title"])}</title>'
           f'<style>{STYLE}</style></head><body><main><h1>{e(tx["title"])}</h1>{body}</main></body></html>')
    return HTMLResponse(doc, status_code=status, headers={
        "Content-Security-Policy": _csp(), "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"})


def _sign_in_form(lang: str, msg: str = "", status: int = 200) -> HTMLResponse:
    tx = TEXT[lang]
    alert = f'<p class="msg" role="alert">{e(msg)}</p>' if msg else ""
    body = (f'<h2>{e(tx["sign_in"])}</h2>{alert}<form method="post" action="{PATH}">'
            f'<input type="hidden" name="lang" value="{lang}"><input type="hidden" name="action" value="start">'
            f'<label for="staff_no">{e(tx["staff_no"])}</label><input id="staff_no" name="staff_no" autocomplete="username" required>'
            f'<label for="password">{e(tx["password"])}</label><input id="password" name="password" type="password" autocomplete="current-password" required>'
            f'<label for="window_no">{e(tx["window"])}</label><input id="window_no" name="window_no" inputmode="numeric" required>'
            f'<button type="submit">{e(tx["start"])}</button></form>')
    return _page(lang, body, status)


async def _ticket_key(hall: Hall) -> bytes:
    return hmac.new(hall.server_secret, b"hall-pair-ticket-v1", hashlib.sha256).digest()


def _ticket(key: bytes, pairing_id: str, staff_no: str, exp_ms: int) -> str:
    msg = f"{pairing_id}|{staff_no}|{exp_ms}"
    mac = hmac.new(key, msg.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{msg}|{mac}"


def _parse_ticket(key: bytes, ticket: str) -> tuple[str, str] | None:
    parts = ticket.split("|")
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    pid, staff_no, exp, _mac = parts
    if int(exp) < now_ms() or not hmac.compare_digest(_ticket(key, pid, staff_no, int(exp)), ticket):
        return None
    return pid, staff_no


def _qr_svg_data(text: str) -> str:
    import segno

    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=8, border=3)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _status_body(lang: str, pr: Any, ticket: str, hall: Hall, msg: str = "") -> str:
    tx = TEXT[lang]
    j = pads.pairing_json(pr, now_ms(), hall.settings.pad_confirm_seconds * 1000)
    hidden = (f'<input type="hidden" name="lang" value="{lang}">'
              f'<input type="hidden" name="ticket" value="{e(ticket)}">')
    alert = f'<p class="msg" role="alert">{e(msg)}</p>' if msg else ""
    if j["status"] == "confirmed":
        return alert + f'<p role="status">{e(tx["done"].format(pad=j["pad_id"], n=j["window_no"]))}</p>'
    if j["status"] in ("rejected", "expired"):
        return (alert + f'<p class="msg" role="alert">{e(tx["void"])}</p>'
                f'<p><a href="{PATH}?lang={lang}">{e(tx["again"])}</a></p>')
    if j["status"] == "waiting":
        return (alert + f'<p>{e(tx["waiting"])}</p><form method="post" action="{PATH}">{hidden}'
                f'<input type="hidden" name="action" value="status"><button type="submit">{e(tx["check"])}</button></form>')
    return (alert + f'<p>{e(tx["received"])}</p><p class="fp" id="server-fp">{e(j["fingerprint"])}</p>'
            f'<form method="post" action="{PATH}">{hidden}<input type="hidden" name="action" value="confirm">'
            f'<label for="fingerprint">{e(tx["type_fp"])}</label>'
            f'<input id="fingerprint" name="fingerprint" autocomplete="off" autocapitalize="characters" required>'
            f'<button type="submit">{e(tx["confirm"])}</button></form>'
            f'<form method="post" action="{PATH}">{hidden}<input type="hidden" name="action" value="reject">'
            f'<button type="submit">{e(tx["reject"])}</button></form>')


@router.get(PATH, response_class=HTMLResponse)
async def pair_form(request: Request) -> Response:
    check_host(request)
    return _sign_in_form("en" if request.query_params.get("lang") == "en" else "zh")


async def _form(request: Request) -> dict[str, str] | None:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return None
    try:
        q = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return None
    return {k: v[0] for k, v in q.items()}


@router.post(PATH, response_class=HTMLResponse)
async def pair_post(request: Request) -> Response:
    check_host(request)  # also refuses a cross-site Origin
    hall = hall_of(request)
    form = await _form(request)
    lang = "en" if (form or {}).get("lang") == "en" else "zh"
    tx = TEXT[lang]
    if form is None:
        return _sign_in_form(lang, tx["bad"], 400)
    key = await _ticket_key(hall)
    action = form.get("action", "")
    if action == "start":
        staff_no, password = form.get("staff_no", "").strip()[:32], form.get("password", "")[:200]
        window = form.get("window_no", "").strip()
        if not window.isdigit() or len(window) > 6:
            return _sign_in_form(lang, tx["bad"], 400)
        staff = await check_password(request, staff_no, password)
        if staff is None:
            return _sign_in_form(lang, tx["bad_login"], 401)
        if staff["disabled"] or staff["role"] not in ("supervisor", "it_admin"):
            return _sign_in_form(lang, tx["bad_login"], 403)
        try:
            offer = await hall.store.write(lambda t_: pads.create_pairing(
                t_, int(window), staff_no, hall.settings.pad_pairing_seconds))
        except ApiError:
            return _sign_in_form(lang, tx["bad"], 404)
        exp = now_ms() + (hall.settings.pad_pairing_seconds + hall.settings.pad_confirm_seconds) * 1000
        ticket = _ticket(key, offer["pairing_id"], staff_no, exp)
        url = pads.pair_url(request, offer["token"])
        qr = await anyio.to_thread.run_sync(_qr_svg_data, url)
        log.info("pad pairing %s for window %s started on the /pair/ page by %s",
                 offer["pairing_id"], window, staff_no)
        body = (f'<p>{e(tx["scan"])}</p><img id="qr" src="{qr}" alt="QR">'
                f'<p>{e(tx["window"])} <strong>{e(window)}</strong> · {e(tx["code"])} '
                f'<span class="code" id="code">{e(offer["code"])}</span></p>'
                f'<p>{e(tx["expires"].format(s=offer["expires_in"]))}</p>'
                f'<form method="post" action="{PATH}"><input type="hidden" name="lang" value="{lang}">'
                f'<input type="hidden" name="ticket" value="{e(ticket)}"><input type="hidden" name="action" value="status">'
                f'<button type="submit">{e(tx["check"])}</button></form>')
        return _page(lang, body)
    parsed = _parse_ticket(key, form.get("ticket", ""))
    if parsed is None:
        return _sign_in_form(lang, tx["bad"], 403)
    pairing_id, staff_no = parsed
    pr = await hall.store.read(lambda c: pads.load_pairing(c, pairing_id))
    ticket = form["ticket"]
    if action == "confirm":
        try:
            await pads.confirm_or_raise(hall, pairing_id, form.get("fingerprint", "")[:40], staff_no)
        except ApiError as exc:
            pr = await hall.store.read(lambda c: pads.load_pairing(c, pairing_id))
            msg = tx["mismatch"] if exc.code == "fingerprint_mismatch" else tx["void"]
            return _page(lang, _status_body(lang, pr, ticket, hall, msg), 409)
        pr = await hall.store.read(lambda c: pads.load_pairing(c, pairing_id))
    elif action == "reject":
        await hall.store.write(lambda t_: t_.conn.execute(t.pad_pairings.update().where(
            t.pad_pairings.c.id == pairing_id, t.pad_pairings.c.confirmed_ms.is_(None))
            .values(rejected_ms=now_ms())))
        pr = await hall.store.read(lambda c: pads.load_pairing(c, pairing_id))
    elif action != "status":
        return _sign_in_form(lang, tx["bad"], 400)
    return _page(lang, _status_body(lang, pr, ticket, hall))
