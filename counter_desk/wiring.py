"""The one place the desk's services are built, with their concrete types, and handed to the core.

`build_core(settings)` builds, in this order: the device credential store and the HallClient
(I/O: the keyring), the EventBus, the matter Catalog (SQLite), the durable Outbox with its
HallSender, the DocumentService (encrypted store + upload kind on the outbox), the CounterCore
around them, then the two services that follow the core's session and desk: the PadService with
its transport (LAN page or serial box; the second screen needs the window, see `build_app`) and
the UpdateService (started at once when IT set `update_url`).

`build_app(settings)` is the desk window: the core first (its I/O runs before any Tk window
exists), then `ui.app.DeskApp`, then the second-screen pad, whose transport draws on the
window's Tk root.

Every module named here is imported by a statement, so PyInstaller bundles what the desk runs
(the frozen desk once lacked the catalog, outbox and documents: the core loaded them by string).
A service that cannot be built is a startup error (catalog, outbox) or is logged and left None
(documents, pad, updates); `counter-app --self-test` lists each one and fails if any is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from api_client import HallClient
from counter_app.applicant_desk import ApplicantDesk
from counter_app.catalog import Catalog
from counter_app.config import Settings
from counter_app.core import CounterCore
from counter_app.credentials import CredentialStore, select_os_backend_if_frozen
from counter_app.documents.service import DocumentService
from counter_app.events import EventBus
from counter_app.idcard.base import IdCardReader
from counter_app.idcard.sdk import SdkIdCardReader
from counter_app.idcard.serial_reader import SerialIdCardReader
from counter_app.outbox import HallSender, Outbox
from counter_app.pad.base import PadTransport
from counter_app.pad.serial_box import SerialButtonBox
from counter_app.pad.server_pad import ServerPadTransport
from counter_app.pad.service import PadService
from counter_app.updates import UpdateService

if TYPE_CHECKING:
    from api_client.models import Hall
    from ui.app import DeskApp

log = logging.getLogger(__name__)

#: `pad_transport` values and the transport each one means ("web" is the old name of "lan").
PAD_KINDS = {"lan": "lan", "web": "lan", "serial": "serial", "second_screen": "second_screen",
             "none": "none"}


def pad_kind(settings: Settings) -> str:
    """The configured pad as "lan" | "serial" | "second_screen" | "none"."""
    return PAD_KINDS.get((settings.pad_transport or "none").strip().lower(), "none")


def make_client(settings: Settings, credentials: CredentialStore,
                warnings: list[tuple[str, str]]) -> HallClient:
    """The HallClient with this PC's device credential from the keyring (if any)."""
    select_os_backend_if_frozen()
    cred = None
    try:
        cred = credentials.load()
    except Exception:
        log.exception("reading the device credential failed")
    if credentials.warning:
        warnings.append(credentials.warning)
    s = settings
    return HallClient(
        s.server_url, ca_bundle=s.ca_bundle, proxies=s.proxies,
        device_id=cred.device_id if cred else None,
        device_secret=cred.device_secret if cred else None,
    )


def make_documents(settings: Settings, client: HallClient, outbox: Outbox,
                   bus: EventBus) -> DocumentService | None:
    """Scanned documents (encrypted store + upload kind on the outbox); None if they cannot run."""
    folder = settings.scanner_folder
    try:
        return DocumentService.for_core(settings.data_dir, client, outbox, bus,
                                        hot_folder=Path(folder) if folder else None)
    except Exception:
        log.exception("document capture not available")
        return None


def make_pad_transport(settings: Settings, client: HallClient) -> PadTransport | None:
    """The transport `pad_transport` names, when it needs no window (tablet pad, serial box).

    The tablet pad ("lan") is the hall server's client (hall_server/pad_site.py): the desk serves
    it nothing and relays none of its messages; it only follows the outcome on the server."""
    kind = pad_kind(settings)
    if kind == "lan":
        return ServerPadTransport(client, int(settings.window_no))
    if kind == "serial":
        return SerialButtonBox(settings.pad_serial_port, baudrate=settings.pad_serial_baud)
    return None


def attach_pad(core: CounterCore, transport: PadTransport) -> PadService:
    """The PadService for `transport` on `core` (started by the core at sign-in)."""
    service = PadService(core, transport)
    core.pad = service
    return service


def make_updates(core: CounterCore, *, start: bool = True) -> UpdateService | None:
    """The background update service when IT set `update_url`; None if it cannot run here."""
    if not core.settings.update_url:
        return None
    try:
        service = UpdateService.for_core(core.settings, core.bus, core)
    except Exception as exc:  # e.g. no install folder: the desk works on, not updated
        log.warning("signed updates are off: %s", exc)
        return None
    if start:
        service.start()
    return service


def make_applicants(settings: Settings, client: HallClient) -> ApplicantDesk:
    """The applicant service: the GA 467 reader on `idcard_port` when IT set one (the port is
    opened at the first read, so a missing reader never stops the desk), else manual entry."""
    reader: IdCardReader | None = None
    if settings.idcard_sdk:
        port = int(settings.idcard_port) if settings.idcard_port.isdigit() else 1001
        reader = SdkIdCardReader(settings.idcard_sdk, port)
    elif settings.idcard_port:
        reader = SerialIdCardReader(settings.idcard_port, baudrate=settings.idcard_baud)
    return ApplicantDesk(client, reader)


def build_core(settings: Settings, *, bus: EventBus | None = None,
               client: HallClient | None = None, credentials: CredentialStore | None = None,
               start_updates: bool = True,
               warnings: Sequence[tuple[str, str]] = ()) -> CounterCore:
    """Every service of the desk, built and handed to one CounterCore (worker or main thread:
    this opens SQLite files and reads the keyring, so never on the Tk thread). ``warnings``
    (zh, en) about this PC's config join the core's, shown on the sign-in screen."""
    bus = bus or EventBus()
    warnings = list(warnings)
    if client is None:
        client = make_client(settings, credentials or CredentialStore.for_settings(settings),
                             warnings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(settings.data_dir / "catalog.sqlite3", client, bus)
    outbox = Outbox(settings.data_dir / "outbox.sqlite3", HallSender(client), bus=bus)
    documents = make_documents(settings, client, outbox, bus)
    core = CounterCore(settings, client=client, bus=bus, catalog=catalog, outbox=outbox,
                       documents=documents, warnings=warnings)
    try:
        transport = make_pad_transport(settings, client)
    except Exception as exc:  # a bad pad setting is said, not fatal: the desk works without it
        log.error("evaluator pad (%s) not built: %s", pad_kind(settings), exc)
        transport = None
    if transport is not None:
        attach_pad(core, transport)
    core.updates = make_updates(core, start=start_updates)
    core.applicants = make_applicants(settings, client)
    return core


def build_app(settings: Settings, *, core: CounterCore | None = None,
              warnings: Sequence[tuple[str, str]] = ()) -> DeskApp:
    """The desk window on a core (built here if not given), with the second-screen pad if set."""
    from ui.app import DeskApp
    from ui.pad_window import SecondScreenPad

    if core is None:
        # Built before the window exists: opening the local databases and reading the device
        # credential from the keyring is I/O, and no Tk event loop may wait on it.
        core = build_core(settings, warnings=warnings)
    app = DeskApp(settings, core=core)
    if pad_kind(settings) == "second_screen" and core.pad is None:
        runner = app.runner
        try:
            screen = SecondScreenPad(app.root, lambda fn: runner.call_soon(0, fn),
                                     geometry=settings.pad_screen_geometry or "+1280+0")
        except Exception as exc:  # the desk works without its pad
            log.error("evaluator pad (second_screen) not built: %s", exc)
            return app

        def hall_loaded(hall: Hall) -> None:
            # The hall's name is the server's (the config knows only its code): the pad's
            # header shows it from the first screen after sign-in on.
            screen.hall_name = (hall.name_zh, hall.name_en)

        core.on_hall_loaded.append(hall_loaded)
        attach_pad(core, screen)
    return app
