"""The serial button box: a five-key evaluator with a one-line display, on a serial port.

Implements ``PadTransport`` with assurance "unsigned" and source "serial": a box this simple holds
no key, so the server records the rating as unsigned and flags suspicious patterns itself.

The wire protocol is ours and documented for box makers in docs/pad-hardware.md::

    STX(0x02) | type (1 byte) | len (1 byte, 0..MAX_PAYLOAD) | payload | CRC-16 (2 bytes, big end) | ETX(0x03)

The CRC is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF; ``binascii.crc_hqx``) over type, len and
payload. The reader resynchronises after garbage or a cut frame by dropping one byte and looking
for the next STX, so a bad byte costs at most the frame it hit.

Box -> PC: ``K`` key press (seq, key 1..5; the box repeats it until acknowledged, the seq lets us
drop the repeats), ``H`` heartbeat (every second). PC -> box: ``A`` ack (seq), ``D`` display line
(encoding byte 0 UTF-8 / 1 GB2312, then at most 32 characters), ``M`` mode (0 idle, 1 rating open:
the box lights its keys, 2 paused, 3 thanks), ``H`` heartbeat.

A bad rating (keys 4 and 5) needs a reason or a comment at the server; the box cannot choose a
reason, so the rating carries a fixed comment saying so (``SERIAL_BAD_COMMENT``).

Threads: one reader thread owns the port's reads and the heartbeat clock; writes from any thread
go through a lock. ``on_rating``/``on_state`` are called on the reader thread.
"""

from __future__ import annotations

import binascii
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from counter_app.pad.base import LEVELS, ClerkCard, PadRating, RatingRequest

log = logging.getLogger(__name__)

STX = 0x02
ETX = 0x03
MAX_PAYLOAD = 100
DISPLAY_CHARS = 32

# Frame types (ASCII letters so a serial sniffer shows them readably).
T_KEY = ord("K")
T_HEARTBEAT = ord("H")
T_ACK = ord("A")
T_DISPLAY = ord("D")
T_MODE = ord("M")

MODE_IDLE, MODE_RATING, MODE_PAUSED, MODE_THANKS = 0, 1, 2, 3
ENCODINGS = {"utf-8": 0, "gb2312": 1}

#: Key 1..5 -> level, best first (the keys are labelled 1 非常满意 ... 5 非常不满意 on the box).
KEY_LEVELS: dict[int, str] = {i + 1: level for i, level in enumerate(LEVELS)}

#: The comment a bad rating from the box carries: the box has no way to choose a reason, and the
#: server requires a reason or a comment for bad ratings (422 reason_required otherwise).
SERIAL_BAD_COMMENT: dict[str, str] = {
    "dissatisfied": "评价器按键：不满意（设备无法选择原因）",
    "very_dissatisfied": "评价器按键：非常不满意（设备无法选择原因）",
}

# What the box's one-line display says (GB2312-safe wording, at most 32 characters).
TEXT_RATE = "请按键评价：1非常满意…5非常不满意"
TEXT_THANKS = "感谢您的评价！"
TEXT_RETRY = "未保存成功，请再按一次"
TEXT_NOT_RATED = "未评价：可扫窗口二维码稍后评价"


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (the check value of b"123456789" is 0x29B1)."""
    return binascii.crc_hqx(data, 0xFFFF)


def encode_frame(ftype: int, payload: bytes = b"") -> bytes:
    """One frame on the wire. Raises ValueError for a payload longer than MAX_PAYLOAD."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = bytes((ftype & 0xFF, len(payload))) + payload
    return bytes((STX,)) + body + crc16(body).to_bytes(2, "big") + bytes((ETX,))


def display_payload(text: str, encoding: str = "gb2312") -> bytes:
    """The ``D`` payload: encoding byte and the text cut to DISPLAY_CHARS characters.

    Characters the encoding lacks (rare name characters in GB2312) become "?" rather than failing.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"unsupported display encoding {encoding!r}; use one of {sorted(ENCODINGS)}")
    return bytes((ENCODINGS[encoding],)) + text[:DISPLAY_CHARS].encode(encoding, errors="replace")


@dataclass(frozen=True)
class Frame:
    type: int
    payload: bytes


class FrameParser:
    """Turns a byte stream into frames; survives garbage, cut frames and bad CRCs."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.garbage_bytes = 0
        self.bad_frames = 0

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        buf = self._buf
        while True:
            start = buf.find(STX)
            if start < 0:
                self.garbage_bytes += len(buf)
                buf.clear()
                break
            if start:
                self.garbage_bytes += start
                del buf[:start]
            if len(buf) < 3:
                break
            n = buf[2]
            if n > MAX_PAYLOAD:
                self._skip()
                continue
            total = n + 6
            if len(buf) < total:
                break
            body = bytes(buf[1:3 + n])
            crc = int.from_bytes(buf[3 + n:5 + n], "big")
            if buf[5 + n] != ETX or crc != crc16(body):
                # Not a frame after all (a cut frame or an STX byte inside garbage): the next
                # real frame may start anywhere after this STX.
                self.bad_frames += 1
                self._skip()
                continue
            frames.append(Frame(body[0], body[2:]))
            del buf[:total]
        return frames

    def _skip(self) -> None:
        self.garbage_bytes += 1
        del self._buf[:1]

    def resync(self) -> list[Frame]:
        """The line went quiet with bytes left over: their STX was not a frame start after all.

        A header of garbage can claim up to MAX_PAYLOAD bytes and so hold real frames behind it;
        drop leading bytes one at a time and parse again, keeping every real frame found.
        """
        frames: list[Frame] = []
        while self._buf:
            self._skip()
            frames += self.feed(b"")
        return frames

    @property
    def pending(self) -> int:
        return len(self._buf)


class SerialPort(Protocol):
    """The part of a pyserial port the box uses (tests pass a pipe-like stand-in)."""

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    def close(self) -> None: ...


def _open_port(url: str, baudrate: int) -> SerialPort:
    import serial  # pyserial: real ports, "loop://", "socket://" and pty paths alike

    port: SerialPort = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05, write_timeout=1.0)
    return port


class SerialButtonBox:
    """PadTransport for the five-key serial box. Any thread may call the ``show_*`` methods."""

    name = "serial"
    assurance = "unsigned"

    def __init__(self, port: str, *, baudrate: int = 9600, encoding: str = "gb2312",
                 heartbeat_timeout_s: float = 3.5, heartbeat_every_s: float = 1.0,
                 reopen_every_s: float = 2.0, partial_timeout_s: float = 0.5,
                 opener: Callable[[str, int], SerialPort] = _open_port,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not port:
            raise ValueError("no serial port configured (pad_serial_port)")
        display_payload("", encoding)  # fail early on a bad encoding name
        self.port, self.baudrate, self.encoding = port, baudrate, encoding
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.heartbeat_every_s = heartbeat_every_s
        self.reopen_every_s = reopen_every_s
        self.partial_timeout_s = partial_timeout_s
        self._opener, self._clock = opener, clock
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ser: SerialPort | None = None
        self._on_rating: Callable[[PadRating], None] = lambda _r: None
        self._on_state: Callable[[str], None] = lambda _s: None
        self._open: RatingRequest | None = None
        self._mode = MODE_IDLE
        self._display = ""
        self._last_seq: int | None = None
        self.parser = FrameParser()
        self.state = "offline"
        self.keys_ignored = 0
        self.ratings_sent = 0

    # -- PadTransport ----------------------------------------------------------------------------
    def start(self, on_rating: Callable[[PadRating], None], on_state: Callable[[str], None]) -> None:
        self._on_rating, self._on_state = on_rating, on_state
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pad-serial", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self._close_port()

    def show_idle(self, card: ClerkCard) -> None:
        with self._lock:
            self._open = None
        self._show(MODE_IDLE, f"{card.window_no}号窗口 {card.name_zh} 工号{card.staff_no}")

    def show_paused(self, public_zh: str, public_en: str) -> None:
        with self._lock:
            self._open = None
        self._show(MODE_PAUSED, f"暂停服务：{public_zh}")

    def ask_rating(self, request: RatingRequest, card: ClerkCard) -> None:
        with self._lock:
            self._open = request
        self._show(MODE_RATING, TEXT_RATE)

    def show_not_rated(self, rate_later_url: str) -> None:
        with self._lock:
            self._open = None
        self._show(MODE_IDLE, TEXT_NOT_RATED)

    def show_thanks(self) -> None:
        with self._lock:
            self._open = None
        self._show(MODE_THANKS, TEXT_THANKS)

    @property
    def rating_open(self) -> bool:
        with self._lock:
            return self._open is not None

    # -- internals -------------------------------------------------------------------------------
    def _show(self, mode: int, text: str) -> None:
        with self._lock:
            self._mode, self._display = mode, text
        self._send_screen()

    def _send_screen(self) -> None:
        with self._lock:
            mode, text = self._mode, self._display
        self._write(encode_frame(T_MODE, bytes((mode,))) +
                    encode_frame(T_DISPLAY, display_payload(text, self.encoding)))

    def _write(self, data: bytes) -> bool:
        with self._write_lock:
            ser = self._ser
            if ser is None:
                return False  # sent again when the box comes back
            try:
                ser.write(data)
                return True
            except Exception as exc:  # noqa: BLE001 - any port error means "box gone"
                log.warning("serial box write failed: %s", exc)
                return False

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            log.info("serial box %s: %s", self.port, state)
            self._on_state(state)

    def _close_port(self) -> None:
        with self._write_lock:
            ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except Exception:  # noqa: BLE001
                pass

    def _run(self) -> None:
        last_open_try = -1e9
        self._on_state(self.state)
        while not self._stop.is_set():
            if self._ser is None:
                now = self._clock()
                if now - last_open_try < self.reopen_every_s:
                    self._stop.wait(0.05)
                    continue
                last_open_try = now
                try:
                    ser = self._opener(self.port, self.baudrate)
                except Exception as exc:  # noqa: BLE001 - missing or busy port: retry later
                    log.info("serial box %s not available: %s", self.port, exc)
                    self._set_state("offline")
                    continue
                with self._write_lock:
                    self._ser = ser
                self._serve(ser)
                self._close_port()
                self._set_state("offline")

    def _serve(self, ser: SerialPort) -> None:
        last_rx = self._clock()
        last_data = last_rx
        last_hb_tx = -1e9
        self.parser.resync()
        while not self._stop.is_set():
            now = self._clock()
            if now - last_hb_tx >= self.heartbeat_every_s:
                last_hb_tx = now
                self._write(encode_frame(T_HEARTBEAT))
            try:
                data = ser.read(256)
            except Exception as exc:  # noqa: BLE001 - unplugged: reopen later
                log.warning("serial box read failed: %s", exc)
                return
            now = self._clock()
            frames = self.parser.feed(data) if data else []
            if data:
                last_data = now
            elif self.parser.pending and now - last_data > self.partial_timeout_s:
                frames = self.parser.resync()
            if frames:
                for frame in frames:
                    last_rx = now
                    if self.state != "connected":
                        self._set_state("connected")
                        self._send_screen()  # the box may have rebooted: show it the screen again
                    self._handle(frame)
            if self.state == "connected" and now - last_rx > self.heartbeat_timeout_s:
                self._set_state("offline")

    def _handle(self, frame: Frame) -> None:
        if frame.type == T_HEARTBEAT:
            return
        if frame.type != T_KEY or len(frame.payload) != 2:
            log.debug("serial box: ignored frame type %r", frame.type)
            return
        seq, key = frame.payload[0], frame.payload[1]
        if seq == self._last_seq:
            self._ack(seq)
            return  # the box repeated a key we already took (our ack was lost)
        self._last_seq = seq
        level = KEY_LEVELS.get(key)
        with self._lock:
            request = self._open if level is not None else None
            if request is not None:
                self._open = None  # one rating per service: later keys wait for the next request
        if level is None or request is None:
            self.keys_ignored += 1
            self._ack(seq)
            return
        rating = PadRating(
            rating_id=str(uuid.uuid4()), case_id=request.case_id, level=level, reasons=(),
            comment=SERIAL_BAD_COMMENT.get(level, ""), source="serial",
            challenge=request.challenge,
            rated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            window_no=request.window_no)
        try:
            self._on_rating(rating)
        except Exception as exc:  # noqa: BLE001 - refused or not saved: the citizen may retry
            log.warning("serial box rating not taken: %s", exc)
            with self._lock:
                if self._open is None:
                    self._open = request
            self._last_seq = None  # no ack: the box repeats the key and it counts as new
            self._show(MODE_RATING, TEXT_RETRY)
            return
        self.ratings_sent += 1
        # Acknowledge only after the rating is durable: a box that gets no ack repeats it.
        self._ack(seq)

    def _ack(self, seq: int) -> None:
        self._write(encode_frame(T_ACK, bytes((seq,))))
