"""Matters catalog import (admin endpoint, CLI, demo seeding): validate every row first, then
write all of it in one transaction under a new catalog version, or nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select

from hall_server import schema as t
from hall_server.core import get_meta, set_meta
from hall_server.db import Tx
from hall_server.errors import ApiError

REQUIREMENTS = ("required", "optional", "accepted_pending")


def _err(row: int, field: str, message: str) -> dict[str, Any]:
    return {"row": row, "field": field, "message": message}


def validate(items: Any, categories: set[str]) -> list[dict[str, Any]]:
    """All problems, each with its 1-based row number; empty when the import may go ahead."""
    errors: list[dict[str, Any]] = []
    if not isinstance(items, list):
        return [_err(0, "", "expected a JSON array of matters")]
    seen: set[str] = set()
    for i, m in enumerate(items, start=1):
        if not isinstance(m, dict):
            errors.append(_err(i, "", "expected an object"))
            continue
        for f in ("code", "name_zh", "category"):
            v = m.get(f)
            if not isinstance(v, str) or not v.strip():
                errors.append(_err(i, f, "required text"))
        code = m.get("code")
        if isinstance(code, str):
            if len(code) > 64:
                errors.append(_err(i, "code", "at most 64 characters"))
            if code in seen:
                errors.append(_err(i, "code", f"duplicate code {code}"))
            seen.add(code)
        cat = m.get("category")
        if isinstance(cat, str) and cat and cat not in categories:
            errors.append(_err(i, "category", f"unknown category {cat}"))
        for f in ("name_en", "department_zh", "department_en"):
            if f in m and not isinstance(m[f], str):
                errors.append(_err(i, f, "must be text"))
        tl = m.get("time_limit_days", 0)
        if not isinstance(tl, int) or isinstance(tl, bool) or tl < 0:
            errors.append(_err(i, "time_limit_days", "a whole number >= 0"))
        for f in ("instant", "cross_region", "deleted"):
            if f in m and not isinstance(m[f], bool):
                errors.append(_err(i, f, "true or false"))
        checklist = m.get("checklist", [])
        if not isinstance(checklist, list):
            errors.append(_err(i, "checklist", "must be a list"))
            continue
        ids: set[str] = set()
        for j, it in enumerate(checklist):
            f0 = f"checklist[{j}]"
            if not isinstance(it, dict):
                errors.append(_err(i, f0, "expected an object"))
                continue
            iid = it.get("id")
            if not isinstance(iid, str) or not iid or len(iid) > 64:
                errors.append(_err(i, f0 + ".id", "required text (<= 64)"))
            elif iid in ids:
                errors.append(_err(i, f0 + ".id", f"duplicate item id {iid}"))
            else:
                ids.add(iid)
            if not isinstance(it.get("name_zh"), str) or not it.get("name_zh"):
                errors.append(_err(i, f0 + ".name_zh", "required text"))
            if it.get("requirement", "required") not in REQUIREMENTS:
                errors.append(_err(i, f0 + ".requirement", "one of " + ", ".join(REQUIREMENTS)))
            copies = it.get("copies", 1)
            if not isinstance(copies, int) or isinstance(copies, bool) or copies < 0:
                errors.append(_err(i, f0 + ".copies", "a whole number >= 0"))
            for f in ("original_required", "e_licence"):
                if f in it and not isinstance(it[f], bool):
                    errors.append(_err(i, f0 + "." + f, "true or false"))
    return errors


def import_matters(tx: Tx, items: Any) -> dict[str, int]:
    conn = tx.conn
    cats = set(conn.execute(select(t.categories.c.code)).scalars())
    errors = validate(items, cats)
    if errors:
        raise ApiError(422, "import_invalid", {"errors": errors[:200], "count": len(errors)})
    version = bump_version(conn)
    write_matters(conn, items, version)
    tx.emit("catalog.updated", {"catalog_version": version})
    return {"imported": len(items), "catalog_version": version}


def bump_version(conn: Connection) -> int:
    version = int(get_meta(conn, "catalog_version") or 0) + 1
    set_meta(conn, "catalog_version", str(version))
    return version


def write_matters(conn: Connection, items: list[dict[str, Any]], version: int) -> None:
    codes = [m["code"] for m in items]
    existing: set[str] = set()
    for chunk in range(0, len(codes), 500):
        existing |= set(
            conn.execute(select(t.matters.c.code).where(t.matters.c.code.in_(codes[chunk:chunk + 500]))).scalars()
        )
    rows = [
        {
            "code": m["code"],
            "name_zh": m["name_zh"],
            "name_en": m.get("name_en", ""),
            "department_zh": m.get("department_zh", ""),
            "department_en": m.get("department_en", ""),
            "category": m["category"],
            "time_limit_days": m.get("time_limit_days", 0),
            "instant": m.get("instant", False),
            "cross_region": m.get("cross_region", False),
            "version": version,
            "deleted": m.get("deleted", False),
        }
        for m in items
    ]
    new = [r for r in rows if r["code"] not in existing]
    old = [dict(r, b_code=r["code"]) for r in rows if r["code"] in existing]
    if existing:
        for chunk in range(0, len(codes), 500):
            conn.execute(
                t.checklist_items.delete().where(t.checklist_items.c.matter_code.in_(codes[chunk:chunk + 500]))
            )
    if new:
        conn.execute(t.matters.insert(), new)
    if old:
        stmt = (
            t.matters.update()
            .where(t.matters.c.code == bindparam("b_code"))
            .values({k: bindparam(k) for k in rows[0] if k != "code"})
        )
        conn.execute(stmt, [{k: v for k, v in r.items() if k != "code"} for r in old])
    items_rows = [
        {
            "matter_code": m["code"],
            "id": it["id"],
            "position": pos,
            "name_zh": it["name_zh"],
            "name_en": it.get("name_en", ""),
            "requirement": it.get("requirement", "required"),
            "copies": it.get("copies", 1),
            "original_required": it.get("original_required", False),
            "e_licence": it.get("e_licence", False),
            "notes_zh": it.get("notes_zh", "") or "",
            "notes_en": it.get("notes_en", "") or "",
        }
        for m in items
        for pos, it in enumerate(m.get("checklist", []))
    ]
    if items_rows:
        conn.execute(t.checklist_items.insert(), items_rows)
