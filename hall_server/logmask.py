"""Masking of personal data and secrets in the hall server's log records (issue 10, finding 10).

The rules are the desk's, in the one shared module `pii_mask` (imports nothing of ours, so the
server may use it without reaching the desk's packages; issue 17 item 3). `install()` wraps the process's log record
factory, so every record, whoever's handler formats it (uvicorn's, the root's, a test's), is
masked when it is made: its message (after `%` formatting), its traceback and its stack. uvicorn's
access records keep their argument tuple (its formatter reads it): each argument is masked.
"""

from __future__ import annotations

import logging
from typing import Any

from pii_mask import mask_text

_installed = False
_exc_formatter = logging.Formatter()


def _mask_record(record: logging.LogRecord) -> None:
    if record.name.startswith("uvicorn.access") and isinstance(record.args, tuple):
        record.args = tuple(mask_text(a) if isinstance(a, str) else a for a in record.args)
    else:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the record
            message = f"{record.msg!r} {record.args!r}"
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        record.exc_text = _exc_formatter.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = mask_text(record.exc_text)
    if record.stack_info:
        record.stack_info = mask_text(record.stack_info)


def install() -> None:
    """Mask every log record of this process from now on (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _mask_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
