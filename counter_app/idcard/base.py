"""What a card read gives the desk, the reader interface and its errors.

Any reader (the GA 467 serial module, a vendor SDK) implements ``IdCardReader``: one blocking
``read_card`` call, made from a worker thread (never the Tk thread), that returns an ``IdCard`` or
raises one of the ``IdCardError`` subclasses below, each with a message fit to show (zh + en).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from counter_app.errors import CounterError


class IdCardError(CounterError):
    """Root of the card reader errors."""

    default_zh = "读取身份证失败，请重新放置证件"
    default_en = "The ID card could not be read; please place it again"


class NoCardError(IdCardError):
    """No card on the reader (or it was taken away before it could be selected)."""

    default_zh = "未检测到身份证，请将证件放在读卡器上"
    default_en = "No ID card found; please place the card on the reader"


class CardReadError(IdCardError):
    """The card was found but not read: removed mid-read, or the line kept garbling the answer."""

    default_zh = "读卡未完成（证件被移开或通信出错），请重新放置证件"
    default_en = "The card read did not finish (card moved or line error); please place it again"


class ReaderOfflineError(IdCardError):
    """The reader is not there: unplugged, wrong port, or not answering at all."""

    default_zh = "身份证阅读器未连接，请检查读卡器连接或改为手工录入"
    default_en = "The ID card reader is not connected; check it or enter the details by hand"


class UnsupportedCardError(IdCardError):
    """A card whose text block has another layout (e.g. the foreigner's permanent residence card)."""

    default_zh = "此类证件暂不支持读卡，请手工录入"
    default_en = "This kind of card cannot be read here; please enter the details by hand"


@dataclass(frozen=True)
class IdCard:
    """The text of a card, decoded. Dates are ``date``; ``valid_until`` None means long-term (长期).

    ``photo`` is a decoded image (BMP/JPEG bytes) only when a vendor SDK decoded it; the GA 467
    serial interface gives the photo wlt-encoded, which only a vendor SDK can decode, so the
    serial reader never keeps it.
    """

    name: str
    sex: str  # "男" / "女" / "未知"
    ethnicity: str  # 汉, 蒙古, ... (GB 3304 name), or the raw code when unknown
    birth_date: date
    address: str
    id_number: str
    authority: str
    valid_from: date
    valid_until: date | None
    doc_type: str = "resident_id"  # or "hmt_residence_permit" (港澳台居民居住证, card type J)
    photo: bytes | None = field(default=None, repr=False)

    def expired(self, today: date) -> bool:
        """True when the validity ended before ``today`` (the read itself still succeeded)."""
        return self.valid_until is not None and self.valid_until < today


class IdCardReader(Protocol):
    """A card reader the desk can use; implemented by ``SerialIdCardReader`` and ``SdkIdCardReader``."""

    name: str

    def read_card(self, timeout_s: float = 5.0) -> IdCard:
        """Find, select and read the card on the reader (blocking; call off the Tk thread).

        Raises NoCardError, CardReadError, ReaderOfflineError or UnsupportedCardError.
        """
        ...

    def close(self) -> None:
        """Release the port or the SDK handle; a later ``read_card`` opens it again."""
        ...
