"""Shared helpers for benchmarks: percentiles and the JSON-line figure format of PERFORMANCE.md.

Every figure is a dict with `name` (unit in the name), `value`, and where there is one `floor`,
`ratio` and `target` ("FIELD OP NUMBER", e.g. "ratio<=3"), so each line can be checked
mechanically by `check_target`.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Sequence
from typing import Any

_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "==": operator.eq}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    if not values:
        raise ValueError("no values")
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100.0 * len(s)) - 1))
    return s[k]


def figure(name: str, value: float, *, floor: float | None = None, target: str | None = None,
           n: int | None = None, **extra: Any) -> dict[str, Any]:
    """One benchmark line; `ratio` is value/floor when a floor is given."""
    line: dict[str, Any] = {"name": name, "value": round(float(value), 4)}
    if floor is not None:
        line["floor"] = round(float(floor), 4)
        line["ratio"] = round(float(value) / float(floor), 3) if floor else None
    if target is not None:
        line["target"] = target
    if n is not None:
        line["n"] = n
    line.update(extra)
    return line


def check_target(line: dict[str, Any]) -> bool | None:
    """True/False when the line has a target, None when it has none."""
    target = line.get("target")
    if not target:
        return None
    m = re.fullmatch(r"\s*(\w+)\s*(<=|>=|==|<|>)\s*([-\d.eE]+)\s*", target)
    if not m:
        raise ValueError(f"bad target {target!r}")
    field, op, num = m.groups()
    value = line.get(field)
    if value is None:
        return False
    return bool(_OPS[op](float(value), float(num)))
