"""Server-Sent Events: a tolerant parser and a self-reconnecting event stream.

:class:`SSEParser` follows the WHATWG "event stream interpretation" rules: UTF-8 (bad bytes are
replaced, never fatal), a leading BOM dropped, lines ended by CRLF, LF or CR (also when the CR and
LF arrive in different network reads), comment lines (``: ping``), the ``event``/``data``/``id``/
``retry`` fields, multi-line data, unknown fields ignored, and an empty data buffer dispatching
nothing. Lines and events have a size cap so a garbage stream cannot eat the desk's memory.

:class:`EventStream` is what ``HallClient.events()`` returns: iterate it on a worker thread to get
:class:`api_client.models.ServerEvent`; it reconnects on its own (backoff with jitter, the
server's ``retry``, ``Last-Event-ID`` so nothing is missed) and reports ``on_state`` changes
("connecting", "connected", "disconnected"). An event whose data is not valid JSON or not a valid
ticket/window is skipped with a warning; the stream goes on. ``close()`` from any thread ends the
iteration promptly: it shuts the socket down, which wakes a blocked read. A non-retryable failure
(401 after refresh, 403, 404, TLS, a reply that is not an event stream) ends the iteration by
raising that :class:`api_client.errors.ApiError`, so the caller can fall back to polling.
"""

from __future__ import annotations

import codecs
import json
import logging
import random
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import requests

from . import errors
from .models import ServerEvent

log = logging.getLogger("api_client.sse")

__all__ = ["EventStream", "SSEFrame", "SSEParser"]

_EOL = re.compile(r"\r\n|\r|\n")

#: A line longer than this is garbage (the biggest real event is a ticket, under 1 KB).
MAX_LINE_CHARS = 256 * 1024
MAX_EVENT_CHARS = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SSEFrame:
    """One dispatched event before JSON decoding."""

    id: str
    event: str
    data: str


class SSEParser:
    """Incremental SSE parser: ``feed(bytes)`` returns the frames completed by those bytes."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self._started = False
        self._skip_lf = False
        self._discarding = False  # inside an over-long line: drop until its end
        self._data: list[str] = []
        self._data_chars = 0
        self._event = ""
        self.last_event_id = ""
        self.retry_ms: int | None = None

    def feed(self, chunk: bytes) -> list[SSEFrame]:
        text = self._decoder.decode(chunk)
        if not text:
            return []
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._skip_lf:
            self._skip_lf = False
            text = text.removeprefix("\n")
        buf = self._pending + text
        frames: list[SSEFrame] = []
        pos = 0
        for m in _EOL.finditer(buf):
            if m.group() == "\r" and m.end() == len(buf):
                # A CR at the very end: a LF in the next read belongs to this line ending.
                self._skip_lf = True
            line = buf[pos : m.start()]
            pos = m.end()
            if self._discarding:
                self._discarding = False
                continue
            frame = self._line(line)
            if frame is not None:
                frames.append(frame)
        self._pending = buf[pos:]
        if len(self._pending) > MAX_LINE_CHARS:
            log.warning("SSE: dropping an over-long line (%d chars)", len(self._pending))
            self._pending = ""
            self._discarding = True
        return frames

    def _line(self, line: str) -> SSEFrame | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None  # comment, e.g. the server's ": ping"
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data_chars += len(value) + 1
            if self._data_chars > MAX_EVENT_CHARS:
                if self._data:
                    log.warning("SSE: dropping an over-long event")
                self._data = []
                return None
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self.retry_ms = int(value)
        # any other field name: ignored, per the spec
        return None

    def _dispatch(self) -> SSEFrame | None:
        data, event = self._data, self._event
        over = self._data_chars > MAX_EVENT_CHARS
        self._data, self._event, self._data_chars = [], "", 0
        if not data or over:
            return None
        return SSEFrame(id=self.last_event_id, event=event or "message", data="\n".join(data))


def _event_from_frame(frame: SSEFrame) -> ServerEvent | None:
    try:
        payload = json.loads(frame.data)
    except ValueError:
        log.warning("SSE: skipping event id=%s type=%s: data is not JSON", frame.id, frame.event)
        return None
    try:
        return ServerEvent.from_sse(frame.id, frame.event, payload)
    except errors.ApiResponseValidationError as err:
        log.warning("SSE: skipping event id=%s type=%s: %s", frame.id, frame.event, err.message_en)
        return None


class EventStream:
    """A reconnecting SSE stream of :class:`ServerEvent` (see the module docstring)."""

    def __init__(
        self,
        connect: Callable[[str | None], requests.Response],
        *,
        last_event_id: str | None = None,
        initial_delay: float = 1.0,
        max_delay: float = 30.0,
        on_state: Callable[[str], None] | None = None,
    ) -> None:
        self._connect = connect
        self.last_event_id: str | None = last_event_id or None
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.on_state = on_state
        self.state = "disconnected"
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._response: requests.Response | None = None
        self._server_retry_s: float | None = None

    # --- control from any thread --------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """End the iteration promptly, from any thread."""
        self._closed.set()
        with self._lock:
            resp = self._response
        if resp is not None:
            _shutdown(resp)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- iteration ----------------------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        cb = self.on_state
        if cb is not None:
            try:
                cb(state)
            except Exception:  # a broken observer must not break the stream
                log.exception("SSE: on_state callback failed")

    def _delay(self, attempt: int) -> float:
        base = self._server_retry_s if self._server_retry_s is not None else self.initial_delay
        ceiling = min(self.max_delay, base * float(2 ** min(attempt, 16)))
        # Equal jitter: never zero (no hammering), yet desks spread out after a server restart.
        return ceiling / 2 + random.uniform(0.0, ceiling / 2)

    def __iter__(self) -> Iterator[ServerEvent]:
        attempt = 0
        try:
            while not self._closed.is_set():
                self._set_state("connecting")
                try:
                    resp = self._connect(self.last_event_id)
                except errors.ApiError as err:
                    if not err.retryable:
                        raise
                    self._set_state("disconnected")
                    delay = self._delay(attempt)
                    attempt += 1
                    log.info("SSE: connect failed (%s); retry in %.1f s", err.code, delay)
                    self._closed.wait(delay)
                    continue
                ctype = resp.headers.get("Content-Type", "")
                if not ctype.startswith("text/event-stream"):
                    resp.close()
                    raise errors.invalid_response(
                        f"/events answered {ctype or 'without a content type'}, "
                        "not text/event-stream",
                        request_id=resp.headers.get("X-Request-ID"),
                    )
                with self._lock:
                    self._response = resp
                if self._closed.is_set():
                    resp.close()
                    break
                self._set_state("connected")
                try:
                    for event in self._read(resp):
                        attempt = 0  # the server is talking: reset the backoff
                        yield event
                finally:
                    with self._lock:
                        self._response = None
                    resp.close()
                if self._closed.is_set():
                    break
                self._set_state("disconnected")
                delay = self._delay(attempt)
                attempt += 1
                log.info("SSE: stream ended; reconnecting in %.1f s", delay)
                self._closed.wait(delay)
        finally:
            self._set_state("disconnected")

    def _read(self, resp: requests.Response) -> Iterator[ServerEvent]:
        parser = SSEParser()
        if self.last_event_id:
            # A reconnect without a new id must keep asking from where we were.
            parser.last_event_id = self.last_event_id
        raw = resp.raw
        while not self._closed.is_set():
            try:
                chunk = raw.read1(65536, decode_content=True)
            except Exception as exc:  # noqa: BLE001 - broken, timed out or closed under us
                if not self._closed.is_set():
                    err = errors.from_transport_exception(exc, what="GET /events")
                    log.info("SSE: stream broke (%s)", err.code)
                return
            if not chunk:
                if not self._closed.is_set():
                    log.info("SSE: server closed the stream")
                return
            for frame in parser.feed(chunk):
                self.last_event_id = parser.last_event_id or None
                if parser.retry_ms is not None:
                    self._server_retry_s = parser.retry_ms / 1000.0
                event = _event_from_frame(frame)
                if event is not None and not self._closed.is_set():
                    yield event
            if parser.retry_ms is not None:
                self._server_retry_s = parser.retry_ms / 1000.0


def _shutdown(resp: requests.Response) -> None:
    """Wake a read blocked on this response in another thread, then close it."""
    try:
        resp.raw.shutdown()
    except Exception:  # noqa: BLE001 - already released or closed: nothing to wake
        pass
    try:
        resp.close()
    except Exception:  # noqa: BLE001
        pass
