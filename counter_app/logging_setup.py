"""Rotating file logs in the log folder, with personal data and secrets masked in every record.

`PIIFilter` rewrites each record's message (after formatting its args) and its traceback text with
`mask_text` from the shared package `pii_mask` (every document format of issue 17: resident ID,
passport, Hong Kong/Macao/Taiwan permits, foreigner's permanent residence card, credit code,
mobile and fixed-line phone numbers, values under name/address/number keys; and the secrets:
passwords, tokens, pairing and enrolment codes). It sits on every handler (a filter on a logger
does not see records propagated from child loggers). The server masks its own records with the
same module (hall_server/logmask.py).
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from pii_mask import mask_text

__all__ = ["LOG_FILE", "PIIFilter", "id_check_digit", "is_valid_id_number", "mask_text",
           "setup_logging"]

LOG_FILE = "counter-app.log"

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of an 18-digit resident ID."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def is_valid_id_number(text: str) -> bool:
    """True for an 18-character resident ID whose check digit is right."""
    return (len(text) == 18 and text[:17].isdigit()
            and id_check_digit(text[:17]) == text[17].upper())


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
