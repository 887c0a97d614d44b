"""The narrow, typed view of the desk core that PadService needs (structural Protocols:
CounterCore satisfies them as it is; a test may pass anything with the same members).

Read-only properties, so a frozen dataclass field or a plain attribute both fit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from api_client.models import (
    Hall,
    Matter,
    PadInfo,
    RatingChallenge,
    RatingReasons,
    RatingSubmission,
    Staff,
    Window,
)
from counter_app.events import Handler


class PadSettings(Protocol):
    @property
    def server_url(self) -> str: ...

    @property
    def window_no(self) -> int: ...


class PadBus(Protocol):
    def subscribe(self, event_type: type | None, handler: Handler) -> Callable[[], None]: ...

    def publish(self, event: object) -> None: ...


class PadClient(Protocol):
    """The hall server calls PadService makes (HallClient has them)."""

    def staff_photo(self, staff_no: str) -> bytes: ...

    def window_pads(self, window_no: int) -> list[PadInfo]: ...

    def rating_reasons(self) -> RatingReasons: ...

    def rating_challenge(self, case_id: int, *,
                         idempotency_key: str | None = None) -> RatingChallenge: ...

    def rate_later_link(self, case_id: int) -> str: ...


class PadSession(Protocol):
    @property
    def staff(self) -> Staff | None: ...

    @property
    def window(self) -> Window | None: ...


class PadDesk(Protocol):
    @property
    def window(self) -> Window | None: ...


class PadCatalog(Protocol):
    def get(self, code: str) -> Matter | None: ...


class PadOutbox(Protocol):
    def enqueue_rating(self, rating: RatingSubmission) -> str: ...


class PadCore(Protocol):
    """What PadService reads of the core (counter_app.core.CounterCore)."""

    @property
    def settings(self) -> PadSettings: ...

    @property
    def bus(self) -> PadBus: ...

    @property
    def client(self) -> PadClient: ...

    @property
    def session(self) -> PadSession: ...

    @property
    def desk(self) -> PadDesk: ...

    @property
    def hall(self) -> Hall | None: ...

    @property
    def catalog(self) -> PadCatalog | None: ...

    @property
    def outbox(self) -> PadOutbox | None: ...
