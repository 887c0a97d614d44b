"""Matters catalog import (admin endpoint, CLI, demo seeding): validate every row first, then
write all of it in one transaction under a new catalog version, or nothing."""

from __future__ import annotations

import csv
import io
import json
import re
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
    errors = with_lines(validate(items, cats), items)
    if errors:
        raise ApiError(422, "import_invalid", {"errors": errors[:200], "count": len(errors)})
    version = bump_version(conn)
    write_matters(conn, items, version)
    tx.emit("catalog.updated", {"catalog_version": version})
    return {"imported": len(items), "catalog_version": version}


_ITEM = re.compile(r"^checklist\[(\d+)\]")


def with_lines(errors: list[dict[str, Any]], items: Any) -> list[dict[str, Any]]:
    """For matters read from a CSV/XLSX file: add the file's `line` to each error (the item's
    own line for a checklist field), so IT finds the row in the editor they saved it from."""
    if not isinstance(items, list):
        return errors
    for e in errors:
        m = items[e["row"] - 1] if 0 < e["row"] <= len(items) else None
        if not isinstance(m, dict) or "_line" not in m:
            continue
        e["line"] = m["_line"]
        hit = _ITEM.match(e.get("field", ""))
        checklist = m.get("checklist")
        if hit and isinstance(checklist, list) and int(hit.group(1)) < len(checklist):
            e["line"] = checklist[int(hit.group(1))].get("_line", e["line"])
    return errors


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


# ---- reading catalog files (CLI `import-matters`, the admin API by Content-Type) ---------------
# One row per checklist item; the matter's columns repeat on each of its rows (a matter without
# items: one row with the item columns empty). Headers in English or Chinese (docs/hall-setup.md).
COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("事项编码", "事项代码", "编码"),
    "name_zh": ("事项名称", "名称"),
    "name_en": ("事项名称(英文)", "英文名称"),
    "department_zh": ("实施部门", "部门", "实施机构"),
    "department_en": ("实施部门(英文)", "部门(英文)"),
    "category": ("业务类别", "类别", "分类"),
    "time_limit_days": ("承诺时限", "承诺时限(工作日)", "办结时限", "承诺办结时限"),
    "instant": ("即办件", "是否即办"),
    "cross_region": ("跨省通办", "是否跨省通办", "跨域通办"),
    "deleted": ("已删除", "是否删除", "停用"),
    "item_id": ("材料编码", "材料代码"),
    "item_name_zh": ("材料名称",),
    "item_name_en": ("材料名称(英文)",),
    "requirement": ("材料要求", "是否必需", "必要性"),
    "copies": ("份数",),
    "original_required": ("需要原件", "是否需要原件", "原件"),
    "e_licence": ("电子证照", "可用电子证照", "是否电子证照"),
    "notes_zh": ("备注", "材料备注"),
    "notes_en": ("备注(英文)",),
}
_TRUE = {"1", "true", "yes", "y", "是", "√", "✓", "对"}
_FALSE = {"", "0", "false", "no", "n", "否", "×", "无"}
_REQUIREMENTS = {"required": "required", "必需": "required", "必须": "required", "必要": "required",
                 "optional": "optional", "可选": "optional", "非必需": "optional",
                 "accepted_pending": "accepted_pending", "容缺": "accepted_pending", "容缺受理": "accepted_pending"}
MAX_ROWS = 500_000


def _norm_header(h: str) -> str:
    return h.replace("\ufeff", "").replace("（", "(").replace("）", ")").replace(" ", "").strip().lower()


_HEADER_MAP = {_norm_header(alias): key for key, aliases in COLUMNS.items() for alias in (key, *aliases)}


def decode_csv(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB 18030 (a superset of the GBK that Excel on Chinese
    Windows writes as "CSV")."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise ValueError("the CSV is neither UTF-8 nor GBK text") from None


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _table_rows(data: bytes, suffix: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(line number in the file, cells)]) from CSV or the first sheet of an XLSX."""
    if suffix == ".xlsx":
        import zipfile

        from openpyxl import load_workbook  # type: ignore[import-untyped]

        try:
            wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except (zipfile.BadZipFile, OSError, KeyError, ValueError) as e:
            raise ValueError(f"not a readable .xlsx workbook: {e}") from None
        try:
            ws = wb.worksheets[0]
            rows: list[tuple[int, list[str]]] = []
            for n, r in enumerate(ws.iter_rows(values_only=True), start=1):
                if n > MAX_ROWS:
                    raise ValueError(f"more than {MAX_ROWS} rows")
                rows.append((n, [_cell(v) for v in r]))
        finally:
            wb.close()
    else:
        text = decode_csv(data)
        rows = []
        reader = csv.reader(io.StringIO(text, newline=""))
        for r in reader:
            if reader.line_num > MAX_ROWS:
                raise ValueError(f"more than {MAX_ROWS} rows")
            rows.append((reader.line_num, [c.strip() for c in r]))
    rows = [(n, r) for n, r in rows if any(r)]  # blank lines (Excel leaves some) are no rows
    if not rows:
        raise ValueError("the file is empty")
    return rows[0][1], rows[1:]


def read_matters_bytes(data: bytes, suffix: str) -> list[dict[str, Any]]:
    """Matters from a .json, .csv or .xlsx file's bytes.

    A problem in any row raises ApiError 422 `import_invalid` listing every bad row (`line` is
    the row number the file's own editor shows); nothing is imported then."""
    suffix = suffix.lower()
    if suffix == ".json":
        try:
            obj = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"not valid UTF-8 JSON: {e}") from None
        if not isinstance(obj, list):
            raise ValueError("expected a JSON array of matters")
        return obj
    if suffix not in (".csv", ".xlsx"):
        raise ValueError("expected a .json, .csv or .xlsx file")
    header, rows = _table_rows(data, suffix)
    keys = [_HEADER_MAP.get(_norm_header(h)) for h in header]
    errors: list[dict[str, Any]] = []
    unknown = [h for h, k in zip(header, keys, strict=True) if k is None and h]
    if unknown:
        errors.append({"row": 1, "line": 1, "field": "header", "message": f"unknown columns {unknown}"})
    missing = [k for k in ("code", "name_zh", "category") if k not in keys]
    if missing:
        errors.append({"row": 1, "line": 1, "field": "header", "message": f"missing columns {missing}"})
    if errors:
        raise ApiError(422, "import_invalid", {"errors": errors, "count": len(errors)})

    def bad(line: int, field: str, message: str) -> None:
        errors.append({"row": line, "line": line, "field": field, "message": message})

    def flag(v: str, line: int, field: str) -> bool:
        low = v.strip().lower()
        if low in _TRUE:
            return True
        if low not in _FALSE:
            bad(line, field, f"expected 是/否 (or true/false), got {v!r}")
        return False

    def whole(v: str, line: int, field: str, default: int) -> int:
        if not v.strip():
            return default
        try:
            return int(v)
        except ValueError:
            bad(line, field, f"expected a whole number, got {v!r}")
            return default

    by_code: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    for line, cells in rows:
        row = {k: (cells[i] if i < len(cells) else "") for i, k in enumerate(keys) if k is not None}
        code = row.get("code", "")
        if not code:
            bad(line, "code", "required")
            continue
        m = by_code.get(code)
        if m is None:
            first_line[code] = line
            m = by_code[code] = {
                "code": code, "name_zh": row.get("name_zh", ""), "name_en": row.get("name_en", ""),
                "department_zh": row.get("department_zh", ""), "department_en": row.get("department_en", ""),
                "category": row.get("category", ""),
                "time_limit_days": whole(row.get("time_limit_days", ""), line, "time_limit_days", 0),
                "instant": flag(row.get("instant", ""), line, "instant"),
                "cross_region": flag(row.get("cross_region", ""), line, "cross_region"),
                "deleted": flag(row.get("deleted", ""), line, "deleted"),
                "checklist": [],
            }
        if row.get("item_id"):
            req = row.get("requirement", "")
            requirement = _REQUIREMENTS.get(req.strip().lower() or "required")
            if requirement is None:
                bad(line, "requirement", f"expected 必需/可选/容缺 (required/optional/accepted_pending), got {req!r}")
            m["checklist"].append({
                "id": row["item_id"], "name_zh": row.get("item_name_zh", ""),
                "name_en": row.get("item_name_en", ""), "requirement": requirement or "required",
                "copies": whole(row.get("copies", ""), line, "copies", 1),
                "original_required": flag(row.get("original_required", ""), line, "original_required"),
                "e_licence": flag(row.get("e_licence", ""), line, "e_licence"),
                "notes_zh": row.get("notes_zh", ""), "notes_en": row.get("notes_en", ""),
                "_line": line,
            })
    items = list(by_code.values())
    # The matter-level checks (unknown category, lengths, duplicates...) run at import time on
    # these dicts; remember each matter's first line so their errors name the file's rows.
    for m in items:
        m["_line"] = first_line[m["code"]]
    if errors:
        raise ApiError(422, "import_invalid", {"errors": errors[:200], "count": len(errors)})
    return items


def read_matters_file(path: Any) -> list[dict[str, Any]]:
    from pathlib import Path

    p = Path(path)
    return read_matters_bytes(p.read_bytes(), p.suffix)
