"""Seeding the demo hall (`--demo`) through the same `hallsetup.init_hall` as `hall-server init`,
from `hall_server.demo_data` when present, else from a small built-in hall so the server still
starts; then the demo staff and catalog in a few bulk inserts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hall_server import schema as t
from hall_server.catalog import bump_version, write_matters
from hall_server.core import get_meta, set_meta
from hall_server.db import Store, Tx
from hall_server.hallsetup import demo_spec, init_hall, is_initialised
from hall_server.security import hash_password

DEMO_PASSWORD = "demo1234"


@dataclass
class DemoSource:
    hall: dict[str, str]
    categories: list[dict[str, str]]
    windows: list[dict[str, Any]]
    staff: list[dict[str, Any]]
    pause_reasons: list[dict[str, str]]
    rating_reasons: dict[str, Any]
    matters: list[dict[str, Any]]
    avatars: dict[str, bytes] = field(default_factory=dict)


def _fallback() -> DemoSource:
    cats = [
        ("A", "企业开办", "Business start-up"), ("B", "社保医保", "Social insurance"),
        ("C", "不动产", "Real estate"), ("D", "公安户政", "Household registration"),
        ("E", "税务", "Taxation"), ("F", "建设审批", "Construction permits"),
        ("G", "综合受理", "General services"),
    ]
    windows = []
    for no in range(1, 13):
        served = [cats[(no - 1) % 7][0], "G"] if (no - 1) % 7 != 6 else ["G", "A"]
        windows.append({"no": no, "name_zh": f"{no}号窗口", "name_en": f"Window {no}", "categories": served})
    staff = [
        {"staff_no": str(1000 + no), "name_zh": f"工作人员{no}", "name_en": f"Staff {no}", "role": "staff", "window_no": no}
        for no in range(1, 13)
    ]
    staff += [
        {"staff_no": "8001", "name_zh": "值班主任", "name_en": "Supervisor", "role": "supervisor", "window_no": None},
        {"staff_no": "9001", "name_zh": "信息管理员", "name_en": "IT admin", "role": "it_admin", "window_no": None},
    ]
    matters = []
    for i in range(1, 824):
        c = cats[i % 7][0]
        matters.append({
            "code": f"GXQ-{c}-{i:04d}", "name_zh": f"示例事项{i}", "name_en": f"Sample matter {i}",
            "department_zh": "行政审批服务局", "department_en": "Administrative Approval Bureau",
            "category": c, "time_limit_days": i % 20, "instant": i % 5 == 0, "cross_region": i % 9 == 0,
            "checklist": [
                {"id": "id_card", "name_zh": "身份证", "name_en": "ID card", "requirement": "required",
                 "copies": 1, "original_required": True, "e_licence": True, "notes_zh": "", "notes_en": ""},
                {"id": "form", "name_zh": "申请表", "name_en": "Application form", "requirement": "required",
                 "copies": 1, "original_required": True, "e_licence": False, "notes_zh": "", "notes_en": ""},
                {"id": "extra", "name_zh": "其他材料", "name_en": "Other papers", "requirement": "accepted_pending",
                 "copies": 1, "original_required": False, "e_licence": False, "notes_zh": "", "notes_en": ""},
            ],
        })
    return DemoSource(
        hall={"code": "GXQ", "name_zh": "高新区政务服务大厅", "name_en": "High-tech Zone Government Service Hall"},
        categories=[{"code": c, "name_zh": zh, "name_en": en} for c, zh, en in cats],
        windows=windows,
        staff=staff,
        pause_reasons=[
            {"code": "break", "name_zh": "休息", "name_en": "Break", "public_zh": "暂停服务，请稍候", "public_en": "Service paused, please wait"},
            {"code": "meeting", "name_zh": "会议", "name_en": "Meeting", "public_zh": "暂停服务", "public_en": "Service paused"},
            {"code": "system_fault", "name_zh": "系统故障", "name_en": "System fault", "public_zh": "系统维护中", "public_en": "System maintenance"},
        ],
        rating_reasons={
            "version": "GB/T 39734-2020 A.1",
            "reasons": [
                {"code": "R01", "text_zh": "服务态度差", "text_en": "Poor attitude"},
                {"code": "R02", "text_zh": "办事效率低", "text_en": "Slow service"},
                {"code": "R03", "text_zh": "多次跑腿", "text_en": "Had to come back several times"},
                {"code": "R04", "text_zh": "一次性告知不到位", "text_en": "Missing materials not told at once"},
            ],
        },
        matters=matters,
    )


def load_source(seed: int = 1) -> DemoSource:
    try:
        from hall_server import demo_data  # written separately; optional until it lands
    except ImportError:
        return _fallback()
    d = demo_data.build_demo_hall(seed=seed)
    # Avatars are drawn on first request (demo_avatar), not here: seeding stays quick.
    return DemoSource(
        hall=d.hall, categories=d.categories, windows=d.windows, staff=d.staff,
        pause_reasons=d.pause_reasons, rating_reasons=d.rating_reasons, matters=d.matters,
    )


def demo_avatar(staff_no: str, name_zh: str) -> bytes | None:
    """The demo hall's generated photo for a staff member without a stored one."""
    try:
        from hall_server import demo_data
    except ImportError:
        return None
    return bytes(demo_data.avatar_png(staff_no, name_zh, size=256))


def seed_demo(store: Store, seed: int = 1) -> bool:
    """Seed once; False when the database already holds a hall."""
    already = store.read_sync(lambda c: get_meta(c, "seeded"))
    if already:
        return False
    src = load_source(seed)
    pw_hash = hash_password(DEMO_PASSWORD)  # one hash for all demo staff: seeding stays quick

    # The same path as `hall-server init`: the demo files make a HallSpec (demo-hall.toml for
    # the settings, demo_data for the structure), then demo staff and the catalog are added.
    spec, years = demo_spec(src.hall, src.categories, src.windows, src.pause_reasons, src.rating_reasons)

    def fn(tx: Tx) -> bool:
        conn = tx.conn
        if get_meta(conn, "seeded") or is_initialised(conn):
            return False
        init_hall(tx, spec, "demo", None, years)
        conn.execute(t.staff.insert(), [
            {"staff_no": s["staff_no"], "name_zh": s["name_zh"], "name_en": s["name_en"], "role": s["role"],
             "password_hash": pw_hash, "disabled": False, "window_no": s.get("window_no"),
             "photo": src.avatars.get(s["staff_no"])}
            for s in src.staff
        ])
        version = bump_version(conn)
        write_matters(conn, src.matters, version)
        set_meta(conn, "seeded", json.dumps({"seed": seed}))
        return True

    return store.write_sync(fn)


def hall_code(store: Store) -> str:
    return store.read_sync(lambda c: get_meta(c, "hall_code")) or "HALL"

