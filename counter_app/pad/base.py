"""The pad interface: what the desk shows the citizen and what a rating transport hands back.

Shared by every transport (LAN pad with signed ratings, second screen, serial box) and by
PadService. Kept free of I/O and of tkinter so any part can import it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

#: The five satisfaction levels, best first (docs/hall-api.md, DOMAIN.md).
LEVELS: tuple[str, ...] = (
    "very_satisfied",
    "satisfied",
    "basic",
    "dissatisfied",
    "very_dissatisfied",
)
#: Levels that need a reason code or a comment.
LEVELS_NEEDING_REASON: frozenset[str] = frozenset({"dissatisfied", "very_dissatisfied"})


@dataclass(frozen=True)
class ClerkCard:
    """What the pad shows when idle: who serves you."""

    staff_no: str
    name_zh: str
    name_en: str
    window_no: int
    window_name_zh: str
    window_name_en: str
    photo_png: bytes | None


@dataclass(frozen=True)
class RatingRequest:
    """Sent to the pad after complete / on F10."""

    case_id: int
    case_no: str
    window_no: int
    matter_name_zh: str
    matter_name_en: str
    challenge: str  # server-issued, base64url
    reasons_version: str
    reasons: tuple[tuple[str, str, str], ...]  # (code, text_zh, text_en) from GET /rating-reasons
    timeout_s: float  # no answer within this -> "not rated" screen with the rate-later QR
    rate_later_url: str  # link/QR to rate later within rules.rate_later_days


@dataclass(frozen=True)
class PadRating:
    """What a transport hands back."""

    rating_id: str
    case_id: int
    level: str
    reasons: tuple[str, ...]
    comment: str
    source: str  # "pad" | "second_screen" | "serial"
    challenge: str
    rated_at: str  # ISO UTC
    pad_id: str | None = None
    pad_counter: int | None = None
    signature: str | None = None
    window_no: int = 0


class PadTransport(Protocol):
    """A way to reach the citizen-facing evaluator: LAN pad, second screen or serial box."""

    name: str  # "lan" | "second_screen" | "serial"
    assurance: str  # "signed" (lan) | "unsigned" (second_screen, serial)

    def start(
        self, on_rating: Callable[[PadRating], None], on_state: Callable[[str], None]
    ) -> None:
        """Begin; on_state("paired"|"unpaired"|"offline"|"connected"); callbacks from any thread."""
        ...

    def stop(self) -> None: ...

    def show_idle(self, card: ClerkCard) -> None: ...

    def show_paused(self, public_zh: str, public_en: str) -> None: ...

    def ask_rating(self, request: RatingRequest, card: ClerkCard) -> None: ...

    def show_not_rated(self, rate_later_url: str) -> None: ...

    def show_thanks(self) -> None: ...
