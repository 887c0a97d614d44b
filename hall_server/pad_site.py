"""The evaluator pad's site on the hall server: its page, and the API the pad talks to directly.

The pad's code, its key and its traffic never pass through the window PC (a dishonest desk
could otherwise serve JS that reads the key, or swap the key at pairing). The desk only opens a
rating (`POST /api/v1/cases/{id}/rating-challenge`, by the case's window) and reads the
outcome (`GET /api/v1/cases/{id}/rating-status`); the pad learns the request from here:

* `GET /pad/`, `/pad/pad.css`, `/pad/pad.js`, `/pad/vendor/nacl-fast.min.js`: the page
  (hall_server/pad_page/), with a strict CSP.
* `GET /pad/api/state?since=<seq>&pad_id=<id>&t=<ms>&sig=<b64u>`: long-poll (~20 s) for the
  screen of the pad's window: `idle` (the clerk's card), `rating` (case, challenge, reasons),
  `not_rated` (the on-the-spot rating of a completed case ran out: the pad asks for the
  rate-later QR), `thanks`,
  `paused`. Only with a fresh proof by the paired key (pad_guard.check_proof); anything else is
  403 at once, so a visitor on the LAN holds no slot and learns nothing.
* `POST /pad/api/rating`: the signed rating, checked (rating_check.check_rating) and stored
  `assurance: "signed"` in one transaction. The same rating id again is answered with the same
  receipt (the pad keeps an unsent rating and re-sends it until it has one: exactly once).
* `POST /pad/api/rate-later` `{case_id, pad_id, t, sig}`: the rate-later link and its QR
  (PNG data URL) for the case on the `not_rated` screen, only then and only to the proven pad;
  it closes the on-the-spot rating and is recorded in `rate_later_issues`.
* `GET /pad/api/photo?pad_id=&t=&sig=`: the photo of the clerk signed in at the pad's window.
* `POST /pad/api/touch` `{case_id, pad_id, t, sig}`: the citizen is still at it (any tap or
  keystroke on the rating screens): the open rating's period starts again now, so a started
  rating never runs out under the citizen's finger. Only the proven pad, only the case its
  window's pad shows as `rating`.
* `POST /pad/api/reopen` `{case_id, pad_id, t, sig}`: "现在评价" on the rate-later screen: the
  case on the pad's `not_rated` screen opens again for a new period (the same challenge); the
  rate-later link stays valid but a case is rated once only (ratings.case_id is unique).

Every route checks the Host (and Origin) against the configured names (pad_guard.check_host).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import zlib
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from hall_server import followups, rate_later
from hall_server import schema as t
from hall_server.core import JSON, Hall, hall_of, json_response, ms_from_iso
from hall_server.db import Tx, iso_ms, now_ms
from hall_server.errors import ApiError
from hall_server.pad_guard import (
    PollSlot,
    check_host,
    check_proof,
    claim_proof_op,
    paired_pad_row,
)
from hall_server.rating_check import _err, challenge_state, check_rating, close_challenge

log = logging.getLogger("hall_server")
router = APIRouter(include_in_schema=False)

LONG_POLL_S = 20.0
RECHECK_S = 2.0  # time-driven screen changes (rating -> not_rated) need no event
MAX_BODY = 64 * 1024
SEEN_EVERY_MS = 15_000  # pads.last_seen_ms is written at most this often per pad
BAD_LEVELS = frozenset({"dissatisfied", "very_dissatisfied"})

_STATIC = {
    "": ("index.html", "text/html; charset=utf-8"),
    "index.html": ("index.html", "text/html; charset=utf-8"),
    "pad.css": ("pad.css", "text/css; charset=utf-8"),
    "pad.js": ("pad.js", "text/javascript; charset=utf-8"),
    "vendor/nacl-fast.min.js": ("vendor/nacl-fast.min.js", "text/javascript; charset=utf-8"),
}
CSP = ("default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


# ---- the page ------------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _asset(name: str) -> bytes:
    return (resources.files("hall_server") / "pad_page" / name).read_bytes()


# ---- the screen of a window ------------------------------------------------------------------------
def _card(conn: Connection, w: Any) -> JSON | None:
    if w["staff_no"] is None:
        return None
    s = conn.execute(select(t.staff.c.name_zh, t.staff.c.name_en, t.staff.c.photo)
                     .where(t.staff.c.staff_no == w["staff_no"])).first()
    return {"staff_no": w["staff_no"], "name_zh": s[0] if s else "", "name_en": s[1] if s else "",
            "window_no": int(w["no"]), "window_name_zh": w["name_zh"], "window_name_en": w["name_en"],
            "has_photo": bool(s and s[2])}


def _current(conn: Connection, window_no: int, since_ms: int) -> Any:
    """The window's most recent rating challenge issued after `since_ms`, with its case."""
    return conn.execute(
        select(t.rating_challenges, t.cases.c.case_no, t.cases.c.matter_code, t.cases.c.completed_ms)
        .join(t.cases, t.cases.c.id == t.rating_challenges.c.case_id)
        .where(t.cases.c.window_no == window_no, t.rating_challenges.c.issued_ms >= since_ms)
        .order_by(t.rating_challenges.c.issued_ms.desc()).limit(1)
    ).mappings().first()


def screen_of(conn: Connection, hall: Hall, window_no: int, now: int) -> JSON:
    """What the pad at `window_no` shows now (see the module docstring)."""
    s = hall.settings
    open_ms, later_ms = s.pad_rating_seconds * 1000, s.pad_not_rated_seconds * 1000
    w = conn.execute(select(t.windows).where(t.windows.c.no == window_no)).mappings().first()
    if w is None:
        return {"screen": "paused", "card": None, "paused": {"zh": "本窗口暂停服务",
                                                             "en": "This window is not serving now"}}
    card = _card(conn, w)
    ch = _current(conn, window_no, now - open_ms - later_ms)
    if ch is not None:
        r = conn.execute(select(t.ratings.c.received_ms).where(
            t.ratings.c.case_id == ch["case_id"])).first()
        state = challenge_state(ch, r is not None, now, open_ms)
        if state == "rated" and r is not None and now < int(r[0]) + s.pad_thanks_seconds * 1000:
            return {"screen": "thanks", "card": card, "case_id": int(ch["case_id"])}
        if state == "open":
            return {"screen": "rating", "card": card, "request": _request(conn, hall, ch, window_no)}
        if (state == "closed" and ch["completed_ms"] is not None
                and now < int(ch["issued_ms"]) + open_ms + later_ms):
            return {"screen": "not_rated", "card": card, "case_id": int(ch["case_id"]),
                    "rate_later_days": hall.rules.rate_later_days}
    if w["state"] == "paused":
        zh, en = "暂停服务", "Service paused"
        if w["pause_reason_code"]:
            pr = conn.execute(select(t.pause_reasons.c.public_zh, t.pause_reasons.c.public_en)
                              .where(t.pause_reasons.c.code == w["pause_reason_code"])).first()
            if pr is not None:
                zh, en = pr[0] or zh, pr[1] or en
        return {"screen": "paused", "card": card, "paused": {"zh": zh, "en": en}}
    if w["state"] == "closed" or card is None:
        return {"screen": "paused", "card": card,
                "paused": {"zh": "本窗口暂停服务", "en": "This window is not serving now"}}
    return {"screen": "idle", "card": card}


def _request(conn: Connection, hall: Hall, ch: Any, window_no: int) -> JSON:
    zh = en = ""
    if ch["matter_code"]:
        m = conn.execute(select(t.matters.c.name_zh, t.matters.c.name_en)
                         .where(t.matters.c.code == ch["matter_code"])).first()
        if m is not None:
            zh, en = m[0], m[1]
    rows = conn.execute(select(t.rating_reasons).order_by(t.rating_reasons.c.position)).mappings().all()
    return {"case_id": int(ch["case_id"]), "case_no": ch["case_no"], "window_no": window_no,
            "matter_name_zh": zh, "matter_name_en": en, "challenge": ch["challenge"],
            "reasons_version": rows[0]["version"] if rows else "",
            "reasons": [{"code": r["code"], "text_zh": r["text_zh"], "text_en": r["text_en"]}
                        for r in rows],
            "timeout_s": hall.settings.pad_rating_seconds,
            # when the period ends, in server time (the pad maps it with `server_ms`)
            "open_until_ms": int(ch["issued_ms"]) + hall.settings.pad_rating_seconds * 1000}


def _seq(screen: JSON) -> int:
    return zlib.crc32(json.dumps(screen, sort_keys=True, ensure_ascii=False).encode()) or 1


async def _proven_pad(request: Request, pad_id: str, pad_time: int, sig: str) -> Any:
    """The paired pad row if the proof is good (403 otherwise); marks it seen."""
    hall = hall_of(request)
    pad = await hall.store.read(lambda c: paired_pad_row(c, pad_id))
    check_proof(hall, pad, pad_id, pad_time, sig)
    now = now_ms()
    seen = pad["last_seen_ms"] is None or now - int(pad["last_seen_ms"]) >= SEEN_EVERY_MS

    def claim(tx: Tx) -> bool:
        # Good once in the whole hall (every server process), not only in this one's memory.
        if not claim_proof_op(tx.conn, pad_id, pad_time, now):
            return False
        if seen:
            tx.conn.execute(t.pads.update().where(t.pads.c.pad_id == pad_id)
                            .values(last_seen_ms=now))
        return True

    if not await hall.store.write(claim):
        raise _err(403, "pad_proof_required", {"reason": "replayed"})
    return pad


PadId = Annotated[str, Query(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
PadTime = Annotated[int, Query(alias="t", ge=0, le=2**53)]
PadSig = Annotated[str, Query(pattern=r"^[A-Za-z0-9_-]{1,200}$")]


@router.get("/pad/api/state")
async def pad_state(request: Request, pad_id: PadId, t_: PadTime, sig: PadSig,
                    since: Annotated[int, Query(ge=0, le=2**32)] = 0) -> Response:
    check_host(request)
    hall = hall_of(request)
    pad = await _proven_pad(request, pad_id, t_, sig)
    window_no = int(pad["window_no"])
    address = request.client.host if request.client else "?"
    with PollSlot(hall, address):
        sub = hall.broker.subscribe(window_no, set()) if hall.broker is not None else None
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + LONG_POLL_S
            while True:
                screen = await hall.store.read(lambda c: screen_of(c, hall, window_no, now_ms()))
                seq = _seq(screen)
                left = deadline - loop.time()
                if seq != since or left <= 0 or await request.is_disconnected():
                    break
                try:
                    if sub is None:
                        await asyncio.sleep(min(RECHECK_S, left))
                    else:
                        ev = await asyncio.wait_for(sub.queue.get(), timeout=min(RECHECK_S, left))
                        if ev is None:  # shutting down
                            break
                except TimeoutError:
                    pass
        finally:
            if sub is not None:
                hall.broker.unsubscribe(sub)
    return json_response({"seq": seq, "paired": True, "pad_id": pad_id, **screen,
                          "prefs": _prefs(hall), "server_ms": now_ms()})


def _prefs(hall: Hall) -> JSON:
    """The hall's settings for the page (the same for every window: not part of `seq`)."""
    s = hall.settings
    return {"speak": s.pad_speak, "high_contrast": s.pad_high_contrast,
            "warn_s": s.pad_warn_seconds, "timeout_s": s.pad_rating_seconds}


# ---- the signed rating ---------------------------------------------------------------------------------
class PadRatingIn(BaseModel):
    """The pad's message as pad.js sends it (strict types: a string is never a number)."""

    model_config = ConfigDict(strict=True, extra="ignore")

    rating_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
    case_id: Annotated[int, Field(ge=0, le=2**53)]
    window_no: Annotated[int, Field(ge=0, le=2**31)]
    level: Annotated[str, Field(pattern=r"^(very_satisfied|satisfied|basic|dissatisfied|very_dissatisfied)$")]
    reasons: Annotated[list[Annotated[str, Field(min_length=1, max_length=32)]], Field(max_length=20)] = []
    comment: Annotated[str, Field(max_length=2000)] = ""
    challenge: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    rated_at: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")]
    pad_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
    pad_counter: Annotated[int, Field(ge=1, le=2**53)]
    signature: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,200}$")]

    @property
    def rated_dt(self) -> datetime:
        return datetime.fromisoformat(self.rated_at.replace("Z", "+00:00"))


class _CheckView:
    """PadRatingIn as check_rating sees a rating (rated_at a datetime)."""

    def __init__(self, m: PadRatingIn) -> None:
        self.id, self.case_id, self.window_no, self.level = m.rating_id, m.case_id, m.window_no, m.level
        self.reasons, self.comment, self.source = m.reasons, m.comment, "pad"
        self.challenge, self.pad_id, self.pad_counter = m.challenge, m.pad_id, m.pad_counter
        self.signature, self.rated_at = m.signature, m.rated_dt


def _bad(status: int, code: str, zh: str, en: str, details: JSON | None = None) -> ApiError:
    return ApiError(status, code, details, message_zh=zh, message_en=en)


async def _read_json(request: Request) -> Any:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise _bad(413, "too_large", "内容过大", "The body is too large", {"limit": MAX_BODY})
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _bad(400, "bad_json", "内容须为 UTF-8 JSON", "The body must be UTF-8 JSON") from None


def _receipt(r: Any) -> JSON:
    return {"rating_id": r["id"], "case_id": int(r["case_id"]), "assurance": r["assurance"],
            "received_at": iso_ms(r["received_ms"])}


@router.post("/pad/api/rating")
async def pad_rating(request: Request) -> Response:
    check_host(request)
    hall = hall_of(request)
    raw = await _read_json(request)
    try:
        m = PadRatingIn.model_validate(raw)
        m.rated_at.encode("utf-8")
        m.comment.encode("utf-8")
        if len(set(m.reasons)) != len(m.reasons) or not all(r.isascii() for r in m.reasons):
            raise ValueError("reasons")
        rated_ms = ms_from_iso(m.rated_dt)
    except (ValidationError, ValueError, UnicodeEncodeError) as exc:
        fields = [".".join(str(x) for x in e["loc"]) for e in exc.errors()] if isinstance(
            exc, ValidationError) else [str(exc)[:40]]
        raise _bad(400, "bad_field", "字段缺失或格式错误", "A field is missing or invalid",
                   {"fields": fields[:10]}) from None
    assert rated_ms is not None

    def fn(tx: Tx) -> JSON:
        conn = tx.conn
        old = conn.execute(select(t.ratings).where(t.ratings.c.id == m.rating_id)).mappings().first()
        if old is not None:
            if old["case_id"] == m.case_id and old["pad_id"] == m.pad_id:
                return _receipt(old)  # the pad re-sent after a lost answer: same receipt
            raise _bad(409, "rating_id_conflict", "评价编号已被使用", "The rating id is taken")
        case = conn.execute(select(t.cases.c.id).where(t.cases.c.id == m.case_id)).first()
        if case is None:
            raise ApiError(404, "not_found", {"case_id": m.case_id})
        if m.reasons:
            known = set(conn.execute(select(t.rating_reasons.c.code)).scalars())
            unknown = [r for r in m.reasons if r not in known]
            if unknown:
                raise ApiError(422, "unknown_rating_reason", {"unknown": unknown})
        if m.level in BAD_LEVELS and not m.reasons and not m.comment.strip():
            raise ApiError(422, "reason_required")
        if conn.execute(select(t.ratings.c.id).where(t.ratings.c.case_id == m.case_id)).first():
            raise _err(409, "case_already_rated", {"case_id": m.case_id})
        now = now_ms()
        assurance = check_rating(conn, _CheckView(m), now)
        version = conn.execute(select(t.rating_reasons.c.version).limit(1)).scalar() or ""
        conn.execute(t.ratings.insert().values(
            id=m.rating_id, case_id=m.case_id, window_no=m.window_no, level=m.level,
            reasons=json.dumps(m.reasons), reasons_version=version, comment=m.comment,
            source="pad", rated_ms=rated_ms, received_ms=now, pad_id=m.pad_id,
            pad_counter=m.pad_counter, challenge=m.challenge, signature=m.signature,
            assurance=assurance, bad=m.level in BAD_LEVELS, followed_up=False,
            day=hall.day_of(rated_ms)))
        followups.open_for_rating(conn, m.rating_id)  # a bad rating opens its follow-up
        tx.emit("rating.stored", {"case_id": m.case_id, "rating_id": m.rating_id,
                                  "source": "pad", "assurance": assurance}, window_no=m.window_no)
        row = conn.execute(select(t.ratings).where(t.ratings.c.id == m.rating_id)).mappings().one()
        return _receipt(row)

    try:
        out = await hall.store.write(fn)
    except IntegrityError:  # a twin of this message committed first, or the case got rated
        row = await hall.store.read(lambda c: c.execute(
            select(t.ratings).where(t.ratings.c.id == m.rating_id)).mappings().first())
        if row is None or row["case_id"] != m.case_id:
            raise _err(409, "case_already_rated", {"case_id": m.case_id}) from None
        out = _receipt(row)
    return json_response(out)


# ---- the rate-later link, to the proven pad only ------------------------------------------------------------
class LinkIn(BaseModel):
    model_config = ConfigDict(strict=True)

    case_id: Annotated[int, Field(ge=0, le=2**53)]
    pad_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
    t: Annotated[int, Field(ge=0, le=2**53)]
    sig: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,200}$")]


def qr_data_url(text: str) -> str:
    import segno

    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=8, border=2)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@router.post("/pad/api/rate-later")
async def pad_rate_later(request: Request) -> Response:
    check_host(request)
    hall = hall_of(request)
    try:
        body = LinkIn.model_validate(await _read_json(request))
    except ValidationError:
        raise _bad(400, "bad_field", "字段缺失或格式错误", "A field is missing or invalid") from None
    pad = await _proven_pad(request, body.pad_id, body.t, body.sig)
    window_no = int(pad["window_no"])

    def fn(tx: Tx) -> None:
        now = now_ms()
        screen = screen_of(tx.conn, hall, window_no, now)
        # Only the case on the pad's "not rated" screen right now: nothing after the screen
        # went back to idle, nothing for another case or window.
        if screen["screen"] != "not_rated" or screen.get("case_id") != body.case_id:
            raise _bad(409, "not_offered", "此办件当前不提供稍后评价链接",
                       "No rate-later link is offered for this case now", {"case_id": body.case_id})
        close_challenge(tx.conn, body.case_id, now)
        tx.conn.execute(t.rate_later_issues.insert().values(
            case_id=body.case_id, issued_to="pad", staff_no=None, pad_id=body.pad_id, at_ms=now))

    await hall.store.write(fn)
    url = await rate_later.link_for(request, body.case_id)
    png = await anyio.to_thread.run_sync(qr_data_url, url)
    return json_response({"case_id": body.case_id, "url": url, "qr": png,
                          "rate_later_days": hall.rules.rate_later_days})


@router.post("/pad/api/touch")
async def pad_touch(request: Request) -> Response:
    """The citizen touched the rating screen: its period starts again (module docstring)."""
    return await _extend(request, "rating")


@router.post("/pad/api/reopen")
async def pad_reopen(request: Request) -> Response:
    """"现在评价" on the rate-later screen: the case opens again for a new period."""
    return await _extend(request, "not_rated")


async def _extend(request: Request, on_screen: str) -> Response:
    check_host(request)
    hall = hall_of(request)
    try:
        body = LinkIn.model_validate(await _read_json(request))
    except ValidationError:
        raise _bad(400, "bad_field", "字段缺失或格式错误", "A field is missing or invalid") from None
    pad = await _proven_pad(request, body.pad_id, body.t, body.sig)
    window_no = int(pad["window_no"])

    def fn(tx: Tx) -> int:
        now = now_ms()
        screen = screen_of(tx.conn, hall, window_no, now)
        shown = screen.get("request", {}).get("case_id") if on_screen == "rating" else screen.get("case_id")
        # Only the case this pad's window shows on that screen now: never another window's
        # case, never a rated case, never after the screen moved on.
        if screen["screen"] != on_screen or shown != body.case_id:
            raise _bad(409, "not_offered", "此办件当前不在评价器上",
                       "This case is not on the pad now", {"case_id": body.case_id})
        tx.conn.execute(t.rating_challenges.update()
                        .where(t.rating_challenges.c.case_id == body.case_id)
                        # a touch only restarts the open period; "现在评价" also reopens
                        .values(issued_ms=now, **({"closed_ms": None} if on_screen == "not_rated" else {})))
        if on_screen == "not_rated":
            log.info("pad %s reopened the rating of case %s", body.pad_id, body.case_id)
        return now

    now = await hall.store.write(fn)
    return json_response({"case_id": body.case_id, "server_ms": now,
                          "open_until_ms": now + hall.settings.pad_rating_seconds * 1000})


@router.get("/pad/api/photo")
async def pad_photo(request: Request, pad_id: PadId, t_: PadTime, sig: PadSig) -> Response:
    check_host(request)
    hall = hall_of(request)
    pad = await _proven_pad(request, pad_id, t_, sig)

    def fn(conn: Connection) -> bytes | None:
        w = conn.execute(select(t.windows.c.staff_no).where(t.windows.c.no == pad["window_no"])).scalar()
        if w is None:
            return None
        photo = conn.execute(select(t.staff.c.photo).where(t.staff.c.staff_no == w)).scalar()
        return bytes(photo) if photo else None

    photo = await hall.store.read(fn)
    if not photo:
        raise ApiError(404, "not_found", {"photo": None})
    return Response(photo, media_type="image/png", headers={"Cache-Control": "no-store", **{
        k: v for k, v in _HEADERS.items() if k != "Cache-Control"}})


# Last: the catch-all page route must not shadow /pad/api/*.
@router.get("/pad", include_in_schema=False)
async def pad_root(request: Request) -> Response:
    check_host(request)
    return Response(status_code=308, headers={"Location": "/pad/"})


@router.get("/pad/{name:path}")
async def pad_static(request: Request, name: str) -> Response:
    check_host(request)
    if name.startswith("api/"):
        raise ApiError(404, "not_found", {"path": "/pad/" + name[:100]})
    hit = _STATIC.get(name)
    if hit is None:
        raise ApiError(404, "not_found", {"path": "/pad/" + name[:100]})
    return Response(_asset(hit[0]), media_type=hit[1], headers=_HEADERS)
