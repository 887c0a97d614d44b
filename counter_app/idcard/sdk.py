"""Adapter skeleton for a vendor SDK (sdtapi.dll / libsdtapi.so and the wlt photo decoder).

UNTESTED HERE: no vendor library is available on the build machines, so only the failure path
(library missing -> ``ReaderOfflineError``) is exercised by the tests. It never returns a card it
did not read: every SDK call's status is checked and anything but success raises.

The signatures follow the reader vendors' common "SDT" API (the functions the GA 467 commands map
to); check them against the vendor's header before use::

    int SDT_OpenPort(int iPort);                       // 0x90 ok; iPort 1001..1016 USB, 1..16 COM
    int SDT_ClosePort(int iPort);                      // 0x90 ok
    int SDT_StartFindIDCard(int iPort, unsigned char *pucManaInfo, int iIfOpen);   // 0x9F found
    int SDT_SelectIDCard(int iPort, unsigned char *pucManaMsg, int iIfOpen);       // 0x90 ok
    int SDT_ReadBaseMsg(int iPort, unsigned char *pucCHMsg, unsigned int *puiCHMsgLen,
                        unsigned char *pucPHMsg, unsigned int *puiPHMsgLen, int iIfOpen); // 0x90
    int GetBmp(char *wltFile, int intf);               // WltRS: writes <name>.bmp; 1 = ok

The text block SDT_ReadBaseMsg fills is the same 256-byte UCS-2 block the serial module sends, so
it is parsed by ``ga467.card_from_text``. The photo is taken only when the decoder library is
configured and says it decoded it; the wlt file and the bitmap live in a private temporary
directory that is removed before ``read_card`` returns.
"""

from __future__ import annotations

import ctypes
import logging
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

from counter_app.idcard import ga467
from counter_app.idcard.base import CardReadError, IdCard, NoCardError, ReaderOfflineError

log = logging.getLogger(__name__)


class SdkIdCardReader:
    """``IdCardReader`` over a vendor SDK loaded with ctypes (untested against real hardware)."""

    name = "vendor-sdk"

    def __init__(self, library: str, port: int = 1001, photo_library: str | None = None) -> None:
        self.library, self.sdk_port, self.photo_library = library, port, photo_library
        self._lock = threading.Lock()
        self._lib: ctypes.CDLL | None = None
        self._wlt: ctypes.CDLL | None = None

    def _load(self) -> ctypes.CDLL:
        if self._lib is not None:
            return self._lib
        try:
            lib = ctypes.CDLL(self.library)
            lib.SDT_OpenPort.argtypes = [ctypes.c_int]
            lib.SDT_ClosePort.argtypes = [ctypes.c_int]
            lib.SDT_StartFindIDCard.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
            lib.SDT_SelectIDCard.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
            lib.SDT_ReadBaseMsg.argtypes = [
                ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint),
                ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint), ctypes.c_int]
            for fn in (lib.SDT_OpenPort, lib.SDT_ClosePort, lib.SDT_StartFindIDCard,
                       lib.SDT_SelectIDCard, lib.SDT_ReadBaseMsg):
                fn.restype = ctypes.c_int
        except (OSError, AttributeError) as exc:
            log.info("ID card SDK %s not usable: %s", self.library, exc)
            raise ReaderOfflineError(details={"library": self.library}) from exc
        if lib.SDT_OpenPort(self.sdk_port) != ga467.SW_OK:
            raise ReaderOfflineError(details={"library": self.library, "port": self.sdk_port})
        if self.photo_library:
            try:
                self._wlt = ctypes.CDLL(self.photo_library)
                self._wlt.GetBmp.argtypes = [ctypes.c_char_p, ctypes.c_int]
                self._wlt.GetBmp.restype = ctypes.c_int
            except (OSError, AttributeError) as exc:
                log.warning("wlt photo decoder %s not usable: %s", self.photo_library, exc)
                self._wlt = None
        self._lib = lib
        return lib

    def read_card(self, timeout_s: float = 5.0) -> IdCard:
        with self._lock:
            lib = self._load()
            mana = ctypes.create_string_buffer(8)
            if lib.SDT_StartFindIDCard(self.sdk_port, mana, 0) != ga467.SW_FOUND:
                raise NoCardError()
            if lib.SDT_SelectIDCard(self.sdk_port, mana, 0) != ga467.SW_OK:
                raise NoCardError()
            text = ctypes.create_string_buffer(ga467.TEXT_LEN)
            photo = ctypes.create_string_buffer(ga467.PHOTO_LEN)
            text_len, photo_len = ctypes.c_uint(0), ctypes.c_uint(0)
            status = lib.SDT_ReadBaseMsg(self.sdk_port, text, ctypes.byref(text_len), photo,
                                         ctypes.byref(photo_len), 0)
            if status != ga467.SW_OK or text_len.value != ga467.TEXT_LEN:
                raise CardReadError(details={"status": f"{status:02X}"})
            try:
                card = ga467.card_from_text(text.raw[:ga467.TEXT_LEN])
            except ga467.TextBlockError as exc:
                raise CardReadError(details={"reason": "text block"}) from exc
            bmp = self._decode_photo(photo.raw[:photo_len.value])
            return replace(card, photo=bmp) if bmp else card

    def _decode_photo(self, wlt: bytes) -> bytes | None:
        if self._wlt is None or not wlt:
            return None
        with tempfile.TemporaryDirectory(prefix="idcard-") as tmp:
            src = Path(tmp) / "photo.wlt"
            src.write_bytes(wlt)
            if self._wlt.GetBmp(str(src).encode(), 2) != 1:
                return None
            bmp = src.with_suffix(".bmp")
            return bmp.read_bytes() if bmp.exists() else None

    def close(self) -> None:
        with self._lock:
            if self._lib is not None:
                self._lib.SDT_ClosePort(self.sdk_port)
                self._lib = None
