"""Events the core publishes, and the thread-safe bus that carries them.

Events are frozen dataclasses named in the past tense. Handlers run on the publishing thread
(usually a worker); the UI's dispatcher marshals them onto the Tk thread. A failing handler is
logged and never stops the others or the publisher.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from api_client.models import Case, QueueSnapshot, Staff, Stats, Ticket, Window
    from counter_app.errors import CounterError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignedIn:
    staff: Staff
    window: Window | None


@dataclass(frozen=True)
class SignedOut:
    pass


@dataclass(frozen=True)
class Locked:
    pass


@dataclass(frozen=True)
class Unlocked:
    pass


@dataclass(frozen=True)
class QueueChanged:
    snapshot: QueueSnapshot


@dataclass(frozen=True)
class TicketArrivedInEmptyQueue:
    ticket: Ticket


@dataclass(frozen=True)
class ConnectionChanged:
    state: str  # "online" | "reconnecting" | "offline" | "polling"
    detail: str = ""


@dataclass(frozen=True)
class DeskChanged:
    state: str  # "idle" | "calling" | "serving" | "paused" | "closed"
    ticket: Ticket | None
    case: Case | None


@dataclass(frozen=True)
class TicketTakenElsewhere:
    number: str


@dataclass(frozen=True)
class CatalogSynced:
    count: int
    version: int


@dataclass(frozen=True)
class StatsUpdated:
    stats: Stats


@dataclass(frozen=True)
class OutboxChanged:
    depth: int
    oldest_age_s: float | None
    dead: int


@dataclass(frozen=True)
class ErrorRaised:
    error: CounterError


@dataclass(frozen=True)
class DocumentUploadProgress:
    """A scanned document's delivery: state "queued" | "uploading" | "confirmed" | "failed"."""

    doc_id: str
    item_id: str
    sent: int
    total: int
    state: str
    reason: str = ""  # for "failed": why (the outbox retries unless the item is dead)
    case_id: int | None = None


@dataclass(frozen=True)
class RatingRequested:
    """The evaluator pad was asked to rate this case (the desk's own rating controls lock)."""

    case_id: int


@dataclass(frozen=True)
class RatingStored:
    """A pad rating passed the desk's checks and is durable in the outbox."""

    rating_id: str
    case_id: int


@dataclass(frozen=True)
class RatingNotGiven:
    """No rating within the timeout: the pad shows the rate-later QR."""

    case_id: int


@dataclass(frozen=True)
class PadStateChanged:
    """The pad link: "paired" | "unpaired" | "offline" | "connected"."""

    state: str


@dataclass(frozen=True)
class UpdateReady:
    """A newer signed version is downloaded and verified; it is installed after sign-out."""

    version: str


@dataclass(frozen=True)
class UpdateInstalled:
    """The downloaded version was switched in between shifts; it runs from the next start."""

    version: str


Handler = Callable[[Any], None]


class EventBus:
    """Publish/subscribe by event type; `subscribe(None, h)` receives every event.

    Callable from any thread. Handlers of a type also receive events of its subclasses.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: dict[type | None, list[Handler]] = {}

    def subscribe(self, event_type: type | None, handler: Handler) -> Callable[[], None]:
        """Register `handler`; returns a function that unsubscribes it (safe to call twice)."""
        with self._lock:
            self._handlers.setdefault(event_type, []).append(handler)

        def unsubscribe() -> None:
            with self._lock:
                handlers = self._handlers.get(event_type, [])
                if handler in handlers:
                    handlers.remove(handler)

        return unsubscribe

    def publish(self, event: object) -> None:
        """Deliver `event` to its subscribers on this thread; handler errors are logged."""
        with self._lock:
            # Copy under the lock and call outside it: a handler may subscribe, unsubscribe or
            # publish again without deadlocking.
            targets: list[Handler] = []
            for cls in type(event).__mro__:
                targets += self._handlers.get(cls, [])
            targets += self._handlers.get(None, [])
        for handler in targets:
            try:
                handler(event)
            except Exception:
                log.exception("event handler %r failed on %s", handler, type(event).__name__)
