"""The GA 467 reader module over a serial or USB-CDC port (pyserial).

One ``read_card`` is find card, select card, read base information, each a command frame and
one response (``ga467``). A command whose answer is garbled (bad check byte, garbage, a cut frame)
or that the module says it got garbled (status 10/11) is sent again, up to ``retries`` times; a
module that sends nothing at all is offline. The port stays open between reads and is reopened
after any port error (unplugged, USB re-enumerated).

Threads: ``read_card`` blocks (up to its timeout); the desk calls it from a worker thread. A lock
makes concurrent calls take turns. Nothing read from the card is logged (PIPL): log lines carry
status codes and counts only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from counter_app.idcard import ga467
from counter_app.idcard.base import (
    CardReadError,
    IdCard,
    NoCardError,
    ReaderOfflineError,
)

log = logging.getLogger(__name__)


def _open_port(url: str, baudrate: int) -> Any:
    import serial  # pyserial: real ports, USB-CDC (/dev/ttyACM0, COM3) and pty paths alike

    return serial.serial_for_url(url, baudrate=baudrate, timeout=0.05, write_timeout=1.0)


class _NoAnswer(Exception):
    """The command got no good answer in time; ``heard`` says whether any byte came back."""

    def __init__(self, heard: bool) -> None:
        super().__init__("no answer")
        self.heard = heard


class SerialIdCardReader:
    """``IdCardReader`` for a GA 467 module on ``port`` (115200 8N1 is the module default)."""

    name = "ga467-serial"

    def __init__(self, port: str, *, baudrate: int = 115200, command_timeout_s: float = 1.0,
                 retries: int = 2, opener: Callable[[str, int], Any] = _open_port,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not port:
            raise ValueError("no ID card reader port configured")
        self.port, self.baudrate = port, baudrate
        self.command_timeout_s, self.retries = command_timeout_s, retries
        self._opener, self._clock = opener, clock
        self._lock = threading.Lock()
        self._ser: Any = None
        self.parser = ga467.ResponseParser()
        self.commands_resent = 0

    # -- IdCardReader ----------------------------------------------------------------------------
    def read_card(self, timeout_s: float = 5.0) -> IdCard:
        with self._lock:
            deadline = self._clock() + timeout_s
            try:
                return self._read(deadline)
            except ReaderOfflineError:
                self._close()
                raise

    def close(self) -> None:
        with self._lock:
            self._close()

    # -- internals -------------------------------------------------------------------------------
    def _read(self, deadline: float) -> IdCard:
        found = self._command(ga467.CMD_FIND, deadline)
        if found.sw3 == ga467.SW_NOT_FOUND:
            raise NoCardError()
        if found.sw3 != ga467.SW_FOUND:
            raise self._status_error("find", found.sw3)
        selected = self._command(ga467.CMD_SELECT, deadline)
        if selected.sw3 == ga467.SW_SELECT_FAILED:
            raise NoCardError(details={"status": selected.sw3})  # taken away between find and select
        if selected.sw3 != ga467.SW_OK:
            raise self._status_error("select", selected.sw3)
        read = self._command(ga467.CMD_READ_BASE, deadline)
        if read.sw3 != ga467.SW_OK:
            raise self._status_error("read", read.sw3)
        data = read.data
        if len(data) < 4:
            raise CardReadError(details={"reason": "short data"})
        text_len = int.from_bytes(data[:2], "big")
        photo_len = int.from_bytes(data[2:4], "big")
        if text_len != ga467.TEXT_LEN or len(data) < 4 + text_len + photo_len:
            raise CardReadError(details={"reason": "bad lengths", "text": text_len, "photo": photo_len})
        try:
            # The wlt photo (data[4 + text_len:]) is dropped: only a vendor SDK decodes it.
            return ga467.card_from_text(data[4:4 + text_len])
        except ga467.TextBlockError as exc:
            log.warning("ID card reader %s: text block refused: %s", self.port, type(exc).__name__)
            raise CardReadError(details={"reason": "text block"}) from exc

    def _status_error(self, step: str, sw3: int) -> CardReadError:
        what = ga467.STATUS_TEXT.get(sw3, "unknown status")
        log.info("ID card reader %s: %s answered %02X (%s)", self.port, step, sw3, what)
        return CardReadError(details={"step": step, "status": f"{sw3:02X}", "meaning": what})

    def _ensure_open(self) -> Any:
        if self._ser is None:
            try:
                self._ser = self._opener(self.port, self.baudrate)
            except Exception as exc:  # noqa: BLE001 - missing, busy or refused port
                log.info("ID card reader %s not available: %s", self.port, exc)
                raise ReaderOfflineError(details={"port": self.port}) from exc
            self.parser.reset()
        return self._ser

    def _close(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except Exception:  # noqa: BLE001 - closing a vanished port may fail; it is gone anyway
                pass

    def _command(self, cmd: tuple[int, int], deadline: float) -> ga467.Response:
        heard = False
        for attempt in range(self.retries + 1):
            if attempt:
                self.commands_resent += 1
            ser = self._ensure_open()
            try:
                ser.reset_input_buffer()  # a late answer to an earlier command must not be taken
                self.parser.reset()
                ser.write(ga467.encode_command(cmd))
                response = self._await(ser, deadline)
            except _NoAnswer as exc:
                heard = heard or exc.heard
                if self._clock() >= deadline:
                    break
                continue
            except Exception as exc:  # noqa: BLE001 - any port error: unplugged
                log.warning("ID card reader %s: port error: %s", self.port, exc)
                raise ReaderOfflineError(details={"port": self.port}) from exc
            if response.sw3 in (ga467.SW_BAD_CHECKSUM, ga467.SW_BAD_LENGTH):
                heard = True  # the module got our command garbled: send it again
                continue
            return response
        log.info("ID card reader %s: command %02X%02X unanswered (heard=%s, bad frames %d)",
                 self.port, cmd[0], cmd[1], heard, self.parser.bad_frames)
        if heard:
            raise CardReadError(details={"reason": "garbled answers"})
        raise ReaderOfflineError(details={"port": self.port, "reason": "no answer"})

    def _await(self, ser: Any, deadline: float) -> ga467.Response:
        until = min(deadline, self._clock() + self.command_timeout_s)
        heard = False
        while self._clock() < until:
            data = ser.read(4096)
            if data:
                heard = True
                responses = self.parser.feed(data)
                if responses:
                    return responses[0]
        raise _NoAnswer(heard)
