"""Matter search over 10,000 matters: filter time per keystroke, and what the keys cost at sync.

The catalog is built the way the desk builds it: a real `Catalog` (SQLite cache in a temporary
folder) fully synced from an in-process source serving 10,000 generated matter names (real
published matter names crossed with the qualifiers halls add), then reopened from the cache the
way the desk starts. Staff are simulated typing 60 names three ways (full pinyin, initials,
Chinese), one character at a time, each keystroke timed through `Catalog.search`, as the view
calls it; then each whole name at once, as if pasted (no earlier query to narrow from). The
floor is the least any Python filter can do: one `in` test per matter over one precomputed
string each, with no ranking and no narrowing, measured for the same queries in the same run.

Figures: keystroke p50/p99 per typing style (target `value<=2` ms, PERFORMANCE.md), the floor
ratio, and the one-off costs (pinyin key computation at sync, full sync, open from cache).
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

from api_client.models import MatterPage
from bench.common import figure, percentile
from counter_app.catalog import Catalog
from counter_app.search import compute_keys, normalize

N_MATTERS = 10_000
N_TYPED = 60

# (name_zh, name_en) of matters as service halls publish them.
BASE = [
    ("个体工商户设立登记", "Registration of an individual business"),
    ("个体工商户注销登记", "Deregistration of an individual business"),
    ("食品经营许可", "Food business licence"),
    ("食品生产许可证核发", "Food production licence"),
    ("营业执照遗失补领", "Replacement of a lost business licence"),
    ("企业名称自主申报", "Company name self-declaration"),
    ("有限责任公司设立登记", "Registration of a limited liability company"),
    ("农民专业合作社设立登记", "Registration of a farmers' cooperative"),
    ("城乡居民基本养老保险参保登记", "Enrolment in the residents' basic pension"),
    ("失业保险金申领", "Claim for unemployment insurance benefit"),
    ("职工基本医疗保险参保登记", "Enrolment in employees' medical insurance"),
    ("医疗费用异地就医备案", "Registration for medical treatment elsewhere"),
    ("生育津贴申领", "Claim for maternity allowance"),
    ("工伤认定申请", "Application for work injury recognition"),
    ("居民身份证换领", "Renewal of the resident identity card"),
    ("居住证申领", "Application for a residence permit"),
    ("出生医学证明补发", "Reissue of a medical birth certificate"),
    ("户口迁移登记", "Household registration transfer"),
    ("不动产登记资料查询", "Search of real estate register records"),
    ("不动产抵押权登记", "Registration of a mortgage on real estate"),
    ("建设工程规划许可证核发", "Construction project planning permit"),
    ("建筑工程施工许可证核发", "Building construction permit"),
    ("建设工程竣工验收备案", "Filing of construction completion acceptance"),
    ("公共场所卫生许可", "Public place hygiene licence"),
    ("药品经营许可证核发", "Pharmaceutical trading licence"),
    ("医疗器械经营备案", "Filing of medical device trading"),
    ("道路运输经营许可", "Road transport business licence"),
    ("机动车驾驶证补领", "Replacement of a driving licence"),
    ("出租汽车驾驶员从业资格证核发", "Taxi driver qualification certificate"),
    ("银行业金融机构设立审批", "Approval of a banking institution"),
    ("税务登记信息变更", "Change of tax registration information"),
    ("增值税发票领用", "Issue of VAT invoices"),
    ("个人所得税纳税记录开具", "Certificate of individual income tax paid"),
    ("残疾人证办理", "Issue of a disability certificate"),
    ("最低生活保障申请", "Application for minimum living allowance"),
    ("临时救助申请", "Application for temporary assistance"),
    ("婚姻登记档案查询", "Search of marriage registration records"),
    ("烟草专卖零售许可证核发", "Tobacco retail licence"),
    ("酒类商品零售备案", "Filing of liquor retail"),
    ("排污许可证核发", "Pollutant discharge permit"),
    ("建设项目环境影响评价审批", "Approval of an environmental impact assessment"),
    ("取水许可", "Water abstraction permit"),
    ("林木采伐许可证核发", "Tree felling permit"),
    ("动物防疫条件合格证核发", "Animal epidemic prevention certificate"),
    ("人力资源服务许可", "Human resources service licence"),
    ("劳务派遣经营许可", "Labour dispatch business licence"),
    ("民办学校办学许可", "Licence for a private school"),
    ("教师资格认定", "Teacher qualification recognition"),
    ("公共租赁住房资格申请", "Application for public rental housing"),
    ("住房公积金提取", "Withdrawal of housing provident fund"),
    ("住房公积金贷款申请", "Housing provident fund loan application"),
    ("户外广告设施设置审批", "Approval of outdoor advertising"),
    ("城市道路占用挖掘审批", "Approval of occupying or digging a city road"),
    ("消防安全检查", "Fire safety inspection"),
    ("特种设备使用登记", "Registration of special equipment use"),
    ("电子印章申领", "Application for an electronic seal"),
    ("商品房预售许可", "Pre-sale permit for commercial housing"),
    ("外国人来华工作许可", "Work permit for foreigners in China"),
    ("港澳台居民居住证申领", "Residence permit for Hong Kong, Macao and Taiwan residents"),
    ("退役军人优待证申领", "Veterans' preferential treatment card"),
]
QUALIFIERS = [("", ""), ("企业", "enterprise"), ("个人", "individual"),
              ("外商投资", "foreign-invested"), ("分支机构", "branch"), ("市级", "city level"),
              ("区级", "district level"), ("乡镇", "township"), ("跨省通办", "inter-provincial"),
              ("网上", "online"), ("首次", "first time"), ("延续", "extension"),
              ("变更", "change"), ("注销", "cancellation")]
SUFFIXES = ["", "（告知承诺制）", "（容缺受理）", "（即办件）", "（补证）", "（换证）",
            "（年度报告）", "（变更）", "（注销）", "（延续）", "（遗失补领）", "（第二类）",
            "（第三类）"]


def generate(n: int = N_MATTERS) -> list[tuple[str, str, str]]:
    """`n` distinct (code, name_zh, name_en), deterministic."""
    rng = random.Random(20261125)
    combos = [(q, b, s) for b in BASE for q in QUALIFIERS for s in SUFFIXES]
    rng.shuffle(combos)
    out = []
    for k, ((qual_zh, qual_en), (zh, en), suffix) in enumerate(combos[:n]):
        code = f"{'ABCDEFG'[k % 7]}{k:05d}"
        out.append((code, f"{qual_zh}{zh}{suffix}",
                    f"{en} ({qual_en})" if qual_en else en))
    if len(out) < n:
        raise ValueError(f"only {len(out)} distinct names")
    return out


class _Source:
    """Serves the generated catalog like GET /matters, in one page."""

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        self.items = [
            {"code": c, "name_zh": zh, "name_en": en, "department_zh": "政务服务中心",
             "department_en": "Service centre", "category": c[0], "time_limit_days": 5,
             "instant": False, "cross_region": False, "version": 1, "deleted": False,
             "checklist": [{"id": str(i), "name_zh": f"材料{i}", "name_en": f"Document {i}",
                            "requirement": "required", "copies": 1,
                            "original_required": True, "e_licence": False,
                            "notes_zh": "", "notes_en": ""} for i in range(1, 6)]}
            for c, zh, en in rows
        ]

    def sync_matters(self, updated_since: int = 0) -> MatterPage:
        return MatterPage.from_json({"catalog_version": 1, "next_after": None,
                                     "items": self.items if updated_since < 1 else []})


def _typed(rows: list[tuple[str, str, str]]) -> dict[str, list[str]]:
    rng = random.Random(7)
    picked = rng.sample(rows, N_TYPED)
    styles: dict[str, list[str]] = {"pinyin": [], "initials": [], "chinese": []}
    for _, zh, _ in picked:
        pinyin, initials = compute_keys(zh)
        styles["pinyin"].append(pinyin.replace(" ", "")[:14])
        styles["initials"].append(initials[:8])
        styles["chinese"].append(zh[:6])
    return styles


def run() -> list[dict[str, Any]]:
    rows = generate()
    lines: list[dict[str, Any]] = []

    t0 = time.perf_counter()
    for _, zh, _ in rows:
        compute_keys(zh)
    keys_s = time.perf_counter() - t0
    lines.append(figure("catalog_pinyin_keys_10000_names_s", keys_s, n=len(rows),
                        note="computed at sync only, never at start-up"))

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.db"
        first = Catalog(path, _Source(rows))
        t0 = time.perf_counter()
        first.sync()
        lines.append(figure("catalog_full_sync_10000_s", time.perf_counter() - t0, n=len(rows)))
        first.close()
        t0 = time.perf_counter()
        cat = Catalog(path, None)  # the desk starting: cache only, no pinyin computed
        lines.append(figure("catalog_open_from_cache_10000_ms",
                            (time.perf_counter() - t0) * 1000, n=cat.count()))

        # The floor's haystacks: the same per-matter keys the index searches (ASCII keys for
        # ASCII queries, the names for Chinese), one `in` each, no ranking, no narrowing.
        keyed = [(zh, en, *compute_keys(zh)) for _, zh, en in rows]
        hay_ascii = [f"{py.replace(' ', '')}\x1f{ini}\x1f{normalize(en)}" for _, en, py, ini in keyed]
        hay_text = [f"{normalize(zh)}\x1f{normalize(en)}" for zh, en, _, _ in keyed]

        def floor_ms(q: str) -> float:
            hay = hay_ascii if q.isascii() else hay_text
            t = time.perf_counter()
            [h for h in hay if q in h]  # noqa: B018 - the floor: one `in` per matter
            return (time.perf_counter() - t) * 1000

        for style, words in _typed(rows).items():
            times: list[float] = []
            floors: list[float] = []
            pasted: list[float] = []
            pasted_floors: list[float] = []
            for word in words:
                cat.search("#")  # the field cleared: no narrowing carried over between names
                for n in range(1, len(word) + 1):
                    q = word[:n]
                    t = time.perf_counter()
                    cat.search(q)
                    times.append((time.perf_counter() - t) * 1000)
                    floors.append(floor_ms(q))
                # the whole word at once (pasted, or keystrokes coalesced): nothing to narrow
                cat.search("#")
                t = time.perf_counter()
                cat.search(word)
                pasted.append((time.perf_counter() - t) * 1000)
                pasted_floors.append(floor_ms(word))
            for label, values, base in (("keystroke", times, floors),
                                        ("pasted", pasted, pasted_floors)):
                for pct in (50, 99):
                    lines.append(figure(
                        f"catalog_{label}_{style}_p{pct}_ms", percentile(values, pct),
                        floor=percentile(base, pct), target="value<=2", n=len(values)))
        cat.close()
    return lines


if __name__ == "__main__":
    import json

    for line in run():
        print(json.dumps(line, ensure_ascii=False))
