"""Document capture into the checklist: sources (SANE, TWAIN, hot folder, file), the encrypted
local store, PDF assembly, resumable upload through the outbox, and the one-time notification.

Every function here blocks (scanner, disk, network, image work): call from worker threads only.
See docs/documents.md for the flow and the guarantees.
"""

from __future__ import annotations

from counter_app.errors import CounterError


class DocumentError(CounterError):
    """A capture, validation, storage or upload problem, with a message for the clerk."""

    default_zh = "材料处理失败"
    default_en = "The document could not be processed"


__all__ = ["DocumentError"]
