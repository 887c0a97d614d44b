"""The application factory: `create_app(settings)` wires the store, migrations, demo seeding,
events, middleware (request ids, body limits) and the routes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import hashlib
import hmac
import itertools
import json
import logging
import os
import random
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hall_server import (
    __version__,
    admin,
    api,
    applicants,
    console,
    console_followups,
    console_reports,
    demo_history,
    display,
    documents,
    followup_demo,
    followups,
    hallsetup,
    heartbeat,
    identity,
    lifecycle,
    logmask,
    mailing,
    pad_guard,
    pad_site,
    pads,
    pair_page,
    queue,
    rate_later,
    rating_channels,
    reports,
    workdays,
)
from hall_server import schema as t
from hall_server.core import Hall, get_meta, set_meta
from hall_server.db import Store, Tx
from hall_server.deps import SessionWatch
from hall_server.errors import ApiError, envelope, install_handlers
from hall_server.events import Broker, PgListener
from hall_server.security import (
    KEY_CHECK_LABEL,
    SecretMismatch,
    TokenSigner,
    prune_limits,
    read_or_create_secret,
    secret_path,
)
from hall_server.seed import hall_code, seed_demo
from hall_server.settings import Settings

log = logging.getLogger("hall_server")


# A random per-process prefix and a counter: unique ids without an os.urandom call per request
# (measured at ~0.17 ms each on these loaded machines).
_RID_PREFIX = uuid.uuid4().hex[:12]
_rid_counter = itertools.count(1)


class RequestIdAndLimits:
    """Pure ASGI middleware: `X-Request-ID` on every response, and 413 for bodies too big."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def _limit(self, scope: Scope) -> int:
        path: str = scope.get("path", "")
        if scope.get("method") == "PATCH" and path.startswith("/api/v1/uploads/"):
            return self.settings.max_chunk_bytes
        if path == "/api/v1/admin/matters/import":
            return self.settings.max_import_bytes
        if path == "/console/catalog":
            return self.settings.max_import_bytes
        if path in ("/console/staff/photo", "/console/calendar", "/console/reasons/rating"):
            return console.MAX_UPLOAD + 64 * 1024
        if path.startswith("/api/v1/admin/staff/") and path.endswith("/photo"):
            # a phone's photo is bigger than a JSON body; just over the limit gets bad_photo
            return admin.PHOTO_MAX_BYTES + 64 * 1024
        return self.settings.max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = ""
        for k, v in scope.get("headers", []):
            if k == b"x-request-id":
                candidate = v.decode("latin-1")
                if 0 < len(candidate) <= 100 and candidate.isprintable():
                    rid = candidate
                break
        rid = rid or f"{_RID_PREFIX}{next(_rid_counter):010x}"
        scope.setdefault("state", {})["request_id"] = rid
        rid_b = rid.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                headers.append((b"x-request-id", rid_b))
                message["headers"] = headers
            await send(message)

        limit = self._limit(scope)
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    too_big = int(v) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(send_with_id, rid, limit)
                    return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise ApiError(413, "too_large", {"limit": limit})
            return message

        await self.app(scope, counting_receive, send_with_id)

    @staticmethod
    async def _reject(send: Send, rid: str, limit: int) -> None:
        err = ApiError(413, "too_large", {"limit": limit})
        body = json.dumps(envelope(rid, err.code, err.message_zh, err.message_en, err.details),
                          ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _server_secret(store: Store, settings: Settings) -> bytes:
    """The server secret from its file (made on first start), never from the database. A key
    an older version kept in `meta.token_key` is moved into the file (tokens it signed stay
    valid) and deleted from the database. The database keeps only a check value, so a process
    started with ANOTHER secret (another data folder, no shared HALL_SECRET_FILE) refuses to
    start instead of signing tokens the other processes reject."""
    path = secret_path(settings.data_dir, settings.secret_file)
    legacy = store.read_sync(lambda c: get_meta(c, "token_key"))
    key = read_or_create_secret(path, base64.b64decode(legacy) if legacy else None)
    check = hmac.new(key, KEY_CHECK_LABEL, hashlib.sha256).hexdigest()

    def fn(tx: Tx) -> str:
        tx.conn.execute(t.meta.delete().where(t.meta.c.key == "token_key"))
        known = get_meta(tx.conn, "token_key_check")
        if known is None:
            set_meta(tx.conn, "token_key_check", check)
            return check
        return known

    if store.write_sync(fn) != check:
        raise SecretMismatch(
            f"the server secret in {path} is not the one this database's other servers use: "
            "give every server of the hall the same secret file (HALL_SECRET_FILE) / "
            "服务器密钥与本数据库其他服务器不一致：请让各服务器使用同一密钥文件"
        )
    return key


def _private_files(settings: Settings, url: str) -> None:
    """Folders 0700 and files 0600 in the data folder (the database, its WAL, the secret,
    uploads and documents): nothing there is for other users of the machine."""
    def private(path: str, mode: int) -> None:
        try:
            os.chmod(path, mode)
        except FileNotFoundError:
            pass
        except OSError as e:  # not ours (a shared folder): say so, do not refuse to start
            log.warning("could not make %s private (%o): %s", path, mode, e)

    private(str(settings.data_dir), 0o700)
    if url.startswith("sqlite:///"):
        db = Path(url[len("sqlite:///"):])
        if not db.exists():
            # Created private before SQLite opens it (its -wal and -shm files copy its mode).
            with contextlib.suppress(OSError):
                os.close(os.open(db, os.O_CREAT | os.O_WRONLY, 0o600))
    for root, dirs, files in os.walk(settings.data_dir):
        for d in dirs:
            private(os.path.join(root, d), 0o700)
        for f in files:
            private(os.path.join(root, f), 0o600)


async def _simulate_arrivals(hall: Hall, rate_per_min: float) -> None:
    """Demo citizens: tickets at `rate_per_min` (Poisson), ~8% green channel, ~10% appointments."""
    rng = random.Random(hall.settings.seed)
    cats = await hall.store.read(lambda c: [r[0] for r in c.exec_driver_sql("SELECT code FROM categories")])
    matters = await hall.store.read(
        lambda c: [tuple(r) for r in c.exec_driver_sql("SELECT code, category FROM matters WHERE deleted = false")]
    )
    by_cat: dict[str, list[str]] = {}
    for code, cat in matters:
        by_cat.setdefault(cat, []).append(code)
    while True:
        await asyncio.sleep(rng.expovariate(rate_per_min / 60.0))
        cat = rng.choice(cats)
        roll = rng.random()
        priority = "green" if roll < 0.08 else ("appointment" if roll < 0.18 else "normal")
        matter = rng.choice(by_cat[cat]) if by_cat.get(cat) and rng.random() < 0.6 else None
        appt = None
        if priority == "appointment":
            from hall_server.db import now_ms

            appt = now_ms() + rng.randint(-10, 30) * 60_000
        try:
            await hall.store.write(
                lambda tx, c=cat, p=priority, m=matter, a=appt: queue.issue_ticket(tx, hall, c, p, m, a)
            )
        except Exception:  # noqa: BLE001 - the simulator must keep running
            log.exception("arrival simulator failed to issue a ticket")


async def _prune_events(hall: Hall) -> None:
    """Events are kept for replay for `event_keep_seconds` (24 h), then deleted hourly; sign-in
    limit rows whose window is over and pad proofs past their replay window go at the same time
    (those tables stay bounded)."""
    from hall_server.db import now_ms, run

    while True:
        cutoff = now_ms() - hall.settings.event_keep_seconds * 1000
        try:
            # By id, not at_ms alone: ids follow commit order but at_ms is taken earlier, so
            # cutting by time could leave a hole just above the cut (check-db reports holes).
            def prune(tx: Tx, c: int = cutoff) -> None:
                run(tx.conn, "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events WHERE at_ms < :c)",
                    {"c": c})

            await hall.store.write(prune)
            await hall.store.write(
                lambda tx: prune_limits(tx.conn, hall.settings.login_failure_window_s, now_ms())
            )
            await hall.store.write(lambda tx: pad_guard.prune_proofs_op(tx.conn, now_ms()))
        except Exception:  # noqa: BLE001 - pruning must never stop the server
            log.exception("event pruning failed")
        await asyncio.sleep(3600)


def _with_hall_settings(settings: Settings, rt: hallsetup.Runtime) -> Settings:
    changes: dict[str, Any] = {}
    if rt.timezone:
        changes["timezone"] = rt.timezone
    if rt.rules is not None:
        changes["rules"] = rt.rules.desk_rules()
    return dataclasses.replace(settings, **changes) if changes else settings


async def _follow_hall_settings(hall: Hall, every_s: float = 30.0) -> None:
    """Rules and the working calendar changed by the CLI or by another worker process reach
    this process within `every_s` (the admin API also applies them at once in its own)."""
    while True:
        await asyncio.sleep(every_s)
        try:
            rt = await asyncio.to_thread(hallsetup.runtime, hall.store)
        except Exception:  # noqa: BLE001 - a database hiccup must not stop the follower
            log.exception("reading the hall settings failed")
            continue
        if rt.rules is not None:
            hall.rules = rt.rules.desk_rules()
        workdays.set_current(rt.calendar)
        _warn_calendar(rt.calendar)


_calendar_warned: dict[str, object] = {}


def _warn_calendar(cal: workdays.WorkCalendar) -> None:
    """Log (once per day and process) that a year deadlines may reach has no calendar."""
    today = dt.date.today()
    gaps = workdays.missing_years(cal, today)
    if gaps and _calendar_warned.get("day") != today:
        _calendar_warned["day"] = today
        log.warning("%s", workdays.missing_years_message(gaps))


def create_app(settings: Settings) -> FastAPI:
    logmask.install()  # secrets and personal data never reach a log line (issue 10, finding 10)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    url = settings.database_url()
    _private_files(settings, url)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(url)
        if settings.migrate_on_start:
            await asyncio.to_thread(store.migrate)
        if settings.demo:
            await asyncio.to_thread(seed_demo, store, settings.seed)
        key = await asyncio.to_thread(_server_secret, store, settings)
        await asyncio.to_thread(_private_files, settings, url)
        # The hall's own settings (hall-server init / admin) win over the defaults in Settings.
        rt = await asyncio.to_thread(hallsetup.runtime, store)
        workdays.set_current(rt.calendar)
        _warn_calendar(rt.calendar)
        hall = Hall(_with_hall_settings(settings, rt), store, TokenSigner(key, settings.access_token_seconds))
        if settings.demo and settings.demo_history:
            tz = rt.timezone or settings.timezone
            today = datetime.now(ZoneInfo(tz)).date()
            docs = settings.data_dir / "documents"  # the paper forms' scans, as documents.py stores them
            docs.mkdir(mode=0o700, parents=True, exist_ok=True)
            await asyncio.to_thread(demo_history.seed, store, hall_code(store), tz, today, settings.seed,
                                    hall.signer.documents_key, docs)
            # Bad ratings in every follow-up state, the history's worked through (docs/followup.md).
            await asyncio.to_thread(followup_demo.seed_followups_demo, store, tz)
        hall.server_secret = key
        hall.rate_later_key = rate_later.derive_key(key)
        await asyncio.to_thread(documents.encrypt_legacy_documents, store, hall.signer.documents_key)
        hall.heartbeat = heartbeat.Heartbeat(store, min(60.0, max(settings.stale_window_seconds, 4) / 4))
        hall.session_watch = SessionWatch(store, on_alive=hall.heartbeat.seen)
        hall.db_health = identity.DbHealth()
        hall.code = await asyncio.to_thread(hall_code, store)
        broker = Broker(asyncio.get_running_loop())
        hall.broker = broker
        listener: PgListener | None = None
        if store.is_pg:
            listener = PgListener(url, store, broker)
            await asyncio.to_thread(listener.start)
        else:
            store.on_commit = broker.publish_threadsafe
        app.state.hall = hall
        app.state.applicant_keys = await asyncio.to_thread(applicants.ApplicantKeys, settings.data_dir)
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(_prune_events(hall)),
                                          asyncio.create_task(_follow_hall_settings(hall)),
                                          asyncio.create_task(heartbeat.close_stale_loop(hall))]
        if settings.arrival_rate > 0:
            tasks.append(asyncio.create_task(_simulate_arrivals(hall, settings.arrival_rate)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for sub in list(broker.subscribers):
                sub.queue.put_nowait(None)
            if listener is not None:
                await asyncio.to_thread(listener.stop)
            await asyncio.to_thread(store.close)

    # Swagger UI and ReDoc load their scripts and styles from a CDN: a page of the server that
    # runs whatever a third party serves, on the hall's address. Off unless a developer turns
    # them on (Settings.api_docs / HALL_API_DOCS=1); the contract itself, /openapi.json and
    # docs/hall-api.md, is always there. (Serving the assets locally would add megabytes of
    # vendored JavaScript to the server and the desk's demo bundle for no user of a hall.)
    docs = settings.api_docs if settings.api_docs is not None else os.environ.get("HALL_API_DOCS") == "1"
    app = FastAPI(
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        title="Hall API",
        version=__version__,
        description="The contract between window PCs and the hall server (docs/hall-api.md).",
        lifespan=lifespan,
    )
    install_handlers(app)
    app.include_router(api.router)
    app.include_router(identity.router)  # GET /api/v1/identity (the desk keys its credential by it)
    app.include_router(admin.router)
    app.include_router(admin.auth_router)  # POST /api/v1/auth/password
    app.include_router(documents.router)
    app.include_router(pads.router)
    app.include_router(applicants.router)
    app.include_router(lifecycle.router)  # 办结, deadlines (issue 15)
    app.include_router(reports.router)  # the hall's reports, XLSX, PDF (issue 15)
    app.include_router(rating_channels.router)  # paper / phone ratings (issue 15)

    app.include_router(followups.router)  # bad-rating follow-ups and appeals (docs/followup.md)

    app.include_router(mailing.router)  # result mailing (issue 17)
    app.include_router(pads.pad_router)  # the pad's own pairing routes, outside /api/v1
    app.include_router(pad_site.router)  # the pad page and its API (the window PC not in the path)
    app.include_router(pair_page.router)  # /pair/: the supervisor's own-device pairing page
    app.include_router(rate_later.router)
    app.include_router(rate_later.page_router)  # the citizen's page, outside /api/v1
    app.include_router(display.router)  # the call display (叫号屏), outside /api/v1

    app.include_router(console_followups.router)  # /console/followups, /console/appeals
    app.include_router(console.router)  # the supervisor and IT console, /console/ (docs/console.md)
    app.include_router(console_reports.router)  # its report, deadline and rating-entry pages
    app.add_middleware(RequestIdAndLimits, settings=settings)
    return app
