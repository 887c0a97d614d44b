"""GA 467 reader module framing and the card's text block (pure functions, no I/O).

Frames, both ways::

    preamble AA AA AA 96 69 | len (2 bytes, big end) | body | check (1 byte)

``len`` counts the body and the check byte; the check is the XOR of the two length bytes and the
body. A command body is ``cmd, param`` (plus data for a few commands); a response body is
``SW1 SW2 SW3`` (SW1 SW2 are 00 00; SW3 is the status below) followed by the data.

Commands used: find card ``20 01`` (answers 9F found / 80 no card), select card ``20 02``
(90 / 81), read base information ``30 01`` (90 with data / 41 read failed). The read data is
``text length (2, big end) | photo length (2, big end) | text (256) | photo (1024, wlt)``.

The text block is UCS-2 little-endian in fixed-width fields, padded with spaces: name 30 bytes,
sex 2, ethnicity 4, birth date 16 (YYYYMMDD), address 70, ID number 36, issuing authority 30,
validity start 16, validity end 16 (YYYYMMDD or 长期), reserved 36.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from counter_app.idcard.base import IdCard, UnsupportedCardError

PREAMBLE = bytes.fromhex("AAAAAA9669")
#: The longest frame we accept (the base read is 1288; with fingerprints ~2.3 kB). A garbage
#: length above it is not a frame.
MAX_LEN = 4096

CMD_FIND = (0x20, 0x01)
CMD_SELECT = (0x20, 0x02)
CMD_READ_BASE = (0x30, 0x01)

SW_OK = 0x90
SW_NO_CONTENT = 0x91
SW_FOUND = 0x9F
SW_BAD_CHECKSUM = 0x10  # the module got our command with a wrong check byte
SW_BAD_LENGTH = 0x11
SW_BAD_COMMAND = 0x21
SW_UNAUTHORISED = 0x23
SW_UNKNOWN_ERROR = 0x24
SW_CARD_AUTH_FAILED = 0x31
SW_SAM_AUTH_FAILED = 0x32
SW_VERIFY_FAILED = 0x33
SW_UNKNOWN_CARD = 0x40
SW_READ_FAILED = 0x41
SW_RANDOM_FAILED = 0x47
SW_SAM_SELFTEST_FAILED = 0x60
SW_SAM_NOT_AUTHORISED = 0x66
SW_NOT_FOUND = 0x80
SW_SELECT_FAILED = 0x81

STATUS_TEXT: dict[int, str] = {
    SW_OK: "ok", SW_NO_CONTENT: "no content", SW_FOUND: "card found",
    SW_BAD_CHECKSUM: "command check byte wrong", SW_BAD_LENGTH: "command length wrong",
    SW_BAD_COMMAND: "command unknown", SW_UNAUTHORISED: "not authorised",
    SW_UNKNOWN_ERROR: "unknown error", SW_CARD_AUTH_FAILED: "card authentication failed",
    SW_SAM_AUTH_FAILED: "SAM authentication failed", SW_VERIFY_FAILED: "information check failed",
    SW_UNKNOWN_CARD: "card type unknown", SW_READ_FAILED: "card read failed",
    SW_RANDOM_FAILED: "random number failed", SW_SAM_SELFTEST_FAILED: "SAM self-test failed",
    SW_SAM_NOT_AUTHORISED: "SAM not authorised", SW_NOT_FOUND: "no card", SW_SELECT_FAILED: "select failed",
}

TEXT_LEN = 256
PHOTO_LEN = 1024
# (name, width in bytes) in the order of the text block.
FIELDS: tuple[tuple[str, int], ...] = (
    ("name", 30), ("sex", 2), ("ethnicity", 4), ("birth", 16), ("address", 70), ("id_number", 36),
    ("authority", 30), ("valid_from", 16), ("valid_until", 16), ("reserved", 36),
)
#: Card type marker in the reserved block (byte 248 of the text): "J" 港澳台居民居住证 (same
#: layout), "I" 外国人永久居留身份证 (another layout, not parsed here). Resident ID cards leave it blank.
CARD_TYPE_OFFSET = 248

SEX = {"0": "未知", "1": "男", "2": "女", "9": "未说明"}
#: GB 3304 ethnicity codes.
ETHNICITIES: dict[str, str] = {f"{i + 1:02d}": n for i, n in enumerate((
    "汉 蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 傈僳 佤 畲 高山 拉祜 水 "
    "东乡 纳西 景颇 柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 仡佬 锡伯 阿昌 普米 塔吉克 怒 乌孜别克 "
    "俄罗斯 鄂温克 德昂 保安 裕固 京 塔塔尔 独龙 鄂伦春 赫哲 门巴 珞巴 基诺").split())}
ETHNICITIES.update({"97": "其他", "98": "外国血统中国籍人士"})
ETHNICITY_CODES = {v: k for k, v in ETHNICITIES.items()}


def checksum(data: bytes) -> int:
    """XOR of every byte of ``data``."""
    x = 0
    for b in data:
        x ^= b
    return x


def _frame(body: bytes) -> bytes:
    n = len(body) + 1
    head = n.to_bytes(2, "big")
    return PREAMBLE + head + body + bytes((checksum(head + body),))


def encode_command(cmd: tuple[int, int], data: bytes = b"") -> bytes:
    """A command frame; find card is ``AA AA AA 96 69 00 03 20 01 22``."""
    return _frame(bytes(cmd) + data)


def encode_response(sw3: int, data: bytes = b"") -> bytes:
    """A response frame (what a reader module sends; the test emulator uses it)."""
    return _frame(bytes((0, 0, sw3)) + data)


@dataclass(frozen=True)
class Response:
    sw1: int
    sw2: int
    sw3: int
    data: bytes


class ResponseParser:
    """Turns the byte stream from the module into responses; survives garbage and bad checks.

    After garbage, a cut frame or a wrong check byte it drops bytes up to the next preamble, so a
    bad byte costs at most the frame it hit; ``bad_frames`` counts the frames dropped.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.bad_frames = 0
        self.garbage_bytes = 0

    def feed(self, data: bytes) -> list[Response]:
        self._buf += data
        out: list[Response] = []
        buf = self._buf
        while True:
            start = buf.find(PREAMBLE)
            if start < 0:
                # Keep a tail that could be the start of a preamble.
                keep = len(PREAMBLE) - 1
                if len(buf) > keep:
                    self.garbage_bytes += len(buf) - keep
                    del buf[:len(buf) - keep]
                break
            if start:
                self.garbage_bytes += start
                del buf[:start]
            if len(buf) < 7:
                break
            n = int.from_bytes(buf[5:7], "big")
            if n < 4 or n > MAX_LEN:  # a response has at least SW1..SW3 and the check byte
                self._drop()
                continue
            if len(buf) < 7 + n:
                break
            head_body = bytes(buf[5:6 + n])  # length bytes and body
            if checksum(head_body) != buf[6 + n]:
                self._drop()
                continue
            body = head_body[2:]
            out.append(Response(body[0], body[1], body[2], body[3:]))
            del buf[:7 + n]
        return out

    def _drop(self) -> None:
        """This preamble did not start a good frame: look for the next one after it."""
        self.bad_frames += 1
        self.garbage_bytes += 1
        del self._buf[:1]

    def reset(self) -> None:
        """Forget a partial frame (a command timed out; its late answer must not be taken)."""
        self.garbage_bytes += len(self._buf)
        self._buf.clear()

    @property
    def pending(self) -> int:
        return len(self._buf)


class TextBlockError(ValueError):
    """The text block is not a card text block (wrong length, bad dates, not UCS-2)."""


def split_text(text: bytes) -> dict[str, str]:
    """The fields of a 256-byte text block, decoded and with the padding spaces stripped."""
    if len(text) != TEXT_LEN:
        raise TextBlockError(f"text block of {len(text)} bytes, expected {TEXT_LEN}")
    out: dict[str, str] = {}
    pos = 0
    for name, width in FIELDS:
        try:
            out[name] = text[pos:pos + width].decode("utf-16-le").strip(" \x00")
        except UnicodeDecodeError as exc:
            raise TextBlockError(f"field {name} is not UCS-2: {exc}") from exc
        pos += width
    return out


def card_type(text: bytes) -> str:
    """The card type marker (" " for a resident ID card, "J", "I", ...)."""
    return text[CARD_TYPE_OFFSET:CARD_TYPE_OFFSET + 2].decode("utf-16-le", errors="replace")


def parse_date(value: str, what: str) -> date:
    if len(value) != 8 or not value.isdigit():
        raise TextBlockError(f"{what} {value!r} is not YYYYMMDD")
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError as exc:
        raise TextBlockError(f"{what} {value!r} is not a date: {exc}") from exc


def build_text(fields: dict[str, str]) -> bytes:
    """The text block for ``fields`` (the test emulator builds cards with it)."""
    out = bytearray()
    for name, width in FIELDS:
        raw = fields.get(name, "").encode("utf-16-le")
        if len(raw) > width:
            raise ValueError(f"{name} longer than {width} bytes")
        out += raw + " ".encode("utf-16-le") * ((width - len(raw)) // 2)
    return bytes(out)


def base_info_data(text: bytes, photo: bytes = b"\x00" * PHOTO_LEN) -> bytes:
    """The data of a successful read base information response."""
    return len(text).to_bytes(2, "big") + len(photo).to_bytes(2, "big") + text + photo


def card_from_text(text: bytes) -> IdCard:
    """The ``IdCard`` of a text block. Raises TextBlockError, or UnsupportedCardError for a
    card type with another layout (the foreigner's permanent residence card)."""
    kind = card_type(text) if len(text) == TEXT_LEN else " "
    if kind.strip() not in ("", "J"):
        raise UnsupportedCardError(details={"card_type": kind})
    f = split_text(text)
    if not f["name"] or not f["id_number"]:
        raise TextBlockError("name or ID number empty")
    until = None if f["valid_until"] == "长期" else parse_date(f["valid_until"], "validity end")
    return IdCard(
        name=f["name"], sex=SEX.get(f["sex"], f["sex"]),
        ethnicity=ETHNICITIES.get(f["ethnicity"], f["ethnicity"]),
        birth_date=parse_date(f["birth"], "birth date"), address=f["address"],
        id_number=f["id_number"], authority=f["authority"],
        valid_from=parse_date(f["valid_from"], "validity start"), valid_until=until,
        doc_type="hmt_residence_permit" if kind == "J" else "resident_id")
