"""The offline catalog against a fake matter source: sync, deltas, tombstones, offline, recovery.

The fake stands in for the server only (it returns real `MatterPage` models built with
`from_json`, the way the client does); SQLite, pypinyin and the search index are the real ones.
Tests against the real reference server are in tests/test_catalog_server.py.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pypinyin
import pytest

from api_client.errors import ApiConnectionError
from api_client.models import MatterPage
from counter_app import catalog as catalog_mod
from counter_app import search as search_mod
from counter_app.catalog import Catalog
from counter_app.errors import ConfigError, OfflineError
from counter_app.events import CatalogSynced, EventBus

NAMES = [
    ("A0101", "个体工商户设立登记", "Registration of an individual business"),
    ("A0102", "个体工商户注销登记", "Deregistration of an individual business"),
    ("A0201", "食品经营许可", "Food business licence"),
    ("B0102", "失业保险金申领", "Claim for unemployment insurance benefit"),
    ("C0101", "居民身份证换领", "Renewal of the resident identity card"),
    ("F0101", "银行业金融机构设立审批", "Approval of a banking institution"),
]


def matter_json(code: str, zh: str, en: str, version: int, deleted: bool = False) -> dict[str, Any]:
    return {
        "code": code, "name_zh": zh, "name_en": en, "department_zh": "市场监督管理局",
        "department_en": "Market Regulation", "category": code[0], "time_limit_days": 3,
        "instant": False, "cross_region": True, "version": version, "deleted": deleted,
        "checklist": [
            {"id": "1", "name_zh": "申请书", "name_en": "Application form",
             "requirement": "required", "copies": 1, "original_required": True,
             "e_licence": False, "notes_zh": "", "notes_en": ""},
            {"id": "2", "name_zh": "身份证明", "name_en": "Proof of identity",
             "requirement": "accepted_pending", "copies": 2, "original_required": False,
             "e_licence": True, "notes_zh": "可用电子证照", "notes_en": "e-licence accepted"},
        ],
    }


class FakeSource:
    """A server's catalog: versioned rows and tombstones, answered like GET /matters (all pages)."""

    def __init__(self) -> None:
        self.version = 0
        self.rows: dict[str, dict[str, Any]] = {}
        self.calls: list[int] = []
        self.offline = False
        for code, zh, en in NAMES:
            self.put(code, zh, en)

    def put(self, code: str, zh: str, en: str) -> None:
        self.version += 1
        self.rows[code] = matter_json(code, zh, en, self.version)

    def delete(self, code: str) -> None:
        self.version += 1
        row = dict(self.rows[code], deleted=True, version=self.version)
        self.rows[code] = row

    def sync_matters(self, updated_since: int = 0) -> MatterPage:
        self.calls.append(updated_since)
        if self.offline:
            raise ApiConnectionError(message_en="Cannot connect", message_zh="无法连接服务器", code="connection_error")
        items = [r for c, r in sorted(self.rows.items()) if r["version"] > updated_since]
        return MatterPage.from_json(
            {"catalog_version": self.version, "items": items, "next_after": None})


@pytest.fixture
def source() -> FakeSource:
    return FakeSource()


def codes(cat: Catalog, q: str) -> list[str]:
    return [m.code for m in cat.search(q)]


def test_full_sync_then_search_and_get(tmp_path: Path, source: FakeSource) -> None:
    bus = EventBus()
    seen: list[CatalogSynced] = []
    bus.subscribe(CatalogSynced, seen.append)
    cat = Catalog(tmp_path / "catalog.db", source, bus)
    assert cat.count() == 0 and cat.version == 0 and cat.search("gtgsh") == []
    assert cat.sync() == len(NAMES)
    assert source.calls == [0]
    assert cat.count() == len(NAMES) and cat.version == source.version
    assert seen == [CatalogSynced(count=len(NAMES), version=source.version)]
    assert codes(cat, "gtgsh") == ["A0101", "A0102"]
    assert codes(cat, "shipin") == ["A0201"]
    assert codes(cat, "食品") == ["A0201"]
    assert codes(cat, "FOOD") == ["A0201"]
    assert codes(cat, "c0101") == ["C0101"]
    assert codes(cat, "yinhang") == ["F0101"]
    matter = cat.get("A0201")
    assert matter is not None and matter.name_zh == "食品经营许可"
    assert [i.name_zh for i in matter.checklist] == ["申请书", "身份证明"]
    assert matter.checklist[1].requirement == "accepted_pending" and matter.checklist[1].copies == 2
    assert cat.search("shipin")[0] == matter
    assert cat.get("Z9999") is None
    assert cat.last_sync is not None and cat.last_sync.keys_computed == len(NAMES)


def test_delta_sync_fetches_and_rekeys_only_the_change(tmp_path: Path, source: FakeSource) -> None:
    cat = Catalog(tmp_path / "catalog.db", source)
    cat.sync()
    v1 = cat.version
    source.put("B0102", "失业登记", "Unemployment registration")
    assert cat.sync() == 1
    assert source.calls == [0, v1]
    assert cat.last_sync is not None
    assert cat.last_sync.keys_computed == 1 and not cat.last_sync.full
    assert codes(cat, "shiyedengji") == ["B0102"]
    assert codes(cat, "shiyebaoxian") == []
    # a change of the checklist only: no pinyin recomputed for an unchanged name
    source.put("A0201", "食品经营许可", "Food business licence (new)")
    cat.sync()
    assert cat.last_sync.keys_computed == 0
    matter = cat.get("A0201")
    assert matter is not None and matter.name_en == "Food business licence (new)"
    # nothing changed: an empty delta, same version
    assert cat.sync() == 0 and cat.version == source.version


def test_tombstone_removes_the_matter_durably(tmp_path: Path, source: FakeSource) -> None:
    path = tmp_path / "catalog.db"
    cat = Catalog(path, source)
    cat.sync()
    source.delete("A0102")
    assert cat.sync() == 1
    assert cat.get("A0102") is None and codes(cat, "gtgsh") == ["A0101"]
    assert cat.count() == len(NAMES) - 1
    cat.close()
    again = Catalog(path, source)
    assert again.get("A0102") is None and again.count() == len(NAMES) - 1
    assert again.version == source.version


def test_open_computes_no_keys(tmp_path: Path, source: FakeSource,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "catalog.db"
    Catalog(path, source).sync()

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("pinyin computed at open")

    monkeypatch.setattr(pypinyin, "lazy_pinyin", boom)
    monkeypatch.setattr(catalog_mod, "compute_keys", boom)
    monkeypatch.setattr(search_mod, "compute_keys", boom)
    cat = Catalog(path, None)
    assert codes(cat, "gtgsh") == ["A0101", "A0102"]
    assert codes(cat, "shenfenzheng") == ["C0101"]
    assert cat.version == source.version


def test_offline_keeps_serving_the_cache(tmp_path: Path, source: FakeSource) -> None:
    path = tmp_path / "catalog.db"
    Catalog(path, source).sync()
    source.offline = True
    source.put("A0201", "食品经营许可（变更）", "Food business licence (change)")
    cat = Catalog(path, source)
    with pytest.raises(OfflineError) as info:
        cat.sync()
    assert info.value.message_zh and info.value.message_en and info.value.retryable
    assert codes(cat, "shipin") == ["A0201"]
    assert cat.version == source.version - 1
    source.offline = False
    assert cat.sync() == 1


def test_without_client_sync_is_a_config_error(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "catalog.db", None)
    with pytest.raises(ConfigError):
        cat.sync()


def test_garbage_file_is_kept_aside_and_resynced(tmp_path: Path, source: FakeSource) -> None:
    path = tmp_path / "catalog.db"
    garbage = b"this is not a database\x00" * 200
    path.write_bytes(garbage)
    cat = Catalog(path, source)
    assert cat.recovered_from is not None and cat.recovered_from.name.startswith(
        "catalog.db.corrupt-")
    assert cat.recovered_from.read_bytes() == garbage
    assert len(cat.warnings) == 2 and "catalog.db.corrupt-" in cat.warnings[1]
    assert cat.version == 0 and cat.count() == 0
    cat.sync()
    assert source.calls == [0] and cat.count() == len(NAMES)
    assert sqlite3.connect(path).execute("PRAGMA quick_check").fetchone()[0] == "ok"


def test_damaged_pages_are_detected_at_open(tmp_path: Path, source: FakeSource) -> None:
    path = tmp_path / "catalog.db"
    first = Catalog(path, source)
    first.sync()
    first.close()
    raw = bytearray(path.read_bytes())
    assert len(raw) >= 4 * 4096
    raw[4096:len(raw)] = b"\xa5" * (len(raw) - 4096)  # keep the header, trash every page
    path.write_bytes(bytes(raw))
    cat = Catalog(path, source)
    assert cat.recovered_from is not None and cat.count() == 0 and cat.version == 0
    cat.sync()
    assert source.calls[-1] == 0 and codes(cat, "gtgsh") == ["A0101", "A0102"]


def test_newer_schema_is_set_aside(tmp_path: Path, source: FakeSource) -> None:
    path = tmp_path / "catalog.db"
    Catalog(path, source).sync()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    cat = Catalog(path, source)
    assert cat.recovered_from is not None and "99" in cat.warnings[1]
    assert cat.count() == 0


def test_migration_sets_the_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    Catalog(path, None).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(catalog_mod.MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unopenable_location_runs_in_memory(tmp_path: Path, source: FakeSource) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cat = Catalog(blocker / "catalog.db", source)  # parent is a file: cannot be created
    assert cat.recovered_from is None and cat.warnings
    cat.sync()
    assert codes(cat, "gtgsh") == ["A0101", "A0102"]


def test_server_catalog_going_back_triggers_a_full_resync(tmp_path: Path,
                                                          source: FakeSource) -> None:
    cat = Catalog(tmp_path / "catalog.db", source)
    cat.sync()
    fresh = FakeSource()  # e.g. the server's database restored from an older backup
    del fresh.rows["A0102"]
    fresh.version = 2
    cat._client = fresh
    cat.sync()
    assert fresh.calls == [source.version, 0]
    assert cat.get("A0102") is None and cat.version == 2
    assert cat.last_sync is not None and cat.last_sync.full


def test_keys_of_an_older_algorithm_are_redone_at_sync_not_open(
        tmp_path: Path, source: FakeSource) -> None:
    path = tmp_path / "catalog.db"
    Catalog(path, source).sync()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE matters SET keys_rev = 'old', initials = 'zzz' WHERE code = 'A0201'")
    conn.commit()
    conn.close()
    cat = Catalog(path, source)
    assert codes(cat, "zzz") == ["A0201"]  # stored keys served as they are
    cat.sync()
    assert cat.last_sync is not None and cat.last_sync.keys_computed == 1
    assert codes(cat, "zzz") == [] and codes(cat, "spjyxk") == ["A0201"]
    reopened = Catalog(path, None)
    assert codes(reopened, "spjyxk") == ["A0201"]


def test_unreadable_rows_are_skipped_and_force_a_full_resync(
        tmp_path: Path, source: FakeSource) -> None:
    path = tmp_path / "catalog.db"
    Catalog(path, source).sync()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE matters SET data = '{\"code\": 1' WHERE code = 'A0201'")
    conn.execute("UPDATE matters SET data = '{\"code\": \"C0101\"}' WHERE code = 'C0101'")
    conn.commit()
    conn.close()
    cat = Catalog(path, source)
    assert cat.version == 0 and cat.warnings and cat.recovered_from is None
    assert cat.get("A0201") is None and cat.get("C0101") is None
    assert codes(cat, "gtgsh") == ["A0101", "A0102"]
    cat.sync()
    assert source.calls[-1] == 0 and codes(cat, "shipin") == ["A0201"]
    assert cat.get("C0101") is not None


def test_cache_damaged_while_running_is_recovered_by_the_next_sync(
        tmp_path: Path, source: FakeSource) -> None:
    path = tmp_path / "catalog.db"
    cat = Catalog(path, source)
    cat.sync()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    raw = bytearray(path.read_bytes())
    raw[4096:] = b"\x5a" * (len(raw) - 4096)  # every page after the header trashed on disk
    path.write_bytes(bytes(raw))
    source.put("A0201", "食品经营许可（变更）", "Food business licence (change)")
    synced_before = len(source.calls)
    assert codes(cat, "shipin") == ["A0201"]  # still serving from memory meanwhile
    cat.sync()
    assert cat.recovered_from is not None and cat.recovered_from.exists()
    assert source.calls[synced_before:][-1] == 0  # refilled in full from the server
    assert cat.count() == len(NAMES) and cat.version == source.version
    reopened = Catalog(path, None)
    assert reopened.recovered_from is None and reopened.count() == len(NAMES)
    assert codes(reopened, "shipinjingyingxukebiangeng") == ["A0201"]


def test_search_from_another_thread_during_syncs(tmp_path: Path, source: FakeSource) -> None:
    import threading

    cat = Catalog(tmp_path / "catalog.db", source)
    cat.sync()
    stop = threading.Event()
    seen: list[tuple[str, ...]] = []
    errors: list[BaseException] = []

    def typist() -> None:
        try:
            while not stop.is_set():
                for q in ("s", "sh", "shi", "ship", "shipin"):
                    seen.append(tuple(m.name_zh for m in cat.search(q) if m.code == "A0201"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=typist)
    thread.start()
    try:
        for k in range(30):
            source.put("A0201", f"食品经营许可{'（变更）' if k % 2 == 0 else ''}", "Food")
            assert cat.sync() == 1
            time.sleep(0.003)  # let the typist see this state (not a timing assertion)
    finally:
        stop.set()
        thread.join(10)
    assert not errors and seen
    assert set(seen) <= {("食品经营许可",), ("食品经营许可（变更）",)}
    assert set(seen) == {("食品经营许可",), ("食品经营许可（变更）",)}


def test_damaged_cache_that_cannot_be_moved_runs_in_memory(
        tmp_path: Path, source: FakeSource, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "catalog.db"
    path.write_bytes(b"garbage" * 100)

    def locked(src: object, dst: object) -> None:
        # what Windows says while another program holds the file open
        raise PermissionError(13, "The process cannot access the file", str(src))

    monkeypatch.setattr(catalog_mod.os, "replace", locked)
    cat = Catalog(path, source)
    assert cat.recovered_from is None and cat.count() == 0
    assert any("memory only" in w for w in cat.warnings)
    assert path.read_bytes() == b"garbage" * 100  # left where it was, untouched
    cat.sync()
    assert codes(cat, "gtgsh") == ["A0101", "A0102"]
