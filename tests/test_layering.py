"""The import flow is ui -> counter_app -> api_client, never back; hall_server stands apart.

Walks the AST of every module, so a lazy import inside a function is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

BANNED = {
    "api_client": {"tkinter", "customtkinter", "ui", "counter_app", "hall_server"},
    "counter_app": {"tkinter", "customtkinter", "ui", "hall_server"},
    "hall_server": {"tkinter", "customtkinter", "ui", "counter_app", "api_client"},
    "ui": {"hall_server"},
}


def imported_roots(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def violations(package: str) -> list[str]:
    bad = []
    for f in sorted((ROOT / package).rglob("*.py")):
        for line, name in imported_roots(f):
            if name.split(".")[0] in BANNED[package]:
                bad.append(f"{f.relative_to(ROOT)}:{line} imports {name}")
    return bad


@pytest.mark.parametrize("package", sorted(BANNED))
def test_imports_flow_one_way(package: str) -> None:
    assert (ROOT / package).is_dir()
    assert violations(package) == []


def test_detector_catches_a_bad_import(tmp_path: Path) -> None:
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    import customtkinter\n", encoding="utf-8")
    assert (2, "customtkinter") in imported_roots(bad)
