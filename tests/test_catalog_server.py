"""The offline catalog against the real reference server (loopback, seeded demo hall).

Full sync of the demo catalog, an admin import that changes and removes matters followed by a
delta sync that fetches only those, the server going away (search keeps working from the
cache, sync says offline), and a damaged cache file refilled from the server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api_client import HallClient
from counter_app.catalog import Catalog
from counter_app.errors import OfflineError
from counter_app.events import CatalogSynced, EventBus
from tests.support.server_fixtures import RunningServer, signed_in

DEMO_MATTERS = 823


@pytest.fixture
def client(fresh_hall_server: RunningServer) -> Iterator[HallClient]:
    c = HallClient(fresh_hall_server.url, timeout=(1.0, 5.0), max_retries=0)
    c.login("1001", "demo1234", window_no=1)
    yield c
    c.close()


def admin_import(server: RunningServer, items: list[dict[str, Any]]) -> int:
    admin = signed_in(server.url, "9001")
    try:
        r = admin.post("/admin/matters/import", json=items, key=str(uuid.uuid4()))
        assert r.status_code == 200, r.text
        return int(r.json()["catalog_version"])
    finally:
        admin.close()


def server_matter(server: RunningServer, code: str) -> dict[str, Any]:
    api = signed_in(server.url, "9001")
    try:
        r = api.get(f"/matters/{code}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body
    finally:
        api.close()


def names(cat: Catalog, q: str) -> list[str]:
    return [m.name_zh for m in cat.search(q)]


def test_full_then_delta_sync(tmp_path: Path, fresh_hall_server: RunningServer,
                              client: HallClient) -> None:
    bus = EventBus()
    synced: list[CatalogSynced] = []
    bus.subscribe(CatalogSynced, synced.append)
    cat = Catalog(tmp_path / "catalog.db", client, bus)
    assert cat.sync() == DEMO_MATTERS
    assert cat.count() == DEMO_MATTERS and cat.version > 0
    assert synced == [CatalogSynced(count=DEMO_MATTERS, version=cat.version)]
    assert names(cat, "gtgsh")[0] == "个体工商户设立登记"
    assert any(n.startswith("食品经营许可") for n in names(cat, "shipin")[:3])
    matter = cat.search("个体工商户设立登记")[0]
    got = cat.get(matter.code)
    assert got is not None and got.checklist and got == matter
    assert got.checklist[0].name_zh == "个体工商户登记（备案）申请书"

    # IT changes one matter's name and removes another through the admin import
    first_version = cat.version
    changed = server_matter(fresh_hall_server, matter.code)
    changed["name_zh"] = "个体工商户设立登记（告知承诺制）"
    gone_code = cat.search("gtgshzxdj")[0].code
    gone = dict(server_matter(fresh_hall_server, gone_code), deleted=True)
    new_version = admin_import(fresh_hall_server, [changed, gone])
    assert new_version > first_version

    assert cat.sync() == 2
    assert cat.last_sync is not None and not cat.last_sync.full
    assert cat.last_sync.changed == 1 and cat.last_sync.deleted == 1
    assert cat.last_sync.keys_computed == 1  # only the renamed matter's pinyin
    assert cat.version == new_version and cat.count() == DEMO_MATTERS - 1
    assert "个体工商户设立登记（告知承诺制）" in names(cat, "gaozhichengnuo")
    assert cat.get(gone_code) is None
    assert synced[-1] == CatalogSynced(count=DEMO_MATTERS - 1, version=new_version)
    # nothing new: an empty delta
    assert cat.sync() == 0


def test_offline_the_cache_keeps_serving(tmp_path: Path, fresh_hall_server: RunningServer,
                                         client: HallClient) -> None:
    path = tmp_path / "catalog.db"
    cat = Catalog(path, client)
    cat.sync()
    version = cat.version
    fresh_hall_server.stop()
    with pytest.raises(OfflineError):
        cat.sync()
    assert cat.version == version and names(cat, "gtgsh")[0] == "个体工商户设立登记"
    cat.close()
    # the desk restarted while the server is still down
    again = Catalog(path, client)
    assert again.count() == DEMO_MATTERS and again.version == version
    assert any(n.startswith("食品经营许可") for n in names(again, "食品经营"))
    with pytest.raises(OfflineError):
        again.sync()
    assert again.count() == DEMO_MATTERS


def test_corrupt_cache_is_set_aside_and_refilled(tmp_path: Path, client: HallClient) -> None:
    path = tmp_path / "catalog.db"
    first = Catalog(path, client)
    first.sync()
    first.close()
    path.write_bytes(b"\x00garbage" * 1000)
    cat = Catalog(path, client)
    assert cat.recovered_from is not None and cat.recovered_from.exists()
    assert cat.count() == 0 and cat.version == 0 and cat.warnings
    assert cat.sync() == DEMO_MATTERS
    assert names(cat, "gtgsh")[0] == "个体工商户设立登记"
