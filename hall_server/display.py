"""The call display (叫号屏): the waiting-area TV and the small display above each window.

Pages (outside /api/v1, server-rendered, a little plain JavaScript, no external resources):

- `GET /display` — the hall TV: the call being made now in very large type, the last calls
  (number -> window), and the current number of every window; each call is announced
  ("请 A023 号到 3 号窗口办理", and in English where the hall switched it on).
- `GET /display/window/{no}` — the small display above one window: its current number.
- `GET /display/events` — a narrow SSE stream for the pages. It carries ticket numbers, window
  numbers and window states only: never staff, matters, categories, case or ticket ids. The
  staff stream `/api/v1/events` is untouched and still needs a staff token.
- `GET /display/audio/{event_id}.wav` — the announcement of one call or recall, made on the
  server by espeak-ng's Mandarin voice (and its English one), cached on disk; used where the
  browser has no Chinese speech-synthesis voice.

Who may open them: a device holding a display key that IT made with `hall-server display token`
(for the whole hall or one window). The key is an HMAC of its scope and the hall's display
epoch under a key derived from the server's secret (its 0600 file, never the database), so nothing is stored
per key; `hall-server display revoke` bumps the epoch, which ends every key and every open
stream (checked at each ping). The TV opens `/display?k=<key>` once; the key moves into an
HttpOnly, SameSite=Strict cookie limited to /display and the address is cleaned by a redirect.
Everyone else, including signed-in staff, gets a bilingual 401 page and no data.
"""

from __future__ import annotations

import array
import asyncio
import base64
import hashlib
import hmac
import html
import json
import logging
import math
import os
import re
import shutil
import string
import tempfile
import wave
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from io import BytesIO
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from sqlalchemy import Connection, func, select

from hall_server import schema as t
from hall_server.core import Hall, get_meta, hall_of, set_meta
from hall_server.db import PendingEvent, Tx, now_ms
from hall_server.deps import MAX_INT, IdPath
from hall_server.errors import ApiError

log = logging.getLogger("hall_server.display")

router = APIRouter(include_in_schema=False)

COOKIE = "hall_display"
COOKIE_PATH = "/display"
COOKIE_MAX_AGE = 400 * 24 * 3600  # the longest a browser keeps a cookie (Chromium's cap)
RECENT = 6  # calls kept: the one being made now and five before it (what the TV has room for)
FRESH_MS = 60_000  # a call older than this (replayed after an outage) is shown, not spoken
META_EPOCH = "display_epoch"
META_ENGLISH = "display_english"
_KEY_RE = re.compile(r"^d1\.(hall|w[0-9]{1,9})\.([0-9]{1,9})\.([A-Za-z0-9_-]{22})$")
CALL_TYPES = {"ticket.called": "call", "ticket.recalled": "recall"}
END_TYPES = frozenset({"ticket.completed", "ticket.no_show", "ticket.transferred",
                       "ticket.suspended", "ticket.returned"})
WINDOW_TYPES = frozenset({"window.opened", "window.paused", "window.resumed", "window.closed"})


# ---- the display key ---------------------------------------------------------------------------
def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def derive_key(server_secret: bytes) -> bytes:
    """A key for display keys only: a display key can never pass for a staff token or a
    rate-later link, and the reverse."""
    return hmac.new(server_secret, b"hall-display-v1", hashlib.sha256).digest()


def make_key(key: bytes, scope: str, epoch: int) -> str:
    """`scope` is "hall" or "w<window no>"."""
    mac = hmac.new(key, f"display:{scope}:{epoch}".encode(), hashlib.sha256).digest()[:16]
    return f"d1.{scope}.{epoch}.{_b64u(mac)}"


def parse_key(key: bytes, token: str, epoch: int) -> str | None:
    """The scope a key was made for, or None for anything forged, cut, or from before a revoke."""
    m = _KEY_RE.match(token or "")
    if m is None or int(m.group(2)) != epoch:
        return None
    return m.group(1) if hmac.compare_digest(make_key(key, m.group(1), epoch), token) else None


def scope_for(window_no: int | None) -> str:
    return "hall" if window_no is None else f"w{window_no}"


def read_epoch(conn: Connection) -> int:
    raw = get_meta(conn, META_EPOCH)
    return int(raw) if raw and raw.isdigit() else 0


def read_english(conn: Connection) -> bool:
    return get_meta(conn, META_ENGLISH) == "1"


# ---- the IT operations (hall-server display …) -----------------------------------------------
def key_op(tx: Tx, window_no: int | None, secret: bytes) -> dict[str, Any]:
    """The display key for the hall (None) or one window, valid until the next revoke."""
    if window_no is not None and tx.conn.execute(
            select(t.windows.c.no).where(t.windows.c.no == window_no)).first() is None:
        raise ApiError(422, "unknown_window", {"window_no": window_no})
    epoch = read_epoch(tx.conn)
    key = make_key(derive_key(secret), scope_for(window_no), epoch)
    path = COOKIE_PATH if window_no is None else f"{COOKIE_PATH}/window/{window_no}"
    return {"scope": scope_for(window_no), "epoch": epoch, "key": key, "path": f"{path}?k={key}"}


def revoke_op(tx: Tx) -> dict[str, Any]:
    """Every display key made so far stops working; open displays are signed out within a ping."""
    epoch = read_epoch(tx.conn) + 1
    set_meta(tx.conn, META_EPOCH, str(epoch))
    return {"epoch": epoch}


def english_op(tx: Tx, on: bool | None) -> dict[str, Any]:
    """Switch the English announcement on/off (None: only report it)."""
    if on is not None:
        set_meta(tx.conn, META_ENGLISH, "1" if on else "0")
    return {"english": read_english(tx.conn)}


# ---- who is asking -----------------------------------------------------------------------------
_KEYS: weakref.WeakKeyDictionary[Hall, bytes] = weakref.WeakKeyDictionary()


async def _display_key(hall: Hall) -> bytes:
    key = _KEYS.get(hall)
    if key is None:
        key = derive_key(hall.server_secret)
        _KEYS[hall] = key
    return key


async def _scope(request: Request, token: str | None = None) -> str | None:
    """The scope of the caller's display key (the `k` given, else the cookie), or None."""
    token = token if token is not None else request.cookies.get(COOKIE, "")
    if not token or len(token) > 80:
        return None
    hall = hall_of(request)
    epoch = await hall.store.read(read_epoch)
    return parse_key(await _display_key(hall), token, epoch)


def _allowed(scope: str, window_no: int | None) -> bool:
    return scope == "hall" or (window_no is not None and scope == f"w{window_no}")


async def _require(request: Request, window_no: int | None) -> str:
    scope = await _scope(request)
    if scope is None:
        log.warning("display: refused %s without a valid display key", request.url.path)
        raise ApiError(401, "unauthorized", message_zh="此显示屏未设置或显示密钥已失效，请联系信息管理员",
                       message_en="This display is not set up or its key was revoked; ask IT")
    if not _allowed(scope, window_no):
        raise ApiError(403, "forbidden", {"scope": scope},
                       message_zh="此显示密钥只能用于它所属的窗口",
                       message_en="This display key is for another window")
    return scope


# ---- what is said ------------------------------------------------------------------------------
_ZH_DIGITS = "零一二三四五六七八九"
_EN_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_NUMBER_RE = re.compile(r"^[A-Za-z0-9]{1,16}$")


def zh_count(n: int) -> str:
    """A window number as it is said in Mandarin (3 -> 三, 12 -> 十二, 20 -> 二十); longer
    numbers digit by digit."""
    d = _ZH_DIGITS
    if n < 10:
        return d[n]
    if n < 20:
        return "十" + (d[n % 10] if n % 10 else "")
    if n < 100:
        return d[n // 10] + "十" + (d[n % 10] if n % 10 else "")
    return "".join(d[int(c)] for c in str(n))


def _spell_zh(number: str) -> str:
    # Hall callers read a ticket number digit by digit (A023: "A 零二三", never "A 二十三").
    out: list[str] = []
    for c in number:
        if c.isdigit():
            out.append(_ZH_DIGITS[int(c)])
        else:
            out.append(f" {c.upper()} ")
    return re.sub(r"\s+", " ", "".join(out)).strip()


def say_zh(number: str, window_no: int) -> str:
    return f"请 {_spell_zh(number)} 号到 {zh_count(window_no)} 号窗口办理"


def say_en(number: str, window_no: int) -> str:
    parts = [_EN_DIGITS[int(c)] if c.isdigit() else c.upper() for c in number]
    return f"Number {', '.join(parts)}, please go to window {window_no}."


def show_zh(number: str, window_no: int) -> str:
    return f"请 {number} 号到 {window_no} 号窗口办理"


def show_en(number: str, window_no: int) -> str:
    return f"Number {number}, please go to window {window_no}"


def _number(data: dict[str, Any]) -> str | None:
    tk = data.get("ticket")
    number = tk.get("number") if isinstance(tk, dict) else None
    return number if isinstance(number, str) and _NUMBER_RE.match(number) else None


# ---- the board: what the pages show ------------------------------------------------------------
def call_json(event_id: int, kind: str, number: str, window_no: int, at_ms: int, english: bool,
              now: int) -> dict[str, Any]:
    """One call as the display sees it: numbers, the window and the words; nothing else."""
    out: dict[str, Any] = {
        "id": event_id, "kind": kind, "number": number, "window_no": window_no,
        "age_ms": max(0, now - at_ms), "show_zh": show_zh(number, window_no),
        "show_en": show_en(number, window_no), "say_zh": say_zh(number, window_no),
    }
    if english:
        out["say_en"] = say_en(number, window_no)
    return out


@dataclass
class Board:
    hall_zh: str
    hall_en: str
    english: bool
    last_event_id: int
    windows: list[dict[str, Any]]
    recent: list[dict[str, Any]]
    # ticket id -> window, for the windows' current tickets: the stream turns a ticket's end
    # into "window N is free" without ever sending the ticket id.
    current: dict[int, int] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {"hall_zh": self.hall_zh, "hall_en": self.hall_en, "english": self.english,
                "windows": self.windows, "recent": self.recent}


def load_board(conn: Connection, hall: Hall, window_no: int | None) -> Board:
    """The board now, for the whole hall or one window, read in one go."""
    last = conn.execute(select(func.max(t.events.c.id))).scalar() or 0
    english = read_english(conn)
    q = select(t.windows.c.no, t.windows.c.state, t.windows.c.current_ticket_id,
               t.tickets.c.number).outerjoin(
        t.tickets, t.tickets.c.id == t.windows.c.current_ticket_id).order_by(t.windows.c.no)
    if window_no is not None:
        q = q.where(t.windows.c.no == window_no)
    windows: list[dict[str, Any]] = []
    current: dict[int, int] = {}
    for no, state, tid, number in conn.execute(q):
        windows.append({"no": int(no), "state": state, "current": number if tid is not None else None})
        if tid is not None:
            current[int(tid)] = int(no)
    # The last calls of today, newest first; a recall moves the call to the top.
    start, _ = hall.day_bounds_ms(hall.today())
    eq = (select(t.events.c.id, t.events.c.type, t.events.c.at_ms, t.events.c.window_no,
                 t.events.c.data)
          .where(t.events.c.type.in_(list(CALL_TYPES)), t.events.c.at_ms >= start)
          .order_by(t.events.c.id.desc()).limit(200))
    if window_no is not None:
        eq = eq.where(t.events.c.window_no == window_no)
    now = now_ms()
    recent: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for eid, typ, at, wno, data in conn.execute(eq):
        number = _number(json.loads(data))
        if number is None or wno is None or (number, int(wno)) in seen:
            continue
        seen.add((number, int(wno)))
        recent.append(call_json(int(eid), CALL_TYPES[typ], number, int(wno), int(at), english, now))
        if len(recent) >= RECENT:
            break
    return Board(get_meta(conn, "hall_name_zh") or "", get_meta(conn, "hall_name_en") or "",
                 english, int(last), windows, recent, current)


def _calls_after(conn: Connection, after: int, window_no: int | None) -> list[PendingEvent]:
    """The calls a display missed while it was away (at most the last RECENT of them)."""
    q = (select(t.events).where(t.events.c.id > after, t.events.c.type.in_(list(CALL_TYPES)))
         .order_by(t.events.c.id.desc()).limit(RECENT))
    if window_no is not None:
        q = q.where(t.events.c.window_no == window_no)
    rows = conn.execute(q).mappings().all()
    return [PendingEvent(int(r["id"]), r["type"], int(r["at_ms"]), r["window_no"], r["category"],
                         r["target_window_no"], json.loads(r["data"])) for r in reversed(rows)]


# ---- the stream --------------------------------------------------------------------------------
def _sse(name: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {body}\n\n".encode()


def translate(ev: PendingEvent, board: Board, window_no: int | None, now: int) -> bytes | None:
    """A hall event as the display may see it, or None. Updates `board.current`."""
    data = ev.data
    if ev.type in CALL_TYPES or ev.type == "ticket.resumed":
        tk = data.get("ticket") or {}
        number, wno = _number(data), tk.get("window_no")
        if number is None or not isinstance(wno, int):
            return None
        board.current = {k: v for k, v in board.current.items() if v != wno}
        board.current[int(tk["id"])] = wno
        if window_no is not None and wno != window_no:
            return None
        if ev.type == "ticket.resumed":
            return _sse("current", {"window_no": wno, "number": number}, ev.id)
        return _sse("call", call_json(ev.id, CALL_TYPES[ev.type], number, wno, ev.at_ms,
                                      board.english, now), ev.id)
    if ev.type in END_TYPES:
        tk = data.get("ticket") or {}
        wno = board.current.pop(int(tk.get("id", -1)), None)
        if wno is None or (window_no is not None and wno != window_no):
            return None
        return _sse("clear", {"window_no": wno, "number": _number(data)}, ev.id)
    if ev.type in WINDOW_TYPES:
        w = data.get("window") or {}
        wno, state = w.get("no"), w.get("state")
        if not isinstance(wno, int) or state not in ("open", "paused", "closed"):
            return None
        if window_no is not None and wno != window_no:
            return None
        return _sse("window", {"window_no": wno, "state": state}, ev.id)
    return None


_PING = PendingEvent(-1, "ping", 0, None, None, None, {})


async def display_stream(hall: Hall, token: str, window_no: int | None,
                         after: int | None) -> AsyncIterator[bytes]:
    # Subscribe first, then read the board: nothing falls between the two; what the board
    # already shows and the queue repeats is dropped by id.
    sub = hall.broker.subscribe(None, set())
    key = await _display_key(hall)
    try:
        yield b"retry: 2000\n\n"
        if after is not None:
            # Back after an outage: the calls it missed, newest last; the page speaks the ones
            # that are still fresh, then the board below puts every window right.
            missed = await hall.store.read(lambda c: _calls_after(c, after, window_no))
            english = await hall.store.read(read_english)
            now = now_ms()
            for m in missed:
                number, wno = _number(m.data), m.window_no
                if number is not None and wno is not None:
                    yield _sse("call", call_json(m.id, CALL_TYPES[m.type], number, wno, m.at_ms,
                                                 english, now), m.id)
        board = await hall.store.read(lambda c: load_board(c, hall, window_no))
        sent = board.last_event_id
        yield _sse("board", board.public(), sent)
        loop = asyncio.get_running_loop()
        ping = hall.settings.ping_seconds
        next_check = loop.time() + ping
        while True:
            ev: PendingEvent | None
            try:
                ev = await asyncio.wait_for(sub.queue.get(), timeout=max(0.0, next_check - loop.time()))
            except TimeoutError:
                ev = _PING
            if loop.time() >= next_check:
                # Every ping interval, busy or quiet: is the key still good (a revoke ends the
                # stream), and the English switch.
                next_check = loop.time() + ping
                epoch, board.english = await hall.store.read(lambda c: (read_epoch(c), read_english(c)))
                if parse_key(key, token, epoch) is None:
                    yield _sse("revoked", {})
                    return
            if ev is _PING:
                yield b": ping\n\n"
                continue
            if ev is None:
                return
            if ev.id <= sent:
                continue
            sent = ev.id
            out = translate(ev, board, window_no, now_ms())
            if out is not None:
                yield out
    finally:
        hall.broker.unsubscribe(sub)


# ---- the spoken clip -------------------------------------------------------------------------
ZH_VOICE = "cmn-latn-pinyin"  # see docs/display.md: plain `cmn` reads tone digits in English
EN_VOICE = "en"
SPEED = 140  # words per minute: a little slower than espeak's 175, for a large echoing hall
CACHE_FILES = 500


def _tone(rate: int, freq: float, seconds: float, amp: float = 0.30) -> array.array[int]:
    n = int(rate * seconds)
    out = array.array("h")
    for i in range(n):
        env = math.exp(-4.0 * i / n)
        out.append(int(32767 * amp * env * math.sin(2 * math.pi * freq * i / rate)))
    return out


@lru_cache(maxsize=4)
def chime_pcm(rate: int) -> bytes:
    """The two-tone "ding-dong" before every announcement (G5 then E5)."""
    pcm = _tone(rate, 784.0, 0.45) + _tone(rate, 659.3, 0.65)
    return pcm.tobytes()


def _wav(rate: int, pcm: bytes) -> bytes:
    buf = BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


@lru_cache(maxsize=1)
def chime_wav() -> bytes:
    return _wav(22050, chime_pcm(22050))


class Synth:
    """espeak-ng in a subprocess (never on the event loop), at most two at a time per process,
    one run per distinct text however many TVs ask, results kept in a file cache."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self.sem = asyncio.Semaphore(2)
        self.inflight: dict[str, asyncio.Future[bytes]] = {}

    @staticmethod
    def available() -> bool:
        return shutil.which("espeak-ng") is not None

    async def clip(self, parts: list[tuple[str, str]]) -> bytes:
        digest = hashlib.sha256(json.dumps([ZH_VOICE, EN_VOICE, SPEED, parts]).encode()).hexdigest()
        path = self.cache_dir / f"{digest}.wav"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        fut = self.inflight.get(digest)
        if fut is not None:
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self.inflight[digest] = fut
        try:
            data = await self._make(parts)
            await asyncio.to_thread(self._store, path, data)
            fut.set_result(data)
            return data
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody else waits
            raise
        finally:
            del self.inflight[digest]

    async def _make(self, parts: list[tuple[str, str]]) -> bytes:
        async with self.sem:
            with tempfile.TemporaryDirectory(prefix="hall-say-") as tmp:
                files: list[Path] = []
                for i, (voice, text) in enumerate(parts):
                    out = Path(tmp) / f"{i}.wav"
                    # argv, never a shell; the text holds only our words, A-Z and digits.
                    proc = await asyncio.create_subprocess_exec(
                        "espeak-ng", "-v", voice, "-s", str(SPEED), "-w", str(out), text,
                        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
                    try:
                        _, err = await asyncio.wait_for(proc.communicate(), timeout=15)
                    except TimeoutError:
                        proc.kill()
                        await proc.wait()
                        raise RuntimeError("espeak-ng took longer than 15 s") from None
                    if proc.returncode != 0:
                        raise RuntimeError(f"espeak-ng failed ({proc.returncode}): "
                                           f"{err.decode(errors='replace')[:200]}")
                    files.append(out)
                # Joining the samples is CPU work: off the event loop.
                return await asyncio.to_thread(_join, files)

    def _store(self, path: Path, data: bytes) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        files = sorted(self.cache_dir.glob("*.wav"), key=lambda p: p.stat().st_mtime)
        for old in files[:-CACHE_FILES]:
            old.unlink(missing_ok=True)


def _join(files: list[Path]) -> bytes:
    """One WAV: the chime, a breath, then each language's words with a pause between."""
    rate = 0
    pcm = bytearray()
    for f in files:
        with wave.open(str(f), "rb") as w:
            if w.getnchannels() != 1 or w.getsampwidth() != 2:
                raise RuntimeError("espeak-ng wrote an unexpected WAV format")
            if not rate:
                rate = w.getframerate()
                pcm += chime_pcm(rate) + bytes(2 * int(rate * 0.25))
            elif w.getframerate() != rate:
                raise RuntimeError("espeak-ng voices differ in sample rate")
            else:
                pcm += bytes(2 * int(rate * 0.6))  # a pause between the languages
            pcm += w.readframes(w.getnframes())
    return _wav(rate, bytes(pcm))


_SYNTHS: weakref.WeakKeyDictionary[Hall, Synth] = weakref.WeakKeyDictionary()


def synth_of(hall: Hall) -> Synth:
    s = _SYNTHS.get(hall)
    if s is None:
        s = _SYNTHS[hall] = Synth(hall.settings.data_dir / "display-audio")
    return s


# ---- pages -------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _assets() -> tuple[string.Template, str, str]:
    web = resources.files("hall_server") / "web"
    return (string.Template((web / "display.html").read_text(encoding="utf-8")),
            (web / "display.css").read_text(encoding="utf-8"),
            (web / "display.js").read_text(encoding="utf-8"))


def _sha(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


@lru_cache(maxsize=1)
def _csp() -> str:
    _, style, script = _assets()
    # The one inline style and script are allowed by their hashes; the page may talk to and
    # play audio from this server only; nothing else loads, nothing frames it.
    return (f"default-src 'none'; script-src 'sha256-{_sha(script)}'; style-src 'sha256-{_sha(style)}'; "
            "connect-src 'self'; media-src 'self'; img-src 'self'; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'")


def _headers() -> dict[str, str]:
    return {"Content-Security-Policy": _csp(), "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"}


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _json_block(data: dict[str, Any]) -> str:
    # Inside <script type="application/json">: "<" escaped so no "</script>" can close it.
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")


def _bi(zh: str, en: str, cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<span{c}>{e(zh)}</span> <span class="en" lang="en">{e(en)}</span>'


STATE_TEXT = {"open": ("等待叫号", "Waiting"), "paused": ("暂停服务", "Paused"),
              "closed": ("未开放", "Closed")}


def _tile(w: dict[str, Any]) -> str:
    number = w["current"]
    if number:
        value = f'<span class="wnum">{e(number)}</span>'
    else:
        zh, en = STATE_TEXT.get(w["state"], STATE_TEXT["closed"])
        value = f'<span class="wstate">{_bi(zh, en)}</span>'
    # The tile says "N 号窗口" only: "Window N" did not fit 7 tiles a row, and the number reads
    # the same in both languages (the heading above the tiles is bilingual).
    return (f'<li class="tile state-{e(w["state"])}{" busy" if number else ""}" data-no="{w["no"]}">'
            f'<span class="wname">{e(w["no"])} 号窗口</span>{value}</li>')


def tile_columns(n: int) -> int:
    """Columns of window tiles: two rows up to 20 windows, then three (the page's `cols-N`)."""
    rows = 2 if n <= 20 else 3
    return max(4, min(10, math.ceil(n / rows)))


def _hall_body(board: Board) -> str:
    now = board.recent[0] if board.recent else None
    if now is not None:
        hero = (f'<p class="now-line"><span class="num" id="now-num">{e(now["number"])}</span>'
                f'<span class="arrow" aria-hidden="true">→</span>'
                f'<span class="win" id="now-win">{e(now["window_no"])}<small>号窗口</small></span></p>'
                f'<p class="say" id="now-say">{e(now["show_zh"])}</p>'
                f'<p class="say-en" id="now-say-en" lang="en">{e(now["show_en"])}</p>')
    else:
        hero = ('<p class="now-line idle"><span class="num" id="now-num"></span></p>'
                '<p class="say" id="now-say">请留意叫号</p>'
                '<p class="say-en" id="now-say-en" lang="en">Please wait for your number</p>')
    rows = "".join(
        f'<li><span class="num">{e(c["number"])}</span><span class="win">{e(c["window_no"])} 号窗口'
        f' <span class="en" lang="en">Window {e(c["window_no"])}</span></span></li>'
        for c in board.recent[1:])
    tiles = "".join(_tile(w) for w in board.windows)
    return (
        f'<section class="now" id="now" aria-labelledby="now-h"><h2 id="now-h">{_bi("正在呼叫", "Now calling")}</h2>'
        f'<div id="now-body" role="status">{hero}</div></section>'
        f'<section class="recent" aria-labelledby="recent-h"><h2 id="recent-h">{_bi("最近呼叫", "Recent calls")}</h2>'
        f'<ol id="recent">{rows}</ol></section>'
        f'<section class="windows" aria-labelledby="windows-h"><h2 id="windows-h">{_bi("各窗口当前号码", "Now serving at each window")}</h2>'
        f'<ul id="windows" class="cols-{tile_columns(len(board.windows))}">{tiles}</ul></section>'
    )


def _window_body(board: Board, window_no: int) -> str:
    w = board.windows[0]
    number = w["current"]
    if number:
        big = f'<p class="big" id="w-num">{e(number)}</p>'
        zh, en = "请到本窗口办理", "Please come to this window"
    else:
        big = '<p class="big" id="w-num"></p>'
        zh, en = STATE_TEXT.get(w["state"], STATE_TEXT["closed"])
    return (f'<section class="one" aria-labelledby="one-h"><h2 id="one-h">{_bi("当前号码", "Now serving")}</h2>'
            f'<div role="status">{big}<p class="one-state" id="w-state">{_bi(zh, en)}</p></div></section>')


def _render(board: Board, window_no: int | None, voice: bool) -> HTMLResponse:
    frame, style, script = _assets()
    if window_no is None:
        title = f"{board.hall_zh} 叫号屏".strip()
        heading = _bi(board.hall_zh or "叫号屏", board.hall_en or "Call display")
        body = _hall_body(board)
    else:
        title = f"{window_no} 号窗口"
        heading = _bi(f"{window_no} 号窗口", f"Window {window_no}")
        body = _window_body(board, window_no)
    doc = frame.substitute(
        title=e(title), style=style, page="hall" if window_no is None else "window",
        window="" if window_no is None else str(window_no), after=str(board.last_event_id),
        voice="1" if voice else "0", heading=heading, body=body,
        scripts=(f'<script type="application/json" id="board-data">{_json_block(board.public())}</script>\n'
                 f"<script>{script}</script>"),
    )
    return HTMLResponse(doc, headers=_headers())


def _refused(err: ApiError) -> HTMLResponse:
    frame, style, _ = _assets()
    body = (f'<section class="refused"><h2>{e(err.message_zh)}</h2>'
            f'<p lang="en">{e(err.message_en)}</p>'
            '<p class="hint">hall-server display token --help</p></section>')
    doc = frame.substitute(title="叫号屏 Call display", style=style, page="refused", window="",
                           after="", voice="0", heading=_bi("叫号屏", "Call display"), body=body,
                           scripts="")
    return HTMLResponse(doc, status_code=err.status, headers=_headers())


async def _page(request: Request, window_no: int | None, voice: bool) -> Response:
    k = request.query_params.get("k")
    if k is not None:
        # First visit with the key IT gave: keep it in a cookie, clean the address.
        scope = await _scope(request, k[:80])
        if scope is None or not _allowed(scope, window_no):
            return _refused(ApiError(401, "unauthorized", message_zh="显示密钥无效或已被撤销，请联系信息管理员",
                                     message_en="This display key is not valid or was revoked; ask IT"))
        target = request.url.path + ("" if voice == (window_no is None) else f"?voice={int(voice)}")
        resp = RedirectResponse(target, status_code=303, headers=_headers())
        resp.set_cookie(COOKIE, k[:80], max_age=COOKIE_MAX_AGE, path=COOKIE_PATH, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
        return resp
    try:
        await _require(request, window_no)
    except ApiError as err:
        return _refused(err)
    hall = hall_of(request)
    board = await hall.store.read(lambda c: load_board(c, hall, window_no))
    if window_no is not None and not board.windows:
        return _refused(ApiError(404, "unknown_window", {"window_no": window_no}))
    return _render(board, window_no, voice)


def _voice(request: Request, default: bool) -> bool:
    v = request.query_params.get("voice")
    return default if v not in ("0", "1") else v == "1"


@router.get("/display", response_class=HTMLResponse)
async def hall_page(request: Request) -> Response:
    return await _page(request, None, _voice(request, True))


@router.get("/display/window/{window_no}", response_class=HTMLResponse)
async def window_page(request: Request, window_no: IdPath) -> Response:
    # The small display above a window is silent unless asked (?voice=1): the hall TV speaks.
    return await _page(request, window_no, _voice(request, False))


@router.get("/display/events", response_class=StreamingResponse)
async def events(
    request: Request,
    window: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_INT)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=40)] = None,
) -> StreamingResponse:
    scope = await _require(request, window)
    if scope != "hall" and window is None:
        raise ApiError(403, "forbidden", {"scope": scope})
    if last_event_id:
        if not last_event_id.isdigit() or int(last_event_id) > MAX_INT:
            raise ApiError(400, "bad_request", {"Last-Event-ID": "must be an event id"})
        after = int(last_event_id)
    hall = hall_of(request)
    gen = display_stream(hall, request.cookies.get(COOKIE, ""), window, after)
    return StreamingResponse(gen, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/display/audio/{event_id}.wav")
async def audio(request: Request, event_id: IdPath) -> Response:
    scope = await _require_any(request)
    hall = hall_of(request)

    def fn(conn: Connection) -> tuple[str, int | None, dict[str, Any], bool] | None:
        row = conn.execute(select(t.events.c.type, t.events.c.window_no, t.events.c.data)
                           .where(t.events.c.id == event_id)).first()
        if row is None:
            return None
        return str(row[0]), row[1], json.loads(row[2]), read_english(conn)

    found = await hall.store.read(fn)
    number = _number(found[2]) if found is not None and found[0] in CALL_TYPES else None
    if found is None or number is None or found[1] is None:
        raise ApiError(404, "not_found", {"event_id": event_id})
    window_no = int(found[1])
    if not _allowed(scope, window_no):
        raise ApiError(403, "forbidden", {"scope": scope})
    synth = synth_of(hall)
    if not synth.available():
        log.error("display: espeak-ng is not installed; announcements fall back to the browser")
        raise ApiError(503, "tts_unavailable", message_zh="服务器未安装语音合成（espeak-ng）",
                       message_en="Speech synthesis (espeak-ng) is not installed on the server")
    parts = [(ZH_VOICE, say_zh(number, window_no))]
    if found[3]:
        parts.append((EN_VOICE, say_en(number, window_no)))
    try:
        data = await synth.clip(parts)
    except (RuntimeError, OSError, wave.Error) as err:
        log.error("display: speech synthesis failed for event %s: %s", event_id, err)
        raise ApiError(503, "tts_failed", message_zh="语音合成失败", message_en="Speech synthesis failed") from None
    # The clip of one event never changes (English switched on later makes a new URL per page load).
    return Response(data, media_type="audio/wav",
                    headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"})


async def _require_any(request: Request) -> str:
    scope = await _scope(request)
    if scope is None:
        raise ApiError(401, "unauthorized", message_zh="此显示屏未设置或显示密钥已失效，请联系信息管理员",
                       message_en="This display is not set up or its key was revoked; ask IT")
    return scope


@router.get("/display/chime.wav")
async def chime(request: Request) -> Response:
    await _require_any(request)
    return Response(await asyncio.to_thread(chime_wav), media_type="audio/wav",
                    headers={"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"})
