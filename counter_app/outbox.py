"""The durable outbox: ratings (and later documents) are saved locally first, then delivered.

Guarantees (see docs/reliability.md for how each is tested):

* ``enqueue_*`` returns only after SQLite's COMMIT returned (WAL, ``synchronous=FULL``): a
  returned id survives an app crash or power loss. Any failure to commit raises
  ``NotSavedError``; the caller must never tell staff "saved" in that case.
* The row id is a UUID made at capture and stored before the first send; it is the
  ``Idempotency-Key`` of every delivery attempt, so the server applies the item once however many
  times a lost answer makes us resend it.
* Nothing is deleted or given up for failing: no attempt limit, no age or count cap. Transient
  failures are retried with exponential backoff and full jitter (honouring ``Retry-After``), the
  schedule stored in the row. A permanent 4xx moves the row to ``dead`` with the server's reason,
  visible to staff and supervisor.
* Done rows are kept (default 90 days) so ``reconcile`` can compare a day's ids with the server's.

Threads: ONE writer thread owns the SQLite connection; every read and write is a job on its
queue and callers block on a Future. The delivery worker is a second thread that asks the writer
for due rows, sends them through a ``Sender`` without holding any lock, and hands the outcome
back to the writer. All public methods may be called from any thread (never from Tk's: they
block on disk).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import queue
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from counter_app import localdb
from counter_app.errors import NotSavedError
from counter_app.events import OutboxChanged

if TYPE_CHECKING:
    from api_client import HallClient
    from api_client.models import RatingSubmission

log = logging.getLogger(__name__)
T = TypeVar("T")

KIND_RATING = "rating"
DEFAULT_RETENTION_S = 90 * 86400.0


class PermanentSendError(Exception):
    """Raised by a send function when an item can never be delivered as it is (goes to dead)."""


class OutboxClosedError(RuntimeError):
    """The outbox was closed; nothing more can be queued through this object."""


@dataclass(frozen=True)
class OutboxItem:
    id: str
    kind: str
    payload: str
    payload_sha256: str
    created: float
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    receipt: dict[str, Any] | None
    done_at: float | None

    @property
    def payload_obj(self) -> Any:
        return json.loads(self.payload)


@dataclass(frozen=True)
class OutboxStats:
    depth: int
    oldest_age_s: float | None
    dead: int


@dataclass(frozen=True)
class ReconcileReport:
    window_no: int
    day: str
    client_ids: int
    server_ids: int
    requeued: list[str]
    pending: int
    unknown_on_server: list[str]


class Bus(Protocol):
    def publish(self, event: Any) -> None: ...


SendFn = Callable[[OutboxItem], dict[str, Any]]


class Sender(Protocol):
    """Delivers one item; returns the server's receipt as JSON, raises on failure."""

    def send(self, item: OutboxItem) -> dict[str, Any]: ...


class HallSender:
    """The default sender: ratings through ``HallClient.submit_rating``; other kinds registered.

    ``register_kind("document", fn)`` plugs in the resumable-upload delivery of scans.
    """

    def __init__(self, client: HallClient) -> None:
        self.client = client
        self._kinds: dict[str, SendFn] = {KIND_RATING: self._send_rating}

    def register_kind(self, kind: str, send_fn: SendFn) -> None:
        self._kinds[kind] = send_fn

    def send(self, item: OutboxItem) -> dict[str, Any]:
        fn = self._kinds.get(item.kind)
        if fn is None:
            # Not dead: a later version (or a plug-in registered after start) may know the kind.
            raise LookupError(f"no sender registered for kind {item.kind!r}")
        return fn(item)

    def _send_rating(self, item: OutboxItem) -> dict[str, Any]:
        from api_client import errors as api_errors
        from api_client.models import RatingSubmission

        try:
            rating = RatingSubmission.from_json(item.payload_obj)
        except (api_errors.ApiResponseValidationError, ValueError, KeyError, TypeError) as exc:
            raise PermanentSendError(f"stored rating is unreadable: {exc}") from exc
        receipt = self.client.submit_rating(rating, idempotency_key=item.id)
        return _receipt_json(receipt)


def _receipt_json(receipt: Any) -> dict[str, Any]:
    if isinstance(receipt, dict):
        return receipt
    to_json = getattr(receipt, "to_json", None)
    if callable(to_json):
        out = to_json()
        if isinstance(out, dict):
            return out
    import dataclasses

    if dataclasses.is_dataclass(receipt) and not isinstance(receipt, type):
        return json.loads(json.dumps(dataclasses.asdict(receipt), default=str))  # type: ignore[no-any-return]
    return {"repr": repr(receipt)}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _row_item(row: dict[str, Any]) -> OutboxItem:
    return OutboxItem(
        id=row["id"],
        kind=row["kind"],
        payload=row["payload"],
        payload_sha256=row["payload_sha256"],
        created=row["created"],
        state=row["state"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        receipt=json.loads(row["receipt"]) if row["receipt"] else None,
        done_at=row["done_at"],
    )


# Spelled out in each statement (no string-built SQL); keep them in this order.
_SELECT = (
    "SELECT id, kind, payload, payload_sha256, created, state, attempts, next_attempt_at,"
    " last_error, receipt, done_at FROM outbox"
)


@dataclass(frozen=True)
class Failure:
    """How one failed attempt is classified."""

    dead: bool
    transport: bool  # the server was not reached: stop the batch, back off as a whole
    retry_after: float | None
    reason: str


# 4xx codes that are the link's fault, not the item's (docs/hall-api.md): retried, never dead.
_RETRY_CODES = frozenset({"sha256_mismatch"})


def classify(exc: BaseException) -> Failure:
    """Map a send failure to retry/dead, by the api_client error contract's attributes.

    Duck-typed (``status``, ``retryable``, ``code``, ``retry_after``) so a registered send
    function may raise its own errors shaped the same way.
    """
    if isinstance(exc, PermanentSendError):
        return Failure(True, False, None, f"permanent: {exc}")
    status = getattr(exc, "status", None)
    retryable = getattr(exc, "retryable", None)
    code = getattr(exc, "code", None) or type(exc).__name__
    message = getattr(exc, "message_en", None) or str(exc)
    retry_after = getattr(exc, "retry_after", None)
    reason = f"{status or ''} {code}: {message}".strip()
    if isinstance(status, int):
        # 401: the staff's session lapsed; the item is fine, it goes once someone signs in again.
        # 422 sha256_mismatch: the server reset the upload to offset 0; sent again, it arrives.
        if 400 <= status < 500 and not retryable and status != 401 and code not in _RETRY_CODES:
            return Failure(True, False, None, reason)
        return Failure(False, False, float(retry_after) if retry_after else None, reason)
    # No HTTP status: connection refused/reset, timeout, TLS, a malformed answer, a bug.
    # None of these is the item's fault, so none makes it dead.
    return Failure(False, True, None, reason)


class Outbox:
    """The durable outbox. See the module docstring for its guarantees."""

    def __init__(
        self,
        db_path: Path | str,
        sender: Sender | SendFn | None,
        *,
        clock: Callable[[], float] = time.time,
        bus: Bus | None = None,
        on_change: Callable[[OutboxStats], None] | None = None,
        retention_s: float = DEFAULT_RETENTION_S,
        base_delay_s: float = 1.0,
        max_delay_s: float = 300.0,
        batch: int = 50,
        tz: str = localdb.DEFAULT_TZ,
        rng: random.Random | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self._sender = sender
        self.clock = clock
        self.bus = bus
        self.on_change = on_change
        self.retention_s = retention_s
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.batch = batch
        self.tz = tz
        self._rng = rng or random.Random()
        self._jobs: queue.SimpleQueue[tuple[Callable[[sqlite3.Connection], Any], Future[Any]] | None]
        self._jobs = queue.SimpleQueue()
        self._closed = False
        self._wake = threading.Event()
        self._stop_worker = threading.Event()
        self._worker: threading.Thread | None = None
        self._transport_failures = 0
        self._kicks = 0  # bumped by kick(): an attempt that failed across a kick retries at once
        ready: Future[localdb.OpenReport] = Future()
        self._writer = threading.Thread(
            target=self._writer_main, args=(ready,), name="outbox-writer", daemon=True
        )
        self._writer.start()
        #: What happened at open (created / migrated / a corrupt file moved aside): for the UI.
        self.open_report: localdb.OpenReport = ready.result()

    # ---- the writer thread ----------------------------------------------------------------

    def _writer_main(self, ready: Future[localdb.OpenReport]) -> None:
        try:
            conn, report = localdb.open_db(self.db_path, clock=self.clock)
        except BaseException as exc:
            ready.set_exception(exc)
            return
        ready.set_result(report)
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    break
                fn, fut = job
                if not fut.set_running_or_notify_cancel():
                    continue
                try:
                    fut.set_result(fn(conn))
                except BaseException as exc:
                    fut.set_exception(exc)
        finally:
            conn.close()

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise OutboxClosedError("outbox is closed")
        fut: Future[T] = Future()
        self._jobs.put((fn, fut))
        return fut.result()

    @staticmethod
    def _tx(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            out = fn(conn)
            conn.execute("COMMIT")
            return out
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # ---- capture --------------------------------------------------------------------------

    def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        item_id: str | None = None,
        extra: Callable[[sqlite3.Connection, str], None] | None = None,
        if_absent: bool = False,
    ) -> str:
        """Store an item durably; returns its id (the Idempotency-Key) only after COMMIT.

        ``extra(conn, id)`` runs inside the same transaction (e.g. to store the item's own row).
        With ``if_absent`` an existing row with this id (in any state) is kept as it is and its
        id returned: queuing the same thing twice (a start-up sweep after a crash, say) is
        harmless. Without it a duplicate id is refused (``NotSavedError`` code ``duplicate``).
        Raises ``NotSavedError`` if the commit fails for any reason.
        """
        row_id = item_id or str(uuid.uuid4())
        text = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        now = self.clock()

        def work(conn: sqlite3.Connection) -> None:
            if if_absent and conn.execute(
                "SELECT 1 FROM outbox WHERE id = ?", (row_id,)
            ).fetchone():
                return
            conn.execute(
                "INSERT INTO outbox (id, kind, payload, payload_sha256, created, state, attempts,"
                " next_attempt_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?)",
                (row_id, kind, text, _sha256(text), now, now),
            )
            if extra is not None:
                extra(conn, row_id)

        try:
            self._call(lambda conn: self._tx(conn, work))
        except OutboxClosedError:
            raise NotSavedError(
                message_zh="待发队列已关闭，未保存。", message_en="The outbox is closed; not saved.", code="outbox_closed"
            ) from None
        except sqlite3.IntegrityError as exc:
            raise NotSavedError(
                message_zh=f"记录重复，未保存：{exc}", message_en=f"Duplicate item, not saved: {exc}", code="duplicate"
            ) from exc
        except (sqlite3.Error, OSError) as exc:
            raise NotSavedError(
                message_zh=f"本地保存失败（磁盘已满或读写错误），未保存：{exc}",
                message_en=f"Could not save locally (disk full or I/O error); NOT saved: {exc}",
                code="disk_error",
            ) from exc
        self._changed()
        self._wake.set()
        return row_id

    def enqueue_rating(self, rating: RatingSubmission | dict[str, Any]) -> str:
        """Save a captured rating (its own row and its outbox row, one transaction)."""
        obj: dict[str, Any] = rating if isinstance(rating, dict) else rating.to_json()
        row_id = str(obj.get("id") or uuid.uuid4())
        obj = {**obj, "id": row_id}
        try:
            values = localdb.rating_row(row_id, obj, self.tz)
        except (KeyError, ValueError, TypeError) as exc:
            raise NotSavedError(
                message_zh=f"评价数据不完整，未保存：{exc}",
                message_en=f"Incomplete rating, not saved: {exc}",
                code="bad_rating",
            ) from exc

        def store_rating(conn: sqlite3.Connection, _id: str) -> None:
            conn.execute(
                "INSERT INTO ratings (id, case_id, window_no, level, rated_at, day)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                values,
            )

        return self.enqueue(KIND_RATING, obj, item_id=row_id, extra=store_rating)

    # ---- delivery -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery worker (idempotent)."""
        if self._sender is None:
            raise ValueError("no sender configured")
        if self._worker is not None and self._worker.is_alive():
            return
        self._stop_worker.clear()
        self._worker = threading.Thread(target=self._worker_main, name="outbox-delivery", daemon=True)
        self._worker.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop the delivery worker; an attempt in flight finishes (its outcome is recorded)."""
        self._stop_worker.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout)
            self._worker = None

    def close(self) -> None:
        """Stop delivery and close the database. Everything committed stays."""
        self.stop()
        if not self._closed:
            self._closed = True
            self._jobs.put(None)
            self._writer.join()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def kick(self) -> None:
        """Deliver due items now and retry the ones waiting out a backoff (the link is back)."""
        now = self.clock()

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE outbox SET next_attempt_at = ? WHERE state = 'pending'"
                " AND next_attempt_at > ?",
                (now, now),
            )

        self._kicks += 1
        self._call(lambda conn: self._tx(conn, work))
        self._transport_failures = 0
        self._wake.set()

    def _send(self, item: OutboxItem) -> dict[str, Any]:
        sender = self._sender
        if sender is None:
            raise ValueError("no sender configured")
        if _sha256(item.payload) != item.payload_sha256:
            raise PermanentSendError("payload does not match its stored SHA-256 (local corruption)")
        if hasattr(sender, "send"):
            return sender.send(item)
        return sender(item)

    def deliver_due(self, limit: int | None = None) -> int:
        """One delivery pass over due rows (what the worker runs); returns items delivered.

        Stops at the first failure that did not reach the server (it would fail the same way
        for every other item).
        """
        due = self._call(lambda conn: self._due(conn, self.clock(), limit or self.batch))
        delivered = 0
        ratings_held = False
        for item in due:
            if self._stop_worker.is_set() and self._worker is not None:
                break
            if item.kind == KIND_RATING and ratings_held:
                continue  # an older rating is still undelivered: it goes first (FIFO)
            kicks = self._kicks
            try:
                receipt = self._send(item)
            except Exception as exc:
                failure = classify(exc)
                stale = self._record(
                    functools.partial(self._fail, item=item, failure=failure, kicks=kicks)
                )
                self._changed()
                if item.kind == KIND_RATING and not failure.dead:
                    ratings_held = True
                if stale:
                    continue
                if failure.transport:
                    self._transport_failures += 1
                    break
                continue
            self._transport_failures = 0
            self._record(functools.partial(self._done, item=item, receipt=receipt))
            delivered += 1
        if delivered:
            self._changed()
        return delivered

    def _record(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return self._call(lambda conn: self._tx(conn, fn))

    def _backoff(self, attempts: int) -> float:
        # Full jitter: uniform(0, min(cap, base * 2^n)) spreads a hall's PCs after an outage.
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** min(attempts, 30)))
        return self._rng.uniform(0, ceiling)

    def _due(self, conn: sqlite3.Connection, now: float, limit: int) -> list[OutboxItem]:
        """Due rows in creation order. Ratings are first-in-first-out: only the oldest pending
        ratings, up to the first one still waiting out a backoff, are due.

        Why: the server accepts a pad's signed rating only if its ``pad_counter`` is above the
        last one it took (else ``409 counter_replayed``, dead) and flags a jump as a counter gap,
        so a younger rating overtaking an older one after an outage would kill the older one.
        Dead rows are not pending, so they never hold the queue. Other kinds are independent.
        """
        ratings = localdb.fetch_dicts(
            conn,
            _SELECT + " WHERE state = 'pending' AND kind = ? ORDER BY created, seq LIMIT ?",
            (KIND_RATING, limit),
        )
        head: list[dict[str, Any]] = []
        for row in ratings:
            if row["next_attempt_at"] > now:
                break
            head.append(row)
        others = localdb.fetch_dicts(
            conn,
            _SELECT + " WHERE state = 'pending' AND kind != ? AND next_attempt_at <= ?"
            " ORDER BY created, seq LIMIT ?",
            (KIND_RATING, now, limit),
        )
        # sorted() is stable: each list keeps its (created, seq) order.
        rows = sorted(head + others, key=lambda r: float(r["created"]))[:limit]
        return [_row_item(r) for r in rows]

    def _fail(
        self, conn: sqlite3.Connection, item: OutboxItem, failure: Failure, kicks: int
    ) -> bool:
        """Record a failed attempt; True if it was stale (a kick came since it started).

        Runs on the writer thread, so the comparison with ``_kicks`` is ordered with kick()'s
        own UPDATE (kick bumps the counter before queuing it): whichever runs first, the row
        ends up due now rather than sitting out a backoff the kick was meant to cancel.
        """
        now = self.clock()
        retry_now = self._kicks != kicks
        attempts = item.attempts + 1
        if failure.dead:
            conn.execute(
                "UPDATE outbox SET state = 'dead', attempts = ?, last_error = ?"
                " WHERE id = ? AND state = 'pending'",
                (attempts, failure.reason, item.id),
            )
            log.warning("outbox item %s (%s) is dead: %s", item.id, item.kind, failure.reason)
            return False
        delay = 0.0 if retry_now else self._backoff(attempts)
        if failure.retry_after is not None:
            delay = max(delay, failure.retry_after)
        conn.execute(
            "UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ?"
            " WHERE id = ? AND state = 'pending'",
            (attempts, now + delay, failure.reason, item.id),
        )
        if item.kind == KIND_RATING:
            # Younger ratings wait behind this one (see _due); their stored schedule says so too.
            conn.execute(
                "UPDATE outbox SET next_attempt_at = ? WHERE state = 'pending' AND kind = ?"
                " AND id != ? AND next_attempt_at < ?",
                (now + delay, KIND_RATING, item.id, now + delay),
            )
        return retry_now

    def _done(self, conn: sqlite3.Connection, item: OutboxItem, receipt: dict[str, Any]) -> None:
        conn.execute(
            "UPDATE outbox SET state = 'done', attempts = ?, receipt = ?, done_at = ?,"
            " last_error = NULL WHERE id = ?",
            (item.attempts + 1, json.dumps(receipt, default=str), self.clock(), item.id),
        )

    def _next_due_in(self) -> float | None:
        def work(conn: sqlite3.Connection) -> float | None:
            # Ratings are FIFO (see _due): only the oldest pending rating's time counts, or a
            # younger one captured during a backoff would make the worker spin.
            times = [
                conn.execute(
                    "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'"
                    " AND kind != ?",
                    (KIND_RATING,),
                ).fetchone()[0]
            ]
            head = conn.execute(
                "SELECT next_attempt_at FROM outbox WHERE state = 'pending' AND kind = ?"
                " ORDER BY created, seq LIMIT 1",
                (KIND_RATING,),
            ).fetchone()
            if head is not None:
                times.append(head[0])
            known = [float(t) for t in times if t is not None]
            return min(known) if known else None

        nxt = self._call(work)
        return None if nxt is None else max(0.0, nxt - self.clock())

    def _worker_main(self) -> None:
        last_purge = 0.0
        while not self._stop_worker.is_set():
            self._wake.clear()
            try:
                self.deliver_due()
                if self.clock() - last_purge > 3600:
                    self.purge()
                    last_purge = self.clock()
                wait = self._next_due_in()
            except OutboxClosedError:
                return
            except Exception:
                log.exception("outbox delivery pass failed")
                wait = 5.0
            if self._transport_failures:
                # The link is down: back off as a whole, not per item (the rows not tried are
                # still due and would otherwise be tried at once, one by one). kick() cuts it short.
                wait = self.base_delay_s + self._backoff(self._transport_failures)
            if wait is None:
                wait = 60.0
            # Cap so an injected clock that jumps (tests, suspend/resume) is noticed promptly.
            self._wake.wait(min(wait, 5.0))

    # ---- views ----------------------------------------------------------------------------

    def stats(self) -> OutboxStats:
        now = self.clock()

        def work(conn: sqlite3.Connection) -> OutboxStats:
            depth, oldest = conn.execute(
                "SELECT COUNT(*), MIN(created) FROM outbox WHERE state = 'pending'"
            ).fetchone()
            dead = conn.execute("SELECT COUNT(*) FROM outbox WHERE state = 'dead'").fetchone()[0]
            return OutboxStats(
                int(depth), None if oldest is None else max(0.0, now - float(oldest)), int(dead)
            )

        return self._call(work)

    def depth(self) -> int:
        return self.stats().depth

    def get(self, item_id: str) -> OutboxItem | None:
        rows = self._call(
            lambda conn: localdb.fetch_dicts(
                conn, _SELECT + " WHERE id = ?", (item_id,)
            )
        )
        return _row_item(rows[0]) if rows else None

    def items(self, state: str | None = None, kind: str | None = None) -> list[OutboxItem]:
        sql = _SELECT + " WHERE 1 = 1"
        args: list[Any] = []
        if state is not None:
            sql += " AND state = ?"
            args.append(state)
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        sql += " ORDER BY created, seq"
        rows = self._call(lambda conn: localdb.fetch_dicts(conn, sql, args))
        return [_row_item(r) for r in rows]

    def dead_items(self) -> list[OutboxItem]:
        return self.items(state="dead")

    def requeue_dead(self, item_id: str) -> bool:
        """Staff/supervisor action: try a dead item again (e.g. after the server was fixed)."""
        now = self.clock()

        def work(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ? WHERE id = ?"
                " AND state = 'dead'",
                (now, item_id),
            )
            return cur.rowcount == 1

        ok = self._call(lambda conn: self._tx(conn, work))
        self._changed()
        self._wake.set()
        return ok

    def purge(self) -> int:
        """Delete done rows older than the retention; never pending or dead ones."""
        cutoff = self.clock() - self.retention_s

        def work(conn: sqlite3.Connection) -> int:
            conn.execute(
                "DELETE FROM ratings WHERE id IN"
                " (SELECT id FROM outbox WHERE state = 'done' AND done_at < ?)",
                (cutoff,),
            )
            cur = conn.execute("DELETE FROM outbox WHERE state = 'done' AND done_at < ?", (cutoff,))
            return cur.rowcount

        return self._call(lambda conn: self._tx(conn, work))

    def rating_ids(self, window_no: int, day: date | str) -> dict[str, str]:
        """Rating ids captured at a window on a hall day, with their outbox state."""
        day_s = day.isoformat() if isinstance(day, date) else day

        def work(conn: sqlite3.Connection) -> dict[str, str]:
            rows = conn.execute(
                "SELECT r.id, o.state FROM ratings r JOIN outbox o ON o.id = r.id"
                " WHERE r.window_no = ? AND r.day = ?",
                (window_no, day_s),
            ).fetchall()
            return {str(r[0]): str(r[1]) for r in rows}

        return self._call(work)

    def reconcile(
        self, window_no: int, day: date | str, *, client: HallClient | None = None
    ) -> ReconcileReport:
        """Compare a day's ids with the server's; re-queue done rows the server does not have."""
        day_d = day if isinstance(day, date) else date.fromisoformat(day)
        if client is None:
            client = getattr(self._sender, "client", None)
        if client is None:
            raise ValueError("reconcile needs a HallClient")
        ours = self.rating_ids(window_no, day_d)
        server = set(client.window_rating_ids(window_no, day_d))
        missing = sorted(i for i, s in ours.items() if s == "done" and i not in server)
        now = self.clock()

        def work(conn: sqlite3.Connection) -> None:
            for item_id in missing:
                conn.execute(
                    "UPDATE outbox SET state = 'pending', next_attempt_at = ?, receipt = NULL,"
                    " done_at = NULL, last_error = 'requeued: the server had no record of it'"
                    " WHERE id = ? AND state = 'done'",
                    (now, item_id),
                )

        if missing:
            self._call(lambda conn: self._tx(conn, work))
            log.warning("reconcile requeued %d ratings the server did not have", len(missing))
            self._changed()
            self._wake.set()
        return ReconcileReport(
            window_no=window_no,
            day=day_d.isoformat(),
            client_ids=len(ours),
            server_ids=len(server),
            requeued=missing,
            pending=sum(1 for s in ours.values() if s == "pending"),
            unknown_on_server=sorted(server - set(ours)),
        )

    def _changed(self) -> None:
        if self.bus is None and self.on_change is None:
            return
        try:
            st = self.stats()
        except OutboxClosedError:
            return
        if self.on_change is not None:
            self.on_change(st)
        if self.bus is not None:
            self.bus.publish(OutboxChanged(st.depth, st.oldest_age_s, st.dead))
