"""Second-generation resident ID card readers (居民身份证阅读器).

``base`` holds what the rest of the desk sees: the ``IdCard`` read from a card, the
``IdCardReader`` protocol and the errors. ``ga467`` is the pure framing and text-block parsing of
the public-security standard reader module interface (GA 467); ``serial_reader`` talks it over
pyserial (serial or USB-CDC ports); ``sdk`` is the ctypes adapter skeleton for a vendor SDK
(a DLL/.so), the only way to get a decoded photo.
"""

from counter_app.idcard.base import (
    CardReadError,
    IdCard,
    IdCardError,
    IdCardReader,
    NoCardError,
    ReaderOfflineError,
    UnsupportedCardError,
)

__all__ = [
    "CardReadError",
    "IdCard",
    "IdCardError",
    "IdCardReader",
    "NoCardError",
    "ReaderOfflineError",
    "UnsupportedCardError",
]
