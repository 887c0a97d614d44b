"""The demo hall's data: the catalogue's size and shape, checklists, determinism, avatars."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from hall_server import demo_data
from hall_server.demo_data import HAND_WRITTEN_COUNT, MATTER_COUNT, avatar_png, build_demo_hall

REQUIREMENTS = {"required", "optional", "accepted_pending"}
MATTER_KEYS = {"code", "name_zh", "name_en", "department_zh", "department_en", "category",
               "time_limit_days", "instant", "cross_region", "version", "deleted", "checklist"}
ITEM_KEYS = {"id", "name_zh", "name_en", "requirement", "copies", "original_required",
             "e_licence", "notes_zh", "notes_en"}


@pytest.fixture(scope="module")
def hall() -> demo_data.DemoHall:
    return build_demo_hall()


def test_exactly_823_matters_with_unique_codes_and_names(hall: demo_data.DemoHall) -> None:
    assert MATTER_COUNT == 823
    assert len(hall.matters) == 823
    assert len({m["code"] for m in hall.matters}) == 823
    assert len({m["name_zh"] for m in hall.matters}) == 823
    assert len({m["name_en"] for m in hall.matters}) == 823


def test_matters_have_the_contract_shape(hall: demo_data.DemoHall) -> None:
    codes = {c["code"] for c in hall.categories}
    for m in hall.matters:
        assert set(m) == MATTER_KEYS, m["code"]
        assert m["category"] in codes
        assert m["code"].split("-")[1] == m["category"]
        assert m["version"] == 1 and m["deleted"] is False
        assert isinstance(m["time_limit_days"], int) and 0 <= m["time_limit_days"] <= 60
        assert isinstance(m["instant"], bool) and isinstance(m["cross_region"], bool)
        for key in ("name_zh", "name_en", "department_zh", "department_en"):
            assert m[key].strip(), (m["code"], key)


def test_every_checklist_item_is_valid(hall: demo_data.DemoHall) -> None:
    for m in hall.matters:
        assert m["checklist"], m["code"]
        ids = [i["id"] for i in m["checklist"]]
        assert len(ids) == len(set(ids)), m["code"]
        for item in m["checklist"]:
            assert set(item) == ITEM_KEYS
            assert item["requirement"] in REQUIREMENTS
            assert isinstance(item["copies"], int) and item["copies"] >= 1
            assert isinstance(item["original_required"], bool) and isinstance(item["e_licence"], bool)
            assert item["name_zh"].strip() and item["name_en"].strip(), (m["code"], item)
            # notes are optional, but a note in one language must exist in the other
            assert bool(item["notes_zh"].strip()) == bool(item["notes_en"].strip()), (m["code"], item)


def test_hand_written_matters_come_first_and_are_full_guides(hall: demo_data.DemoHall) -> None:
    assert HAND_WRITTEN_COUNT >= 40
    hand = demo_data._hand_written()
    names = {m["name_zh"] for m in hall.matters}
    for raw in hand:
        assert raw["name_zh"] in names
        assert len(raw["items"]) >= 3, raw["name_zh"]
    by_name = {m["name_zh"]: m for m in hall.matters}
    gt = by_name["个体工商户设立登记"]
    assert gt["category"] == "A" and gt["instant"] and gt["time_limit_days"] == 0
    id_card = next(i for i in gt["checklist"] if "身份证" in i["name_zh"])
    assert id_card["e_licence"] and id_card["requirement"] == "required"
    food = by_name["食品经营许可（新办）"]
    assert any(i["requirement"] == "accepted_pending" and "健康证明" in i["name_zh"] for i in food["checklist"])
    assert any(i["requirement"] == "optional" and "委托书" in i["name_zh"] for i in food["checklist"])


def test_catalogue_uses_the_flags_and_every_requirement(hall: demo_data.DemoHall) -> None:
    assert sum(m["instant"] for m in hall.matters) >= 50
    cross = [m for m in hall.matters if m["cross_region"]]
    assert len(cross) >= 20 and all(m["category"] == "G" for m in cross)
    reqs = {i["requirement"] for m in hall.matters for i in m["checklist"]}
    assert reqs == REQUIREMENTS
    assert {m["time_limit_days"] for m in hall.matters} >= {0, 1, 3, 5, 10, 20}


def test_categories_windows_and_staff_fit_together(hall: demo_data.DemoHall) -> None:
    codes = [c["code"] for c in hall.categories]
    assert codes == list("ABCDEFG")
    assert {m["category"] for m in hall.matters} == set(codes)
    assert len(hall.windows) >= 12
    assert len({w["no"] for w in hall.windows}) == len(hall.windows)
    served: set[str] = set()
    for w in hall.windows:
        assert w["categories"] and set(w["categories"]) <= set(codes), w
        served |= set(w["categories"])
        assert w["name_zh"].startswith(f"{w['no']}号窗口")
    assert served == set(codes)
    staff = {s["staff_no"]: s for s in hall.staff}
    assert len(staff) == len(hall.staff)
    for n in range(1, 13):
        assert staff[f"{1000 + n}"]["window_no"] == n and staff[f"{1000 + n}"]["role"] == "staff"
    assert staff["8001"]["role"] == "supervisor" and staff["9001"]["role"] == "it_admin"
    window_nos = {w["no"] for w in hall.windows}
    assigned = [s["window_no"] for s in hall.staff if s["window_no"] is not None]
    assert set(assigned) <= window_nos and len(assigned) == len(set(assigned))
    assert any(s["window_no"] is None and s["role"] == "staff" for s in hall.staff)
    assert hall.hall["code"] == "GXQ" and hall.hall["name_zh"] == "高新区政务服务大厅"


def test_pause_and_rating_reasons(hall: demo_data.DemoHall) -> None:
    pause = {p["code"]: p for p in hall.pause_reasons}
    assert {"break", "meeting", "system_fault", "training", "fetch_materials"} <= set(pause)
    for p in hall.pause_reasons:
        assert all(p[k].strip() for k in ("name_zh", "name_en", "public_zh", "public_en"))
    rr = hall.rating_reasons
    assert rr["version"].startswith("GB/T 39734-2020")
    assert 10 <= len(rr["reasons"]) <= 14
    assert len({r["code"] for r in rr["reasons"]}) == len(rr["reasons"])
    assert all(r["text_zh"].strip() and r["text_en"].strip() for r in rr["reasons"])


def test_deterministic_per_seed_and_seed_matters() -> None:
    a, b = build_demo_hall(1), build_demo_hall(1)
    assert a == b
    a.matters[0]["name_zh"] = "changed"  # callers get fresh copies
    assert build_demo_hall(1).matters[0]["name_zh"] != "changed"
    other = build_demo_hall(2)
    assert len(other.matters) == 823
    assert [m["name_zh"] for m in other.matters] != [m["name_zh"] for m in b.matters]


def _white_pixels(img: Image.Image) -> int:
    """Pixels of the (white) glyph: every channel near 255 (the corners are a paler grey)."""
    raw = img.convert("RGB").tobytes()
    return sum(1 for i in range(0, len(raw), 3) if min(raw[i:i + 3]) > 250)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, ctype = struct.unpack(">I4s", data[8:16])
    assert ctype == b"IHDR" and length == 13
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


@pytest.mark.parametrize("size", [256, 96, 40])
def test_avatar_is_a_png_of_the_requested_size(size: int) -> None:
    data = avatar_png("1001", "王丽娜", size)
    assert _png_size(data) == (size, size)
    Image.open(io.BytesIO(data)).verify()
    rgb = Image.open(io.BytesIO(data)).convert("RGB")
    colours = rgb.getcolors(maxcolors=size * size)
    assert colours is not None and len(colours) > 2


def test_avatar_draws_the_glyph_and_is_deterministic() -> None:
    a = Image.open(io.BytesIO(avatar_png("1003", "张晓燕"))).convert("RGB")
    # the centre holds the glyph: white strokes on the coloured disc
    centre = a.crop((64, 64, 192, 192))
    assert _white_pixels(centre) > 200
    assert avatar_png("1003", "张晓燕") == avatar_png("1003", "张晓燕")
    # another surname draws another glyph (a missing-glyph box would look the same for both)
    assert avatar_png("1003", "张晓燕") != avatar_png("1003", "李晓燕")


def test_avatar_without_cjk_font_falls_back_to_initials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_data, "_cjk_font_path", lambda: None)
    data = avatar_png("1012", "孙志强", 128)
    assert _png_size(data) == (128, 128)
    assert demo_data._initials("1012", "孙志强") == "SZ"
    assert _white_pixels(Image.open(io.BytesIO(data))) > 50


def test_avatar_rejects_a_silly_size() -> None:
    with pytest.raises(ValueError):
        avatar_png("1001", "王丽娜", 4)


def test_texts_fit_the_lengths_a_hall_database_accepts(hall: demo_data.DemoHall) -> None:
    # PostgreSQL enforces VARCHAR lengths (SQLite does not): the seed must fit real columns.
    for row in [*hall.categories, *hall.windows, *hall.staff, *hall.pause_reasons]:
        assert len(row["name_zh"]) <= 100 and len(row["name_en"]) <= 100, row
    for p in hall.pause_reasons:
        assert len(p["public_zh"]) <= 200 and len(p["public_en"]) <= 200
    for m in hall.matters:
        assert len(m["code"]) <= 64
        assert len(m["name_zh"]) <= 300 and len(m["name_en"]) <= 300
        assert len(m["department_zh"]) <= 200 and len(m["department_en"]) <= 200
        for item in m["checklist"]:
            assert len(item["id"]) <= 64
            assert len(item["name_zh"]) <= 300 and len(item["name_en"]) <= 300


def test_catalogue_reads_like_a_district_hall(hall: demo_data.DemoHall) -> None:
    by_name = {m["name_zh"]: m for m in hall.matters}
    for name in ("个体工商户注销登记", "有限责任公司设立登记", "公共场所卫生许可", "建筑工程施工许可",
                 "养犬登记", "居住证办理", "最低生活保障申请", "不动产转移登记（二手房买卖）",
                 "新办纳税人套餐", "住房公积金提取（租房）"):
        assert name in by_name, name
    # an agent may always apply: the power of attorney is optional wherever it is listed
    for m in hall.matters:
        for item in m["checklist"]:
            if item["name_zh"] == "授权委托书":
                assert item["requirement"] == "optional", m["code"]
    # codes are ordered by category then number, as the catalogue pages are
    codes = [m["code"] for m in hall.matters]
    assert codes == sorted(codes)
    assert codes[0] == "370191-A-0001"
    # every category is big enough to be worth a window and no department is unnamed
    per_cat = {c["code"]: sum(1 for m in hall.matters if m["category"] == c["code"]) for c in hall.categories}
    assert min(per_cat.values()) >= 40
    assert len({m["department_zh"] for m in hall.matters}) >= 12
