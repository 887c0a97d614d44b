"""The offline matter catalog (事项目录): a local SQLite cache, incremental sync, instant search.

The desk must find a matter and its checklist while the server is down, and within one keystroke
while it is up, so:

* The cache is a SQLite file of its own (WAL). Each matter is stored whole as JSON in the
  contract's field names, beside its search keys (full pinyin, initials) and the revision of the
  algorithm that made them. ``PRAGMA user_version`` is the schema version; ``MIGRATIONS`` are
  ordered steps, each committed with its version bump. ``synchronous=NORMAL`` is enough here:
  this is a cache, and losing the last sync to a power cut only means syncing again.
* ``sync()`` asks the server only for what changed since the stored ``catalog_version``,
  computes pinyin keys for those names (the expensive part, ~0.2 ms a name), and writes rows,
  tombstones and the new version in one transaction. Keys are never computed at open.
* The whole catalog (``Matter`` objects and keys) is held in memory; ``search``, ``get`` and
  ``count`` never touch SQLite or the network, so they may run on the Tk thread. The objects are
  built once at open (off the Tk thread): built lazily, the ~50 results of a first keystroke cost
  ~3 ms of JSON parsing, more than the 2 ms budget of the whole filter. A sync builds a new
  in-memory state and swaps it in with one assignment.
* A cache that is not a usable database (garbage, truncated, written by a newer app) is renamed
  to ``<name>.corrupt-<timestamp>``, a fresh one is created and the catalog version drops to 0,
  so the next sync is a full one; ``recovered_from`` and ``warnings`` say what happened. If the
  file cannot be opened at all (permissions, disk full), the catalog runs from memory only.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from api_client.errors import ApiError
from api_client.models import ChecklistItem, Matter, MatterPage
from counter_app.errors import ConfigError, CounterError, from_api
from counter_app.events import CatalogSynced, EventBus
from counter_app.search import (
    IndexEntry,
    SearchIndex,
    compute_keys,
    keys_revision,
    release_pypinyin_after_sync,
)
from counter_app.synonyms import Synonyms

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5_000
# sqlite error names that say "the file's content is not a usable database", as opposed to the
# environment being in the way (locked, read-only, disk full), which renaming would not fix.
_CORRUPT_ERRORS = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_FORMAT", "SQLITE_SCHEMA"})


class MatterSource(Protocol):
    """What the catalog needs of the API client (``api_client.HallClient`` is one)."""

    def sync_matters(self, updated_since: int = 0) -> MatterPage: ...


class _UnusableCache(Exception):
    """The cache file must be set aside (reason in args[0])."""


def _v1(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute(
        """
        CREATE TABLE matters (
            code TEXT PRIMARY KEY,
            name_zh TEXT NOT NULL,
            name_en TEXT NOT NULL,
            version INTEGER NOT NULL,
            data TEXT NOT NULL,      -- the Matter as JSON, contract field names, with checklist
            pinyin TEXT NOT NULL,    -- space-separated syllables of name_zh (search.compute_keys)
            initials TEXT NOT NULL,
            keys_rev TEXT NOT NULL   -- search.keys_revision() that made pinyin/initials
        )
        """
    )


Migration = Callable[[sqlite3.Connection], None]
# Index i upgrades user_version i -> i+1. Only ever append.
MIGRATIONS: Sequence[Migration] = (_v1,)


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    name = getattr(exc, "sqlite_errorname", None)
    if name is None:
        # No code (e.g. raised by the module itself): only OperationalError can be environmental.
        return not isinstance(exc, sqlite3.OperationalError)
    return name in _CORRUPT_ERRORS or name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))


def _matter_json(matter: Matter) -> str:
    # asdict gives the contract's field names (the models mirror them), checklist included.
    return json.dumps(dataclasses.asdict(matter), ensure_ascii=False, separators=(",", ":"))


def _matter_from_json(text: str) -> Matter:
    obj = json.loads(text)
    try:
        # Our own output of the same model: build directly, twice as fast as validating again.
        items = tuple(ChecklistItem(**item) for item in obj["checklist"])
        return Matter(**{**obj, "checklist": items})
    except (TypeError, KeyError):
        # Written by another version of the model (a field added or renamed): validate.
        return Matter.from_json(obj)


@dataclass(frozen=True)
class _Row:
    matter: Matter
    entry: IndexEntry
    keys_rev: str


@dataclass(frozen=True)
class _State:
    """One consistent in-memory view; replaced whole after each sync."""

    version: int
    rows: dict[str, _Row]
    index: SearchIndex


@dataclass(frozen=True)
class SyncResult:
    """What the last sync did (``Catalog.last_sync``)."""

    changed: int
    deleted: int
    keys_computed: int
    keys_seconds: float
    full: bool
    version: int


class Catalog:
    """The matters catalog: ``sync`` on a worker thread; ``search``/``get``/``count`` anywhere."""

    def __init__(
        self,
        db_path: Path,
        client: MatterSource | None,
        bus: EventBus | None = None,
        *,
        clock: Callable[[], float] = time.time,
        synonyms: Synonyms | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self._client = client
        self._bus = bus
        self._clock = clock
        # The shipped search words plus the hall's (counter_app/synonyms.py): read once here.
        self.synonyms = synonyms if synonyms is not None else Synonyms.load()
        # Serialises every use of the connection and keeps two syncs from interleaving.
        self._lock = threading.RLock()
        self.recovered_from: Path | None = None
        self.warnings: list[str] = []
        self.last_sync: SyncResult | None = None
        self._conn = self._open()
        self._state = self._load()

    # --- reading (any thread, no I/O) --------------------------------------------------------

    @property
    def version(self) -> int:
        """The catalog version the cache holds completely (0: never synced)."""
        return self._state.version

    def count(self) -> int:
        return len(self._state.rows)

    def search(self, text: str, limit: int = 50) -> list[Matter]:
        """Matters matching ``text`` (Chinese, pinyin, initials, English, code), best first."""
        state = self._state
        rows = state.rows
        codes = state.index.search(text, limit)
        whole, extra = self.synonyms.expand(text)
        if extra:
            # Also in the names' wording ("sbk" -> 社会保障卡); a query that IS a short form
            # lists those hits first.
            more = [c for alt in extra for c in state.index.search(alt, limit)]
            merged = (more + codes) if whole else (codes + more)
            codes = list(dict.fromkeys(merged))[:limit]
        return [rows[code].matter for code in codes]

    def get(self, code: str) -> Matter | None:
        """The matter with this code, checklist included, or None."""
        row = self._state.rows.get(code)
        return None if row is None else row.matter

    # --- sync (worker thread) ----------------------------------------------------------------

    def sync(self) -> int:
        """Fetch what changed since ``version`` and store it; returns how many matters changed.

        Raises ``OfflineError`` (the cache keeps serving) when the server cannot be reached,
        another ``CounterError`` for other API failures, ``ConfigError`` without a client.
        """
        if self._client is None:
            raise ConfigError(message_zh="未配置服务器，无法同步事项目录",
                              message_en="No server is configured; the catalog cannot be synced")
        with self._lock:
            since = self._state.version
            page = self._fetch(since)
            full = since == 0
            if page.catalog_version < since:
                # The server's catalog went back (restored, or another server): our delta would
                # never arrive, so start again from nothing.
                log.warning("server catalog version %s < cached %s: full resync",
                            page.catalog_version, since)
                page, full = self._fetch(0), True
            try:
                result = self._apply(page, full)
            except sqlite3.DatabaseError as exc:
                if not _is_corruption(exc):
                    raise CounterError(message_zh="无法写入本地事项目录", message_en="Cannot write the local catalog",
                                       code="catalog_write") from exc
                # Damaged while running: set it aside and refill the new file from scratch.
                self._recover(str(exc))
                page = self._fetch(0) if not full else page
                result = self._apply(page, True)
        self.last_sync = result
        log.info("catalog synced: %s", result)
        if self._bus is not None:
            self._bus.publish(CatalogSynced(count=self.count(), version=result.version))
        return result.changed + result.deleted

    def _fetch(self, since: int) -> MatterPage:
        assert self._client is not None
        try:
            return self._client.sync_matters(updated_since=since)
        except ApiError as exc:
            # ApiConnectionError/ApiTimeoutError become OfflineError; the cache is untouched.
            raise from_api(exc) from exc

    def _apply(self, page: MatterPage, full: bool) -> SyncResult:
        old = self._state
        rev = keys_revision()
        base = {} if full else dict(old.rows)
        rows = dict(base)
        changed: list[tuple[str, _Row]] = []
        deleted: list[str] = []
        computed = 0
        t0 = time.perf_counter()
        for matter in page.items:
            if matter.deleted:
                if rows.pop(matter.code, None) is not None:
                    deleted.append(matter.code)
                continue
            prev = old.rows.get(matter.code)
            if prev is not None and prev.keys_rev == rev and prev.entry.name_zh == matter.name_zh:
                pinyin, initials = prev.entry.pinyin, prev.entry.initials  # name unchanged
            else:
                pinyin, initials = compute_keys(matter.name_zh)
                computed += 1
            row = _Row(matter,
                       IndexEntry(matter.code, matter.name_zh, matter.name_en, pinyin, initials),
                       rev)
            rows[matter.code] = row
            changed.append((matter.code, row))
        # Keys made by an older algorithm (after an upgrade) are redone here, never at open.
        refreshed = {code: r for code, r in rows.items() if r.keys_rev != rev}
        for code, r in refreshed.items():
            pinyin, initials = compute_keys(r.entry.name_zh)
            computed += 1
            row = _Row(r.matter,
                       dataclasses.replace(r.entry, pinyin=pinyin, initials=initials), rev)
            rows[code] = row
            changed.append((code, row))
        keys_seconds = time.perf_counter() - t0
        if computed:
            release_pypinyin_after_sync()  # ~50 MB of dictionaries, needed again only for new names
        self._write(changed, deleted, page.catalog_version, full)
        index = SearchIndex(r.entry for r in rows.values()) if (changed or deleted or full) \
            else old.index
        self._state = _State(page.catalog_version, rows, index)
        return SyncResult(changed=sum(1 for m in page.items if not m.deleted),
                          deleted=len(deleted), keys_computed=computed,
                          keys_seconds=keys_seconds, full=full, version=page.catalog_version)

    def _write(self, changed: Iterable[tuple[str, _Row]], deleted: Sequence[str],
               version: int, full: bool) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if full:
                conn.execute("DELETE FROM matters")
            conn.executemany(
                "INSERT INTO matters (code, name_zh, name_en, version, data, pinyin, initials,"
                " keys_rev) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (code) DO UPDATE SET name_zh = excluded.name_zh,"
                " name_en = excluded.name_en, version = excluded.version, data = excluded.data,"
                " pinyin = excluded.pinyin, initials = excluded.initials,"
                " keys_rev = excluded.keys_rev",
                [
                    (code, r.entry.name_zh, r.entry.name_en, r.matter.version,
                     _matter_json(r.matter), r.entry.pinyin, r.entry.initials, r.keys_rev)
                    for code, r in changed
                ],
            )
            conn.executemany("DELETE FROM matters WHERE code = ?", [(c,) for c in deleted])
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('catalog_version', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(version),),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # --- opening, migrating, recovering ------------------------------------------------------

    def _connect(self, target: str) -> sqlite3.Connection:
        conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if target != ":memory:":
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot switch to WAL (journal_mode={mode})")
        conn.execute("PRAGMA synchronous = NORMAL")  # a cache: see the module docstring
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Check and migrate; raises _UnusableCache when the file must be set aside."""
        try:
            check = "; ".join(str(r[0]) for r in conn.execute("PRAGMA quick_check"))
        except sqlite3.DatabaseError as exc:
            if _is_corruption(exc):
                raise _UnusableCache(str(exc)) from exc
            raise
        if check != "ok":
            raise _UnusableCache(check)
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise _UnusableCache(f"schema version {version} is newer than {len(MIGRATIONS)}")
        for step in range(version, len(MIGRATIONS)):
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Re-read under the write lock: another process may have migrated meanwhile.
                if int(conn.execute("PRAGMA user_version").fetchone()[0]) == step:
                    MIGRATIONS[step](conn)
                    conn.execute(f"PRAGMA user_version = {step + 1}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _open(self) -> sqlite3.Connection:
        with self._lock:
            try:
                self.db_path.parent.mkdir(parents=True, exist_ok=True)
                conn = self._connect(str(self.db_path))
            except (OSError, sqlite3.DatabaseError) as exc:
                if isinstance(exc, sqlite3.DatabaseError) and _is_corruption(exc):
                    return self._recover(str(exc))
                return self._memory_only(exc)
            try:
                self._prepare(conn)
                # Read once here so a damaged table is found now, not in the middle of a sync.
                conn.execute("SELECT count(*), sum(length(data)) FROM matters").fetchone()
            except _UnusableCache as exc:
                conn.close()
                return self._recover(str(exc.args[0]))
            except sqlite3.DatabaseError as exc:
                conn.close()
                if _is_corruption(exc):
                    return self._recover(str(exc))
                return self._memory_only(exc)
            return conn

    def _memory_only(self, exc: BaseException) -> sqlite3.Connection:
        log.error("catalog cache %s unusable (%s): keeping the catalog in memory only",
                  self.db_path, exc)
        self.warnings += [
            f"无法打开本地事项目录（{exc}），本次仅在内存中保存，断网时将无法查询事项。",
            f"The local catalog cannot be opened ({exc}); it is kept in memory only this time, "
            "so matters cannot be searched while offline.",
        ]
        conn = self._connect(":memory:")
        self._prepare(conn)
        return conn

    def _recover(self, reason: str) -> sqlite3.Connection:
        """Rename the damaged cache aside, start a fresh one; the next sync is a full one."""
        old = getattr(self, "_conn", None)
        if old is not None:
            old.close()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self._clock())) + f"-{os.getpid()}"
        moved = self.db_path.with_name(f"{self.db_path.name}.corrupt-{stamp}")
        try:
            os.replace(self.db_path, moved)
            for suffix in ("-wal", "-shm"):
                side = self.db_path.with_name(self.db_path.name + suffix)
                if side.exists():
                    os.replace(side, moved.with_name(moved.name + suffix))
        except OSError as exc:
            # Cannot even move it (locked by another program, read-only folder): run from
            # memory rather than fail; the damaged file stays where it is for IT to look at.
            conn = self._memory_only(exc)
            self._conn = conn
            if hasattr(self, "_state"):
                self._state = _State(0, self._state.rows, self._state.index)
            return conn
        log.warning("catalog cache %s unusable (%s): moved to %s, starting afresh",
                    self.db_path, reason, moved)
        self.recovered_from = moved
        self.warnings += [
            f"本地事项目录已损坏（{reason}），已移至 {moved.name} 并重建，将重新完整同步。",
            f"The local catalog was damaged ({reason}); it was moved to {moved.name} and "
            "recreated, and will be synced in full again.",
        ]
        conn = self._connect(str(self.db_path))
        self._prepare(conn)
        self._conn = conn
        if hasattr(self, "_state"):
            # Keep serving what we had, but make the next sync start from nothing.
            self._state = _State(0, self._state.rows, self._state.index)
        return conn

    def _load(self) -> _State:
        """Read rows and stored keys into memory; computes no pinyin (see module docstring)."""
        with self._lock:
            conn = self._conn
            try:
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
                rows: dict[str, _Row] = {}
                bad: list[str] = []
                for code, zh, en, data, py, ini, rev in conn.execute(
                    "SELECT code, name_zh, name_en, data, pinyin, initials, keys_rev FROM matters"
                ):
                    try:
                        matter = _matter_from_json(data)
                    except (ValueError, ApiError):
                        bad.append(code)
                        continue
                    rows[code] = _Row(matter, IndexEntry(code, zh, en, py, ini), rev)
            except sqlite3.DatabaseError as exc:
                if not _is_corruption(exc):
                    raise
                self._conn = self._recover(str(exc))
                meta, rows, bad = {}, {}, []
        version = int(meta.get("catalog_version", "0"))
        if bad:
            # Unreadable rows: serve the rest, and let the next sync bring everything again.
            log.warning("catalog cache: %d unreadable rows (%s...): full resync", len(bad), bad[0])
            self.warnings += [
                f"本地事项目录中有 {len(bad)} 条记录无法读取，将重新完整同步。",
                f"{len(bad)} entries of the local catalog cannot be read; it will be synced in "
                "full again.",
            ]
            version = 0
        return _State(version, rows, SearchIndex(r.entry for r in rows.values()))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
