"""Matter search over real Chinese matter names: pinyin, initials, Chinese, English and code.

Pure logic (no server, no SQLite): keys come from the real pypinyin, the index is the real one.
"""

from __future__ import annotations

import pytest

from counter_app.search import IndexEntry, SearchIndex, compute_keys, normalize

# (code, name_zh, name_en): real matter names as halls publish them.
MATTERS = [
    ("A0101", "个体工商户设立登记", "Registration of an individual business"),
    ("A0102", "个体工商户注销登记", "Deregistration of an individual business"),
    ("A0103", "个体工商户变更登记", "Change registration of an individual business"),
    ("A0201", "食品经营许可", "Food business licence"),
    ("A0202", "食品生产许可证核发", "Food production licence"),
    ("A0301", "营业执照遗失补领", "Replacement of a lost business licence"),
    ("B0101", "城乡居民基本养老保险参保登记", "Enrolment in the residents' basic pension"),
    ("B0102", "失业保险金申领", "Claim for unemployment insurance benefit"),
    ("C0101", "居民身份证换领", "Renewal of the resident identity card"),
    ("C0102", "出生医学证明补发", "Reissue of a medical birth certificate"),
    ("D0101", "不动产登记资料查询", "Search of real estate register records"),
    ("D0102", "建设工程规划许可证核发", "Construction project planning permit"),
    ("E0101", "公共场所卫生许可", "Public place hygiene licence"),
    ("E0102", "药品经营许可证核发", "Pharmaceutical trading licence"),
    ("F0101", "银行业金融机构设立审批", "Approval of a banking institution"),
    ("G0101", "绿色通道申请", "Green channel application"),
]


@pytest.fixture(scope="module")
def index() -> SearchIndex:
    entries = []
    for code, zh, en in MATTERS:
        py, ini = compute_keys(zh)
        entries.append(IndexEntry(code, zh, en, py, ini))
    return SearchIndex(entries)


def names(index: SearchIndex, q: str, limit: int = 50) -> list[str]:
    by_code = {c: zh for c, zh, _ in MATTERS}
    return [by_code[c] for c in index.search(q, limit)]


def test_keys_of_a_real_name() -> None:
    assert compute_keys("个体工商户设立登记") == ("ge ti gong shang hu she li deng ji", "gtgshsldj")
    # pypinyin reads 行 in context: yin hang, not yin xing
    assert compute_keys("银行业金融机构设立审批")[0].startswith("yin hang ye")
    # ü is typed v; Latin letters and digits stay whole tokens; full-width is folded
    assert compute_keys("绿色通道") == ("lv se tong dao", "lstd")
    assert compute_keys("ＩＣＰ备案（2号）") == ("icp bei an 2 hao", "icpba2h")


def test_initials_find_the_individual_business() -> None:
    found = names(index_for(), "gtgsh")
    assert found[0] == "个体工商户设立登记"
    assert set(found) == {"个体工商户设立登记", "个体工商户注销登记", "个体工商户变更登记"}


def index_for() -> SearchIndex:
    entries = [IndexEntry(c, zh, en, *compute_keys(zh)) for c, zh, en in MATTERS]
    return SearchIndex(entries)


def test_full_pinyin(index: SearchIndex) -> None:
    assert names(index, "shipin")[:2] == ["食品经营许可", "食品生产许可证核发"]
    assert names(index, "getigongshang")[0].startswith("个体工商户")
    # spaces between syllables are ignored
    assert names(index, "ge ti gong")[0].startswith("个体工商户")
    # a pinyin match in the middle of the name, at a syllable boundary
    assert "个体工商户注销登记" in names(index, "zhuxiao")
    assert names(index, "zhuxiao") == ["个体工商户注销登记"]


def test_chinese_substring_and_prefix(index: SearchIndex) -> None:
    assert names(index, "许可") == [
        "食品经营许可", "公共场所卫生许可", "食品生产许可证核发", "药品经营许可证核发",
        "建设工程规划许可证核发",
    ]
    # a name starting with the query ranks before one merely containing it
    assert names(index, "食品")[0] == "食品经营许可"
    assert names(index, "登记")[-1] == "城乡居民基本养老保险参保登记"


def test_english_case_insensitive(index: SearchIndex) -> None:
    assert names(index, "FOOD") == ["食品经营许可", "食品生产许可证核发"]
    found = names(index, "licence")
    assert "营业执照遗失补领" in found and "公共场所卫生许可" in found
    # an English word start ranks before a match inside a word
    assert names(index, "business li")[0] in {"食品经营许可", "营业执照遗失补领"}


def test_code_exact_then_prefix(index: SearchIndex) -> None:
    assert index.search("a0201") == ["A0201"]
    assert index.search("A01")[:3] == ["A0101", "A0102", "A0103"]
    # an exact code comes before codes it is a prefix of... and before name matches
    assert index.search("e0101")[0] == "E0101"


def test_initials_prefix_ranks_before_mid_name_match(index: SearchIndex) -> None:
    found = names(index, "sp")
    assert found[0] == "食品经营许可"  # initials start with sp
    assert found[:2] == ["食品经营许可", "食品生产许可证核发"]


def test_no_match_and_limits(index: SearchIndex) -> None:
    assert index.search("qqqqzzz") == []
    assert index.search("xuke", limit=0) == []
    assert len(index.search("许可", limit=2)) == 2
    # empty query: the first matters by code, for a browsable list
    assert index.search("  ", limit=3) == ["A0101", "A0102", "A0103"]


def test_incremental_narrowing_matches_a_fresh_search(index: SearchIndex) -> None:
    typed = "gtgshsldj"
    for n in range(1, len(typed) + 1):
        fresh = index_for().search(typed[:n])
        assert index.search(typed[:n]) == fresh, typed[:n]
    # backspacing and retyping another branch gives the same as a fresh index
    for q in ["shipin", "ship", "shiy", "shi", "s", "xu", "xuke", "许", "许可"]:
        assert index.search(q) == index_for().search(q), q


def test_normalize() -> None:
    assert normalize("  Ｆood   Licence ") == "food licence"
