"""CounterCore: the desk's services around one HallClient and one EventBus.

The core does not build its services: the composition root (`counter_desk.wiring.build_core`)
builds the client, the catalog, the outbox, the documents, the pad and the update service with
their concrete types and hands them over here, so every module the desk runs is named by an
import statement PyInstaller can see. The core owns the order of things at sign-in (hall, desk
state from the server's snapshot, live queue, pad, outbox, catalog in the background) and at
sign-out and close. All blocking methods are for worker threads; nothing here touches Tk.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from counter_app.applicant_desk import ApplicantDesk
from counter_app.catalog import Catalog
from counter_app.config import Settings
from counter_app.desk import Desk
from counter_app.documents.service import DocumentService
from counter_app.errors import CounterError, from_api
from counter_app.events import ErrorRaised, EventBus, SignedOut, StatsUpdated
from counter_app.live import LiveQueue
from counter_app.outbox import Outbox
from counter_app.session import SessionService

if TYPE_CHECKING:
    from api_client import HallClient
    from api_client.models import Hall, Me, Stats, WindowFollowups
    from counter_app.pad.service import PadService
    from counter_app.updates import UpdateService

log = logging.getLogger(__name__)


class CounterCore:
    """The headless core: `.bus .client .session .desk .live .catalog .outbox .documents .pad
    .updates .hall`.

    `catalog`, `outbox` and `documents` are None only in a core built without them on purpose
    (a unit test); `pad` is None when no pad is configured, `updates` when IT set no update_url
    or the install cannot be updated. `pad` and `updates` are attached by the wiring after the
    core exists, because both follow the core's session and desk.
    """

    def __init__(self, settings: Settings, *, client: HallClient, bus: EventBus | None = None,
                 catalog: Catalog | None = None, outbox: Outbox | None = None,
                 documents: DocumentService | None = None,
                 warnings: list[tuple[str, str]] | None = None) -> None:
        self.settings = settings
        self.bus = bus or EventBus()
        self.warnings: list[tuple[str, str]] = list(warnings or [])
        self.client: HallClient = client
        self.live = LiveQueue(self.client, self.bus, settings.window_no)
        self.desk = Desk(self.client, self.bus, settings.window_no,
                         snapshot_source=lambda: self.live.snapshot)
        self.live.on_snapshot.append(self.desk.adopt)
        self.session = SessionService(self.client, self.bus, settings.window_no,
                                      idle_lock_minutes=settings.idle_lock_minutes)
        self.session.on_signed_in.append(self._after_sign_in)
        self.session.on_signing_out.append(self._before_sign_out)
        self.bus.subscribe(SignedOut, lambda _e: self.desk.reset())
        self.hall: Hall | None = None
        #: Called (worker thread) with the hall each time it is loaded at sign-in.
        self.on_hall_loaded: list[Callable[[Hall], None]] = []
        self.catalog: Catalog | None = catalog
        self.outbox: Outbox | None = outbox
        self.documents: DocumentService | None = documents
        self._closed = False
        self._catalog_thread: threading.Thread | None = None
        # The evaluator pad (issue 5): attached by the wiring, started at sign-in.
        self.pad: PadService | None = None
        # Signed updates (issue 7): attached by the wiring; never installs while serving.
        self.updates: UpdateService | None = None
        # The applicant on the case (issue 17): ID card reader + manual entry, attached by the
        # wiring; F11 on the desk drives it (docs/applicant.md). What it holds in memory for
        # printing goes at sign-out.
        self.applicants: ApplicantDesk | None = None
        self.bus.subscribe(SignedOut, lambda _e: self._forget_applicants())

    def _forget_applicants(self) -> None:
        if self.applicants is not None:
            self.applicants.forget()

    def _start_pad(self) -> None:
        if self.pad is None:
            return
        try:
            self.pad.start()
        except Exception as exc:  # the desk works on without the pad's status
            log.warning("the pad status watcher could not start: %s", exc)

    # -- sign-in / sign-out ------------------------------------------------------------------
    def _after_sign_in(self, me: Me) -> None:
        try:
            self.hall = hall = self.client.hall()
            for hook in list(self.on_hall_loaded):
                hook(hall)
        except Exception as exc:
            self._report(exc, "loading the hall")
        try:
            self.desk.resync()
        except Exception as exc:
            self._report(exc, "rebuilding the desk")
        self.live.start()
        self._start_pad()
        if self.outbox is not None:
            try:
                self.outbox.start()
            except Exception as exc:
                self._report(exc, "starting the outbox")
        if self.catalog is not None:
            self._catalog_thread = threading.Thread(target=self._sync_catalog,
                                                    name="catalog-sync", daemon=True)
            self._catalog_thread.start()

    def _before_sign_out(self) -> None:
        self.live.stop()

    def _sync_catalog(self) -> None:
        if self.catalog is None:
            return
        try:
            # The catalog publishes CatalogSynced on the bus itself.
            self.catalog.sync()
        except Exception as exc:
            self._report(exc, "syncing the catalog")

    def _report(self, exc: BaseException, doing: str) -> None:
        err = exc if isinstance(exc, CounterError) else from_api(exc)
        log.warning("%s failed: %s", doing, err, exc_info=not isinstance(exc, CounterError))
        self.bus.publish(ErrorRaised(err))

    # -- figures -----------------------------------------------------------------------------
    def refresh_stats(self, day: date | None = None) -> Stats:
        """Today's figures for this window; publishes StatsUpdated."""
        try:
            stats = self.client.stats(day, window_no=self.settings.window_no)
        except Exception as exc:
            raise from_api(exc) from exc
        self.bus.publish(StatsUpdated(stats))
        return stats

    def window_followups(self) -> WindowFollowups:
        """This window's unfinished bad-rating follow-ups and its appeals (the desk's Ctrl+G)."""
        try:
            return self.client.window_followups(self.settings.window_no)
        except Exception as exc:
            raise from_api(exc) from exc

    def close(self) -> None:
        """Stop threads and close the client (sign out first if you want the window closed)."""
        if self._closed:
            return
        self._closed = True
        self.live.stop()
        if self.updates is not None:
            try:
                # Installs a downloaded version if nobody is serving (the shift is over).
                self.updates.close()
            except Exception:
                log.exception("closing the update service failed")
        if self.pad is not None:
            try:
                self.pad.stop()
            except Exception:
                log.exception("stopping the pad link failed")
        self.session.close()
        if self.documents is not None:
            try:
                self.documents.close()
            except Exception:
                log.exception("closing document capture failed")
        if self.outbox is not None:
            try:
                self.outbox.close()
            except Exception:
                log.exception("closing the outbox failed")
        if self._catalog_thread is not None:
            # Let a running sync finish its transaction before its database is closed.
            self._catalog_thread.join(30)
        if self.catalog is not None:
            try:
                self.catalog.close()
            except Exception:
                log.exception("closing the catalog failed")
        self.client.close()
