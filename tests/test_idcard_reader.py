"""The GA 467 ID card reader through a real pseudo-terminal: the desk side opens the pty's slave
end with pyserial (as it opens /dev/ttyUSB0 or COM3), the test plays the reader module on the
master end: good cards, no card, a card taken away mid-read, garbage, wrong check bytes, silence
and an unplugged reader. The SDK adapter is exercised only where no vendor library is needed.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable, Iterator
from datetime import date

import pytest

from counter_app.idcard import ga467
from counter_app.idcard.base import (
    CardReadError,
    NoCardError,
    ReaderOfflineError,
    UnsupportedCardError,
)
from counter_app.idcard.sdk import SdkIdCardReader
from counter_app.idcard.serial_reader import SerialIdCardReader

CARD_FIELDS = {
    "name": "张三明", "sex": "1", "ethnicity": "01", "birth": "19580312",
    "address": "山东省济南市历下区泉城路188号", "id_number": "370102195803122234",
    "authority": "济南市公安局历下分局", "valid_from": "20180101", "valid_until": "20380101",
}


def text_of(**over: str) -> bytes:
    return ga467.build_text({**CARD_FIELDS, **over})


# -- pure protocol -------------------------------------------------------------------------------
def test_command_frames_are_the_standard_ones() -> None:
    assert ga467.encode_command(ga467.CMD_FIND) == bytes.fromhex("AAAAAA9669000320 0122".replace(" ", ""))
    assert ga467.encode_command(ga467.CMD_SELECT) == bytes.fromhex("AAAAAA96690003200221")
    assert ga467.encode_command(ga467.CMD_READ_BASE) == bytes.fromhex("AAAAAA96690003300132")
    # The find-card answer of a module with a card on it.
    assert ga467.encode_response(ga467.SW_FOUND, b"\0\0\0\0") == bytes.fromhex("AAAAAA9669000800009F0000000097")


def test_responses_survive_garbage_cuts_and_bad_checks() -> None:
    good = ga467.encode_response(ga467.SW_OK, b"abc")
    found = ga467.encode_response(ga467.SW_FOUND, b"\0\0\0\0")
    bad = bytearray(good)
    bad[-2] ^= 0x55
    stream = b"\xaa\xaa\x00junk" + bytes(bad) + good[:6] + b"\x13" + found + good
    p = ga467.ResponseParser()
    out: list[ga467.Response] = []
    for i in range(0, len(stream), 5):  # the line delivers it in small pieces
        out += p.feed(stream[i:i + 5])
    assert [(r.sw3, r.data) for r in out] == [(ga467.SW_FOUND, b"\0\0\0\0"), (ga467.SW_OK, b"abc")]
    assert p.bad_frames >= 1 and p.garbage_bytes > 0


def test_text_block_layout() -> None:
    text = text_of()
    assert len(text) == 256
    assert text[:6].decode("utf-16-le") == "张三明" and text[6:30] == " ".encode("utf-16-le") * 12
    assert text[30:32].decode("utf-16-le") == "1"
    assert text[122:158].decode("utf-16-le") == "370102195803122234"  # 30+2+4+16+70 = 122
    card = ga467.card_from_text(text)
    assert (card.name, card.sex, card.ethnicity, card.birth_date) == ("张三明", "男", "汉", date(1958, 3, 12))
    assert (card.valid_from, card.valid_until) == (date(2018, 1, 1), date(2038, 1, 1))
    assert len(ga467.ETHNICITIES) == 58 and ga467.ETHNICITIES["56"] == "基诺"
    assert ga467.card_from_text(text_of(valid_until="长期")).valid_until is None
    with pytest.raises(ga467.TextBlockError):
        ga467.card_from_text(text_of(birth="19581332"))
    with pytest.raises(ga467.TextBlockError):
        ga467.card_from_text(text[:200])


# -- the emulated module on a pty ----------------------------------------------------------------
Behaviour = Callable[[tuple[int, int], int], bytes | None]


class Module:
    """The reader module: answers each command frame it reads with ``behaviour(cmd, n)`` (n counts
    that command's arrivals; None means silence). ``standard`` is a working module with the card
    ``self.text`` on it (None: no card); faults are written as other behaviours."""

    def __init__(self, master: int) -> None:
        self.fd = master
        self.text: bytes | None = text_of()
        self.behaviour: Behaviour = self.standard
        self.seen: dict[tuple[int, int], int] = {}
        self._buf = bytearray()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def standard(self, cmd: tuple[int, int], n: int) -> bytes | None:
        if cmd == ga467.CMD_FIND:
            return ga467.encode_response(ga467.SW_FOUND if self.text else ga467.SW_NOT_FOUND, b"\0\0\0\0")
        if cmd == ga467.CMD_SELECT:
            return ga467.encode_response(ga467.SW_OK if self.text else ga467.SW_SELECT_FAILED, b"\0" * 8)
        if cmd == ga467.CMD_READ_BASE:
            if self.text is None:
                return ga467.encode_response(ga467.SW_READ_FAILED)
            return ga467.encode_response(ga467.SW_OK, ga467.base_info_data(self.text, b"\x11" * 1024))
        return ga467.encode_response(ga467.SW_BAD_COMMAND)

    def _run(self) -> None:
        while not self._stop.is_set():
            r, _w, _x = select.select([self.fd], [], [], 0.05)
            if not r:
                continue
            try:
                self._buf += os.read(self.fd, 1024)
            except OSError:
                return
            while True:
                start = self._buf.find(ga467.PREAMBLE)
                if start < 0 or len(self._buf) < start + 10:
                    break
                del self._buf[:start]
                cmd = (self._buf[7], self._buf[8])
                ok = self._buf[9] == ga467.checksum(bytes(self._buf[5:9]))
                del self._buf[:10]
                if not ok:
                    os.write(self.fd, ga467.encode_response(ga467.SW_BAD_CHECKSUM))
                    continue
                self.seen[cmd] = self.seen.get(cmd, 0) + 1
                answer = self.behaviour(cmd, self.seen[cmd])
                if answer:
                    os.write(self.fd, answer)

    def close(self) -> None:
        self._stop.set()
        self._t.join(2)


@pytest.fixture
def line() -> Iterator[tuple[SerialIdCardReader, Module]]:
    master, slave = os.openpty()
    module = Module(master)
    reader = SerialIdCardReader(os.ttyname(slave), command_timeout_s=0.4, retries=2)
    yield reader, module
    reader.close()
    module.close()
    os.close(slave)
    try:
        os.close(master)
    except OSError:
        pass  # the unplug test closed it already


def test_happy_path_reads_the_card_and_drops_the_wlt_photo(line) -> None:  # type: ignore[no-untyped-def]
    reader, module = line
    card = reader.read_card(timeout_s=5)
    assert (card.name, card.id_number, card.address) == ("张三明", "370102195803122234", CARD_FIELDS["address"])
    assert card.authority == "济南市公安局历下分局" and card.doc_type == "resident_id"
    assert card.photo is None  # wlt: only a vendor SDK decodes it
    assert not card.expired(date(2026, 12, 3))
    assert module.seen == {ga467.CMD_FIND: 1, ga467.CMD_SELECT: 1, ga467.CMD_READ_BASE: 1}
    # The port stays open; a second card is read on it.
    module.text = text_of(name="李四", sex="2", id_number="11010519491231002X")
    assert reader.read_card().name == "李四"


def test_no_card_on_the_reader(line) -> None:  # type: ignore[no-untyped-def]
    reader, module = line
    module.text = None
    with pytest.raises(NoCardError) as err:
        reader.read_card()
    assert "请将证件放在读卡器上" in err.value.message_zh and "place the card" in err.value.message_en


def test_card_removed_mid_read(line) -> None:  # type: ignore[no-untyped-def]
    reader, module = line

    def taken_away(cmd: tuple[int, int], n: int) -> bytes | None:
        if cmd == ga467.CMD_READ_BASE:
            full = module.standard(cmd, n)
            assert full
            module.text = None  # the citizen took the card back halfway through the answer
            return full[:300]
        return module.standard(cmd, n)

    module.behaviour = taken_away
    with pytest.raises(CardReadError) as err:
        reader.read_card()
    assert "重新放置" in err.value.message_zh
    assert err.value.details.get("status") == "41"  # the resent read: 41 card read failed
    # Taken away between find and select: the module's select fails.
    module.text = text_of()
    module.behaviour = lambda cmd, n: (ga467.encode_response(ga467.SW_SELECT_FAILED)
                                       if cmd == ga467.CMD_SELECT else module.standard(cmd, n))
    with pytest.raises(NoCardError):
        reader.read_card()


def test_garbled_frames_are_survived_then_refused(line) -> None:  # type: ignore[no-untyped-def]
    reader, module = line
    # Line noise around every answer: the parser finds the frames in it.
    module.behaviour = lambda cmd, n: b"\x00\xff\xaa\xaa" + (module.standard(cmd, n) or b"") + b"\x5a"
    assert reader.read_card().name == "张三明"
    # An answer cut and followed by noise once: the command is sent again and the card read.
    module.behaviour = lambda cmd, n: ((module.standard(cmd, n) or b"")[:40] + os.urandom(64)
                                       if cmd == ga467.CMD_READ_BASE and n == 2 else module.standard(cmd, n))
    assert reader.read_card().id_number == "370102195803122234"
    assert reader.commands_resent >= 1
    # Nothing but noise: a clear read error, not a hang and not "reader offline".
    module.behaviour = lambda cmd, n: b"\xaa\xaa\xaa\x96\x69\xff\xff" + os.urandom(50)
    with pytest.raises(CardReadError):
        reader.read_card(timeout_s=3)


def test_wrong_checksums_both_ways(line) -> None:  # type: ignore[no-untyped-def]
    reader, module = line

    def bad_check_once(cmd: tuple[int, int], n: int) -> bytes | None:
        answer = module.standard(cmd, n)
        assert answer
        if cmd == ga467.CMD_READ_BASE and n == 1:
            return answer[:-1] + bytes((answer[-1] ^ 0xFF,))  # our side must drop it and ask again
        if cmd == ga467.CMD_SELECT and n == 1:
            return ga467.encode_response(ga467.SW_BAD_CHECKSUM)  # the module got our command garbled
        return answer

    module.behaviour = bad_check_once
    assert reader.read_card().name == "张三明"
    assert reader.parser.bad_frames >= 1 and reader.commands_resent == 2
    # Always a wrong check byte: refused as a read error.
    module.behaviour = lambda cmd, n: (lambda a: a[:-1] + bytes((a[-1] ^ 1,)))(module.standard(cmd, n) or b"")
    with pytest.raises(CardReadError):
        reader.read_card()


def test_reader_silent_unplugged_or_missing(line) -> None:  # type: ignore[no-untyped-def]
    reader, module = line
    module.behaviour = lambda cmd, n: None
    with pytest.raises(ReaderOfflineError) as err:
        reader.read_card(timeout_s=3)
    assert "未连接" in err.value.message_zh
    module.behaviour = module.standard
    assert reader.read_card().name == "张三明"  # it answers again: the same reader works
    module.close()
    os.close(module.fd)  # unplugged: the port's other end is gone
    with pytest.raises(ReaderOfflineError):
        reader.read_card(timeout_s=3)
    missing = SerialIdCardReader("/dev/nonexistent-idcard-reader")
    with pytest.raises(ReaderOfflineError):
        missing.read_card()


def test_expired_card_reads_but_is_flagged(line) -> None:  # type: ignore[no-untyped-def]
    reader, module = line
    module.text = text_of(valid_from="20100101", valid_until="20200101")
    card = reader.read_card()
    assert card.name == "张三明" and card.expired(date(2026, 12, 3))
    assert not card.expired(date(2019, 12, 31))
    module.text = text_of(valid_from="20100101", valid_until="长期")
    assert not reader.read_card().expired(date(2099, 1, 1))


def test_other_card_layouts(line) -> None:  # type: ignore[no-untyped-def]
    reader, module = line
    text = bytearray(text_of())
    text[ga467.CARD_TYPE_OFFSET:ga467.CARD_TYPE_OFFSET + 2] = "I".encode("utf-16-le")
    module.text = bytes(text)
    with pytest.raises(UnsupportedCardError) as err:
        reader.read_card()
    assert "手工录入" in err.value.message_zh
    text[ga467.CARD_TYPE_OFFSET:ga467.CARD_TYPE_OFFSET + 2] = "J".encode("utf-16-le")
    module.text = bytes(text)
    assert reader.read_card().doc_type == "hmt_residence_permit"


def test_sdk_adapter_without_the_vendor_library_is_offline() -> None:
    with pytest.raises(ReaderOfflineError):
        SdkIdCardReader("/nonexistent/libsdtapi.so").read_card()
    with pytest.raises(ReaderOfflineError):  # a library without the SDT functions
        SdkIdCardReader("libc.so.6").read_card()
