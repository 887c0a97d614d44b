"""Search in the clerks' words (issue 16 item 6): the demo catalog synced from the real
reference server on loopback, searched with short forms and pinyin initials of short forms that
the names do not contain ("sbk", "社保卡", "yyzz", "身份证"), plus a hall's own words file and a
broken one (logged, the shipped words still work)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from api_client import HallClient
from counter_app.catalog import Catalog
from counter_app.synonyms import Synonyms, hall_synonyms_path
from tests.support.server_fixtures import RunningServer


@pytest.fixture
def client(fresh_hall_server: RunningServer) -> Iterator[HallClient]:
    c = HallClient(fresh_hall_server.url, timeout=(1.0, 5.0), max_retries=0)
    c.login("1001", "demo1234", window_no=1)
    yield c
    c.close()


def names(cat: Catalog, q: str) -> list[str]:
    return [m.name_zh for m in cat.search(q)]


def test_short_forms_find_the_matters(tmp_path: Path, client: HallClient,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTER_SYNONYMS", str(tmp_path / "none.toml"))
    cat = Catalog(tmp_path / "catalog.db", client)
    cat.sync()
    for q in ("sbk", "社保卡", "SBK", "社保卡补换"):
        found = names(cat, q)
        assert found, q
        assert "社会保障卡" in found[0], (q, found[:5])
    assert "社会保障卡补换" == names(cat, "社保卡补换")[0]
    assert any("营业执照" in n for n in names(cat, "yyzz")[:5])
    assert any("居民身份证" in n for n in names(cat, "身份证")[:3])
    assert any("个体工商户" in n for n in names(cat, "个体户")[:3])
    # what the names say is still found as before, first
    assert names(cat, "社会保障卡申领")[0] == "社会保障卡申领"


def test_the_hall_extends_the_words_and_a_broken_file_loses_nothing(
        tmp_path: Path, client: HallClient, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    words = tmp_path / "synonyms.toml"
    words.write_text('[terms]\n"社会保障卡" = ["市民卡", "smk"]\n', encoding="utf-8")
    monkeypatch.setenv("COUNTER_SYNONYMS", str(words))
    assert hall_synonyms_path() == words
    cat = Catalog(tmp_path / "catalog.db", client)
    cat.sync()
    assert "社会保障卡" in names(cat, "市民卡")[0]
    assert "社会保障卡" in names(cat, "smk")[0]
    assert "社会保障卡" in names(cat, "sbk")[0]  # the shipped words still there
    words.write_text('[terms\n"社会保障卡" = 3\n', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="counter_app.synonyms"):
        broken = Synonyms.load()
    assert "hall search words not used" in caplog.text and str(words) in caplog.text
    assert broken.expand("sbk") == (True, ["社会保障卡"])
    assert broken.expand("市民卡") == (False, [])


def test_expand_is_plain_string_work() -> None:
    syn = Synonyms({"社保卡": ["社会保障卡"], "社保": ["社会保险"], "sb": ["社会保险"]})
    assert syn.expand("社保卡补换") == (False, ["社会保障卡补换", "社会保险卡补换"])
    assert syn.expand("sb") == (True, ["社会保险"])
    assert syn.expand("gsbz") == (False, [])  # a 2-letter Latin alias only as the whole query
    assert syn.expand("  ") == (False, [])
