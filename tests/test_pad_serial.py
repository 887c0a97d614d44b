"""The serial button box through a real pseudo-terminal: the desk opens the pty's slave end with
pyserial, the test plays the box on the master end (frames, garbage, silence).
"""

from __future__ import annotations

import os
import queue
import select
import threading
import time
from collections.abc import Iterator

import pytest

from counter_app.pad.base import ClerkCard, PadRating, RatingRequest
from counter_app.pad.serial_box import (
    SERIAL_BAD_COMMENT,
    T_ACK,
    T_DISPLAY,
    T_HEARTBEAT,
    T_KEY,
    T_MODE,
    Frame,
    FrameParser,
    SerialButtonBox,
    crc16,
    display_payload,
    encode_frame,
)

CARD = ClerkCard("1001", "张伟", "Zhang Wei", 1, "综合受理一号窗口", "Window 1", None)


def request(case_id: int = 7) -> RatingRequest:
    return RatingRequest(case_id=case_id, case_no=f"C{case_id}", window_no=1,
                         matter_name_zh="个体工商户设立登记", matter_name_en="Sole trader registration",
                         challenge="Y2hhbGxlbmdl", reasons_version="v1",
                         reasons=(("r1", "态度不好", "Rude"),), timeout_s=60,
                         rate_later_url="http://127.0.0.1/rate")


# -- pure protocol ---------------------------------------------------------------------------------
def test_crc_is_ccitt_false() -> None:
    assert crc16(b"123456789") == 0x29B1
    assert encode_frame(T_HEARTBEAT) == bytes.fromhex("024800996a03")  # docs/pad-hardware.md


def test_frames_round_trip_through_garbage_and_cuts() -> None:
    p = FrameParser()
    a, b = encode_frame(T_KEY, bytes((1, 3))), encode_frame(T_HEARTBEAT)
    stream = b"\xff\x02garbage" + a[:4] + b"\x02\x4b\x63" + b + a
    frames: list[Frame] = []
    for i in range(0, len(stream), 3):  # arrives in small pieces, as on a slow line
        frames += p.feed(stream[i:i + 3])
    # A garbage "header" claims a long payload: the frames behind it come out when the line
    # goes quiet and the parser resynchronises.
    frames += p.resync()
    assert frames == [Frame(T_HEARTBEAT, b""), Frame(T_KEY, bytes((1, 3)))]
    assert p.garbage_bytes > 0


def test_bad_crc_is_dropped() -> None:
    frame = bytearray(encode_frame(T_KEY, bytes((1, 5))))
    frame[4] ^= 0x01
    p = FrameParser()
    assert p.feed(bytes(frame)) == []
    assert p.feed(encode_frame(T_KEY, bytes((2, 1)))) == [Frame(T_KEY, bytes((2, 1)))]
    assert p.bad_frames >= 1


def test_display_line_is_cut_and_encoded() -> None:
    payload = display_payload("一" * 40, "gb2312")
    assert payload[0] == 1 and payload[1:].decode("gb2312") == "一" * 32
    assert display_payload("窗口", "utf-8")[1:].decode("utf-8") == "窗口"
    with pytest.raises(ValueError):
        encode_frame(T_DISPLAY, b"x" * 101)
    with pytest.raises(ValueError):
        SerialButtonBox("/dev/null", encoding="latin-1")


# -- through a pty -------------------------------------------------------------------------------
class Box:
    """The far end of the line: what a real box would send and read."""

    def __init__(self, master: int) -> None:
        self.fd = master
        self.parser = FrameParser()
        self.received: queue.Queue[Frame] = queue.Queue()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            r, _w, _x = select.select([self.fd], [], [], 0.05)
            if r:
                try:
                    data = os.read(self.fd, 1024)
                except OSError:
                    return
                for f in self.parser.feed(data):
                    self.received.put(f)

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def key(self, seq: int, key: int) -> None:
        self.send(encode_frame(T_KEY, bytes((seq, key))))

    def heartbeat(self) -> None:
        self.send(encode_frame(T_HEARTBEAT))

    def wait_for(self, pred, timeout: float = 10.0) -> Frame:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                f = self.received.get(timeout=0.1)
            except queue.Empty:
                continue
            if pred(f):
                return f
        raise AssertionError("the box never received the expected frame")

    def close(self) -> None:
        self._stop.set()
        self._t.join(2)


@pytest.fixture
def line() -> Iterator[tuple[SerialButtonBox, Box, queue.Queue[PadRating], list[str]]]:
    master, slave = os.openpty()
    port = os.ttyname(slave)
    box = Box(master)
    ratings: queue.Queue[PadRating] = queue.Queue()
    states: list[str] = []
    pad = SerialButtonBox(port, baudrate=9600, heartbeat_timeout_s=1.0, heartbeat_every_s=0.2)
    pad.start(ratings.put, states.append)
    yield pad, box, ratings, states
    pad.stop()
    box.close()
    os.close(slave)
    os.close(master)


def wait(pred, timeout: float = 10.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def connect(pad: SerialButtonBox, box: Box, states: list[str]) -> None:
    wait(lambda: pad._ser is not None, what="port opened")
    box.heartbeat()
    wait(lambda: "connected" in states, what="connected")


def test_key_presses_become_ratings(line) -> None:  # type: ignore[no-untyped-def]
    pad, box, ratings, states = line
    connect(pad, box, states)
    # A key with no open rating is acknowledged but rates nothing.
    box.key(1, 1)
    box.wait_for(lambda f: f.type == T_ACK and f.payload == bytes((1,)))
    assert ratings.empty()
    assert pad.keys_ignored == 1

    pad.ask_rating(request(7), CARD)
    mode = box.wait_for(lambda f: f.type == T_MODE and f.payload == b"\x01")
    assert mode
    shown = box.wait_for(lambda f: f.type == T_DISPLAY)
    assert "评价" in shown.payload[1:].decode("gb2312")
    box.key(2, 2)
    got = ratings.get(timeout=10)
    assert (got.case_id, got.level, got.source, got.comment, got.challenge) == (
        7, "satisfied", "serial", "", "Y2hhbGxlbmdl")
    assert got.rated_at.endswith("Z") and got.window_no == 1
    # A second key for the same service rates nothing (one rating per service).
    box.key(3, 5)
    box.wait_for(lambda f: f.type == T_ACK and f.payload == bytes((3,)))
    assert ratings.empty()


def test_bad_key_carries_the_fixed_comment_and_repeats_are_dropped(line) -> None:  # type: ignore[no-untyped-def]
    pad, box, ratings, states = line
    connect(pad, box, states)
    pad.ask_rating(request(9), CARD)
    box.wait_for(lambda f: f.type == T_MODE and f.payload == b"\x01")
    box.key(10, 4)
    box.key(10, 4)  # the box did not see our ack and repeats the same seq
    got = ratings.get(timeout=10)
    assert got.level == "dissatisfied" and got.reasons == ()
    assert got.comment == SERIAL_BAD_COMMENT["dissatisfied"] == "评价器按键：不满意（设备无法选择原因）"
    pad.ask_rating(request(10), CARD)
    box.key(10, 1)  # same seq again: still the old repeat, not a new press
    box.key(11, 5)
    got = ratings.get(timeout=10)
    assert (got.case_id, got.level) == (10, "very_dissatisfied")
    assert "非常不满意" in got.comment
    assert ratings.empty()


def test_garbage_and_cut_frames_resync(line) -> None:  # type: ignore[no-untyped-def]
    pad, box, ratings, states = line
    connect(pad, box, states)
    pad.ask_rating(request(11), CARD)
    box.wait_for(lambda f: f.type == T_MODE and f.payload == b"\x01")
    good = encode_frame(T_KEY, bytes((20, 3)))
    box.send(b"\x00\xff\x02\x02\x02noise" + good[:5])  # line noise then a frame cut short
    time.sleep(0.7)  # the line goes quiet mid-frame: the half frame is forgotten
    box.send(b"\x02\x4b\x02\x99" + good)  # a fake STX header straight before the real frame
    got = ratings.get(timeout=10)
    assert (got.case_id, got.level) == (11, "basic")
    assert pad.parser.garbage_bytes > 0


def test_heartbeat_loss_means_offline_and_return_resends_screen(line) -> None:  # type: ignore[no-untyped-def]
    pad, box, ratings, states = line
    connect(pad, box, states)
    pad.show_idle(CARD)
    idle = box.wait_for(lambda f: f.type == T_DISPLAY and f.payload[1:] != b"")
    assert idle.payload[1:].decode("gb2312") == "1号窗口 张伟 工号1001"
    # The PC sends its own heartbeats so the box knows the desk is alive.
    box.wait_for(lambda f: f.type == T_HEARTBEAT)
    wait(lambda: states[-1] == "offline", what="offline after silence")
    assert pad.state == "offline"
    box.heartbeat()
    wait(lambda: states[-1] == "connected", what="connected again")
    again = box.wait_for(lambda f: f.type == T_DISPLAY)
    assert "张伟" in again.payload[1:].decode("gb2312")


def test_missing_port_reports_offline() -> None:
    states: list[str] = []
    pad = SerialButtonBox("/dev/does-not-exist-counter", reopen_every_s=0.1)
    pad.start(lambda _r: None, states.append)
    try:
        wait(lambda: states and states[-1] == "offline", what="offline")
        pad.show_thanks()  # no port: nothing raises, the screen is sent when the box appears
    finally:
        pad.stop()
    assert "connected" not in states


def test_a_refused_rating_is_not_acked_and_the_repeat_counts() -> None:
    master, slave = os.openpty()
    box = Box(master)
    calls: list[PadRating] = []

    def on_rating(r: PadRating) -> None:  # the first one fails to save, like a full disk
        calls.append(r)
        if len(calls) == 1:
            raise RuntimeError("not saved")

    states: list[str] = []
    pad = SerialButtonBox(os.ttyname(slave), heartbeat_every_s=0.2)
    pad.start(on_rating, states.append)
    try:
        connect(pad, box, states)
        pad.ask_rating(request(21), CARD)
        box.wait_for(lambda f: f.type == T_MODE and f.payload == b"\x01")
        box.key(40, 1)
        retry = box.wait_for(lambda f: f.type == T_DISPLAY and "再按" in f.payload[1:].decode("gb2312"))
        assert retry
        box.key(40, 1)  # the box repeats the unacknowledged key
        box.wait_for(lambda f: f.type == T_ACK and f.payload == bytes((40,)))
        assert len(calls) == 2 and calls[1].case_id == 21 and pad.ratings_sent == 1
    finally:
        pad.stop()
        box.close()
        os.close(slave)
        os.close(master)
