"""The LAN pad transport: a small HTTP server on the desk PC for the evaluator pad (a tablet's
browser on the hall LAN).

It serves the pad page (counter_app/pad_page/) and a tiny JSON API:

* `GET  /pad/api/state?since=<seq>&pad_id=<id>&t=<ms>&sig=<b64u>` long-poll (up to ~20 s):
  the current screen (idle card / rating request / paused / not rated / thanks) once its
  sequence number passes `since`. `sig` is the pad's Ed25519 signature over
  ``signing.heartbeat_message(pad_id, t)``, checked with the key registered at pairing
  (``verify_pad``, set by PadService). Only such a poll is the pad's heartbeat (on_state
  "connected"/"offline") and only it sees the real screen: anyone else on the LAN (a visitor's
  phone opening the page) gets the idle card with `seq` 0, held until the poll times out or a
  pad pairs, never a case number or a rating request.
* `POST /pad/api/pair` `{token | code, pad_id, public_key, alg}`: relayed to the hall server
  (`POST /pads/register`) through the desk's HallClient; the pad never talks to the server.
* `POST /pad/api/rating` the signed rating: type-checked here, then handed to `on_rating` as a
  PadRating (PadService verifies the signature again and stores it durably before we answer
  200, so the pad only shows "thanks" for a rating that is saved).
* `GET  /pad/api/photo` the clerk's photo, `GET /pad/api/qr.png` the rate-later QR.

At most ``max_connections`` (16) connections are served at once and at most
``max_visitor_polls`` (4) unproven long-polls wait; beyond that a request is answered 503 at
once and closed, so visitors cannot pile up threads or crowd out the pad.

Anything malformed (over 64 KB, not UTF-8, not JSON, wrong types, missing fields) is a 400 with
a zh/en message; a handler never raises into the server loop, so the link keeps working.
Plain HTTP on a LAN address is not a secure context for the browser: the page signs with a
vendored pure-JS library (tweetnacl), not crypto.subtle.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from counter_app.pad.base import LEVELS, ClerkCard, PadRating, RatingRequest

log = logging.getLogger(__name__)

PAGE_DIR = Path(__file__).resolve().parent.parent / "pad_page"
MAX_BODY = 64 * 1024
LONG_POLL_S = 20.0
MAX_CONNECTIONS = 16
MAX_VISITOR_POLLS = 4
REPLAY_MEMORY = 1024  # heartbeat proofs remembered (a copied poll URL is not a heartbeat)
OFFLINE_AFTER_S = 45.0  # no poll for this long: the pad is offline

_STATIC = {
    "/pad/": ("index.html", "text/html; charset=utf-8"),
    "/pad/index.html": ("index.html", "text/html; charset=utf-8"),
    "/pad/pad.css": ("pad.css", "text/css; charset=utf-8"),
    "/pad/pad.js": ("pad.js", "text/javascript; charset=utf-8"),
    "/pad/vendor/nacl-fast.min.js": ("vendor/nacl-fast.min.js", "text/javascript; charset=utf-8"),
}
_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_B64U_RE = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
_CODE_RE = re.compile(r"^[0-9]{6}$")
_ISO_MS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


class BadPadMessage(ValueError):
    """A pad message that cannot be accepted as sent (400), with zh and en wording."""

    def __init__(self, code: str, zh: str, en: str, status: int = 400) -> None:
        super().__init__(en)
        self.code, self.zh, self.en, self.status = code, zh, en, status


def _bad(field: str) -> BadPadMessage:
    return BadPadMessage("bad_field", f"字段 {field} 缺失或格式错误", f"Field {field} is missing or invalid")


def _text(obj: dict[str, Any], key: str, max_len: int, *, pattern: re.Pattern[str] | None = None,
          allow_empty: bool = False) -> str:
    v = obj.get(key)
    if not isinstance(v, str) or len(v) > max_len or (not v and not allow_empty):
        raise _bad(key)
    if pattern is not None and not pattern.fullmatch(v):
        raise _bad(key)
    # A lone surrogate (from a \\ud800 escape) is not text anyone typed or signed.
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(key) from None
    return v


def _int(obj: dict[str, Any], key: str, lo: int = 0, hi: int = 2**53) -> int:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _bad(key)
    return v


def parse_rating(obj: Any) -> PadRating:
    """Type-check a pad's rating message; raises BadPadMessage."""
    if not isinstance(obj, dict):
        raise BadPadMessage("not_object", "内容须为 JSON 对象", "The body must be a JSON object")
    level = _text(obj, "level", 32)
    if level not in LEVELS:
        raise _bad("level")
    reasons = obj.get("reasons", [])
    if (not isinstance(reasons, list) or len(reasons) > 20
            or not all(isinstance(r, str) and 0 < len(r) <= 32 and r.isascii() for r in reasons)
            or len(set(reasons)) != len(reasons)):
        raise _bad("reasons")
    return PadRating(
        rating_id=_text(obj, "rating_id", 64, pattern=_ID_RE),
        case_id=_int(obj, "case_id"),
        level=level,
        reasons=tuple(reasons),
        comment=_text(obj, "comment", 2000, allow_empty=True) if "comment" in obj else "",
        source="pad",
        challenge=_text(obj, "challenge", 64, pattern=_B64U_RE),
        rated_at=_text(obj, "rated_at", 24, pattern=_ISO_MS_RE),
        pad_id=_text(obj, "pad_id", 64, pattern=_ID_RE),
        pad_counter=_int(obj, "pad_counter", 1),
        signature=_text(obj, "signature", 200, pattern=_B64U_RE),
        window_no=_int(obj, "window_no", 0, 2**31),
    )


def parse_pair(obj: Any) -> dict[str, str]:
    if not isinstance(obj, dict):
        raise BadPadMessage("not_object", "内容须为 JSON 对象", "The body must be a JSON object")
    out = {
        "pad_id": _text(obj, "pad_id", 64, pattern=_ID_RE),
        "public_key": _text(obj, "public_key", 64, pattern=_B64U_RE),
        "alg": _text(obj, "alg", 16),
    }
    if out["alg"] != "Ed25519":
        raise _bad("alg")
    if "token" in obj:
        out["token"] = _text(obj, "token", 64, pattern=_B64U_RE)
    elif "code" in obj:
        out["code"] = _text(obj, "code", 6, pattern=_CODE_RE)
    else:
        raise _bad("token")
    return out


class LanPadTransport:
    """PadTransport over the LAN: the desk serves the pad page and relays its messages."""

    name = "lan"
    assurance = "signed"

    def __init__(self, host: str = "0.0.0.0", port: int = 8765, *,
                 register: Callable[[dict[str, str]], dict[str, Any]] | None = None,
                 page_dir: Path = PAGE_DIR, clock: Callable[[], float] = time.monotonic,
                 long_poll_s: float = LONG_POLL_S, offline_after_s: float = OFFLINE_AFTER_S,
                 max_connections: int = MAX_CONNECTIONS,
                 max_visitor_polls: int = MAX_VISITOR_POLLS) -> None:
        self.host, self.port = host, port
        #: (pad_id, pad_time ms, signature) -> is this the paired pad? Set by PadService; while
        #: unset no poll counts as the pad's.
        self.verify_pad: Callable[[str, int, str], bool] | None = None
        self.max_visitor_polls = max_visitor_polls
        self._slots = threading.BoundedSemaphore(max_connections)
        self._visitor_polls = 0
        self._pair_epoch = 0  # bumped by a pairing: a waiting visitor poll returns at once
        self._proofs: dict[tuple[str, int], None] = {}  # recent heartbeat proofs, oldest first
        self._max_proof_t: dict[str, int] = {}
        self._register = register
        self._page_dir = page_dir
        self._clock = clock
        self.long_poll_s = long_poll_s
        self.offline_after_s = offline_after_s
        self._cond = threading.Condition()
        self._seq = 1
        self._screen: dict[str, Any] = {"screen": "idle", "card": None}
        self._photo: bytes | None = None
        self._qr: bytes | None = None
        self._on_rating: Callable[[PadRating], None] | None = None
        self._on_state: Callable[[str], None] | None = None
        self._last_seen: float | None = None
        self._link = "offline"
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.accepted = 0  # ratings handed to on_rating and accepted (tests, bench)
        self.rate_later_days: int | None = None  # shown on the "not rated" screen

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, on_rating: Callable[[PadRating], None],
              on_state: Callable[[str], None]) -> None:
        self._on_rating, self._on_state = on_rating, on_state
        server = ThreadingHTTPServer((self.host, self.port), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        self.port = int(server.server_address[1])
        self._stopping.clear()
        t1 = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="pad-lan-http", daemon=True)
        t2 = threading.Thread(target=self._watch, name="pad-lan-watch", daemon=True)
        self._threads = [t1, t2]
        t1.start()
        t2.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for t in self._threads:
            t.join(5)
        self._threads = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/pad/"

    # -- screens --------------------------------------------------------------------------
    def _set(self, screen: dict[str, Any]) -> None:
        with self._cond:
            self._seq += 1
            self._screen = screen
            self._cond.notify_all()

    @staticmethod
    def _card_json(card: ClerkCard | None) -> dict[str, Any] | None:
        if card is None:
            return None
        d = asdict(card)
        d.pop("photo_png")
        d["has_photo"] = card.photo_png is not None
        return d

    def show_idle(self, card: ClerkCard) -> None:
        self._photo = card.photo_png
        self._set({"screen": "idle", "card": self._card_json(card)})

    def show_paused(self, public_zh: str, public_en: str) -> None:
        card = self._screen.get("card")
        self._set({"screen": "paused", "card": card, "paused": {"zh": public_zh, "en": public_en}})

    def ask_rating(self, request: RatingRequest, card: ClerkCard) -> None:
        self._photo = card.photo_png
        req = asdict(request)
        req["reasons"] = [{"code": c, "text_zh": zh, "text_en": en} for c, zh, en in request.reasons]
        self._set({"screen": "rating", "card": self._card_json(card), "request": req})

    def show_not_rated(self, rate_later_url: str) -> None:
        try:
            import segno

            buf = io.BytesIO()
            segno.make(rate_later_url, error="m").save(buf, kind="png", scale=8, border=2)
            self._qr = buf.getvalue()
        except Exception:  # the link is still shown as text
            log.exception("making the rate-later QR failed")
            self._qr = None
        self._set({"screen": "not_rated", "card": self._screen.get("card"),
                   "rate_later_url": rate_later_url, "rate_later_days": self.rate_later_days})

    def show_thanks(self) -> None:
        self._set({"screen": "thanks", "card": self._screen.get("card")})

    def snapshot(self) -> tuple[int, dict[str, Any]]:
        with self._cond:
            return self._seq, dict(self._screen)

    # -- link state -----------------------------------------------------------------------
    def _emit(self, state: str) -> None:
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:
                log.exception("pad on_state handler failed")

    def _seen(self) -> None:
        first = False
        with self._cond:
            self._last_seen = self._clock()
            if self._link != "connected":
                self._link = "connected"
                first = True
        if first:
            self._emit("connected")

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            self.check_offline()

    def check_offline(self) -> None:
        gone = False
        with self._cond:
            if (self._link == "connected" and self._last_seen is not None
                    and self._clock() - self._last_seen > self.offline_after_s):
                self._link = "offline"
                gone = True
        if gone:
            self._emit("offline")

    def is_pad(self, pad_id: str | None, pad_time: int | None, sig: str | None) -> bool:
        """Is this poll the paired pad's own (a fresh heartbeat proof that verifies)?"""
        verify = self.verify_pad
        if verify is None or not pad_id or pad_time is None or not sig:
            return False
        if not _ID_RE.fullmatch(pad_id) or not _B64U_RE.fullmatch(sig):
            return False
        with self._cond:
            # A proof is good once, and not far behind the newest one seen (a poll URL copied
            # from the pad's traffic must not make a visitor look like the pad).
            newest = self._max_proof_t.get(pad_id, 0)
            if (pad_id, pad_time) in self._proofs or pad_time < newest - 10 * 60_000:
                return False
        if not verify(pad_id, pad_time, sig):
            return False
        with self._cond:
            if (pad_id, pad_time) in self._proofs:
                return False
            self._proofs[(pad_id, pad_time)] = None
            while len(self._proofs) > REPLAY_MEMORY:
                del self._proofs[next(iter(self._proofs))]
            self._max_proof_t[pad_id] = max(newest, pad_time)
        return True

    # -- API handlers (called on the HTTP threads; return (status, json)) -----------------
    def api_state(self, since: int, *, pad: bool = False) -> dict[str, Any]:
        """The screen for the paired pad (``pad``: its heartbeat proof verified) or, for
        anyone else, only the idle card (see the module docstring)."""
        deadline = time.monotonic() + self.long_poll_s
        if not pad:
            with self._cond:
                if self._visitor_polls >= self.max_visitor_polls:
                    raise BadPadMessage("busy", "评价器连接过多，请稍后再试",
                                        "Too many pad connections; try again later", 503)
                self._visitor_polls += 1
                try:
                    epoch = self._pair_epoch
                    while self._pair_epoch == epoch and not self._stopping.is_set():
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                    card = self._screen.get("card")
                finally:
                    self._visitor_polls -= 1
            return {"seq": 0, "screen": "idle", "card": card, "paired": False}
        self._seen()
        with self._cond:
            while self._seq <= since and not self._stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return {"seq": self._seq, **self._screen, "paired": True}

    def api_pair(self, body: dict[str, str]) -> dict[str, Any]:
        if self._register is None:
            raise BadPadMessage("pairing_unavailable", "此电脑未配置评价器配对",
                                "Pad pairing is not set up on this PC", 503)
        try:
            info = self._register(body)
        except Exception as exc:
            zh = getattr(exc, "message_zh", "配对失败")
            en = getattr(exc, "message_en", "Pairing failed")
            status = getattr(exc, "status", None)
            raise BadPadMessage(getattr(exc, "code", "") or "pairing_failed", zh, en,
                                status if isinstance(status, int) and 400 <= status < 500 else 502) from exc
        self._emit("paired")  # PadService learns the new key before the pad's next poll
        with self._cond:
            self._pair_epoch += 1
            self._cond.notify_all()
        return info

    def api_rating(self, rating: PadRating) -> dict[str, Any]:
        if self._on_rating is None:
            raise BadPadMessage("not_ready", "评价暂不可用", "Ratings are not available now", 503)
        try:
            self._on_rating(rating)
        except BadPadMessage:
            raise
        except Exception as exc:
            code = getattr(exc, "code", "") or "refused"
            zh = getattr(exc, "message_zh", "评价未被接受")
            en = getattr(exc, "message_en", "The rating was not accepted")
            status = 503 if code in ("disk_error", "outbox_closed") else 422
            raise BadPadMessage(code, zh, en, status) from exc
        self.accepted += 1
        return {"stored": True, "rating_id": rating.rating_id}


def _make_handler(tr: LanPadTransport) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "CounterPad/1"
        timeout = 30  # a stalled client cannot hold a thread forever
        # Headers and body leave as two writes; with Nagle on, the body waits for the pad's
        # delayed ACK: 40 ms on every tap. TCP_NODELAY sends both at once.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("pad %s " + format, self.client_address[0], *args)

        def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", _CSP)
            self.send_header("Referrer-Policy", "no-referrer")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, obj: Any) -> None:
            self._send(status, json.dumps(obj, ensure_ascii=False).encode(), "application/json; charset=utf-8")

        def _error(self, err: BadPadMessage) -> None:
            self._json(err.status, {"error": {"code": err.code, "message_zh": err.zh, "message_en": err.en}})

        def _body(self) -> Any:
            length = self.headers.get("Content-Length")
            if self.headers.get("Transfer-Encoding") or length is None:
                self.close_connection = True
                raise BadPadMessage("length_required", "须提供内容长度", "Content-Length is required", 411)
            try:
                n = int(length)
            except ValueError:
                self.close_connection = True
                raise BadPadMessage("bad_length", "内容长度有误", "Bad Content-Length") from None
            if n < 0 or n > MAX_BODY:
                self.close_connection = True  # do not read a huge body just to drop it
                raise BadPadMessage("too_large", "内容过大", "The message is too large", 413)
            raw = self.rfile.read(n)
            if len(raw) != n:
                self.close_connection = True
                raise BadPadMessage("truncated", "内容不完整", "The message was cut short")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise BadPadMessage("bad_utf8", "内容不是有效的 UTF-8", "The body is not valid UTF-8") from None
            try:
                return json.loads(text, parse_constant=_no_constant)
            except (ValueError, RecursionError):
                raise BadPadMessage("malformed_json", "内容不是有效的 JSON", "The body is not valid JSON") from None

        def _route(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path
            if self.command in ("GET", "HEAD"):
                if path == "/pad":
                    self._send(301, b"", "text/plain", {"Location": "/pad/"})
                    return
                static = _STATIC.get(path)
                if static is not None:
                    data = (tr._page_dir / static[0]).read_bytes()
                    self._send(200, data, static[1])
                    return
                if path == "/pad/api/state":
                    q = parse_qs(parts.query)
                    try:
                        since = int(q.get("since", ["0"])[0])
                    except ValueError:
                        raise BadPadMessage("bad_since", "参数有误", "Bad 'since'") from None
                    is_pad = self._proof(q)
                    if not is_pad:
                        self.close_connection = True  # a visitor does not keep a slot idle
                    self._json(200, tr.api_state(since, pad=is_pad))
                    return
                if path == "/pad/api/photo":
                    if tr._photo:
                        self._send(200, tr._photo, "image/png")
                    else:
                        raise BadPadMessage("not_found", "没有照片", "No photo", 404)
                    return
                if path == "/pad/api/qr.png":
                    if tr._qr:
                        self._send(200, tr._qr, "image/png")
                    else:
                        raise BadPadMessage("not_found", "没有二维码", "No QR code", 404)
                    return
                raise BadPadMessage("not_found", "未找到", "Not found", 404)
            if self.command == "POST":
                if path == "/pad/api/rating":
                    self._json(200, tr.api_rating(parse_rating(self._body())))
                    return
                if path == "/pad/api/pair":
                    self._json(200, tr.api_pair(parse_pair(self._body())))
                    return
                if path == "/pad/api/heartbeat":
                    self._body()
                    if not self._proof(parse_qs(parts.query)):
                        raise BadPadMessage("not_paired_pad", "不是本窗口已配对的评价器",
                                            "Not this window's paired pad", 403)
                    tr._seen()
                    self._json(200, {"ok": True})
                    return
                raise BadPadMessage("not_found", "未找到", "Not found", 404)
            self.close_connection = True
            raise BadPadMessage("method_not_allowed", "不支持此请求方法", "Method not allowed", 405)

        def _proof(self, q: dict[str, list[str]]) -> bool:
            try:
                pad_time = int(q.get("t", [""])[0])
            except ValueError:
                return False
            return tr.is_pad(q.get("pad_id", [""])[0], pad_time, q.get("sig", [""])[0])

        def handle(self) -> None:
            if tr._slots.acquire(blocking=False):
                try:
                    super().handle()
                finally:
                    tr._slots.release()
                return
            # Over the limit: read the request (briefly), answer 503 and close. Reading it first
            # matters: closing with unread bytes resets the connection and loses the answer.
            self.connection.settimeout(2.0)
            self.close_connection = True
            try:
                self.raw_requestline = self.rfile.readline(65537)
                if not self.raw_requestline or not self.parse_request():
                    return
                if self.command == "POST":
                    try:
                        self._body()
                    except BadPadMessage:
                        pass
                self.close_connection = True
                self._send(503, json.dumps({"error": {
                    "code": "busy", "message_zh": "评价器连接过多，请稍后再试",
                    "message_en": "Too many pad connections; try again later"}},
                    ensure_ascii=False).encode(), "application/json; charset=utf-8",
                    {"Retry-After": "2", "Connection": "close"})
                self.wfile.flush()
            except OSError:
                pass

        def _handle(self) -> None:
            try:
                self._route()
            except BadPadMessage as err:
                self._error(err)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                self.close_connection = True
            except Exception:
                # Never into the server loop: the link keeps working for the next message.
                log.exception("pad request %s %s failed", self.command, self.path[:200])
                self.close_connection = True
                try:
                    self._error(BadPadMessage("internal_error", "内部错误", "Internal error", 500))
                except OSError:
                    pass

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _handle

    return Handler


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


__all__ = ["BadPadMessage", "LanPadTransport", "parse_pair", "parse_rating"]
