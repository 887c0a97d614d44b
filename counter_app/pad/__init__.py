"""The citizen-facing evaluator pad: interface, service and transports (LAN pad, pairing)."""

from __future__ import annotations

from counter_app.pad.base import (
    LEVELS,
    LEVELS_NEEDING_REASON,
    ClerkCard,
    PadRating,
    PadTransport,
    RatingRequest,
)

__all__ = [
    "LEVELS",
    "LEVELS_NEEDING_REASON",
    "ClerkCard",
    "PadRating",
    "PadTransport",
    "RatingRequest",
]
