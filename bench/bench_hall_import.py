"""Catalog import of 5,000 matters (3 checklist items each: 15,000 rows), the issue 14 figure.

The file is what hall IT would import: an XLSX and a GBK CSV (as Excel on Chinese Windows saves
it) with Chinese headers and 是/否 values. Each is read (`catalog.read_matters_bytes`) and
imported (`admin.import_matters_op`: validation, one transaction, audit row) into a fresh
SQLite hall created by `hallsetup.init_hall` from hall.example.toml. The floor is the least any
importer must do with the same file in the same run: openpyxl's read-only walk over the cells
(XLSX), or decoding and `csv.reader` over the text (CSV).
"""

from __future__ import annotations

import csv
import io
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import figure

N = 5000
HEADER = ["事项编码", "事项名称", "实施部门", "业务类别", "承诺时限", "即办件", "材料编码", "材料名称", "材料要求", "需要原件"]
ITEMS = (("id", "身份证", "必需", "是"), ("form", "申请表", "必需", "是"), ("extra", "其他材料", "容缺", "否"))


def _rows() -> list[list[Any]]:
    rows: list[list[Any]] = [HEADER]
    for i in range(N):
        for iid, name, req, orig in ITEMS:
            rows.append([f"M-{i:05d}", f"示例事项{i}", "行政审批服务局", "ABC"[i % 3], i % 20,
                         "是" if i % 5 == 0 else "否", iid, name, req, orig])
    return rows


def _xlsx(rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet()
    for r in rows:
        ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _csv_gbk(rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("gbk")


def _fresh_store(folder: Path) -> Any:
    from hall_server import hallsetup
    from hall_server.db import Store

    store = Store(f"sqlite:///{folder / 'hall.sqlite3'}")
    store.migrate()
    spec = hallsetup.load_spec(Path(__file__).resolve().parents[1] / "hall.example.toml")
    store.write_sync(lambda tx: hallsetup.init_hall(tx, spec, "bench", "x", []))
    return store


def _import(data: bytes, suffix: str) -> float:
    from hall_server import admin, catalog

    with tempfile.TemporaryDirectory(prefix="bench-import-") as d:
        store = _fresh_store(Path(d))
        try:
            t0 = time.perf_counter()
            items = catalog.read_matters_bytes(data, suffix)
            out = store.write_sync(lambda tx: admin.import_matters_op(tx, "bench", items))
            seconds = time.perf_counter() - t0
        finally:
            store.close()
    assert out["imported"] == N, out
    return seconds


def _floor_xlsx(data: bytes) -> float:
    from openpyxl import load_workbook

    t0 = time.perf_counter()
    wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    n = sum(1 for _ in wb.worksheets[0].iter_rows(values_only=True))
    wb.close()
    assert n == N * len(ITEMS) + 1
    return time.perf_counter() - t0


def _floor_csv(data: bytes) -> float:
    t0 = time.perf_counter()
    n = sum(1 for _ in csv.reader(io.StringIO(data.decode("gb18030"))))
    assert n == N * len(ITEMS) + 1
    return time.perf_counter() - t0


def run() -> Iterator[dict[str, Any]]:
    rows = _rows()
    xlsx, gbk = _xlsx(rows), _csv_gbk(rows)
    yield figure("catalog_import_5000_matters_xlsx_s", _import(xlsx, ".xlsx"), floor=_floor_xlsx(xlsx),
                 n=N, rows=len(rows) - 1)
    yield figure("catalog_import_5000_matters_gbk_csv_s", _import(gbk, ".csv"), floor=_floor_csv(gbk),
                 n=N, rows=len(rows) - 1)
