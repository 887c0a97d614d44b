"""Rotating file logs in the log folder, with personal data and secrets masked in every record.

`PIIFilter` rewrites each record's message (after formatting its args) and its traceback text:
18-digit Chinese resident ID numbers (any 17 digits + digit/X, valid check digit or not), 11-digit
mainland mobile numbers, bearer tokens and password/token/secret assignments. It sits on every
handler (a filter on a logger does not see records propagated from child loggers).
"""

from __future__ import annotations

import logging
import logging.handlers
import re
from pathlib import Path

LOG_FILE = "counter-app.log"

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

# No digit on either side, so a longer number (an order id, a timestamp in ms) is not cut up,
# but an ID glued to letters or Chinese text ("身份证110...") is still found.
_ID_RE = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
_PHONE_RE = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?1[3-9][0-9](?:[- ]?[0-9]{4}){2}(?![0-9])")
_BEARER_RE = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_SECRET_RE = re.compile(
    r"(?i)((?:password|passwd|access_token|refresh_token|device_secret|secret|token)"
    r"[\"']?\s*[:=]\s*[\"']?)[^\"'\s,}&]+"
)


def id_check_digit(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of an 18-digit resident ID."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def is_valid_id_number(text: str) -> bool:
    """True for an 18-character resident ID whose check digit is right."""
    return (len(text) == 18 and text[:17].isdigit()
            and id_check_digit(text[:17]) == text[17].upper())


def _mask_id(m: re.Match[str]) -> str:
    s = m.group(0)
    return s[:2] + "*" * 16


def _mask_phone(m: re.Match[str]) -> str:
    digits = re.sub(r"[^0-9]", "", m.group(0))[-11:]
    return digits[:3] + "****" + digits[-2:]


def mask_text(text: str) -> str:
    """Mask ID numbers, mobile numbers and secrets in `text`."""
    text = _ID_RE.sub(_mask_id, text)
    text = _PHONE_RE.sub(_mask_phone, text)
    text = _BEARER_RE.sub(r"\1***", text)
    return _SECRET_RE.sub(r"\1***", text)


class PIIFilter(logging.Filter):
    """Masks personal data and secrets in a record's message, args and traceback; never drops."""

    _fmt = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg = mask_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._fmt.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


def setup_logging(log_dir: Path, *, level: int = logging.INFO, console: bool = False,
                  max_bytes: int = 5 * 1024 * 1024, backups: int = 10) -> Path:
    """Install a rotating file handler (and optionally stderr) on the root logger.

    Returns the log file's path; idempotent (handlers it installed before are replaced).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / LOG_FILE
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_counter_app", False):
            root.removeHandler(h)
            h.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [
        logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                             encoding="utf-8")
    ]
    if console:
        handlers.append(logging.StreamHandler())
    for h in handlers:
        h.setFormatter(fmt)
        h.addFilter(PIIFilter())
        h._counter_app = True  # type: ignore[attr-defined]
        root.addHandler(h)
    root.setLevel(level)
    # urllib3 logs full URLs at DEBUG; keep it at INFO so query strings stay out of the file.
    logging.getLogger("urllib3").setLevel(logging.INFO)
    return path
