"""CounterCore: wires the desk's services together around one HallClient and one EventBus.

Built once per process from the Settings. Owns the order of things at sign-in (hall, desk state
from the server's snapshot, live queue, catalog in the background) and at sign-out. All blocking
methods are for worker threads; nothing here touches Tk.
"""

from __future__ import annotations

import importlib
import logging
import threading
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from counter_app.config import Settings
from counter_app.credentials import CredentialStore, select_os_backend_if_frozen
from counter_app.desk import Desk
from counter_app.errors import CounterError, from_api
from counter_app.events import ErrorRaised, EventBus, SignedOut, StatsUpdated
from counter_app.live import LiveQueue
from counter_app.session import SessionService

if TYPE_CHECKING:
    from api_client import HallClient
    from api_client.models import Hall, Me, Stats

log = logging.getLogger(__name__)


def _optional(module: str) -> Any:
    """Import a sibling service that may not have landed yet (catalog, outbox)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        log.warning("%s not available: %s", module, exc)
        return None


class CounterCore:
    """The headless core: `.bus .client .session .desk .live .catalog .outbox .hall`."""

    def __init__(self, settings: Settings, *, bus: EventBus | None = None,
                 client: HallClient | None = None,
                 credentials: CredentialStore | None = None) -> None:
        self.settings = settings
        self.bus = bus or EventBus()
        self.credentials = credentials or CredentialStore(settings.server_url)
        self.warnings: list[tuple[str, str]] = []
        if client is None:
            client = self._make_client()
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
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        cat_mod = _optional("counter_app.catalog")
        self.catalog: Any = (cat_mod.Catalog(settings.data_dir / "catalog.sqlite3", self.client,
                                             self.bus) if cat_mod else None)
        out_mod = _optional("counter_app.outbox")
        self.outbox: Any = (out_mod.Outbox(settings.data_dir / "outbox.sqlite3",
                                           out_mod.HallSender(self.client), bus=self.bus)
                            if out_mod else None)
        self.documents: Any = self._make_documents()
        self._closed = False
        self._catalog_thread: threading.Thread | None = None
        # The evaluator pad (issue 5): built when configured, started at sign-in.
        self.pad: Any = self._make_pad() if settings.pad_transport in ("lan", "web") else None
        # Signed updates (issue 7): only when IT set update_url; never installs while serving.
        self.updates: Any = self._make_updates() if settings.update_url else None

    def _make_documents(self) -> Any:
        """Scanned documents (encrypted store + upload kind on the outbox); None if unavailable."""
        doc_mod = _optional("counter_app.documents.service")
        if doc_mod is None:
            return None
        folder = getattr(self.settings, "scanner_folder", "") or ""
        try:
            return doc_mod.DocumentService.for_core(
                self.settings.data_dir, self.client, self.outbox, self.bus,
                hot_folder=Path(folder) if folder else None)
        except Exception:
            log.exception("document capture not available")
            return None

    def _make_updates(self) -> Any:
        """The background update service, started now; None if it cannot run here."""
        upd_mod = _optional("counter_app.updates")
        if upd_mod is None:
            return None
        try:
            service = upd_mod.UpdateService.for_core(self)
        except Exception as exc:  # e.g. no install folder: the desk works on, not updated
            log.warning("signed updates are off: %s", exc)
            return None
        service.start()
        return service

    def _make_client(self) -> HallClient:
        from api_client import HallClient

        select_os_backend_if_frozen()
        cred = None
        try:
            cred = self.credentials.load()
        except Exception:
            log.exception("reading the device credential failed")
        if self.credentials.warning:
            self.warnings.append(self.credentials.warning)
        s = self.settings
        return HallClient(
            s.server_url, ca_bundle=s.ca_bundle, proxies=s.proxies,
            device_id=cred.device_id if cred else None,
            device_secret=cred.device_secret if cred else None,
        )

    def _make_pad(self) -> Any:
        # The tablet pad is the hall server's client (hall_server/pad_site.py): the desk
        # serves it nothing and relays none of its messages; it only follows the outcome.
        from counter_app.pad.server_pad import ServerPadTransport
        from counter_app.pad.service import PadService

        return PadService(self, ServerPadTransport(self.client, int(self.settings.window_no)))

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
            self.hall = self.client.hall()
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
        close = getattr(self.catalog, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                log.exception("closing the catalog failed")
        self.client.close()
